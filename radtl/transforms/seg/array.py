"""Write a predicted mask as DICOM-SEG from any segmentation bundle: :class:`SaveDicomSeg`."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from monai.data import MetaTensor
from monai.transforms import Transform
from monai.utils import TransformBackends

from radtl.seg.dicom_seg import LUNG_NODULE, Algorithm, Segment, SegmentationSourceError, write_segmentation

__all__ = ["SaveDicomSeg"]


class SaveDicomSeg(Transform):
    """Write a ``(1, X, Y, Z)`` mask on a DICOM series' grid as a DICOM Segmentation, return it unchanged.

    The source series is the folder :class:`radtl.transforms.LoadCTVolume` recorded in the mask's
    meta (``source_series``); the file written is recorded as ``meta["dicom_seg"]``.

    Args:
        output_path: the SEG file; or a folder (ending in ``/``, or existing), which then gets
            ``<SeriesInstanceUID of the source>.seg.dcm``.
        algorithm_name: Algorithm Name, e.g. the bundle's name.
        algorithm_version: Algorithm Version, e.g. the bundle's version.
        fractional: write probabilities (FRACTIONAL); otherwise the mask must be 0/1 (BINARY).
        segment: what is segmented (default: lung nodule).
        algorithm_parameters: recorded as Algorithm Parameters (threshold, checkpoint...).
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
    ) -> None:
        self.output_path = str(output_path)
        self.algorithm = Algorithm(algorithm_name, algorithm_version, dict(algorithm_parameters or {}))
        self.fractional = fractional
        self.segment = segment

    def destination(self, meta: dict) -> Path:
        output = Path(self.output_path)
        if self.output_path.endswith(("/", os.sep)) or output.is_dir():
            return output / f"{meta.get('series_instance_uid', Path(meta['source_series']).name)}.seg.dcm"
        return output

    def __call__(self, mask: torch.Tensor | np.ndarray) -> torch.Tensor | np.ndarray:
        meta = mask.meta if isinstance(mask, MetaTensor) else {}
        if "source_series" not in meta:
            raise SegmentationSourceError(
                "the mask does not say which DICOM series it was predicted on (meta 'source_series'); "
                "load the image with radtl.transforms.LoadCTVolumed from a series folder"
            )
        array = mask.detach().cpu().numpy() if isinstance(mask, torch.Tensor) else np.asarray(mask)
        path = write_segmentation(
            self.destination(meta), array, meta["source_series"], self.algorithm, self.segment, self.fractional
        )
        meta["dicom_seg"] = str(path)
        return mask
