"""Dictionary twins of :mod:`radtl.transforms.ct.array`, MONAI style (``...d``, ``...D``, ``...Dict``)."""

from __future__ import annotations

from collections.abc import Hashable, Mapping

from monai.config import KeysCollection
from monai.transforms import MapTransform

from radtl.transforms.ct.array import LoadCTVolume, NoduleSpheres

__all__ = [
    "LoadCTVolumeD", "LoadCTVolumeDict", "LoadCTVolumed", "NoduleMaskD", "NoduleMaskDict", "NoduleMaskd",
]


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


class NoduleMaskd(MapTransform):
    """Give an item its nodule mask: drawn from ``nodules`` unless a mask was loaded under ``keys``.

    Args:
        keys: the mask's key (``label``).
        image_key: the loaded image whose grid and affine the mask takes.
        nodules_key: the item's nodules, ``[[x, y, z, diameter_mm], ...]`` in patient coordinates.
        lps: the nodules are in LPS (LUNA16, DICOM) rather than RAS.
    """

    backend = NoduleSpheres.backend

    def __init__(
        self, keys: KeysCollection = "label", image_key: str = "image", nodules_key: str = "nodules", lps: bool = True
    ) -> None:
        super().__init__(keys, allow_missing_keys=True)
        self.image_key = image_key
        self.nodules_key = nodules_key
        self.spheres = NoduleSpheres(lps)

    def __call__(self, data: Mapping[Hashable, object]) -> dict[Hashable, object]:
        d = dict(data)
        for key in self.keys:
            if key in d:
                continue  # a provided mask
            if self.nodules_key not in d:
                raise KeyError(f"item {d.get(self.image_key)!r} has neither a '{key}' mask nor '{self.nodules_key}'")
            d[key] = self.spheres(d[self.image_key], d[self.nodules_key])
        return d


LoadCTVolumeD = LoadCTVolumeDict = LoadCTVolumed
NoduleMaskD = NoduleMaskDict = NoduleMaskd
