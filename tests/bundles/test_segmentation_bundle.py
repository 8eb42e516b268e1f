"""The lung nodule bundle and the clinical loop: train on the sample CT set, write DICOM-SEG, PACS in and out.

The bundle trains once for this module (four epochs of U-Net-ResNet50 on the 18 training series of
``dicom_samples/tasks/luna_nodule``, about half a minute here); the other tests use its checkpoint.
docs/segmentation.md records a full default run.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest

from radtl.cli import main
from radtl.dicom.pacs import find_instances, send
from radtl.dicom.seg import read_segmentation
from radtl.dicom.series import read_series_headers
from radtl.segment import segment
from tests.support.bundles import monai_run
from tests.support.orthanc import fresh_orthanc_fixture, orthanc_fixture, requires_orthanc  # noqa: F401 (fixtures)
from tests.support.paths import REPO
from tests.support.tools import dciodvfy_errors, requires_tool

BUNDLE = "luna_nodule_seg"
CASES = REPO / "dicom_samples" / "tasks" / "luna_nodule"
VALIDATION_CASE = CASES / "case001"  # every 10th series from the first is held out


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """``(output folder, log)`` of four training epochs with the bundle's defaults."""
    out = tmp_path_factory.mktemp("luna_nodule_seg")
    log = monai_run(BUNDLE, "train", output_dir=out, max_epochs=4)
    return out, log


def test_validation_dice_rises_while_training(trained):
    out, log = trained
    history = json.loads((out / "history.json").read_text())
    dice = [epoch["val_dice"] for epoch in history["epochs"]]
    assert history["key_metric"] == "dice" and len(dice) == 4
    assert dice[0] < 0.05, "an untrained network starting at foreground prior 0.01 finds nothing"
    assert max(dice) > dice[0] + 0.2, dice
    assert (out / "model.pt").is_file() and "epoch 4/4" in log


def test_training_holds_out_every_tenth_series(trained):
    out, _ = trained
    datalist = json.loads((out / "datalist.json").read_text())
    assert len(datalist["training"]) == 18 and len(datalist["validation"]) == 2
    assert {Path(item["image"]).name for item in datalist["validation"]} == {"case001", "case011"}


def test_evaluation_reports_dice_and_iou_on_the_validation_series(trained):
    out, _ = trained
    monai_run(BUNDLE, "train", "evaluate", output_dir=out)
    result = json.loads((out / "validation_metrics.json").read_text())
    assert set(result["metrics"]) == {"dice", "iou"}
    assert 0 <= result["metrics"]["iou"] <= result["metrics"]["dice"] <= 1


@requires_tool("dciodvfy", "dicom3tools")
def test_inference_writes_a_valid_seg_per_series(trained):
    out, _ = trained
    monai_run(BUNDLE, "train", "inference", output_dir=out, input_series=VALIDATION_CASE)
    series = read_series_headers(VALIDATION_CASE)
    seg_path = out / "predictions" / f"{series.series_instance_uid}.seg.dcm"
    assert dciodvfy_errors(seg_path) == []
    mask = read_segmentation(seg_path, series)
    assert mask.shape == (64, 64, 12) and set(np.unique(mask)) <= {0, 1}
    seg = pydicom.dcmread(seg_path)
    algorithm = seg.SegmentSequence[0].SegmentationAlgorithmIdentificationSequence[0]
    assert (algorithm.AlgorithmName, algorithm.AlgorithmVersion) == (BUNDLE, "0.1.0")


def test_radtl_segment_writes_binary_and_fractional_segs(trained, tmp_path, capsys):
    out, _ = trained
    binary, fractional = tmp_path / "binary.dcm", tmp_path / "fractional.dcm"
    main(["segment", str(VALIDATION_CASE), "--out", str(binary), "--checkpoint", str(out / "model.pt")])
    main(["segment", str(VALIDATION_CASE), "--out", str(fractional), "--checkpoint", str(out / "model.pt"), "--fractional"])
    assert f"SEG: {binary}" in capsys.readouterr().out
    assert pydicom.dcmread(binary).SegmentationType == "BINARY"
    assert pydicom.dcmread(fractional).SegmentationType == "FRACTIONAL"
    probabilities = read_segmentation(fractional, VALIDATION_CASE)
    mask = read_segmentation(binary, VALIDATION_CASE)
    # the mask is the probabilities thresholded at 0.5 (no component is under 14 mm3: a voxel is 125 mm3);
    # FRACTIONAL stores probabilities in steps of 1/255, so only voxels that close to 0.5 may differ
    differ = mask != (probabilities > 0.5)
    assert np.all(np.abs(probabilities[differ] - 0.5) <= 1 / 255)


def test_radtl_segment_without_a_checkpoint_says_how_to_get_one(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["segment", str(VALIDATION_CASE), "--out", str(tmp_path / "seg.dcm"), "--checkpoint", str(tmp_path / "none.pt")])
    assert exit_info.value.code == 2
    assert "no trained weights" in capsys.readouterr().err


def test_radtl_segment_refuses_a_folder_of_two_series(trained, tmp_path, capsys):
    out, _ = trained
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    for case in ("case002", "case003"):
        for path in sorted((CASES / case).iterdir())[:3]:
            (mixed / f"{case}_{path.name}").write_bytes(path.read_bytes())
    with pytest.raises(SystemExit):
        main(["segment", str(mixed), "--out", str(tmp_path / "seg.dcm"), "--checkpoint", str(out / "model.pt")])
    assert "2 series in one folder" in capsys.readouterr().err
    assert not (tmp_path / "seg.dcm").exists()


def _upload(case: Path, url: str) -> tuple[str, str]:
    send(sorted(case.iterdir()), url)
    first = pydicom.dcmread(next(case.iterdir()), stop_before_pixels=True)
    return str(first.StudyInstanceUID), str(first.SeriesInstanceUID)


@requires_orthanc
@pytest.mark.parametrize(
    "fetch_with, send_with", [("dicom_url", "dicomweb_url"), ("dicomweb_url", "dicom_url")], ids=["cget-stow", "wado-cstore"]
)
def test_series_from_the_pacs_comes_back_as_a_seg_in_its_study(trained, orthanc, tmp_path, fetch_with, send_with):
    out, _ = trained
    case = CASES / ("case002" if fetch_with == "dicom_url" else "case003")
    study, series = _upload(case, orthanc.dicom_url)
    result = segment(
        tmp_path / "fetched", tmp_path / "seg.dcm", BUNDLE, checkpoint=out / "model.pt",
        send_to=getattr(orthanc, send_with), fetch_from=getattr(orthanc, fetch_with), study_uid=study, series_uid=series,
    )
    stored = find_instances(orthanc.dicomweb_url, study, modality="SEG")
    assert [record.sop_instance_uid for record in stored] == list(result.sent)
    [seg_path] = result.segs
    seg = pydicom.dcmread(seg_path)
    assert seg.StudyInstanceUID == study and seg.ReferencedSeriesSequence[0].SeriesInstanceUID == series
    assert np.array_equal(read_segmentation(seg_path, tmp_path / "fetched"), read_segmentation(seg_path, case))


@requires_orthanc
def test_a_pacs_that_goes_down_fails_the_send_and_keeps_the_seg(trained, fresh_orthanc, tmp_path, capsys):
    out, _ = trained
    _upload(CASES / "case004", fresh_orthanc.dicom_url)
    fresh_orthanc.stop()
    seg_path = tmp_path / "seg.dcm"
    with pytest.raises(SystemExit) as exit_info:
        main(["segment", str(CASES / "case004"), "--out", str(seg_path), "--checkpoint", str(out / "model.pt"),
              "--send", fresh_orthanc.dicom_url])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "after 3 attempts" in err and "the SEG is kept" in err
    assert read_segmentation(seg_path, CASES / "case004").shape == (64, 64, 12)


def test_multi_gpu_config_trains_the_segmentation_bundle_under_torchrun(tmp_path):
    torchrun = (sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29547")
    log = monai_run(BUNDLE, "train", "multi_gpu_train", prefix=torchrun, output_dir=tmp_path, max_epochs=1)
    assert json.loads((tmp_path / "history.json").read_text())["epochs_run"] == 1
    assert log.count("done: 1 epoch in") == 1


def test_the_3d_variant_is_a_config_override(tmp_path):
    """``train_3d.json`` swaps in a 3D U-Net, 3D patches and a sliding-window inferer; nothing else changes."""
    monai_run(BUNDLE, "train", "train_3d", output_dir=tmp_path, max_epochs=1, patches_per_volume=2)
    history = json.loads((tmp_path / "history.json").read_text())
    assert history["epochs_run"] == 1 and "val_dice" in history["epochs"][0]
