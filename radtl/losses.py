"""Losses of the study's downstream tasks that MONAI does not ship as one class."""

from __future__ import annotations

import torch
from monai.losses import DiceLoss
from torch.nn.modules.loss import _Loss

__all__ = ["FalseNegativeDiceLoss"]


class FalseNegativeDiceLoss(_Loss):
    """Soft Dice loss plus a weighted Dice loss over the foreground only, the study's LUNA loss.

    ``loss = D(p, y) + fn_weight * D(p * y, y)``, with ``D`` MONAI's soft Dice loss and ``p`` the
    predicted probabilities. The second term sees only voxels of the ground truth, so it penalises
    missed nodule voxels (false negatives) and nothing else: small nodules are rare voxels, and the
    study weights that term 8x (shared/science/radiologynet.md, LUNA wiring, after the LUNA pipelines
    of Stevens et al., *Deep Learning with PyTorch*, ch. 13).

    Args:
        fn_weight: weight of the false-negative term (8 in the study).
        sigmoid: apply a sigmoid to the input (logits); False when it holds probabilities.
        smooth_nr: Dice numerator smoothing, so an empty target and prediction give zero loss.
        smooth_dr: Dice denominator smoothing.
        batch: sum over the batch before dividing (MONAI's ``batch``); per image by default.
    """

    def __init__(
        self,
        fn_weight: float = 8.0,
        sigmoid: bool = True,
        smooth_nr: float = 1.0,
        smooth_dr: float = 1.0,
        batch: bool = False,
    ) -> None:
        super().__init__()
        self.fn_weight = float(fn_weight)
        self.sigmoid = sigmoid
        self.dice = DiceLoss(smooth_nr=smooth_nr, smooth_dr=smooth_dr, batch=batch)

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """``input``: ``(B, 1, H, W[, D])`` logits (or probabilities); ``target``: the same shape, 0 or 1."""
        probabilities = torch.sigmoid(input) if self.sigmoid else input
        target = target.to(probabilities.dtype)
        return self.dice(probabilities, target) + self.fn_weight * self.dice(probabilities * target, target)
