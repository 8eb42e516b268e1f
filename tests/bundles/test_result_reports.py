"""Classification and regression results as DICOM SR: a bundle's inference (``radtl run BUNDLE train inference``)
with ``sr_output`` writes one TID 1500 report per DICOM source (radtl.engines.PredictionWriter,
radtl.dicom.sr), a PNG source gets its row but no SR, and ``send`` is a typed setting checked before inference.

Each bundle runs in-process on three images (two DICOM, one PNG) with untrained weights of its smallest backbone,
so a run takes seconds; training is tested in test_bundles.py.
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pydicom
import pytest
import torch
from PIL import Image

from radtl.cli import main
from radtl.dicom.sr import read_prediction_report
from radtl.networks import create
from tests.support.paths import SAMPLES
from tests.support.tools import dciodvfy_errors, requires_tool

BTMR = sorted((SAMPLES / "tasks" / "btmr" / "Testing" / "glioma").glob("*.dcm"))[:2]
BONE_AGE = sorted((SAMPLES / "tasks" / "bone_age" / "boneage-training-dataset").glob("*.dcm"))[:2]
LABELS = ["glioma", "meningioma", "notumor", "pituitary"]


def untrained(output_dir: Path, **network) -> None:
    """The bundle's checkpoint (``output_dir/model.pt``) as CheckpointSaver writes it, untrained."""
    output_dir.mkdir(parents=True, exist_ok=True)
    torch.save({"model": create("mobilenet_v3_small", **network).state_dict()}, output_dir / "model.pt")


def run_inference(bundle: str, images: Path, out: Path, *settings: str) -> int:
    pairs = [f"output_dir={out}", f"input_dir={images}", "backbone=mobilenet_v3_small", "device=cpu", *settings]
    try:
        main(["run", bundle, "train", "inference", *(a for pair in pairs for a in ("--set", pair))])
    except SystemExit as exit_info:
        return exit_info.code
    return 0


@pytest.fixture(scope="module")
def btmr_run(tmp_path_factory):
    """btmr's inference over two DICOM images and one PNG, with SRs."""
    images, out = tmp_path_factory.mktemp("images"), tmp_path_factory.mktemp("btmr")
    for path in BTMR:
        shutil.copy(path, images / path.name)
    Image.new("L", (32, 32), 90).save(images / "photo.png")
    untrained(out, num_classes=len(LABELS))
    assert run_inference("btmr", images, out, f"sr_output={out / 'sr'}") == 0
    rows = {Path(row["image"]).name: row for row in csv.DictReader((out / "predictions" / "predictions.csv").open())}
    return out, rows


def test_each_dicom_source_gets_an_sr_named_by_its_sop_instance_uid(btmr_run):
    out, rows = btmr_run
    uids = sorted(str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID) for path in BTMR)
    assert sorted(path.name for path in (out / "sr").iterdir()) == [f"{uid}.sr.dcm" for uid in uids]
    assert {Path(rows[path.name]["sr"]).name for path in BTMR} == {f"{uid}.sr.dcm" for uid in uids}


def test_a_png_source_gets_its_row_and_says_why_it_has_no_sr(btmr_run):
    _, rows = btmr_run
    assert rows["photo.png"]["sr"] == "none: not a DICOM file" and rows["photo.png"]["prediction"] in LABELS


def test_the_sr_holds_the_rows_class_and_probability_and_the_bundles_name(btmr_run):
    _, rows = btmr_run
    row = rows[BTMR[0].name]
    record = read_prediction_report(row["sr"])
    assert record.label == row["prediction"]
    assert record.probability == pytest.approx(float(row[f"probability_{row['prediction']}"]))
    assert record.algorithm_name == "btmr" and record.algorithm_version
    assert record.image_sop_instance_uid == pydicom.dcmread(BTMR[0], stop_before_pixels=True).SOPInstanceUID


@requires_tool("dciodvfy", "dicom3tools")
def test_the_bundles_srs_pass_dciodvfy(btmr_run):
    out, _ = btmr_run
    for path in (out / "sr").iterdir():
        assert dciodvfy_errors(path) == [], path.name


def test_without_sr_output_no_sr_is_written(tmp_path):
    images, out = tmp_path / "images", tmp_path / "out"
    images.mkdir()
    shutil.copy(BTMR[0], images / BTMR[0].name)
    untrained(out, num_classes=len(LABELS))
    assert run_inference("btmr", images, out) == 0
    assert "sr" not in next(csv.DictReader((out / "predictions" / "predictions.csv").open()))
    assert not (out / "sr").exists()


def test_a_predicted_bone_age_is_reported_in_months(tmp_path):
    images, out = tmp_path / "images", tmp_path / "out"
    images.mkdir()
    shutil.copy(BONE_AGE[0], images / BONE_AGE[0].name)
    out.mkdir()
    network = create("bone_age_regressor", backbone="mobilenet_v3_small")
    torch.save({"model": network.state_dict()}, out / "model.pt")
    assert run_inference("bone_age", images, out, f"sr_output={out / 'sr'}") == 0
    [row] = csv.DictReader((out / "predictions" / "predictions.csv").open())
    record = read_prediction_report(row["sr"])
    assert (record.value, record.unit, record.label) == (pytest.approx(float(row["prediction"])), "mo", None)
    assert record.algorithm_name == "bone_age"


def test_a_send_url_that_is_not_a_pacs_url_is_refused_before_inference(tmp_path, capsys):
    images, out = tmp_path / "images", tmp_path / "out"
    images.mkdir()
    shutil.copy(BTMR[0], images / BTMR[0].name)
    untrained(out, num_classes=len(LABELS))
    assert run_inference("btmr", images, out, f"sr_output={out / 'sr'}", "send=ftp://pacs") == 2
    assert "unknown scheme" in capsys.readouterr().err
    assert not (out / "predictions").exists()
