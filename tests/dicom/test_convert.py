"""``radtl convert`` on the sample archive: outputs, manifest, bad input, resume, parallel runs."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pydicom.data import get_testdata_file

import radtl.dicom.convert as export
from radtl.cli import main
from radtl.dicom.convert import MANIFEST_COLUMNS, ExportSettings, convert_tree
from radtl.dicom.frames import ConversionOptions

BROKEN = {
    "broken/absurd_dimensions.dcm": "implausible-dimensions",
    "broken/empty.dcm": "not-dicom",
    "broken/not_dicom.dcm": "not-dicom",
    "broken/structured_report.dcm": "no-pixel-data",
    "broken/truncated_header.dcm": "truncated",
    "broken/truncated_pixels.dcm": "bad-pixel-data",
    "broken/unsupported_compression.dcm": "unsupported-transfer-syntax",
}


def read_manifest(out: Path) -> list[dict]:
    with open(out / "manifest.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def rows_for(rows: list[dict], relative: str) -> list[dict]:
    return [row for row in rows if row["source"].endswith(relative)]


@pytest.fixture(scope="module")
def converted(samples, tmp_path_factory):
    """The whole sample folder converted once through the command line."""
    out = tmp_path_factory.mktemp("converted")
    main(["convert", str(samples), str(out), "--size", "64", "--progress", "False"])
    return out, read_manifest(out)


def test_manifest_has_the_documented_columns(converted):
    out, _ = converted
    with open(out / "manifest.csv") as handle:
        assert tuple(handle.readline().strip().split(",")) == MANIFEST_COLUMNS


def test_every_file_gets_at_least_one_row_and_a_known_status(converted, samples):
    _, rows = converted
    sources = {row["source"] for row in rows}
    assert sources == {str(path) for path in samples.rglob("*") if path.is_file() and not path.name.startswith(".")}
    assert {row["status"] for row in rows} <= {"ok", "skipped", "error"}


@pytest.mark.parametrize("relative, code", sorted(BROKEN.items()))
def test_broken_file_gets_one_error_row_with_its_reason(converted, relative, code):
    _, rows = converted
    (row,) = rows_for(rows, relative)
    assert row["status"] == "error" and row["reason"].startswith(f"{code}: ")


def test_ok_rows_point_to_square_8bit_images_of_the_requested_size(converted):
    out, rows = converted
    for row in (r for r in rows if r["status"] == "ok"):
        with Image.open(out / row["output"]) as image:
            assert (image.mode, image.size) == ("L", (64, 64))


def test_ct_series_is_windowed_with_its_first_window(converted):
    _, rows = converted
    assert all(r["voi"].startswith("window 1/2 c=40 w=400") for r in rows_for(rows, "ct/series_001/slice_001.dcm"))


def test_invalid_first_window_falls_through_to_the_second(converted):
    _, rows = converted
    (row,) = rows_for(rows, "cr/chest_multiwindow.dcm")
    assert row["voi"].startswith("window 2/2")


def test_monochrome1_radiographs_are_inverted(converted):
    _, rows = converted
    assert [r["inverted"] for r in rows_for(rows, "cr/hand_mono1.dcm")] == ["1"]
    assert [r["inverted"] for r in rows_for(rows, "dx/hand_mono1_inverse.dcm")] == ["1"]
    assert [r["inverted"] for r in rows_for(rows, "cr/chest_mono2.dcm")] == ["0"]


def test_enhanced_multiframe_frames_get_their_own_window_and_the_flat_one_is_dropped(converted):
    _, rows = converted
    frames = rows_for(rows, "enhanced/enhanced_mr.dcm")
    assert [r["frame"] for r in frames] == ["0", "1", "2", "3"]
    assert len({r["voi"] for r in frames if r["status"] == "ok"}) == 3
    assert frames[2]["status"] == "skipped" and frames[2]["reason"].startswith("uninformative-frame")
    assert frames[0]["output"] == "enhanced/enhanced_mr_frame0000.png"


def test_size_zero_keeps_the_native_size(samples, tmp_path):
    convert_tree(samples / "mr" / "series_001" / "slice_001.dcm", tmp_path, ExportSettings(size=0), progress=False)
    with Image.open(tmp_path / "slice_001.png") as image:
        assert image.size == (192, 192)


def test_paper_formula_differs_from_dicom_by_at_most_one_grey_level(samples, tmp_path):
    source = samples / "ct" / "series_001" / "slice_003.dcm"
    images = {}
    for formula in ("dicom", "paper"):
        main(["convert", str(source), str(tmp_path / formula), "--size", "0", "--formula", formula, "--progress", "False"])
        images[formula] = np.asarray(Image.open(tmp_path / formula / "slice_003.png"), dtype=int)
    assert np.abs(images["dicom"] - images["paper"]).max() <= 1


def test_rerun_on_the_same_output_redoes_nothing(samples, tmp_path, converted):
    first = convert_tree(samples, tmp_path, ExportSettings(size=32), progress=False)
    second = convert_tree(samples, tmp_path, ExportSettings(size=32), progress=False)
    assert second.files == 0 and second.already_done == first.files
    assert len(read_manifest(tmp_path)) == len(converted[1])


def test_crash_mid_run_loses_nothing_and_resume_completes(samples, tmp_path, monkeypatch, converted):
    real, calls = export.convert_file, []

    def crash_on_fifth(*args):
        calls.append(args[0])
        if len(calls) == 5:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(export, "convert_file", crash_on_fifth)
    with pytest.raises(KeyboardInterrupt):
        convert_tree(samples, tmp_path, ExportSettings(size=32), progress=False)
    assert len({row["source"] for row in read_manifest(tmp_path)}) == 4
    monkeypatch.setattr(export, "convert_file", real)
    summary = convert_tree(samples, tmp_path, ExportSettings(size=32), progress=False)
    assert summary.already_done == 4
    rows = read_manifest(tmp_path)
    assert len(rows) == len(converted[1]) and len({(r["source"], r["frame"]) for r in rows}) == len(rows)
    assert not list(tmp_path.rglob("*.tmp"))


def test_a_manifest_line_cut_by_a_crash_is_dropped_on_resume(samples, tmp_path):
    source = samples / "cr"
    convert_tree(source, tmp_path, progress=False)
    with open(tmp_path / "manifest.csv", "a") as handle:
        handle.write("/half/written,0,x.png,o")
    convert_tree(source, tmp_path, progress=False)
    assert [r["source"] for r in read_manifest(tmp_path) if "half" in r["source"]] == []


def test_retry_errors_replaces_old_error_rows(samples, tmp_path):
    convert_tree(samples / "broken", tmp_path, progress=False)
    before = read_manifest(tmp_path)
    summary = convert_tree(samples / "broken", tmp_path, retry_errors=True, progress=False)
    assert summary.files == len(before) and read_manifest(tmp_path) == before


def test_a_rerun_with_other_image_options_is_refused_naming_the_difference(samples, tmp_path, capsys):
    source = samples / "cr"
    main(["convert", str(source), str(tmp_path), "--progress", "False"])
    capsys.readouterr()
    with pytest.raises(SystemExit) as stopped:
        main(["convert", str(source), str(tmp_path), "--size", "224", "--formula", "paper", "--progress", "False"])
    (line,) = capsys.readouterr().err.splitlines()
    assert stopped.value.code == 2 and "--size 256 (now 224)" in line and "--formula 'dicom' (now 'paper')" in line


def test_workers_retry_errors_compression_and_budget_may_change_between_runs(samples, tmp_path):
    convert_tree(samples / "broken", tmp_path, progress=False)
    options = ExportSettings(compress_level=6, conversion=ConversionOptions(max_pixel_bytes=2**31))
    summary = convert_tree(samples / "broken", tmp_path, options, workers=1, retry_errors=True, progress=False)
    assert summary.files == 7


def test_an_out_made_before_options_were_recorded_is_accepted_and_recorded(samples, tmp_path):
    convert_tree(samples / "cr", tmp_path, ExportSettings(size=64), progress=False)
    (tmp_path / "settings.json").unlink()  # as an older radtl left it: a manifest, no settings
    convert_tree(samples / "cr", tmp_path, ExportSettings(size=128), progress=False)
    assert json.loads((tmp_path / "settings.json").read_text())["size"] == 128


def test_a_file_over_the_pixel_budget_is_an_error_row_and_a_larger_budget_converts_it(samples, tmp_path):
    source = samples / "cr" / "chest_multiwindow.dcm"
    convert_tree(source, tmp_path, ExportSettings(conversion=ConversionOptions(max_pixel_bytes=1000)), progress=False)
    (row,) = read_manifest(tmp_path)
    assert row["reason"].startswith("implausible-dimensions: ") and "max_pixel_bytes" in row["reason"]
    convert_tree(source, tmp_path, retry_errors=True, progress=False)
    assert [r["status"] for r in read_manifest(tmp_path)] == ["ok"]


def test_a_deflated_file_is_inflated_and_decoded(tmp_path):
    summary = convert_tree(get_testdata_file("image_dfl.dcm"), tmp_path, progress=False)
    assert summary.files == 1 and summary.statuses["error"] == 0  # a flat test image: skipped by the value policy


def test_summary_counts_rows_by_status_and_reason(samples, tmp_path, capsys):
    main(["convert", str(samples / "broken"), str(tmp_path), "--progress", "False"])
    printed = capsys.readouterr().out
    assert "7 file(s) converted" in printed and "not-dicom" in printed and "error" in printed


def test_two_dask_workers_produce_the_same_manifest(samples, tmp_path, converted):
    summary = convert_tree(samples, tmp_path, ExportSettings(size=64), workers=2, progress=False)
    assert summary.files == len({row["source"] for row in converted[1]})
    key = lambda r: (r["source"], r["frame"])  # noqa: E731
    assert sorted(read_manifest(tmp_path), key=key) == sorted(converted[1], key=key)


def test_missing_source_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file or folder"):
        convert_tree(tmp_path / "nowhere", tmp_path / "out", progress=False)
