"""radtl.evaluation: frozen-backbone regimes (probes, head-only, LoRA, scales) and ROI-box robustness."""

from __future__ import annotations

import math
import sys

import pandas as pd
import pytest
import torch
from torch import nn

from radtl.evaluation import (
    REFERENCE,
    BoxPerturbation,
    box_perturbations,
    compare_stability,
    crop_roi,
    frozen_evaluation,
    head_only,
    lora_finetune,
    lora_model,
    lora_target_modules,
    multiscale_probe,
    perturb_box,
    roi_robustness,
    stability_summary,
)
from radtl.evaluation import frozen as frozen_module
from radtl.evaluation.probes import extract_features
from radtl.networks import create

pytestmark = pytest.mark.usefixtures("one_thread")


def half_bright(n: int, side: int = 32, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``(n, 1, side, side)`` noisy images, class 0 bright on the left half, class 1 on the right half."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 2
    images = torch.rand(n, 1, side, side, generator=generator) * 0.2
    for image, label in zip(images, labels, strict=True):
        image[..., side // 2 :] += float(label)
        image[..., : side // 2] += 1.0 - float(label)
    return images, labels


def loader(images: torch.Tensor, labels: torch.Tensor, batch_size: int = 8) -> list[dict[str, torch.Tensor]]:
    return [
        {"image": images[start : start + batch_size], "label": labels[start : start + batch_size]}
        for start in range(0, len(images), batch_size)
    ]


def prepare(batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
    return batch["image"], batch["label"]


def resnet(num_classes: int) -> nn.Module:
    torch.manual_seed(0)
    return create("resnet18", in_channels=1, num_classes=num_classes)


def tiny_vit(num_classes: int) -> nn.Module:
    torch.manual_seed(0)
    return create("vit_tiny", in_channels=1, num_classes=num_classes, img_size=32, patch_size=8)


# --- head-only ---------------------------------------------------------------------------------------------------


def clustered_features(n: int, width: int = 512, classes: int = 3, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    centres = torch.randn(classes, width, generator=torch.Generator().manual_seed(99)) * 2
    labels = torch.arange(n) % classes
    return centres[labels] + torch.randn(n, width, generator=generator), labels


def test_head_only_separates_separable_features():
    scores = head_only(resnet(0), clustered_features(60), clustered_features(30, seed=1), epochs=30)
    assert scores == {"head_accuracy": 1.0, "head_f1": 1.0}


def test_head_only_is_reproducible_and_leaves_the_global_generator_alone():
    train, test = clustered_features(30), clustered_features(30, seed=1)
    state = torch.get_rng_state()
    first = head_only(None, train, test, epochs=2, lr=1e-4)
    assert torch.equal(torch.get_rng_state(), state)
    assert head_only(None, train, test, epochs=2, lr=1e-4) == first


def test_head_only_refuses_features_of_another_width_than_the_backbone():
    with pytest.raises(ValueError, match="512"):
        head_only(resnet(0), clustered_features(6, width=16), clustered_features(6, width=16))


# --- LoRA --------------------------------------------------------------------------------------------------------


def test_lora_targets_every_linear_and_convolution_outside_the_head():
    vit_targets = lora_target_modules(tiny_vit(2))
    assert "patch_embedding.patch_embeddings" in vit_targets and "blocks.0.attn.qkv" in vit_targets
    assert not any(name.startswith("classification_head") for name in vit_targets)
    resnet_targets = lora_target_modules(resnet(2))
    assert "conv1" in resnet_targets and "layer4.1.conv2" in resnet_targets and "fc" not in resnet_targets


def test_lora_model_trains_only_adapters_and_head_of_a_copy():
    network = resnet(2)
    model = lora_model(network, rank=4, alpha=8)
    trainable = {name for name, parameter in model.named_parameters() if parameter.requires_grad}
    assert trainable and all("lora_" in name or "modules_to_save" in name for name in trainable)
    assert any(".fc.modules_to_save." in name for name in trainable)
    assert not any(
        type(module).__name__.startswith("Lora") or "lora" in name for name, module in network.named_modules()
    )


def test_lora_finetune_changes_adapters_and_head_not_base_weights_nor_the_callers_network(monkeypatch):
    built = []
    build = frozen_module.lora_model
    monkeypatch.setattr(
        frozen_module, "lora_model", lambda *args, **kwargs: built.append(build(*args, **kwargs)) or built[-1]
    )
    network = resnet(2)
    before = {name: value.clone() for name, value in network.state_dict().items()}
    images, labels = half_bright(16)
    base = {name: value.clone() for name, value in build(network).named_parameters() if not value.requires_grad}

    test = loader(*half_bright(8, seed=1))
    logits, truth = extract_features(network, test, lambda batch: batch["image"])
    untrained = float((logits.argmax(dim=1) == truth).float().mean())

    scores = lora_finetune(network, loader(images, labels), test, prepare, epochs=2, lr=1e-3, seed=0)

    assert set(scores) == {"lora_accuracy", "lora_f1", "lora_trainable_parameters", "lora_total_parameters"}
    assert 0 < scores["lora_trainable_parameters"] < scores["lora_total_parameters"]
    assert scores["lora_accuracy"] > untrained
    trained = dict(built[0].named_parameters())
    assert all(torch.equal(trained[name], value) for name, value in base.items())
    assert any(not torch.equal(value, torch.zeros_like(value)) for name, value in trained.items() if "lora_B" in name)
    assert not torch.equal(trained["base_model.model.fc.modules_to_save.default.weight"], before["fc.weight"])
    after = network.state_dict()
    assert after.keys() == before.keys() and all(torch.equal(after[name], value) for name, value in before.items())
    network(images[:2])  # the caller's network still runs as it did


def test_lora_needs_a_classifier():
    with pytest.raises(ValueError, match="num_classes"):
        lora_model(resnet(0))


def test_lora_without_peft_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "peft", None)
    with pytest.raises(ImportError, match="pip install peft"):
        lora_model(resnet(2))


# --- scales and the whole frozen evaluation ----------------------------------------------------------------------


def test_multiscale_probe_scores_each_size():
    images, labels = half_bright(24, side=64)
    test_images, test_labels = half_bright(12, side=64, seed=1)
    scores = multiscale_probe(resnet(0), images, labels, test_images, test_labels, sizes=(64, 32), batch_size=16)
    assert list(scores) == [64, 32]
    assert all(set(size_scores) == {"logistic_accuracy", "logistic_f1"} for size_scores in scores.values())
    assert scores[64]["logistic_accuracy"] == 1.0


def test_multiscale_probe_runs_a_vit_at_any_multiple_of_its_patch_size():
    images, labels = half_bright(12)
    scores = multiscale_probe(tiny_vit(0), images, labels, images, labels, sizes=(32, 16, 48))
    assert list(scores) == [32, 16, 48]


def test_multiscale_probe_refuses_a_vit_size_that_is_not_a_multiple_of_the_patch():
    images, labels = half_bright(4)
    with pytest.raises(ValueError, match="patch size 8"):
        multiscale_probe(tiny_vit(0), images, labels, images, labels, sizes=(32, 20))


def test_frozen_evaluation_returns_every_regime_in_one_flat_dict():
    train, test = loader(*half_bright(32)), loader(*half_bright(16, seed=1))
    scores = frozen_evaluation(resnet(0), train, test, prepare, ks=(1, 5), head_epochs=5, scales=(32, 16))
    assert set(scores) == {
        f"{regime}_{metric}"
        for regime in ("knn1", "knn5", "logistic", "head", "scale32_logistic", "scale16_logistic")
        for metric in ("accuracy", "f1")
    }
    assert scores["knn1_accuracy"] == scores["logistic_accuracy"] == 1.0
    # the input side is 32: the 32 px probe sees the same features as the plain one
    assert scores["scale32_logistic_accuracy"] == scores["logistic_accuracy"]


# --- box perturbations -------------------------------------------------------------------------------------------


def test_box_perturbations_shift_four_ways_and_scale():
    perturbations = box_perturbations(shifts=(0.1, 0.2), scales=(0.8, 1.2))
    assert [p.name for p in perturbations] == [
        "shift+x10%",
        "shift-x10%",
        "shift+y10%",
        "shift-y10%",
        "shift+x20%",
        "shift-x20%",
        "shift+y20%",
        "shift-y20%",
        "scale80%",
        "scale120%",
    ]
    assert perturbations[3] == BoxPerturbation("shift-y10%", shift_y=-0.1)


def test_shift_moves_the_box_by_a_fraction_of_its_size():
    moved = perturb_box((10, 20, 30, 60), BoxPerturbation("s", shift_x=0.1, shift_y=-0.2))
    assert moved == pytest.approx((12, 12, 32, 52))


def test_scale_keeps_the_centre():
    x0, y0, x1, y1 = perturb_box((10, 20, 30, 60), BoxPerturbation("s", scale=1.2))
    assert ((x0 + x1) / 2, (y0 + y1) / 2) == pytest.approx((20, 40))
    assert (x1 - x0, y1 - y0) == pytest.approx((24, 48))


def test_invalid_boxes_and_perturbations_are_refused():
    with pytest.raises(ValueError, match="x1 > x0"):
        perturb_box((10, 0, 10, 5), REFERENCE)
    with pytest.raises(ValueError, match="scale"):
        BoxPerturbation("bad", scale=0)


def test_crop_of_the_whole_image_at_its_own_size_is_the_image():
    image = torch.rand(2, 16, 16)
    assert torch.allclose(crop_roi(image, (0, 0, 16, 16), 16), image, atol=1e-5)


def test_crop_outside_the_image_is_zero_padded():
    crop = crop_roi(torch.ones(1, 8, 8), (-8, 0, 8, 8), 16, keep_aspect_ratio=False)
    assert crop.shape == (1, 16, 16)
    assert torch.allclose(crop[..., :8], torch.zeros(1, 16, 8), atol=1e-5)
    assert torch.allclose(crop[..., 8:], torch.ones(1, 16, 8), atol=1e-5)


def test_crop_keeps_the_aspect_ratio_by_letterboxing():
    crop = crop_roi(torch.ones(1, 8, 8), (0, 2, 8, 6), 16, fill=-1.0)
    assert torch.allclose(crop[:, 4:12], torch.ones(1, 8, 16), atol=1e-5)
    assert torch.all(crop[:, :4] == -1) and torch.all(crop[:, 12:] == -1)


# --- ROI robustness ----------------------------------------------------------------------------------------------


class Constant(nn.Module):
    """Ignores its input: the same logits for every image."""

    def __init__(self, logits: list[float]):
        super().__init__()
        self.logits = nn.Parameter(torch.tensor(logits))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits.expand(len(x), -1)


class LeftRight(nn.Module):
    """Translation-sensitive: class 0 if the left half is brighter, class 1 if the right half is."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        half = x.shape[-1] // 2
        return 10 * torch.stack([x[..., :half].mean(dim=(1, 2, 3)), x[..., half:].mean(dim=(1, 2, 3))], dim=1)


def square_cases(n: int = 8) -> list[dict]:
    """Images with a bright square right of their box's centre, so that the reference predicts class 1."""
    cases = []
    for index in range(n):
        image = torch.zeros(1, 64, 64)
        left = 34 + index % 2
        image[:, 24:40, left : left + 6] = 1.0
        cases.append({"image": image, "box": (16, 16, 48, 48), "label": 1, "id": f"case{index}"})
    return cases


def test_reference_rows_are_unchanged_with_zero_delta():
    frame = roi_robustness(LeftRight(), square_cases(3), box_perturbations(), size=32)
    reference = frame[frame["perturbation"] == "none"]
    assert len(reference) == 3 and len(frame) == 3 * 11
    assert not reference["changed"].any() and (reference["delta"] == 0).all()
    assert (reference["predicted"] == 1).all() and reference["correct"].all()


def test_a_network_that_ignores_its_input_is_perfectly_stable():
    frame = roi_robustness(Constant([0.2, 1.0, -0.5]), square_cases(4), box_perturbations(), size=32, batch_size=5)
    summary = stability_summary(frame)
    assert summary.loc["overall", "flip_rate"] == 0 and summary.loc["overall", "mean_delta"] == 0
    assert summary.loc["overall", "cases"] == 4 and summary.loc["none", "accuracy"] == 1.0
    assert list(summary.index) == ["none", *[p.name for p in box_perturbations()], "overall"]


def test_a_translation_sensitive_network_is_not_stable():
    frame = roi_robustness(LeftRight(), square_cases(4), box_perturbations(), size=32)
    summary = stability_summary(frame)
    assert summary.loc["shift+x20%", "flip_rate"] == 1.0 and summary.loc["shift+x20%", "accuracy"] == 0.0
    assert summary.loc["shift-x20%", "flip_rate"] == 0.0
    assert summary.loc["overall", "mean_delta"] > 0


def test_a_single_logit_gives_the_sigmoid_probability_of_the_predicted_class():
    frame = roi_robustness(Constant([-1.0]), [{"image": torch.zeros(1, 8, 8)}], [], size=8)
    assert frame["predicted"].tolist() == [0] and frame["id"].tolist() == [0]
    assert frame["probability"].iloc[0] == pytest.approx(1 - 1 / (1 + math.exp(1.0)))
    assert frame["correct"].isna().all()


def test_duplicate_or_reserved_perturbation_names_are_refused():
    with pytest.raises(ValueError, match="unique"):
        roi_robustness(LeftRight(), square_cases(1), [BoxPerturbation("none", shift_x=0.1)], size=32)


def test_compare_stability_of_identical_models_has_no_p_value_and_says_why():
    frame = roi_robustness(LeftRight(), square_cases(4), box_perturbations(), size=32)
    result = compare_stability(frame, frame.copy(), names=("radimagenet", "imagenet"))
    assert result["p_value"] is None and result["statistic"] is None and "zero" in result["reason"]
    assert result["n_cases"] == 4 and result["mean_delta_radimagenet"] == result["mean_delta_imagenet"]


def test_compare_stability_finds_the_stable_model():
    cases, perturbations = square_cases(8), box_perturbations()
    stable = roi_robustness(Constant([0.0, 1.0]), cases, perturbations, size=32)
    unstable = roi_robustness(LeftRight(), cases, perturbations, size=32)
    result = compare_stability(stable, unstable, names=("stable", "unstable"))
    assert result["mean_delta_stable"] == 0 < result["mean_delta_unstable"]
    assert result["reason"] is None and result["p_value"] < 0.01


def test_compare_stability_needs_the_same_cases():
    frame = roi_robustness(LeftRight(), square_cases(3), box_perturbations(), size=32)
    with pytest.raises(ValueError, match="same cases"):
        compare_stability(frame, frame[frame["id"] != "case0"])


def test_roi_robustness_of_no_cases_is_an_empty_frame():
    frame = roi_robustness(LeftRight(), [], box_perturbations(), size=32)
    assert isinstance(frame, pd.DataFrame) and frame.empty and "delta" in frame.columns
