"""Dictionary twins of :mod:`radtl.transforms.label.array`, MONAI style (``...d``, ``...D``, ``...Dict``)."""

from __future__ import annotations

from collections.abc import Hashable, Mapping

from monai.config import KeysCollection
from monai.transforms import MapTransform

from radtl.transforms.label.array import NoduleMask

__all__ = ["NoduleMaskD", "NoduleMaskDict", "NoduleMaskd"]


class NoduleMaskd(MapTransform):
    """Dictionary :class:`NoduleMask`: give an item its nodule mask, drawn from ``nodules`` unless a mask was
    loaded under ``keys``.

    Args:
        keys: the mask's key (``label``).
        image_key: the loaded image whose grid and affine the mask takes.
        nodules_key: the item's nodules, ``[[x, y, z, diameter_mm], ...]`` in patient coordinates.
        lps: the nodules are in LPS (LUNA16, DICOM) rather than RAS.
    """

    backend = NoduleMask.backend

    def __init__(
        self, keys: KeysCollection = "label", image_key: str = "image", nodules_key: str = "nodules", lps: bool = True
    ) -> None:
        super().__init__(keys, allow_missing_keys=True)
        self.image_key = image_key
        self.nodules_key = nodules_key
        self.nodule_mask = NoduleMask(lps)

    def __call__(self, data: Mapping[Hashable, object]) -> dict[Hashable, object]:
        d = dict(data)
        for key in self.keys:
            if key in d:
                continue  # a provided mask
            if self.nodules_key not in d:
                raise KeyError(f"item {d.get(self.image_key)!r} has neither a '{key}' mask nor '{self.nodules_key}'")
            d[key] = self.nodule_mask(d[self.image_key], d[self.nodules_key])
        return d


NoduleMaskD = NoduleMaskDict = NoduleMaskd
