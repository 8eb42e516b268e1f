"""Ignite handlers for the fine-tuning protocol, used with MONAI's SupervisedTrainer / SupervisedEvaluator.

- :class:`TrainingHistory` (trainer): per-epoch training loss, learning rate and validation
  metrics to ``history.json``, one log line per epoch, and the run's summary: best validation
  metric, the epoch it was reached (the study's epochs to convergence), whether early stopping
  ended the run.
- :class:`MetricsWriter` (evaluator): the evaluator's final metrics to a JSON file.
- :class:`PredictionWriter` (evaluator): per-image predictions to CSV and JSON.

Files are written by the first process only when running under ``torchrun``.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import ignite.distributed as idist
import torch
from ignite.engine import Engine, Events
from monai.handlers import from_engine

from radtl.atomic import write_text_atomic

__all__ = ["MetricsWriter", "PredictionWriter", "TrainingHistory", "write_json"]

logger = logging.getLogger("radtl.engines")
#: The batch loss from MONAI's decollated trainer output.
BATCH_LOSS = from_engine(["loss"], first=True)


def write_json(data: object, path: str | os.PathLike) -> Path:
    """Write ``data`` as indented JSON through a temporary file, so a reader never sees half a file."""
    return write_text_atomic(path, json.dumps(data, indent=1, default=float) + "\n")


def _plain(value: object) -> object:
    if isinstance(value, torch.Tensor):
        value = value.item() if value.numel() == 1 else value.tolist()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class TrainingHistory:
    """Record a training run epoch by epoch, with the validation metrics of each epoch.

    Attach it to the trainer after MONAI's ``ValidationHandler``, so each epoch's validation
    has run when the epoch is recorded. ``history.json`` is rewritten after every epoch::

        {"key_metric": "f1", "higher_is_better": true, "max_epochs": 200,
         "epochs": [{"epoch": 1, "train_loss": 1.31, "lr": 0.001, "val_f1": 0.42, "seconds": 3.1}, ...],
         "best_metric": 0.93, "best_epoch": 14, "epochs_to_convergence": 14,
         "epochs_run": 24, "stopped_early": true, "seconds": 80.2}

    ``epochs_to_convergence`` is the epoch of the best validation metric: the checkpoint kept,
    and with early stopping (patience p) the run ends at that epoch + p.

    Args:
        validator: the evaluator run by ``ValidationHandler``; its ``best_metric`` and
            ``best_metric_epoch`` (MONAI's bookkeeping of the key metric) give the best epoch.
        output_dir: where ``history.json`` goes.
        key_metric: the validation metric that selects the checkpoint and stops early, as the
            evaluator names it (``f1``); the history names validation metrics ``val_<name>``.
        higher_is_better: False for errors (MAE).
        loss_transform: the batch loss from the trainer's output.
        optimizer: the optimizer whose first group's learning rate is recorded.
    """

    def __init__(
        self,
        validator: Engine,
        output_dir: str | os.PathLike,
        key_metric: str,
        higher_is_better: bool = True,
        loss_transform: Callable = BATCH_LOSS,
        optimizer: torch.optim.Optimizer | None = None,
    ) -> None:
        self.validator = validator
        self.path = Path(output_dir) / "history.json"
        self.key_metric = key_metric
        self.higher_is_better = higher_is_better
        self.loss_transform = loss_transform
        self.optimizer = optimizer
        self.epochs: list[dict] = []
        self._losses: list[float] = []
        self._started = self._epoch_started = 0.0

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.STARTED, self._start)
        engine.add_event_handler(Events.EPOCH_STARTED, self._start_epoch)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._add_loss)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self._end_epoch)
        engine.add_event_handler(Events.COMPLETED, self._end)

    def _start(self, engine: Engine) -> None:
        self.epochs, self._started = [], time.perf_counter()

    def _start_epoch(self, engine: Engine) -> None:
        self._losses, self._epoch_started = [], time.perf_counter()

    def _add_loss(self, engine: Engine) -> None:
        self._losses.append(float(self.loss_transform(engine.state.output)))

    def summary(self, engine: Engine) -> dict:
        """The run so far, as written to ``history.json``."""
        best_epoch = int(getattr(self.validator.state, "best_metric_epoch", -1))
        best = _plain(getattr(self.validator.state, "best_metric", None)) if best_epoch > 0 else None
        return {
            "key_metric": self.key_metric,
            "higher_is_better": self.higher_is_better,
            "max_epochs": engine.state.max_epochs,
            "epochs": self.epochs,
            "best_metric": best,
            "best_epoch": best_epoch if best_epoch > 0 else None,
            "epochs_to_convergence": best_epoch if best_epoch > 0 else None,
            "epochs_run": engine.state.epoch,
            "stopped_early": engine.should_terminate and engine.state.epoch < engine.state.max_epochs,
            "seconds": round(time.perf_counter() - self._started, 3),
        }

    def _end_epoch(self, engine: Engine) -> None:
        losses = idist.all_reduce(torch.tensor([sum(self._losses), len(self._losses)], dtype=torch.float64))
        record = {"epoch": engine.state.epoch, "train_loss": float(losses[0] / max(losses[1], 1))}
        if self.optimizer is not None:
            record["lr"] = self.optimizer.param_groups[0]["lr"]
        record.update({f"val_{k}": _plain(v) for k, v in self.validator.state.metrics.items()})
        record["seconds"] = round(time.perf_counter() - self._epoch_started, 3)
        self.epochs.append(record)
        summary = self.summary(engine)
        if idist.get_rank() > 0:
            return
        write_json(summary, self.path)
        metric = record.get(f"val_{self.key_metric}")
        logger.info(
            "epoch %d/%d  train_loss %.4f  val_%s %s  (best %s at epoch %s)",
            engine.state.epoch,
            engine.state.max_epochs,
            record["train_loss"],
            self.key_metric,
            "n/a" if metric is None else f"{metric:.4f}",
            "n/a" if summary["best_metric"] is None else f"{summary['best_metric']:.4f}",
            summary["best_epoch"],
        )

    def _end(self, engine: Engine) -> None:
        summary = self.summary(engine)
        if idist.get_rank() > 0:
            return
        write_json(summary, self.path)
        logger.info(
            "training ended after %d epoch(s)%s; best val_%s %s at epoch %s (%s)",
            summary["epochs_run"],
            " (early stop)" if summary["stopped_early"] else "",
            self.key_metric,
            summary["best_metric"],
            summary["best_epoch"],
            self.path,
        )


class MetricsWriter:
    """Write the evaluator's metrics to a JSON file when it completes (e.g. ``test_metrics.json``).

    Args:
        path: the JSON file.
        extra: values written beside the metrics (the checkpoint, the split).
        reports: report handlers attached to the same evaluator whose ``summary()`` (a mapping) is written
            beside the metrics, e.g. :class:`radtl.engines.ClassificationReport`'s ``per_class`` scores and
            ``confusion_matrix``.
    """

    def __init__(self, path: str | os.PathLike, extra: Mapping | None = None, reports: Sequence = ()) -> None:
        self.path = Path(path)
        self.extra = dict(extra or {})
        self.reports = list(reports)

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.COMPLETED, self)

    def __call__(self, engine: Engine) -> None:
        metrics = {k: _plain(v) for k, v in engine.state.metrics.items()}
        if idist.get_rank() > 0:
            return
        sections = {key: value for report in self.reports for key, value in report.summary().items()}
        write_json({**self.extra, "metrics": metrics, **sections}, self.path)
        logger.info("metrics: %s -> %s", ", ".join(f"{k} {v:.4f}" for k, v in metrics.items() if v is not None), self.path)


def _filename(item: Mapping, image_key: str) -> str:
    image = item.get(image_key)
    meta = getattr(image, "meta", None) or {}
    return str(meta.get("filename_or_obj", ""))


class PredictionWriter:
    """Write one row per image to ``predictions.csv`` and ``predictions.json`` when inference completes.

    Reads the evaluator's decollated, post-processed output: ``pred`` holds class
    probabilities (C of them, or one for a binary task) or the regressed value.

    Columns: ``image`` (the source file), then for classification ``prediction`` (the class
    name) and ``probability_<class>`` per class (the positive class's only, for a binary task);
    for regression ``prediction`` (in ``unit``).

    Args:
        output_dir: where the two files go.
        labels: class names by index (``{"0": "glioma", ...}``); None for regression.
        unit: the regressed quantity's unit, for the JSON (``"months"``).
        image_key: the key whose MetaTensor meta names the source file.
    """

    def __init__(
        self,
        output_dir: str | os.PathLike,
        labels: Mapping[str, str] | Sequence[str] | None = None,
        unit: str | None = None,
        image_key: str = "image",
    ) -> None:
        self.output_dir = Path(output_dir)
        if isinstance(labels, Mapping):
            labels = [labels[str(i)] for i in range(len(labels))]
        self.labels = list(labels) if labels else None
        self.unit = unit
        self.image_key = image_key
        self.rows: list[dict] = []

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.STARTED, lambda _: self.rows.clear())
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._add)
        engine.add_event_handler(Events.COMPLETED, self._write)

    def row(self, filename: str, pred: torch.Tensor) -> dict:
        """One output row from one image's post-processed prediction."""
        values = torch.as_tensor(pred).detach().float().reshape(-1).cpu().tolist()
        row: dict = {"image": filename}
        if self.labels is None:
            row["prediction"] = round(values[0], 4)
        elif len(values) == 1:
            row["prediction"] = self.labels[int(values[0] >= 0.5)]
            row[f"probability_{self.labels[1]}"] = round(values[0], 6)
        else:
            row["prediction"] = self.labels[max(range(len(values)), key=values.__getitem__)]
            row.update({f"probability_{name}": round(p, 6) for name, p in zip(self.labels, values)})
        return row

    def _add(self, engine: Engine) -> None:
        output = engine.state.output
        items = output if isinstance(output, list) else [output]
        self.rows.extend(self.row(_filename(item, self.image_key), item["pred"]) for item in items)

    def _write(self, engine: Engine) -> None:
        self.output_dir.mkdir(parents=True, exist_ok=True)
        with open(self.output_dir / "predictions.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(self.rows[0]) if self.rows else ["image", "prediction"])
            writer.writeheader()
            writer.writerows(self.rows)
        write_json({"unit": self.unit, "labels": self.labels, "predictions": self.rows}, self.output_dir / "predictions.json")
        logger.info("%d prediction(s) -> %s", len(self.rows), self.output_dir / "predictions.csv")
