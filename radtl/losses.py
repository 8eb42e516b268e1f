"""Losses that MONAI does not ship as one class: the study's downstream losses, DINO's and iBOT's.

:class:`DINOLoss` and :class:`IBOTPatchLoss` are the self-distillation losses of Radio DINO (DINO)
and OmniRad (DINOv2: DINO + iBOT, weight 1 each), shared/science/radio-dino-omnirad.md. Both hold
their teacher centre as a buffer, so checkpointing the loss module (``state_dict``) keeps it
across a resumed run.
"""

from __future__ import annotations

from collections.abc import Callable

import ignite.distributed as idist
import torch
import torch.nn.functional as F
from monai.losses import DiceLoss
from torch import nn
from torch.nn.modules.loss import _Loss

__all__ = ["DINOLoss", "FalseNegativeDiceLoss", "IBOTPatchLoss", "teacher_temperature"]


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


def teacher_temperature(
    epoch: int,
    teacher_temp: float | Callable[[int], float],
    warmup_teacher_temp: float,
    warmup_teacher_temp_epochs: int,
) -> float:
    """The teacher's temperature at ``epoch`` (0-based): DINO's linear warm-up, then constant.

    DINO's ``teacher_temp_schedule`` (Caron et al. 2021, Sec. 3.1 and Appendix): over the first
    ``warmup_teacher_temp_epochs`` epochs the temperature rises linearly from
    ``warmup_teacher_temp`` to ``teacher_temp`` (``numpy.linspace``, both ends included), then
    stays there. A callable ``teacher_temp`` is the schedule itself and replaces the warm-up.
    """
    if callable(teacher_temp):
        return float(teacher_temp(epoch))
    if epoch >= warmup_teacher_temp_epochs:
        return float(teacher_temp)
    if warmup_teacher_temp_epochs == 1:
        return float(warmup_teacher_temp)
    return warmup_teacher_temp + (teacher_temp - warmup_teacher_temp) * epoch / (warmup_teacher_temp_epochs - 1)


@torch.no_grad()
def _update_center(center: torch.Tensor, batch_center: torch.Tensor, count: int, momentum: float) -> None:
    """``c <- m c + (1 - m) mean`` with the mean over every process's batch (Caron et al. 2021, Eq. 4).

    ``batch_center`` is this process's sum over its ``count`` items; it is summed over processes
    with ``ignite.distributed`` (a no-op in a single process) and divided by the total count.
    """
    total = idist.all_reduce(batch_center)
    center.mul_(momentum).add_(total / (count * idist.get_world_size()), alpha=1.0 - momentum)


class _SelfDistillationLoss(nn.Module):
    """What DINO's and iBOT's losses share: the temperatures, the teacher's warm-up and a centre buffer."""

    def __init__(
        self,
        out_dim: int,
        center_shape: tuple[int, ...],
        student_temp: float,
        teacher_temp: float | Callable[[int], float],
        warmup_teacher_temp: float,
        warmup_teacher_temp_epochs: int,
        center_momentum: float,
    ) -> None:
        super().__init__()
        self.out_dim = out_dim
        self.student_temp = student_temp
        self.teacher_temp = teacher_temp
        self.warmup_teacher_temp = warmup_teacher_temp
        self.warmup_teacher_temp_epochs = warmup_teacher_temp_epochs
        self.center_momentum = center_momentum
        self.register_buffer("center", torch.zeros(*center_shape, out_dim))

    def teacher_temperature(self, epoch: int) -> float:
        """The teacher's temperature at ``epoch`` (0-based)."""
        return teacher_temperature(epoch, self.teacher_temp, self.warmup_teacher_temp, self.warmup_teacher_temp_epochs)


class DINOLoss(_SelfDistillationLoss):
    """DINO's self-distillation loss over multi-crop views (Caron et al. 2021, Eq. 1 and Eq. 4).

    For every global crop ``t`` the teacher's distribution is centred and sharpened,
    ``P_t = softmax((g_t - c) / tau_t)``; every other crop ``s`` of the student gives
    ``log P_s = log_softmax(g_s / tau_s)``, and the loss is the cross-entropy
    ``-sum_k P_t log P_s`` averaged over the images and then over all pairs with ``s != t``
    (a view is never matched with itself). After each call the centre moves towards the
    teacher's batch mean, ``c <- m c + (1 - m) mean(g_t)``, averaged over all processes
    (``ignite.distributed``; a single process works unchanged). The centre is the buffer
    ``center``, saved with the module's state dict.

    The teacher temperature warms up linearly from ``warmup_teacher_temp`` to ``teacher_temp``
    over the first ``warmup_teacher_temp_epochs`` epochs (:func:`teacher_temperature`); pass a
    callable of the epoch as ``teacher_temp`` for any other schedule. OmniRad: 0.04 -> 0.07.

    Args:
        out_dim: prototypes ``K``, the heads' ``out_dim``.
        global_crops: crops the teacher sees; they come first in the student's crops.
        student_temp: the student's temperature ``tau_s``.
        teacher_temp: the teacher's temperature after warm-up, or a callable of the epoch.
        warmup_teacher_temp: the teacher's temperature at epoch 0.
        warmup_teacher_temp_epochs: epochs of linear warm-up (0: none).
        center_momentum: the centre's momentum ``m``.
    """

    def __init__(
        self,
        out_dim: int,
        global_crops: int = 2,
        student_temp: float = 0.1,
        teacher_temp: float | Callable[[int], float] = 0.07,
        warmup_teacher_temp: float = 0.04,
        warmup_teacher_temp_epochs: int = 30,
        center_momentum: float = 0.9,
    ) -> None:
        if global_crops < 1:
            raise ValueError(f"global_crops must be at least 1, got {global_crops}")
        super().__init__(out_dim, (1,), student_temp, teacher_temp, warmup_teacher_temp, warmup_teacher_temp_epochs,
                         center_momentum)
        self.global_crops = global_crops

    def forward(self, student_logits: torch.Tensor, teacher_logits: torch.Tensor, epoch: int = 0) -> torch.Tensor:
        """The loss, averaged over cross-view pairs; updates ``center`` with the teacher's batch.

        Args:
            student_logits: ``(n_crops * N, K)``, crop by crop, the ``global_crops`` first.
            teacher_logits: ``(global_crops * N, K)``, crop by crop.
            epoch: the epoch (0-based) that sets the teacher's temperature.

        Raises:
            ValueError: logits not ``(rows, out_dim)``; rows not whole crops of ``N`` images;
                no cross-view pair (one crop only).
        """
        for name, logits in (("student", student_logits), ("teacher", teacher_logits)):
            if logits.dim() != 2 or logits.shape[1] != self.out_dim:
                raise ValueError(f"{name} logits must be (rows, {self.out_dim}), got {list(logits.shape)}")
        if teacher_logits.shape[0] % self.global_crops:
            raise ValueError(
                f"teacher logits hold {teacher_logits.shape[0]} rows, not {self.global_crops} global crops of N images"
            )
        images = teacher_logits.shape[0] // self.global_crops
        if images == 0 or student_logits.shape[0] % images or student_logits.shape[0] < teacher_logits.shape[0]:
            raise ValueError(
                f"student logits hold {student_logits.shape[0]} rows, not the {self.global_crops} global crops "
                f"(and any local crops) of the teacher's {images} images"
            )
        crops = student_logits.shape[0] // images
        if crops < 2:
            raise ValueError("DINO compares different views: give at least two crops")
        student = F.log_softmax(student_logits.float() / self.student_temp, dim=-1).chunk(crops)
        temperature = self.teacher_temperature(epoch)
        teacher = F.softmax((teacher_logits.detach().float() - self.center) / temperature, dim=-1).chunk(
            self.global_crops
        )
        total = student_logits.new_zeros((), dtype=torch.float32)
        pairs = 0
        for t, target in enumerate(teacher):
            for s, log_probabilities in enumerate(student):
                if s == t:
                    continue
                total = total + torch.sum(-target * log_probabilities, dim=-1).mean()
                pairs += 1
        teacher_float = teacher_logits.detach().float()
        _update_center(self.center, teacher_float.sum(dim=0, keepdim=True), len(teacher_float), self.center_momentum)
        return total / pairs


class IBOTPatchLoss(_SelfDistillationLoss):
    """iBOT's masked-patch self-distillation loss (Zhou et al. 2022, Eq. 2).

    The student sees a global crop with some patches replaced by a mask token; the teacher sees
    it whole. For each masked patch the teacher's centred, sharpened distribution
    ``softmax((g_t - c) / tau_t)`` is the target of the student's ``log_softmax(g_s / tau_s)``;
    the cross-entropy is averaged over each image's masked patches, then over all images of all
    global crops (an image without masked patches counts as 0, as in iBOT's and DINOv2's code).
    Unmasked patches do not enter the loss. The centre, the buffer ``center`` ``(1, 1, K)``, is
    updated as in :class:`DINOLoss` from the mean of the teacher's patch logits (all patches).

    The teacher temperature warms up as in :class:`DINOLoss` (iBOT's defaults: 0.04 -> 0.07 over
    30 epochs); ``warmup_teacher_temp_epochs=0`` keeps ``teacher_temp`` from the start.

    Args:
        out_dim: prototypes ``K`` of the patch head.
        student_temp: the student's temperature.
        teacher_temp: the teacher's temperature after warm-up, or a callable of the epoch.
        warmup_teacher_temp: the teacher's temperature at epoch 0.
        warmup_teacher_temp_epochs: epochs of linear warm-up (0: none).
        center_momentum: the centre's momentum.
    """

    def __init__(
        self,
        out_dim: int,
        student_temp: float = 0.1,
        teacher_temp: float | Callable[[int], float] = 0.07,
        warmup_teacher_temp: float = 0.04,
        warmup_teacher_temp_epochs: int = 30,
        center_momentum: float = 0.9,
    ) -> None:
        super().__init__(out_dim, (1, 1), student_temp, teacher_temp, warmup_teacher_temp, warmup_teacher_temp_epochs,
                         center_momentum)

    def forward(
        self,
        student_patch_logits: torch.Tensor,
        teacher_patch_logits: torch.Tensor,
        masks: torch.Tensor,
        epoch: int = 0,
    ) -> torch.Tensor:
        """The loss over masked patches; updates ``center`` with the teacher's patches.

        Args:
            student_patch_logits: ``(M, L, K)``, the masked global crops' patches (``M`` images
                over all global crops).
            teacher_patch_logits: ``(M, L, K)``, the same crops unmasked, in the same order.
            masks: ``(M, L)`` bool, True for the patches the student saw masked.
            epoch: the epoch (0-based) that sets the teacher's temperature.

        Raises:
            ValueError: shapes that do not match.
        """
        if student_patch_logits.shape != teacher_patch_logits.shape or student_patch_logits.dim() != 3:
            raise ValueError(
                f"student and teacher patch logits must both be (M, L, {self.out_dim}), "
                f"got {list(student_patch_logits.shape)} and {list(teacher_patch_logits.shape)}"
            )
        if student_patch_logits.shape[2] != self.out_dim:
            raise ValueError(f"patch logits must have {self.out_dim} prototypes, got {student_patch_logits.shape[2]}")
        if tuple(masks.shape) != tuple(student_patch_logits.shape[:2]):
            raise ValueError(f"masks must be (M, L) = {list(student_patch_logits.shape[:2])}, got {list(masks.shape)}")
        teacher_float = teacher_patch_logits.detach().float()
        temperature = self.teacher_temperature(epoch)
        target = F.softmax((teacher_float - self.center) / temperature, dim=-1)
        log_probabilities = F.log_softmax(student_patch_logits.float() / self.student_temp, dim=-1)
        per_patch = torch.sum(-target * log_probabilities, dim=-1)
        weights = masks.to(per_patch.dtype)
        per_image = (per_patch * weights).sum(dim=-1) / weights.sum(dim=-1).clamp(min=1.0)
        _update_center(
            self.center,
            teacher_float.mean(dim=1).sum(dim=0, keepdim=True).unsqueeze(0),
            len(teacher_float),
            self.center_momentum,
        )
        return per_image.mean()
