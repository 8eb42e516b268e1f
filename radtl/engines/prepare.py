"""Batch preparation for MONAI's engines: extra network inputs, batch transforms on the device, channels_last."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

__all__ = ["PrepareBatch"]


class PrepareBatch:
    """Move a dict batch to the device as ``(image, label[, args, kwargs])`` for MONAI's engines.

    Args:
        extra_keys: batch keys passed to the network after the image, in order
            (``("sex",)`` for :class:`radtl.networks.BoneAgeRegressor`).
        channels_last: give the image the ``torch.channels_last`` memory format, which
            convolutions run faster in on GPUs (with the network also in channels_last).
        image_key: the batch key of the image.
        label_key: the batch key of the target (absent at inference); the image key itself
            makes the prepared image the target (reconstruction pretraining, input = target).
        batch_transform: applied to the whole ``(N, C, H, W)`` image batch once it is on the
            device: uint8 to float and augmentation batched on the GPU
            (:mod:`radtl.transforms.batch`) instead of image by image in loader workers.
    """

    def __init__(
        self,
        extra_keys: Sequence[str] = (),
        channels_last: bool = False,
        image_key: str = "image",
        label_key: str = "label",
        batch_transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        self.extra_keys = tuple([extra_keys] if isinstance(extra_keys, str) else extra_keys)
        self.channels_last = channels_last
        self.image_key = image_key
        self.label_key = label_key
        self.batch_transform = batch_transform

    def __call__(self, batchdata: dict, device: str | torch.device | None = None, non_blocking: bool = False, **kwargs):
        def to_device(value) -> torch.Tensor:
            return torch.as_tensor(value).to(device=device, non_blocking=non_blocking, **kwargs)

        image = to_device(batchdata[self.image_key])
        if self.batch_transform is not None:
            image = self.batch_transform(image)
        if self.channels_last and image.ndim == 4:
            image = image.contiguous(memory_format=torch.channels_last)
        if self.label_key == self.image_key:
            label = image
        else:
            label = batchdata.get(self.label_key)
            label = to_device(label) if label is not None else None
        if not self.extra_keys:
            return image, label
        missing = [k for k in self.extra_keys if k not in batchdata]
        if missing:
            raise KeyError(f"the network needs {missing} besides the image, and the batch has no such key(s)")
        return image, label, tuple(to_device(batchdata[k]) for k in self.extra_keys), {}
