"""Label transforms, MONAI style: :class:`NoduleMask` draws a ``(1, X, Y, Z)`` nodule mask on an image's grid
from world-coordinate annotations (LUNA16's ``annotations.csv``), by :func:`~radtl.transforms.label.functional.nodule_mask`.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import torch
from monai.data import MetaTensor
from monai.transforms import AsDiscrete, RemoveSmallObjects, Transform
from monai.utils import TransformBackends

from radtl.transforms.label.functional import nodule_mask

__all__ = [
    "CastLabel",
    "NoduleMask",
    "NoduleSpheres",
    "SegmentationMask",
]


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


class CastLabel(Transform):
    """A scalar label (``0`` or ``1``) as a ``(1,)`` tensor of ``dtype``: the target of a one-logit
    ``BCEWithLogitsLoss`` (binary classification with one output).

    Args:
        dtype: the tensor's type.
    """

    backend = [TransformBackends.TORCH]

    def __init__(self, dtype: torch.dtype | str = torch.float32) -> None:
        self.dtype = getattr(torch, dtype) if isinstance(dtype, str) else dtype

    def __call__(self, label) -> torch.Tensor:
        return torch.as_tensor([label], dtype=self.dtype)

class SegmentationMask(Transform):
    """A ``(C, X, Y, Z)`` probability map as the mask a BINARY DICOM-SEG stores (PS3.3 C.8.20.2): thresholded,
    then components smaller than ``min_size`` removed; with ``fractional`` the probabilities unchanged, which a
    FRACTIONAL SEG stores as they are.

    Args:
        threshold: the probability a voxel needs to be in the mask.
        min_size: the smallest component kept, in voxels, or in mm^3 with ``by_measure``.
        by_measure: ``min_size`` is a volume in mm^3 (from the image's pixel spacing).
        fractional: keep the probabilities (a FRACTIONAL SEG) instead of making a mask.
    """

    backend = [TransformBackends.TORCH]

    def __init__(
        self, threshold: float = 0.5, min_size: float = 0, by_measure: bool = False, fractional: bool = False
    ) -> None:
        self.fractional = fractional
        self.discrete = AsDiscrete(threshold=threshold)
        self.remove_small = RemoveSmallObjects(min_size=min_size, by_measure=by_measure)

    def __call__(self, probabilities):
        if self.fractional:
            return probabilities
        return self.remove_small(self.discrete(probabilities))
