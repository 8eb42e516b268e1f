"""Dictionary twins of :mod:`radtl.transforms.label.array`, MONAI style (``...d``, ``...D``, ``...Dict``)."""

from __future__ import annotations

from collections.abc import Hashable, Mapping

import torch
from monai.config import KeysCollection
from monai.transforms import MapTransform

from radtl.transforms.label.array import CastLabel, NoduleMask, SegmentationMask

__all__ = [
    "CastLabeld",
    "CastLabelD",
    "CastLabelDict",
    "NoduleMaskD",
    "NoduleMaskDict",
    "NoduleMaskd",
    "SegmentationMaskd",
    "SegmentationMaskD",
    "SegmentationMaskDict",
]


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


class CastLabeld(MapTransform):
    """Dictionary :class:`CastLabel`.

    Args:
        keys: the keys to cast (``label``).
        dtype: the tensor's type.
        allow_missing_keys: leave out a key the item lacks (an inference item has no label).
    """

    backend = CastLabel.backend

    def __init__(
        self, keys: KeysCollection, dtype: torch.dtype | str = torch.float32, allow_missing_keys: bool = False
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.cast = CastLabel(dtype)

    def __call__(self, data: Mapping[Hashable, object]) -> dict[Hashable, object]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.cast(d[key])
        return d

class SegmentationMaskd(MapTransform):
    """Dictionary :class:`SegmentationMask`.

    Args:
        keys: the keys holding probabilities (``pred``).
        threshold: the probability a voxel needs to be in the mask.
        min_size: the smallest component kept, in voxels, or in mm^3 with ``by_measure``.
        by_measure: ``min_size`` is a volume in mm^3.
        fractional: keep the probabilities (a FRACTIONAL SEG) instead of making a mask.
        allow_missing_keys: leave out a key the item lacks.
    """

    backend = SegmentationMask.backend

    def __init__(
        self,
        keys: KeysCollection,
        threshold: float = 0.5,
        min_size: float = 0,
        by_measure: bool = False,
        fractional: bool = False,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.mask = SegmentationMask(threshold, min_size, by_measure, fractional)

    def __call__(self, data: Mapping[Hashable, object]) -> dict[Hashable, object]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.mask(d[key])
        return d


CastLabelD = CastLabelDict = CastLabeld
SegmentationMaskD = SegmentationMaskDict = SegmentationMaskd
