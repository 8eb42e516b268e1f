"""Write a predicted mask as DICOM-SEG from any segmentation bundle: :class:`SaveDicomSeg`."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from monai.data import MetaTensor
from monai.transforms import Transform
from monai.utils import TransformBackends

from radtl.dicom.seg import (
    LUNG_NODULE,
    Algorithm,
    Segment,
    SegmentationSourceError,
    checkpoint_parameters,
    seg_path,
    write_segmentation,
)

__all__ = ["SaveDicomSeg"]


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
