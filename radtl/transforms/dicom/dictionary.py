"""Dictionary twins of :mod:`radtl.transforms.dicom.array`, MONAI style (``...d``, ``...D``, ``...Dict``)."""

from __future__ import annotations

from collections.abc import Hashable, Mapping

import numpy as np
import torch
from monai.config import DtypeLike, KeysCollection
from monai.transforms import MapTransform

from radtl.transforms.dicom.array import LoadDicomImage, VoiWindow

__all__ = ["LoadDicomImaged", "LoadDicomImageD", "LoadDicomImageDict", "VoiWindowd", "VoiWindowD", "VoiWindowDict"]


class LoadDicomImaged(MapTransform):
    """Dictionary :class:`LoadDicomImage`: replaces each key's file path by its ``(C, H, W)`` image."""

    backend = LoadDicomImage.backend

    def __init__(
        self,
        keys: KeysCollection,
        frame: int = 0,
        formula: str = "dicom",
        color: str = "gray",
        voi_preference: str = "lut",
        dtype: DtypeLike | torch.dtype = torch.float32,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.loader = LoadDicomImage(frame, formula, color, voi_preference, dtype)

    def __call__(self, data: Mapping[Hashable, object]) -> dict[Hashable, object]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.loader(d[key])
        return d


class VoiWindowd(MapTransform):
    """Dictionary :class:`VoiWindow`."""

    backend = VoiWindow.backend

    def __init__(
        self,
        keys: KeysCollection,
        center: float,
        width: float,
        function: str = "LINEAR",
        out_max: float = 1.0,
        dtype: DtypeLike = np.float32,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.window = VoiWindow(center, width, function, out_max, dtype)

    def __call__(self, data: Mapping[Hashable, object]) -> dict[Hashable, object]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.window(d[key])
        return d


LoadDicomImageD = LoadDicomImageDict = LoadDicomImaged
VoiWindowD = VoiWindowDict = VoiWindowd
