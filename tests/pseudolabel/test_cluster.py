"""Clustering, fusion and the study's cluster quality measures (thesis 2.4.2)."""

from __future__ import annotations

import math
from itertools import combinations

import numpy as np
import pytest
from scipy.stats import entropy as scipy_entropy
from sklearn.metrics import homogeneity_score, normalized_mutual_info_score
from sklearn.metrics.pairwise import cosine_distances

from radtl.pseudolabel.cluster import ClusterModel, cluster_stability, elbow
from radtl.pseudolabel.fusion import SourceFusion
from radtl.pseudolabel.metrics import (
    ClusterRule,
    cluster_composition,
    cluster_entropy,
    clustering_scores,
    distance_scores,
    harmonic_mean,
    intra_cluster_cosine_distances,
)


def _blobs(n_per: int = 30, centres: int = 4, dim: int = 5, spread: float = 0.1, seed: int = 0):
    rng = np.random.default_rng(seed)
    means = rng.normal(0, 3, (centres, dim))
    truth = np.repeat(np.arange(centres), n_per)
    return (means[truth] + rng.normal(0, spread, (len(truth), dim))).astype(np.float32), truth


# --- metrics ----------------------------------------------------------------------------------


def _entropy(labels) -> float:
    _, counts = np.unique(labels, return_counts=True)
    return float(scipy_entropy(counts))


def _conditional_entropy(truth, clusters) -> float:
    truth, clusters = np.asarray(truth), np.asarray(clusters)
    return sum((clusters == c).mean() * _entropy(truth[clusters == c]) for c in np.unique(clusters))


def test_homogeneity_and_nmi_follow_thesis_equations_2_6_and_2_7():
    modality = ["CT", "CT", "MR", "MR", "CR", "CR", "CT", "MR"]
    clusters = [0, 0, 1, 1, 2, 2, 2, 1]
    scores = clustering_scores(clusters, modality, modality)
    h_y, h_c = _entropy(modality), _entropy(clusters)
    mutual = h_y - _conditional_entropy(modality, clusters)
    assert scores["HS_M"] == pytest.approx(1 - _conditional_entropy(modality, clusters) / h_y)
    assert scores["NMI_M"] == pytest.approx(2 * mutual / (h_y + h_c))


def test_scores_equal_scikit_learn_definitions_on_random_labellings():
    rng = np.random.default_rng(3)
    clusters, modality, body = rng.integers(0, 6, 200), rng.choice(["CT", "MR", "CR"], 200), rng.choice(list("ABCDE"), 200)
    scores = clustering_scores(clusters, modality, body)
    assert scores["HS_M"] == pytest.approx(homogeneity_score(modality, clusters))
    assert scores["HS_B"] == pytest.approx(homogeneity_score(body, clusters))
    assert scores["NMI_B"] == pytest.approx(normalized_mutual_info_score(body, clusters))
    assert scores["S"] == pytest.approx(4 / sum(1 / scores[m] for m in ("HS_M", "HS_B", "NMI_M", "NMI_B")))


def test_items_without_a_reference_value_are_left_out_of_that_reference_only():
    clusters = [0, 0, 1, 1, 1]
    modality = ["CT", "CT", "MR", "MR", "MR"]
    body = ["HEAD", None, "KNEE", "", float("nan")]
    scores = clustering_scores(clusters, modality, body)
    assert (scores["n_M"], scores["n_B"]) == (5, 2)
    assert scores["HS_B"] == pytest.approx(homogeneity_score(["HEAD", "KNEE"], [0, 1]))


def test_harmonic_mean_is_zero_with_a_zero_and_nan_when_empty():
    assert harmonic_mean([0.5, 0.5]) == pytest.approx(0.5)
    assert harmonic_mean([1.0, 0.0]) == 0.0
    assert math.isnan(harmonic_mean([]))


def test_intra_cluster_distance_is_the_mean_over_pairs_of_equation_2_9():
    rng = np.random.default_rng(1)
    embedding = rng.normal(size=(12, 4))
    clusters = np.array([0] * 5 + [1] * 4 + [2] * 3)
    distances = intra_cluster_cosine_distances(embedding, clusters)
    for c in range(3):
        members = embedding[clusters == c]
        pairs = [cosine_distances(members[i:i + 1], members[j:j + 1])[0, 0] for i, j in combinations(range(len(members)), 2)]
        assert distances[c] == pytest.approx(np.mean(pairs))


def test_a_cluster_of_one_has_no_pair_and_missing_embeddings_are_left_out():
    embedding = np.array([[1.0, 0.0], [0.0, 1.0], [np.nan, np.nan], [1.0, 1.0]])
    distances = intra_cluster_cosine_distances(embedding, [0, 0, 0, 1])
    assert distances[0] == pytest.approx(1.0)
    assert math.isnan(distances[1])


def test_d_score_is_the_harmonic_mean_of_image_and_text_distances():
    rng = np.random.default_rng(2)
    clusters = rng.integers(0, 3, 30)
    images, texts = rng.normal(size=(30, 6)), rng.normal(size=(30, 8))
    scores = distance_scores(clusters, images, texts)
    assert scores["D_score"] == pytest.approx(2 / (1 / scores["D_I"] + 1 / scores["D_D"]))
    assert math.isnan(distance_scores(clusters, images, None)["D_score"])


def test_cluster_entropy_in_bits():
    entropy = cluster_entropy([0, 0, 1, 1, 1, 1], ["CT", "CT", "CT", "MR", "CR", "DX"])
    assert entropy[0] == 0.0
    assert entropy[1] == pytest.approx(2.0)


def test_heterogeneous_and_tiny_clusters_are_dropped_with_a_reason():
    clusters = [0] * 4 + [1] * 4 + [2]
    modality = ["CT"] * 4 + ["CT", "MR", "CR", "DX"] + ["MR"]
    body = ["HEAD"] * 4 + ["CHEST"] * 4 + ["KNEE"]
    table = cluster_composition(clusters, modality, body, ClusterRule(max_modality_entropy=1.0, min_size=2))
    assert table["kept"].tolist() == [True, False, False]
    assert "Modality entropy 2.00 > 1 bits" in table.loc[1, "reason"]
    assert "1 items < 2" in table.loc[2, "reason"]
    assert (table.loc[0, "modality"], table.loc[0, "body_part"], table.loc[0, "modality_share"]) == ("CT", "HEAD", 1.0)


# --- clustering -------------------------------------------------------------------------------


@pytest.mark.parametrize(("algorithm", "metric"), [("kmeans", "euclidean"), ("minibatch-kmeans", "euclidean"),
                                                   ("kmedoids", "euclidean"), ("kmedoids", "cosine")])
def test_every_algorithm_recovers_separated_blobs(algorithm, metric):
    X, truth = _blobs()
    labels = ClusterModel(4, algorithm, metric, batch_size=32).fit_predict(X)
    assert homogeneity_score(truth, labels) == pytest.approx(1.0)


def test_kmedoids_centres_are_training_points_and_a_large_set_is_sampled():
    X, _ = _blobs(n_per=50)
    model = ClusterModel(4, "kmedoids", medoid_sample=60).fit(X)
    assert all(any(np.array_equal(centre, row) for row in X) for centre in model.centres_)


def test_kmeans_rejects_the_cosine_metric():
    with pytest.raises(ValueError, match="kmeans supports the metric"):
        ClusterModel(4, "kmeans", "cosine")


def test_prediction_in_chunks_equals_prediction_at_once():
    X, _ = _blobs()
    model = ClusterModel(4, chunk_rows=7).fit(X)
    whole = ClusterModel(4, chunk_rows=10_000).fit(X)
    assert np.array_equal(model.predict(X), whole.predict(X))


def test_minibatch_kmeans_reads_a_float32_memmap(tmp_path):
    X, truth = _blobs(n_per=200)
    mapped = np.lib.format.open_memmap(tmp_path / "x.npy", mode="w+", dtype=np.float32, shape=X.shape)
    mapped[:] = X
    mapped.flush()
    readonly = np.load(tmp_path / "x.npy", mmap_mode="r")
    labels = ClusterModel(4, "minibatch-kmeans", batch_size=64, chunk_rows=100).fit_predict(readonly)
    assert homogeneity_score(truth, labels) == pytest.approx(1.0)


def test_a_saved_model_predicts_the_same(tmp_path):
    X, _ = _blobs()
    model = ClusterModel(4, "kmedoids", "cosine").fit(X)
    again = ClusterModel.load(model.save(tmp_path / "clusters.joblib"))
    assert np.array_equal(model.predict(X), again.predict(X))


def test_a_file_that_is_not_a_model_is_refused(tmp_path):
    import joblib

    joblib.dump({"something": 1}, tmp_path / "other.joblib")
    with pytest.raises(ValueError, match="not a ClusterModel file"):
        ClusterModel.load(tmp_path / "other.joblib")


def test_the_elbow_is_at_the_true_number_of_blobs():
    X, _ = _blobs(n_per=40, centres=5, spread=0.2)
    result = elbow(X, ks=(2, 3, 4, 5, 6, 8, 10, 15, 20))
    assert result.k == 5
    assert len(result.inertias) == 9 and result.inertias[0] > result.inertias[-1]


def test_the_elbow_needs_three_feasible_k():
    X, _ = _blobs(n_per=2, centres=2)
    with pytest.raises(ValueError, match="at least three k values"):
        elbow(X, ks=(2, 3, 50, 100))


def test_separated_blobs_cluster_the_same_from_every_seed():
    X, _ = _blobs()
    stability = cluster_stability(X, 4, seeds=(0, 1, 2))
    assert stability.labels.shape == (3, len(X))
    assert stability.mean_adjusted_rand == pytest.approx(1.0)


# --- fusion -----------------------------------------------------------------------------------


def test_embedding_fusion_concatenates_sources_in_order():
    a, b = np.ones((4, 2), np.float32), np.zeros((4, 3), np.float32)
    fused = SourceFusion("embeddings").fit_transform({"a": a, "b": b})
    assert fused.shape == (4, 5) and np.array_equal(fused[:, :2], a)


def test_missing_rows_get_the_training_mean_of_their_source():
    a = np.array([[0.0, 0.0], [2.0, 4.0], [np.nan, np.nan]], np.float32)
    fused = SourceFusion("embeddings").fit_transform({"a": a})
    assert fused[2].tolist() == [1.0, 2.0]


def test_clusterdists_are_normalised_to_unit_range_and_clusterprobs_follow_equation_2_10():
    X, _ = _blobs()
    dists = SourceFusion("clusterdists", {"x": ClusterModel(4)}).fit_transform({"x": X})
    assert dists.shape == (len(X), 4) and dists.min() == pytest.approx(0.0) and dists.max() == pytest.approx(1.0)
    probs = SourceFusion("clusterprobs", {"x": ClusterModel(4)}).fit_transform({"x": X})
    assert np.allclose(probs.sum(axis=1), 1.0)
    expected = np.exp(-dists) / np.exp(-dists).sum(axis=1, keepdims=True)
    assert np.allclose(probs, expected, atol=1e-6)


def test_balance_gives_every_source_the_same_mean_norm():
    rng = np.random.default_rng(0)
    sources = {"big": rng.normal(0, 100, (20, 50)), "small": rng.normal(0, 0.01, (20, 3))}
    fused = SourceFusion("embeddings", balance=True).fit_transform(sources)
    assert np.linalg.norm(fused[:, :50], axis=1).mean() == pytest.approx(1.0, rel=1e-5)
    assert np.linalg.norm(fused[:, 50:], axis=1).mean() == pytest.approx(1.0, rel=1e-5)


def test_a_fusion_applies_to_new_items_as_fitted(tmp_path):
    X, _ = _blobs()
    fusion = SourceFusion("clusterprobs", {"x": ClusterModel(4)}).fit({"x": X[:60]})
    again = SourceFusion.load(fusion.save(tmp_path / "fusion.joblib"))
    assert np.array_equal(fusion.transform({"x": X[60:]}), again.transform({"x": X[60:]}))
    with pytest.raises(ValueError, match="missing: x"):
        again.transform({"y": X})
