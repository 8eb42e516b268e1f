"""DINO and iBOT pretraining: the heads, the multi-crop model, the losses, the schedules and the trainer."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from ignite.engine import Events
from torch.utils.data import DataLoader

from radtl.engines import (
    DINOTrainer,
    build_teacher,
    cosine_schedule,
    param_groups_for_weight_decay,
    update_teacher,
)
from radtl.engines.dino import random_patch_masks
from radtl.losses import DINOLoss, IBOTPatchLoss
from radtl.networks import DINOHead, DINOModel, create, load_pretrained

PROTOTYPES = 64
SIDE, PATCH = 32, 8
PATCHES = (SIDE // PATCH) ** 2


pytestmark = pytest.mark.usefixtures("one_thread")


def vit_tiny():
    return create("vit_tiny", in_channels=1, num_classes=0, img_size=SIDE, patch_size=PATCH)


def dino_model(ibot: bool = False, shared: bool = True) -> DINOModel:
    torch.manual_seed(0)
    head = DINOHead(192, PROTOTYPES, hidden_dim=32, bottleneck_dim=16)
    patch_head = (head if shared else DINOHead(192, PROTOTYPES, hidden_dim=32, bottleneck_dim=16)) if ibot else None
    return DINOModel(vit_tiny(), head, patch_head)


def two_global_two_local(images: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """A stand-in for DINO's augmentations: the image and its mirror, and two 16 px views."""
    local = [F.interpolate(images, size=16, mode="bilinear"), images[..., 8:24, 8:24]]
    return [images, images.flip(-1)], local


# --- DINOHead ----------------------------------------------------------------------------------


def test_dino_head_maps_features_to_prototype_logits():
    head = DINOHead(192, PROTOTYPES, hidden_dim=32, bottleneck_dim=16)
    assert head(torch.randn(5, 192)).shape == (5, PROTOTYPES)
    assert head(torch.randn(2, 7, 192)).shape == (2, 7, PROTOTYPES)


def test_dino_head_prototypes_have_unit_norm_frozen_under_norm_last_layer():
    head = DINOHead(192, PROTOTYPES, hidden_dim=32, bottleneck_dim=16)
    head.last_layer.weight_v.data.mul_(3.0)
    torch.testing.assert_close(head.last_layer.weight.norm(dim=1), torch.ones(PROTOTYPES))
    assert not head.last_layer.weight_g.requires_grad
    assert DINOHead(192, PROTOTYPES, norm_last_layer=False).last_layer.weight_g.requires_grad


def test_dino_head_logits_are_cosine_similarities_of_the_normalised_bottleneck():
    head = DINOHead(192, PROTOTYPES, hidden_dim=32, bottleneck_dim=16)
    logits = head(100 * torch.randn(9, 192))
    assert logits.abs().max() <= 1.0 + 1e-5


def test_dino_head_keeps_torch_weight_norm_parameter_names():
    names = set(DINOHead(192, PROTOTYPES, layers=1).state_dict())
    assert names == {"mlp.0.weight", "mlp.0.bias", "last_layer.weight_g", "last_layer.weight_v"}


# --- DINOModel ---------------------------------------------------------------------------------


def test_dino_model_runs_the_backbone_once_per_resolution_and_keeps_crop_order():
    model = dino_model().eval()
    calls = []
    model.backbone.patch_embedding.patch_embeddings.register_forward_hook(lambda *_: calls.append(1))
    images = torch.rand(3, 1, SIDE, SIDE)
    global_crops, local_crops = two_global_two_local(images)
    crops = global_crops + local_crops
    with torch.no_grad():
        logits = model(crops).logits
        assert len(calls) == 2
        one_by_one = torch.cat([model.head(model.backbone.forward_features(crop)) for crop in crops])
    assert logits.shape == (4 * 3, PROTOTYPES)
    torch.testing.assert_close(logits, one_by_one, atol=1e-5, rtol=1e-4)


def test_dino_model_gives_patch_logits_for_the_masked_crops_only():
    model = dino_model(ibot=True).eval()
    global_crops, local_crops = two_global_two_local(torch.rand(2, 1, SIDE, SIDE))
    masks = [torch.rand(2, PATCHES) < 0.3, torch.zeros(2, PATCHES, dtype=torch.bool)]
    with torch.no_grad():
        output = model(global_crops + local_crops, [*masks, None, None])
        assert model(global_crops).patch_logits is None
    assert output.logits.shape == (8, PROTOTYPES)
    assert output.patch_logits.shape == (4, PATCHES, PROTOTYPES)


def test_patch_logits_come_from_the_masked_tokens():
    model = dino_model(ibot=True).eval()
    model.mask_token.data.normal_()
    images = torch.rand(2, 1, SIDE, SIDE)
    mask = torch.zeros(2, PATCHES, dtype=torch.bool)
    mask[:, 3] = True
    with torch.no_grad():
        masked = model([images], [mask]).patch_logits
        expected = model.head(model.backbone.forward_tokens(images, mask, model.mask_token)[:, 1:])
    torch.testing.assert_close(masked, expected)


def test_a_shared_patch_head_is_the_class_head_stored_once_with_a_zero_mask_token():
    model = dino_model(ibot=True, shared=True)
    keys = set(model.state_dict())
    assert not any(key.startswith("patch_head.") for key in keys)
    assert "mask_token" in keys and torch.equal(model.mask_token, torch.zeros(1, 1, 192))
    assert any(key.startswith("patch_head.") for key in dino_model(ibot=True, shared=False).state_dict())


def test_a_dino_model_without_patch_head_has_no_mask_token_and_refuses_masks():
    model = dino_model(ibot=False)
    assert "mask_token" not in model.state_dict()
    with pytest.raises(ValueError, match="patch head"):
        model([torch.rand(1, 1, SIDE, SIDE)], [torch.zeros(1, PATCHES, dtype=torch.bool)])


# --- DINOLoss ----------------------------------------------------------------------------------


def reference_dino_loss(student, teacher, crops, global_crops, center, student_temp, teacher_temp):
    """Caron et al. 2021, Algorithm 1, written as a plain loop."""
    student_views, teacher_views = student.chunk(crops), teacher.chunk(global_crops)
    terms = []
    for t, teacher_view in enumerate(teacher_views):
        target = F.softmax((teacher_view - center) / teacher_temp, dim=-1)
        for s, student_view in enumerate(student_views):
            if s != t:
                terms.append(-(target * F.log_softmax(student_view / student_temp, dim=-1)).sum(-1).mean())
    return torch.stack(terms).mean()


def test_dino_loss_is_the_mean_cross_entropy_over_cross_view_pairs():
    torch.manual_seed(0)
    loss = DINOLoss(PROTOTYPES, warmup_teacher_temp_epochs=0)
    loss.center.normal_()
    center = loss.center.clone()
    student, teacher = torch.randn(4 * 3, PROTOTYPES), torch.randn(2 * 3, PROTOTYPES)
    expected = reference_dino_loss(student, teacher, 4, 2, center, 0.1, 0.07)
    torch.testing.assert_close(loss(student, teacher), expected)


def test_dino_loss_never_compares_a_view_with_itself():
    # Each student view predicts the OTHER view's teacher class: cross-view terms vanish, same-view ones would not.
    teacher = torch.zeros(2, PROTOTYPES)
    teacher[0, 0] = teacher[1, 1] = 10.0
    student = torch.zeros(2, PROTOTYPES)
    student[0, 1] = student[1, 0] = 10.0
    assert DINOLoss(PROTOTYPES, warmup_teacher_temp_epochs=0)(student, teacher).item() < 1e-6


def test_dino_center_moves_toward_the_teacher_mean_by_the_momentum():
    loss = DINOLoss(PROTOTYPES, center_momentum=0.9)
    first, second = torch.randn(6, PROTOTYPES), torch.randn(6, PROTOTYPES)
    loss(torch.randn(12, PROTOTYPES), first)
    torch.testing.assert_close(loss.center, 0.1 * first.mean(0, keepdim=True))
    loss(torch.randn(12, PROTOTYPES), second)
    torch.testing.assert_close(
        loss.center, 0.9 * 0.1 * first.mean(0, keepdim=True) + 0.1 * second.mean(0, keepdim=True)
    )


def test_dino_center_is_saved_with_the_loss_state():
    loss = DINOLoss(PROTOTYPES)
    loss(torch.randn(12, PROTOTYPES), torch.randn(6, PROTOTYPES))
    restored = DINOLoss(PROTOTYPES)
    restored.load_state_dict(loss.state_dict())
    torch.testing.assert_close(restored.center, loss.center)


def test_teacher_temperature_warms_up_linearly_then_stays():
    loss = DINOLoss(PROTOTYPES, teacher_temp=0.07, warmup_teacher_temp=0.04, warmup_teacher_temp_epochs=31)
    assert loss.teacher_temperature(0) == pytest.approx(0.04)
    assert loss.teacher_temperature(15) == pytest.approx(0.055)
    assert loss.teacher_temperature(30) == pytest.approx(0.07)
    assert loss.teacher_temperature(100) == pytest.approx(0.07)
    assert DINOLoss(PROTOTYPES, teacher_temp=lambda epoch: 0.01 * epoch).teacher_temperature(3) == pytest.approx(0.03)


def test_dino_loss_refuses_a_single_view():
    with pytest.raises(ValueError, match="at least two crops"):
        DINOLoss(PROTOTYPES, global_crops=1)(torch.randn(3, PROTOTYPES), torch.randn(3, PROTOTYPES))


# --- IBOTPatchLoss -----------------------------------------------------------------------------


def test_ibot_loss_ignores_unmasked_patches():
    torch.manual_seed(0)
    student, teacher = torch.randn(4, PATCHES, PROTOTYPES), torch.randn(4, PATCHES, PROTOTYPES)
    masks = torch.rand(4, PATCHES) < 0.4
    changed = student.clone()
    changed[~masks] = torch.randn(int((~masks).sum()), PROTOTYPES)
    before = IBOTPatchLoss(PROTOTYPES)(student, teacher, masks)
    after = IBOTPatchLoss(PROTOTYPES)(changed, teacher, masks)
    torch.testing.assert_close(before, after)
    changed[masks] = torch.randn(int(masks.sum()), PROTOTYPES)
    assert not torch.allclose(IBOTPatchLoss(PROTOTYPES)(changed, teacher, masks), before)


def test_ibot_loss_averages_over_each_images_masked_patches_then_over_images():
    torch.manual_seed(0)
    student, teacher = torch.randn(3, PATCHES, PROTOTYPES), torch.randn(3, PATCHES, PROTOTYPES)
    masks = torch.zeros(3, PATCHES, dtype=torch.bool)
    masks[0, :1] = True
    masks[1, :5] = True  # image 2 is not masked and counts as 0
    per_patch = -(F.softmax(teacher / 0.07, -1) * F.log_softmax(student / 0.1, -1)).sum(-1)
    expected = (per_patch[0, :1].mean() + per_patch[1, :5].mean() + 0.0) / 3
    loss = IBOTPatchLoss(PROTOTYPES, teacher_temp=0.07, warmup_teacher_temp_epochs=0)
    torch.testing.assert_close(loss(student, teacher, masks), expected)


def test_ibot_center_moves_toward_the_mean_teacher_patch():
    loss = IBOTPatchLoss(PROTOTYPES, center_momentum=0.9)
    teacher = torch.randn(4, PATCHES, PROTOTYPES)
    loss(torch.randn(4, PATCHES, PROTOTYPES), teacher, torch.ones(4, PATCHES, dtype=torch.bool))
    torch.testing.assert_close(loss.center, 0.1 * teacher.mean(dim=(0, 1)).reshape(1, 1, PROTOTYPES))


# --- Teacher, schedules, parameter groups, masks -----------------------------------------------


@pytest.mark.parametrize("momentum", [1.0, 0.0, 0.75])
def test_update_teacher_is_the_exponential_moving_average(momentum):
    student, teacher = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    before = teacher.weight.detach().clone()
    update_teacher(student, teacher, momentum)
    expected = momentum * before + (1 - momentum) * student.weight.detach()
    if momentum in (0.0, 1.0):
        assert torch.equal(teacher.weight, expected)
    torch.testing.assert_close(teacher.weight, expected)


def test_build_teacher_is_a_frozen_copy_in_eval_mode():
    student = dino_model()
    teacher = build_teacher(student)
    assert not teacher.training and not any(p.requires_grad for p in teacher.parameters())
    for (name, theirs), ours in zip(student.state_dict().items(), teacher.state_dict().values()):
        assert torch.equal(theirs, ours), name
    assert teacher.backbone is not student.backbone


def test_cosine_schedule_warms_up_linearly_then_decays_to_its_final_value():
    schedule = cosine_schedule(1.0, 0.1, iterations=12, warmup_iterations=3, warmup_start=0.0)
    assert [schedule(i) for i in range(3)] == pytest.approx([0.0, 0.5, 1.0])
    assert schedule(3) == pytest.approx(1.0)
    assert schedule(3 + 9 // 2) == pytest.approx(0.1 + 0.45 * (1 + math.cos(math.pi * 4 / 9)))
    decay = [schedule(i) for i in range(3, 13)]
    assert decay == sorted(decay, reverse=True)
    assert schedule(12) == pytest.approx(0.1) and schedule(1000) == pytest.approx(0.1)


def test_cosine_schedule_refuses_a_warm_up_as_long_as_the_schedule():
    with pytest.raises(ValueError, match="warmup_iterations < iterations"):
        cosine_schedule(1.0, 0.0, iterations=5, warmup_iterations=5)


def test_no_weight_decay_on_biases_norms_and_tokens():
    model = dino_model(ibot=True)
    decayed, not_decayed = param_groups_for_weight_decay(model)
    names = {id(p): name for name, p in model.named_parameters()}
    exempt = {names[id(p)] for p in not_decayed["params"]}
    assert not_decayed["weight_decay"] == 0.0 and "weight_decay" not in decayed
    assert {"mask_token", "backbone.cls_token", "backbone.patch_embedding.position_embeddings"} <= exempt
    assert {"backbone.norm.weight", "backbone.norm.bias", "head.mlp.0.bias"} <= exempt
    assert {names[id(p)] for p in decayed["params"]} >= {"backbone.blocks.0.mlp.linear1.weight", "head.mlp.0.weight"}
    assert "head.last_layer.weight_g" not in exempt | {names[id(p)] for p in decayed["params"]}  # frozen


def test_random_patch_masks_mask_a_share_of_images_within_the_ratio_range():
    torch.manual_seed(0)
    masks = random_patch_masks(8, 100, ratio=(0.1, 0.5), probability=0.5)
    counts = masks.sum(dim=1)
    assert masks.shape == (8, 100) and masks.dtype == torch.bool
    assert int((counts > 0).sum()) == 4
    assert all(10 <= c <= 50 for c in counts[counts > 0].tolist())


# --- DINOTrainer -------------------------------------------------------------------------------

EPOCHS, ITERATIONS, BATCH = 2, 3, 4
STEPS = EPOCHS * ITERATIONS
LR = cosine_schedule(1e-3, 1e-5, STEPS, warmup_iterations=2, warmup_start=1e-4)


def snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {key: value.detach().clone() for key, value in module.state_dict().items()}


def make_trainer(ibot: bool, **kwargs) -> DINOTrainer:
    student = dino_model(ibot=ibot)
    teacher = build_teacher(student)
    optimizer = torch.optim.AdamW(param_groups_for_weight_decay(student), lr=1e-3, weight_decay=0.04)
    images = torch.randint(0, 256, (ITERATIONS * BATCH, 1, SIDE, SIDE), dtype=torch.uint8)
    loader = DataLoader([{"image": image} for image in images], batch_size=BATCH)
    return DINOTrainer(
        "cpu",
        EPOCHS,
        loader,
        student,
        teacher,
        optimizer,
        DINOLoss(PROTOTYPES, warmup_teacher_temp_epochs=2),
        two_global_two_local,
        ibot_loss=IBOTPatchLoss(PROTOTYPES) if ibot else None,
        lr_schedule=LR,
        wd_schedule=cosine_schedule(0.04, 0.4, STEPS),
        momentum_schedule=cosine_schedule(0.9, 1.0, STEPS),
        **kwargs,
    )


@pytest.fixture(scope="module", params=[False, True], ids=["dino", "dino+ibot"])
def trained(request, one_thread):
    """A 2-epoch x 3-iteration run, with what each test checks recorded along the way."""
    torch.manual_seed(0)
    trainer = make_trainer(ibot=request.param)
    record = {
        "student_start": snapshot(trainer.student),
        "teacher_start": snapshot(trainer.teacher),
        "outputs": [],
        "group_lrs": [],
        "last_layer": [],
    }

    @trainer.on(Events.ITERATION_COMPLETED)
    def keep_output(engine):
        record["outputs"].append(dict(engine.state.output))
        record["group_lrs"].append([group["lr"] for group in engine.optimizer.param_groups])

    @trainer.on(Events.EPOCH_COMPLETED)
    def keep_last_layer(engine):
        record["last_layer"].append(snapshot(engine.student.head.last_layer))

    trainer.run()
    return trainer, record


def test_training_gives_finite_losses(trained):
    trainer, record = trained
    keys = {"loss", "dino_loss", "lr", "weight_decay", "momentum"} | ({"ibot_loss"} if trainer.ibot_loss else set())
    assert len(record["outputs"]) == STEPS
    for output in record["outputs"]:
        assert set(output) == keys
        assert math.isfinite(output["loss"].item())
    if trainer.ibot_loss is not None:
        last = record["outputs"][-1]
        torch.testing.assert_close(last["loss"], last["dino_loss"] + last["ibot_loss"])


def test_the_teacher_moves_but_stays_apart_from_the_student(trained):
    trainer, record = trained
    teacher, student = trainer.teacher.state_dict(), trainer.student.state_dict()
    key = "backbone.blocks.0.attn.qkv.weight"
    assert not torch.equal(teacher[key], record["teacher_start"][key])
    assert not torch.equal(teacher[key], student[key])


def test_the_learning_rate_follows_the_schedule_on_every_group(trained):
    _, record = trained
    assert [output["lr"] for output in record["outputs"]] == pytest.approx([LR(i) for i in range(STEPS)])
    for step, lrs in enumerate(record["group_lrs"]):
        assert lrs == pytest.approx([LR(step)] * len(lrs))


def test_weight_decay_is_scheduled_only_on_the_decayed_group(trained):
    trainer, record = trained
    assert [group["weight_decay"] for group in trainer.optimizer.param_groups] == [
        pytest.approx(record["outputs"][-1]["weight_decay"]),
        0.0,
    ]


def test_the_prototypes_stay_fixed_during_the_first_epoch(trained):
    _, record = trained
    start = record["student_start"]["head.last_layer.weight_v"]
    after_first, after_second = (state["weight_v"] for state in record["last_layer"])
    assert torch.equal(after_first, start)
    assert not torch.equal(after_second, start)


def test_the_teacher_backbone_loads_into_a_classifier(trained):
    trainer, _ = trained
    classifier = create("vit_tiny", in_channels=1, num_classes=2, img_size=SIDE, patch_size=PATCH)
    report = load_pretrained(classifier, trainer.teacher.backbone.state_dict())
    assert sorted(report.missing) == ["classification_head.bias", "classification_head.weight"]
    assert not report.unexpected and not report.mismatched
    assert len(report.loaded) == len(trainer.teacher.backbone.state_dict())


def test_ibot_needs_networks_with_a_patch_head():
    student = dino_model(ibot=False)
    with pytest.raises(ValueError, match="patch head"):
        DINOTrainer(
            "cpu", 1, [], student, build_teacher(student), torch.optim.SGD(student.parameters(), lr=0.1),
            DINOLoss(PROTOTYPES), two_global_two_local, ibot_loss=IBOTPatchLoss(PROTOTYPES),
        )  # fmt: skip


def test_crops_that_do_not_match_the_loss_are_refused():
    trainer = make_trainer(ibot=False)
    trainer.crops = lambda images: ([images], [images[..., :16, :16]])
    with pytest.raises(ValueError, match="1 global crops"):
        trainer.run()
