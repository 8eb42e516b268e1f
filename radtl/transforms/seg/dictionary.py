"""Dictionary twin of :mod:`radtl.transforms.seg.array`, MONAI style (``...d``, ``...D``, ``...Dict``)."""

from __future__ import annotations

from collections.abc import Hashable, Mapping

from monai.config import KeysCollection
from monai.transforms import MapTransform

from radtl.transforms.seg.array import SaveDicomSeg

__all__ = ["SaveDicomSegD", "SaveDicomSegDict", "SaveDicomSegd"]


class SaveDicomSegd(MapTransform):
    """Dictionary :class:`SaveDicomSeg`: writes each key's mask (``pred``) as DICOM-SEG.

    Args:
        keys: the mask keys (``pred``).
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
