"""``radtl segment`` on what archives really hold: folders of many series, outputs already there,
sources with invalid attributes, checkpoints that learned nothing.

The network is the bundle's plain U-Net at four channels a level, untrained: it finds nothing, which
is all these tests need, and segments the 20 sample series in about two seconds. Inference on a
trained model is tested in test_segmentation_bundle.py.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image

from radtl.dicom.seg import read_segmentation
from radtl.dicom.seg_preview import CAPTION_HEIGHT, GAP, OUTLINE_COLOUR, PANEL_SIZE
from radtl.dicom.series import read_series_headers
from radtl.segment import segment_series
from tests.support.paths import SAMPLES
from tests.support.segmentation import FEATURES, radtl_segment, untrained_unet
from tests.support.tools import dciodvfy_errors, requires_tool

CASES = SAMPLES / "tasks" / "luna_nodule"
CASE = CASES / "case001"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """Untrained weights that find nothing, alone in their folder."""
    return untrained_unet(tmp_path_factory.mktemp("untrained") / "model.pt")


def series_uid(folder: Path) -> str:
    return read_series_headers(folder).series_instance_uid


# --- item 9: a folder of series --------------------------------------------------------------


def test_a_folder_of_series_and_one_out_file_is_refused_naming_the_series(checkpoint, tmp_path, capsys):
    out = tmp_path / "y.seg.dcm"
    assert radtl_segment(CASES, out, checkpoint) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1
    assert "holds 20 series" in error and f"case001 ({series_uid(CASE)})" in error and "and 17 more" in error
    assert "--out FOLDER/" in error
    assert not out.exists()


def test_an_out_folder_gets_one_seg_per_series_named_by_its_series_uid(checkpoint, tmp_path, capsys):
    out = tmp_path / "segs"
    assert radtl_segment(CASES, f"{out}/", checkpoint) == 0
    printed = capsys.readouterr().out
    folders = sorted(folder for folder in CASES.iterdir() if folder.is_dir())
    expected = {f"{series_uid(folder)}.seg.dcm": folder for folder in folders}
    assert sorted(path.name for path in out.glob("*.dcm")) == sorted(expected)
    assert sorted(path.name for path in out.glob("*.png")) == sorted(name[: -len(".dcm")] + ".png" for name in expected)
    assert "wrote 20 SEG(s)" in printed and printed.count("SEG: ") == 20
    for name, folder in expected.items():  # each SEG is its own series' SEG
        seg = pydicom.dcmread(out / name, stop_before_pixels=True)
        assert f"{seg.ReferencedSeriesSequence[0].SeriesInstanceUID}.seg.dcm" == name
        assert seg.PatientID == pydicom.dcmread(next(folder.iterdir()), stop_before_pixels=True).PatientID


def test_an_existing_folder_as_out_gets_the_seg_of_one_series_under_its_uid(checkpoint, tmp_path):
    assert radtl_segment(CASE, tmp_path, checkpoint) == 0
    assert read_segmentation(tmp_path / f"{series_uid(CASE)}.seg.dcm", CASE).shape == (64, 64, 12)


def test_one_series_to_one_file_writes_that_file(checkpoint, tmp_path, capsys):
    out = tmp_path / "nodules.seg.dcm"
    assert radtl_segment(CASE, out, checkpoint) == 0
    assert f"SEG: {out}" in capsys.readouterr().out
    assert read_segmentation(out, CASE).shape == (64, 64, 12)


def test_each_seg_gets_a_png_preview_beside_it_saying_when_nothing_was_found(checkpoint, tmp_path):
    assert radtl_segment(CASE, tmp_path / "nodules.seg.dcm", checkpoint) == 0  # untrained: nothing segmented
    with Image.open(tmp_path / "nodules.seg.png") as preview:  # the middle slice, captioned
        assert preview.size == (PANEL_SIZE, PANEL_SIZE + CAPTION_HEIGHT)
        assert not (np.asarray(preview.convert("RGB")) == OUTLINE_COLOUR).all(axis=2).any()


def test_the_preview_outlines_what_the_seg_holds(checkpoint, tmp_path):
    """Threshold 0 makes every voxel a nodule: three whole slices, outlined along their edges."""
    assert radtl_segment(CASE, tmp_path / "SEG.dcm", checkpoint, "--set", "threshold=0") == 0
    with Image.open(tmp_path / "SEG.png") as preview:
        assert preview.size == (3 * PANEL_SIZE + 2 * GAP, PANEL_SIZE + CAPTION_HEIGHT)
        pixels = np.asarray(preview.convert("RGB"))
    assert tuple(pixels[0, 0]) == tuple(pixels[PANEL_SIZE - 1, PANEL_SIZE // 2]) == OUTLINE_COLOUR
    assert tuple(pixels[PANEL_SIZE // 2, PANEL_SIZE // 2]) != OUTLINE_COLOUR


def test_no_preview_is_written_when_none_is_asked_for(checkpoint, tmp_path):
    segs = segment_series(CASE, tmp_path / "SEG.dcm", checkpoint=checkpoint, preview=False, backbone="unet",
                          **{"network_def#features": FEATURES}, device="cpu")
    assert segs == ((tmp_path / "SEG.dcm").resolve(),) and not (tmp_path / "SEG.png").exists()


def test_an_existing_seg_is_kept_unless_overwrite_is_given(checkpoint, tmp_path, capsys):
    out = tmp_path / "nodules.seg.dcm"
    out.write_bytes(b"an earlier SEG")
    assert radtl_segment(CASE, out, checkpoint) == 2
    error = capsys.readouterr().err
    assert "1 of 1 SEG(s) already exist" in error and "pass --overwrite" in error
    assert out.read_bytes() == b"an earlier SEG"
    assert radtl_segment(CASE, out, checkpoint, "--overwrite") == 0
    assert read_segmentation(out, CASE).shape == (64, 64, 12)


def test_a_seg_already_in_the_out_folder_stops_the_run_before_anything_is_written(checkpoint, tmp_path, capsys):
    out = tmp_path / "segs"
    out.mkdir()
    (out / f"{series_uid(CASES / 'case007')}.seg.dcm").write_bytes(b"an earlier SEG")
    assert radtl_segment(CASES, out, checkpoint) == 2
    assert "1 of 20 SEG(s) already exist" in capsys.readouterr().err
    assert len(list(out.iterdir())) == 1


def test_a_bad_series_in_the_folder_stops_the_run_before_anything_is_written(checkpoint, tmp_path, capsys):
    series = tmp_path / "series"
    for case in ("case001", "case002"):
        shutil.copytree(CASES / case, series / case)
    (series / "case002" / "slice005.dcm").unlink()  # a gap in case002
    assert radtl_segment(series, tmp_path / "segs/", checkpoint) == 2
    assert "case002: slices missing" in capsys.readouterr().err
    assert not (tmp_path / "segs").exists()


def test_the_same_series_in_two_folders_is_refused(checkpoint, tmp_path, capsys):
    series = tmp_path / "series"
    shutil.copytree(CASE, series / "a")
    shutil.copytree(CASE, series / "b")
    assert radtl_segment(series, tmp_path / "segs/", checkpoint) == 2
    assert f"series {series_uid(CASE)} is in 2 folders (a, b)" in capsys.readouterr().err


def test_segs_the_bundle_did_not_write_are_never_reported(checkpoint, tmp_path, monkeypatch):
    """An old SEG left in place with --overwrite is not counted as written: only a new file is."""
    monkeypatch.setattr("radtl.segment.run_workflow", lambda configs, overrides: None)  # writes nothing
    out = tmp_path / "nodules.seg.dcm"
    out.write_bytes(b"an earlier SEG")
    with pytest.raises(RuntimeError, match="wrote 0 of 1 SEG"):
        segment_series(CASE, out, checkpoint=checkpoint, overwrite=True)


# --- item 10: a source with invalid optional attributes --------------------------------------


@requires_tool("dciodvfy", "dicom3tools")
def test_a_series_with_an_invalid_birth_date_is_segmented_and_the_value_never_printed(checkpoint, tmp_path, capsys):
    series = tmp_path / "series"
    series.mkdir()
    for path in sorted(CASE.iterdir()):
        ds = pydicom.dcmread(path)
        ds.PatientBirthDate = "BIRTHSECRET"
        ds.PatientComments = "prefers the morning slot"
        ds.save_as(series / path.name)
    capsys.readouterr()  # pydicom warns, with the value, when the test writes it
    out = tmp_path / "nodules.seg.dcm"
    assert radtl_segment(series, out, checkpoint) == 0
    printed = capsys.readouterr()
    assert "PatientBirthDate (0010,0030) is not a date YYYYMMDD" in printed.out + printed.err
    assert "BIRTHSECRET" not in printed.out + printed.err
    seg = pydicom.dcmread(out)
    assert seg.PatientBirthDate == "" and "PatientComments" not in seg  # item 12 too
    assert dciodvfy_errors(out) == []


# --- item 11: the checkpoint behind the SEG --------------------------------------------------


def trained_for(checkpoint: Path, folder: Path, best_dice: float) -> Path:
    """``checkpoint`` copied into ``folder`` with a training history whose best validation Dice is ``best_dice``."""
    folder.mkdir()
    shutil.copy(checkpoint, folder / "model.pt")
    (folder / "history.json").write_text(json.dumps({
        "key_metric": "dice", "higher_is_better": True, "max_epochs": 4, "best_metric": best_dice, "best_epoch": 1,
        "epochs_to_convergence": 1, "epochs_run": 4, "stopped_early": False,
        "epochs": [{"epoch": e, "train_loss": 1.0, "val_dice": best_dice} for e in range(1, 5)],
    }))
    return folder / "model.pt"


def algorithm_parameters(seg_path: Path) -> dict[str, str]:
    seg = pydicom.dcmread(seg_path, stop_before_pixels=True)
    text = seg.SegmentSequence[0].SegmentationAlgorithmIdentificationSequence[0].AlgorithmParameters
    return dict(item.split("=", 1) for item in text.split(","))


def test_a_checkpoint_that_learned_nothing_is_warned_about_and_recorded_in_the_seg(checkpoint, tmp_path, capsys):
    learned_nothing = trained_for(checkpoint, tmp_path / "run", best_dice=0.0)
    out = tmp_path / "nodules.seg.dcm"
    assert radtl_segment(CASE, out, learned_nothing) == 0
    printed = capsys.readouterr()
    logged = printed.out + printed.err
    assert "best validation dice was 0.0" in logged and "learned nothing" in logged
    parameters = algorithm_parameters(out)
    assert parameters["checkpoint_sha256"] == hashlib.sha256(learned_nothing.read_bytes()).hexdigest()
    assert (parameters["best_val_dice"], parameters["best_epoch"]) == ("0.0000", "1")
    assert (parameters["backbone"], parameters["threshold"]) == ("unet", "0.5")


def test_a_checkpoint_that_learned_is_recorded_without_a_warning(checkpoint, tmp_path, capsys):
    learned = trained_for(checkpoint, tmp_path / "run", best_dice=0.81)
    out = tmp_path / "nodules.seg.dcm"
    assert radtl_segment(CASE, out, learned) == 0
    assert "learned nothing" not in "".join(capsys.readouterr())
    assert algorithm_parameters(out)["best_val_dice"] == "0.8100"
