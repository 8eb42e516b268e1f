"""A PNG preview beside a DICOM-SEG, so a person can check a segmentation without a DICOM viewer.

The preview shows the slices with the most segmented voxels (up to :data:`MAX_SLICES`, side by side, in
slice order), each rendered from its own instance through radtl's one grayscale path
(:func:`radtl.dicom.render.render_grayscale`: Modality LUT, VOI window, presentation) with the lung
window, or the slice's own Window Center/Width, and the segment's outline drawn over it in
:data:`OUTLINE_COLOUR`. A caption under each slice gives its number and how many voxels it holds. When
nothing is segmented the preview is the middle slice with the caption "nothing segmented".

The mask is read back from the SEG file (:func:`radtl.dicom.seg.read_segmentation`), so the preview
shows what the file holds, not what the network meant to write.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage

from radtl.atomic import write_bytes_atomic
from radtl.dicom.io import decode_frames, read_dataset
from radtl.dicom.lut import Window
from radtl.dicom.modules import grayscale_pipeline
from radtl.dicom.render import render_grayscale
from radtl.dicom.seg import read_segmentation
from radtl.dicom.series import CTSeries, read_series_headers
from radtl.errors import UsageError
from radtl.png import encode_png

__all__ = [
    "LUNG_WINDOW",
    "MAX_SLICES",
    "OUTLINE_COLOUR",
    "PANEL_SIZE",
    "outline",
    "preview_image",
    "preview_path",
    "resolve_window",
    "slices_to_show",
    "write_preview",
]

#: The lung window (Window Center -600 HU, Window Width 1500 HU), the usual reading window for lung nodules.
LUNG_WINDOW = Window(-600.0, 1500.0)
#: The most slices a preview shows.
MAX_SLICES = 3
#: The longer side of each slice in the preview, in pixels (small images are enlarged, large ones reduced).
PANEL_SIZE = 256
#: The height of the caption band under the slices, and the gap between slices, in pixels.
CAPTION_HEIGHT = 18
GAP = 4
#: The colour of the segment's outline (RGB).
OUTLINE_COLOUR = (255, 0, 0)
#: A fractional (probability) segmentation counts as segmented from this value on.
FRACTIONAL_THRESHOLD = 0.5


def preview_path(seg: str | os.PathLike) -> Path:
    """Where the preview of ``seg`` goes: its name with ``.png`` for the last suffix (``X.seg.dcm`` -> ``X.seg.png``,
    ``SEG.dcm`` -> ``SEG.png``); ``.png`` is added to a name that has no suffix or already ends in ``.png``."""
    seg = Path(seg)
    if seg.suffix.lower() in ("", ".png"):
        return seg.with_name(seg.name + ".png")
    return seg.with_suffix(".png")


def slices_to_show(segmented: np.ndarray, count: int = MAX_SLICES) -> list[int]:
    """The indices of the ``count`` slices of a ``(Z, Y, X)`` boolean mask with the most segmented voxels, in slice
    order (ties go to the lower index); empty when nothing is segmented."""
    voxels = np.asarray(segmented, dtype=bool).reshape(len(segmented), -1).sum(axis=1)
    ranked = sorted((z for z in range(len(voxels)) if voxels[z]), key=lambda z: (-voxels[z], z))
    return sorted(ranked[:count])


def outline(mask: np.ndarray) -> np.ndarray:
    """The outline of a 2-D boolean mask, two pixels wide: the mask's border pixels and those just outside it
    (4-connected dilation minus erosion), so it stays visible and leaves the inside of the segment uncovered."""
    mask = np.asarray(mask, dtype=bool)
    return ndimage.binary_dilation(mask) & ~ndimage.binary_erosion(mask, border_value=0)


def _display_slice(path: Path, frame: int, window: Window | None) -> np.ndarray:
    """Frame ``frame`` (0-based) of an instance as ``(H, W)`` uint8 display values, in ``window`` or (None) the
    file's own VOI."""
    ds = read_dataset(path)
    pipeline = grayscale_pipeline(ds, frame)
    if window is not None:
        pipeline = replace(pipeline, voi=(window,))
    return render_grayscale(decode_frames(ds)[frame], pipeline).image


def _panel(image: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """A slice enlarged or reduced to :data:`PANEL_SIZE` on its longer side, RGB, with the mask's outline drawn at
    the panel's resolution (so it stays a crisp line at any size)."""
    rows, columns = image.shape
    scale = PANEL_SIZE / max(rows, columns)
    size = (max(1, round(columns * scale)), max(1, round(rows * scale)))
    grey = np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BILINEAR))
    panel = np.repeat(grey[..., None], 3, axis=2)
    if mask is not None:
        # reduced, a pixel is segmented when any voxel under it is (BOX), so a small segment never vanishes
        resampling = Image.Resampling.NEAREST if scale >= 1 else Image.Resampling.BOX
        resized = np.asarray(Image.fromarray(mask.astype(np.uint8) * 255).resize(size, resampling)) > 0
        panel[outline(resized)] = OUTLINE_COLOUR
    return panel


def preview_image(slices: list[np.ndarray], masks: list[np.ndarray | None], captions: list[str]) -> np.ndarray:
    """Slices side by side with their outlines and a caption under each: ``(H, W, 3)`` uint8.

    Args:
        slices: ``(rows, columns)`` uint8 display images.
        masks: for each slice a boolean ``(rows, columns)`` mask to outline, or None.
        captions: one line of text under each slice.
    """
    panels = [_panel(image, mask) for image, mask in zip(slices, masks)]
    height = max(panel.shape[0] for panel in panels) + CAPTION_HEIGHT
    width = sum(panel.shape[1] for panel in panels) + GAP * (len(panels) - 1)
    canvas = Image.new("RGB", (width, height))
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default()
    left = 0
    for panel, caption in zip(panels, captions):
        canvas.paste(Image.fromarray(panel), (left, 0))
        draw.text((left + 4, height - CAPTION_HEIGHT + 3), caption, fill=(255, 255, 255), font=font)
        left += panel.shape[1] + GAP
    return np.asarray(canvas)


def resolve_window(window: Window | str) -> Window | None:
    """The window a preview uses: a :class:`~radtl.dicom.lut.Window`, or None for each slice's own.

    Raises:
        radtl.errors.UsageError: a name other than ``"lung"`` and ``"series"``.
    """
    if isinstance(window, Window):
        return window
    if window == "lung":
        return LUNG_WINDOW
    if window == "series":
        return None
    raise UsageError(f"preview window {window!r}: give 'lung', 'series' (each slice's own window) or a Window")


def write_preview(
    seg: str | os.PathLike,
    source: CTSeries | str | os.PathLike,
    path: str | os.PathLike | None = None,
    window: Window | str = "lung",
) -> Path:
    """Write the PNG preview of the SEG ``seg`` of the series ``source``; returns its path.

    Args:
        seg: the DICOM-SEG file.
        source: the series it segments: its folder, or the series as
            :func:`radtl.dicom.series.read_series_headers` reads it.
        path: the PNG (default: :func:`preview_path` of ``seg``, beside it).
        window: ``"lung"`` (:data:`LUNG_WINDOW`), ``"series"`` (each slice's own Window Center/Width, PS3.3
            C.11.2, or its value range when it has none), or a :class:`radtl.dicom.lut.Window`.

    Raises:
        radtl.dicom.seg.SegmentationSourceError: the SEG does not segment ``source``.
        radtl.errors.UsageError: an unknown ``window``.
    """
    display_window = resolve_window(window)
    series = source if isinstance(source, CTSeries) else read_series_headers(source, modality=None)
    segmented = read_segmentation(seg, series).transpose(2, 1, 0) >= FRACTIONAL_THRESHOLD  # (Z, Y, X)
    total = series.shape[0]
    shown = slices_to_show(segmented)
    if shown:
        masks = [segmented[z] for z in shown]
        captions = [f"slice {z + 1}/{total}: {int(segmented[z].sum())} voxel(s)" for z in shown]
    else:
        shown, masks = [total // 2], [None]
        captions = [f"nothing segmented (slice {total // 2 + 1}/{total})"]
    image = preview_image([_display_slice(*series.slice_source(z), display_window) for z in shown], masks, captions)
    return write_bytes_atomic(path or preview_path(seg), encode_png(image))
