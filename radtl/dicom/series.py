"""A folder of single-frame CT images as one volume in Hounsfield units, checked as a series.

A series is the set of instances sharing a Series Instance UID (PS3.3 C.7.3.1). Its slices are
ordered by their position along the slice normal, the cross product of the two Image Orientation
(Patient) direction cosines applied to Image Position (Patient) (PS3.3 C.7.6.2.1.1), never by
Instance Number or file name, which archives do not keep reliable. Stored values become HU
through the Modality LUT stage (PS3.3 C.11.1, :func:`radtl.dicom.lut.apply_modality_lut`).

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
from radtl.dicom.modules import grayscale_pipeline
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
        paths: the instances' files, sorted along the slice normal.
        datasets: the instances, in the same order (headers only when read without pixels).
        affine: 4x4 matrix from voxel index ``(column, row, slice)`` to patient coordinates in
            mm, DICOM's LPS frame (PS3.3 C.7.6.2.1.1).
        hu: ``(slices, rows, columns)`` float32 modality values (HU for CT), or None.
    """

    paths: tuple[Path, ...]
    datasets: tuple[Dataset, ...]
    affine: np.ndarray
    hu: np.ndarray | None = None

    @property
    def series_instance_uid(self) -> str:
        return str(self.datasets[0].SeriesInstanceUID)

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(slices, rows, columns)``."""
        first = self.datasets[0]
        return len(self.datasets), int(first.Rows), int(first.Columns)

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
    slices = []
    for path, ds in zip(series.paths, series.datasets):
        try:
            stored = decode_frames(ds)[0]
        except DicomConversionError as error:
            raise type(error)(f"{path.name}: {error}") from error
        slices.append(apply_modality_lut(stored, grayscale_pipeline(ds).modality))
    hu = np.stack(slices).astype(np.float32, copy=False)
    return CTSeries(series.paths, series.datasets, series.affine, hu)


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
    multiframe = [p.name for p, ds in zip(paths, datasets) if int(ds.get("NumberOfFrames") or 1) > 1]
    if multiframe:
        raise MixedGeometryError(f"{directory}: multi-frame instances ({', '.join(multiframe[:3])}); one frame per file expected")
    row_cosine, column_cosine = _common_orientation(directory, datasets)
    normal = np.cross(row_cosine, column_cosine)
    positions = [_position(ds) @ normal for ds in datasets]
    order = np.argsort(positions, kind="stable")
    paths = [paths[i] for i in order]
    datasets = [datasets[i] for i in order]
    slice_spacing = _slice_spacing(directory, np.sort(positions), datasets[0])
    row_spacing, column_spacing = (float(v) for v in datasets[0].PixelSpacing)
    affine = np.eye(4)
    affine[:3, 0] = row_cosine * column_spacing  # along a row: increasing column index
    affine[:3, 1] = column_cosine * row_spacing  # down a column: increasing row index
    affine[:3, 2] = normal * slice_spacing
    affine[:3, 3] = _position(datasets[0])
    return CTSeries(tuple(paths), tuple(datasets), affine)


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


def _common_orientation(directory: str | os.PathLike, datasets: Sequence[Dataset]) -> tuple[np.ndarray, np.ndarray]:
    for keyword in ("ImageOrientationPatient", "ImagePositionPatient", "PixelSpacing"):
        missing = sum(1 for ds in datasets if keyword not in ds)
        if missing:
            raise MixedGeometryError(f"{directory}: {missing} instance(s) without {keyword}; the slices cannot be placed")
    geometry = np.array([[*ds.ImageOrientationPatient, *ds.PixelSpacing, ds.Rows, ds.Columns] for ds in datasets], float)
    spread = geometry.max(axis=0) - geometry.min(axis=0)
    if np.any(spread[:6] > ORIENTATION_TOLERANCE):
        kinds = sorted({tuple(np.round(g[:6], 3)) for g in geometry})
        raise MixedGeometryError(f"{directory}: {len(kinds)} different Image Orientation (Patient) values: {kinds[:3]}")
    if np.any(spread[6:] > ORIENTATION_TOLERANCE):
        kinds = sorted({tuple(g[6:]) for g in geometry})
        raise MixedGeometryError(f"{directory}: slices differ in Pixel Spacing or matrix size (spacing, rows, columns): {kinds[:3]}")
    row_cosine, column_cosine = geometry[0, :3], geometry[0, 3:6]
    return row_cosine / np.linalg.norm(row_cosine), column_cosine / np.linalg.norm(column_cosine)


def _position(ds: Dataset) -> np.ndarray:
    return np.asarray([float(v) for v in ds.ImagePositionPatient])


def _slice_spacing(directory: str | os.PathLike, positions: np.ndarray, first: Dataset) -> float:
    if len(positions) == 1:
        return float(first.get("SpacingBetweenSlices") or first.get("SliceThickness") or 1.0)
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
