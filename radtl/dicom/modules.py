"""Read the grayscale pipeline's parameters of one frame from a dataset's modules.

Where the attributes live depends on the IOD:

- Classic images carry the Modality LUT Module (C.11.1), VOI LUT Module (C.11.2) and
  Presentation LUT Shape at the top level, shared by every frame.
- Enhanced multi-frame images carry them per frame in the Per-Frame Functional Groups
  Sequence (5200,9230), or for all frames in the Shared Functional Groups Sequence
  (5200,9229): Pixel Value Transformation Macro (C.7.6.16.2.9) for rescale and Frame VOI
  LUT Macro (C.7.6.16.2.10) for windows.

:func:`grayscale_pipeline` resolves them most-specific-first (per-frame group, shared
group, top level) into a :class:`GrayscalePipeline`.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from radtl.dicom.lut import LookupTable, ModalityTransform, Rescale, VoiLutFunction, VoiTransform, Window

__all__ = ["VoiPreference", "GrayscalePipeline", "grayscale_pipeline", "functional_group_item"]


class VoiPreference(str, enum.Enum):
    """Which VOI transform to try first when a frame has both a VOI LUT Sequence and windows.

    PS3.3 C.11.2 lets an application choose; ``LUT`` (pydicom's default too) favours the
    vendor's tuned curve, ``WINDOW`` the linear windows.
    """

    LUT = "lut"
    WINDOW = "window"


@dataclass(frozen=True)
class GrayscalePipeline:
    """The grayscale stages of one frame, in the order PS3.4 N.2.1 applies them.

    Args:
        modality: Modality LUT stage (Rescale, or a Modality LUT Sequence item).
        voi: VOI candidates in order of preference; the renderer uses the first whose
            output is not a single colour.
        invert: True for MONOCHROME1 or Presentation LUT Shape INVERSE.
        rejected: VOI attributes present in the file that violate PS3.3 (e.g. a zero
            Window Width), each with its reason.
    """

    modality: ModalityTransform = Rescale()
    voi: tuple[VoiTransform, ...] = ()
    invert: bool = False
    rejected: tuple[str, ...] = ()


def functional_group_item(ds: Dataset, frame: int, macro: str) -> Dataset | None:
    """The first item of functional group macro ``macro`` for ``frame``: per-frame first, then shared."""
    for groups_keyword, index in (("PerFrameFunctionalGroupsSequence", frame), ("SharedFunctionalGroupsSequence", 0)):
        groups = ds.get(groups_keyword)
        if not groups or index >= len(groups):
            continue
        sequence = groups[index].get(macro)
        if sequence:
            return sequence[0]
    return None


def grayscale_pipeline(
    ds: Dataset, frame: int = 0, voi_preference: VoiPreference | str = VoiPreference.LUT
) -> GrayscalePipeline:
    """Resolve the Modality LUT, VOI LUT and presentation inversion of ``frame`` of ``ds``."""
    voi_preference = VoiPreference(voi_preference)
    rejected: list[str] = []

    modality: ModalityTransform = Rescale()
    transformation = functional_group_item(ds, frame, "PixelValueTransformationSequence")
    if transformation is not None and "RescaleSlope" in transformation:
        modality = _rescale(transformation, rejected)
    elif ds.get("ModalityLUTSequence"):
        modality = _lookup_table(ds.ModalityLUTSequence[0], ds)
    elif "RescaleSlope" in ds or "RescaleIntercept" in ds:
        modality = _rescale(ds, rejected)

    frame_voi = functional_group_item(ds, frame, "FrameVOILUTSequence")
    voi_source = frame_voi if frame_voi is not None and "WindowCenter" in frame_voi else ds
    windows = tuple(_windows(voi_source, rejected))
    luts = tuple(_lookup_table(item, ds) for item in ds.get("VOILUTSequence") or ())
    voi = luts + windows if voi_preference is VoiPreference.LUT else windows + luts

    shape = str(ds.get("PresentationLUTShape", "") or "").upper()
    invert = str(ds.get("PhotometricInterpretation", "")).upper() == "MONOCHROME1" or shape == "INVERSE"
    return GrayscalePipeline(modality=modality, voi=voi, invert=invert, rejected=tuple(rejected))


def _values(value: object) -> list:
    """A DICOM value as a list: multi-valued attributes are lists, single values become one-item lists."""
    if value is None or value == "":
        return []
    if isinstance(value, (MultiValue, list, tuple)):
        return list(value)
    return [value]


def _rescale(source: Dataset, rejected: list[str]) -> Rescale:
    slope = source.get("RescaleSlope", 1.0)
    intercept = source.get("RescaleIntercept", 0.0)
    try:
        return Rescale(float(slope if slope not in (None, "") else 1.0),
                       float(intercept if intercept not in (None, "") else 0.0),
                       str(source.get("RescaleType", "") or ""))
    except ValueError as error:  # e.g. a zero slope: keep stored values rather than collapse them
        rejected.append(f"modality: {error}; stored values used unscaled")
        return Rescale()


def _windows(source: Dataset, rejected: list[str]) -> Iterable[Window]:
    centers = _values(source.get("WindowCenter"))
    widths = _values(source.get("WindowWidth"))
    explanations = _values(source.get("WindowCenterWidthExplanation"))
    function = str(source.get("VOILUTFunction", "") or "LINEAR").upper()
    if len(centers) != len(widths):
        rejected.append(f"{len(centers)} Window Center values but {len(widths)} Window Width values; pairs beyond the shorter ignored")
    for index, (center, width) in enumerate(zip(centers, widths)):
        explanation = str(explanations[index]) if index < len(explanations) else ""
        try:
            yield Window(float(center), float(width), VoiLutFunction(function), explanation)
        except ValueError as error:
            rejected.append(f"window {index + 1}: {error}")


def _lookup_table(item: Dataset, ds: Dataset) -> LookupTable:
    """A LUT Descriptor / LUT Data pair, PS3.3 C.11.1.1.1 (also used by C.11.2.1.1)."""
    entries, first_mapped, bits = (int(v) for v in item.LUTDescriptor)
    entries = entries or 2**16  # a first value of 0 means 65536 entries
    # The second value is US or SS depending on the Pixel Representation (PS3.3 C.11.1.1.1)
    if first_mapped >= 2**15 and ds.get("PixelRepresentation", 0) == 1:
        first_mapped -= 2**16
    raw = item["LUTData"].value
    if isinstance(raw, bytes):
        little_endian = ds.original_encoding[1] if ds.original_encoding[1] is not None else True
        if bits <= 8 and len(raw) == entries:
            data = np.frombuffer(raw, dtype=np.uint8)
        else:
            count = len(raw) // 2
            data = np.asarray(struct.unpack(f"{'<' if little_endian else '>'}{count}H", raw[: 2 * count]))
    else:
        data = np.asarray(_values(raw))
    return LookupTable(first_mapped, bits, data[:entries], str(item.get("LUTExplanation", "") or ""))
