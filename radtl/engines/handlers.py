"""Ignite handlers for the fine-tuning protocol, used with MONAI's SupervisedTrainer / SupervisedEvaluator.

- :class:`TrainingHistory` (trainer): per-epoch training loss, learning rate and validation
  metrics to ``history.json``, and the run's summary: best validation metric, the epoch it was
  reached (the study's epochs to convergence), whether early stopping ended the run.
- :class:`EpochLog` (trainer): what a person watching sees, one line per epoch on the
  ``radtl.train`` logger: loss, validation metric, best so far, time per epoch and time left.
- :class:`TerminalProgressBar` (trainer): Ignite's per-iteration bar, drawn only on a terminal.
- :class:`MetricsWriter` (evaluator): the evaluator's final metrics to a JSON file.
- :class:`PredictionWriter` (evaluator): per-image predictions to CSV and JSON.

Files are written by the first process only when running under ``torchrun``.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import os
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import ignite.distributed as idist
import torch
from ignite.engine import Engine, Events
from monai.handlers import from_engine

from radtl.atomic import write_json_atomic, write_text_atomic
from radtl.logs import TRAIN_LOGGER, show_progress

__all__ = ["EpochLog", "MetricsWriter", "PredictionWriter", "TerminalProgressBar", "TrainingHistory", "write_json"]

logger = logging.getLogger("radtl.engines")
#: The batch loss from MONAI's decollated trainer output.
BATCH_LOSS = from_engine(["loss"], first=True)


def write_json(data: object, path: str | os.PathLike) -> Path:
    """Deprecated: ``radtl.atomic.write_json_atomic(path, data, default=float)``, for one release."""
    warnings.warn("radtl.engines.write_json(data, path) is radtl.atomic.write_json_atomic(path, data, default=float); "
                  "the old name goes in the next release", DeprecationWarning, stacklevel=2)
    return write_json_atomic(path, data, default=float)


def _plain(value: object) -> object:
    if isinstance(value, torch.Tensor):
        value = value.item() if value.numel() == 1 else value.tolist()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class _EpochLoss:
    """The mean batch loss of the current epoch: ``loss_transform`` of each iteration's output."""

    def __init__(self, loss_transform: Callable) -> None:
        self.loss_transform = loss_transform
        self.total, self.count = 0.0, 0

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.EPOCH_STARTED, self.reset)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self.update)

    def reset(self, engine: Engine | None = None) -> None:
        self.total, self.count = 0.0, 0

    def update(self, engine: Engine) -> None:
        self.total += float(self.loss_transform(engine.state.output))
        self.count += 1

    def mean(self, across_processes: bool = False) -> float:
        """This epoch's mean (0.0 before any iteration); ``across_processes`` averages every process's
        batches under ``torchrun`` (a collective call: every process must make it)."""
        total, count = self.total, self.count
        if across_processes:
            total, count = idist.all_reduce(torch.tensor([total, count], dtype=torch.float64)).tolist()
        return float(total / max(count, 1))


class TrainingHistory:
    """Record a training run epoch by epoch, with the validation metrics of each epoch.

    Attach it to the trainer after MONAI's ``ValidationHandler``, so each epoch's validation
    has run when the epoch is recorded. It writes a file and logs nothing at INFO (the console's
    line per epoch is :class:`EpochLog`'s). ``history.json`` is rewritten after every epoch::

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
        self._loss = _EpochLoss(loss_transform)
        self._started = self._epoch_started = 0.0

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.STARTED, self._start)
        engine.add_event_handler(Events.EPOCH_STARTED, self._start_epoch)
        self._loss.attach(engine)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self._end_epoch)
        engine.add_event_handler(Events.COMPLETED, self._end)

    def _start(self, engine: Engine) -> None:
        self.epochs, self._started = [], time.perf_counter()

    def _start_epoch(self, engine: Engine) -> None:
        self._epoch_started = time.perf_counter()

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
        record = {"epoch": engine.state.epoch, "train_loss": self._loss.mean(across_processes=True)}
        if self.optimizer is not None:
            record["lr"] = self.optimizer.param_groups[0]["lr"]
        record.update({f"val_{k}": _plain(v) for k, v in self.validator.state.metrics.items()})
        record["seconds"] = round(time.perf_counter() - self._epoch_started, 3)
        self.epochs.append(record)
        summary = self.summary(engine)
        if idist.get_rank() > 0:
            return
        write_json_atomic(self.path, summary, default=float)

    def _end(self, engine: Engine) -> None:
        summary = self.summary(engine)
        if idist.get_rank() > 0:
            return
        write_json_atomic(self.path, summary, default=float)
        logger.debug(  # the console's summary is EpochLog's; this names the file
            "training ended after %d epoch(s)%s; best val_%s %s at epoch %s (%s)",
            summary["epochs_run"],
            " (early stop)" if summary["stopped_early"] else "",
            self.key_metric,
            summary["best_metric"],
            summary["best_epoch"],
            self.path,
        )


def _duration(seconds: float) -> str:
    """``8.4 s``, ``42 s``, ``1 min 25 s``, ``2 h 5 min``."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


def _number(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, (int, float)) else "n/a"


class EpochLog:
    """Log one line per epoch on the ``radtl.train`` logger, and one when training ends::

        epoch 3/10  loss 0.4123  val f1 0.733  best 0.801 (epoch 2)  12.1 s/epoch  ETA 24 s (early stop after 2
        more without improvement; at most 7 epochs, 1 min 25 s)
        stopped at epoch 4/10 after 48 s: no improvement in 2 epochs; best f1 0.801 (epoch 2)

    ``loss`` is the epoch's mean training loss, ``val`` the validator's metric after the epoch,
    ``best`` the best value so far and its epoch, ``s/epoch`` the mean wall time of the epochs
    run so far in this process (validation included). The ETA is that mean times the epochs
    still to run: those left to ``max_epochs`` or, with early stopping, the fewer that remain
    before it stops unless the metric improves (patience minus the validations since the last
    improvement, over the validations per epoch seen so far). Lines go out on the first
    process only under ``torchrun``, and the loss is that process's (``history.json`` holds the
    mean over all of them).

    Attach it after MONAI's ``ValidationHandler`` (so the epoch's validation has run) and after
    a progress bar (so the bar is closed before the line is written): the end of a bundle's
    ``train#handlers``. It makes no collective call, so it may run on the first process alone.
    An epoch that early stopping ends midway (validation within the epoch) gets its line when
    training ends.

    Args:
        validator: the engine that validates (MONAI's ``SupervisedEvaluator`` run by
            ``ValidationHandler``, or an Ignite evaluator); None for training without validation.
        key_metric: the validator's metric to show; default MONAI's key metric, else the first one.
        higher_is_better: how "best" compares values, for a validator that does not keep MONAI's
            ``best_metric`` (a plain Ignite engine); MONAI's bookkeeping is used where it exists.
        early_stop: MONAI's ``EarlyStopHandler`` or Ignite's ``EarlyStopping``; its patience and
            counter bound the ETA. None: the run goes to ``max_epochs``.
        loss_transform: the batch loss from the trainer's output (MONAI's decollated output by
            default; ``lambda loss: loss`` for Ignite's ``create_supervised_trainer``).
        name: a prefix for each line (``"tag encoder"``), where a command trains several networks.
    """

    def __init__(
        self,
        validator: Engine | None = None,
        key_metric: str | None = None,
        higher_is_better: bool = True,
        early_stop: object | None = None,
        loss_transform: Callable = BATCH_LOSS,
        name: str = "",
    ) -> None:
        self.validator = validator
        self.key_metric = key_metric
        self.higher_is_better = higher_is_better
        self.early_stop = early_stop
        self.prefix = f"{name}: " if name else ""
        self.logger = logging.getLogger(TRAIN_LOGGER)
        self._loss = _EpochLoss(loss_transform)
        self._best: tuple[float, int] | None = None
        self._validations = 0
        self._started = 0.0
        self._first_epoch = self._logged_epoch = 0

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.STARTED, self._start)
        self._loss.attach(engine)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self._log_epoch)
        engine.add_event_handler(Events.COMPLETED, self._log_end)
        if self.validator is not None:
            self.validator.add_event_handler(Events.COMPLETED, self._validated, engine)

    def _start(self, engine: Engine) -> None:
        self._started, self._first_epoch = time.perf_counter(), engine.state.epoch
        self._best, self._validations, self._logged_epoch = None, 0, engine.state.epoch

    def metric_name(self) -> str | None:
        """The validation metric shown: ``key_metric``, else MONAI's key metric, else the validator's first."""
        if self.key_metric or self.validator is None:
            return self.key_metric
        state = self.validator.state
        return getattr(state, "key_metric_name", None) or next(iter(state.metrics), None)

    def _metric(self) -> float | None:
        value = _plain(self.validator.state.metrics.get(self.metric_name())) if self.validator is not None else None
        return float(value) if isinstance(value, (int, float)) else None

    def _validated(self, validator: Engine, trainer: Engine) -> None:
        self._validations += 1
        value = self._metric()
        if value is None or not math.isfinite(value):
            return
        if self._best is None or (value > self._best[0] if self.higher_is_better else value < self._best[0]):
            self._best = (value, trainer.state.epoch)

    def best(self) -> tuple[float, int] | None:
        """``(value, epoch)`` of the best validation so far: MONAI's ``best_metric`` and ``best_metric_epoch``
        where the validator keeps them (a resumed run restores them), else this handler's own record."""
        if self.validator is None:
            return None
        epoch = getattr(self.validator.state, "best_metric_epoch", None)
        if epoch is None:
            return self._best
        value = _plain(self.validator.state.best_metric)
        return (float(value), int(epoch)) if epoch > 0 and isinstance(value, (int, float)) else None

    def _patience(self) -> tuple[int, int] | None:
        """``(patience, counter)`` of the early stopping, None without it (or before MONAI's has its trainer)."""
        stopper = getattr(self.early_stop, "_handler", self.early_stop)  # MONAI's EarlyStopHandler wraps Ignite's
        patience, counter = getattr(stopper, "patience", None), getattr(stopper, "counter", None)
        return None if patience is None or counter is None else (int(patience), int(counter))

    def patience_left(self) -> int | None:
        """Validations without improvement still allowed before early stopping; None without early stopping."""
        patience = self._patience()
        return None if patience is None else max(patience[0] - patience[1], 0)

    def _epochs_run(self, engine: Engine) -> int:
        return max(engine.state.epoch - self._first_epoch, 1)

    def _unit(self, engine: Engine) -> str:
        """What patience counts, in words: epochs where the validator runs once per epoch."""
        return "epochs" if self._validations == self._epochs_run(engine) else "validations"

    def eta(self, engine: Engine) -> str:
        """The time-left part of the epoch line ("" after the last epoch)."""
        state = engine.state
        if state.max_epochs is None or state.epoch >= state.max_epochs:
            return ""
        if engine.should_terminate:
            return "stopping"
        epochs = self._epochs_run(engine)
        per_epoch = (time.perf_counter() - self._started) / epochs
        left = state.max_epochs - state.epoch
        at_most = f"{left} epoch{'s' if left > 1 else ''}"
        patience = self.patience_left()
        per_validation = epochs / self._validations if self._validations else None  # epochs between validations
        if patience is not None and per_validation is not None and patience * per_validation < left:
            unit = "" if self._unit(engine) == "epochs" else "validations "
            return (
                f"ETA {_duration(per_epoch * patience * per_validation)} (early stop after {patience} more {unit}"
                f"without improvement; at most {at_most}, {_duration(per_epoch * left)})"
            )
        return f"ETA {_duration(per_epoch * left)} ({at_most} left)"

    def _log_epoch(self, engine: Engine) -> None:
        loss = self._loss.mean()
        self._logged_epoch = engine.state.epoch
        if idist.get_rank() > 0:
            return
        state = engine.state
        parts = [f"epoch {state.epoch}" + (f"/{state.max_epochs}" if state.max_epochs else ""), f"loss {loss:.4g}"]
        if self.validator is not None:
            parts.append(f"val {self.metric_name()} {_number(self._metric())}")
            best = self.best()
            if best is not None:
                parts.append(f"best {_number(best[0])} (epoch {best[1]})")
        parts.append(f"{_duration((time.perf_counter() - self._started) / self._epochs_run(engine))}/epoch")
        parts.append(self.eta(engine))
        self.logger.info(self.prefix + "  ".join(p for p in parts if p))

    def _log_end(self, engine: Engine) -> None:
        if self._logged_epoch < engine.state.epoch:  # stopped within an epoch (Ignite then skips EPOCH_COMPLETED)
            self._log_epoch(engine)
        if idist.get_rank() > 0:
            return
        state = engine.state
        took = _duration(time.perf_counter() - self._started)
        if state.max_epochs is not None and state.epoch < state.max_epochs:
            message = f"stopped at epoch {state.epoch}/{state.max_epochs} after {took}"
            patience = self._patience()
            if patience is not None and patience[1] >= patience[0]:
                message += f": no improvement in {patience[0]} {self._unit(engine)}"
        else:
            message = f"done: {state.epoch} epoch{'s' if state.epoch != 1 else ''} in {took}"
        best = self.best()
        if best is not None:
            message += f"; best {self.metric_name()} {_number(best[0])} (epoch {best[1]})"
        self.logger.info(self.prefix + message)


class TerminalProgressBar:
    """Ignite's per-iteration ``ProgressBar`` when standard error is a terminal; nothing otherwise.

    A bar redraws itself with carriage returns and cursor codes, noise in a log file or a pipe
    (see :func:`radtl.logs.show_progress`). Attach it before :class:`EpochLog`, so the bar is
    closed when the epoch's line is written.

    Args:
        progress: True or False to decide; None (default) for "on a terminal".
        metric_names, output_transform: as Ignite's ``ProgressBar.attach``.
        kwargs: Ignite's ``ProgressBar`` arguments (``desc``, ``persist``, ...).
    """

    def __init__(
        self,
        progress: bool | None = None,
        metric_names: str | list[str] | None = None,
        output_transform: Callable | None = None,
        **kwargs,
    ) -> None:
        self.progress = progress
        self.metric_names = metric_names
        self.output_transform = output_transform
        self.kwargs = kwargs

    def attach(self, engine: Engine) -> None:
        if not show_progress(self.progress):
            return
        from ignite.handlers import ProgressBar

        bar = ProgressBar(**self.kwargs)
        bar.attach(engine, metric_names=self.metric_names, output_transform=self.output_transform)


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
        write_json_atomic(self.path, {**self.extra, "metrics": metrics, **sections}, default=float)
        logger.info("metrics: %s -> %s", ", ".join(f"{k} {v:.4f}" for k, v in metrics.items() if v is not None), self.path)


def _filename(item: Mapping, image_key: str) -> str:
    image = item.get(image_key)
    meta = getattr(image, "meta", None) or {}
    return str(meta.get("filename_or_obj", ""))


class PredictionWriter:
    """Write one row per image to ``predictions.csv`` and ``predictions.json`` when inference completes, and
    optionally one DICOM SR per source DICOM image, sent to a PACS.

    Reads the evaluator's decollated, post-processed output: ``pred`` holds class
    probabilities (C of them, or one for a binary task) or the regressed value.

    Columns: ``image`` (the source file), then for classification ``prediction`` (the class
    name) and ``probability_<class>`` per class (the positive class's only, for a binary task);
    for regression ``prediction`` (in ``unit``). With ``sr_dir``, a column ``sr``: the SR written
    for the image (``<SOPInstanceUID>.sr.dcm``, :func:`radtl.dicom.sr.write_prediction_report`: the
    predicted class and its probability, or the value in ``unit``, with the model and its version), or
    why there is none (``none: not a DICOM file`` for a PNG, which is also logged).

    Args:
        output_dir: where the two files go.
        labels: class names by index (``{"0": "glioma", ...}``); None for regression.
        unit: the regressed quantity's unit, for the JSON (``"months"``) and the SRs.
        image_key: the key whose MetaTensor meta names the source file.
        sr_dir: the folder for the SRs; None or ``""`` writes none.
        algorithm_name: the model named in the SRs (the bundle's name).
        algorithm_version: its version (the bundle's version).
        send_to: a PACS URL (:func:`radtl.dicom.pacs.send`) that stores the SRs once written; None or ``""``: none.
    """

    def __init__(
        self,
        output_dir: str | os.PathLike,
        labels: Mapping[str, str] | Sequence[str] | None = None,
        unit: str | None = None,
        image_key: str = "image",
        sr_dir: str | os.PathLike | None = None,
        algorithm_name: str = "radtl",
        algorithm_version: str = "0",
        send_to: str | None = None,
    ) -> None:
        self.output_dir = Path(output_dir)
        if isinstance(labels, Mapping):
            labels = [labels[str(i)] for i in range(len(labels))]
        self.labels = list(labels) if labels else None
        self.unit = unit
        self.image_key = image_key
        self.sr_dir = Path(sr_dir) if sr_dir else None
        self.algorithm = (str(algorithm_name), str(algorithm_version))
        self.send_to = send_to or None
        if self.send_to and not self.sr_dir:
            raise ValueError("sending results to a PACS needs sr_dir (the SRs are written first, then sent)")
        if self.send_to:
            from radtl.dicom.pacs import parse_pacs_url

            parse_pacs_url(self.send_to)  # a bad URL is refused before inference runs
        if self.sr_dir and self.labels is None:
            from radtl.dicom.sr import ucum_unit

            ucum_unit(unit or "")  # a unit without a UCUM code is refused before inference runs
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

    def _prediction(self, row: dict) -> dict:
        """The SR's prediction from a row: the class and its probability, or the value and its unit."""
        if self.labels is None:
            return {"value": float(row["prediction"]), "unit": self.unit}
        label = row["prediction"]
        if f"probability_{label}" in row:
            return {"label": label, "probability": float(row[f"probability_{label}"])}
        return {"label": label, "probability": 1.0 - float(row[f"probability_{self.labels[1]}"])}  # binary: negative

    def _write_reports(self) -> list[Path]:
        """One SR per DICOM source (:func:`radtl.dicom.sr.write_prediction_report`); each row says which, or why
        none."""
        from radtl.dicom.errors import NotDicomError
        from radtl.dicom.io import read_dataset
        from radtl.dicom.sr import sr_path, write_prediction_report

        written, not_dicom = [], 0
        for row in self.rows:
            try:
                image = read_dataset(row["image"], stop_before_pixels=True)
            except NotDicomError:
                row["sr"] = "none: not a DICOM file"
                not_dicom += 1
                continue
            path = sr_path(self.sr_dir, str(image.SOPInstanceUID))
            write_prediction_report(path, image, *self.algorithm, **self._prediction(row))
            row["sr"] = str(path)
            written.append(path)
        if not_dicom:
            logger.warning("%d of %d image(s) are not DICOM files: no SR for them (column sr of predictions.csv)",
                           not_dicom, len(self.rows))
        logger.info("%d SR(s) -> %s", len(written), self.sr_dir)
        return written

    def _write(self, engine: Engine) -> None:
        self.output_dir.mkdir(parents=True, exist_ok=True)
        reports = []
        if self.sr_dir:
            self.sr_dir.mkdir(parents=True, exist_ok=True)
            reports = self._write_reports()
        table = io.StringIO(newline="")
        writer = csv.DictWriter(table, fieldnames=list(self.rows[0]) if self.rows else ["image", "prediction"])
        writer.writeheader()
        writer.writerows(self.rows)
        write_text_atomic(self.output_dir / "predictions.csv", table.getvalue())
        write_json_atomic(self.output_dir / "predictions.json",
                          {"unit": self.unit, "labels": self.labels, "predictions": self.rows}, default=float)
        logger.info("%d prediction(s) -> %s", len(self.rows), self.output_dir / "predictions.csv")
        if self.send_to and reports:
            from radtl.dicom.pacs import send

            send(reports, self.send_to)


class MeasurementReportWriter:
    """Write, after each series' DICOM-SEG, its nodule measurement report (a DICOM SR, TID 1500).

    Reads the evaluator's post-processed output: each ``pred`` MetaTensor's meta names the SEG that
    :class:`radtl.transforms.SaveDicomSeg` wrote (``dicom_seg``) and the source series (``source_series``);
    the SR is measured from that SEG (:func:`radtl.dicom.sr.write_nodule_report`), so the two cannot disagree.
    The file written is recorded as ``meta["dicom_sr"]``.

    Args:
        output_path: the SR file (one series); or a folder (ending in ``/``, or existing), which gets
            ``<SeriesInstanceUID>.sr.dcm`` per series, beside ``<SeriesInstanceUID>.seg.dcm``; None or ``""``
            writes none.
        pred_key: the key of the saved mask.
    """

    def __init__(self, output_path: str | os.PathLike | None, pred_key: str = "pred") -> None:
        self.output_path = os.fspath(output_path) if output_path else None
        self.pred_key = pred_key
        self.written: list[Path] = []

    def attach(self, engine: Engine) -> None:
        if self.output_path:
            engine.add_event_handler(Events.STARTED, lambda _: self.written.clear())
            engine.add_event_handler(Events.ITERATION_COMPLETED, self._write)

    def destination(self, series_instance_uid: str) -> Path:
        from radtl.dicom.seg import names_a_folder
        from radtl.dicom.sr import StructuredReportError, sr_path

        if names_a_folder(self.output_path):
            return sr_path(self.output_path, series_instance_uid)
        if self.written:
            raise StructuredReportError(
                f"{self.output_path} already holds the SR of another series from this run: "
                "give a folder (ending in /) for one SR per series"
            )
        return Path(self.output_path)

    def _write(self, engine: Engine) -> None:
        from radtl.dicom.sr import StructuredReportError, write_nodule_report

        output = engine.state.output
        for item in output if isinstance(output, list) else [output]:
            meta = getattr(item[self.pred_key], "meta", {})
            if "dicom_seg" not in meta or "source_series" not in meta:
                raise StructuredReportError(
                    "a measurement report is measured from the SEG: save the mask with radtl.transforms.SaveDicomSegd "
                    "before radtl.engines.handlers.MeasurementReportWriter runs"
                )
            uid = str(meta.get("series_instance_uid") or Path(meta["source_series"]).name)
            path = write_nodule_report(self.destination(uid), meta["dicom_seg"], meta["source_series"])
            self.written.append(path)
            meta["dicom_sr"] = str(path)
