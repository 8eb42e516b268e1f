"""radtl's results in a real Orthanc: ``radtl segment --sr --send`` stores the SEG with its measurement report, and
``radtl results`` (radtl.dicom.pacs.find_results) lists a study's SEG and SR series back through QIDO-RS and C-FIND,
only those radtl made."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from pydicom.uid import generate_uid

from radtl.cli import main
from radtl.dicom.pacs import find_results, send
from radtl.dicom.seg import Algorithm, write_segmentation
from radtl.dicom.series import read_series_headers
from radtl.dicom.sr import write_nodule_report, write_prediction_report
from tests.support.orthanc import fresh_orthanc_fixture, orthanc_fixture  # noqa: F401 (fixtures orthanc, fresh_orthanc)
from tests.test_segment import CASE, checkpoint, radtl_segment  # noqa: F401 (fixture checkpoint)

SERVICES = ("dicomweb_url", "dicom_url")


@pytest.fixture(scope="module")
def stored(orthanc, tmp_path_factory):
    """A nodule SEG and its SR, a classification SR on the same study, and an SR another vendor made, in Orthanc."""
    folder = tmp_path_factory.mktemp("results")
    series = read_series_headers(CASE)
    mask = np.zeros((64, 64, 12), np.uint8)
    mask[10:20, 20:26, 2:5] = 1
    seg = write_segmentation(folder / "n.seg.dcm", mask, series, Algorithm("luna_nodule_seg", "0.3.1"))
    sr = write_nodule_report(folder / "n.sr.dcm", seg, series)
    prediction = write_prediction_report(folder / "c.sr.dcm", series.datasets[0], "covid19_cxr", "0.2.0",
                                         label="normal", probability=0.9)
    other = pydicom.dcmread(sr)
    other.Manufacturer, other.SeriesDescription = "another vendor", "their report"
    other.SeriesInstanceUID = generate_uid()
    other.SOPInstanceUID = other.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    other.save_as(folder / "other.sr.dcm", enforce_file_format=True)
    send([seg, sr, prediction, folder / "other.sr.dcm"], orthanc.dicom_url)
    return str(series.datasets[0].StudyInstanceUID), {
        str(pydicom.dcmread(path, stop_before_pixels=True).SeriesInstanceUID): path.name
        for path in (seg, sr, prediction)
    }


@pytest.mark.parametrize("service", SERVICES)
def test_results_lists_the_seg_and_srs_radtl_made_and_no_other(orthanc, stored, service):
    study, names = stored
    found = find_results(getattr(orthanc, service), study)
    assert {series.series_instance_uid: series.modality for series in found} == {
        uid: "SEG" if name.endswith(".seg.dcm") else "SR" for uid, name in names.items()
    }
    assert {series.series_description for series in found} == {
        "luna_nodule_seg 0.3.1", "luna_nodule_seg 0.3.1 measurements", "covid19_cxr 0.2.0 results"
    }


@pytest.mark.parametrize("service", SERVICES)
def test_results_of_one_algorithm_are_only_its_own(orthanc, stored, service):
    study, _ = stored
    found = find_results(getattr(orthanc, service), study, algorithm="covid19_cxr")
    assert [(series.modality, series.series_description) for series in found] == [("SR", "covid19_cxr 0.2.0 results")]


def test_a_study_without_results_lists_none(orthanc, stored):
    assert find_results(orthanc.dicomweb_url, generate_uid()) == []


def test_segment_sends_the_sr_with_the_seg_and_radtl_results_lists_both(
    fresh_orthanc, checkpoint, tmp_path, capsys  # noqa: F811
):
    out, sr = tmp_path / "case001.seg.dcm", tmp_path / "case001.sr.dcm"
    assert radtl_segment(CASE, out, checkpoint, "--sr", str(sr), "--send", fresh_orthanc.dicomweb_url,
                         "--nopreview") == 0
    assert "2 instance(s) stored" in capsys.readouterr().out
    study = str(pydicom.dcmread(out, stop_before_pixels=True).StudyInstanceUID)
    main(["results", study, "--pacs", fresh_orthanc.dicom_url])
    printed = capsys.readouterr().out.splitlines()
    assert printed[-1] == f"2 radtl result series in study {study}"
    assert sorted(line.split()[0] for line in printed[:-1]) == ["SEG", "SR"]


def test_results_refuses_a_study_uid_that_is_not_a_uid(orthanc, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["results", "1.2.x", "--pacs", orthanc.dicomweb_url])
    assert exit_info.value.code == 2 and "not a Study Instance UID" in capsys.readouterr().err




def test_a_bundles_inference_sends_its_srs_and_results_lists_them(fresh_orthanc, tmp_path):
    from tests.bundles.test_result_reports import BTMR, LABELS, run_inference, untrained

    images, out = tmp_path / "images", tmp_path / "out"
    images.mkdir()
    (images / BTMR[0].name).write_bytes(BTMR[0].read_bytes())
    untrained(out, num_classes=len(LABELS))
    assert run_inference("btmr", images, out, f"sr_output={out / 'sr'}", f"send={fresh_orthanc.dicom_url}") == 0
    study = str(pydicom.dcmread(BTMR[0], stop_before_pixels=True).StudyInstanceUID)
    [series] = find_results(fresh_orthanc.dicomweb_url, study, algorithm="btmr")
    assert (series.modality, series.instances) == ("SR", 1)
