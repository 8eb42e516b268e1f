"""Putting a bundle's network where it trains: the ``network`` every bundle's ``train.json`` defines."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["place"]


def place(network: nn.Module, device: str | torch.device, channels_last: bool = False) -> nn.Module:
    """``network`` moved to ``device``, its 4-D weights in channels-last memory format when ``channels_last``
    (faster convolutions with AMP on recent GPUs; PyTorch's "channels last" tutorial), else contiguous.

    Args:
        network: the module to move (moved in place, as ``nn.Module.to`` does).
        device: where it runs.
        channels_last: whether to store 4-D parameters as NHWC; the batches then come channels-last too
            (``radtl.engines.PrepareBatch(channels_last=...)``).

    Returns:
        ``network``, for wiring in JSON: ``{"_target_": "radtl.networks.place", "network": "@network_def", ...}``.
    """
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    return network.to(device, memory_format=memory_format)
