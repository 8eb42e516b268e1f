"""The clustering quality measures of RadiologyNET (thesis 2.4.2, "Evaluation metrics").

Agreement of the clusters with the DICOM tags a radiologist would group by:

- homogeneity HS (Eq. 2.7) and normalised mutual information NMI (Eq. 2.6) of the clusters
  against Modality (``HS_M``, ``NMI_M``) and against BodyPartExamined (``HS_B``, ``NMI_B``),
  exactly scikit-learn's ``homogeneity_score`` and ``normalized_mutual_info_score`` with the
  arithmetic mean (``NMI = 2 I / (H(y) + H(y_hat))``);
- ``S``, the harmonic mean of the four.

Coherence of what ends up together:

- ``D_I`` and ``D_D``: for each cluster the mean cosine distance over all pairs of its members'
  image (resp. report) embeddings (Eq. 2.8 and 2.9), averaged over the clusters; ``D_score``
  their harmonic mean (lower is better). The thesis prints them multiplied by 100.

And the rule that made 36 pseudo-labels of 50 clusters (thesis 3.1: "any groups where the
entropy of obtained labels exceeded an empirically determined threshold were excluded"):
:func:`cluster_composition` gives each cluster's size, majority values and the Shannon entropy
(bits) of its Modality and BodyPartExamined mix, and marks the clusters to keep.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.metrics import homogeneity_score, normalized_mutual_info_score

__all__ = [
    "ClusterRule",
    "cluster_composition",
    "cluster_entropy",
    "clustering_scores",
    "distance_scores",
    "harmonic_mean",
    "intra_cluster_cosine_distances",
]


def _known(values: Sequence) -> np.ndarray:
    """True where a reference label is present (not None, NaN or empty)."""
    series = pd.Series(values, dtype=object)
    return (series.notna() & (series.astype(str).str.strip() != "")).to_numpy()


def harmonic_mean(values: Sequence[float]) -> float:
    """The harmonic mean; 0 when any value is 0, NaN when any is NaN or there are none."""
    values = [float(v) for v in values]
    if not values or any(math.isnan(v) for v in values):
        return math.nan
    if any(v <= 0 for v in values):
        return 0.0
    return len(values) / sum(1.0 / v for v in values)


def clustering_scores(clusters: Sequence[int], modality: Sequence, body_part: Sequence) -> dict[str, float]:
    """``HS_M``, ``HS_B``, ``NMI_M``, ``NMI_B`` and their harmonic mean ``S`` (thesis Eq. 2.6, 2.7).

    Items whose reference value is missing are left out of that reference's two scores (the
    counts used are returned as ``n_M`` and ``n_B``); a reference with no known value gives NaN.

    Args:
        clusters: the cluster of each item.
        modality: each item's Modality.
        body_part: each item's BodyPartExamined (the imputed value where the tag was empty).
    """
    clusters = np.asarray(clusters)
    scores: dict[str, float] = {}
    for suffix, reference in (("M", modality), ("B", body_part)):
        known = _known(reference)
        if len(known) != len(clusters):
            raise ValueError(f"{len(clusters)} cluster labels but {len(known)} reference values ({suffix})")
        truth = np.asarray(pd.Series(reference, dtype=object)[known].astype(str))
        predicted = clusters[known]
        scores[f"n_{suffix}"] = int(known.sum())
        if known.any():
            scores[f"HS_{suffix}"] = float(homogeneity_score(truth, predicted))
            scores[f"NMI_{suffix}"] = float(normalized_mutual_info_score(truth, predicted, average_method="arithmetic"))
        else:
            scores[f"HS_{suffix}"] = scores[f"NMI_{suffix}"] = math.nan
    scores["S"] = harmonic_mean([scores["HS_B"], scores["HS_M"], scores["NMI_B"], scores["NMI_M"]])
    return scores


def intra_cluster_cosine_distances(embedding: np.ndarray, clusters: Sequence[int]) -> pd.Series:
    """Each cluster's mean pairwise cosine distance, ``D^(c)`` of thesis Eq. 2.9, indexed by cluster.

    With unit vectors ``u_i``, the sum of ``u_i . u_j`` over the ``k(k-1)/2`` pairs of a cluster
    is ``(|sum_i u_i|^2 - k) / 2``, so the mean over pairs is computed in one pass over the
    rows (O(n d)) instead of over all pairs (O(n^2 d)). Rows with a missing (NaN) or zero
    embedding have no direction and are left out; a cluster with fewer than two rows left has
    no pair and gets NaN.

    Args:
        embedding: ``(n, d)`` embeddings of the items.
        clusters: the cluster of each item.
    """
    embedding = np.asarray(embedding, dtype=np.float64)
    clusters = np.asarray(clusters)
    if embedding.ndim != 2 or len(embedding) != len(clusters):
        raise ValueError(f"embedding of shape {embedding.shape} does not match {len(clusters)} cluster labels")
    norms = np.linalg.norm(embedding, axis=1)
    usable = np.isfinite(norms) & (norms > 0)
    ids, codes = np.unique(clusters, return_inverse=True)
    units = embedding[usable] / norms[usable, None]
    membership = sparse.csr_matrix((np.ones(usable.sum()), (codes[usable], np.arange(usable.sum()))),
                                   shape=(len(ids), usable.sum()))
    sums = np.asarray(membership @ units)
    sizes = np.bincount(codes[usable], minlength=len(ids)).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_similarity = ((sums**2).sum(axis=1) - sizes) / (sizes * (sizes - 1))
    distances = np.where(sizes >= 2, 1.0 - mean_similarity, np.nan)
    return pd.Series(distances, index=pd.Index(ids, name="cluster"), name="mean_cosine_distance")


def distance_scores(clusters: Sequence[int], image_embedding: np.ndarray | None,
                    text_embedding: np.ndarray | None) -> dict[str, float]:
    """``D_I``, ``D_D`` (mean over clusters of :func:`intra_cluster_cosine_distances`) and ``D_score``.

    ``D_score`` is the harmonic mean of ``D_I`` and ``D_D`` (thesis 2.4.2, "Evaluation process");
    a missing source gives NaN for its score and for ``D_score``.

    Args:
        clusters: the cluster of each item.
        image_embedding: ``(n, d)`` image embeddings (NaN rows for items without an image), or None.
        text_embedding: ``(n, d)`` report embeddings (NaN rows for items without a report), or None.
    """
    scores = {}
    for name, embedding in (("D_I", image_embedding), ("D_D", text_embedding)):
        scores[name] = math.nan if embedding is None else float(intra_cluster_cosine_distances(embedding, clusters).mean())
    scores["D_score"] = harmonic_mean([scores["D_I"], scores["D_D"]])
    return scores


def cluster_entropy(clusters: Sequence[int], values: Sequence) -> pd.Series:
    """The Shannon entropy in bits of each cluster's mix of ``values`` (missing values left out)."""
    known = _known(values)
    frame = pd.DataFrame({"cluster": np.asarray(clusters)[known], "value": pd.Series(values, dtype=object)[known].astype(str).to_numpy()})
    counts = frame.groupby(["cluster", "value"]).size()
    fractions = counts / counts.groupby(level="cluster").transform("sum")
    entropy = -(fractions * np.log2(fractions)).groupby(level="cluster").sum()
    return entropy.reindex(np.unique(np.asarray(clusters)), fill_value=math.nan).rename("entropy") + 0.0


@dataclass(frozen=True)
class ClusterRule:
    """Which clusters become pseudo-labels: homogeneous enough and large enough.

    The study dropped the 14 of its 50 clusters whose label entropy exceeded "an empirically
    determined threshold" it did not publish; these defaults keep a cluster whose Modality mix
    is at most one bit (two modalities half and half) and whose body-part mix is at most 1.5
    bits (about three body parts), and that has at least 2 members.

    Args:
        max_modality_entropy: largest Modality entropy (bits) of a kept cluster.
        max_body_part_entropy: largest BodyPartExamined entropy (bits) of a kept cluster.
        min_size: smallest kept cluster.
    """

    max_modality_entropy: float = 1.0
    max_body_part_entropy: float = 1.5
    min_size: int = 2

    def __post_init__(self) -> None:
        if self.max_modality_entropy < 0 or self.max_body_part_entropy < 0:
            raise ValueError("entropy thresholds are in bits and cannot be negative")
        if self.min_size < 1:
            raise ValueError(f"min_size must be at least 1, not {self.min_size}")


def _majority(clusters: np.ndarray, values: Sequence) -> tuple[pd.Series, pd.Series]:
    known = _known(values)
    frame = pd.DataFrame({"cluster": clusters[known], "value": pd.Series(values, dtype=object)[known].astype(str).to_numpy()})
    counts = frame.groupby(["cluster", "value"]).size().rename("n").reset_index()
    top = counts.sort_values(["cluster", "n", "value"], ascending=[True, False, True]).drop_duplicates("cluster")
    totals = counts.groupby("cluster")["n"].sum()
    top = top.set_index("cluster")
    return top["value"], top["n"] / totals


def cluster_composition(clusters: Sequence[int], modality: Sequence, body_part: Sequence,
                        rule: ClusterRule | None = None) -> pd.DataFrame:
    """One row per cluster: size, majority Modality / body part and their share, entropies, kept, reason.

    Args:
        clusters: the cluster of each item.
        modality: each item's Modality.
        body_part: each item's BodyPartExamined (imputed where empty).
        rule: which clusters to keep (default :class:`ClusterRule`'s defaults).
    """
    rule = rule or ClusterRule()
    clusters = np.asarray(clusters)
    ids, sizes = np.unique(clusters, return_counts=True)
    table = pd.DataFrame({"size": sizes}, index=pd.Index(ids, name="cluster"))
    for name, values in (("modality", modality), ("body_part", body_part)):
        majority, share = _majority(clusters, values)
        table[name] = majority.reindex(ids)
        table[f"{name}_share"] = share.reindex(ids)
        table[f"{name}_entropy"] = cluster_entropy(clusters, values).reindex(ids)
    reasons = []
    for row in table.itertuples():
        why = []
        if row.size < rule.min_size:
            why.append(f"{row.size} items < {rule.min_size}")
        if row.modality_entropy > rule.max_modality_entropy:
            why.append(f"Modality entropy {row.modality_entropy:.2f} > {rule.max_modality_entropy:g} bits")
        if row.body_part_entropy > rule.max_body_part_entropy:
            why.append(f"body-part entropy {row.body_part_entropy:.2f} > {rule.max_body_part_entropy:g} bits")
        reasons.append("; ".join(why))
    table["reason"] = reasons
    table["kept"] = table["reason"] == ""
    return table.reset_index()
