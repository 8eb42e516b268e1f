"""DICOM SR of radtl's results (radtl.dicom.sr): nodule measurements from a SEG (TID 1500, Comprehensive 3D SR)
and per-image classification and regression results (TID 1500, Comprehensive SR), written, validated by
dciodvfy and read back with highdicom."""

from __future__ import annotations

import math
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest
from pydicom.uid import Comprehensive3DSRStorage, CTImageStorage

from radtl.dicom.seg import Algorithm, SegmentationSourceError, write_segmentation
from radtl.dicom.series import read_series_headers
from radtl.dicom.sr import (
    StructuredReportError,
    measure_nodules,
    read_nodule_report,
    read_prediction_report,
    sr_path,
    write_nodule_report,
    write_prediction_report,
)
from tests.support.paths import SAMPLES
from tests.support.real_data import corpus
from tests.support.tools import dciodvfy_errors, requires_tool

CASE = SAMPLES / "tasks" / "luna_nodule" / "case001"  # 64 x 64 x 12, 5 mm voxels, origin (-160, -160, 0) LPS
GRID = (64, 64, 12)
ALGORITHM = Algorithm("luna_nodule_seg", "0.3.1", {"threshold": "0.5"})
RADIOGRAPH = SAMPLES / "tasks" / "btmr" / "Testing" / "glioma" / "Te-gl_0001.dcm"


def two_nodules() -> np.ndarray:
    """A 10 x 6 x 3 voxel box and a lone voxel: two components of known size and place."""
    mask = np.zeros(GRID, dtype=np.uint8)
    mask[10:20, 20:26, 2:5] = 1
    mask[40, 50, 9] = 1
    return mask


@pytest.fixture(scope="module")
def source():
    return read_series_headers(CASE)


@pytest.fixture(scope="module")
def nodule_sr(tmp_path_factory, source):
    folder = tmp_path_factory.mktemp("sr")
    seg = write_segmentation(folder / "nodules.seg.dcm", two_nodules(), source, ALGORITHM)
    return seg, write_nodule_report(folder / "nodules.sr.dcm", seg, source)


# --- measuring -------------------------------------------------------------------------------


def test_a_box_measures_its_volume_diagonal_and_centre_on_an_anisotropic_grid():
    affine = np.diag([0.7, 0.7, 2.5, 1.0])
    affine[:3, 3] = (-100.0, 50.0, 10.0)
    mask = np.zeros((30, 30, 8), dtype=bool)
    mask[5:15, 3:9, 2:6] = True  # 10 x 6 pixels on 4 slices
    [nodule] = measure_nodules(mask, affine)
    assert nodule.volume_mm3 == pytest.approx(10 * 6 * 4 * 0.7 * 0.7 * 2.5)
    assert nodule.longest_axial_diameter_mm == pytest.approx(math.hypot(10 * 0.7, 6 * 0.7))
    assert nodule.centroid == pytest.approx((-100 + 9.5 * 0.7, 50 + 5.5 * 0.7, 10 + 3.5 * 2.5))
    assert nodule.slices == (2, 3, 4, 5)


def test_a_sphere_measures_close_to_its_volume_and_diameter():
    radius = 10  # voxels of 1 mm
    x, y, z = np.ogrid[-12:13, -12:13, -12:13]
    mask = x**2 + y**2 + z**2 <= radius**2
    [nodule] = measure_nodules(mask, np.eye(4))
    assert nodule.volume_mm3 == pytest.approx(4 / 3 * math.pi * radius**3, rel=0.02)
    assert 2 * radius <= nodule.longest_axial_diameter_mm <= 2 * radius + 2  # voxel corners add at most a diagonal
    assert nodule.centroid == pytest.approx((12, 12, 12))


def test_diagonally_touching_voxels_are_two_nodules_as_remove_small_objects_counts_them():
    mask = np.zeros((5, 5, 5), dtype=bool)
    mask[1, 1, 1] = mask[2, 2, 1] = True
    assert len(measure_nodules(mask, np.eye(4))) == 2


# --- the nodule measurement report -------------------------------------------------------------


@requires_tool("dciodvfy", "dicom3tools")
def test_the_nodule_report_passes_dciodvfy(nodule_sr):
    assert dciodvfy_errors(nodule_sr[1]) == []


def test_the_nodule_report_is_a_comprehensive_3d_sr_tid_1500_in_the_source_study(nodule_sr, source):
    report = pydicom.dcmread(nodule_sr[1])
    first = source.datasets[0]
    assert report.SOPClassUID == Comprehensive3DSRStorage
    assert report.ContentTemplateSequence[0].TemplateIdentifier == "1500"
    assert (report.StudyInstanceUID, report.PatientID) == (first.StudyInstanceUID, first.PatientID)
    assert report.Manufacturer == "radtl"


def test_each_nodule_reads_back_with_its_volume_diameter_and_centroid(nodule_sr):
    box, voxel = read_nodule_report(nodule_sr[1])
    assert (box.tracking_identifier, voxel.tracking_identifier) == ("Nodule 1", "Nodule 2")
    assert box.volume_mm3 == pytest.approx(10 * 6 * 3 * 125)
    assert box.longest_axial_diameter_mm == pytest.approx(math.hypot(50, 30), abs=1e-3)
    assert box.centroid == pytest.approx((-160 + 14.5 * 5, -160 + 22.5 * 5, 3 * 5))
    assert voxel.volume_mm3 == pytest.approx(125)
    assert voxel.longest_axial_diameter_mm == pytest.approx(5 * math.sqrt(2), abs=1e-3)
    assert voxel.centroid == pytest.approx((-160 + 40 * 5, -160 + 50 * 5, 9 * 5))


def test_each_nodule_references_its_seg_segment_and_the_slices_it_lies_on(nodule_sr, source):
    seg = pydicom.dcmread(nodule_sr[0], stop_before_pixels=True)
    box, voxel = read_nodule_report(nodule_sr[1])
    uids = [str(ds.SOPInstanceUID) for ds in source.datasets]
    assert (box.seg_sop_instance_uid, box.segment_number) == (seg.SOPInstanceUID, 1)
    assert box.source_sop_instance_uids == tuple(uids[2:5])
    assert voxel.source_sop_instance_uids == (uids[9],)


def test_each_measurement_names_the_algorithm_and_version_of_the_seg(nodule_sr):
    assert {(r.algorithm_name, r.algorithm_version) for r in read_nodule_report(nodule_sr[1])} == {
        ("luna_nodule_seg", "0.3.1")
    }


@pytest.fixture(scope="module")
def real_ct(tmp_path_factory) -> Path:
    """TotalSegmentator's 20 real Siemens CT slices (0.977 mm pixels, 2 mm apart), with the UIDs its files leave
    empty filled in (radtl never invents references, so the test does)."""
    folder = tmp_path_factory.mktemp("real-ct")
    study, series, frame_of_reference = hd.UID(), hd.UID(), hd.UID()
    for path in sorted((corpus("totalsegmentator") / "example_ct_dicom").iterdir()):
        ds = pydicom.dcmread(path)
        ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = hd.UID()
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
        ds.FrameOfReferenceUID = ds.get("FrameOfReferenceUID") or frame_of_reference
        ds.save_as(folder / f"{ds.SOPInstanceUID}.dcm", enforce_file_format=True)
    return folder


@requires_tool("dciodvfy", "dicom3tools")
def test_a_box_on_a_real_ct_series_is_measured_in_its_pixel_spacing_and_passes_dciodvfy(tmp_path, real_ct):
    series = read_series_headers(real_ct)
    column, row, between = series.spacing
    mask = np.zeros((512, 512, 20), np.uint8)
    mask[100:140, 200:230, 5:9] = 1  # 40 x 30 pixels on 4 slices
    seg = write_segmentation(tmp_path / "box.seg.dcm", mask, series, ALGORITHM)
    [box] = read_nodule_report(write_nodule_report(tmp_path / "box.sr.dcm", seg, series))
    assert box.volume_mm3 == pytest.approx(40 * 30 * 4 * column * row * between, abs=1e-3)
    assert box.longest_axial_diameter_mm == pytest.approx(math.hypot(40 * column, 30 * row), abs=1e-3)
    expected = series.affine[:3, :3] @ np.array([119.5, 214.5, 6.5]) + series.affine[:3, 3]
    assert box.centroid == pytest.approx(tuple(expected), abs=1e-3)
    assert dciodvfy_errors(tmp_path / "box.sr.dcm") == []


def test_a_seg_that_found_nothing_gives_a_report_with_no_nodule(tmp_path, source):
    seg = write_segmentation(tmp_path / "empty.seg.dcm", np.zeros(GRID, np.uint8), source, ALGORITHM)
    report = write_nodule_report(tmp_path / "empty.sr.dcm", seg, source)
    assert read_nodule_report(report) == []


def test_a_manual_seg_is_refused_because_the_report_names_its_algorithm(tmp_path, source):
    seg = write_segmentation(tmp_path / "manual.seg.dcm", two_nodules(), source, algorithm=None)
    with pytest.raises(StructuredReportError, match="names no algorithm"):
        write_nodule_report(tmp_path / "manual.sr.dcm", seg, source)


def test_an_sr_name_from_outside_input_must_stay_in_its_folder(tmp_path):
    assert sr_path(tmp_path, "1.2.3") == tmp_path / "1.2.3.sr.dcm"
    with pytest.raises(SegmentationSourceError, match="cannot name a file"):
        sr_path(tmp_path, "../1.2.3")


# --- classification and regression results ----------------------------------------------------


@pytest.fixture(scope="module")
def radiograph():
    return pydicom.dcmread(RADIOGRAPH, stop_before_pixels=True)


@pytest.fixture(scope="module")
def class_sr(tmp_path_factory, radiograph):
    path = tmp_path_factory.mktemp("class") / "class.sr.dcm"
    return write_prediction_report(path, radiograph, "btmr", "0.2.0", label="glioma", probability=0.875)


@requires_tool("dciodvfy", "dicom3tools")
def test_the_classification_report_passes_dciodvfy(class_sr):
    assert dciodvfy_errors(class_sr) == []


def test_the_classification_reads_back_with_its_class_probability_model_and_image(class_sr, radiograph):
    record = read_prediction_report(class_sr)
    assert (record.label, record.probability) == ("glioma", 0.875)
    assert (record.algorithm_name, record.algorithm_version) == ("btmr", "0.2.0")
    assert record.image_sop_instance_uid == radiograph.SOPInstanceUID


def test_the_classification_report_is_in_the_images_patient_and_study(class_sr, radiograph):
    report = pydicom.dcmread(class_sr)
    assert (report.PatientID, report.StudyInstanceUID) == (radiograph.PatientID, radiograph.StudyInstanceUID)
    assert report.SeriesInstanceUID != radiograph.SeriesInstanceUID and report.Modality == "SR"


@requires_tool("dciodvfy", "dicom3tools")
def test_a_predicted_bone_age_reads_back_in_months(tmp_path, radiograph):
    path = write_prediction_report(tmp_path / "age.sr.dcm", radiograph, "bone_age", "0.2.0", value=131.25,
                                   unit="months")
    assert dciodvfy_errors(path) == []
    record = read_prediction_report(path)
    assert (record.value, record.unit, record.label) == (131.25, "mo", None)


def test_a_unit_without_a_ucum_code_is_refused(tmp_path, radiograph):
    with pytest.raises(StructuredReportError, match="no UCUM code"):
        write_prediction_report(tmp_path / "x.sr.dcm", radiograph, "m", "1", value=1.0, unit="furlongs")


def test_a_probability_outside_0_1_is_refused(tmp_path, radiograph):
    with pytest.raises(StructuredReportError, match=r"in \[0, 1\]"):
        write_prediction_report(tmp_path / "x.sr.dcm", radiograph, "m", "1", label="a", probability=1.5)
