"""Classification metrics as the study computed them (scikit-learn), as Ignite metrics for MONAI's engines.

Both metrics read MONAI's decollated engine output (``[{"pred": ..., "label": ...}, ...]``) after
postprocessing to probabilities: a multi-class ``pred`` of C probabilities gives its argmax, a
binary ``pred`` of one probability gives ``p >= 0.5``. Labels are class indices (or one-hot).
Ignite's :class:`~ignite.metrics.EpochMetric` gathers the whole epoch, across processes under
``torchrun``, before the score is computed.

:func:`confusion_matrix` and :func:`per_class_scores` are the same scikit-learn computations per
class, on class indices; :class:`radtl.engines.ClassificationReport` writes them after an evaluation.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from ignite.metrics import EpochMetric
from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support
from sklearn.metrics import confusion_matrix as sklearn_confusion_matrix

__all__ = [
    "Accuracy",
    "MacroF1",
    "class_indices",
    "classification_scores",
    "confusion_matrix",
    "per_class_scores",
    "regression_values",
]


def _stack(values: Sequence[torch.Tensor]) -> torch.Tensor:
    return torch.stack([torch.as_tensor(v).detach().float().reshape(-1).cpu() for v in values])


def class_indices(output: Sequence[dict], pred_key: str = "pred", label_key: str = "label"):
    """``(predicted classes, true classes)`` as ``(N,)`` long tensors from a decollated engine output.

    A prediction of C > 1 probabilities gives its argmax, one probability gives ``p >= 0.5``;
    a label is a class index (or a one-hot vector).
    """
    pred = _stack([item[pred_key] for item in output])
    label = _stack([item[label_key] for item in output])
    pred = pred.argmax(dim=1) if pred.shape[1] > 1 else (pred[:, 0] >= 0.5).long()
    label = label.argmax(dim=1) if label.shape[1] > 1 else label[:, 0].round().long()
    return pred, label


def classification_scores(true: Sequence[int], predicted: Sequence[int], prefix: str = "") -> dict[str, float]:
    """Accuracy and macro F1 of ``predicted`` classes against ``true`` ones, as the study computed them.

    ``sklearn.metrics.accuracy_score`` and ``f1_score(average="macro", zero_division=0)`` over the classes present
    (for a binary task the F1 of both classes averaged). The one computation behind :class:`Accuracy`,
    :class:`MacroF1`, the frozen-feature probes (:func:`radtl.evaluation.probes.probe`) and the frozen-backbone
    regimes (:mod:`radtl.evaluation.frozen`).

    Args:
        true: ``(N,)`` true class indices (a sequence, array or CPU tensor).
        predicted: ``(N,)`` predicted class indices.
        prefix: put before both keys, e.g. ``"knn5_"`` gives ``{"knn5_accuracy", "knn5_f1"}``.

    Returns:
        ``{f"{prefix}accuracy": ..., f"{prefix}f1": ...}``.
    """
    true, predicted = np.asarray(true), np.asarray(predicted)
    return {
        f"{prefix}accuracy": float(accuracy_score(true, predicted)),
        f"{prefix}f1": float(f1_score(true, predicted, average="macro", zero_division=0)),
    }


def regression_values(output: Sequence[dict], pred_key: str = "pred", label_key: str = "label"):
    """``(predicted values, true values)`` as ``(N,)`` float tensors, for Ignite's
    ``MeanAbsoluteError`` and ``RootMeanSquaredError``, which then average over images
    (MONAI's regression metrics reduce per image first, which for one value per image makes the
    RMSE equal the MAE)."""
    return _stack([item[pred_key] for item in output])[:, 0], _stack([item[label_key] for item in output])[:, 0]


def confusion_matrix(predicted: Sequence[int], true: Sequence[int], num_classes: int) -> np.ndarray:
    """``(num_classes, num_classes)`` counts: row ``i`` the images of true class ``i``, column ``j`` those predicted
    as class ``j``.

    ``sklearn.metrics.confusion_matrix`` with every class listed, so a class no image has or
    gets still has its row and column (zeros).
    """
    return sklearn_confusion_matrix(list(true), list(predicted), labels=list(range(num_classes))).astype(np.int64)


def per_class_scores(predicted: Sequence[int], true: Sequence[int], labels: Sequence[str]) -> dict[str, dict]:
    """Precision, recall, F1 and support of each class, ``{name: {"precision", "recall", "f1", "support"}}``.

    ``sklearn.metrics.precision_recall_fscore_support(average=None)`` over every class in
    ``labels`` (class ``i`` is ``labels[i]``); a score whose denominator is zero (a class never
    predicted, or absent from the split) is 0, as in the study's macro F1
    (:class:`MacroF1`, ``zero_division=0``). For a binary task both classes are listed.
    """
    precision, recall, f1, support = precision_recall_fscore_support(
        list(true), list(predicted), labels=list(range(len(labels))), average=None, zero_division=0
    )
    return {
        str(name): {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(n)}
        for name, p, r, f, n in zip(labels, precision, recall, f1, support)
    }


class MacroF1(EpochMetric):
    """Macro-averaged F1 over the classes present, ``sklearn.metrics.f1_score(average="macro")``.

    For a binary task this averages the F1 of both classes, as the study's scikit-learn call did.
    """

    def __init__(self, output_transform=class_indices, device: str | torch.device = "cpu") -> None:
        super().__init__(self._f1, output_transform=output_transform, check_compute_fn=False, device=device)

    @staticmethod
    def _f1(pred: torch.Tensor, true: torch.Tensor) -> float:
        return classification_scores(true, pred)["f1"]


class Accuracy(EpochMetric):
    """Fraction of images whose predicted class is the true one."""

    def __init__(self, output_transform=class_indices, device: str | torch.device = "cpu") -> None:
        super().__init__(self._accuracy, output_transform=output_transform, check_compute_fn=False, device=device)

    @staticmethod
    def _accuracy(pred: torch.Tensor, true: torch.Tensor) -> float:
        return classification_scores(true, pred)["accuracy"]
