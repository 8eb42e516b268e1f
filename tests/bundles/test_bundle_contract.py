"""The bundle contract: every bundle declares its kind in metadata.json and defines the properties of that kind
(:data:`radtl.bundle.PROPERTIES`, after monai/bundle/properties.py), each a config id MONAI's ConfigParser resolves;
and the named transforms and functions the bundles' JSON wires instead of expressions.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from monai.bundle import ConfigParser

from radtl.bundle import PROPERTIES, Bundle, BundleKind, BundleKindError
from radtl.engines import (
    describe_pretraining,
    handlers_for_rank,
    is_lower,
    lower_is_better,
    output_loss,
    validation_metric,
)
from radtl.networks import place
from radtl.transforms import BatchRepeatChannel, CastLabeld, SegmentationMaskd, StandardizeLabel, StandardizeLabeld
from tests.support.paths import REPO

BUNDLES = sorted(path.parent.parent.name for path in (REPO / "bundles").glob("*/configs/metadata.json"))


@pytest.mark.parametrize("name", BUNDLES)
def test_every_bundle_declares_a_kind_radtl_knows(name):
    assert Bundle(REPO / "bundles" / name).kind is not BundleKind.OTHER


@pytest.mark.parametrize("name", BUNDLES)
def test_every_bundle_defines_the_properties_of_its_kind(name):
    bundle = Bundle(REPO / "bundles" / name)
    assert bundle.missing_properties() == []
    for prop, spec in PROPERTIES[bundle.kind].items():
        configs = [bundle.root / "configs" / "train.json"]
        if spec["config"] != "train.json":
            configs.append(bundle.root / "configs" / spec["config"])
        parser = ConfigParser()
        parser.read_config([str(path) for path in configs])
        parser.parse()
        if spec["id"] not in parser:
            assert not spec["required"], f"{name}: {prop} ({spec['id']})"
            continue
        # every reference under the property resolves, with nothing evaluated or instantiated
        parser.get_parsed_content(spec["id"], instantiate=False, eval_expr=False)


def test_a_tool_refuses_a_bundle_of_another_kind():
    with pytest.raises(BundleKindError, match="'dino_pretrain' is a pretraining bundle, not segmentation"):
        Bundle(REPO / "bundles" / "dino_pretrain").require(BundleKind.SEGMENTATION, tool="radtl segment")


def test_the_network_is_loaded_strictly_and_in_eval_mode(tmp_path):
    bundle = Bundle(REPO / "bundles" / "btmr", {"backbone": "resnet18", "device": "cpu"})
    trained = bundle.network()
    torch.save(trained.state_dict(), tmp_path / "model.pt")
    network = bundle.network(tmp_path / "model.pt")
    assert not network.training
    assert all(torch.equal(a, b) for a, b in zip(network.state_dict().values(), trained.state_dict().values()))


def test_label_standardisation_and_its_inverse_round_trip():
    forward = StandardizeLabeld("label", mean=127.3, std=41.2)
    item = forward({"label": 168.5})
    assert item["label"].shape == (1,) and item["label"].dtype == torch.float32
    assert torch.allclose(item["label"], torch.tensor([1.0]))
    back = StandardizeLabeld(["pred", "label"], mean=127.3, std=41.2, inverse=True, allow_missing_keys=True)
    assert torch.allclose(back(item)["label"], torch.tensor([168.5]))
    assert StandardizeLabel(127.3, 41.2).inverted()(None) is None


def test_a_scalar_label_is_cast_to_a_one_element_float_tensor():
    assert torch.equal(CastLabeld("label")({"label": 1})["label"], torch.tensor([1.0]))


def test_the_segmentation_mask_is_binary_unless_the_seg_is_fractional():
    probabilities = torch.zeros(1, 8, 8, 8)
    probabilities[0, 2:6, 2:6, 2:6] = 0.9
    probabilities[0, 0, 0, 0] = 0.9  # a one-voxel component, removed
    mask = SegmentationMaskd("pred", threshold=0.5, min_size=2)({"pred": probabilities})["pred"]
    assert mask.sum() == 64 and set(mask.unique().tolist()) == {0.0, 1.0}
    kept = SegmentationMaskd("pred", threshold=0.5, min_size=2, fractional=True)({"pred": probabilities})["pred"]
    assert kept is probabilities


def test_wiring_functions_for_a_metric_that_is_better_lower():
    engine = SimpleNamespace(state=SimpleNamespace(metrics={"mae": 8.5}))
    assert lower_is_better("mae")(engine) == -8.5
    assert validation_metric(engine, "mae")(None) == 8.5
    assert is_lower(8.0, 8.5) and not is_lower(9.0, 8.5)


def test_without_distributed_training_every_handler_runs():
    assert handlers_for_rank(["a"], ["b", "c"]) == ["a", "b", "c"]


def test_place_moves_a_network_channels_last():
    network = place(torch.nn.Conv2d(1, 2, 3), "cpu", channels_last=True)
    assert network.weight.is_contiguous(memory_format=torch.channels_last)


def test_the_dino_description_names_ibot_and_global_crops_only():
    assert describe_pretraining(True, 0) == "DINO self-distillation (teacher) with iBOT, global crops only (OmniRad)"
    assert describe_pretraining(False, 8) == "DINO self-distillation (teacher)"


def test_a_grey_batch_becomes_three_identical_channels_and_keeps_its_batch_dimension():
    batch = torch.arange(8.0).reshape(2, 1, 2, 2)
    three = BatchRepeatChannel(3)(batch)
    assert three.shape == (2, 3, 2, 2)
    assert all(torch.equal(three[:, channel], batch[:, 0]) for channel in range(3))


def test_the_loss_of_a_dict_output_is_its_loss_entry():
    assert output_loss({"loss": 0.25, "teacher_temperature": 0.04}) == 0.25


@pytest.mark.parametrize("name", BUNDLES)
def test_no_bundle_json_holds_a_lambda_or_slices_a_list(name):
    """The JSON is wiring: logic is a named transform, handler or function in radtl (issue 23, item 5)."""
    for path in (REPO / "bundles" / name / "configs").glob("*.json"):
        text = path.read_text()
        assert "lambda" not in text and "[:" not in text, path.name
