"""Where the radtl app's images and labels live: a local folder, or a PACS over DICOMweb.

- :class:`FolderDatastore`: MONAI Label's local datastore (NIfTI/NRRD volumes, PNG/JPEG/DICOM
  radiographs, labels under ``labels/final``), which refuses a label that is not on its image's grid.
- :class:`PacsDatastore`: the studies stay in the PACS. A series is fetched by WADO-RS into the cache
  folder when a client opens it, as its DICOM instances (radtl reads the series itself). A final label
  submitted for it is checked against the series' grid, written as DICOM-SEG by
  :func:`radtl.dicom.seg.write_segmentation` (the writer ``radtl segment`` uses, Segment Algorithm
  Type MANUAL) and stored back with STOW-RS by :func:`radtl.dicom.pacs.send`. Labels in the PACS come
  back for training through :func:`radtl.dicom.seg.read_segmentation`.

A label the app cannot take is a :class:`LabelError`; :func:`http_errors` turns it, and every other
bad request, into an HTTP error with its message, so a client sees why and the server goes on serving.

What a client may write is bounded: an image id or label tag is a plain name (:data:`SAFE_NAME`) that resolves
inside the store, a series is named by its UID; an upload is at most the server's upload limit
(:func:`radtl.label.guard.max_upload_bytes`); a label's header (shape, bytes per voxel) is checked against its
image's grid before its data is decoded; an image is replaced or anything deleted only when the server was started
with ``--conf allow_overwrite true`` / ``--conf allow_delete true``.
"""

from __future__ import annotations

import logging
import math
import os
import re
import shutil
import tempfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

import nibabel as nib
import nrrd
import numpy as np
import pydicom
import requests
import torch
from fastapi import HTTPException
from monai.transforms import LoadImage
from monailabel.datastore.dicom import DICOMwebClientX, DICOMWebDatastore
from monailabel.datastore.local import DataModel, ImageLabelModel, LocalDatastore
from monailabel.interfaces.datastore import DefaultLabelTag
from monailabel.interfaces.exception import ImageNotFoundException, LabelNotFoundException, MONAILabelException
from PIL import Image

from radtl.bundle import SettingError
from radtl.dicom.connections import session_for
from radtl.dicom.errors import DicomConversionError
from radtl.dicom.io import DEFAULT_MAX_PIXEL_BYTES, check_dimensions, is_uid, read_dataset
from radtl.dicom.pacs import PacsError, fetch_series, send
from radtl.dicom.seg import LUNG_NODULE, Segment, read_segmentation, write_segmentation
from radtl.dicom.series import SeriesError, read_series_headers
from radtl.networks.transfer import CheckpointError
from radtl.transforms import LoadCTVolume
from radtl.transforms.io.array import LPS_TO_RAS

from .guard import max_upload_bytes
from .tasks import LabelTaskError, write_label

__all__ = [
    "SAFE_NAME",
    "FolderDatastore",
    "LabelError",
    "PacsDatastore",
    "check_image_budget",
    "check_upload_size",
    "checked_label",
    "declared_grid",
    "http_errors",
    "image_grid",
    "inside",
    "safe_name",
    "series_uid",
]

logger = logging.getLogger(__name__)

#: What the local datastore lists as images: MONAI Label's volume formats and radtl's radiograph formats.
IMAGE_EXTENSIONS = ("*.nii.gz", "*.nii", "*.nrrd", "*.mha", "*.png", "*.jpg", "*.jpeg", "*.dcm")
_AFFINE_TOLERANCE_MM = 1e-2
#: An image id or a label tag a client may name for writing: letters, digits, ``.``, ``_``, ``-``, no path.
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
#: The label formats whose header radtl reads before the data: NIfTI, NRRD, PNG, JPEG.
LABEL_EXTENSIONS = (".nii.gz", ".nii", ".nrrd", ".png", ".jpg", ".jpeg")
#: Bytes per voxel of NRRD's ``type`` field (NRRD0005 "type"), by the size its names share.
_NRRD_TYPE_BYTES = {
    1: ("signed char", "int8", "int8_t", "uchar", "unsigned char", "uint8", "uint8_t"),
    2: ("short", "short int", "signed short", "signed short int", "int16", "int16_t", "ushort", "unsigned short",
        "unsigned short int", "uint16", "uint16_t"),
    4: ("int", "signed int", "int32", "int32_t", "uint", "unsigned int", "uint32", "uint32_t", "float"),
    8: ("longlong", "long long", "long long int", "signed long long", "signed long long int", "int64", "int64_t",
        "ulonglong", "unsigned long long", "unsigned long long int", "uint64", "uint64_t", "double"),
}


class LabelError(LabelTaskError):
    """A label that does not fit its image: another grid, values that are not segment numbers, an unreadable file."""


@contextmanager
def http_errors(what: str) -> Iterator[None]:
    """Turn a request's failure into an ``HTTPException`` whose detail says what went wrong.

    404: an image, label or model that is not there. 422: input radtl cannot use as given (a label of the
    wrong shape, an image its bundle cannot read, a model without weights). 502: the PACS failed or cannot be reached.
    """
    try:
        yield
    except HTTPException:
        raise
    except (ImageNotFoundException, LabelNotFoundException) as error:
        raise HTTPException(status_code=404, detail=f"{what}: {error.msg}") from error
    except MONAILabelException as error:
        raise HTTPException(status_code=422, detail=f"{what}: {error.msg}") from error
    except (PacsError, requests.RequestException) as error:
        raise HTTPException(status_code=502, detail=f"{what}: the PACS failed: {error}") from error
    except (LabelTaskError, SeriesError, CheckpointError, FileNotFoundError, SettingError) as error:
        raise HTTPException(status_code=422, detail=f"{what}: {error}") from error


def safe_name(kind: str, name: object) -> str:
    """``name`` when it is a plain name (:data:`SAFE_NAME`) with no path in it, else a 422 that says so."""
    if not isinstance(name, str) or not SAFE_NAME.fullmatch(name) or ".." in name:
        raise HTTPException(
            status_code=422,
            detail=f"{kind} {str(name)[:80]!r} is not a plain name (letters, digits, '.', '_', '-'; at most 128)",
        )
    return name


def inside(folder: str | os.PathLike, name: str) -> Path:
    """``folder/name``, resolved, when it stays inside ``folder``; a 422 otherwise."""
    root = Path(folder).resolve()
    path = (root / name).resolve()
    if not path.is_relative_to(root) or path == root:
        raise HTTPException(status_code=422, detail=f"{name!r} leads outside the datastore")
    return path


def series_uid(uid: object) -> str:
    """``uid`` when it is a DICOM UID (PS3.5 section 9.1), the only name a PACS series has here; a 422 otherwise."""
    if not is_uid(uid):
        raise HTTPException(status_code=422, detail=f"{str(uid)[:80]!r} is not a Series Instance UID")
    return uid


def check_upload_size(path: str | os.PathLike, what: str) -> None:
    """A 413 when the uploaded file at ``path`` is over the server's upload limit."""
    size, limit = Path(path).stat().st_size, max_upload_bytes()
    if size > limit:
        raise HTTPException(status_code=413, detail=f"{what} is {size} bytes; this server takes at most {limit}")


def check_image_budget(path: str | os.PathLike, what: str) -> None:
    """A 422 unless an uploaded image's header declares at most :data:`DEFAULT_MAX_PIXEL_BYTES` of decoded pixels
    (``radtl convert``'s per-file budget), so that inferring on it later cannot exhaust the server's memory.

    DICOM is checked by :func:`radtl.dicom.io.check_dimensions` (PS3.3 C.7.6.3), NIfTI, NRRD, PNG and JPEG by
    :func:`declared_grid`; a MetaImage is refused, as its header may name its data in another file.
    """
    name = Path(path).name.lower()
    try:
        if name.endswith(".dcm"):
            check_dimensions(read_dataset(path), DEFAULT_MAX_PIXEL_BYTES)
            return
        if name.endswith(".mha"):
            raise LabelError("MetaImage uploads are not taken (their data may lie in another file); use NIfTI")
        shape, bytes_per_voxel = declared_grid(path)
    except (DicomConversionError, LabelError) as error:
        raise HTTPException(status_code=422, detail=f"{what}: {error}") from error
    if math.prod(shape) * bytes_per_voxel > DEFAULT_MAX_PIXEL_BYTES:
        raise HTTPException(
            status_code=422,
            detail=f"{what} declares {shape} voxels of {bytes_per_voxel} bytes, over this server's per-image budget of "
            f"{DEFAULT_MAX_PIXEL_BYTES} bytes; refused before reading its data",
        )


def _nrrd_bytes_per_voxel(kind: str) -> int:
    for size, names in _NRRD_TYPE_BYTES.items():
        if kind.strip().lower() in names:
            return size
    raise LabelError(f"NRRD type {kind!r} is not a voxel type radtl reads")


def _check_nrrd_data(data: BinaryIO, header: dict, declared_bytes: int) -> None:
    """Refuse NRRD data that a reader would take from elsewhere or inflate beyond what the header declares.

    A label is one file: a detached header (``data file``, NRRD0005) could make the server read any file it can
    reach. gzip data is inflated here in 1 MiB steps, the output discarded, and refused past ``declared_bytes``
    (pynrrd inflates the whole stream in memory before it looks at the sizes). bzip2 is refused.
    """
    if "data file" in header or "datafile" in header:
        raise LabelError("a detached NRRD (its data in another file) is not taken; submit the label as one .nrrd")
    encoding = str(header.get("encoding", "raw")).lower()
    if encoding in ("raw", "txt", "text", "ascii", "hex"):
        return  # no larger than the upload, which the server bounds
    if encoding not in ("gzip", "gz"):
        raise LabelError(f"NRRD encoding {encoding!r} is not taken for labels; use raw or gzip")
    inflater, inflated, step = zlib.decompressobj(zlib.MAX_WBITS | 16), 0, 2**20
    try:
        while not inflater.eof and (pending := inflater.unconsumed_tail or data.read(step)):
            inflated += len(inflater.decompress(pending, step))
            if inflated > declared_bytes:
                raise LabelError(
                    f"the NRRD's gzip data inflates to more than the {declared_bytes} bytes its header declares"
                )
    except zlib.error as error:
        raise LabelError(f"the NRRD's gzip data is corrupt ({error})") from error


def declared_grid(label_path: str | os.PathLike) -> tuple[tuple[int, ...], int]:
    """The shape and bytes per voxel a label file declares, read from its header: its data is not decoded.

    NIfTI through nibabel (which reads the 348-byte header, decompressing no more), NRRD through pynrrd's
    ``read_header`` (its data checked by :func:`_check_nrrd_data`), PNG and JPEG through PIL's lazy open.

    Raises:
        LabelError: another format, or a header that cannot be read.
    """
    path = Path(label_path)
    name = path.name.lower()
    try:
        if name.endswith((".nii", ".nii.gz")):
            header = nib.load(path).header
            return tuple(int(n) for n in header.get_data_shape()), int(header.get_data_dtype().itemsize)
        if name.endswith(".nrrd"):
            with open(path, "rb") as handle:
                header = nrrd.read_header(handle)  # leaves the file at the start of the data
                shape = tuple(int(n) for n in header["sizes"])
                bytes_per_voxel = _nrrd_bytes_per_voxel(str(header["type"]))
                _check_nrrd_data(handle, header, math.prod(shape) * bytes_per_voxel)
            return shape, bytes_per_voxel
        if name.endswith((".png", ".jpg", ".jpeg")):
            with Image.open(path) as image:
                bands = len(image.getbands())
                bytes_per_band = 4 if image.mode in ("I", "F") else 2 if "16" in image.mode else 1
                return tuple(image.size), bands * bytes_per_band
    except LabelError:
        raise
    except Exception as error:  # nibabel, pynrrd and PIL each raise their own; the client gets the message
        raise LabelError(f"cannot read the label {path.name}: {error}") from error
    raise LabelError(
        f"cannot read the label {path.name}: radtl takes labels as {', '.join(LABEL_EXTENSIONS)} (it checks their "
        "header before their data)"
    )


def image_grid(image_path: str | os.PathLike) -> tuple[tuple[int, ...], np.ndarray | None]:
    """An image's spatial shape and voxel-to-RAS affine, as radtl's loaders give them.

    A folder is a DICOM series, read from its headers: ``(X, Y, Z)`` = (columns, rows, slices).
    A file is read by MONAI (channel first); a 2D image has no affine to compare.
    """
    path = Path(image_path)
    if path.is_dir():
        series = read_series_headers(path, modality=None)
        slices, rows, columns = series.shape
        return (columns, rows, slices), LPS_TO_RAS @ series.affine
    image = LoadImage(image_only=True, ensure_channel_first=True)(str(path))
    affine = image.affine.numpy() if image.ndim == 4 else None
    return tuple(int(s) for s in image.shape[1:]), affine


def checked_label(label_path: str | os.PathLike, image_path: str | os.PathLike, segments: int) -> np.ndarray:
    """The label file as an integer array on its image's grid, or a :class:`LabelError` that says why not.

    Args:
        label_path: the submitted label (NIfTI, NRRD, PNG...).
        image_path: its image (a file, or a DICOM series folder).
        segments: the highest segment number the label may hold (0 is background).
    """
    suffix = "".join(Path(label_path).suffixes)
    if suffix.endswith(".bin"):
        raise LabelError("a .bin label (OHIF's raw scribbles) is not supported; submit the label as NIfTI or NRRD")
    shape, affine = image_grid(image_path)
    declared, bytes_per_voxel = declared_grid(label_path)
    if math.prod(declared) > math.prod(shape) or bytes_per_voxel > 8:
        raise LabelError(
            f"the label declares {declared} voxels of {bytes_per_voxel} bytes, more than its image's grid {shape}; "
            "refused before reading its data"
        )
    try:
        label = (
            LoadCTVolume(modality=None)(label_path)
            if Path(image_path).is_dir()
            else LoadImage(image_only=True, ensure_channel_first=True)(str(label_path))
        )
    except Exception as error:  # ITK, nibabel and PIL each raise their own; the client gets the message
        raise LabelError(f"cannot read the label {Path(label_path).name}: {error}") from error
    if tuple(label.shape[1:]) != shape:
        raise LabelError(f"the label's shape {tuple(label.shape[1:])} is not its image's grid {shape}")
    if (
        affine is not None
        and label.ndim == 4
        and not np.allclose(label.affine.numpy(), affine, atol=_AFFINE_TOLERANCE_MM)
    ):
        raise LabelError("the label lies elsewhere in patient space than its image (its affine differs)")
    values = np.asarray(label[0].numpy() if isinstance(label, torch.Tensor) else label[0])
    found = np.unique(values)
    if not np.all(np.isin(found, np.arange(segments + 1))):
        shown = ", ".join(f"{value:g}" for value in found[:10])
        raise LabelError(f"label values must be segment numbers 0..{segments}; found {shown}")
    return values.astype(np.uint8)


def _refuse_delete(what: str) -> None:
    raise HTTPException(
        status_code=403, detail=f"deleting {what} is off on this server; start it with --conf allow_delete true"
    )


class FolderDatastore(LocalDatastore):
    """MONAI Label's local datastore over a studies folder, which refuses labels that do not fit their image and
    writes only inside the folder.

    Args:
        studies: the folder (created when missing, as ``monailabel start_server`` does).
        segments: the highest segment number a label may hold.
        allow_overwrite: an upload may replace an image already in the folder.
        allow_delete: a client may delete images and labels.
        kwargs: :class:`monailabel.datastore.local.LocalDatastore`'s options.
    """

    def __init__(
        self, studies: str, segments: int = 1, allow_overwrite: bool = False, allow_delete: bool = False, **kwargs
    ) -> None:
        self.segments = segments
        self.allow_overwrite = allow_overwrite
        self.allow_delete = allow_delete
        super().__init__(studies, extensions=kwargs.pop("extensions", IMAGE_EXTENSIONS), **kwargs)

    def add_image(self, image_id: str, image_filename: str, image_info: dict[str, Any]) -> str:
        """Store an uploaded image under a plain id inside the folder; an existing one only with ``allow_overwrite``."""
        found, extension = self._to_id(os.path.basename(image_filename))
        image_id = safe_name("image id", image_id or found)
        if extension not in [pattern.lstrip("*") for pattern in self._extensions]:
            raise HTTPException(
                status_code=422,
                detail=f"{extension!r} is not an image format this datastore lists ({', '.join(IMAGE_EXTENSIONS)})",
            )
        inside(self._datastore.image_path(), self._filename(image_id, extension))
        check_upload_size(image_filename, f"image {image_id!r}")
        if image_id in self._datastore.objects and not self.allow_overwrite:
            raise HTTPException(
                status_code=409,
                detail=f"image {image_id!r} exists; replacing images is off (start with --conf allow_overwrite true)",
            )
        check_image_budget(image_filename, f"image {image_id!r}")
        return super().add_image(image_id, image_filename, image_info)

    def remove_image(self, image_id: str) -> None:
        if not self.allow_delete:
            _refuse_delete("images")
        super().remove_image(image_id)

    def remove_label(self, label_id: str, label_tag: str) -> None:
        if not self.allow_delete:
            _refuse_delete("labels")
        super().remove_label(label_id, label_tag)

    def save_label(self, image_id: str, label_filename: str, label_tag: str, label_info: dict[str, Any]) -> str:
        """Keep a label that fits its image, under ``labels/<tag>/`` of the folder."""
        label_tag = safe_name("label tag", label_tag)
        with http_errors(f"label for image {image_id!r}"):
            image = self.get_image_uri(image_id)
            if not image:
                raise ImageNotFoundException(f"no image {image_id!r} in the datastore")
            inside(self._datastore.label_path(None), label_tag)
            check_upload_size(label_filename, f"the label for {image_id!r}")
            checked_label(label_filename, image, self.segments)
            return super().save_label(image_id, label_filename, label_tag, label_info)


class PacsDatastore(DICOMWebDatastore):
    """The studies of a DICOMweb PACS (Orthanc's ``/dicom-web``), final labels stored back as DICOM-SEG.

    Image ids are Series Instance UIDs, as in MONAI Label's DICOMweb datastore.

    Args:
        url: the DICOMweb root, e.g. ``http://127.0.0.1:8042/dicom-web``.
        search_filter: the QIDO-RS filter that lists the images (``{"Modality": "CT"}``).
        cache_path: where fetched series and labels are kept (default: MONAI Label's cache).
        segment: what a label's segment 1 is, coded in the SEG (default: lung nodule).
        allow_delete: a client may delete series and labels from the cache (never from the PACS).
    """

    def __init__(
        self,
        url: str,
        search_filter: dict[str, Any] | None = None,
        cache_path: str | None = None,
        segment: Segment = LUNG_NODULE,
        allow_delete: bool = False,
    ) -> None:
        self.url = url.rstrip("/")
        self.segment = segment
        self.allow_delete = allow_delete
        super().__init__(
            client=DICOMwebClientX(url=self.url, session=session_for(self.url)),  # RADTL_PACS_* (docs/pacs.md)
            search_filter=dict(search_filter or {"Modality": "CT"}),
            cache_path=cache_path,
            fetch_by_frame=False,
            convert_to_nifti=False,
        )

    def _study_of(self, series_uid: str) -> str:
        found = self._client.search_for_series(search_filters={"SeriesInstanceUID": series_uid})
        matches = [pydicom.Dataset.from_json(item) for item in found]
        matches = [ds for ds in matches if str(ds.get("SeriesInstanceUID", "")) == series_uid]
        if not matches:
            raise ImageNotFoundException(f"series {series_uid!r} is not in {self.url}")
        return str(matches[0].StudyInstanceUID)

    def _fetch(self, series_uid: str, folder: Path) -> Path:
        """``folder`` holding the whole series: fetched into a sibling first, so a failed fetch leaves no half."""
        if folder.is_dir():
            return folder
        partial = folder.with_name(f".{folder.name}.partial")
        shutil.rmtree(partial, ignore_errors=True)
        fetch_series(self.url, self._study_of(series_uid), series_uid, partial)
        partial.rename(folder)
        return folder

    def add_image(self, image_id: str, image_filename: str, image_info: dict[str, Any]) -> str:
        raise HTTPException(
            status_code=405, detail="the images of this server are in the PACS; store new ones there (STOW-RS)"
        )

    def remove_image(self, image_id: str) -> None:
        if not self.allow_delete:
            _refuse_delete("images")
        super().remove_image(series_uid(image_id))

    def remove_label(self, label_id: str, label_tag: str) -> None:
        if not self.allow_delete:
            _refuse_delete("labels")
        super().remove_label(series_uid(label_id), safe_name("label tag", label_tag))

    def get_image_uri(self, image_id: str) -> str:
        """The series' folder in the cache, fetched by WADO-RS the first time."""
        series_uid(image_id)
        folder = self._fetch(image_id, Path(self._datastore.image_path()) / image_id)
        if image_id not in self._datastore.objects:  # known locally from now on, so labels can be saved for it
            self._datastore.objects[image_id] = ImageLabelModel(image=DataModel(ext="", info={"name": image_id}))
            self._update_datastore_file()
        return str(folder.resolve())

    def get_label_uri(self, label_id: str, label_tag: str, image_id: str = "") -> str:
        """A label as NIfTI on its series' grid; a final label in the PACS (``label_id``: the SEG's series) is
        fetched and read back with :func:`radtl.dicom.seg.read_segmentation` the first time."""
        if label_tag != DefaultLabelTag.FINAL or not image_id:
            return LocalDatastore.get_label_uri(self, label_id, label_tag)
        series_uid(label_id)
        series_uid(image_id)
        label = Path(self._datastore.label_path(DefaultLabelTag.FINAL)) / f"{image_id}.nii.gz"
        if not label.is_file():
            series = Path(self.get_image_uri(image_id))
            seg_folder = self._fetch(label_id, Path(self._datastore.label_path(label_tag)) / label_id)
            seg_file = next(p for p in sorted(seg_folder.iterdir()) if p.is_file())
            mask = read_segmentation(seg_file, series)
            with tempfile.TemporaryDirectory(prefix="radtl-label-") as scratch:
                _, affine = image_grid(series)
                nifti = write_label(mask, affine, Path(scratch) / f"{image_id}.nii.gz")
                LocalDatastore.save_label(self, image_id, str(nifti), label_tag, {"SeriesInstanceUID": label_id})
        return str(label)

    def save_label(
        self, image_id: str, label_filename: str, label_tag: str, label_info: dict[str, Any], label_id: str = ""
    ) -> str:
        """Keep the label; a final one is also written as DICOM-SEG and stored in the PACS (STOW-RS)."""
        label_tag = safe_name("label tag", label_tag)
        with http_errors(f"label for series {image_id!r}"):
            series = self.get_image_uri(image_id)
            check_upload_size(label_filename, f"the label for {image_id!r}")
            mask = checked_label(label_filename, series, segments=1)
            info = dict(label_info or {})
            if label_tag == DefaultLabelTag.FINAL:
                info.update(self._store_segmentation(mask, series))
            return LocalDatastore.save_label(self, image_id, label_filename, label_tag, info)

    def _store_segmentation(self, mask: np.ndarray, series: str) -> dict[str, str]:
        with tempfile.TemporaryDirectory(prefix="radtl-seg-") as scratch:
            path = write_segmentation(
                Path(scratch) / "label.seg.dcm", mask, series, algorithm=None, segment=self.segment
            )
            header = pydicom.dcmread(path, stop_before_pixels=True)
            send([path], self.url)
        logger.info("stored SEG %s (series %s) in %s", header.SOPInstanceUID, header.SeriesInstanceUID, self.url)
        return {
            "SeriesInstanceUID": str(header.SeriesInstanceUID),
            "SOPInstanceUID": str(header.SOPInstanceUID),
            "StudyInstanceUID": str(header.StudyInstanceUID),
        }
