"""``radtl segment --sr``: the nodule measurement report (radtl.dicom.sr) beside each SEG, written by the
segmentation bundle's inference (radtl.engines.handlers.MeasurementReportWriter) and measured from that SEG.

The networks are the tiny untrained U-Net of tests/support/segmentation.py: one biased to find nothing, one biased to find
everything (the whole 64 x 64 x 12 series of 5 mm voxels is one nodule, of known volume and diameter).
"""

from __future__ import annotations

import math
from pathlib import Path

import pydicom
import pytest

from radtl.dicom.sr import read_nodule_report
from tests.support.segmentation import radtl_segment, untrained_unet
from tests.support.tools import dciodvfy_errors, requires_tool
from tests.test_segment import CASE, CASES, checkpoint, series_uid  # noqa: F401


@pytest.fixture(scope="module")
def finds_everything(tmp_path_factory) -> Path:
    """Untrained weights whose output bias makes every voxel foreground."""
    return untrained_unet(tmp_path_factory.mktemp("everything") / "model.pt", foreground_prior=0.9999)


def test_sr_writes_a_measurement_report_that_reads_back_what_the_seg_holds(finds_everything, tmp_path, capsys):
    out, sr = tmp_path / "case001.seg.dcm", tmp_path / "case001.sr.dcm"
    assert radtl_segment(CASE, out, finds_everything, "--sr", str(sr), "--nopreview") == 0
    assert f"SR: {sr}" in capsys.readouterr().out
    [nodule] = read_nodule_report(sr)
    assert nodule.volume_mm3 == pytest.approx(64 * 64 * 12 * 5**3)
    assert nodule.longest_axial_diameter_mm == pytest.approx(math.hypot(320, 320), abs=1e-3)
    assert nodule.seg_sop_instance_uid == pydicom.dcmread(out, stop_before_pixels=True).SOPInstanceUID
    assert (nodule.algorithm_name, nodule.segment_number) == ("luna_nodule_seg", 1)


@requires_tool("dciodvfy", "dicom3tools")
def test_the_report_of_a_series_where_nothing_was_found_passes_dciodvfy(checkpoint, tmp_path):  # noqa: F811
    sr = tmp_path / "case001.sr.dcm"
    assert radtl_segment(CASE, tmp_path / "case001.seg.dcm", checkpoint, "--sr", str(sr), "--nopreview") == 0
    assert read_nodule_report(sr) == [] and dciodvfy_errors(sr) == []


def test_an_sr_folder_gets_one_report_per_series_beside_its_seg(checkpoint, tmp_path, capsys):  # noqa: F811
    out = f"{tmp_path / 'segs'}/"
    cases = tmp_path / "cases"
    cases.mkdir()
    for name in ("case001", "case002"):
        (cases / name).symlink_to(CASES / name)
    assert radtl_segment(cases, out, checkpoint, "--sr", out, "--nopreview") == 0
    uids = sorted(series_uid(CASES / name) for name in ("case001", "case002"))
    assert sorted(p.name for p in (tmp_path / "segs").glob("*.sr.dcm")) == [f"{uid}.sr.dcm" for uid in uids]
    assert sorted(p.name for p in (tmp_path / "segs").glob("*.seg.dcm")) == [f"{uid}.seg.dcm" for uid in uids]
    assert "wrote 2 SEG(s) and 2 SR(s)" in capsys.readouterr().out


def test_an_existing_sr_is_kept_unless_overwrite_is_given(checkpoint, tmp_path, capsys):  # noqa: F811
    sr = tmp_path / "case001.sr.dcm"
    sr.write_bytes(b"an earlier report")
    assert radtl_segment(CASE, tmp_path / "case001.seg.dcm", checkpoint, "--sr", str(sr)) == 2
    assert "already exist" in capsys.readouterr().err and sr.read_bytes() == b"an earlier report"
    assert radtl_segment(CASE, tmp_path / "case001.seg.dcm", checkpoint, "--sr", str(sr), "--overwrite") == 0
    assert read_nodule_report(sr) == []


def test_one_sr_file_for_several_series_is_refused(checkpoint, tmp_path, capsys):  # noqa: F811
    assert radtl_segment(CASES, f"{tmp_path}/", checkpoint, "--sr", str(tmp_path / "one.sr.dcm")) == 2
    assert "--sr FOLDER/" in capsys.readouterr().err
