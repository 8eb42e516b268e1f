"""Dictionary twins of :mod:`radtl.transforms.intensity.array`, MONAI style (``...d``, ``...D``, ``...Dict``)."""

from __future__ import annotations

from collections.abc import Hashable, Mapping

import numpy as np
from monai.config import DtypeLike, KeysCollection
from monai.transforms import MapTransform

from radtl.transforms.intensity.array import StandardizeLabel, VoiWindow

__all__ = [
    "StandardizeLabeld",
    "StandardizeLabelD",
    "StandardizeLabelDict",
    "VoiWindowD",
    "VoiWindowDict",
    "VoiWindowd",
]


class VoiWindowd(MapTransform):
    """Dictionary :class:`VoiWindow`: windows each key's image in modality units, PS3.3 C.11.2.1.2.

    Args:
        keys: the keys of the images to window.
        center: Window Center.
        width: Window Width.
        function: ``"LINEAR"``, ``"LINEAR_EXACT"`` or ``"SIGMOID"``.
        out_max: the output range is ``[0, out_max]`` (255 for display values, 1 for networks).
        dtype: output dtype.
        allow_missing_keys: do not fail on a key the data lacks.
    """

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


VoiWindowD = VoiWindowDict = VoiWindowd


class StandardizeLabeld(MapTransform):
    """Dictionary :class:`StandardizeLabel`: standardises (or, with ``inverse``, restores) each key's value.

    Args:
        keys: the keys to transform (``label``; ``["pred", "label"]`` with ``inverse``, in postprocessing).
        mean: the labels' mean.
        std: the labels' standard deviation.
        inverse: undo the standardisation instead.
        allow_missing_keys: leave out a key the item lacks (an inference item has no label).
    """

    backend = StandardizeLabel.backend

    def __init__(
        self, keys: KeysCollection, mean: float, std: float, inverse: bool = False, allow_missing_keys: bool = False
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.standardize = StandardizeLabel(mean, std, inverse)

    def __call__(self, data: Mapping[Hashable, object]) -> dict[Hashable, object]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.standardize(d[key])
        return d


StandardizeLabelD = StandardizeLabelDict = StandardizeLabeld
