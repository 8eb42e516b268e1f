"""Clustering embeddings into pseudo-label groups (thesis 2.4.2, "Grouping").

The study clustered with k-means and with k-medoids (Euclidean or cosine distance), for
k in {5, 10, ..., 150} (:data:`STUDY_KS`), chose k at the elbow of the within-cluster sum of
distances with the Kneedle algorithm (Satopää et al., 2011; the ``kneed`` package), and checked
with 11 reruns that the result did not depend on the initialisation.

:class:`ClusterModel` is one clustering, fitted once and applied to new embeddings later
(nearest centre), whatever the algorithm:

- ``kmeans``: scikit-learn's Lloyd k-means;
- ``minibatch-kmeans``: scikit-learn's mini-batch k-means (Sculley, 2010), for archives: it
  reads the training matrix in random batches, so a float32 ``numpy.memmap`` of a million rows
  is never copied into memory, and the assignment of every row is done in chunks;
- ``kmedoids``: FasterPAM (Schubert and Rousseeuw, 2021; the ``kmedoids`` package) on the
  distance matrix of at most ``medoid_sample`` rows; with more training rows the medoids come
  from a random sample of that size and every row is assigned to its nearest medoid (CLARA,
  Kaufman and Rousseeuw, 1990), since the full matrix of a million rows would need terabytes.

The objective (:attr:`ClusterModel.inertia_`) is what the elbow is read from: the sum of squared
Euclidean distances to the nearest centre for k-means, the sum of distances to the nearest
medoid for k-medoids.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from itertools import combinations

import numpy as np
from sklearn.cluster import KMeans, MiniBatchKMeans
from sklearn.metrics import adjusted_rand_score, pairwise_distances

from radtl.pseudolabel.persistence import SavedState

__all__ = [
    "ALGORITHMS",
    "STUDY_KS",
    "ClusterModel",
    "ElbowResult",
    "StabilityResult",
    "cluster_stability",
    "elbow",
]

#: The numbers of clusters the study tried (thesis 2.4.2).
STUDY_KS = (5, 10, 15, 20, 25, 30, 40, 50, 75, 100, 150)
#: The clustering algorithms and the distances each supports.
ALGORITHMS = {"kmeans": ("euclidean",), "minibatch-kmeans": ("euclidean",), "kmedoids": ("euclidean", "cosine")}


def _chunks(n: int, rows: int) -> Iterator[slice]:
    for start in range(0, n, rows):
        yield slice(start, min(start + rows, n))


def _as_matrix(X) -> np.ndarray:
    """A 2-D float array, float32 kept as float32 (a memmap stays a memmap)."""
    if not isinstance(X, np.ndarray) or X.dtype not in (np.float32, np.float64):
        X = np.asarray(X, dtype=np.float32)
    if X.ndim != 2:
        raise ValueError(f"embeddings must be a 2-D (items, features) array, not shape {X.shape}")
    return X


class ClusterModel(SavedState):
    """A fitted clustering of embeddings: centres (centroids or medoids) and the nearest-centre rule.

    Args:
        n_clusters: k.
        algorithm: ``"kmeans"``, ``"minibatch-kmeans"`` or ``"kmedoids"``.
        metric: ``"euclidean"``, or ``"cosine"`` (k-medoids only: k-means is Euclidean by construction).
        seed: the random state of the initialisation and of the k-medoids sample.
        batch_size: rows per mini-batch (``minibatch-kmeans``).
        medoid_sample: most rows whose distance matrix FasterPAM sees (``kmedoids``).
        chunk_rows: rows whose distances to the centres are computed at a time.
    """

    STATE_FORMAT = "radtl.pseudolabel.ClusterModel/1"

    def __init__(self, n_clusters: int, algorithm: str = "kmeans", metric: str = "euclidean", seed: int = 0,
                 batch_size: int = 4096, medoid_sample: int = 5000, chunk_rows: int = 65536) -> None:
        if algorithm not in ALGORITHMS:
            raise ValueError(f"unknown clustering algorithm {algorithm!r}: use one of {', '.join(ALGORITHMS)}")
        if metric not in ALGORITHMS[algorithm]:
            raise ValueError(f"{algorithm} supports the metric(s) {', '.join(ALGORITHMS[algorithm])}, not {metric!r}")
        if int(n_clusters) < 2:
            raise ValueError(f"n_clusters must be at least 2, not {n_clusters}")
        self.n_clusters = int(n_clusters)
        self.algorithm, self.metric, self.seed = algorithm, metric, int(seed)
        self.batch_size, self.medoid_sample, self.chunk_rows = int(batch_size), int(medoid_sample), int(chunk_rows)
        self.centres_: np.ndarray | None = None
        self.inertia_: float | None = None

    def __repr__(self) -> str:
        return f"ClusterModel(n_clusters={self.n_clusters}, algorithm={self.algorithm!r}, metric={self.metric!r})"

    def fit(self, X) -> ClusterModel:
        """Find the centres of the ``(n, d)`` embeddings ``X`` (a float32 memmap is read, not copied)."""
        X = _as_matrix(X)
        if len(X) < self.n_clusters:
            raise ValueError(f"{len(X)} items cannot make {self.n_clusters} clusters")
        if self.algorithm == "kmeans":
            model = KMeans(self.n_clusters, n_init="auto", random_state=self.seed).fit(X)
            self.centres_ = model.cluster_centers_.astype(np.float32)
        elif self.algorithm == "minibatch-kmeans":
            model = MiniBatchKMeans(self.n_clusters, batch_size=self.batch_size, n_init="auto",
                                    random_state=self.seed, compute_labels=False).fit(X)
            self.centres_ = model.cluster_centers_.astype(np.float32)
        else:
            self.centres_ = self._fit_medoids(X)
        self.inertia_ = float(sum(self._objective(distances.min(axis=1)) for distances in self._distance_chunks(X)))
        return self

    def _fit_medoids(self, X: np.ndarray) -> np.ndarray:
        import kmedoids

        rng = np.random.default_rng(self.seed)
        rows = np.arange(len(X)) if len(X) <= self.medoid_sample else np.sort(rng.choice(len(X), self.medoid_sample, replace=False))
        sample = np.asarray(X[rows], dtype=np.float64)
        dissimilarity = pairwise_distances(sample, metric=self.metric)
        result = kmedoids.fasterpam(dissimilarity, self.n_clusters, random_state=self.seed)
        return sample[np.asarray(result.medoids)].astype(np.float32)

    def _objective(self, nearest: np.ndarray) -> float:
        return float((nearest.astype(np.float64) ** 2).sum() if self.algorithm != "kmedoids" else nearest.sum())

    def _check_fitted(self, X: np.ndarray) -> None:
        if self.centres_ is None:
            raise RuntimeError("this ClusterModel is not fitted yet: call fit first")
        if X.shape[1] != self.centres_.shape[1]:
            raise ValueError(f"embeddings have {X.shape[1]} features; the clustering was fitted on {self.centres_.shape[1]}")

    def _distance_chunks(self, X: np.ndarray) -> Iterator[np.ndarray]:
        self._check_fitted(X)
        for rows in _chunks(len(X), self.chunk_rows):
            yield pairwise_distances(np.asarray(X[rows], dtype=np.float32), self.centres_, metric=self.metric)

    def transform(self, X) -> np.ndarray:
        """``(n, k)`` distances of each row to each centre, in the model's metric."""
        X = _as_matrix(X)
        return np.concatenate(list(self._distance_chunks(X)) or [np.empty((0, self.n_clusters), np.float32)])

    def predict(self, X) -> np.ndarray:
        """The nearest centre of each row (int32), computed ``chunk_rows`` rows at a time."""
        X = _as_matrix(X)
        labels = [distances.argmin(axis=1).astype(np.int32) for distances in self._distance_chunks(X)]
        return np.concatenate(labels) if labels else np.empty(0, np.int32)

    def fit_predict(self, X) -> np.ndarray:
        return self.fit(X).predict(X)

    def _check_savable(self) -> None:
        if self.centres_ is None:
            raise RuntimeError("cannot save a ClusterModel that is not fitted")


@dataclass(frozen=True)
class ElbowResult:
    """The objective for each k tried, and the k at the elbow.

    Attributes:
        ks: the numbers of clusters tried.
        inertias: the objective (:attr:`ClusterModel.inertia_`) of each.
        k: the elbow: Kneedle's knee, or where no knee passes Kneedle's threshold, the k of
            the largest difference curve value (the same curve's maximum) and a note saying so.
        note: why ``k`` is not Kneedle's own knee, or empty.
    """

    ks: tuple[int, ...]
    inertias: tuple[float, ...]
    k: int
    note: str = ""


def elbow(X, ks: Sequence[int] = STUDY_KS, algorithm: str = "kmeans", metric: str = "euclidean", seed: int = 0,
          **model_options) -> ElbowResult:
    """Fit one clustering per k and find the elbow of the objective with Kneedle (thesis 2.4.2).

    k values not below the number of rows are left out; at least three must remain.

    Args:
        X: ``(n, d)`` embeddings (the training split's).
        ks: the numbers of clusters to try (default the study's, :data:`STUDY_KS`).
        algorithm: see :class:`ClusterModel`.
        metric: see :class:`ClusterModel`.
        seed: the seed of every fit.
        model_options: further :class:`ClusterModel` arguments.
    """
    from kneed import KneeLocator

    X = _as_matrix(X)
    ks = tuple(sorted({int(k) for k in ks if 2 <= int(k) < len(X)}))
    if len(ks) < 3:
        raise ValueError(f"the elbow needs at least three k values between 2 and {len(X) - 1} (the rows); got {ks}")
    inertias = tuple(ClusterModel(k, algorithm, metric, seed, **model_options).fit(X).inertia_ for k in ks)
    locator = KneeLocator(ks, inertias, curve="convex", direction="decreasing")
    if locator.knee is not None:
        return ElbowResult(ks, inertias, int(locator.knee))
    k = ks[int(np.argmax(locator.y_difference))]
    return ElbowResult(ks, inertias, k, note=f"Kneedle found no knee above its threshold; k={k} is where its difference curve peaks")


@dataclass(frozen=True)
class StabilityResult:
    """Clusterings of the same data from several seeds, and how much they agree.

    Attributes:
        seeds: the seeds.
        labels: the clusters from each seed, ``(len(seeds), n)``.
        inertias: each run's objective.
        adjusted_rand: the adjusted Rand index of every pair of runs (1 is identical partitions).
    """

    seeds: tuple[int, ...]
    labels: np.ndarray = field(repr=False)
    inertias: tuple[float, ...]
    adjusted_rand: tuple[float, ...]

    @property
    def mean_adjusted_rand(self) -> float:
        return float(np.mean(self.adjusted_rand)) if self.adjusted_rand else math.nan


def cluster_stability(X, n_clusters: int, seeds: Sequence[int] = tuple(range(11)), algorithm: str = "kmeans",
                      metric: str = "euclidean", **model_options) -> StabilityResult:
    """Cluster ``X`` once per seed (the study: 11 runs) and compare the partitions pairwise.

    Args:
        X: ``(n, d)`` embeddings.
        n_clusters: k.
        seeds: one run per seed.
        algorithm: see :class:`ClusterModel`.
        metric: see :class:`ClusterModel`.
        model_options: further :class:`ClusterModel` arguments.
    """
    X = _as_matrix(X)
    models = [ClusterModel(n_clusters, algorithm, metric, seed, **model_options).fit(X) for seed in seeds]
    labels = np.stack([model.predict(X) for model in models])
    agreement = tuple(float(adjusted_rand_score(a, b)) for a, b in combinations(labels, 2))
    return StabilityResult(tuple(int(s) for s in seeds), labels, tuple(m.inertia_ for m in models), agreement)
