"""Fusing the embeddings of several sources into one vector per item (thesis 2.4.2, "Feature fusion").

For an item with diagnosis, tag and image embeddings ``f(x_D), f(x_T), f(x_I)`` the fused
vector is always the concatenation ``[g(x_D), g(x_T), g(x_I)]`` (in the order the sources are
given) of one of three per-source representations ``g``:

- ``embeddings``: the embedding itself;
- ``clusterdists``: the distances to the centres of that source's own clustering, normalised to
  [0, 1] (by the smallest and largest distance seen when fitting, so new items are scaled as
  the training ones were, and clipped);
- ``clusterprobs``: the soft assignment ``p_c = exp(-d_c) / sum_j exp(-d_j)`` of Eq. 2.10 over
  those normalised distances.

The study's best pseudo-labels came from ``embeddings`` of PV-DBOW, the tag autoencoder and the
CAE (Table 2.8). Items lacking a source (no report for the study, an image that failed
conversion) have NaN rows in that source's matrix; they are given the source's mean training
embedding, a point that pulls them towards no cluster in particular, and the caller records
which sources each item lacked.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from radtl.pseudolabel.cluster import ClusterModel
from radtl.pseudolabel.persistence import SavedState

__all__ = ["FUSION_METHODS", "SourceFusion", "missing_rows"]

#: The study's three fusion strategies.
FUSION_METHODS = ("embeddings", "clusterdists", "clusterprobs")


def missing_rows(embedding: np.ndarray) -> np.ndarray:
    """True for each row that is not a whole embedding (any NaN)."""
    return ~np.isfinite(np.asarray(embedding, dtype=np.float64)).all(axis=1)


class SourceFusion(SavedState):
    """The fusion of named sources, fitted on the training items and re-applied to any others.

    Args:
        method: one of :data:`FUSION_METHODS`.
        cluster_models: for ``clusterdists`` and ``clusterprobs``, a clustering per source
            (:class:`~radtl.pseudolabel.cluster.ClusterModel`, fitted or not: :meth:`fit`
            fits the unfitted ones on the training items).
        balance: divide each source's block by its mean row norm over the training items, so
            that a 1000-d text embedding does not outweigh a 32-d tag embedding only by its size
            (the study concatenated the raw blocks: False).
    """

    STATE_FORMAT = "radtl.pseudolabel.SourceFusion/1"

    def __init__(self, method: str = "embeddings", cluster_models: Mapping[str, ClusterModel] | None = None,
                 balance: bool = False) -> None:
        if method not in FUSION_METHODS:
            raise ValueError(f"unknown fusion method {method!r}: use one of {', '.join(FUSION_METHODS)}")
        if method != "embeddings" and not cluster_models:
            raise ValueError(f"{method} needs a clustering of each source (cluster_models)")
        self.method, self.balance = method, bool(balance)
        self.cluster_models = dict(cluster_models or {})
        self.sources_: tuple[str, ...] = ()
        self.means_: dict[str, np.ndarray] = {}
        self.ranges_: dict[str, tuple[float, float]] = {}
        self.scales_: dict[str, float] = {}

    def fit(self, sources: Mapping[str, np.ndarray]) -> SourceFusion:
        """Learn the fill values, distance ranges and block scales from the training items' embeddings."""
        self.sources_ = tuple(sources)
        if not self.sources_:
            raise ValueError("no source to fuse")
        for name, embedding in sources.items():
            embedding = np.asarray(embedding, dtype=np.float32)
            present = embedding[~missing_rows(embedding)]
            if not len(present):
                raise ValueError(f"source {name!r} has no item with an embedding in the training split")
            self.means_[name] = present.mean(axis=0)
            if self.method != "embeddings":
                if name not in self.cluster_models:
                    raise ValueError(f"{self.method} needs a clustering of source {name!r}")
                model = self.cluster_models[name]
                if model.centres_ is None:
                    model.fit(present)
                distances = model.transform(present)
                self.ranges_[name] = (float(distances.min()), float(distances.max()))
            self.scales_[name] = 1.0
            if self.balance:
                block = self._block(name, embedding)
                self.scales_[name] = float(np.linalg.norm(block, axis=1).mean()) or 1.0
        return self

    def _block(self, name: str, embedding: np.ndarray) -> np.ndarray:
        """The source's representation ``g`` of thesis 2.4.2, before balancing."""
        embedding = np.array(embedding, dtype=np.float32)
        missing = missing_rows(embedding)
        embedding[missing] = self.means_[name]
        if self.method == "embeddings":
            return embedding
        low, high = self.ranges_[name]
        distances = (self.cluster_models[name].transform(embedding) - low) / max(high - low, np.finfo(np.float32).eps)
        distances = np.clip(distances, 0.0, 1.0)
        if self.method == "clusterdists":
            return distances.astype(np.float32)
        logits = -distances
        probabilities = np.exp(logits - logits.max(axis=1, keepdims=True))
        return (probabilities / probabilities.sum(axis=1, keepdims=True)).astype(np.float32)

    def transform(self, sources: Mapping[str, np.ndarray]) -> np.ndarray:
        """The fused ``(n, sum of block widths)`` float32 matrix of the given items."""
        if not self.sources_:
            raise RuntimeError("this SourceFusion is not fitted yet: call fit first")
        absent = [name for name in self.sources_ if name not in sources]
        if absent:
            raise ValueError(f"the fusion was fitted with the sources {', '.join(self.sources_)}; missing: {', '.join(absent)}")
        blocks = [self._block(name, sources[name]) / self.scales_[name] for name in self.sources_]
        return np.concatenate(blocks, axis=1).astype(np.float32)

    def fit_transform(self, sources: Mapping[str, np.ndarray]) -> np.ndarray:
        return self.fit(sources).transform(sources)
