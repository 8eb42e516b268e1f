"""radtl.networks: every architecture of the study, built without torchvision, loading every checkpoint kind."""

import json
import tarfile

import pytest
import torch

from radtl.cli import main
from radtl.networks import (
    PYRAMID_STRIDES,
    BoneAgeRegressor,
    CheckpointError,
    EfficientNet,
    EncoderUNet,
    InceptionV3,
    adapt_input_channels,
    available,
    create,
    load_pretrained,
    to_torchvision_layout,
)
from tests.support.torchvision_reference import ARCHITECTURES, load_reference, seeded_input, seeded_state_dict

# shared/science/radiologynet.md, "Architectures (Table 3.1) and torchvision parameter counts":
# parameters plus batch-norm running statistics, as torchvision's state dicts hold them.
STUDY_STATE_SIZES = {
    "resnet18": 11_699_112,
    "resnet34": 21_814_696,
    "resnet50": 25_610_152,
    "densenet121": 8_062_504,
    "efficientnet_b3": 12_320_528,
    "efficientnet_b4": 19_466_816,
    "inception_v3": 27_197_488,
    "mobilenet_v3_small": 2_554_968,
    "mobilenet_v3_large": 5_507_432,
    "vgg16": 138_357_544,
}
# The study's input sides (InceptionV3 at 299 and EfficientNetB3 at 300 for bone age; 224 elsewhere).
STUDY_INPUT_SIZE = {"inception_v3": 299, "efficientnet_b3": 300}


@pytest.fixture(scope="module")
def reference():
    return load_reference()["models"]


def state_size(model: torch.nn.Module) -> int:
    return sum(t.numel() for k, t in model.state_dict().items() if not k.endswith("num_batches_tracked"))


def assert_same_tensors(model_a: torch.nn.Module, model_b: torch.nn.Module, prefix_b: str = "") -> None:
    state_b = model_b.state_dict()
    for key, tensor in model_a.state_dict().items():
        assert torch.equal(tensor, state_b[prefix_b + key]), key


def save_radiologynet_release(model, directory, name: str, prefix: str = "model."):
    """A checkpoint as RadiologyNET released them: ``<Name>.tar.gz`` holding ``<Name>.pth``."""
    pth = directory / f"{name}.pth"
    weights = {prefix + key: tensor for key, tensor in to_torchvision_layout(model).items()}
    torch.save({"model_state": weights, "epoch": 41}, pth)
    archive = directory / f"{name}.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(pth, arcname=pth.name)
    return archive


# --- Layout: the same tensors torchvision has, named as torchvision names them --------------------


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_state_dict_has_torchvision_keys_shapes_and_study_size(name, reference):
    model = create(name)
    layout = {key: list(tensor.shape) for key, tensor in to_torchvision_layout(model).items()}
    assert layout == reference[name]["layout"]
    assert state_size(model) == STUDY_STATE_SIZES[name]


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_torchvision_weights_give_torchvision_outputs(name, reference):
    model = create(name, num_classes=10).double().eval()
    layout = {key: list(tensor.shape) for key, tensor in to_torchvision_layout(model).items()}
    load_pretrained(model, seeded_state_dict(layout), source="torchvision", strict=True)
    with torch.no_grad():
        logits = model(seeded_input(name))
    torch.testing.assert_close(logits, torch.tensor(reference[name]["logits"], dtype=torch.float64))


def test_efficientnet_tensorflow_convention_computes_something_else(reference):
    model = EfficientNet("efficientnet_b3", num_classes=10, convention="tensorflow").double().eval()
    layout = {key: list(tensor.shape) for key, tensor in to_torchvision_layout(model).items()}
    load_pretrained(model, seeded_state_dict(layout), source="torchvision", strict=True)
    with torch.no_grad():
        logits = model(seeded_input("efficientnet_b3"))
    assert not torch.allclose(logits, torch.tensor(reference["efficientnet_b3"]["logits"], dtype=torch.float64))


# --- Forward passes at the study's sizes, grey-scale input, the pyramid ---------------------------


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_forward_at_study_input_size(name):
    size = STUDY_INPUT_SIZE.get(name, 224)
    model = create(name, num_classes=4).eval()
    with torch.no_grad():
        assert model(torch.rand(1, 3, size, size)).shape == (1, 4)


# InceptionV3's unpadded convolutions make its maps smaller than size / stride.
INCEPTION_PYRAMID_AT_299 = [147, 71, 35, 17, 8]


@pytest.mark.parametrize("name", [*ARCHITECTURES, "vit_small"])
def test_feature_pyramid_has_five_maps_at_strides_2_to_32(name):
    size = 299 if name == "inception_v3" else 128
    kwargs = {"img_size": size} if name.startswith("vit") else {}
    model = create(name, in_channels=1, num_classes=0, **kwargs).eval()
    image = torch.rand(2, 1, size, size)
    with torch.no_grad():
        maps = model.feature_maps(image)
        pooled = model.forward_features(image)
    assert [m.shape[1] for m in maps] == list(model.feature_channels)
    expected = INCEPTION_PYRAMID_AT_299 if name == "inception_v3" else [size // s for s in PYRAMID_STRIDES]
    assert [tuple(m.shape[-2:]) for m in maps] == [(side, side) for side in expected]
    assert pooled.shape == (2, model.num_features)


def test_last_pyramid_map_is_what_the_classifier_pools():
    model = create("densenet121", num_classes=3).eval()
    image = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        pooled = model.feature_maps(image)[-1].mean(dim=(2, 3))
        torch.testing.assert_close(model(image), model.class_layers.out(pooled))


def test_binary_head_is_a_single_logit():
    assert create("mobilenet_v3_large", num_classes=1).eval()(torch.rand(2, 3, 64, 64)).shape == (2, 1)


def test_inception_auxiliary_logits_follow_the_classifier():
    model = InceptionV3(num_classes=36)
    model.reset_classifier(4)
    logits, aux = model.train().forward_with_aux(torch.rand(2, 3, 299, 299))
    assert logits.shape == aux.shape == (2, 4)
    model.reset_classifier(0)
    assert model.AuxLogits is None


def test_registry_lists_every_study_architecture_and_refuses_unknown_names():
    assert set(ARCHITECTURES) <= set(available())
    assert {"unet", "unet_resnet50", "unet_efficientnet_b4", "unet_vgg16", "bone_age_regressor", "vit_small"} <= set(
        available()
    )
    with pytest.raises(ValueError, match="unknown network 'resnet101'.*resnet50"):
        create("resnet101")


def test_two_dimensional_architectures_refuse_three_dimensions():
    with pytest.raises(ValueError, match="VGG16 is a 2-D architecture"):
        create("vgg16", spatial_dims=3)
    volume_model = create("resnet18", spatial_dims=3, num_classes=2).eval()
    assert volume_model(torch.rand(1, 3, 32, 32, 32)).shape == (1, 2)


# --- Loading the three checkpoint kinds ---------------------------------------------------------


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_torchvision_checkpoint_round_trips_with_nothing_missing(name, tmp_path):
    trained = create(name, num_classes=10)
    path = tmp_path / f"{name}.pth"
    torch.save(to_torchvision_layout(trained), path)
    fresh = create(name, num_classes=10)
    report = load_pretrained(fresh, path, source="torchvision", strict=True)
    assert report.complete and not report.missing
    assert_same_tensors(trained, fresh)


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_radiologynet_checkpoint_round_trips_with_nothing_missing(name, tmp_path):
    trained = create(name, num_classes=36)
    path = tmp_path / f"{name}.pth"
    weights = {"model." + key: tensor for key, tensor in to_torchvision_layout(trained).items()}
    torch.save({"model_state": weights, "epoch": 41}, path)
    fresh = create(name, num_classes=36)
    report = load_pretrained(fresh, path, source="radiologynet", strict=True)
    assert report.complete and report.naming == "torchvision layout, 'model.' prefix removed"
    assert_same_tensors(trained, fresh)


def test_radiologynet_release_archive_loads_and_is_detected(tmp_path):
    trained = create("mobilenet_v3_small", num_classes=36)
    archive = save_radiologynet_release(trained, tmp_path, "MobileNetV3Small")
    fresh = create("mobilenet_v3_small", num_classes=36)
    report = load_pretrained(fresh, archive)
    assert report.source == "radiologynet" and report.complete
    assert_same_tensors(trained, fresh)


@pytest.mark.parametrize(
    ("checkpoint", "expected_source"),
    [("torchvision", "torchvision"), ("radtl", "radtl"), ("ignite", "radtl")],
)
def test_auto_reads_each_naming(checkpoint, expected_source):
    trained = create("densenet121", num_classes=2)
    state = {
        "torchvision": to_torchvision_layout(trained),
        "radtl": trained.state_dict(),
        "ignite": {"model": trained.state_dict(), "optimizer": {"state": {}, "param_groups": []}},
    }[checkpoint]
    fresh = create("densenet121", num_classes=2)
    report = load_pretrained(fresh, state)
    assert report.source == expected_source and report.complete
    assert_same_tensors(trained, fresh)


# --- Partial transfer --------------------------------------------------------------------------


def test_resnet50_classifier_becomes_the_unet_encoder_tensor_for_tensor():
    classifier = create("resnet50", num_classes=36)
    unet = create("unet_resnet50", out_channels=1)
    report = load_pretrained(unet, classifier.state_dict())
    assert report.naming.endswith("into 'encoder.'")
    assert sorted(report.unexpected) == ["encoder.fc.bias", "encoder.fc.weight"]
    assert report.missing and all(not key.startswith("encoder.") for key in report.missing)
    encoder_state = unet.state_dict()
    for key, tensor in classifier.state_dict().items():
        if not key.startswith("fc."):
            assert torch.equal(encoder_state["encoder." + key], tensor), key


def test_radiologynet_release_loads_into_a_unet_encoder(tmp_path):
    archive = save_radiologynet_release(create("efficientnet_b4", num_classes=36), tmp_path, "EfficientNetB4")
    unet = create("unet_efficientnet_b4")
    report = load_pretrained(unet, archive, source="radiologynet")
    assert report.naming == "torchvision layout, 'model.' prefix removed, into 'encoder.'"
    assert len(report.loaded) == len(unet.encoder.state_dict())
    assert sorted(report.unexpected) == ["encoder.classifier.1.bias", "encoder.classifier.1.weight"]


def test_pretraining_head_is_left_out_of_a_new_task_and_strict_refuses():
    pretrained = create("resnet34", num_classes=36).state_dict()
    model = create("resnet34", num_classes=4)
    report = load_pretrained(model, pretrained)
    assert [key for key, _, _ in report.mismatched] == ["fc.weight", "fc.bias"]
    assert report.mismatched[0][1:] == ((36, 512), (4, 512))
    assert len(report.loaded) == len(pretrained) - 2 and not report.missing
    with pytest.raises(CheckpointError, match="does not load strictly"):
        load_pretrained(create("resnet34", num_classes=4), pretrained, strict=True)


def test_imagenet_first_conv_summed_into_a_grey_stem_sees_grey_as_the_copy_to_rgb_did():
    rgb = create("resnet18", num_classes=5).double().eval()
    grey = create("resnet18", in_channels=1, num_classes=5).double().eval()
    report = load_pretrained(grey, to_torchvision_layout(rgb), source="torchvision", strict=True)
    assert report.adapted == ["conv1.weight"]
    image = torch.rand(2, 1, 64, 64, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(grey(image), rgb(image.repeat(1, 3, 1, 1)))


def test_adapting_to_a_multiple_of_the_channels_keeps_the_response_to_a_constant_image():
    weight = torch.randn(8, 3, 3, 3, dtype=torch.float64)
    adapted = adapt_input_channels(weight, 6)
    assert adapted.shape == (8, 6, 3, 3)
    torch.testing.assert_close(adapted.sum(dim=(1, 2, 3)), weight.sum(dim=(1, 2, 3)))


def test_bone_age_regressor_takes_its_backbone_from_a_classifier():
    classifier = create("efficientnet_b3", num_classes=36)
    regressor = BoneAgeRegressor("efficientnet_b3")
    report = load_pretrained(regressor, classifier.state_dict())
    assert report.naming.endswith("into 'backbone.'")
    assert_same_tensors(regressor.backbone, classifier)
    months = regressor.eval()(torch.rand(3, 3, 96, 96), torch.tensor([1.0, 0.0, 1.0]))
    assert months.shape == (3, 1)


def test_sex_changes_the_predicted_bone_age():
    regressor = BoneAgeRegressor("mobilenet_v3_small", hidden_features=16).eval()
    image = torch.rand(1, 3, 64, 64).repeat(2, 1, 1, 1)
    months = regressor(image, torch.tensor([[0.0], [1.0]]))
    assert months[0] != months[1]


# --- Segmentation networks -----------------------------------------------------------------------


@pytest.mark.parametrize("encoder", ["resnet50", "efficientnet_b4", "vgg16", "inception_v3", "densenet121"])
def test_encoder_unet_returns_a_full_resolution_mask(encoder):
    size = 96 if encoder == "inception_v3" else 64
    unet = EncoderUNet(encoder, in_channels=1, out_channels=2).eval()
    with torch.no_grad():
        assert unet(torch.rand(1, 1, size, size)).shape == (1, 2, size, size)


def test_plain_unet_reconstructs_its_input_shape():
    unet = create("unet", in_channels=1, out_channels=1, features=(8, 16, 32, 64, 128, 8)).eval()
    with torch.no_grad():
        assert unet(torch.rand(1, 1, 64, 64)).shape == (1, 1, 64, 64)


# --- TorchScript ---------------------------------------------------------------------------------

SCRIPTED = [
    (name, {"num_classes": 3}, (1, 3, STUDY_INPUT_SIZE.get(name, 96), STUDY_INPUT_SIZE.get(name, 96)))
    for name in ARCHITECTURES
] + [
    ("vit_small", {"num_classes": 3, "img_size": 96}, (1, 3, 96, 96)),
    ("unet", {"features": (8, 16, 32, 64, 128, 8)}, (1, 3, 64, 64)),
    ("unet_resnet50", {}, (1, 3, 64, 64)),
    ("unet_efficientnet_b4", {}, (1, 3, 64, 64)),
    ("unet_vgg16", {}, (1, 3, 64, 64)),
]


@pytest.mark.parametrize(("name", "kwargs", "shape"), SCRIPTED, ids=[entry[0] for entry in SCRIPTED])
def test_every_model_scripts_to_torchscript_with_the_same_output(name, kwargs, shape, tmp_path):
    model = create(name, **kwargs).eval()
    path = tmp_path / "model.ts"
    torch.jit.script(model).save(str(path))
    image = torch.rand(shape)
    with torch.no_grad():
        torch.testing.assert_close(torch.jit.load(str(path))(image), model(image))


def test_bone_age_regressor_scripts_with_its_two_inputs():
    regressor = BoneAgeRegressor("mobilenet_v3_small", hidden_features=16).eval()
    scripted = torch.jit.script(regressor)
    image, sex = torch.rand(2, 3, 64, 64), torch.tensor([0.0, 1.0])
    with torch.no_grad():
        torch.testing.assert_close(scripted(image, sex), regressor(image, sex))


# --- Bad input -----------------------------------------------------------------------------------


def test_missing_file_is_named(tmp_path):
    with pytest.raises(CheckpointError, match="ResNet50.pth: no such checkpoint file"):
        load_pretrained(create("resnet50"), tmp_path / "ResNet50.pth")


def test_truncated_file_is_named_as_corrupt(tmp_path):
    path = tmp_path / "ResNet18.pth"
    torch.save(create("resnet18").state_dict(), path)
    path.write_bytes(path.read_bytes()[:100_000])
    with pytest.raises(CheckpointError, match="ResNet18.pth: not a readable PyTorch checkpoint, likely truncated"):
        load_pretrained(create("resnet18"), path)


def test_arbitrary_pickle_is_refused(tmp_path):
    path = tmp_path / "model.pth"
    torch.save({"model": create("resnet18"), "note": "a whole module, pickled"}, path)
    with pytest.raises(CheckpointError, match="refuses arbitrary pickles"):
        load_pretrained(create("resnet18"), path)


@pytest.mark.parametrize(
    ("content", "message"),
    [({"epoch": 3, "lr": 0.1}, "is not a state dict"), ([1, 2, 3], "holds a list, not a state dict")],
)
def test_something_else_than_a_state_dict_is_refused(content, message, tmp_path):
    path = tmp_path / "thing.pth"
    torch.save(content, path)
    with pytest.raises(CheckpointError, match=message):
        load_pretrained(create("resnet18"), path)


@pytest.mark.parametrize(
    ("saved", "loaded"),
    [("resnet18", "resnet50"), ("resnet34", "resnet18"), ("resnet18", "resnet34"), ("densenet121", "vgg16")],
)
def test_checkpoint_of_another_architecture_is_refused(saved, loaded, tmp_path):
    path = tmp_path / f"{saved}.pth"
    torch.save(to_torchvision_layout(create(saved)), path)
    model = create(loaded)
    before = {key: tensor.clone() for key, tensor in model.state_dict().items()}
    with pytest.raises(CheckpointError, match=f"{saved}.pth does not fit .*different architecture"):
        load_pretrained(model, path)
    assert all(torch.equal(before[key], tensor) for key, tensor in model.state_dict().items())


def test_unet_checkpoint_gives_its_encoder_to_a_classifier():
    unet = create("unet_vgg16")
    classifier = create("vgg16", num_classes=2)
    report = load_pretrained(classifier, unet.state_dict())
    assert report.naming == "torchvision/radtl layout, 'encoder.' prefix removed"
    assert_same_tensors(unet.encoder, classifier)


def test_radiologynet_source_needs_model_state(tmp_path):
    path = tmp_path / "plain.pth"
    torch.save(create("resnet18").state_dict(), path)
    with pytest.raises(CheckpointError, match="expected a RadiologyNET checkpoint.*'model_state'"):
        load_pretrained(create("resnet18"), path, source="radiologynet")


# --- Command line ------------------------------------------------------------------------------


@pytest.fixture
def resnet18_checkpoint(tmp_path):
    path = tmp_path / "resnet18.pth"
    torch.save(to_torchvision_layout(create("resnet18")), path)
    return str(path)


def test_check_weights_prints_the_report_of_a_dry_run(resnet18_checkpoint, capsys):
    main(["check-weights", "resnet18", resnet18_checkpoint, "--in_channels", "1", "--num_classes", "2"])
    printed = capsys.readouterr().out
    assert "loaded 119 tensors, 1 with adapted input channels" in printed
    assert "fc.weight [1000, 512] vs model [2, 512]" in printed


def test_check_weights_exits_2_on_another_architecture(resnet18_checkpoint, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["check-weights", "resnet50", resnet18_checkpoint])
    assert exit_info.value.code == 2
    assert "does not fit ResNet" in capsys.readouterr().err


# --- In MONAI bundles ----------------------------------------------------------------------------


def data_format(format_: str, channels: int, spatial: list, name: str) -> dict:
    """One entry of a bundle's ``network_data_format`` (MONAI bundle specification)."""
    return {
        "type": "image",
        "format": format_,
        "num_channels": channels,
        "spatial_shape": spatial,
        "dtype": "float32",
        "value_range": [0, 1],
        "is_patch_data": False,
        "channel_def": {"0": name},
    }


def write_bundle(directory, network_def: dict, channels_in: int, channels_out: int, spatial: list) -> tuple:
    meta = {
        "version": "0.1.0",
        "network_data_format": {
            "inputs": {"image": data_format("magnitude", channels_in, spatial, "image")},
            "outputs": {"pred": data_format("segmentation", channels_out, spatial, "output")},
        },
    }
    meta_file, config_file = directory / "metadata.json", directory / "inference.json"
    meta_file.write_text(json.dumps(meta))
    config_file.write_text(json.dumps({"network_def": network_def}))
    return str(meta_file), str(config_file)


@pytest.mark.parametrize(
    ("network_def", "channels_in", "channels_out", "spatial"),
    [
        (
            {"_target_": "radtl.networks.create", "name": "densenet121", "in_channels": 1, "num_classes": 4},
            1,
            4,
            [64, 64],
        ),
        ({"_target_": "radtl.networks.create", "name": "unet_resnet50", "out_channels": 1}, 3, 1, ["32*n", "32*n"]),
    ],
    ids=["densenet121", "unet_resnet50"],
)
def test_bundle_verifies_network_and_exports_torchscript(network_def, channels_in, channels_out, spatial, tmp_path):
    from monai.bundle import ckpt_export, verify_net_in_out

    meta_file, config_file = write_bundle(tmp_path, network_def, channels_in, channels_out, spatial)
    verify_net_in_out(net_id="network_def", meta_file=meta_file, config_file=config_file, device="cpu", n=2)
    model = create(**{k: v for k, v in network_def.items() if k != "_target_"})
    torch.save(model.state_dict(), tmp_path / "model.pt")
    ckpt_export(
        net_id="network_def",
        filepath=str(tmp_path / "model.ts"),
        ckpt_file=str(tmp_path / "model.pt"),
        meta_file=meta_file,
        config_file=config_file,
    )
    image = torch.rand(1, channels_in, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(torch.jit.load(str(tmp_path / "model.ts"))(image), model.eval()(image))
