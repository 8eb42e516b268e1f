"""Label transforms, MONAI style: :class:`NoduleMask` draws a ``(1, X, Y, Z)`` nodule mask on an image's grid
from world-coordinate annotations (LUNA16's ``annotations.csv``), by :func:`~radtl.transforms.label.functional.nodule_mask`.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import torch
from monai.data import MetaTensor
from monai.transforms import Transform
from monai.utils import TransformBackends

from radtl.transforms.label.functional import nodule_mask

__all__ = ["NoduleMask", "NoduleSpheres"]


class NoduleMask(Transform):
    """The ``(1, X, Y, Z)`` nodule mask of an image, from world-coordinate nodule annotations.

    Args:
        lps: annotations are in LPS patient coordinates (LUNA16's ``annotations.csv``); False for RAS.
    """

    backend = [TransformBackends.NUMPY]

    def __init__(self, lps: bool = True) -> None:
        self.lps = lps

    def __call__(self, image: MetaTensor, nodules: Sequence[Sequence[float]]) -> MetaTensor:
        affine = image.affine.numpy() if isinstance(image, MetaTensor) else np.eye(4)
        mask = nodule_mask(image.shape[1:], affine, nodules, self.lps)
        label = MetaTensor(torch.from_numpy(mask[np.newaxis]), meta=dict(image.meta) if isinstance(image, MetaTensor) else {})
        if isinstance(image, MetaTensor):
            label.affine = image.affine.clone()
        return label


class NoduleSpheres(NoduleMask):
    """Deprecated name of :class:`NoduleMask` (the array twin of :class:`~radtl.transforms.NoduleMaskd`)."""

    def __init__(self, lps: bool = True) -> None:
        warnings.warn("NoduleSpheres is deprecated and will be removed in the next release: use NoduleMask",
                      DeprecationWarning, stacklevel=2)
        super().__init__(lps)
