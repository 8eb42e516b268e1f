"""Self-distillation pretraining of ViTs with DINO and iBOT, as a MONAI trainer.

Radio DINO pretrains ViTs on RadImageNet with DINO (Caron et al. 2021); OmniRad with DINOv2's
DINO + iBOT losses on global crops only (shared/science/radio-dino-omnirad.md). One step differs
from supervised training (a teacher, crops, an EMA update), so :class:`DINOTrainer` subclasses
MONAI's ``Trainer`` as ``GanTrainer`` does, and everything else (handlers, checkpoints, metrics,
bundles) works as for ``SupervisedTrainer``::

    student = DINOModel(create("vit_small", num_classes=0, patch_size=16), DINOHead(384, 65536))
    teacher = build_teacher(student)
    optimizer = torch.optim.AdamW(param_groups_for_weight_decay(student), lr=3e-4, weight_decay=0.04)
    steps = epochs * len(loader)
    trainer = DINOTrainer(
        device, epochs, loader, student, teacher, optimizer, DINOLoss(65536), crops=my_crops,
        lr_schedule=cosine_schedule(3e-4, 1e-6, steps, warmup_iterations=10 * len(loader)),
        wd_schedule=cosine_schedule(0.04, 0.4, steps),
        momentum_schedule=cosine_schedule(0.996, 1.0, steps),
    )
    trainer.run()
    torch.save(teacher.backbone.state_dict(), "vit_small_dino.pth")  # loads with load_pretrained
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch
from monai.data import MetaTensor
from monai.engines import Trainer
from monai.engines.utils import IterationEvents, default_metric_cmp_fn
from monai.engines.workflow import Workflow
from torch import nn
from torch.nn.parallel import DataParallel, DistributedDataParallel
from torch.optim import Optimizer

from radtl.losses import DINOLoss, IBOTPatchLoss
from radtl.networks.dino import DINOHead, DINOModel
from radtl.transforms.batch.functional import to_unit_float

if TYPE_CHECKING:
    from collections.abc import Iterable

    from ignite.engine import EventEnum
    from ignite.metrics import Metric
    from torch.utils.data import DataLoader

__all__ = [
    "DINOTrainer",
    "build_teacher",
    "cosine_schedule",
    "describe_pretraining",
    "param_groups_for_weight_decay",
    "prepare_images",
    "random_patch_masks",
    "update_teacher",
]

#: Parameters that are never weight-decayed besides biases and norms: ViT and iBOT tokens.
NO_WEIGHT_DECAY = ("cls_token", "mask_token", "position_embeddings")
#: The teacher's momentum when no schedule is given (DINO's base value).
DEFAULT_MOMENTUM = 0.996


def describe_pretraining(ibot: bool, local_crops: int) -> str:
    """How a DINO run pretrained, as its ``backbone.pt`` records it (:class:`radtl.engines.BackboneExport`'s
    ``pretraining``): DINO's teacher (Caron et al. 2021), with iBOT's masked patch loss (Zhou et al. 2022) when
    ``ibot``, with global crops only (OmniRad) when ``local_crops`` is 0.

    Args:
        ibot: whether the run adds iBOT's patch loss.
        local_crops: the number of local crops per image.
    """
    return (
        "DINO self-distillation (teacher)"
        + (" with iBOT" if ibot else "")
        + (", global crops only (OmniRad)" if local_crops == 0 else "")
    )


def cosine_schedule(
    base: float, final: float, iterations: int, warmup_iterations: int = 0, warmup_start: float = 0.0
) -> Callable[[int], float]:
    """DINO's ``cosine_scheduler`` as a function of the iteration index (0-based).

    A linear warm-up from ``warmup_start`` to ``base`` over ``warmup_iterations`` (both ends
    included, as ``numpy.linspace``), then a half cosine from ``base`` to ``final`` over the rest:
    ``final + (base - final) * (1 + cos(pi * i / n)) / 2`` at step ``i`` of ``n``. Past
    ``iterations`` the value stays at ``final``, so a run resumed or extended does not fail.

    Args:
        base: value at the end of the warm-up (DINO's peak learning rate, weight decay at the start...).
        final: value reached at ``iterations``.
        iterations: length of the schedule (epochs x iterations per epoch).
        warmup_iterations: iterations of linear warm-up.
        warmup_start: value at iteration 0 when there is a warm-up.

    Raises:
        ValueError: ``iterations`` not above ``warmup_iterations``, or a negative warm-up.
    """
    if warmup_iterations < 0 or iterations <= warmup_iterations:
        raise ValueError(
            f"a cosine schedule needs 0 <= warmup_iterations < iterations, got {warmup_iterations} and {iterations}"
        )
    cosine_iterations = iterations - warmup_iterations

    def schedule(iteration: int) -> float:
        if iteration < 0:
            raise ValueError(f"iterations count from 0, got {iteration}")
        if iteration < warmup_iterations:
            if warmup_iterations == 1:
                return float(warmup_start)
            return warmup_start + (base - warmup_start) * iteration / (warmup_iterations - 1)
        step = min(iteration - warmup_iterations, cosine_iterations)
        return final + 0.5 * (base - final) * (1.0 + math.cos(math.pi * step / cosine_iterations))

    return schedule


def unwrap(model: nn.Module) -> nn.Module:
    """The model inside a ``DistributedDataParallel`` or ``DataParallel`` wrapper (or the model)."""
    return model.module if isinstance(model, (DistributedDataParallel, DataParallel)) else model


def param_groups_for_weight_decay(model: nn.Module) -> list[dict]:
    """Optimizer parameter groups: weight decay on weights, none on biases, norms and tokens.

    DINO's ``get_params_groups``: biases and every 1-D parameter (norm scales and shifts) go
    without weight decay; so do the class token, the mask token and the position embeddings.
    Frozen parameters (the prototypes' norms under ``norm_last_layer``) are left out. The first
    group takes the optimizer's weight decay (and :class:`DINOTrainer`'s ``wd_schedule``).

    Returns:
        ``[{"params": decayed}, {"params": not_decayed, "weight_decay": 0.0}]``, empty groups left out.
    """
    decayed: list[nn.Parameter] = []
    not_decayed: list[nn.Parameter] = []
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        leaf = name.rpartition(".")[2]
        if leaf == "bias" or parameter.ndim <= 1 or leaf in NO_WEIGHT_DECAY:
            not_decayed.append(parameter)
        else:
            decayed.append(parameter)
    groups = [{"params": decayed}, {"params": not_decayed, "weight_decay": 0.0}]
    return [group for group in groups if group["params"]]


def build_teacher(student: nn.Module) -> DINOModel:
    """The teacher: a deep copy of the student (unwrapped from DDP), frozen and in eval mode.

    The teacher starts from the student's weights and only moves by :func:`update_teacher`
    (Caron et al. 2021, Sec. 3.1); it is never wrapped in ``DistributedDataParallel``, since every
    process applies the same EMA update to the same (all-reduced) student.
    """
    teacher = copy.deepcopy(unwrap(student))
    for parameter in teacher.parameters():
        parameter.grad = None
    teacher.requires_grad_(False)
    return teacher.eval()


@torch.no_grad()
def update_teacher(student: nn.Module, teacher: nn.Module, momentum: float) -> None:
    """The teacher's exponential moving average of the student: ``t <- m t + (1 - m) s``.

    Caron et al. 2021, Sec. 3.1 (the momentum encoder); ``momentum`` 1 leaves the teacher as it
    is, 0 copies the student. Parameters are matched by name; buffers are left alone (a ViT has
    no running statistics).

    Raises:
        ValueError: ``momentum`` outside [0, 1], or student and teacher of different architectures.
    """
    if not 0.0 <= momentum <= 1.0:
        raise ValueError(f"the teacher's momentum must lie in [0, 1], got {momentum}")
    student_parameters = dict(unwrap(student).named_parameters())
    teacher_parameters = dict(unwrap(teacher).named_parameters())
    if student_parameters.keys() != teacher_parameters.keys():
        different = sorted(student_parameters.keys() ^ teacher_parameters.keys())
        raise ValueError(f"the teacher and the student have different parameters: {different[:4]}")
    for name, parameter in teacher_parameters.items():
        parameter.mul_(momentum).add_(student_parameters[name].detach(), alpha=1.0 - momentum)


def random_patch_masks(
    images: int,
    patches: int,
    ratio: tuple[float, float] = (0.1, 0.5),
    probability: float = 0.5,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Random per-patch masks for iBOT, ``(images, patches)`` bool (True: masked).

    As DINOv2's mask collation, without blocks: ``int(images * probability)`` images are masked,
    their masking ratios spread evenly over ``ratio`` (image ``i`` draws uniformly in the ``i``-th
    of equal sub-intervals), each masking ``int(patches * r)`` patches drawn at random; the other
    images are not masked, and the order is shuffled. Draws from torch's global generator.
    """
    _check_masking(ratio, probability)
    low, high = ratio
    masks = torch.zeros(images, patches, dtype=torch.bool)
    masked = int(images * probability)
    bounds = torch.linspace(low, high, masked + 1).tolist()
    for index in range(masked):
        drawn = bounds[index] + (bounds[index + 1] - bounds[index]) * torch.rand(()).item()
        masks[index, torch.randperm(patches)[: int(patches * drawn)]] = True
    return masks[torch.randperm(images)].to(device)


def _check_masking(ratio: tuple[float, float], probability: float) -> None:
    if len(ratio) != 2 or not 0.0 <= ratio[0] <= ratio[1] <= 1.0:
        raise ValueError(f"mask ratios must be (low, high) with 0 <= low <= high <= 1, got {ratio}")
    if not 0.0 <= probability <= 1.0:
        raise ValueError(f"the masking probability must lie in [0, 1], got {probability}")


def prepare_images(
    batchdata: Mapping | Sequence | torch.Tensor,
    device: torch.device | str | None = None,
    non_blocking: bool = False,
    channels: int | None = None,
    **kwargs: Any,
) -> torch.Tensor:
    """The images of a batch on ``device``, float in [0, 1]: the default ``prepare_batch`` of :class:`DINOTrainer`.

    Takes ``batchdata["image"]`` from a dict batch, the first item of a tuple batch, or the
    tensor itself; ``uint8`` images are divided by 255 (after the move, which copies 4x fewer
    bytes); a ``MetaTensor`` becomes a plain tensor. ``channels`` repeats grey ``(N, 1, H, W)``
    images to that many channels (3: the study's grey copies, the fine-tuning bundles' input).
    """
    if isinstance(batchdata, Mapping):
        images = batchdata["image"]
    elif isinstance(batchdata, torch.Tensor):
        images = batchdata
    else:
        images = batchdata[0]
    if isinstance(images, MetaTensor):
        images = images.as_tensor()
    images = torch.as_tensor(images).to(device=device, non_blocking=non_blocking, **kwargs)
    images = to_unit_float(images)
    if channels is not None and images.shape[1] != channels:
        images = images.repeat(1, channels // images.shape[1], *([1] * (images.dim() - 2)))
    return images


def _cancel_last_layer_gradients(model: nn.Module) -> None:
    """Drop the gradients of every DINO head's prototypes, so the optimizer leaves them unchanged.

    DINO's ``cancel_gradients_last_layer`` (Caron et al. 2021, Appendix): freezing the last layer
    during the first epoch stabilises training. AdamW skips a parameter whose ``grad`` is None,
    weight decay included.
    """
    for module in unwrap(model).modules():
        if isinstance(module, DINOHead):
            for parameter in module.last_layer.parameters():
                parameter.grad = None


class DINOTrainer(Trainer):
    """DINO self-distillation (Caron et al. 2021) with iBOT's masked-patch loss (Zhou et al. 2022).

    Each iteration (Caron et al. 2021, Algorithm 1; Zhou et al. 2022, Algorithm 1):

    1. ``prepare_batch`` gives images ``(N, C, H, W)`` in [0, 1]; ``crops`` turns them into
       global and local crops (the caller's augmentations, e.g. RandomResizedCrop, flips,
       blur; OmniRad uses global crops only).
    2. The teacher, in eval mode (a ViT has no batch norm, so train and eval differ only by
       dropout, which a teacher should not apply), sees the global crops without gradients.
    3. The student sees every crop; with ``ibot_loss``, a ``mask_prob`` share of the global crops'
       images have a random ``mask_ratio`` share of their patches masked (:func:`random_patch_masks`).
    4. ``loss = DINOLoss + ibot_weight * IBOTPatchLoss``; backward; the gradient norm over all the
       student's parameters is clipped to ``clip_grad`` (DINOv2's global norm; DINO clips each
       parameter's norm); during the first ``freeze_last_layer_epochs`` epochs the heads'
       prototypes get no update; optimizer step.
    5. The teacher moves towards the student by :func:`update_teacher`.

    ``lr_schedule``, ``wd_schedule`` and ``momentum_schedule`` are called with the global
    iteration index (0-based, ``engine.state.iteration - 1``, which a resumed run restores): the
    learning rate is set on every parameter group, the weight decay on the groups that had one
    when the trainer was built (:func:`param_groups_for_weight_decay`). The losses' temperatures
    follow the epoch (0-based).

    ``engine.state.output`` is ``{"loss", "dino_loss"[, "ibot_loss"], "lr", "weight_decay",
    "momentum"}``: the losses as detached scalar tensors, the rest as floats. A non-finite loss
    stops training with ``FloatingPointError``, as DINO does.

    Resuming after a kill: the trainer is an Ignite engine, so ``ignite.handlers.Checkpoint``
    with ``{"trainer": trainer, "student": student, "teacher": teacher, "optimizer": optimizer,
    "dino_loss": loss_function, "ibot_loss": ibot_loss}`` saves and restores everything: the
    iteration and epoch (hence the schedules), both networks, the optimizer's moments, and the
    losses' centres, which are buffers of the loss modules.

    The networks and loss modules must be on ``device`` (as for MONAI's trainers). With
    ``amp``, forward passes and losses run under bfloat16 autocast (CUDA or CPU); bfloat16 needs
    no gradient scaler, so none is made.

    Args:
        device: the device the batches go to.
        max_epochs: epochs to train.
        train_data_loader: batches of images (see ``prepare_batch``).
        student: a :class:`~radtl.networks.DINOModel`, possibly in ``DistributedDataParallel``.
        teacher: the teacher :class:`~radtl.networks.DINOModel`, from :func:`build_teacher`.
        optimizer: the student's optimizer (AdamW in DINO and DINOv2).
        loss_function: the :class:`~radtl.losses.DINOLoss`.
        crops: ``(N, C, H, W)`` images to ``(global crops, local crops)``, lists of
            ``(N, C, h, w)`` tensors; as many global crops as ``loss_function.global_crops``.
        ibot_loss: the :class:`~radtl.losses.IBOTPatchLoss`; needs networks with a patch head.
        ibot_weight: weight of the iBOT loss (1.0 in OmniRad).
        mask_ratio: range of the share of patches masked in a masked image.
        mask_prob: share of the global crops' images that are masked.
        lr_schedule: learning rate by iteration, or None to keep the optimizer's.
        wd_schedule: weight decay by iteration, or None to keep the optimizer's.
        momentum_schedule: teacher momentum by iteration, a constant, or None for 0.996.
        freeze_last_layer_epochs: epochs during which the heads' last layers stay fixed.
        clip_grad: maximum gradient norm, or None/0 for no clipping.
        amp: bfloat16 autocast.
        prepare_batch: ``(batchdata, device, non_blocking, **kwargs) -> images``;
            :func:`prepare_images` by default.
        epoch_length: iterations per epoch, default ``len(train_data_loader)``.
        non_blocking: asynchronous host-to-device copies.
        iteration_update: replaces :meth:`_iteration`, as in MONAI's trainers.
        key_train_metric: MONAI's key metric, computed from ``engine.state.output``.
        additional_metrics: more Ignite metrics.
        metric_cmp_fn: compares the key metric with the best so far.
        train_handlers: handlers with ``attach(engine)`` (checkpoints, stats, TensorBoard).
        event_names: additional events to register.
        event_to_attr: maps events to state attributes.
        optim_set_to_none: ``optimizer.zero_grad(set_to_none=...)``.
        to_kwargs: more arguments for ``prepare_batch``'s tensor move.

    Raises:
        ValueError: iBOT without patch heads; invalid masking settings.
    """

    def __init__(
        self,
        device: str | torch.device,
        max_epochs: int,
        train_data_loader: Iterable | DataLoader,
        student: nn.Module,
        teacher: DINOModel,
        optimizer: Optimizer,
        loss_function: DINOLoss,
        crops: Callable[[torch.Tensor], tuple[list[torch.Tensor], list[torch.Tensor]]],
        ibot_loss: IBOTPatchLoss | None = None,
        ibot_weight: float = 1.0,
        mask_ratio: tuple[float, float] = (0.1, 0.5),
        mask_prob: float = 0.5,
        lr_schedule: Callable[[int], float] | None = None,
        wd_schedule: Callable[[int], float] | None = None,
        momentum_schedule: Callable[[int], float] | float | None = None,
        freeze_last_layer_epochs: int = 1,
        clip_grad: float | None = 3.0,
        amp: bool = False,
        prepare_batch: Callable | None = None,
        epoch_length: int | None = None,
        non_blocking: bool = False,
        iteration_update: Callable | None = None,
        key_train_metric: dict[str, Metric] | None = None,
        additional_metrics: dict[str, Metric] | None = None,
        metric_cmp_fn: Callable = default_metric_cmp_fn,
        train_handlers: Sequence | None = None,
        event_names: list[str | EventEnum | type[EventEnum]] | None = None,
        event_to_attr: dict | None = None,
        optim_set_to_none: bool = False,
        to_kwargs: dict | None = None,
    ) -> None:
        super().__init__(
            device=device,
            max_epochs=max_epochs,
            data_loader=train_data_loader,
            epoch_length=epoch_length,
            non_blocking=non_blocking,
            prepare_batch=prepare_images if prepare_batch is None else prepare_batch,
            iteration_update=iteration_update,
            key_metric=key_train_metric,
            additional_metrics=additional_metrics,
            metric_cmp_fn=metric_cmp_fn,
            handlers=train_handlers,
            amp=amp,
            event_names=event_names,
            event_to_attr=event_to_attr,
            decollate=False,  # the output is scalars
            to_kwargs=to_kwargs,
        )
        if ibot_loss is not None:
            for role, network in (("student", student), ("teacher", teacher)):
                if not getattr(unwrap(network), "has_patch_head", False):
                    raise ValueError(
                        f"iBOT needs a patch head: build the {role} DINOModel with patch_head (or patch_head=head)"
                    )
        _check_masking(mask_ratio, mask_prob)
        self.student = student
        self.teacher = teacher
        self.optimizer = optimizer
        self.loss_function = loss_function
        self.crops = crops
        self.ibot_loss = ibot_loss
        self.ibot_weight = ibot_weight
        self.mask_ratio = tuple(mask_ratio)
        self.mask_prob = mask_prob
        self.lr_schedule = lr_schedule
        self.wd_schedule = wd_schedule
        self.momentum_schedule = DEFAULT_MOMENTUM if momentum_schedule is None else momentum_schedule
        self.freeze_last_layer_epochs = freeze_last_layer_epochs
        self.clip_grad = clip_grad
        self.optim_set_to_none = optim_set_to_none
        self.decayed_groups = [
            index for index, group in enumerate(optimizer.param_groups) if group.get("weight_decay", 0.0) > 0
        ]

    def run(self) -> None:  # type: ignore[override]
        """Train; called again, go on from the current state. No gradient scaler: bfloat16 needs none."""
        Workflow.run(self)

    def apply_schedules(self, iteration: int) -> dict[str, float]:
        """Set the optimizer's learning rate and weight decay for ``iteration``; return them and the momentum."""
        groups = self.optimizer.param_groups
        if self.lr_schedule is not None:
            rate = float(self.lr_schedule(iteration))
            for group in groups:
                group["lr"] = rate
        if self.wd_schedule is not None:
            decay = float(self.wd_schedule(iteration))
            for index in self.decayed_groups:
                groups[index]["weight_decay"] = decay
        momentum = self.momentum_schedule
        momentum = float(momentum(iteration) if callable(momentum) else momentum)
        weight_decay = groups[self.decayed_groups[0]]["weight_decay"] if self.decayed_groups else 0.0
        return {"lr": float(groups[0]["lr"]), "weight_decay": float(weight_decay), "momentum": momentum}

    def _masks(self, global_crops: list[torch.Tensor]) -> list[torch.Tensor]:
        """One ``(N, L)`` mask per global crop, drawn over all their images together."""
        patch_size = unwrap(self.student).backbone.patch_size
        patches = {(crop.shape[-2] // patch_size) * (crop.shape[-1] // patch_size) for crop in global_crops}
        if len(patches) != 1:
            raise ValueError("iBOT masks global crops of one size; the crops callable gave several")
        sizes = [len(crop) for crop in global_crops]
        masks = random_patch_masks(sum(sizes), patches.pop(), self.mask_ratio, self.mask_prob, global_crops[0].device)
        return list(masks.split(sizes))

    def _iteration(self, engine: DINOTrainer, batchdata: Any) -> dict:
        """One DINO (+ iBOT) step; see the class docstring. Returns ``engine.state.output``.

        Raises:
            ValueError: no batch; a ``crops`` callable that gives a number of global crops other
                than the loss expects.
            FloatingPointError: a non-finite loss.
        """
        if batchdata is None:
            raise ValueError("must provide batch data for the current iteration")
        images = engine.prepare_batch(batchdata, engine.state.device, engine.non_blocking, **engine.to_kwargs)
        global_crops, local_crops = (list(crops) for crops in engine.crops(images))
        if len(global_crops) != engine.loss_function.global_crops:
            raise ValueError(
                f"the crops callable gave {len(global_crops)} global crops; "
                f"the DINO loss expects {engine.loss_function.global_crops}"
            )
        epoch = engine.state.epoch - 1
        settings = engine.apply_schedules(engine.state.iteration - 1)
        masks = engine._masks(global_crops) if engine.ibot_loss is not None else None

        engine.student.train()
        engine.teacher.eval()
        with torch.autocast(engine.state.device.type, dtype=torch.bfloat16, enabled=engine.amp):
            with torch.no_grad():
                teacher_masks = None if masks is None else [torch.zeros_like(mask) for mask in masks]
                teacher_output = engine.teacher(global_crops, teacher_masks)
            student_masks = None if masks is None else [*masks, *([None] * len(local_crops))]
            student_output = engine.student(global_crops + local_crops, student_masks)
            engine.fire_event(IterationEvents.FORWARD_COMPLETED)
            dino_loss = engine.loss_function(student_output.logits, teacher_output.logits, epoch)
            loss = dino_loss
            ibot_loss = None
            if masks is not None:
                ibot_loss = engine.ibot_loss(
                    student_output.patch_logits, teacher_output.patch_logits, torch.cat(masks), epoch
                )
                loss = loss + engine.ibot_weight * ibot_loss
        engine.fire_event(IterationEvents.LOSS_COMPLETED)
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"the loss is {loss.item()} at iteration {engine.state.iteration}; stopping training"
            )

        engine.optimizer.zero_grad(set_to_none=engine.optim_set_to_none)
        loss.backward()
        engine.fire_event(IterationEvents.BACKWARD_COMPLETED)
        if engine.clip_grad:
            nn.utils.clip_grad_norm_(engine.student.parameters(), engine.clip_grad)
        if epoch < engine.freeze_last_layer_epochs:
            _cancel_last_layer_gradients(engine.student)
        engine.optimizer.step()
        update_teacher(engine.student, engine.teacher, settings["momentum"])

        output: dict[str, torch.Tensor | float] = {"loss": loss.detach(), "dino_loss": dino_loss.detach()}
        if ibot_loss is not None:
            output["ibot_loss"] = ibot_loss.detach()
        output.update(settings)
        engine.state.output = output
        engine.fire_event(IterationEvents.MODEL_COMPLETED)
        return output
