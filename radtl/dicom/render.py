"""Render one frame of stored values to an 8-bit display image through the grayscale pipeline.

For integer pixel data the stages of :mod:`radtl.dicom.lut` are evaluated once over the
range of stored values the frame holds, giving a ``uint8`` lookup table that one gather
applies to the frame (what display pipelines call a compiled LUT, PS3.4 N.2). That is
the same arithmetic as applying the stages pixel by pixel, at a fraction of the cost.
Float pixel data, or integer ranges too wide for a table, go through the stages directly.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np

from radtl.dicom.lut import VoiLutFunction, VoiTransform, Window, apply_inversion, apply_modality_lut, apply_paper_window, apply_voi
from radtl.dicom.modules import GrayscalePipeline

__all__ = ["WindowFormula", "RenderedFrame", "render_grayscale", "quantize"]

#: Widest stored-value range compiled into a lookup table (2**20 entries, 8 MiB of float64 work).
MAX_LUT_ENTRIES = 2**20


class WindowFormula(str, enum.Enum):
    """How a Window is turned into display values.

    ``DICOM``: the file's VOI LUT Function per PS3.3 C.11.2 (LINEAR, LINEAR_EXACT, SIGMOID),
    VOI LUT Sequences included. ``PAPER``: RadiologyNET's ``(x - (c - w/2)) / w * 255`` on
    the windows only, to reproduce the study's exports.
    """

    DICOM = "dicom"
    PAPER = "paper"


@dataclass(frozen=True)
class RenderedFrame:
    """An 8-bit frame and how its VOI stage was chosen.

    Args:
        image: ``(H, W)`` uint8 display values, bright = high (P-values).
        voi: which VOI transform produced it, e.g. ``"window 2/2 c=40 w=400 LINEAR"``,
            ``"voi-lut 1/1"``, or ``"minmax 0..4095 (no valid window)"``.
    """

    image: np.ndarray
    voi: str


def quantize(display: np.ndarray) -> np.ndarray:
    """Round display values in [0, 255] to uint8 (round half to even, as numpy.rint)."""
    return np.rint(display).astype(np.uint8)


def _describe(transform: VoiTransform, index: int, count: int) -> str:
    if isinstance(transform, Window):
        return f"window {index}/{count} {transform.describe()}"
    return f"voi-lut {index}/{count} {transform.explanation}".rstrip()


def render_grayscale(
    stored: np.ndarray, pipeline: GrayscalePipeline, formula: WindowFormula | str = WindowFormula.DICOM
) -> RenderedFrame:
    """Apply Modality LUT, the first valid VOI transform, and inversion to a ``(H, W)`` frame.

    A VOI candidate is valid when its output is not a single colour (RadiologyNET's rule,
    thesis 2.3.2). When none is, the frame's own range after the Modality LUT is mapped
    linearly to 0..255 and ``voi`` says so.

    Args:
        stored: ``(H, W)`` stored pixel values (integer or float).
        pipeline: the frame's stages, from :func:`radtl.dicom.modules.grayscale_pipeline`.
        formula: ``"dicom"`` (PS3.3) or ``"paper"`` (RadiologyNET's formula, windows only).
    """
    formula = WindowFormula(formula)
    stored = np.asarray(stored)
    compiled = stored.dtype.kind in "iu" and stored.size > 0
    if compiled:
        low, high = int(stored.min()), int(stored.max())
        compiled = high - low < MAX_LUT_ENTRIES
    if compiled:
        domain = np.arange(low, high + 1, dtype=np.int64)
        index = stored.astype(np.int64 if stored.dtype.itemsize >= 4 else np.int32) - low
        modality = apply_modality_lut(domain, pipeline.modality)
    else:
        modality = apply_modality_lut(stored, pipeline.modality)

    def finish(display: np.ndarray) -> np.ndarray:
        if pipeline.invert:
            display = apply_inversion(display)
        table = quantize(display)
        return table[index] if compiled else table

    candidates = [t for t in pipeline.voi if formula is WindowFormula.DICOM or isinstance(t, Window)]
    for position, transform in enumerate(candidates, start=1):
        if formula is WindowFormula.PAPER:
            display = apply_paper_window(modality, transform)
        else:
            display = apply_voi(modality, transform)
        image = finish(display)
        if image.size and image.min() != image.max():
            return RenderedFrame(image, _describe(transform, position, len(candidates)))

    finite = modality[np.isfinite(modality)]
    lowest, highest = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
    reason = "no valid window" if candidates else "no window in file"
    if highest > lowest:
        window = Window((lowest + highest) / 2, highest - lowest, VoiLutFunction.LINEAR_EXACT)
        display = apply_voi(np.nan_to_num(modality, nan=lowest), window)
    else:
        display = np.zeros_like(modality, dtype=np.float64)
    return RenderedFrame(finish(display), f"minmax {lowest:g}..{highest:g} ({reason})")
