"""What the ``radtl segment`` tests share: the bundle's plain U-Net at four channels a level, untrained, and the
command run with it.

Untrained, the network's output bias decides what it finds: ``foreground_prior=0.01`` finds nothing, ``0.9999``
every voxel (with threshold 0 any prior does), which is all tests of the command, its SEG, preview and SR need;
it segments a sample series in a fraction of a second. Inference on a trained model is tested in
tests/bundles/test_segmentation_bundle.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from radtl.cli import main
from radtl.networks import create

__all__ = ["FEATURES", "TINY_NETWORK", "radtl_segment", "untrained_unet"]

FEATURES = [4, 4, 4, 4, 4, 4]
#: The bundle settings that make the network the tiny untrained U-Net of :func:`untrained_unet`.
TINY_NETWORK = ["--set", "backbone=unet", "--set", f"network_def#features={json.dumps(FEATURES)}", "--set", "device=cpu"]


def untrained_unet(path: Path, foreground_prior: float = 0.01) -> Path:
    """Save untrained weights as the bundle's CheckpointSaver saves them; returns ``path``."""
    network = create("unet", in_channels=3, out_channels=1, foreground_prior=foreground_prior, features=FEATURES)
    torch.save({"model": network.state_dict()}, path)
    return path


def radtl_segment(series: Path, out: str | Path, checkpoint: Path, *options: str) -> int:
    """Run ``radtl segment`` with the tiny network; its exit status."""
    try:
        main(["segment", str(series), "--out", str(out), "--checkpoint", str(checkpoint), *TINY_NETWORK, *options])
    except SystemExit as exit_info:
        return exit_info.code
    return 0
