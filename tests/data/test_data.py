"""radtl.data: the public datasets' layouts read into datalists with the study's splits."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from radtl.data import (
    SPLITS,
    DatasetLayoutError,
    inference_datalist,
    prepare_datalist,
    stratified_split,
    take_fraction,
    undersample,
)
from radtl.networks.transfer import input_mean, input_std
from radtl.transforms import LoadRadiograph
from tests.support.dataset_trees import bone_age_tree, btmr_tree, covid_tree, grazpedwri_tree, write_image
from tests.support.paths import SAMPLES


def _labels(items):
    return Counter(item["label"] for item in items)


def _images(datalist):
    return [item["image"] for split in SPLITS for item in datalist[split]]


# --- splitting -------------------------------------------------------------------------------


def test_stratified_split_gives_every_part_its_share_of_every_class():
    items = [{"image": f"{c}{i}", "label": c} for c in (0, 1) for i in range(40)]
    training, validation, test = stratified_split(items)
    assert [_labels(p) for p in (training, validation, test)] == [{0: 30, 1: 30}, {0: 5, 1: 5}, {0: 5, 1: 5}]


def test_stratified_split_does_not_depend_on_item_order_and_is_seeded():
    items = [{"image": f"x{i}", "label": i % 3} for i in range(30)]
    assert stratified_split(items) == stratified_split(items[::-1])
    assert stratified_split(items, seed=1) != stratified_split(items, seed=2)


def test_undersample_keeps_the_smallest_class_size_of_every_class():
    items = [{"image": f"a{i}", "label": 1} for i in range(4)] + [{"image": f"b{i}", "label": 0} for i in range(10)]
    assert _labels(undersample(items)) == {0: 4, 1: 4}


def test_take_fraction_keeps_class_ratios_and_at_least_one_per_class():
    items = [{"image": f"a{i}", "label": 0} for i in range(40)] + [{"image": f"b{i}", "label": 1} for i in range(8)]
    assert _labels(take_fraction(items, 0.25)) == {0: 10, 1: 2}
    assert _labels(take_fraction(items, 0.05)) == {0: 2, 1: 1}
    with pytest.raises(ValueError, match="train_fraction"):
        take_fraction(items, 0)


# --- layouts ---------------------------------------------------------------------------------


def test_btmr_splits_training_75_25_and_keeps_testing_as_test(tmp_path):
    datalist = prepare_datalist("btmr", btmr_tree(tmp_path, train_per_class=8, test_per_class=2))
    assert [len(datalist[s]) for s in SPLITS] == [24, 8, 8]
    assert datalist["labels"] == {"0": "glioma", "1": "meningioma", "2": "notumor", "3": "pituitary"}
    assert all("/Testing/" in item["image"] for item in datalist["test"])
    assert all(f"/{datalist['labels'][str(it['label'])]}/" in it["image"] for it in datalist["training"])


def test_btmr_names_the_missing_class_folder(tmp_path):
    btmr_tree(tmp_path)
    for f in (tmp_path / "Testing" / "pituitary").iterdir():
        f.unlink()
    (tmp_path / "Testing" / "pituitary").rmdir()
    with pytest.raises(DatasetLayoutError, match=r"Testing/pituitary: missing folder"):
        prepare_datalist("btmr", tmp_path)


def test_rsna_bone_age_reads_months_and_sex(tmp_path):
    datalist = prepare_datalist("rsna_bone_age", bone_age_tree(tmp_path, n=16))
    items = {Path(it["image"]).stem: it for s in SPLITS for it in datalist[s]}
    assert len(items) == 16 and datalist["task"]["kind"] == "regression"
    assert items["1377"]["label"] == 12.0 and items["1377"]["sex"] == 0.0
    assert items["1378"]["label"] == 24.0 and items["1378"]["sex"] == 1.0


def test_rsna_bone_age_names_a_missing_column(tmp_path):
    bone_age_tree(tmp_path)
    path = tmp_path / "boneage-training-dataset.csv"
    path.write_text(path.read_text().replace("boneage", "age", 1))
    with pytest.raises(DatasetLayoutError, match=r"missing column\(s\) \['boneage'\]"):
        prepare_datalist("rsna_bone_age", tmp_path)


def test_rsna_bone_age_names_the_missing_image(tmp_path):
    bone_age_tree(tmp_path)
    (tmp_path / "boneage-training-dataset" / "1380.png").unlink()
    with pytest.raises(DatasetLayoutError, match="no image file for id 1380"):
        prepare_datalist("rsna_bone_age", tmp_path)


def test_rsna_bone_age_accepts_dicom_in_place_of_png():
    datalist = prepare_datalist("rsna_bone_age", SAMPLES / "tasks" / "bone_age")
    assert all(image.endswith(".dcm") for image in _images(datalist))


def test_grazpedwri_reads_osteopenia_1_or_empty_and_balances_by_undersampling(tmp_path):
    datalist = prepare_datalist("grazpedwri_dx", grazpedwri_tree(tmp_path, positives=8, negatives=12))
    everything = [it for s in SPLITS for it in datalist[s]]
    assert _labels(everything) == {0: 8, 1: 8}
    assert datalist["labels"] == {"0": "no osteopenia", "1": "osteopenia"}
    assert {Path(i).parent.name for i in _images(datalist)} == {"images_part1", "images_part2"}


def test_grazpedwri_rejects_an_unreadable_osteopenia_value(tmp_path):
    grazpedwri_tree(tmp_path)
    path = tmp_path / "dataset.csv"
    rows = list(csv.DictReader(path.open()))
    rows[0]["osteopenia"] = "yes"
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    with pytest.raises(DatasetLayoutError, match="osteopenia must be 1 or empty, got 'yes'"):
        prepare_datalist("grazpedwri_dx", tmp_path)


def test_covid19_radiography_uses_covid_and_normal_only_and_accepts_the_download_folder(tmp_path):
    covid_tree(tmp_path / "COVID-19_Radiography_Dataset", covid=8, normal=12)
    datalist = prepare_datalist("covid19_radiography", tmp_path)
    assert _labels([it for s in SPLITS for it in datalist[s]]) == {0: 8, 1: 8}
    assert not any("Lung_Opacity" in image for image in _images(datalist))


def test_covid19_radiography_names_the_missing_class(tmp_path):
    covid_tree(tmp_path)
    for f in (tmp_path / "Normal" / "images").iterdir():
        f.unlink()
    with pytest.raises(DatasetLayoutError, match=r"Normal/images: no images"):
        prepare_datalist("covid19_radiography", tmp_path)


def test_class_folders_reads_dicom_files_without_a_suffix(tmp_path):
    for label, source in enumerate(sorted((SAMPLES / "tasks" / "btmr" / "Testing").iterdir())[:2]):
        for i, dicom in enumerate(sorted(source.iterdir())[:4]):
            (tmp_path / source.name).mkdir(exist_ok=True)
            (tmp_path / source.name / f"IM{i:04d}").write_bytes(dicom.read_bytes())
    datalist = prepare_datalist("class_folders", tmp_path)
    assert len(_images(datalist)) == 8 and datalist["task"]["kind"] == "binary"


def test_train_fraction_cuts_only_the_training_split_and_is_written(tmp_path):
    out = tmp_path / "datalist.json"
    full = prepare_datalist("btmr", btmr_tree(tmp_path / "d", train_per_class=16))
    cut = prepare_datalist("btmr", tmp_path / "d", output_path=out, train_fraction=0.25)
    assert len(cut["training"]) == len(full["training"]) // 4
    assert cut["validation"] == full["validation"] and cut["test"] == full["test"]
    assert json.loads(out.read_text())["train_fraction"] == 0.25


def test_unknown_layout_and_missing_folder_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="unknown dataset layout 'kaggle'"):
        prepare_datalist("kaggle", tmp_path)
    with pytest.raises(DatasetLayoutError, match="missing folder"):
        prepare_datalist("btmr", tmp_path / "nowhere")


# --- network inputs --------------------------------------------------------------------------


def test_imagenet_normalisation_only_for_imagenet_initialisation():
    assert input_mean("imagenet") == (0.485, 0.456, 0.406) and input_std("imagenet") == (0.229, 0.224, 0.225)
    assert input_mean("radiologynet") == (0.0, 0.0, 0.0) and input_std("random") == (1.0, 1.0, 1.0)
    with pytest.raises(ValueError, match="unknown init"):
        input_mean("coco")


def test_load_radiograph_scales_8_and_16_bit_png_and_dicom_to_unit_range(tmp_path):
    eight = LoadRadiograph()(write_image(tmp_path / "a.png", 0.5))
    sixteen = LoadRadiograph()(write_image(tmp_path / "b.png", 0.5, bits=16))
    dicom = LoadRadiograph()(next((SAMPLES / "tasks" / "btmr" / "Testing" / "glioma").iterdir()))
    for image in (eight, sixteen, dicom):
        assert image.shape[0] == 1 and image.dtype == torch.float32
        assert 0.0 <= float(image.min()) and float(image.max()) <= 1.0
    assert abs(float(eight.mean()) - 0.5) < 0.02 and abs(float(sixteen.mean()) - 0.5) < 0.02


def test_load_radiograph_rejects_other_files(tmp_path):
    (tmp_path / "notes.txt").write_text("not an image")
    with pytest.raises(ValueError, match="not a PNG, JPEG or DICOM file"):
        LoadRadiograph()(tmp_path / "notes.txt")


def test_inference_datalist_takes_sex_from_dicom_or_from_a_csv(tmp_path):
    dicoms = inference_datalist(SAMPLES / "tasks" / "bone_age" / "boneage-training-dataset", with_sex=True)
    assert dicoms and {item["sex"] for item in dicoms} == {0.0, 1.0}
    bone_age_tree(tmp_path)
    pngs = inference_datalist(
        tmp_path / "boneage-training-dataset", with_sex=True, sex_csv=tmp_path / "boneage-training-dataset.csv"
    )
    assert np.mean([item["sex"] for item in pngs]) == 0.5


def test_inference_datalist_says_when_the_sex_is_unknown(tmp_path):
    bone_age_tree(tmp_path)
    with pytest.raises(DatasetLayoutError, match=r"sex is not known for 1377.png"):
        inference_datalist(tmp_path / "boneage-training-dataset", with_sex=True)


def _write_many(path, text):
    from radtl.atomic import write_text_atomic

    for _ in range(300):
        write_text_atomic(path, text)


def test_processes_writing_the_same_datalist_do_not_trip_over_each_other(tmp_path):
    """Under torchrun every rank writes the run's datalist.json; none may lose its temporary file."""
    import multiprocessing

    path = tmp_path / "datalist.json"
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_write_many, args=(path, "{}\n")) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert [w.exitcode for w in workers] == [0, 0] and path.read_text() == "{}\n"
    assert list(tmp_path.iterdir()) == [path]
