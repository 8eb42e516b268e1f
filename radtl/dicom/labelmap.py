"""Label maps (NIfTI, NRRD) on a series' grid to a multi-segment DICOM-SEG and back: ``radtl seg``.

A label map holds one whole number per voxel: 0 the background, each other value a segment. It becomes a
SEG (PS3.3 A.51) with one segment per value, numbered 1..N in the order of the values, each segment recording
its value in its Tracking ID (:func:`radtl.dicom.seg.tracking_id`), so :func:`seg_to_label_map` gives back
the same values voxel for voxel, without a labels file. What each value is (its label and SNOMED CT codes)
comes from a labels file (:mod:`radtl.dicom.segment_codes`).

**The grid is checked in physical space.** A series' voxel-to-patient affine is DICOM's LPS frame (PS3.3
C.7.6.2.1.1, :attr:`radtl.dicom.series.CTSeries.affine`); a NIfTI affine is RAS (NIfTI-1 ``qform``/``sform``),
so its first two rows change sign; ITK reads NRRD into LPS whatever its ``space``. A mask stored with its
axes in another order or flipped (dcm2niix flips the rows: TotalSegmentator's ``example_seg_dicom.nii.gz``
is LAS) but on the same physical grid is reoriented onto the series' axes; a mask on another grid (spacing,
origin, size or orientation) is refused with what differs, in mm. Positions must agree within
:data:`GRID_TOLERANCE` of a voxel.

NIfTI is read with nibabel; NRRD with ITK, a core dependency of radtl (so an NRRD mask needs no extra
package) whose NRRD reader turns every ``space`` (``right-anterior-superior``, ``left-posterior-superior``,
...) and ``space directions`` into one LPS direction matrix, the frame DICOM uses.
"""

from __future__ import annotations

import gzip
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from radtl.atomic import write_bytes_atomic
from radtl.dicom.seg import (
    Algorithm,
    Segment,
    SegmentationSourceError,
    SegmentRecord,
    read_segment_map,
    require_references,
    write_segmentation,
)
from radtl.dicom.segment_codes import generic_segment, read_labels
from radtl.dicom.series import CTSeries, read_series_headers
from radtl.errors import RadtlError

__all__ = [
    "GRID_TOLERANCE",
    "RAS_FROM_LPS",
    "GridMismatchError",
    "LabelMapError",
    "LabelMapImage",
    "label_map_to_seg",
    "on_series_grid",
    "read_label_map",
    "seg_to_label_map",
    "segment_values",
    "write_label_map",
]

logger = logging.getLogger(__name__)

#: Voxel centres of the mask and of the series may differ by at most this fraction of a voxel along each axis.
GRID_TOLERANCE = 0.01
#: Direction cosines of the mask's and the series' axes may differ by at most this.
DIRECTION_TOLERANCE = 1e-3
#: DICOM's patient frame (LPS) to NIfTI's (RAS): the first two axes change sign (and back: it is its own inverse).
RAS_FROM_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])
NIFTI_SUFFIXES = (".nii", ".nii.gz")
NRRD_SUFFIXES = (".nrrd", ".nhdr")


class LabelMapError(RadtlError, ValueError):
    """A file that is not a label map radtl can read or write: its format, its values or its dimensions."""


class GridMismatchError(SegmentationSourceError):
    """A label map that is not on the series' grid in physical space."""


@dataclass(frozen=True)
class LabelMapImage:
    """A label map as stored: its array in the file's axis order and where its voxels are.

    Args:
        array: the values, 3-D, in the file's ``(i, j, k)`` order.
        affine: 4x4 from voxel index ``(i, j, k)`` to patient coordinates in mm, LPS (DICOM's frame).
        path: the file it was read from.
    """

    array: np.ndarray
    affine: np.ndarray
    path: Path


def _suffix(path: Path) -> str:
    name = path.name.lower()
    return next((suffix for suffix in (*NIFTI_SUFFIXES, *NRRD_SUFFIXES) if name.endswith(suffix)), "")


def read_label_map(path: str | os.PathLike) -> LabelMapImage:
    """Read a NIfTI (``.nii``, ``.nii.gz``; nibabel) or NRRD (``.nrrd``, ``.nhdr``; ITK) label map.

    Raises:
        LabelMapError: another format, not 3-D (trailing axes of size 1 are dropped), or values that are
            negative or not whole numbers.
        FileNotFoundError: no such file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(2, "no such label map", str(path))
    suffix = _suffix(path)
    if suffix in NIFTI_SUFFIXES:
        import nibabel as nib

        image = nib.load(path)
        array, affine = np.asanyarray(image.dataobj), RAS_FROM_LPS @ image.affine
    elif suffix in NRRD_SUFFIXES:
        import itk

        image = itk.imread(str(path))
        array = itk.array_from_image(image).transpose()  # ITK's numpy view is (k, j, i)
        affine = np.eye(4)
        affine[:3, :3] = itk.array_from_matrix(image.GetDirection()) @ np.diag(np.asarray(image.GetSpacing(), float))
        affine[:3, 3] = np.asarray(image.GetOrigin(), float)
    else:
        raise LabelMapError(f"{path}: not a label map radtl reads; give a NIfTI (.nii, .nii.gz) or NRRD (.nrrd) file")
    while array.ndim > 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim != 3:
        raise LabelMapError(f"{path}: a label map is 3-D, this one has shape {array.shape}")
    return LabelMapImage(_whole_numbers(np.asarray(array), path), np.asarray(affine, float), path)


def _whole_numbers(array: np.ndarray, path: Path) -> np.ndarray:
    if array.dtype.kind == "b":
        return array.astype(np.uint8)
    if array.dtype.kind == "f":
        if not np.isfinite(array).all() or not np.array_equal(array, np.round(array)):
            raise LabelMapError(
                f"{path}: values that are not whole numbers; a label map holds one integer per voxel "
                "(a probability map is one segment: threshold it, or write it with radtl.dicom.seg)"
            )
        array = array.astype(np.int64)
    elif array.dtype.kind not in "iu":
        raise LabelMapError(f"{path}: values of type {array.dtype}; a label map holds integers")
    if array.size and array.min() < 0:
        raise LabelMapError(
            f"{path}: negative value {array.min()}; a label map holds 0 (background) and positive values"
        )
    return array


def _axis_names(affine: np.ndarray) -> str:
    """The patient direction each voxel axis runs toward, in LPS letters (``LPS``, ``LAS``, ...)."""
    letters = (("R", "L"), ("A", "P"), ("I", "S"))
    names = []
    for column in affine[:3, :3].T:
        axis = int(np.argmax(np.abs(column)))
        names.append(letters[axis][int(column[axis] > 0)])
    return "".join(names)


def on_series_grid(image: LabelMapImage, series: CTSeries) -> np.ndarray:
    """The label map on the series' voxel grid, ``(X, Y, Z)`` = (column, row, slice), reoriented if its axes
    are stored in another order or flipped.

    Raises:
        GridMismatchError: the label map lies on another grid: its orientation, spacing, origin or size
            differ from the series' (each difference named, in mm, in the series' axis order).
    """
    from nibabel.orientations import apply_orientation, inv_ornt_aff, io_orientation, ornt_transform

    slices, rows, columns = series.shape
    grid = (columns, rows, slices)
    transform = ornt_transform(io_orientation(image.affine), io_orientation(series.affine))
    array = apply_orientation(image.array, transform)
    affine = image.affine @ inv_ornt_aff(transform, image.array.shape)
    spacing, series_spacing = np.linalg.norm(affine[:3, :3], axis=0), np.asarray(series.spacing)
    problems = []
    directions = affine[:3, :3] / spacing
    series_directions = series.affine[:3, :3] / series_spacing
    if np.abs(directions - series_directions).max() > DIRECTION_TOLERANCE:
        problems.append(
            f"axes {_axis_names(image.affine)} with direction cosines {np.round(directions.T, 4).tolist()} vs the "
            f"series' {np.round(series_directions.T, 4).tolist()}"
        )
    if np.any(np.abs(spacing - series_spacing) * np.maximum(np.asarray(grid) - 1, 1) > GRID_TOLERANCE * series_spacing):
        problems.append(f"spacing {_mm(spacing)} mm vs the series' {_mm(series_spacing)} mm")
    offset = affine[:3, 3] - series.affine[:3, 3]
    if np.any(np.abs(series_directions.T @ offset) > GRID_TOLERANCE * series_spacing):
        problems.append(
            f"origin {_mm(affine[:3, 3])} vs the series' {_mm(series.affine[:3, 3])} mm (LPS), "
            f"offset {_mm(offset, signed=True)} mm"
        )
    if array.shape != grid:
        problems.append(f"size {array.shape} vs the series' {grid}")
    if problems:
        raise GridMismatchError(
            f"{image.path} is not on the grid of series {series.series_instance_uid or Path(series.paths[0]).parent} "
            f"(axes in the series' order: column, row, slice): {'; '.join(problems)}; resample the label map onto "
            "the series (nearest neighbour) or give the series it was made on"
        )
    return np.ascontiguousarray(array)


def _mm(vector: np.ndarray, signed: bool = False) -> str:
    form = "{:+.3f}" if signed else "{:.3f}"
    return "(" + ", ".join(form.format(float(v)) for v in vector) + ")"


def segment_values(array: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The non-zero values of a label map, ascending, and the map with each replaced by its segment number
    (1 for the smallest value, N for the largest; 0 stays 0)."""
    values = np.unique(array)
    values = values[values != 0]
    numbers = np.searchsorted(values, array) + 1
    numbers[array == 0] = 0
    return values, numbers.astype(np.uint8 if len(values) < 256 else np.uint16)


@dataclass(frozen=True)
class Conversion:
    """What ``radtl seg`` wrote: the file, the series it is on, and each segment's label-map value and label."""

    path: Path
    series: CTSeries
    values: tuple[int, ...]
    labels: tuple[str, ...]
    shape: tuple[int, int, int]


def label_map_to_seg(
    series_dir: str | os.PathLike | CTSeries,
    mask: str | os.PathLike,
    out: str | os.PathLike,
    labels: str | os.PathLike | None = None,
    fractional: bool = False,
    algorithm: Algorithm | None = None,
) -> Conversion:
    """Write a label map on a series' grid as a multi-segment DICOM-SEG: ``radtl seg from-mask``.

    Args:
        series_dir: the folder of the series the label map was drawn on (CT, MR, any cross-sectional series
            with one frame per instance), or the series read with :func:`read_series_headers`.
        mask: the label map (NIfTI or NRRD, see :func:`read_label_map`).
        out: the SEG file to write.
        labels: a labels file, or the name of a table radtl ships (:func:`radtl.dicom.segment_codes.read_labels`);
            a value it does not name, or every value without one, becomes a generic segment "label <value>".
        fractional: write Segmentation Type FRACTIONAL (each segment 0 or 1) rather than BINARY.
        algorithm: the model that made the label map (AUTOMATIC); None records a person's label (MANUAL).

    Raises:
        GridMismatchError: the label map is not on the series' grid.
        SegmentationSourceError: the series has empty UIDs a SEG must reference, or the map holds no segment.
        LabelMapError, LabelsFileError: an unreadable label map or labels file.
    """
    series = series_dir if isinstance(series_dir, CTSeries) else read_series_headers(series_dir, modality=None)
    require_references(series)  # before the label map is read: nothing can be written without them
    image = read_label_map(mask)
    array = on_series_grid(image, series)
    values, numbers = segment_values(array)
    if not len(values):
        raise SegmentationSourceError(f"{mask}: every voxel is 0 (background); a SEG needs at least one segment")
    table = read_labels(labels) if labels is not None else {}
    unnamed = [int(v) for v in values if int(v) not in table]
    if table and unnamed:
        logger.warning("%s names no segment for value(s) %s: written as generic segments 'label <value>'",
                       labels, ", ".join(map(str, unnamed[:10])) + (" ..." if len(unnamed) > 10 else ""))
    segments = [table.get(int(value)) or generic_segment(int(value)) for value in values]
    path = write_segmentation(
        out, numbers, series, algorithm, segments, fractional,
        values=[int(v) for v in values],
        series_description=f"{Path(mask).name} as DICOM-SEG"[:64],
    )
    return Conversion(Path(path), series, tuple(int(v) for v in values), tuple(s.label for s in segments), array.shape)


def _code_key(segment: Segment) -> tuple:
    codes = (segment.category, segment.property_type, segment.anatomic_region, segment.property_type_modifier,
             segment.anatomic_region_modifier)
    return tuple(None if code is None else (code.scheme_designator, code.value) for code in codes)


def _value_of(record: SegmentRecord, table: dict[int, Segment]) -> int | None:
    """The value of the labels file's entry with the segment's codes (and label, when several have them), or None."""
    matches = [value for value, entry in table.items() if _code_key(entry) == _code_key(record.segment)]
    if len(matches) > 1:
        matches = [value for value in matches if table[value].label == record.segment.label]
    return matches[0] if len(matches) == 1 else None


def seg_to_label_map(
    seg: str | os.PathLike,
    series_dir: str | os.PathLike | CTSeries,
    out: str | os.PathLike,
    labels: str | os.PathLike | None = None,
) -> Conversion:
    """Write a SEG back as a NIfTI label map on its series' grid: ``radtl seg to-mask``.

    Each segment's voxels take its label-map value: with a labels file, the value of the entry whose codes
    (and label, when several share them) match the segment's; otherwise the value the segment records in its
    Tracking ID (a SEG ``radtl seg from-mask`` wrote), else its segment number.

    Args:
        seg: the DICOM-SEG file.
        series_dir: the folder of the series it segments (or the series read with :func:`read_series_headers`).
        out: the label map to write, ``.nii`` or ``.nii.gz``, with the series' affine in RAS.
        labels: a labels file or a table's name (:func:`radtl.dicom.segment_codes.read_labels`).

    Raises:
        SegmentationSourceError: the SEG segments another series, its segments overlap, or two segments
            would get one value.
        LabelMapError: an output that is not NIfTI.
    """
    series = series_dir if isinstance(series_dir, CTSeries) else read_series_headers(series_dir, modality=None)
    if _suffix(Path(out)) not in NIFTI_SUFFIXES:
        raise LabelMapError(f"{out}: to-mask writes NIfTI; give a .nii.gz (or .nii) output")
    numbers, records = read_segment_map(seg, series)
    table = read_labels(labels) if labels is not None else {}
    matched = [_value_of(record, table) for record in records] if table else [None] * len(records)
    unmatched = [record for record, value in zip(records, matched) if value is None]
    if table and unmatched:
        logger.warning("%s: no single entry has the codes of %d segment(s) (%s); they keep the value they record, "
                       "else their segment number", labels, len(unmatched),
                       ", ".join(r.segment.label for r in unmatched[:5]) + (" ..." if len(unmatched) > 5 else ""))
    values = [value or record.value or record.number for record, value in zip(records, matched)]
    if len(set(values)) != len(values):
        repeated = sorted({v for v in values if values.count(v) > 1})
        raise SegmentationSourceError(f"{seg}: several segments would take value(s) {repeated}; check the labels file")
    lookup = np.zeros(max((r.number for r in records), default=0) + 1, np.int64)
    for record, value in zip(records, values):
        lookup[record.number] = value
    array = lookup[numbers]
    path = write_label_map(out, array, series)
    return Conversion(path, series, tuple(values), tuple(r.segment.label for r in records), array.shape)


def write_label_map(path: str | os.PathLike, array: np.ndarray, series: CTSeries) -> Path:
    """Write ``(X, Y, Z)`` on the series' grid as NIfTI (gzipped for ``.nii.gz``) with the series' affine in RAS,
    as both its qform and sform (code 1, scanner), in the smallest unsigned type that holds its values."""
    import nibabel as nib

    largest = int(array.max()) if array.size else 0
    dtype = np.uint8 if largest < 2**8 else np.uint16 if largest < 2**16 else np.uint32
    affine = RAS_FROM_LPS @ series.affine
    image = nib.Nifti1Image(np.asarray(array, dtype=dtype), affine)
    image.set_qform(affine, code=1)
    image.set_sform(affine, code=1)
    data = image.to_bytes()
    return write_bytes_atomic(path, gzip.compress(data, compresslevel=6) if str(path).lower().endswith(".gz") else data)
