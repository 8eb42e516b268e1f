"""Dictionary twins of :mod:`radtl.transforms.io.array`, MONAI style (``...d``, ``...D``, ``...Dict``)."""

from __future__ import annotations

import os
from collections.abc import Hashable, Mapping

import torch
from monai.config import DtypeLike, KeysCollection
from monai.transforms import MapTransform

from radtl.data.pack import PackedImages
from radtl.transforms.io.array import LoadCTVolume, LoadDicomImage, LoadPacked, LoadRadiograph, SaveDicomSeg

__all__ = [
    "LoadCTVolumeD",
    "LoadCTVolumeDict",
    "LoadCTVolumed",
    "LoadDicomImageD",
    "LoadDicomImageDict",
    "LoadDicomImaged",
    "LoadPackedD",
    "LoadPackedDict",
    "LoadPackedd",
    "LoadRadiographD",
    "LoadRadiographDict",
    "LoadRadiographd",
    "SaveDicomSegD",
    "SaveDicomSegDict",
    "SaveDicomSegd",
]


class LoadDicomImaged(MapTransform):
    """Dictionary :class:`LoadDicomImage`: replaces each key's file path by its ``(C, H, W)`` image.

    Args:
        keys: the keys holding DICOM file paths.
        frame: which frame of a multi-frame object (0-based).
        formula: ``"dicom"`` (PS3.3 windowing) or ``"paper"`` (RadiologyNET's formula).
        color: ``"gray"`` or ``"rgb"`` for colour images.
        voi_preference: ``"lut"`` or ``"window"`` first when a file has both.
        dtype: output dtype; float32 by default (values stay 0..255).
        allow_missing_keys: do not fail on a key the data lacks.
    """

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


LoadDicomImageD = LoadDicomImageDict = LoadDicomImaged


class LoadRadiographd(MapTransform):
    """Dictionary :class:`LoadRadiograph`: replaces each key's file path by its ``(1, H, W)`` image in [0, 1].

    Args:
        keys: the keys holding file paths.
        allow_missing_keys: do not fail on a key the data lacks.
    """

    backend = LoadRadiograph.backend

    def __init__(self, keys: KeysCollection, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.loader = LoadRadiograph()

    def __call__(self, data: Mapping[Hashable, object]) -> dict[Hashable, object]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.loader(d[key])
        return d


LoadRadiographD = LoadRadiographDict = LoadRadiographd


class LoadPackedd(MapTransform):
    """Dictionary :class:`LoadPacked`: replaces each key's file path by its packed ``(1, S, S)`` image in [0, 1].

    Args:
        keys: the keys holding file paths.
        pack: the pack folder, or an opened :class:`~radtl.data.PackedImages`.
        allow_missing_keys: do not fail on a key the data lacks.
    """

    backend = LoadPacked.backend

    def __init__(self, keys: KeysCollection, pack: str | os.PathLike | PackedImages,
                 allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.loader = LoadPacked(pack)

    def __call__(self, data: Mapping[Hashable, object]) -> dict[Hashable, object]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.loader(d[key])
        return d


LoadPackedD = LoadPackedDict = LoadPackedd


class LoadCTVolumed(MapTransform):
    """Dictionary :class:`LoadCTVolume`: replaces each key's series folder or image file by its volume.

    Args:
        keys: the keys to load (``image``; ``label`` too when masks are provided as files).
        modality: the Modality a DICOM series must have (None: any).
        allow_missing_keys: skip keys that are absent (a datalist with nodules instead of masks).
    """

    backend = LoadCTVolume.backend

    def __init__(self, keys: KeysCollection, modality: str | None = "CT", allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.loader = LoadCTVolume(modality)

    def __call__(self, data: Mapping[Hashable, object]) -> dict[Hashable, object]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.loader(d[key])
        return d


LoadCTVolumeD = LoadCTVolumeDict = LoadCTVolumed


class SaveDicomSegd(MapTransform):
    """Dictionary :class:`SaveDicomSeg`: writes each key's mask (``pred``) as DICOM-SEG.

    Args:
        keys: the mask keys (``pred``).
        allow_missing_keys: do not fail on a key the data lacks.
        kwargs: :class:`SaveDicomSeg`'s arguments.
    """

    backend = SaveDicomSeg.backend

    def __init__(self, keys: KeysCollection, allow_missing_keys: bool = False, **kwargs) -> None:
        super().__init__(keys, allow_missing_keys)
        self.saver = SaveDicomSeg(**kwargs)

    def __call__(self, data: Mapping[Hashable, object]) -> dict[Hashable, object]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.saver(d[key])
        return d


SaveDicomSegD = SaveDicomSegDict = SaveDicomSegd
