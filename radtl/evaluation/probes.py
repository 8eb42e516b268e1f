"""Frozen-feature probes: how well a pretrained backbone's features separate classes without fine-tuning.

Radio DINO and OmniRad judge a self-supervised backbone by probes on its frozen features
(shared/science/radio-dino-omnirad.md, "Adaptation regimes"): a weighted k-nearest-neighbour
classifier (k = 1, 5, 20, :func:`radtl.engines.probes.knn_predict`) and a logistic regression on the
class-token features. :func:`extract_features` gives the features of two splits, :func:`probe` the kNN and
logistic-regression accuracy and macro F1, as ``evaluate.json`` of ``dino_pretrain`` writes them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import torch
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from radtl.engines.metrics import classification_scores
from radtl.engines.probes import knn_predict

__all__ = ["extract_features", "probe"]


@torch.no_grad()
def extract_features(
    network: torch.nn.Module,
    loader: Iterable,
    prepare: Callable[[dict], torch.Tensor],
    device: str | torch.device = "cpu",
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(features (N, D), labels (N,))`` of every batch of ``loader`` through ``network`` in eval mode.

    ``prepare`` turns a batch dict into the network's input on ``device``.
    """
    network.eval()
    features, labels = [], []
    for batch in loader:
        features.append(network(prepare(batch)).float().cpu())
        labels.append(torch.as_tensor(batch["label"]).reshape(-1).long())
    return torch.cat(features), torch.cat(labels)


def probe(
    train: tuple[torch.Tensor, torch.Tensor],
    test: tuple[torch.Tensor, torch.Tensor],
    ks: Sequence[int] = (1, 5, 20),
    temperature: float = 0.07,
    max_iter: int = 1000,
    seed: int = 0,
) -> dict[str, float]:
    """kNN (each ``k``) and logistic-regression probes trained on ``train`` features, scored on ``test``.

    Returns ``{"knn1_accuracy", "knn1_f1", ..., "logistic_accuracy", "logistic_f1"}`` (macro F1).
    The logistic regression sees standardised features (scikit-learn, L2, lbfgs).
    """
    (train_x, train_y), (test_x, test_y) = train, test
    truth = test_y.numpy()
    scores: dict[str, float] = {}
    for k in ks:
        predicted = knn_predict(train_x, train_y, test_x, k, temperature).numpy()
        scores.update(classification_scores(truth, predicted, prefix=f"knn{k}_"))
    scaler = StandardScaler().fit(train_x.numpy())
    classifier = LogisticRegression(max_iter=max_iter, random_state=seed).fit(scaler.transform(train_x.numpy()),
                                                                             train_y.numpy())
    predicted = classifier.predict(scaler.transform(test_x.numpy()))
    scores.update(classification_scores(truth, predicted, prefix="logistic_"))
    return scores
