"""Checkpoints a killed pretraining run resumes from: model, optimizer, scheduler, sampler, engine.

A pretraining run lasts days; a preempted Slurm job or a killed process must cost at most the
minutes since the last checkpoint. :class:`ResumableCheckpoint` saves everything the run's
future depends on, every ``every`` iterations and at every epoch end, with Ignite's
:class:`~ignite.handlers.Checkpoint` (written under a temporary name and renamed, by the first
process only under torchrun); :meth:`ResumableCheckpoint.resume`, called before the trainer
runs, loads the newest one and puts the sampler where the killed epoch stopped.

A bundle wires it as a train handler and calls ``resume`` in ``initialize``::

    "checkpoint": {"_target_": "radtl.engines.ResumableCheckpoint", "output_dir": "@output_dir",
                   "objects": {"network": "@network", "optimizer": "@optimizer"}, "sampler": "@train#sampler",
                   "every": 50},
    "initialize": [..., "$@train#checkpoint.resume(@train#trainer)"]

The trainer is given to ``resume`` rather than to the constructor because the trainer holds
the handler: a reference each way would be a cycle in the bundle's configuration.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path

import torch
from ignite.engine import Engine, Events
from ignite.handlers import Checkpoint, DiskSaver

__all__ = ["EvaluatorBest", "ResumableCheckpoint"]

logger = logging.getLogger("radtl.engines")

PREFIX = "resume"
_ITERATION = re.compile(rf"^{PREFIX}_checkpoint_(\d+)\.pt$")


class EvaluatorBest:
    """The evaluator's best key metric and its epoch (MONAI keeps them on ``engine.state``), as a
    checkpointable object, so a resumed run does not overwrite a better model with a worse one."""

    def __init__(self, evaluator: Engine) -> None:
        self.evaluator = evaluator

    def state_dict(self) -> dict:
        state = self.evaluator.state
        best = getattr(state, "best_metric", -1)
        return {"best_metric": float(best.item() if isinstance(best, torch.Tensor) else best),
                "best_metric_epoch": int(getattr(state, "best_metric_epoch", -1))}

    def load_state_dict(self, state: Mapping) -> None:
        self.evaluator.state.best_metric = state["best_metric"]
        self.evaluator.state.best_metric_epoch = state["best_metric_epoch"]


class ResumableCheckpoint:
    """Save the run every ``every`` iterations and at each epoch end; :meth:`resume` the newest.

    Args:
        output_dir: where ``resume_checkpoint_<iteration>.pt`` files go.
        objects: further objects with ``state_dict``/``load_state_dict`` by name (network,
            optimizer, scheduler, loss modules holding buffers, augmentation generators...).
        sampler: the :class:`~radtl.data.PretrainingSampler`, saved and positioned on resume.
        evaluator: the validation engine, whose best metric is kept (:class:`EvaluatorBest`).
        early_stop: MONAI's ``EarlyStopHandler``, whose patience counter is kept.
        every: iterations between checkpoints (0: epoch ends only).
        keep: checkpoints kept on disk, newest first.
    """

    def __init__(
        self,
        output_dir: str | os.PathLike,
        objects: Mapping[str, object] | None = None,
        sampler: object | None = None,
        evaluator: Engine | None = None,
        early_stop: object | None = None,
        every: int = 0,
        keep: int = 2,
    ) -> None:
        self.output_dir = Path(output_dir)
        self.objects = dict(objects or {})
        self.sampler = sampler
        self.evaluator = evaluator
        self.early_stop = early_stop
        self.every = int(every)
        self.keep = keep

    def _to_save(self, trainer: Engine) -> dict:
        to_save = {"trainer": trainer, **self.objects}
        if self.sampler is not None:
            to_save["sampler"] = self.sampler
        if self.evaluator is not None:
            to_save["evaluator"] = EvaluatorBest(self.evaluator)
        stopper = getattr(self.early_stop, "_handler", None)  # MONAI's EarlyStopHandler wraps Ignite's
        if stopper is not None:
            to_save["early_stop"] = stopper
        return to_save

    def attach(self, engine: Engine) -> None:
        checkpoint = Checkpoint(
            self._to_save(engine),
            DiskSaver(str(self.output_dir), require_empty=False, atomic=True),
            filename_prefix=PREFIX,
            n_saved=self.keep,
            global_step_transform=lambda trainer, _: trainer.state.iteration,
        )
        event = Events.EPOCH_COMPLETED
        if self.every > 0:
            event = event | Events.ITERATION_COMPLETED(every=self.every)
        engine.add_event_handler(event, checkpoint)

    def latest(self) -> Path | None:
        """The newest checkpoint in ``output_dir`` (highest iteration), or None."""
        found = [(int(m.group(1)), p) for p in self.output_dir.glob(f"{PREFIX}_checkpoint_*.pt")
                 if (m := _ITERATION.match(p.name))]
        return max(found)[1] if found else None

    def resume(self, trainer: Engine) -> Path | None:
        """Load the newest checkpoint, if any, into ``trainer`` and the objects, and position the
        sampler in the killed epoch; return the checkpoint's path.

        A checkpoint of a finished run is not loaded (Ignite would start it over anyway): the
        run starts from the beginning and says so.
        """
        path = self.latest()
        if path is None:
            return None
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        state = checkpoint["trainer"]
        epoch_length, iteration = int(state["epoch_length"]), int(state["iteration"])
        if iteration >= epoch_length * int(state["max_epochs"]):
            logger.warning("%s is the end of a finished run; training again from the start", path)
            return None
        to_load = self._to_save(trainer)
        Checkpoint.load_objects(to_load={k: v for k, v in to_load.items() if k in checkpoint}, checkpoint=checkpoint)
        epoch, done = divmod(iteration, epoch_length)
        if self.sampler is not None:
            self.sampler.set_epoch(epoch + 1)
            self.sampler.skip(done * self._batch_size(trainer))
        logger.info("resumed from %s: iteration %d (epoch %d, %d of %d iterations done)",
                    path, iteration, epoch + 1, done, epoch_length)
        return path

    @staticmethod
    def _batch_size(trainer: Engine) -> int:
        loader = getattr(trainer, "data_loader", None)
        batch_size = getattr(loader, "batch_size", None)
        if batch_size is None:
            raise ValueError("cannot place the sampler in a resumed epoch: the trainer's data loader has no batch_size")
        return int(batch_size)
