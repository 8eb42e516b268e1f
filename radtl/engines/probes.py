"""Frozen-feature probes: how well a pretrained backbone's features separate classes without fine-tuning.

Radio DINO and OmniRad judge a self-supervised backbone by probes on its frozen features
(shared/science/radio-dino-omnirad.md, "Adaptation regimes"): a weighted k-nearest-neighbour
classifier (k = 1, 5, 20) and a logistic regression on the class-token features.

- :func:`knn_predict`: DINO's weighted kNN (Caron et al. 2021, Sec. 4.1 and Wu et al. 2018):
  cosine similarity to the ``k`` nearest training features, each neighbour voting for its class
  with weight ``exp(s / T)``, ``T = 0.07``.
- :class:`KNNAccuracy`: the same kNN, leave-one-out within one split, as an Ignite metric, so a
  self-supervised run can validate (and keep its best backbone) on pseudo-labels it never trained on.

The probes on two splits' features (:func:`radtl.evaluation.probes.probe`) are evaluation, not training, and live in
:mod:`radtl.evaluation.probes`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from ignite.metrics import EpochMetric

from radtl.lazy import moved_names

__all__ = ["KNNAccuracy", "knn_predict"]


def knn_predict(
    train_features: torch.Tensor,
    train_labels: torch.Tensor,
    features: torch.Tensor,
    k: int = 20,
    temperature: float = 0.07,
    exclude_self: bool = False,
    chunk: int = 1024,
) -> torch.Tensor:
    """Classes of ``features`` (N, D) by weighted vote of their ``k`` most cosine-similar training features.

    Args:
        train_features: ``(M, D)`` features of the labelled bank.
        train_labels: ``(M,)`` class indices.
        features: ``(N, D)`` features to classify.
        k: neighbours (at most ``M``, or ``M - 1`` with ``exclude_self``).
        temperature: ``T`` of the vote weights ``exp(similarity / T)``.
        exclude_self: ``features`` are the bank itself: leave each item out of its own vote.
        chunk: rows classified at once (bounds the ``(chunk, M)`` similarity matrix).
    """
    bank = F.normalize(train_features.float(), dim=1)
    labels = train_labels.long()
    classes = int(labels.max()) + 1
    k = min(k, len(bank) - int(exclude_self))
    if k < 1:
        raise ValueError(f"kNN needs at least {1 + int(exclude_self)} bank item(s), got {len(bank)}")
    predictions = []
    for start in range(0, len(features), chunk):
        query = F.normalize(features[start : start + chunk].float(), dim=1)
        similarity = query @ bank.T
        if exclude_self:
            rows = torch.arange(len(query))
            similarity[rows, rows + start] = -float("inf")
        top, index = similarity.topk(k, dim=1)
        votes = torch.zeros(len(query), classes).scatter_add_(1, labels[index], (top / temperature).exp())
        predictions.append(votes.argmax(dim=1))
    return torch.cat(predictions) if predictions else torch.zeros(0, dtype=torch.long)


def _features_and_labels(output: Sequence[dict], pred_key: str = "pred", label_key: str = "label"):
    features = torch.stack([torch.as_tensor(item[pred_key]).detach().float().reshape(-1).cpu() for item in output])
    labels = torch.stack([torch.as_tensor(item[label_key]).detach().reshape(-1)[0].long().cpu() for item in output])
    return features, labels


class KNNAccuracy(EpochMetric):
    """Leave-one-out weighted kNN accuracy of the evaluator's features (``pred``) over its labels.

    The evaluator's network returns features (a backbone with ``num_classes=0``); the epoch's
    features are gathered (across processes under torchrun) and each item is classified by the
    others (:func:`knn_predict` with ``exclude_self``).

    Args:
        k: neighbours.
        temperature: vote temperature.
    """

    def __init__(self, k: int = 20, temperature: float = 0.07, output_transform: Callable = _features_and_labels,
                 device: str | torch.device = "cpu") -> None:
        self.k = k
        self.temperature = temperature
        super().__init__(self._accuracy, output_transform=output_transform, check_compute_fn=False, device=device)

    def _accuracy(self, features: torch.Tensor, labels: torch.Tensor) -> float:
        predicted = knn_predict(features, labels, features, self.k, self.temperature, exclude_self=True)
        return float((predicted == labels.long()).float().mean())


__getattr__ = moved_names(__name__, dict.fromkeys(("extract_features", "probe"), "radtl.evaluation.probes"))
