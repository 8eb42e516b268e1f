"""Spatial transforms, MONAI style (``(C, H, W)`` channel-first): :class:`ResizeLongestPad`."""

from __future__ import annotations

import numpy as np
import torch
from monai.config import NdarrayOrTensor
from monai.data import MetaTensor
from monai.transforms import Transform
from monai.utils import TransformBackends
from monai.utils.type_conversion import convert_to_dst_type

from radtl.dicom.image import resize_longest_pad, resized_shape

__all__ = ["ResizeLongestPad"]


class ResizeLongestPad(Transform):
    """Fit a ``(C, H, W)`` image into ``(C, size, size)``: longer side ``size``, aspect kept, centred, zero padding.

    The RadiologyNET resize (thesis 2.3.2), by :func:`~radtl.dicom.image.resize_longest_pad`
    (PIL's antialiased bilinear filter in float32, channel by channel): the same pixels as ``radtl convert``'s
    PNG export, the pack and the pseudo-labelling encoders. It replaces MONAI's
    ``Resize(size_mode="longest", anti_aliasing=True)`` + ``SpatialPad`` pair.

    On a MetaTensor the ``affine`` is updated as MONAI's ``Resize`` and ``SpatialPad`` update it (output
    pixel to the same physical point); ``spatial_shape`` keeps the loaded image's shape, as MONAI's
    spatial transforms keep it.

    Args:
        size: the side of the square; 0 keeps the image unchanged.
    """

    backend = [TransformBackends.TORCH, TransformBackends.NUMPY]

    def __init__(self, size: int) -> None:
        self.size = int(size)

    def __call__(self, img: NdarrayOrTensor) -> NdarrayOrTensor:
        """``img``: ``(C, H, W)``; returns ``(C, size, size)`` float32 of ``img``'s type (MetaTensor, tensor or array)."""
        if img.ndim != 3:
            raise ValueError(f"ResizeLongestPad takes a (C, H, W) image, got shape {tuple(img.shape)}")
        if self.size <= 0:
            return img
        array = img.detach().cpu().numpy() if isinstance(img, torch.Tensor) else np.asarray(img)
        square = resize_longest_pad(np.moveaxis(array.astype(np.float32, copy=False), 0, -1), self.size)
        out = np.ascontiguousarray(np.moveaxis(square, -1, 0))
        result = convert_to_dst_type(out, img, dtype=np.float32 if isinstance(img, np.ndarray) else torch.float32)[0]
        if isinstance(img, MetaTensor) and isinstance(result, MetaTensor):
            result.affine = img.affine @ self._grid_change(img.affine, *array.shape[1:]).to(img.affine)
        return result

    def _grid_change(self, affine: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """The affine from output pixel indices to input pixel indices (pixel centres, as PIL samples them)."""
        change = torch.eye(affine.shape[-1], dtype=torch.float64)
        resized = resized_shape(height, width, self.size)
        for axis, (before, after) in enumerate(zip((height, width), resized)):
            step = before / after
            offset = (self.size - after) // 2
            change[axis, axis] = step
            change[axis, -1] = 0.5 * step - 0.5 - offset * step
        return change
