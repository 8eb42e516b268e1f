"""A folder of CT images as one volume in Hounsfield units, checked as a series.

A series is the set of instances sharing a Series Instance UID (PS3.3 C.7.3.1): single-frame images (CT Image
Storage, one slice per file), or one multi-frame instance (Enhanced CT Image Storage, PS3.3 A.38; Legacy Converted
Enhanced CT Image Storage, A.70; likewise Enhanced MR) whose frames are the slices. Its slices are ordered by their
position along the slice normal, the cross product of the two Image Orientation (Patient) direction cosines applied
to Image Position (Patient) (PS3.3 C.7.6.2.1.1), never by Instance Number, frame number or file name, which archives
do not keep reliable. A multi-frame instance gives each frame's position, orientation, pixel spacing and rescale in
its Per-Frame Functional Groups, or once for all frames in its Shared Functional Groups (PS3.3 C.7.6.16: Plane
Position (Patient) C.7.6.16.2.3, Plane Orientation (Patient) C.7.6.16.2.4, Pixel Measures C.7.6.16.2.1, Pixel Value
Transformation C.7.6.16.2.9). Stored values become HU through the Modality LUT stage of each slice (PS3.3 C.11.1,
:func:`radtl.dicom.lut.apply_modality_lut`), so an enhanced instance gives the same volume and affine as the
single-frame series it was converted from.

Before anything is computed the folder must be one series, of the expected modality, with one
orientation, one matrix size and evenly spaced slices; anything else raises a
:class:`SeriesError` naming the problem, because a volume stacked from such a folder would be
wrong without looking wrong.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset

from radtl.dicom.errors import DicomConversionError
from radtl.dicom.io import decode_frames, read_dataset
from radtl.dicom.lut import apply_modality_lut
from radtl.dicom.modules import functional_group_item, grayscale_pipeline
from radtl.errors import RadtlError

__all__ = [
    "CTSeries",
    "MissingSlicesError",
    "MixedGeometryError",
    "MixedSeriesError",
    "SeriesError",
    "UnexpectedModalityError",
    "read_series",
    "read_series_headers",
    "series_files",
]

#: Direction cosines (and pixel spacings) that differ by less than this are the same.
ORIENTATION_TOLERANCE = 1e-4
#: A gap wider than this many median slice spacings means slices are missing.
GAP_TOLERANCE = 1.5
#: Files a DICOM export may hold beside its images that are not part of any series.
NON_SERIES_FILES = {"DICOMDIR", "LOCKFILE", "VERSION"}


class SeriesError(RadtlError, ValueError):
    """A folder that is not one complete, consistent image series."""


class MixedSeriesError(SeriesError):
    """The folder holds instances of more than one series (or files that are not DICOM)."""


class UnexpectedModalityError(SeriesError):
    """The series is not of the modality the model was trained on (e.g. MR given to a CT model)."""


class MixedGeometryError(SeriesError):
    """Slices with different orientations, matrix sizes or pixel spacings, or stacked at one position."""


class MissingSlicesError(SeriesError):
    """A gap between consecutive slice positions wider than the series' slice spacing."""


@dataclass(frozen=True)
class CTSeries:
    """A series' sorted instances and, when read with pixels, its volume in modality units.

    Args:
        paths: the instances' files, sorted along the slice normal (one file for a multi-frame instance).
        datasets: the instances, in the same order (headers only when read without pixels); for a
            multi-frame instance, that one instance, as the source a DICOM-SEG references.
        affine: 4x4 matrix from voxel index ``(column, row, slice)`` to patient coordinates in
            mm, DICOM's LPS frame (PS3.3 C.7.6.2.1.1).
        hu: ``(slices, rows, columns)`` float32 modality values (HU for CT), or None.
        frames: for a multi-frame instance, the Frame Number (1-based, PS3.3 C.7.6.6) of each slice in the
            order along the normal; None for single-frame instances.
    """

    paths: tuple[Path, ...]
    datasets: tuple[Dataset, ...]
    affine: np.ndarray
    hu: np.ndarray | None = None
    frames: tuple[int, ...] | None = None

    @property
    def series_instance_uid(self) -> str:
        return str(self.datasets[0].SeriesInstanceUID)

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(slices, rows, columns)``."""
        first = self.datasets[0]
        slices = len(self.frames) if self.frames is not None else len(self.datasets)
        return slices, int(first.Rows), int(first.Columns)

    @property
    def multiframe(self) -> bool:
        """Whether the slices are the frames of one multi-frame instance (Enhanced CT)."""
        return self.frames is not None

    def slice_source(self, index: int) -> tuple[Path, int]:
        """Where slice ``index`` (in the order along the normal) is stored: its file and 0-based frame index."""
        if self.frames is None:
            return self.paths[index], 0
        return self.paths[0], self.frames[index] - 1

    def in_stored_order(self, slices: np.ndarray) -> np.ndarray:
        """A slice-first array in the order along the normal, put in the order the slices are stored.

        For a multi-frame instance that is its frame order, the order in which highdicom pairs a
        segmentation's frames with the source's frames; single-frame slices are returned as they are.
        """
        if self.frames is None:
            return slices
        return slices[np.argsort(self.frames, kind="stable")]

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Voxel size in mm along ``(column, row, slice)`` index axes."""
        return tuple(float(s) for s in np.linalg.norm(self.affine[:3, :3], axis=0))


def series_files(directory: str | os.PathLike) -> list[Path]:
    """The files directly in ``directory`` that may be instances (any name, no suffix needed; hidden files
    such as ``.DS_Store`` and a DICOMDIR are not instances)."""
    folder = Path(directory)
    if not folder.is_dir():
        raise SeriesError(f"{folder}: not a folder (a series is read from the folder holding its instances)")
    files = sorted(
        p for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.name.upper() not in NON_SERIES_FILES
    )
    if not files:
        raise SeriesError(f"{folder}: no files")
    return files


def read_series_headers(directory: str | os.PathLike, modality: str | None = "CT") -> CTSeries:
    """Check that ``directory`` is one complete series and sort it, reading headers only."""
    return _sorted_series(directory, modality, with_pixels=False)


def read_series(directory: str | os.PathLike, modality: str | None = "CT") -> CTSeries:
    """Read the series in ``directory`` as a volume in modality units (HU for CT).

    Args:
        directory: the folder holding the series' instances, and nothing else.
        modality: the Modality (0008,0060) required, or None to accept any.

    Raises:
        SeriesError: a mixed, incomplete or inconsistent folder (see the subclasses).
        DicomConversionError: an instance whose pixel data cannot be decoded.
    """
    series = _sorted_series(directory, modality, with_pixels=True)
    if series.frames is not None:
        path, ds = series.paths[0], series.datasets[0]
        try:
            stored = decode_frames(ds)
        except DicomConversionError as error:
            raise type(error)(f"{path.name}: {error}") from error
        slices = [apply_modality_lut(stored[number - 1], grayscale_pipeline(ds, number - 1).modality)
                  for number in series.frames]
    else:
        slices = []
        for path, ds in zip(series.paths, series.datasets):
            try:
                stored = decode_frames(ds)[0]
            except DicomConversionError as error:
                raise type(error)(f"{path.name}: {error}") from error
            slices.append(apply_modality_lut(stored, grayscale_pipeline(ds).modality))
    hu = np.stack(slices).astype(np.float32, copy=False)
    return CTSeries(series.paths, series.datasets, series.affine, hu, series.frames)


def _sorted_series(directory: str | os.PathLike, modality: str | None, with_pixels: bool) -> CTSeries:
    paths = series_files(directory)
    datasets = []
    unreadable = []
    for path in paths:
        try:
            datasets.append(read_dataset(path, stop_before_pixels=not with_pixels))
        except DicomConversionError as error:
            unreadable.append(f"{path.name} ({error.reason})")
    if unreadable:
        raise MixedSeriesError(f"{directory}: {len(unreadable)} file(s) are not DICOM instances: {', '.join(unreadable[:5])}")
    _require_one_series(directory, datasets)
    _require_modality(datasets[0], modality)
    multiframe = [p.name for p, ds in zip(paths, datasets) if _is_multiframe(ds)]
    if multiframe and len(datasets) > 1:
        raise MixedGeometryError(
            f"{directory}: {len(datasets)} instances, {len(multiframe)} of them multi-frame ({', '.join(multiframe[:3])}); "
            "a series folder holds single-frame slices or one multi-frame instance"
        )
    planes = _frame_planes(directory, paths[0], datasets[0]) if multiframe else _instance_planes(directory, datasets)
    row_cosine, column_cosine = _common_orientation(directory, planes)
    normal = np.cross(row_cosine, column_cosine)
    positions = [plane.position @ normal for plane in planes]
    order = np.argsort(positions, kind="stable")
    first = planes[order[0]]
    slice_spacing = _slice_spacing(directory, np.sort(positions), first)
    row_spacing, column_spacing = first.pixel_spacing
    affine = np.eye(4)
    affine[:3, 0] = row_cosine * column_spacing  # along a row: increasing column index
    affine[:3, 1] = column_cosine * row_spacing  # down a column: increasing row index
    affine[:3, 2] = normal * slice_spacing
    affine[:3, 3] = first.position
    if multiframe:
        return CTSeries(tuple(paths), tuple(datasets), affine, frames=tuple(int(i) + 1 for i in order))
    return CTSeries(tuple(paths[i] for i in order), tuple(datasets[i] for i in order), affine)


@dataclass(frozen=True)
class _Plane:
    """Where one slice lies: Image Orientation and Position (Patient), Pixel Spacing, matrix size and, for a
    series of one slice, the spacing between slices its header gives."""

    orientation: np.ndarray
    position: np.ndarray
    pixel_spacing: tuple[float, float]
    rows: int
    columns: int
    thickness: float | None


def _is_multiframe(ds: Dataset) -> bool:
    """A multi-frame instance, or one whose geometry is in functional groups (an Enhanced image of one frame)."""
    return int(ds.get("NumberOfFrames") or 1) > 1 or "PerFrameFunctionalGroupsSequence" in ds


def _thickness(source: Dataset) -> float | None:
    value = source.get("SpacingBetweenSlices") or source.get("SliceThickness")
    return float(value) if value else None


def _instance_planes(directory: str | os.PathLike, datasets: Sequence[Dataset]) -> list[_Plane]:
    """Each single-frame instance's plane, from the Image Plane Module (PS3.3 C.7.6.2)."""
    for keyword in ("ImageOrientationPatient", "ImagePositionPatient", "PixelSpacing"):
        missing = sum(1 for ds in datasets if keyword not in ds)
        if missing:
            raise MixedGeometryError(f"{directory}: {missing} instance(s) without {keyword}; the slices cannot be placed")
    return [
        _Plane(_floats(ds.ImageOrientationPatient), _floats(ds.ImagePositionPatient), tuple(_floats(ds.PixelSpacing)),
               int(ds.Rows), int(ds.Columns), _thickness(ds))
        for ds in datasets
    ]


#: The functional group macros that place a frame (PS3.3 C.7.6.16.2), with the attribute each holds.
FRAME_GEOMETRY = {
    "PlaneOrientationSequence": "ImageOrientationPatient",
    "PlanePositionSequence": "ImagePositionPatient",
    "PixelMeasuresSequence": "PixelSpacing",
}


def _frame_planes(directory: str | os.PathLike, path: Path, ds: Dataset) -> list[_Plane]:
    """Each frame's plane of a multi-frame instance, from its Per-Frame or Shared Functional Groups (PS3.3 C.7.6.16)."""
    frames = int(ds.get("NumberOfFrames") or 1)
    per_frame = ds.get("PerFrameFunctionalGroupsSequence") or []
    if len(per_frame) not in (0, frames):
        raise MixedGeometryError(
            f"{directory}: {path.name} has {frames} frames but {len(per_frame)} Per-Frame Functional Groups items"
        )
    items = {macro: [functional_group_item(ds, frame, macro) for frame in range(frames)] for macro in FRAME_GEOMETRY}
    for macro, keyword in FRAME_GEOMETRY.items():
        missing = [frame + 1 for frame, item in enumerate(items[macro]) if item is None or keyword not in item]
        if missing:
            raise MixedGeometryError(
                f"{directory}: {path.name}: {len(missing)} of {frames} frame(s) (e.g. frame {missing[0]}) without "
                f"{keyword} in a {macro} functional group (PS3.3 C.7.6.16.2); the frames cannot be placed"
            )
    return [
        _Plane(
            _floats(items["PlaneOrientationSequence"][frame].ImageOrientationPatient),
            _floats(items["PlanePositionSequence"][frame].ImagePositionPatient),
            tuple(_floats(items["PixelMeasuresSequence"][frame].PixelSpacing)),
            int(ds.Rows),
            int(ds.Columns),
            _thickness(items["PixelMeasuresSequence"][frame]),
        )
        for frame in range(frames)
    ]


def _floats(values: object) -> np.ndarray:
    return np.asarray([float(v) for v in values])


def _require_one_series(directory: str | os.PathLike, datasets: Sequence[Dataset]) -> None:
    uids = Counter(str(ds.get("SeriesInstanceUID", "<no Series Instance UID>")) for ds in datasets)
    if len(uids) > 1:
        described = {}
        for ds in datasets:
            uid = str(ds.get("SeriesInstanceUID", "<no Series Instance UID>"))
            described.setdefault(uid, f"{ds.get('Modality', '?')} '{ds.get('SeriesDescription', '')}'")
        listing = "; ".join(f"{uid} ({described[uid]}, {count} file(s))" for uid, count in uids.most_common())
        raise MixedSeriesError(f"{directory}: {len(uids)} series in one folder, put each in its own: {listing}")


def _require_modality(ds: Dataset, modality: str | None) -> None:
    if modality is not None and str(ds.get("Modality", "")).upper() != modality.upper():
        raise UnexpectedModalityError(
            f"series {ds.get('SeriesInstanceUID')} is {ds.get('Modality', 'without Modality')} "
            f"('{ds.get('SeriesDescription', '')}'); a {modality} series is expected"
        )


def _common_orientation(directory: str | os.PathLike, planes: Sequence[_Plane]) -> tuple[np.ndarray, np.ndarray]:
    geometry = np.array([[*p.orientation, *p.pixel_spacing, p.rows, p.columns] for p in planes], float)
    spread = geometry.max(axis=0) - geometry.min(axis=0)
    if np.any(spread[:6] > ORIENTATION_TOLERANCE):
        kinds = sorted({tuple(np.round(g[:6], 3)) for g in geometry})
        raise MixedGeometryError(f"{directory}: {len(kinds)} different Image Orientation (Patient) values: {kinds[:3]}")
    if np.any(spread[6:] > ORIENTATION_TOLERANCE):
        kinds = sorted({tuple(g[6:]) for g in geometry})
        raise MixedGeometryError(f"{directory}: slices differ in Pixel Spacing or matrix size (spacing, rows, columns): {kinds[:3]}")
    row_cosine, column_cosine = geometry[0, :3], geometry[0, 3:6]
    return row_cosine / np.linalg.norm(row_cosine), column_cosine / np.linalg.norm(column_cosine)


def _slice_spacing(directory: str | os.PathLike, positions: np.ndarray, first: _Plane) -> float:
    if len(positions) == 1:
        return first.thickness or 1.0
    steps = np.diff(positions)
    if np.any(steps < ORIENTATION_TOLERANCE):
        index = int(np.argmin(steps))
        raise MixedGeometryError(f"{directory}: two slices at the same position ({positions[index]:.2f} mm along the normal)")
    spacing = float(np.median(steps))
    gaps = np.flatnonzero(steps > GAP_TOLERANCE * spacing)
    if gaps.size:
        described = [
            f"{positions[i]:.2f} to {positions[i + 1]:.2f} mm (about {round(steps[i] / spacing) - 1} slice(s))" for i in gaps[:3]
        ]
        raise MissingSlicesError(
            f"{directory}: slices missing, spacing is {spacing:.2f} mm but there are gaps at {'; '.join(described)}"
        )
    return spacing
