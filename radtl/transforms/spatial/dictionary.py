"""Dictionary twins of :mod:`radtl.transforms.spatial.array`, MONAI style (``...d``, ``...D``, ``...Dict``)."""

from __future__ import annotations

from collections.abc import Hashable, Mapping

from monai.config import KeysCollection
from monai.transforms import MapTransform

from radtl.transforms.spatial.array import ResizeLongestPad

__all__ = ["ResizeLongestPadD", "ResizeLongestPadDict", "ResizeLongestPadd"]


class ResizeLongestPadd(MapTransform):
    """Dictionary :class:`ResizeLongestPad`: fits each key's ``(C, H, W)`` image into ``(C, size, size)``.

    Args:
        keys: the keys of the images to resize.
        size: the side of the square; 0 keeps the images unchanged.
        allow_missing_keys: do not fail on a key the data lacks.
    """

    backend = ResizeLongestPad.backend

    def __init__(self, keys: KeysCollection, size: int, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.resizer = ResizeLongestPad(size)

    def __call__(self, data: Mapping[Hashable, object]) -> dict[Hashable, object]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.resizer(d[key])
        return d


ResizeLongestPadD = ResizeLongestPadDict = ResizeLongestPadd
