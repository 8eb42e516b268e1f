"""radtl.interpret: Grad-CAM maps of radtl's networks, their display and localisation Dice, and the
blinded heatmap rating of the RadiologyNET study."""

import csv
import logging

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from torch import nn

from radtl.interpret import (
    class_activation_maps,
    localisation_dice,
    overlay,
    rating_summary,
    read_ratings,
    save_heatmap,
    side_by_side,
    target_layer,
    write_rating_sheet,
)
from radtl.networks import NETWORKS, Backbone, VisionTransformer, available, create

pytestmark = pytest.mark.usefixtures("one_thread")

SIDE = 32
LEFT = (slice(4, 10), slice(4, 10))  # the square class 0 looks at
RIGHT = (slice(20, 26), slice(22, 28))  # the square class 1 looks at


def _backbone_class(name: str) -> type | None:
    factory = NETWORKS[name]
    factory = getattr(factory, "func", factory)
    return factory if isinstance(factory, type) and issubclass(factory, Backbone) else None


CNN_CLASSIFIERS = [
    name for name in available() if _backbone_class(name) and _backbone_class(name) is not VisionTransformer
]


class TwoRegionNet(nn.Module):
    """Class 0 is the mean brightness of the left half, class 1 of the right half: the answer is known.

    ``features`` copies the image into two channels, ``gate`` keeps the left half in channel 0 and
    the right half in channel 1; average pooling and an identity ``fc`` give the two logits.
    """

    def __init__(self, outputs: int = 2):
        super().__init__()
        self.features = nn.Conv2d(1, 2, kernel_size=1, bias=False)
        nn.init.ones_(self.features.weight)
        self.gate = Gate()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(2, outputs, bias=False)
        with torch.no_grad():
            self.fc.weight.copy_(torch.eye(2)[:outputs])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.gate(self.features(x))), 1))


class Gate(nn.Module):
    def __init__(self):
        super().__init__()
        halves = torch.zeros(2, SIDE, SIDE)
        halves[0, :, : SIDE // 2] = 1
        halves[1, :, SIDE // 2 :] = 1
        self.register_buffer("halves", halves)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.halves


def two_squares(left: float = 1.0, right: float = 1.0) -> torch.Tensor:
    image = torch.zeros(1, 1, SIDE, SIDE)
    image[(0, 0, *LEFT)] = left
    image[(0, 0, *RIGHT)] = right
    return image


def peak(cam: torch.Tensor) -> tuple[int, int]:
    row, column = np.unravel_index(int(cam.argmax()), cam.shape[-2:])
    return int(row), int(column)


def inside(point: tuple[int, int], region: tuple[slice, slice]) -> bool:
    return all(part.start <= value < part.stop for value, part in zip(point, region))


@pytest.fixture(scope="module")
def resnet():
    torch.manual_seed(0)
    return create("resnet18", in_channels=1, num_classes=3)


# --------------------------------------------------------------------------- target_layer


EXPECTED_LAYER = {
    "ResNet": "layer4",
    "DenseNet121": "class_layers.relu",
    "EfficientNet": "_bn1",  # _swish also activates the stem, so the head's map before it
    "InceptionV3": "Mixed_7c",
}


@pytest.mark.parametrize("name", CNN_CLASSIFIERS)
def test_target_layer_returns_the_module_producing_the_last_feature_map(name):
    network = create(name, num_classes=3)
    expected = EXPECTED_LAYER.get(type(network).__name__)
    if expected is None:  # VGG-16, MobileNetV3: the last pyramid layer of `features`
        expected = f"features.{network.pyramid_layers[-1]}"
    layer = target_layer(network)
    assert layer == expected
    with torch.no_grad():
        x = torch.zeros(1, 3, 96, 96)
        seen = []
        handle = network.get_submodule(layer).register_forward_hook(lambda m, i, out: seen.append(out.shape))
        last_map = network.eval().feature_maps(x)[-1]
        handle.remove()
    assert seen == [last_map.shape]


def test_target_layer_refuses_a_vision_transformer_and_points_to_attention():
    with pytest.raises(ValueError, match="convolutional map.*attention"):
        target_layer(create("vit_tiny", num_classes=3, img_size=32, patch_size=16))


def test_target_layer_of_another_network_is_its_last_spatial_map():
    assert target_layer(TwoRegionNet(), two_squares()) == "gate"


# --------------------------------------------------------------------------- class_activation_maps


@pytest.mark.parametrize("method", ["gradcam", "gradcam++"])
def test_maps_are_in_unit_range_at_the_input_size(resnet, method):
    images = torch.randn(2, 1, 64, 48)
    maps = class_activation_maps(resnet, images, method=method)
    assert maps.shape == (2, 1, 64, 48)
    assert maps.min() >= 0 and maps.max() <= 1
    assert torch.allclose(maps.flatten(1).max(1).values, torch.ones(2))
    assert not maps.requires_grad


@pytest.mark.parametrize("method", ["gradcam", "gradcam++"])
def test_map_peaks_in_the_region_that_decides_the_class(method):
    network, image = TwoRegionNet(), two_squares()
    assert inside(peak(class_activation_maps(network, image, method=method, class_index=0)), LEFT)
    assert inside(peak(class_activation_maps(network, image, method=method, class_index=1)), RIGHT)


def test_each_image_of_a_batch_is_explained_for_its_own_predicted_class():
    images = torch.cat([two_squares(left=2.0), two_squares(right=2.0)])  # predicted 0, then 1
    maps = class_activation_maps(TwoRegionNet(), images)
    assert inside(peak(maps[0]), LEFT)
    assert inside(peak(maps[1]), RIGHT)


def test_single_output_network_is_explained_through_output_0():
    maps = class_activation_maps(TwoRegionNet(outputs=1), two_squares())
    assert inside(peak(maps[0]), LEFT)
    with pytest.raises(ValueError, match="out of range"):
        class_activation_maps(TwoRegionNet(outputs=1), two_squares(), class_index=1)


def test_network_state_is_restored(resnet):
    resnet.train()
    resnet.bn1.eval()  # a frozen batch norm inside a training network
    resnet.layer1.requires_grad_(False)
    resnet.fc.weight.grad = torch.full_like(resnet.fc.weight, 7.0)
    modes = {name: module.training for name, module in resnet.named_modules()}
    trainable = {name: parameter.requires_grad for name, parameter in resnet.named_parameters()}
    running_mean = resnet.bn1.running_mean.clone()
    hooks = sum(len(module._forward_hooks) + len(module._backward_hooks) for module in resnet.modules())

    class_activation_maps(resnet, torch.randn(2, 1, 32, 32))

    assert {name: module.training for name, module in resnet.named_modules()} == modes
    assert {name: parameter.requires_grad for name, parameter in resnet.named_parameters()} == trainable
    assert torch.equal(resnet.fc.weight.grad, torch.full_like(resnet.fc.weight, 7.0))
    assert resnet.layer2[0].conv1.weight.grad is None
    assert torch.equal(resnet.bn1.running_mean, running_mean)
    assert sum(len(module._forward_hooks) + len(module._backward_hooks) for module in resnet.modules()) == hooks
    resnet.layer1.requires_grad_(True)
    resnet.fc.weight.grad = None


def test_in_place_activation_is_switched_back_on():
    torch.manual_seed(0)
    network = create("densenet121", num_classes=2)
    class_activation_maps(network, torch.randn(1, 3, 64, 64))
    assert network.class_layers.relu.inplace


@pytest.mark.parametrize("context", [torch.no_grad, torch.inference_mode])
def test_maps_are_computed_inside_gradient_free_contexts(context):
    network = TwoRegionNet()
    with context():
        maps = class_activation_maps(network, two_squares(), class_index=0)
    assert inside(peak(maps[0]), LEFT)


def test_unknown_method_and_layer_are_refused(resnet):
    with pytest.raises(ValueError, match="method"):
        class_activation_maps(resnet, torch.randn(1, 1, 32, 32), method="scorecam")
    with pytest.raises(ValueError, match="no module named 'layer9'"):
        class_activation_maps(resnet, torch.randn(1, 1, 32, 32), layer="layer9")


# --------------------------------------------------------------------------- display


def test_overlay_is_uint8_rgb_of_the_image_size():
    image, cam = np.random.default_rng(0).normal(size=(3, 20, 30)) * 1000, np.zeros((20, 30))
    blended = overlay(image, cam)
    assert blended.shape == (20, 30, 3) and blended.dtype == np.uint8


def test_overlay_blends_alpha_of_the_colormap_over_the_scaled_image():
    image = np.array([[0.0, 500.0]])  # min-max scaled to black and white
    cam = np.array([[1.0, 1.0]])  # jet at 1 is dark red, (0.5, 0, 0)
    assert overlay(image, cam, alpha=0.0).tolist() == [[[0, 0, 0], [255, 255, 255]]]
    assert overlay(image, cam, alpha=1.0).tolist() == [[[128, 0, 0], [128, 0, 0]]]


def test_overlay_refuses_a_map_of_another_size():
    with pytest.raises(ValueError, match="cam must be"):
        overlay(np.zeros((8, 8)), np.zeros((4, 4)))


def test_side_by_side_puts_the_input_left_of_its_overlay(tmp_path):
    image, cam = torch.rand(1, 16, 24), torch.rand(1, 16, 24)
    panel = side_by_side(image, cam, gap=4)
    assert panel.shape == (16, 2 * 24 + 4, 3) and panel.dtype == np.uint8
    assert np.array_equal(panel[:, 24:28], np.full((16, 4, 3), 255))
    assert np.array_equal(panel[:, 28:], overlay(image, cam))
    path = save_heatmap(tmp_path / "heatmaps" / "case.png", image, cam, gap=4)
    with Image.open(path) as saved:
        assert np.array_equal(np.asarray(saved), panel)


# --------------------------------------------------------------------------- localisation_dice


def test_dice_of_identical_region_is_1_and_of_disjoint_regions_0():
    mask = np.zeros((8, 8), dtype=bool)
    mask[2:4, 2:4] = True
    assert localisation_dice(mask.astype(float), mask) == 1.0
    assert localisation_dice(np.roll(mask, 4, axis=1).astype(float), mask) == 0.0


def test_dice_of_half_overlap():
    mask, cam = np.zeros((8, 8)), np.zeros((8, 8))
    mask[0:4, 0:4] = 1  # 16 pixels
    cam[0:4, 2:6] = 1  # 16 pixels, 8 of them on the lesion
    assert localisation_dice(cam, mask) == pytest.approx(2 * 8 / (16 + 16))


def test_region_is_the_map_at_20_percent_of_its_peak():
    cam = np.array([[1.0, 0.5, 0.2, 0.19]]) * 3  # scale does not matter: a fraction of the peak
    mask = np.array([[1, 1, 1, 0]])
    assert localisation_dice(cam, mask) == 1.0  # 0.2 is in, 0.19 out
    assert localisation_dice(cam, mask, threshold=0.5) == pytest.approx(2 * 2 / (2 + 3))


def test_dice_without_lesion_is_nan_and_with_an_empty_map_0():
    assert np.isnan(localisation_dice(np.ones((4, 4)), np.zeros((4, 4))))
    assert localisation_dice(np.zeros((4, 4)), np.eye(4)) == 0.0


def test_dice_refuses_other_shapes_and_label_maps():
    with pytest.raises(ValueError, match="same shape"):
        localisation_dice(np.ones((4, 4)), np.ones((8, 8)))
    with pytest.raises(ValueError, match="0/1"):
        localisation_dice(np.ones((4, 4)), np.full((4, 4), 2))


# --------------------------------------------------------------------------- rating


SOURCES = ("Baseline", "ImageNet", "RadiologyNET")


@pytest.fixture
def heatmaps(tmp_path):
    """Three sources' heatmaps of cases 000-024 (RadiologyNET also has a case the others lack)."""
    sources = {}
    for shade, source in enumerate(SOURCES):
        folder = tmp_path / "heatmaps" / source
        folder.mkdir(parents=True)
        cases = {}
        for number in range(25 + (source == "RadiologyNET")):
            path = folder / f"{number:03d}.png"
            Image.new("RGB", (8, 4), (shade * 100, number, 0)).save(path)
            cases[f"{number:03d}"] = path
        sources[source] = cases
    return sources


def read_csv(path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def fill(sheet, rating=lambda row: "3") -> None:
    rows = read_csv(sheet)
    for row in rows:
        row["rating"] = rating(row)
    with open(sheet, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def test_sheet_hides_the_sources(heatmaps, tmp_path):
    out = write_rating_sheet(heatmaps, tmp_path / "rating")
    sheet = read_csv(out / "sheet.csv")
    assert list(sheet[0]) == ["case", "panel", "image", "rater", "rating", "comment"]
    assert len(sheet) == 20 * 3 * 2
    assert all(row["rating"] == "" and row["comment"] == "" for row in sheet)
    text = (out / "sheet.csv").read_text() + "".join(p.name for p in (out / "images").iterdir())
    assert not any(source in text for source in SOURCES)
    assert sorted(p.name for p in out.iterdir()) == ["README.txt", "images", "key.csv", "sheet.csv"]
    assert "5 = only relevant regions" in (out / "README.txt").read_text()


def test_panels_are_shuffled_per_case_and_reproducible(heatmaps, tmp_path):
    key = read_csv(write_rating_sheet(heatmaps, tmp_path / "first", seed=1) / "key.csv")
    again = read_csv(write_rating_sheet(heatmaps, tmp_path / "again", seed=1) / "key.csv")
    other = read_csv(write_rating_sheet(heatmaps, tmp_path / "other", seed=2) / "key.csv")
    assert key == again and key != other
    orders = {tuple(row["source"] for row in key if row["case"] == case) for case in {row["case"] for row in key}}
    assert len(orders) > 1
    assert all(sorted(order) == sorted(SOURCES) for order in orders)


def test_each_panel_image_is_its_source_heatmap(heatmaps, tmp_path):
    out = write_rating_sheet(heatmaps, tmp_path / "rating", n=3)
    for row in read_csv(out / "key.csv"):
        with Image.open(out / "images" / f"{row['case']}_{row['panel']}.png") as image:
            assert image.getpixel((0, 0)) == (SOURCES.index(row["source"]) * 100, int(row["case"]), 0)


def test_fewer_common_cases_than_asked_uses_all_with_a_warning(heatmaps, tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        out = write_rating_sheet(heatmaps, tmp_path / "rating", n=40, raters=("only",))
    assert {row["case"] for row in read_csv(out / "sheet.csv")} == {f"{n:03d}" for n in range(25)}
    assert "only 25 case(s)" in caplog.text


def test_sources_without_a_common_case_are_refused(tmp_path):
    with pytest.raises(ValueError, match="no case is common"):
        write_rating_sheet({"A": {"1": tmp_path / "a.png"}, "B": {"2": tmp_path / "b.png"}}, tmp_path / "rating")


def test_an_existing_key_is_not_overwritten(heatmaps, tmp_path):
    write_rating_sheet(heatmaps, tmp_path / "rating", n=2)
    with pytest.raises(FileExistsError):
        write_rating_sheet(heatmaps, tmp_path / "rating", n=2)


def test_filled_sheet_reads_back_joined_with_the_key(heatmaps, tmp_path):
    out = write_rating_sheet(heatmaps, tmp_path / "rating", n=4)
    fill(out / "sheet.csv", lambda row: str(1 + "abc".index(row["panel"])))
    ratings = read_ratings(out / "sheet.csv", out / "key.csv")
    assert list(ratings.columns) == ["case", "panel", "source", "rater", "rating"]
    assert len(ratings) == 4 * 3 * 2 and ratings.attrs["notes"] == []
    key = pd.read_csv(out / "key.csv", dtype=str)
    joined = ratings.merge(key, on=["case", "panel"], suffixes=("", "_key"))
    assert (joined["source"] == joined["source_key"]).all()
    assert (ratings["rating"] == ratings["panel"].map({"a": 1, "b": 2, "c": 3})).all()


def test_one_sheet_per_rater_reads_like_one_combined(heatmaps, tmp_path):
    out = write_rating_sheet(heatmaps, tmp_path / "rating", n=4)
    fill(out / "sheet.csv", lambda row: "4" if row["rater"] == "rater_1" else "2")
    sheet = pd.read_csv(out / "sheet.csv", dtype=str, keep_default_na=False)
    paths = []
    for rater, rows in sheet.groupby("rater"):
        paths.append(tmp_path / f"{rater}.csv")
        rows.to_csv(paths[-1], index=False)
    combined = read_ratings(out / "sheet.csv", out / "key.csv")
    split = read_ratings(paths, out / "key.csv")
    pd.testing.assert_frame_equal(split, combined)


@pytest.mark.parametrize("value", ["7", "x", "0", "2.5"])
def test_rating_outside_1_to_5_is_refused_naming_file_row_and_value(heatmaps, tmp_path, value):
    out = write_rating_sheet(heatmaps, tmp_path / "rating", n=2)
    rows = read_csv(out / "sheet.csv")
    bad = rows[2]  # spreadsheet row 4: the header is row 1
    fill(out / "sheet.csv", lambda row: value if row == bad else "3")
    with pytest.raises(ValueError, match=rf"sheet\.csv: row 4 .*rating '{value}' is not a whole number from 1 to 5"):
        read_ratings(out / "sheet.csv", out / "key.csv")


def test_blank_ratings_are_excluded_and_counted(heatmaps, tmp_path):
    out = write_rating_sheet(heatmaps, tmp_path / "rating", n=2)
    fill(out / "sheet.csv", lambda row: "" if row["panel"] == "a" and row["rater"] == "rater_2" else "4.0")
    ratings = read_ratings(out / "sheet.csv", out / "key.csv")
    assert len(ratings) == 2 * 3 * 2 - 2
    assert ratings.attrs["notes"] == ["2 blank rating(s) excluded (sheet.csv: 2)"]
    assert (ratings["rating"] == 4).all()


def test_case_missing_from_the_key_is_refused(heatmaps, tmp_path):
    out = write_rating_sheet(heatmaps, tmp_path / "rating", n=2)
    fill(out / "sheet.csv")
    key = read_csv(out / "key.csv")
    (out / "key.csv").write_text(
        "case,panel,source\n" + "".join(f"{r['case']},{r['panel']},{r['source']}\n" for r in key[1:])
    )
    with pytest.raises(ValueError, match=f"case '{key[0]['case']}' panel '{key[0]['panel']}' is not in the key"):
        read_ratings(out / "sheet.csv", out / "key.csv")


def test_summary_per_source_sorted_by_mean():
    ratings = pd.DataFrame(
        {
            "source": ["ImageNet"] * 4 + ["RadiologyNET"] * 4,
            "rater": ["r1", "r1", "r2", "r2"] * 2,
            "rating": [2, 3, 3, 4, 5, 5, 4, 4],
        }
    )
    summary = rating_summary(ratings)
    assert list(summary.index) == ["RadiologyNET", "ImageNet"]
    assert list(summary.columns) == ["n", "mean", "sd", "median", "mean_r1", "mean_r2"]
    assert summary.loc["ImageNet"].tolist() == pytest.approx([4, 3.0, np.std([2, 3, 3, 4], ddof=1), 3.0, 2.5, 3.5])
    assert summary.loc["RadiologyNET"].tolist() == pytest.approx([4, 4.5, np.std([5, 5, 4, 4], ddof=1), 4.5, 5.0, 4.0])


def test_sheet_and_key_survive_a_round_trip_into_the_summary(heatmaps, tmp_path):
    out = write_rating_sheet(heatmaps, tmp_path / "rating", n=5)
    key = {(row["case"], row["panel"]): row["source"] for row in read_csv(out / "key.csv")}
    fill(out / "sheet.csv", lambda row: str(1 + 2 * SOURCES.index(key[row["case"], row["panel"]])))
    summary = rating_summary(read_ratings(out / "sheet.csv", out / "key.csv"))
    assert summary["mean"].to_dict() == {"RadiologyNET": 5.0, "ImageNet": 3.0, "Baseline": 1.0}
    assert (summary["n"] == 10).all()
