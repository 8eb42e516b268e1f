"""Evaluation reports beside the metrics: what a classifier confuses, how a regressor's values scatter.

- :class:`ClassificationReport` (evaluator): the confusion matrix, rows the true class and columns
  the predicted one (``<prefix>_confusion_matrix.csv`` and ``.png``), and each class's precision,
  recall, F1 and support (``<prefix>_per_class.csv``); :meth:`ClassificationReport.summary` hands
  both to :class:`radtl.engines.MetricsWriter` for the metrics JSON.
- :class:`RegressionReport` (evaluator): the predicted against the true value of each case, with the
  identity line and the MAE (``<prefix>_scatter.png``), and the values (``<prefix>_cases.csv``).

Both read MONAI's decollated, post-processed evaluator output (``[{"pred": ..., "label": ...}, ...]``,
the same the metrics read through :func:`radtl.engines.class_indices` and
:func:`radtl.engines.regression_values`) each iteration and keep one record per case. At the end of
the epoch the records of every process are gathered (under ``torchrun`` every process must attach
the report, as every process runs the metrics); at COMPLETED the first process writes the files.
"""

from __future__ import annotations

import csv
import io
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import ignite.distributed as idist
import numpy as np
from ignite.engine import Engine, Events

from radtl.atomic import write_text_atomic
from radtl.engines.metrics import class_indices, confusion_matrix, per_class_scores, regression_values
from radtl.errors import RadtlError
from radtl.report.figures import confusion_matrix_plot, prediction_scatter

__all__ = ["ClassificationReport", "RegressionReport", "ReportError"]

logger = logging.getLogger("radtl.engines")


class ReportError(RadtlError, ValueError):
    """An evaluator output a report cannot describe: no true value, or a class beyond the class names given."""


def _write_csv(rows: Sequence[Sequence[object]], path: str | os.PathLike) -> Path:
    """Write ``rows`` (the header first) as CSV through a temporary file, so a reader never sees half a file."""
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerows(rows)
    return write_text_atomic(path, text.getvalue())


def _source_file(item: Mapping, image_key: str) -> str:
    """The file an item's image was read from (its MetaTensor's ``filename_or_obj``), or ""."""
    meta = getattr(item.get(image_key), "meta", None) or {}
    return str(meta.get("filename_or_obj", ""))


class _CaseReport:
    """Collect one record per case from an evaluator's output, gather them across processes, write at COMPLETED.

    Subclasses turn a batch of decollated items into records (:meth:`records`) and write the files (:meth:`write`).
    """

    def __init__(self, output_dir: str | os.PathLike, prefix: str, image_key: str, pred_key: str, label_key: str):
        self.output_dir = Path(output_dir)
        self.prefix = str(prefix)
        self.image_key, self.pred_key, self.label_key = image_key, pred_key, label_key
        self.cases: list[dict] = []

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.STARTED, self._reset)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._add)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self._gather)
        engine.add_event_handler(Events.COMPLETED, self._complete)

    def path(self, name: str) -> Path:
        """The report file ``<output_dir>/<prefix>_<name>``."""
        return self.output_dir / f"{self.prefix}_{name}"

    #: The (predicted, true) arrays of a batch of decollated items, and the type of one value.
    values: Callable[[Sequence[Mapping], str, str], tuple[np.ndarray, np.ndarray]]
    value_type: type

    def records(self, items: Sequence[Mapping]) -> list[dict]:
        """``{"image", "true", "predicted"}`` for each decollated item, the values of :attr:`value_type`."""
        predicted, true = self.values(items, self.pred_key, self.label_key)
        cast = self.value_type
        return [
            {"image": _source_file(item, self.image_key), "true": cast(t), "predicted": cast(p)}
            for item, t, p in zip(items, true.tolist(), predicted.tolist())
        ]

    def write(self) -> list[Path]:
        raise NotImplementedError

    def _reset(self, engine: Engine) -> None:
        self.cases = []

    def _add(self, engine: Engine) -> None:
        output = engine.state.output
        items = output if isinstance(output, list) else [output]
        for item in items:
            if item.get(self.label_key) is None:
                raise ReportError(
                    f"{type(self).__name__}: a case without its true value ({self.label_key!r}) in the evaluator's "
                    f"output ({_source_file(item, self.image_key) or 'no file name'}); a report describes an "
                    "evaluation on labelled data, not inference"
                )
        self.cases.extend(self.records(items))

    def _gather(self, engine: Engine) -> None:
        # at EPOCH_COMPLETED, before any COMPLETED handler (MetricsWriter) asks for the summary
        if idist.get_world_size() > 1:
            self.cases = [case for part in idist.all_gather(self.cases) for case in part]

    def _complete(self, engine: Engine) -> None:
        if idist.get_rank() > 0:
            return
        paths = self.write()
        logger.info("%s: %d case(s) -> %s", type(self).__name__, len(self.cases), ", ".join(str(p) for p in paths))


class ClassificationReport(_CaseReport):
    """Write the confusion matrix and per-class precision, recall and F1 of a classifier's evaluation.

    Files, in ``output_dir`` (``prefix`` is the split, e.g. ``test``):

    - ``<prefix>_confusion_matrix.csv``: a header row ``true/predicted,<class>,...``, then one row per
      true class with the count of its images predicted as each class;
    - ``<prefix>_confusion_matrix.png``: the same counts, each cell shaded by its share of the row;
    - ``<prefix>_per_class.csv``: ``class,precision,recall,f1,support``, one row per class
      (:func:`radtl.engines.per_class_scores`).

    The predicted class is the one :func:`radtl.engines.class_indices` gives, as for the study's metrics
    (argmax of C probabilities, ``p >= 0.5`` for one). Give the report to :class:`MetricsWriter`
    (``reports``) to have :meth:`summary` in the metrics JSON too.

    Args:
        output_dir: where the files go.
        prefix: the files' name prefix, the split evaluated.
        labels: class names by index (``["glioma", ...]`` or ``{"0": "glioma", ...}``); None names classes
            by index, as many as the largest index seen (at least 2).
        image_key: the key whose MetaTensor meta names the source file, kept per case.
        pred_key: the post-processed prediction (probabilities) in the evaluator's output.
        label_key: the true class (an index, or one-hot) in the evaluator's output.
    """

    values = staticmethod(class_indices)
    value_type = int

    def __init__(
        self,
        output_dir: str | os.PathLike,
        prefix: str = "test",
        labels: Mapping[str, str] | Sequence[str] | None = None,
        image_key: str = "image",
        pred_key: str = "pred",
        label_key: str = "label",
    ) -> None:
        super().__init__(output_dir, prefix, image_key, pred_key, label_key)
        if isinstance(labels, Mapping):
            labels = [labels[str(i)] for i in range(len(labels))]
        self.labels = [str(name) for name in labels] if labels else None

    def class_names(self) -> list[str]:
        """The classes reported, in index order.

        Raises:
            ReportError: a class index in the output beyond the class names given.
        """
        largest = max((max(case["true"], case["predicted"]) for case in self.cases), default=-1)
        if self.labels is None:
            return [str(i) for i in range(max(largest + 1, 2))]
        if largest >= len(self.labels):
            raise ReportError(
                f"ClassificationReport: class index {largest} in the evaluator's output, but {len(self.labels)} "
                f"class name(s) ({', '.join(self.labels)}); give the labels the network was trained with"
            )
        return self.labels

    def matrix(self) -> np.ndarray:
        """The confusion matrix of the cases so far, ``(C, C)``, rows the true class, columns the predicted one."""
        return confusion_matrix([c["predicted"] for c in self.cases], [c["true"] for c in self.cases],
                                len(self.class_names()))

    def summary(self) -> dict:
        """``{"per_class": {class: {"precision", "recall", "f1", "support"}}, "confusion_matrix": {...}}``.

        ``confusion_matrix`` holds ``labels`` (the classes, in order) and ``counts``, a list of rows:
        ``counts[i][j]`` images of true class ``labels[i]`` were predicted as ``labels[j]``.
        """
        names = self.class_names()
        scores = per_class_scores([c["predicted"] for c in self.cases], [c["true"] for c in self.cases], names)
        return {
            "per_class": scores,
            "confusion_matrix": {"rows": "true", "columns": "predicted", "labels": names,
                                 "counts": self.matrix().tolist()},
        }

    def write(self) -> list[Path]:
        summary = self.summary()
        names, counts = summary["confusion_matrix"]["labels"], np.asarray(summary["confusion_matrix"]["counts"])
        matrix_csv = _write_csv(
            [["true/predicted", *names], *([name, *row] for name, row in zip(names, counts.tolist()))],
            self.path("confusion_matrix.csv"),
        )
        per_class = _write_csv(
            [["class", "precision", "recall", "f1", "support"],
             *([name, round(s["precision"], 4), round(s["recall"], 4), round(s["f1"], 4), s["support"]]
               for name, s in summary["per_class"].items())],
            self.path("per_class.csv"),
        )
        correct = int(np.trace(counts))
        title = f"{self.prefix}: {len(self.cases)} case(s), {correct} correct"
        figure = confusion_matrix_plot(counts, names, self.path("confusion_matrix.png"), title=title)
        return [matrix_csv, figure, per_class]


class RegressionReport(_CaseReport):
    """Write a regressor's predicted against true values: a scatter with the identity line and MAE, and a CSV.

    Files, in ``output_dir`` (``prefix`` is the split, e.g. ``test``):

    - ``<prefix>_scatter.png``: one point per case, the line ``predicted = true``, the MAE in the title
      (:func:`radtl.report.figures.prediction_scatter`);
    - ``<prefix>_cases.csv``: ``image,true,predicted,error`` per case, ``error = predicted - true``.

    Values are those the metrics see (:func:`radtl.engines.regression_values`), after the bundle's
    postprocessing (bone age: back in months).

    Args:
        output_dir: where the files go.
        prefix: the files' name prefix, the split evaluated.
        unit: the values' unit, for the axes and the MAE (``"months"``).
        image_key: the key whose MetaTensor meta names the source file.
        pred_key: the post-processed prediction in the evaluator's output.
        label_key: the true value in the evaluator's output.
    """

    values = staticmethod(regression_values)
    value_type = float

    def __init__(
        self,
        output_dir: str | os.PathLike,
        prefix: str = "test",
        unit: str | None = None,
        image_key: str = "image",
        pred_key: str = "pred",
        label_key: str = "label",
    ) -> None:
        super().__init__(output_dir, prefix, image_key, pred_key, label_key)
        self.unit = unit

    def write(self) -> list[Path]:
        true = [case["true"] for case in self.cases]
        predicted = [case["predicted"] for case in self.cases]
        cases = _write_csv(
            [["image", "true", "predicted", "error"],
             *([c["image"], round(c["true"], 4), round(c["predicted"], 4), round(c["predicted"] - c["true"], 4)]
               for c in self.cases)],
            self.path("cases.csv"),
        )
        title = f"{self.prefix}: {len(self.cases)} case(s)"
        figure = prediction_scatter(true, predicted, self.path("scatter.png"), unit=self.unit, title=title)
        return [figure, cases]
