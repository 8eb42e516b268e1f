"""Masks on a CT series' grid to DICOM Segmentation objects (PS3.3 A.51, C.8.20) and back, with highdicom.

The writer and the reader are symmetric: :func:`write_segmentation` takes a mask in the layout
:class:`radtl.transforms.LoadCTVolume` gives the series, ``(X, Y, Z)`` = (column, row, slice in
the order along the slice normal), and :func:`read_segmentation` returns the same array from the
file. Each frame references its source instance (Derivation Image and Referenced Series, PS3.3
C.7.6.1 / C.8.20.2), so the SEG lands in the source's study, Frame of Reference and patient:
highdicom copies the Patient, General Study and Patient Study modules from the source, which the
standard requires of a derived object in the same study (PS3.3 A.51.3); the source's scanner and
institution, which highdicom would also record as contributing equipment, are removed.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import highdicom as hd
import numpy as np
from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code
from pydicom.uid import ExplicitVRLittleEndian

import radtl
from radtl.dicom.series import CTSeries, SeriesError, read_series_headers

__all__ = [
    "LUNG_NODULE",
    "Algorithm",
    "Segment",
    "SegmentationSourceError",
    "read_segmentation",
    "segmentation",
    "write_segmentation",
]

logger = logging.getLogger(__name__)


class SegmentationSourceError(SeriesError):
    """A mask or a SEG that does not fit the source series it is meant for."""


@dataclass(frozen=True)
class Segment:
    """What a segment is, coded as the Segment Description Macro requires (PS3.3 C.8.20.2, CID 7150/7151).

    Args:
        label: Segment Label, for people.
        category: Segmented Property Category (CID 7150).
        property_type: Segmented Property Type (CID 7151).
        anatomic_region: Anatomic Region where it lies (CID 4), or None.
    """

    label: str
    category: Code
    property_type: Code
    anatomic_region: Code | None = None


#: A lung nodule as SNOMED CT codes it: a morphologically abnormal structure (49755003) of type
#: nodule (27925004) in the lung (39607008), as the LIDC-IDRI SEG conversions code their nodules.
LUNG_NODULE = Segment("Lung nodule", codes.SCT.MorphologicallyAbnormalStructure, codes.SCT.Nodule, codes.SCT.Lung)


@dataclass(frozen=True)
class Algorithm:
    """The model that made the segmentation (Algorithm Identification Sequence, PS3.3 C.8.20.2).

    Args:
        name: Algorithm Name, e.g. the bundle's name.
        version: Algorithm Version, e.g. the bundle's version.
        parameters: Algorithm Parameters (threshold, checkpoint...), written as ``key=value``.
    """

    name: str
    version: str
    parameters: dict[str, str] = field(default_factory=dict)

    def identification(self) -> hd.AlgorithmIdentificationSequence:
        return hd.AlgorithmIdentificationSequence(
            name=self.name,
            family=codes.DCM.ArtificialIntelligence,
            version=self.version,
            source="radtl",
            parameters={k: str(v) for k, v in self.parameters.items()} or None,
        )


def _source_series(source: CTSeries | str | os.PathLike) -> CTSeries:
    return source if isinstance(source, CTSeries) else read_series_headers(source, modality=None)


def _frames(mask: np.ndarray, series: CTSeries) -> np.ndarray:
    """``(X, Y, Z)`` (or ``(1, X, Y, Z)``) to highdicom's ``(frames, rows, columns)``, one frame per source."""
    mask = np.asarray(mask)
    if mask.ndim == 4 and mask.shape[0] == 1:
        mask = mask[0]
    slices, rows, columns = series.shape
    if mask.shape != (columns, rows, slices):
        raise SegmentationSourceError(
            f"mask shape {mask.shape} is not the series' grid (X, Y, Z) = {(columns, rows, slices)}; "
            "invert any spatial transform before writing"
        )
    return np.ascontiguousarray(mask.transpose(2, 1, 0))


def segmentation(
    mask: np.ndarray,
    source: CTSeries | str | os.PathLike,
    algorithm: Algorithm | None,
    segment: Segment = LUNG_NODULE,
    fractional: bool = False,
    series_number: int = 900,
    series_description: str | None = None,
) -> hd.seg.Segmentation:
    """Build the DICOM Segmentation of ``mask`` over the series it was predicted on.

    Args:
        mask: ``(X, Y, Z)`` on the series' grid: 0/1 (BINARY) or probabilities in [0, 1] (FRACTIONAL).
        source: the series (its folder, or the :class:`CTSeries` read from it).
        algorithm: the model, recorded as Segment Algorithm Type AUTOMATIC with its identification;
            None for a person's label (MANUAL, no Algorithm Identification, PS3.3 C.8.20.2).
        segment: what the mask segments (default: lung nodule).
        fractional: write Segmentation Type FRACTIONAL with Fractional Type PROBABILITY (C.8.20.2.3).
        series_number: Series Number of the new series.
        series_description: Series Description (default: the algorithm's name and version).

    Raises:
        SegmentationSourceError: a mask that is not on the series' grid, or out of range.
    """
    series = _source_series(source)
    frames = _frames(mask, series)
    if fractional:
        frames = frames.astype(np.float32)
        if frames.size and (frames.min() < 0 or frames.max() > 1):
            raise SegmentationSourceError(f"FRACTIONAL needs probabilities in [0, 1], got {frames.min()}..{frames.max()}")
    else:
        if not np.isin(frames, (0, 1)).all():
            raise SegmentationSourceError("BINARY needs a 0/1 mask; threshold probabilities first, or write FRACTIONAL")
        frames = frames.astype(np.uint8)
    made_by = f"{algorithm.name} {algorithm.version}" if algorithm else "manual annotation"
    description = hd.seg.SegmentDescription(
        segment_number=1,
        segment_label=segment.label,
        segmented_property_category=segment.category,
        segmented_property_type=segment.property_type,
        algorithm_type=(
            hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC if algorithm else hd.seg.SegmentAlgorithmTypeValues.MANUAL
        ),
        algorithm_identification=algorithm.identification() if algorithm else None,
        anatomic_regions=[segment.anatomic_region] if segment.anatomic_region else None,
    )
    seg = hd.seg.Segmentation(
        source_images=list(series.datasets),
        pixel_array=frames,
        segmentation_type=(
            hd.seg.SegmentationTypeValues.FRACTIONAL if fractional else hd.seg.SegmentationTypeValues.BINARY
        ),
        segment_descriptions=[description],
        series_instance_uid=hd.UID(),
        series_number=series_number,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="radtl",
        manufacturer_model_name=algorithm.name if algorithm else "radtl",
        software_versions=f"radtl {radtl.__version__}",
        device_serial_number="0",
        series_description=(series_description or made_by)[:64],
        content_label="SEGMENTATION",
        content_description=f"{segment.label} by {made_by}"[:64],
        transfer_syntax_uid=ExplicitVRLittleEndian,
        # every frame kept when nothing was found: an empty SEG is a valid, explicit "no nodule"
        omit_empty_frames=bool(frames.any()),
    )
    _drop_source_equipment(seg)
    return seg


#: Purpose of Reference "Acquisition Equipment" (DCM 109101), PS3.16 CID 7005.
ACQUISITION_EQUIPMENT = "109101"


def _drop_source_equipment(seg: hd.seg.Segmentation) -> None:
    """Remove the source's scanner from Contributing Equipment Sequence (PS3.3 C.12.1, Type 3).

    highdicom records the acquisition equipment of the source images there: manufacturer,
    institution name and address, station and device serial number, which PS3.15 Annex E lists
    as identifying. The SEG needs none of it, so it does not carry it.
    """
    kept = [
        item
        for item in seg.get("ContributingEquipmentSequence", [])
        if not any(code.CodeValue == ACQUISITION_EQUIPMENT for code in item.get("PurposeOfReferenceCodeSequence", []))
    ]
    if kept:
        seg.ContributingEquipmentSequence = kept
    elif "ContributingEquipmentSequence" in seg:
        del seg.ContributingEquipmentSequence


def write_segmentation(
    path: str | os.PathLike,
    mask: np.ndarray,
    source: CTSeries | str | os.PathLike,
    algorithm: Algorithm | None,
    segment: Segment = LUNG_NODULE,
    fractional: bool = False,
    **kwargs,
) -> Path:
    """Write the DICOM Segmentation of ``mask`` (see :func:`segmentation`) to ``path``; returns the path."""
    seg = segmentation(mask, source, algorithm, segment, fractional, **kwargs)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    seg.save_as(temporary, enforce_file_format=True)
    os.replace(temporary, path)  # a reader never sees half a SEG
    found = "nothing found" if not np.asarray(mask).any() else f"{int((np.asarray(mask) > 0).sum())} voxel(s)"
    logger.info("wrote %s (%s, %s, %d frame(s))", path, seg.SegmentationType, found, int(seg.NumberOfFrames))
    return path


def read_segmentation(
    path: str | os.PathLike, source: CTSeries | str | os.PathLike, segment_number: int = 1
) -> np.ndarray:
    """Read a SEG back onto its source series' grid: ``(X, Y, Z)``, uint8 for BINARY, float32 for FRACTIONAL.

    Raises:
        SegmentationSourceError: the SEG references another series, or instances the source lacks.
    """
    seg = hd.seg.segread(path)
    series = _source_series(source)
    referenced = {str(item.SeriesInstanceUID) for item in seg.ReferencedSeriesSequence}
    if series.series_instance_uid not in referenced:
        raise SegmentationSourceError(
            f"{path} segments series {', '.join(sorted(referenced))}, not {series.series_instance_uid}"
        )
    uids = [str(ds.SOPInstanceUID) for ds in series.datasets]
    missing = sorted({uid for _, _, uid in seg.get_source_image_uids()} - set(uids))
    if missing:
        raise SegmentationSourceError(
            f"{path} references {len(missing)} instance(s) not in the source series, e.g. {missing[0]}"
        )
    fractional = seg.SegmentationType == "FRACTIONAL"
    frames = seg.get_pixels_by_source_instance(
        source_sop_instance_uids=uids,
        segment_numbers=[segment_number],
        combine_segments=not fractional,
        rescale_fractional=True,
        dtype=np.float32 if fractional else np.uint8,
    )
    if frames.ndim == 4:
        frames = frames[..., 0]
    return np.ascontiguousarray(frames.transpose(2, 1, 0))

