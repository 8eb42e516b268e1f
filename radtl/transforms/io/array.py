"""Loaders and writers, MONAI style (``(C, H, W)`` / ``(C, X, Y, Z)`` channel-first MetaTensors).

- :class:`LoadDicomImage`: a DICOM file to its display image, through the same
  :func:`radtl.dicom.convert.display_frames` that ``radtl convert`` uses, so a bundle fed
  DICOM sees exactly the pixels the exporter writes.
- :class:`LoadRadiograph`: any image the fine-tuning datasets hold (PNG, JPEG, DICOM) in [0, 1].
- :class:`LoadPacked`: a file's image from a pack (``radtl pack``).
- :class:`LoadCTVolume`: a CT volume in HU (a DICOM series or an ITK image).
- :class:`SaveDicomSeg`: a predicted mask written as DICOM-SEG.

CT volumes follow MONAI's convention for ITK images: a ``(1, X, Y, Z)`` MetaTensor whose first spatial
axis runs along a row (increasing column index), the second down a column, the third along the slice
normal, with a RAS ``affine`` from voxel index to patient coordinates in mm. DICOM and ITK use LPS
(PS3.3 C.7.6.2.1.1); the affine's first two rows are negated to convert (:data:`LPS_TO_RAS`).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from monai.config import DtypeLike
from monai.data import MetaTensor
from monai.transforms import LoadImage, Transform
from monai.utils import TransformBackends

from radtl.data.images import read_display_frame, read_radiograph
from radtl.data.pack import PackedImages
from radtl.dicom.frames import ColorMode, ConversionOptions
from radtl.dicom.render import WindowFormula
from radtl.dicom.seg import (
    LUNG_NODULE,
    Algorithm,
    Segment,
    SegmentationSourceError,
    checkpoint_parameters,
    seg_path,
    write_segmentation,
)
from radtl.dicom.series import read_series

__all__ = ["LPS_TO_RAS", "LoadCTVolume", "LoadDicomImage", "LoadPacked", "LoadRadiograph", "SaveDicomSeg"]

#: Patient LPS (DICOM, ITK, LUNA16's annotations) to RAS (MONAI's affines), and back: its own inverse.
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


class LoadDicomImage(Transform):
    """Load one frame of a DICOM file as a ``(C, H, W)`` display image in [0, 255].

    C is 1 for grey images, 3 for colour images kept as RGB. The MetaTensor's meta holds
    ``filename_or_obj``, ``frame``, ``voi`` (how the frame was windowed), ``inverted``,
    ``Modality`` and ``spatial_shape``.

    Args:
        frame: which frame of a multi-frame object (0-based).
        formula: ``"dicom"`` (PS3.3 windowing) or ``"paper"`` (RadiologyNET's formula).
        color: ``"gray"`` or ``"rgb"`` for colour images.
        voi_preference: ``"lut"`` or ``"window"`` first when a file has both.
        dtype: output dtype; float32 by default (values stay 0..255).
    """

    backend = [TransformBackends.TORCH]

    def __init__(
        self,
        frame: int = 0,
        formula: str = WindowFormula.DICOM.value,
        color: str = ColorMode.GRAY.value,
        voi_preference: str = "lut",
        dtype: DtypeLike | torch.dtype = torch.float32,
    ) -> None:
        self.frame = frame
        self.options = ConversionOptions(formula=formula, color=color, voi_preference=voi_preference)
        self.dtype = dtype

    def __call__(self, filename: str) -> MetaTensor:
        display, meta = read_display_frame(filename, self.frame, self.options)
        image = display[np.newaxis] if display.ndim == 2 else np.moveaxis(display, -1, 0)
        return MetaTensor(torch.as_tensor(np.ascontiguousarray(image)).to(self.dtype), meta=meta)


class LoadRadiograph(Transform):
    """Load a PNG, JPEG or DICOM file as a ``(1, H, W)`` float32 image in [0, 1].

    :func:`radtl.data.images.read_radiograph` reads it:

    - PNG and JPEG (the public datasets' files): 8-bit values / 255, 16-bit values / 65535
      (GRAZPEDWRI-DX's PNGs), colour converted to luma (ITU-R 601, PIL's ``"L"``).
    - DICOM: rendered by radtl's PS3.3 pipeline (Modality LUT, VOI, Presentation LUT) to the
      8-bit display image ``radtl convert`` writes, then / 255; so a model fine-tuned on the
      study's 8-bit PNG exports sees the same values when a hospital feeds it DICOM.

    The MetaTensor's meta holds ``filename_or_obj`` and ``spatial_shape`` (and for DICOM how it
    was windowed).
    """

    backend = [TransformBackends.TORCH]

    def __call__(self, filename: str | os.PathLike) -> MetaTensor:
        image, meta = read_radiograph(filename)
        return MetaTensor(torch.from_numpy(np.ascontiguousarray(image[np.newaxis])), meta=meta)


class LoadPacked(Transform):
    """Load a file's image from a pack (``radtl pack``) as a ``(1, S, S)`` float32 image in [0, 1].

    The packed image is :class:`LoadRadiograph`'s image after the bundles' ``ResizeLongestPad``
    (longest side S, aspect kept, zero padded to S x S), rounded to 8 bits; so a bundle can swap
    its loader for this one and keep its ``ResizeLongestPadd`` (then a no-op).
    The pack is opened on the first call, so the transform pickles cheaply into DataLoader
    workers. The MetaTensor's meta holds ``filename_or_obj`` (the path asked for),
    ``spatial_shape`` (S, S) and ``pack_position``.

    Args:
        pack: the pack folder, or an opened :class:`~radtl.data.PackedImages`.

    Raises:
        radtl.data.NotInPackError: (on call) the file is not in the pack.
    """

    backend = LoadRadiograph.backend

    def __init__(self, pack: str | os.PathLike | PackedImages) -> None:
        self.pack = pack
        self._opened = pack if isinstance(pack, PackedImages) else None

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        if not isinstance(self.pack, PackedImages):
            state["_opened"] = None  # each worker opens the pack itself
        return state

    def __call__(self, filename: str | os.PathLike) -> MetaTensor:
        if self._opened is None:
            self._opened = PackedImages(self.pack)
        position = self._opened.locate(filename)
        image = torch.from_numpy(self._opened[position]).to(torch.float32).div_(255.0)[np.newaxis]
        meta = {"filename_or_obj": str(filename), "spatial_shape": np.asarray(image.shape[1:]),
                "pack_position": position}
        return MetaTensor(image, meta=meta)


class LoadCTVolume(Transform):
    """Load a CT volume in HU as a ``(1, X, Y, Z)`` float32 MetaTensor with a RAS affine.

    - A folder is read as one DICOM series by :func:`radtl.dicom.series.read_series`: checked
      (one series, CT, one orientation, no missing slices), sorted along the slice normal and
      rescaled to HU. ``meta["source_series"]`` keeps the folder for writing DICOM-SEG.
    - A file (LUNA16's ``.mhd`` + ``.raw``, NIfTI, NRRD) is read by MONAI's ``ITKReader``.

    Args:
        modality: the Modality a DICOM series must have (None: any).
    """

    backend = [TransformBackends.TORCH]

    def __init__(self, modality: str | None = "CT") -> None:
        self.modality = modality
        self.itk = LoadImage(reader="ITKReader", image_only=True, ensure_channel_first=True, dtype=np.float32)

    def __call__(self, path: str | os.PathLike) -> MetaTensor:
        path = Path(path)
        if not path.is_dir():
            if not path.is_file():
                raise FileNotFoundError(f"{path}: no such CT series folder or image file")
            return self.itk(path)
        series = read_series(path, self.modality)
        volume = np.ascontiguousarray(series.hu.transpose(2, 1, 0))[np.newaxis]  # (slice, row, col) -> (1, X, Y, Z)
        affine = torch.as_tensor(LPS_TO_RAS @ series.affine, dtype=torch.float64)
        meta = {
            "filename_or_obj": str(path),
            "source_series": str(path),
            "series_instance_uid": series.series_instance_uid,
            "original_affine": affine.clone(),
            "spatial_shape": np.asarray(volume.shape[1:]),
            "space": "RAS",
        }
        return MetaTensor(torch.from_numpy(volume), affine=affine, meta=meta)


class SaveDicomSeg(Transform):
    """Write a ``(1, X, Y, Z)`` mask on a DICOM series' grid as a DICOM Segmentation, return it unchanged.

    The source series is the folder :class:`radtl.transforms.LoadCTVolume` recorded in the mask's
    meta (``source_series``); the file written is recorded as ``meta["dicom_seg"]``. One output file
    holds one series' SEG: a second series sent to the same file in the same run is an error, not a
    silent overwrite (give a folder for one SEG per series).

    Args:
        output_path: the SEG file; or a folder (ending in ``/``, or existing), which then gets
            ``<SeriesInstanceUID of the source>.seg.dcm``.
        algorithm_name: Algorithm Name, e.g. the bundle's name.
        algorithm_version: Algorithm Version, e.g. the bundle's version.
        fractional: write probabilities (FRACTIONAL); otherwise the mask must be 0/1 (BINARY).
        segment: what is segmented (default: lung nodule).
        algorithm_parameters: recorded as Algorithm Parameters (threshold, backbone...).
        checkpoint: the weights the masks come from: their hash and best validation score are added
            to the Algorithm Parameters, with a warning when they learned nothing
            (:func:`radtl.dicom.seg.checkpoint_parameters`).
    """

    backend = [TransformBackends.TORCH, TransformBackends.NUMPY]

    def __init__(
        self,
        output_path: str | os.PathLike,
        algorithm_name: str,
        algorithm_version: str,
        fractional: bool = False,
        segment: Segment = LUNG_NODULE,
        algorithm_parameters: dict | None = None,
        checkpoint: str | os.PathLike | None = None,
    ) -> None:
        self.output_path = str(output_path)
        parameters = dict(algorithm_parameters or {})
        if checkpoint is not None:
            parameters.update(checkpoint_parameters(checkpoint))
        self.algorithm = Algorithm(algorithm_name, algorithm_version, parameters)
        self.fractional = fractional
        self.segment = segment
        self.written: dict[Path, str] = {}  # file -> the series whose SEG it holds, in this run

    def destination(self, meta: dict) -> Path:
        return seg_path(self.output_path, meta.get("series_instance_uid", Path(meta["source_series"]).name))

    def __call__(self, mask: torch.Tensor | np.ndarray) -> torch.Tensor | np.ndarray:
        meta = mask.meta if isinstance(mask, MetaTensor) else {}
        if "source_series" not in meta:
            raise SegmentationSourceError(
                "the mask does not say which DICOM series it was predicted on (meta 'source_series'); "
                "load the image with radtl.transforms.LoadCTVolumed from a series folder"
            )
        destination, series = self.destination(meta), str(meta["source_series"])
        if self.written.get(destination, series) != series:
            raise SegmentationSourceError(
                f"{destination} already holds the SEG of {self.written[destination]} from this run, not that of "
                f"{series}: give a folder (ending in /) for one SEG per series"
            )
        array = mask.detach().cpu().numpy() if isinstance(mask, torch.Tensor) else np.asarray(mask)
        path = write_segmentation(destination, array, series, self.algorithm, self.segment, self.fractional)
        self.written[destination] = series
        meta["dicom_seg"] = str(path)
        return mask
