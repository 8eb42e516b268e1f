"""radtl pack: a datalist's images as uint8 squares in memory-mapped shards, read back by position or by path."""

from __future__ import annotations

import csv
import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from monai.transforms import Compose
from PIL import Image
from torch.utils.data import DataLoader

from radtl.cli import main
from radtl.data import NotInPackError, PackedDataset, PackedImages, PackError, write_pack
from radtl.transforms import LoadPacked, LoadPackedd, LoadRadiograph, ResizeLongestPad
from tests.support.paths import SAMPLES

SIZE = 16
SHARD_SIZE = 5
#: (height, width) of the PNGs: portrait, landscape, square, smaller than SIZE, very elongated.
SHAPES = [(40, 24), (24, 40), (32, 32), (10, 14), (60, 13), (13, 60), (17, 31), (48, 48), (9, 9), (33, 21),
          (21, 33), (64, 40)]


def _write_png(path: Path, shape: tuple[int, int], seed: int) -> str:
    pixels = np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path.name


def _datalist(root: Path) -> Path:
    """12 PNGs (relative paths) and one DICOM in training and validation, one corrupt PNG; labels of every kind."""
    root.mkdir(parents=True, exist_ok=True)
    items = [{"image": _write_png(root / f"image_{i:02d}.png", shape, i), "label": i % 3, "cluster": 10 + i,
              "source": f"study/{i}.dcm"} for i, shape in enumerate(SHAPES)]
    items[1]["label"] = 0.25
    items[2]["label"] = [1, 0, 1]
    (root / "broken.png").write_bytes(b"not a png at all")
    shutil.copy(SAMPLES / "cr" / "chest_mono2.dcm", root / "chest.dcm")
    training = [*items[:2], {"image": "broken.png", "label": 1}, *items[2:9]]
    validation = [*items[9:], {"image": str(root / "chest.dcm"), "label": 2, "sex": "F"}]
    datalist = {"task": {"name": "toy", "kind": "multiclass"}, "labels": {"0": "a", "1": "b", "2": "c"},
                "training": training, "validation": validation, "test": []}
    path = root / "datalist.json"
    path.write_text(json.dumps(datalist))
    return path


@pytest.fixture(scope="module")
def datalist(tmp_path_factory) -> Path:
    return _datalist(tmp_path_factory.mktemp("images"))


@pytest.fixture(scope="module")
def pack(datalist, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("pack")
    write_pack(datalist, out, size=SIZE, shard_size=SHARD_SIZE)
    return out


def _items(datalist: Path, split: str) -> list[dict]:
    return json.loads(datalist.read_text())[split]


def _shard_bytes(pack: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted((pack / "shards").glob("shard-*.npy"))}


# --- writing ---------------------------------------------------------------------------------


def test_packed_pixels_are_the_bundles_resize_longest_pad_of_the_loaded_image_rounded_to_8_bits(pack):
    images = PackedImages(pack)
    bundle = Compose([LoadRadiograph(), ResizeLongestPad(SIZE)])
    for position, source in enumerate(images.index["image"]):
        expected = torch.round(torch.as_tensor(bundle(source))[0] * 255).to(torch.uint8).numpy()
        assert np.array_equal(images[position], expected), source


def test_dicom_images_are_packed_with_their_original_size(pack, datalist):
    row = PackedImages(pack).index.set_index("image").loc[str(datalist.parent / "chest.dcm")]
    assert (row["height"], row["width"]) == (256, 224)


def test_relative_image_paths_are_resolved_against_the_datalist_folder(pack, datalist):
    images = PackedImages(pack).index["image"]
    assert images.iloc[0] == str(datalist.parent / "image_00.png")
    assert all(Path(image).is_absolute() for image in images)


def test_items_are_cut_into_consecutive_shards_of_shard_size(pack):
    manifest = json.loads((pack / "pack.json").read_text())
    # 10 training + 4 validation items: shards of 5, 5, 4; the corrupt file is left out of the first
    assert [shard["count"] for shard in manifest["shards"]] == [4, 5, 4]
    assert [np.load(pack / shard["file"], mmap_mode="r").shape for shard in manifest["shards"]] == [
        (4, SIZE, SIZE), (5, SIZE, SIZE), (4, SIZE, SIZE)]
    index = PackedImages(pack).index
    assert index["shard"].tolist() == [0] * 4 + [1] * 5 + [2] * 4
    assert index["row"].tolist() == [0, 1, 2, 3, 0, 1, 2, 3, 4, 0, 1, 2, 3]


def test_an_unreadable_image_is_listed_in_errors_csv_and_the_others_are_packed(pack):
    with open(pack / "errors.csv", newline="") as f:
        errors = list(csv.DictReader(f))
    assert len(errors) == 1
    assert errors[0]["split"] == "training" and errors[0]["image"].endswith("broken.png")
    assert errors[0]["reason"].startswith("UnidentifiedImageError: ")
    assert len(PackedImages(pack)) == 13


def test_pack_json_describes_the_pack_and_keeps_the_datalists_task_and_labels(pack, datalist):
    manifest = json.loads((pack / "pack.json").read_text())
    source = json.loads(datalist.read_text())
    assert (manifest["format"], manifest["version"], manifest["size"], manifest["dtype"]) == (
        "radtl-pack", 1, SIZE, "uint8")
    assert manifest["count"] == 13 and manifest["errors"] == 1
    assert manifest["splits"] == {"training": 9, "validation": 4, "test": 0}
    assert manifest["task"] == source["task"] and manifest["labels"] == source["labels"]


def test_a_rerun_reuses_every_shard_and_leaves_the_bytes_unchanged(datalist, tmp_path):
    first = write_pack(datalist, tmp_path, size=SIZE, shard_size=SHARD_SIZE)
    before = _shard_bytes(tmp_path)
    again = write_pack(datalist, tmp_path, size=SIZE, shard_size=SHARD_SIZE)
    assert (first.skipped, again.skipped, again.shards) == (0, 3, 3)
    assert (again.count, again.errors, again.splits) == (first.count, first.errors, first.splits)
    assert _shard_bytes(tmp_path) == before


def test_a_killed_run_is_resumed_by_packing_only_the_unfinished_shard(datalist, tmp_path):
    write_pack(datalist, tmp_path, size=SIZE, shard_size=SHARD_SIZE)
    before = _shard_bytes(tmp_path)
    (tmp_path / "pack.json").unlink()
    (tmp_path / "shards" / "shard-00001.parquet").unlink()  # killed between its .npy and its index
    result = write_pack(datalist, tmp_path, size=SIZE, shard_size=SHARD_SIZE)
    assert result.skipped == 2 and result.count == 13
    assert _shard_bytes(tmp_path) == before


def test_other_settings_repack_instead_of_reusing(datalist, tmp_path):
    write_pack(datalist, tmp_path, size=SIZE, shard_size=SHARD_SIZE)
    result = write_pack(datalist, tmp_path, size=SIZE // 2, shard_size=SHARD_SIZE)
    assert result.skipped == 0 and PackedImages(tmp_path)[0].shape == (SIZE // 2, SIZE // 2)


def test_an_item_key_named_like_an_index_column_is_refused(tmp_path):
    _write_png(tmp_path / "a.png", (8, 8), 0)
    datalist = {"training": [{"image": "a.png", "label": 0, "position": 3}]}
    with pytest.raises(PackError, match="'position'"):
        write_pack(datalist, tmp_path / "pack", size=SIZE, base_dir=tmp_path)


def test_a_datalist_without_items_in_the_splits_is_refused(tmp_path):
    with pytest.raises(PackError, match="no items in training"):
        write_pack({"training": [], "validation": [{"image": "a.png"}]}, tmp_path, splits="training")


# --- reading ---------------------------------------------------------------------------------


def test_images_are_uint8_squares_by_global_position(pack):
    images = PackedImages(pack)
    assert len(images) == 13 and images.size == SIZE
    assert images[12].dtype == np.uint8 and images[12].shape == (SIZE, SIZE)
    with pytest.raises(IndexError):
        images[13]


def test_locate_finds_an_image_by_its_source_path(pack, datalist):
    images = PackedImages(pack)
    assert images.locate(datalist.parent / "image_05.png") == 5
    assert images.locate(datalist.parent / "image_02.png") == 2  # broken.png, before it, is left out


def test_locate_of_an_image_not_in_the_pack_names_it(pack, datalist):
    with pytest.raises(NotInPackError, match=r"broken\.png is not in the pack"):
        PackedImages(pack).locate(datalist.parent / "broken.png")


def test_positions_follow_the_splits_in_datalist_order(pack):
    images = PackedImages(pack)
    assert images.positions("training").tolist() == list(range(9))
    assert images.positions("validation").tolist() == list(range(9, 13))
    assert images.positions("test").tolist() == []
    with pytest.raises(PackError, match="no split 'unlabeled'"):
        images.positions("unlabeled")


def test_items_rebuild_the_datalist_items_with_their_pack_position(pack, datalist):
    items = PackedImages(pack).items("validation")
    source = _items(datalist, "validation")
    assert [item["pack_position"] for item in items] == [9, 10, 11, 12]
    assert items[0] == {"image": str(datalist.parent / "image_09.png"), "label": 0, "cluster": 19,
                        "source": "study/9.dcm", "pack_position": 9}
    assert items[3] == {"image": source[3]["image"], "label": 2, "sex": "F", "pack_position": 12}


def test_shard_positions_give_each_shard_its_own_positions(pack):
    assert [p.tolist() for p in PackedImages(pack).shard_positions()] == [
        [0, 1, 2, 3], [4, 5, 6, 7, 8], [9, 10, 11, 12]]


def test_a_folder_without_pack_json_is_not_a_pack(tmp_path):
    with pytest.raises(PackError, match=f"{tmp_path}: not a radtl pack"):
        PackedImages(tmp_path)


def test_a_foreign_pack_json_is_not_a_pack(tmp_path):
    (tmp_path / "pack.json").write_text(json.dumps({"format": "webdataset", "version": 1}))
    with pytest.raises(PackError, match="format is not 'radtl-pack'"):
        PackedImages(tmp_path)


def test_a_pack_whose_run_did_not_finish_is_incomplete(pack, tmp_path):
    shutil.copytree(pack / "shards", tmp_path / "shards")
    with pytest.raises(PackError, match="incomplete pack"):
        PackedImages(tmp_path)


# --- dataset and transforms --------------------------------------------------------------------


def test_dataset_items_are_uint8_channel_first_images_with_the_items_keys(pack, datalist):
    dataset = PackedDataset(pack, split="training")
    item = dataset[1]
    assert len(dataset) == 9
    assert item["image"].dtype == torch.uint8 and item["image"].shape == (1, SIZE, SIZE)
    assert np.array_equal(item["image"][0].numpy(), PackedImages(pack)[1])
    assert (item["cluster"], item["source"], item["pack_position"]) == (11, "study/1.dcm", 1)


def test_dataset_labels_round_trip_ints_floats_and_lists(pack):
    dataset = PackedDataset(pack, split="training")
    assert [dataset[i]["label"] for i in range(3)] == [0, 0.25, [1, 0, 1]]
    assert dataset.targets == [0, 0.25, [1, 0, 1], 0, 1, 2, 0, 1, 2]


def test_dataset_applies_its_transform_to_the_item(pack):
    dataset = PackedDataset(PackedImages(pack), split="validation", transform=lambda item: item["image"].sum())
    assert dataset[0] == torch.from_numpy(PackedImages(pack)[9]).sum()


def test_a_dataloader_with_two_workers_reads_the_same_bytes_as_this_process(pack):
    dataset = PackedDataset(pack, split="training")
    expected = torch.stack([dataset[i]["image"] for i in range(len(dataset))])  # shards mapped before the fork
    loader = DataLoader(dataset, batch_size=3, num_workers=2, collate_fn=lambda items: torch.stack(
        [item["image"] for item in items]))
    assert torch.equal(torch.cat(list(loader)), expected)


def test_load_packed_gives_the_image_in_unit_range_with_its_filename(pack, datalist):
    path = str(datalist.parent / "image_03.png")
    image = LoadPackedd("image", pack)({"image": path, "label": 0})["image"]
    assert image.dtype == torch.float32 and image.shape == (1, SIZE, SIZE)
    assert 0.0 <= image.min() and image.max() <= 1.0
    assert torch.equal(torch.round(image * 255).to(torch.uint8)[0], torch.from_numpy(PackedImages(pack)[3]))
    assert image.meta["filename_or_obj"] == path and tuple(image.meta["spatial_shape"]) == (SIZE, SIZE)


def test_load_packed_of_a_file_not_in_the_pack_names_the_file(pack, tmp_path):
    with pytest.raises(NotInPackError, match=r"elsewhere\.png is not in the pack"):
        LoadPackedd("image", pack)({"image": str(tmp_path / "elsewhere.png")})


def test_load_packed_opens_the_pack_on_first_use_and_pickles_without_it(pack, datalist):
    loader = LoadPacked(pack)
    loader(datalist.parent / "image_00.png")
    restored = pickle.loads(pickle.dumps(loader))
    assert restored._opened is None
    assert torch.equal(restored(datalist.parent / "image_00.png"), loader(datalist.parent / "image_00.png"))


# --- command line ----------------------------------------------------------------------------


def test_radtl_pack_writes_a_pack(datalist, tmp_path, capsys):
    main(["pack", str(datalist), str(tmp_path), "--size", str(SIZE), "--shard_size", "100",
          "--splits", "validation", "--progress", "False"])
    manifest = json.loads((tmp_path / "pack.json").read_text())
    assert manifest["count"] == 4 and manifest["splits"] == {"validation": 4}
    assert "4 image(s) packed in 1 shard(s)" in capsys.readouterr().out
