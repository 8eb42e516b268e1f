"""The pieces of the pretraining bundles on their own: sampler, probes, batch preparation, backbone export."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch

from radtl.data import PretrainingSampler, class_balanced_weights, modality_filter
from radtl.engines import BackboneExport, KNNAccuracy, PrepareBatch, backbone_state_dict, knn_predict
from radtl.evaluation.probes import probe
from radtl.networks import create


def test_class_balanced_weights_give_every_class_the_same_share():
    weights = class_balanced_weights([0] * 90 + [1] * 10)
    assert np.isclose(weights[:90].sum(), 0.5) and np.isclose(weights[90:].sum(), 0.5)


def test_balanced_sampler_oversamples_the_small_class():
    labels = [0] * 900 + [1] * 100
    drawn = Counter(labels[i] for i in PretrainingSampler(range(1000), labels, balance=True, num_replicas=1, rank=0))
    assert 400 < drawn[1] < 600


def test_unbalanced_sampler_is_a_permutation_that_changes_with_the_epoch():
    sampler = PretrainingSampler(range(50), num_replicas=1, rank=0, seed=3)
    first = list(sampler)
    assert sorted(first) == list(range(50))
    sampler.set_epoch(2)
    assert list(sampler) != first


def test_every_process_draws_from_its_own_shards_and_as_many_indices():
    shards = [range(10), range(10, 20), range(20, 30), range(30, 40)]
    per_rank = [list(PretrainingSampler(range(40), shards=shards, num_replicas=2, rank=r)) for r in range(2)]
    assert set(per_rank[0]) == set(range(10)) | set(range(20, 30))
    assert set(per_rank[1]) == set(range(10, 20)) | set(range(30, 40))
    assert len(per_rank[0]) == len(per_rank[1]) == 20


def test_a_skipped_epoch_continues_with_the_indices_the_killed_one_had_left():
    whole = list(PretrainingSampler(range(30), num_replicas=1, rank=0, seed=5))
    resumed = PretrainingSampler(range(30), num_replicas=1, rank=0, seed=5)
    resumed.skip(12)
    assert list(resumed) == whole[12:]
    assert list(resumed) == whole  # the skip applies to one epoch's iteration only


def test_sampler_state_refuses_another_seed():
    with pytest.raises(ValueError, match="seeded"):
        PretrainingSampler(range(5), num_replicas=1, rank=0, seed=1).load_state_dict({"seed": 2, "epoch": 1, "start": 0})


def test_modality_filter_reads_one_or_several_modalities():
    assert modality_filter("") is None
    assert modality_filter("ct") == {"modality": ["CT"]}
    assert modality_filter("CR, DX") == {"modality": ["CR", "DX"]}


def test_knn_votes_by_cosine_similarity_and_leave_one_out_excludes_the_item_itself():
    bank = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    labels = torch.tensor([0, 0, 1, 1])
    assert knn_predict(bank, labels, torch.tensor([[1.0, 0.05], [0.0, 2.0]]), k=2).tolist() == [0, 1]
    assert knn_predict(bank, labels, bank, k=1, exclude_self=True).tolist() == [0, 0, 1, 1]
    metric = KNNAccuracy(k=1)
    metric.update((bank, labels))
    assert metric.compute() == 1.0


def test_probe_reports_knn_and_logistic_scores():
    rng = np.random.default_rng(0)
    features = torch.tensor(np.concatenate([rng.normal(0, 1, (20, 4)), rng.normal(5, 1, (20, 4))]), dtype=torch.float32)
    labels = torch.tensor([0] * 20 + [1] * 20)
    scores = probe((features[::2], labels[::2]), (features[1::2], labels[1::2]), ks=(1, 5))
    assert set(scores) == {"knn1_accuracy", "knn1_f1", "knn5_accuracy", "knn5_f1", "logistic_accuracy", "logistic_f1"}
    assert scores["knn5_accuracy"] == 1.0 and scores["logistic_f1"] == 1.0


def test_prepare_batch_transforms_on_the_device_and_can_make_the_image_the_target():
    batch = {"image": torch.full((2, 1, 4, 4), 255, dtype=torch.uint8), "label": torch.tensor([0, 1])}
    image, label = PrepareBatch(batch_transform=lambda x: x.float() / 255)(batch)
    assert image.dtype == torch.float32 and image.max() == 1 and label.tolist() == [0, 1]
    image, target = PrepareBatch(label_key="image", batch_transform=lambda x: x.float() / 255)(batch)
    assert target is image


def test_backbone_export_leaves_out_the_head_and_records_how_it_was_made(tmp_path):
    model = create("resnet18", num_classes=9)
    assert not any(key.startswith("fc.") for key in backbone_state_dict(model))
    path = BackboneExport(model, tmp_path / "backbone.pt", "resnet18", "test").export(metrics={"f1": 0.5}, epoch=3)
    saved = torch.load(path, weights_only=True)
    assert saved["architecture"] == "resnet18" and saved["head"] == ["fc."] and saved["epoch"] == 3
    with pytest.raises(ValueError, match="name its head"):
        backbone_state_dict(torch.nn.Linear(2, 2))
