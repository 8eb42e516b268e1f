"""One DICOM object to its 8-bit display frames: decode, then the grayscale pipeline per frame.

This is the single place where a dataset becomes display images; the ``radtl convert``
exporter, the MONAI transforms and the bundles all call :func:`display_frames`.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from pydicom.dataset import Dataset

from radtl.dicom.image import color_to_uint8, rgb_to_gray
from radtl.dicom.io import DEFAULT_MAX_PIXEL_BYTES, decode_frames, read_dataset
from radtl.dicom.modules import VoiPreference, grayscale_pipeline
from radtl.dicom.render import WindowFormula, render_grayscale

__all__ = ["ColorMode", "ConversionOptions", "DisplayFrame", "display_frames", "read_display_frames"]


class ColorMode(str, enum.Enum):
    """What happens to RGB, YBR and PALETTE COLOR images: ``gray`` (BT.601 luma) or ``rgb`` (kept)."""

    GRAY = "gray"
    RGB = "rgb"


@dataclass(frozen=True)
class ConversionOptions:
    """Choices of the DICOM-to-display conversion.

    Args:
        formula: ``"dicom"`` (PS3.3 C.11.2) or ``"paper"`` (RadiologyNET's window formula).
        voi_preference: try a VOI LUT Sequence (``"lut"``) or the windows (``"window"``) first.
        color: ``"gray"`` converts colour images to luma, ``"rgb"`` keeps three channels.
        max_pixel_bytes: the per-file budget: a header declaring more decoded pixel bytes is
            refused before decoding, and a deflated data set is inflated no further (default 1 GiB).
    """

    formula: WindowFormula = WindowFormula.DICOM
    voi_preference: VoiPreference = VoiPreference.LUT
    color: ColorMode = ColorMode.GRAY
    max_pixel_bytes: int = DEFAULT_MAX_PIXEL_BYTES

    def __post_init__(self) -> None:
        object.__setattr__(self, "formula", WindowFormula(self.formula))
        object.__setattr__(self, "voi_preference", VoiPreference(self.voi_preference))
        object.__setattr__(self, "color", ColorMode(self.color))


@dataclass(frozen=True)
class DisplayFrame:
    """One frame ready for export.

    Args:
        index: frame number, 0-based.
        image: ``(H, W)`` uint8, or ``(H, W, 3)`` uint8 when colour is kept.
        voi: how the values were mapped (a window, a VOI LUT, min/max, or a colour path).
        inverted: whether MONOCHROME1 / Presentation LUT Shape INVERSE inverted it.
    """

    index: int
    image: np.ndarray
    voi: str
    inverted: bool = False


def display_frames(ds: Dataset, options: ConversionOptions = ConversionOptions()) -> Iterator[DisplayFrame]:
    """Decode ``ds`` and yield each frame through the pipeline with its own parameters.

    Enhanced multi-frame objects get each frame's rescale and window from its Per-Frame
    Functional Groups (PS3.3 C.7.6.16); classic objects share the top-level modules.
    Raises a :class:`radtl.dicom.errors.DicomConversionError` subclass for objects that
    cannot be decoded at all.
    """
    pixels = decode_frames(ds, options.max_pixel_bytes)
    if pixels.ndim == 4:
        bits = int(ds.get("BitsStored") or pixels.dtype.itemsize * 8)
        for index, frame in enumerate(pixels):
            rgb = color_to_uint8(frame, bits)
            if options.color is ColorMode.RGB:
                yield DisplayFrame(index, np.ascontiguousarray(rgb), "color")
            else:
                yield DisplayFrame(index, rgb_to_gray(rgb), "color to gray (BT.601 luma)")
        return
    for index, frame in enumerate(pixels):
        pipeline = grayscale_pipeline(ds, index, options.voi_preference)
        rendered = render_grayscale(frame, pipeline, options.formula)
        voi = rendered.voi if not pipeline.rejected else f"{rendered.voi}; ignored: {'; '.join(pipeline.rejected)}"
        yield DisplayFrame(index, rendered.image, voi, pipeline.invert)


def read_display_frames(path: str | os.PathLike, options: ConversionOptions = ConversionOptions()) -> list[DisplayFrame]:
    """Read the file at ``path`` and return all its display frames."""
    return list(display_frames(read_dataset(path, max_pixel_bytes=options.max_pixel_bytes), options))
