"""Dictionary twin of :mod:`radtl.transforms.io.array`, MONAI style (``...d``, ``...D``, ``...Dict``)."""

from __future__ import annotations

import os
from collections.abc import Hashable, Mapping

from monai.config import KeysCollection
from monai.transforms import MapTransform

from radtl.data.pack import PackedImages
from radtl.transforms.io.array import LoadPacked, LoadRadiograph

__all__ = ["LoadPackedD", "LoadPackedDict", "LoadPackedd", "LoadRadiographD", "LoadRadiographDict", "LoadRadiographd"]


class LoadRadiographd(MapTransform):
    """Dictionary :class:`LoadRadiograph`: replaces each key's file path by its ``(1, H, W)`` image in [0, 1]."""

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
