"""The grayscale pipeline's stages as pure array functions (DICOM PS3.3 C.11, PS3.4 N.2.1).

Stored values go through three stages, each its own function here and each testable alone:

1. Modality LUT (PS3.3 C.11.1): stored values to modality units (HU for CT), either by
   :func:`apply_rescale` (Rescale Slope / Intercept) or by a Modality LUT Sequence,
   :func:`apply_lut`.
2. VOI LUT (PS3.3 C.11.2): modality units to display values, by a window
   (:func:`apply_window`, with the VOI LUT Functions LINEAR, LINEAR_EXACT and SIGMOID)
   or by a VOI LUT Sequence (:func:`apply_voi_lut`).
3. Presentation LUT (PS3.3 C.11.6, C.7.6.3.1.2): :func:`apply_inversion` turns
   MONOCHROME1 (and Presentation LUT Shape INVERSE) into P-values where bright is high.

The functions work on any array shape: a frame, or the 1-D range of possible stored
values when the renderer compiles the stages into one lookup table.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "VoiLutFunction",
    "Rescale",
    "LookupTable",
    "Window",
    "ModalityTransform",
    "VoiTransform",
    "apply_rescale",
    "apply_lut",
    "apply_modality_lut",
    "apply_window",
    "apply_paper_window",
    "apply_voi_lut",
    "apply_voi",
    "apply_inversion",
]


class VoiLutFunction(str, enum.Enum):
    """Defined Terms of VOI LUT Function (0028,1056), PS3.3 C.11.2.1.3."""

    LINEAR = "LINEAR"
    LINEAR_EXACT = "LINEAR_EXACT"
    SIGMOID = "SIGMOID"


@dataclass(frozen=True)
class Rescale:
    """Rescale Slope (0028,1053) and Rescale Intercept (0028,1052), PS3.3 C.11.1.1.2.

    Args:
        slope: m in ``output = m * SV + b``.
        intercept: b in ``output = m * SV + b``.
        rescale_type: Rescale Type (0028,1054), e.g. ``"HU"``; informational.
    """

    slope: float = 1.0
    intercept: float = 0.0
    rescale_type: str = ""

    def __post_init__(self) -> None:
        if not np.isfinite(self.slope) or self.slope == 0:
            raise ValueError(f"Rescale Slope must be finite and non-zero, got {self.slope!r}")
        if not np.isfinite(self.intercept):
            raise ValueError(f"Rescale Intercept must be finite, got {self.intercept!r}")

    @property
    def is_identity(self) -> bool:
        return self.slope == 1.0 and self.intercept == 0.0


@dataclass(frozen=True)
class LookupTable:
    """A LUT as a Modality or VOI LUT Sequence item holds it (PS3.3 C.11.1.1.1, C.11.2.1.1).

    Args:
        first_mapped: second value of LUT Descriptor: the input value mapped to ``data[0]``.
        bits: third value of LUT Descriptor: bits per entry, so the output range is
            ``0 .. 2**bits - 1``.
        data: LUT Data (0028,3006), one entry per input value from ``first_mapped``.
        explanation: LUT Explanation (0028,3003).
    """

    first_mapped: int
    bits: int
    data: np.ndarray = field(repr=False)
    explanation: str = ""

    def __post_init__(self) -> None:
        data = np.asarray(self.data)
        if data.ndim != 1 or data.size == 0:
            raise ValueError(f"LUT Data must be a non-empty 1-D sequence, got shape {data.shape}")
        if not 1 <= self.bits <= 16:
            raise ValueError(f"LUT Descriptor bits per entry must be 1..16, got {self.bits}")
        object.__setattr__(self, "data", data)

    @property
    def output_max(self) -> int:
        """Largest value the LUT can output: ``2**bits - 1``, widened when a vendor's data exceeds it."""
        return max(2**self.bits - 1, int(self.data.max()))


@dataclass(frozen=True)
class Window:
    """Window Center (0028,1050) / Window Width (0028,1051) with its VOI LUT Function.

    The constructor enforces PS3.3 C.11.2.1.2.1: Window Width >= 1 for LINEAR and > 0 for
    LINEAR_EXACT and SIGMOID, so a Window that exists is one that can be applied.

    Args:
        center: Window Center, in modality units.
        width: Window Width, in modality units.
        function: VOI LUT Function; LINEAR when the attribute is absent.
        explanation: Window Center & Width Explanation (0028,1055).
    """

    center: float
    width: float
    function: VoiLutFunction = VoiLutFunction.LINEAR
    explanation: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "function", VoiLutFunction(self.function))
        if not (np.isfinite(self.center) and np.isfinite(self.width)):
            raise ValueError(f"Window Center/Width must be finite, got c={self.center!r} w={self.width!r}")
        minimum = 1.0 if self.function is VoiLutFunction.LINEAR else 0.0
        if self.width < minimum or (minimum == 0.0 and self.width == 0.0):
            rule = ">= 1" if minimum else "> 0"
            raise ValueError(f"Window Width must be {rule} for {self.function.value}, got {self.width!r}")

    def describe(self) -> str:
        return f"c={self.center:g} w={self.width:g} {self.function.value}"


ModalityTransform = Rescale | LookupTable
VoiTransform = Window | LookupTable


def apply_rescale(values: np.ndarray, rescale: Rescale) -> np.ndarray:
    """PS3.3 C.11.1.1.2: ``output = slope * stored + intercept``, as float64."""
    out = np.asarray(values, dtype=np.float64)
    if rescale.is_identity:
        return out
    return out * rescale.slope + rescale.intercept


def apply_lut(values: np.ndarray, lut: LookupTable) -> np.ndarray:
    """Map ``values`` through a LUT, PS3.3 C.11.1.1.1 / C.11.2.1.1.

    Inputs below ``first_mapped`` take the first entry, inputs beyond the last entry take
    the last entry (the standard's rule for both Modality and VOI LUTs).
    """
    index = np.asarray(values, dtype=np.float64) - lut.first_mapped
    index = np.clip(np.rint(index), 0, lut.data.size - 1).astype(np.intp)
    return lut.data[index].astype(np.float64)


def apply_modality_lut(values: np.ndarray, transform: ModalityTransform) -> np.ndarray:
    """Modality LUT stage, PS3.3 C.11.1: a Rescale or a Modality LUT Sequence item."""
    if isinstance(transform, Rescale):
        return apply_rescale(values, transform)
    return apply_lut(values, transform)


def apply_window(
    values: np.ndarray, window: Window, y_min: float = 0.0, y_max: float = 255.0
) -> np.ndarray:
    """Window Center/Width with its VOI LUT Function, exactly as PS3.3 C.11.2.1.2 and C.11.2.1.3.

    - LINEAR (C.11.2.1.2.1): ``y = ((x - (c - 0.5)) / (w - 1) + 0.5) * (y_max - y_min) + y_min``,
      ``y_min`` for ``x <= c - 0.5 - (w - 1) / 2`` and ``y_max`` for ``x > c - 0.5 + (w - 1) / 2``.
      The formula meets both limits exactly at the thresholds, so clipping it is the same
      piecewise function. ``w == 1`` is a threshold at ``c - 0.5``.
    - LINEAR_EXACT (C.11.2.1.3.2): ``y = ((x - c) / w + 0.5) * (y_max - y_min) + y_min``, clipped.
    - SIGMOID (C.11.2.1.3.1): ``y = (y_max - y_min) / (1 + exp(-4 (x - c) / w)) + y_min``.

    Returns float64 display values in ``[y_min, y_max]``.
    """
    x = np.asarray(values, dtype=np.float64)
    c, w, span = window.center, window.width, y_max - y_min
    if window.function is VoiLutFunction.SIGMOID:
        return span / (1.0 + np.exp(-4.0 * (x - c) / w)) + y_min
    if window.function is VoiLutFunction.LINEAR_EXACT:
        y = ((x - c) / w + 0.5) * span + y_min
    elif w == 1.0:
        return np.where(x > c - 0.5, y_max, y_min).astype(np.float64)
    else:
        y = ((x - (c - 0.5)) / (w - 1.0) + 0.5) * span + y_min
    return np.clip(y, y_min, y_max, out=y)


def apply_paper_window(values: np.ndarray, window: Window, y_max: float = 255.0) -> np.ndarray:
    """RadiologyNET's export formula (thesis 2.3.2): ``(x - (c - w/2)) / w * 255``, clipped to [0, 255].

    It ignores the file's VOI LUT Function. Algebraically it is LINEAR_EXACT
    (PS3.3 C.11.2.1.3.2), not the standard's default LINEAR, whose ``c - 0.5`` and
    ``w - 1`` shift it by up to one grey level; kept so the study's exports can be reproduced.
    """
    return apply_window(values, Window(window.center, window.width, VoiLutFunction.LINEAR_EXACT), 0.0, y_max)


def apply_voi_lut(values: np.ndarray, lut: LookupTable, y_max: float = 255.0) -> np.ndarray:
    """VOI LUT Sequence item, PS3.3 C.11.2.1.1: LUT output ``0 .. 2**bits - 1`` scaled to ``[0, y_max]``."""
    return apply_lut(values, lut) * (y_max / lut.output_max)


def apply_voi(values: np.ndarray, transform: VoiTransform, y_max: float = 255.0) -> np.ndarray:
    """VOI LUT stage, PS3.3 C.11.2: a Window or a VOI LUT Sequence item."""
    if isinstance(transform, Window):
        return apply_window(values, transform, 0.0, y_max)
    return apply_voi_lut(values, transform, y_max)


def apply_inversion(display: np.ndarray, y_max: float = 255.0) -> np.ndarray:
    """Presentation stage for MONOCHROME1 / Presentation LUT Shape INVERSE (PS3.3 C.7.6.3.1.2, C.11.6.1.2).

    MONOCHROME1 means the minimum value is displayed white; inverting the VOI output makes
    bright mean high attenuation (bone bright), the P-value convention of MONOCHROME2.
    """
    return y_max - display
