"""DICOM Segmentation objects of masks on a CT series (radtl.dicom.seg, SaveDicomSeg) and the study's
false-negative Dice loss (radtl.losses)."""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import subprocess
import warnings

import highdicom as hd
import numpy as np
import pydicom
import pytest
import torch
from monai.losses import DiceLoss
from pydicom.sr.codedict import codes

from radtl.dicom.seg import (
    LUNG_NODULE,
    Algorithm,
    Segment,
    SegmentationSourceError,
    checkpoint_parameters,
    derivation_source,
    read_segment_map,
    read_segmentation,
    tracked_value,
    value_problem,
    write_segmentation,
)
from radtl.dicom.series import read_series_headers
from radtl.losses import FalseNegativeDiceLoss
from radtl.transforms import LoadCTVolume, NoduleMask, SaveDicomSeg
from tests.support.paths import SAMPLES
from tests.support.tools import dciodvfy_errors, require_tool, requires_tool

LUNA = SAMPLES / "tasks" / "luna_nodule"
CASE = LUNA / "case001"
ALGORITHM = Algorithm("luna_nodule_seg", "0.3.1", {"threshold": "0.5"})
GRID = (64, 64, 12)  # (X, Y, Z) = (column, row, slice) of the sample series


def asymmetric_mask() -> np.ndarray:
    """A block and a lone voxel placed so that a flip or a transpose of any axis moves them."""
    mask = np.zeros(GRID, dtype=np.uint8)
    mask[10:14, 20:23, 2:5] = 1
    mask[40, 50, 9] = 1
    return mask


def probabilities() -> np.ndarray:
    mask = np.zeros(GRID, dtype=np.float32)
    mask[10:14, 20:23, 2:5] = np.linspace(0.05, 1.0, 36, dtype=np.float32).reshape(4, 3, 3)
    mask[40, 50, 9] = 0.5
    return mask


@pytest.fixture(scope="module")
def source():
    return read_series_headers(CASE)


@pytest.fixture(scope="module")
def written(tmp_path_factory, source) -> dict:
    """One SEG of each kind over case001, written once for the module."""
    folder = tmp_path_factory.mktemp("seg")
    return {
        "binary": write_segmentation(folder / "binary.dcm", asymmetric_mask(), source, ALGORITHM),
        "fractional": write_segmentation(
            folder / "fractional.dcm", probabilities(), source, ALGORITHM, fractional=True
        ),
        "empty": write_segmentation(folder / "empty.dcm", np.zeros(GRID, np.uint8), CASE, ALGORITHM),
        "manual": write_segmentation(folder / "manual.dcm", asymmetric_mask(), source, algorithm=None),
    }


@pytest.fixture(scope="module")
def binary(written) -> pydicom.Dataset:
    return pydicom.dcmread(written["binary"])


# --- what is written reads back --------------------------------------------------------------


def test_a_binary_seg_reads_back_voxel_for_voxel(written, source):
    read = read_segmentation(written["binary"], source)
    assert read.dtype == np.uint8
    assert np.array_equal(read, asymmetric_mask())


def test_each_seg_frame_is_the_mask_slice_of_the_source_image_it_derives_from(binary, source):
    """Checked without read_segmentation: frame (row, column) = mask (Y, X) of the referenced slice."""
    slice_of = {ds.SOPInstanceUID: z for z, ds in enumerate(source.datasets)}
    mask = asymmetric_mask()
    frames = binary.pixel_array
    assert len(frames) == 4  # slices 2, 3, 4 and 9: the SEG omits empty frames
    for frame, item in zip(frames, binary.PerFrameFunctionalGroupsSequence):
        referenced = item.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
        z = slice_of[referenced]
        assert np.array_equal(frame, mask[:, :, z].T)
        assert [float(v) for v in item.PlanePositionSequence[0].ImagePositionPatient] == [-160.0, -160.0, 5.0 * z]


def test_a_fractional_seg_reads_back_within_one_step_of_255(written, source):
    read = read_segmentation(written["fractional"], source)
    assert read.dtype == np.float32
    assert np.abs(read - probabilities()).max() <= 1 / 255


def test_an_empty_mask_reads_back_as_all_zeros(written, source):
    read = read_segmentation(written["empty"], source)
    assert read.shape == GRID and not read.any()


def test_an_empty_mask_keeps_a_frame_for_every_source_slice(written):
    assert int(pydicom.dcmread(written["empty"]).NumberOfFrames) == 12


@requires_tool("dciodvfy", "dicom3tools")
@pytest.mark.parametrize("kind", ["binary", "fractional", "empty", "manual"])
def test_dciodvfy_finds_no_errors_in_the_seg(written, kind):
    report = subprocess.run(
        [require_tool("dciodvfy", "dicom3tools"), str(written[kind])], capture_output=True, text=True, check=False
    )
    assert "Segmentation" in report.stderr  # dciodvfy recognised the IOD it checked against
    assert [line for line in report.stderr.splitlines() if line.startswith("Error")] == []


# --- what the SEG says about its source ------------------------------------------------------


def test_the_seg_references_every_source_instance(binary, written, source):
    uids = {str(ds.SOPInstanceUID) for ds in source.datasets}
    (series,) = binary.ReferencedSeriesSequence
    assert series.SeriesInstanceUID == source.series_instance_uid
    assert {item.ReferencedSOPInstanceUID for item in series.ReferencedInstanceSequence} == uids
    assert {uid for _, _, uid in hd.seg.segread(written["empty"]).get_source_image_uids()} == uids


def test_the_seg_joins_the_source_study_frame_of_reference_and_patient(binary, source):
    first = source.datasets[0]
    for keyword in ("StudyInstanceUID", "FrameOfReferenceUID", "PatientID", "PatientName", "AccessionNumber"):
        assert binary[keyword].value == first[keyword].value, keyword


def test_the_seg_is_a_new_series_and_instance(binary, source):
    assert binary.Modality == "SEG"
    assert binary.SeriesInstanceUID != source.series_instance_uid
    assert binary.SOPInstanceUID not in {ds.SOPInstanceUID for ds in source.datasets}


def code(item: pydicom.Dataset) -> tuple[str, str]:
    return item.CodingSchemeDesignator, item.CodeValue


def test_the_segment_is_coded_as_a_lung_nodule(binary):
    (segment,) = binary.SegmentSequence
    assert code(segment.SegmentedPropertyTypeCodeSequence[0]) == ("SCT", "27925004")  # Nodule
    assert code(segment.SegmentedPropertyCategoryCodeSequence[0]) == ("SCT", "49755003")  # Morphologically abnormal
    assert code(segment.AnatomicRegionSequence[0]) == ("SCT", "39607008")  # Lung


def test_the_segment_names_the_automatic_algorithm_that_made_it(binary):
    (segment,) = binary.SegmentSequence
    (algorithm,) = segment.SegmentationAlgorithmIdentificationSequence
    assert segment.SegmentAlgorithmType == "AUTOMATIC"
    assert (algorithm.AlgorithmName, algorithm.AlgorithmVersion) == ("luna_nodule_seg", "0.3.1")
    assert algorithm.AlgorithmParameters == "threshold=0.5"


def test_a_persons_label_is_a_manual_segment_without_an_algorithm(written, source):
    seg = pydicom.dcmread(written["manual"])
    (segment,) = seg.SegmentSequence
    assert segment.SegmentAlgorithmType == "MANUAL"
    assert "SegmentationAlgorithmIdentificationSequence" not in segment
    assert seg.SeriesDescription == "manual annotation" and seg.ContentDescription == "Lung nodule by manual annotation"
    np.testing.assert_array_equal(read_segmentation(written["manual"], source), asymmetric_mask())


#: Attributes of the sample CT that describe its acquisition or its series, not the SEG's study or patient.
NOT_COPIED = (
    "InstitutionName",
    "KVP",
    "ExposureTime",
    "XRayTubeCurrent",
    "ConvolutionKernel",
    "BodyPartExamined",
    "PatientPosition",
    "AcquisitionDate",
    "SeriesDate",
    "WindowCenter",
    "RescaleIntercept",
    "ImagePositionPatient",
)


def test_acquisition_and_series_attributes_of_the_source_are_not_copied(binary, source):
    first = source.datasets[0]
    assert all(keyword in first for keyword in NOT_COPIED)  # the sample has them all
    assert [keyword for keyword in NOT_COPIED if keyword in binary] == []
    assert binary.SeriesDescription != first.SeriesDescription
    assert (binary.Manufacturer, binary.DeviceSerialNumber) != (first.Manufacturer, first.DeviceSerialNumber)


def test_the_source_institution_appears_nowhere_in_the_seg(binary):
    assert [element.value for element in binary.iterall() if element.keyword == "InstitutionName"] == []


# --- sources with values that break their VR (PS3.5 6.2) --------------------------------------


def with_header(source, **values):
    """``source`` with every instance's header changed (a copy: the module's ``source`` stays as read)."""
    changed = copy.deepcopy(source)
    for ds in changed.datasets:
        for keyword, value in values.items():
            setattr(ds, keyword, value)
    return changed


@pytest.mark.parametrize(
    "keyword, value",
    [("PatientBirthDate", "BIRTHSECRET"), ("PatientBirthDate", "20230231"), ("StudyDate", "2024-01-01"),
     ("StudyTime", "250000"), ("PatientSex", "X"), ("PatientName", "A" * 65), ("AccessionNumber", "A" * 17)],
)
def test_a_value_that_breaks_its_vr_is_a_problem_named_without_the_value(keyword, value, source):
    problem = value_problem(with_header(source, **{keyword: value}).datasets[0][keyword])
    assert problem is not None and value not in problem


@pytest.mark.parametrize(
    "keyword, value",
    [("PatientBirthDate", "19600702"), ("PatientBirthDate", ""), ("StudyTime", "120000.5"), ("PatientSex", "O"),
     ("PatientName", "Doe^Jane^^Dr"), ("ReferringPhysicianName", ""), ("PatientWeight", "79"), ("PatientSize", "1.8")],
)
def test_a_value_that_keeps_its_vr_is_no_problem(keyword, value, source):
    assert value_problem(with_header(source, **{keyword: value}).datasets[0][keyword]) is None


@requires_tool("dciodvfy", "dicom3tools")
def test_a_source_with_an_invalid_birth_date_is_segmented_with_the_date_left_empty(source, tmp_path, caplog):
    invalid = with_header(source, PatientBirthDate="BIRTHSECRET")
    caplog.clear()  # pydicom warns, with the value, when the test sets it
    with caplog.at_level(logging.WARNING, logger="radtl.dicom.seg"):
        path = write_segmentation(tmp_path / "seg.dcm", asymmetric_mask(), invalid, ALGORITHM)
    seg = pydicom.dcmread(path)
    assert "PatientBirthDate" in seg and seg.PatientBirthDate == ""  # Type 2: present, empty
    assert "PatientBirthDate (0010,0030) is not a date YYYYMMDD" in caplog.text and "BIRTHSECRET" not in caplog.text
    assert dciodvfy_errors(path) == []
    assert invalid.datasets[0].PatientBirthDate == "BIRTHSECRET"  # the source is not changed


def test_invalid_type_2_values_are_emptied_and_invalid_type_3_values_left_out(source, tmp_path):
    invalid = with_header(
        source, PatientSex="X", StudyTime="250000", PatientAge="sixty", Occupation="night radiographer"
    )
    seg = pydicom.dcmread(write_segmentation(tmp_path / "seg.dcm", asymmetric_mask(), invalid, ALGORITHM))
    assert (seg.PatientSex, seg.StudyTime) == ("", "")
    assert "PatientAge" not in seg and "Occupation" not in seg
    assert seg.PatientID == source.datasets[0].PatientID  # the valid values are copied as they are


def test_a_missing_type_2_attribute_is_written_empty(source):
    missing = copy.deepcopy(source.datasets[0])
    del missing.PatientBirthDate, missing.AccessionNumber
    cleaned = derivation_source(missing)
    assert (cleaned.PatientBirthDate, cleaned.AccessionNumber) == ("", "")


def test_patient_comments_are_not_copied_into_the_seg(source, tmp_path):
    commented = with_header(source, PatientComments="prefers the morning slot")
    seg = pydicom.dcmread(write_segmentation(tmp_path / "seg.dcm", asymmetric_mask(), commented, ALGORITHM))
    assert "PatientComments" not in seg



def test_a_one_component_patient_name_is_kept_and_never_quoted_in_a_warning(source, tmp_path):
    named = with_header(source, PatientName="Smith")  # valid (PS3.5 6.2.1.2); highdicom would warn with the name
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        seg = pydicom.dcmread(write_segmentation(tmp_path / "seg.dcm", asymmetric_mask(), named, ALGORITHM))
    assert seg.PatientName == "Smith"
    assert not [w for w in caught if "Smith" in str(w.message)]

# --- the checkpoint behind an automatic segmentation -----------------------------------------


def history(folder, best_metric, key_metric="dice") -> None:
    """A ``history.json`` as radtl.engines.TrainingHistory writes it."""
    (folder / "history.json").write_text(json.dumps({
        "key_metric": key_metric, "higher_is_better": True, "max_epochs": 4, "best_metric": best_metric,
        "best_epoch": 1 if best_metric is not None else None,
        "epochs": [{"epoch": 1, "train_loss": 0.99, f"val_{key_metric}": best_metric}], "epochs_run": 4,
    }))


@pytest.fixture
def checkpoint(tmp_path):
    path = tmp_path / "model.pt"
    torch.save({"model": {"weight": torch.zeros(3)}}, path)
    return path


def test_the_checkpoint_hash_and_best_validation_score_are_algorithm_parameters(checkpoint, caplog):
    history(checkpoint.parent, 0.8123456)
    with caplog.at_level(logging.WARNING, logger="radtl.dicom.seg"):
        parameters = checkpoint_parameters(checkpoint)
    assert parameters == {
        "checkpoint_sha256": hashlib.sha256(checkpoint.read_bytes()).hexdigest(),
        "best_val_dice": "0.8123",
        "best_epoch": "1",
    }
    assert caplog.records == []


@pytest.mark.parametrize("best", [0.0, None], ids=["dice-0", "never-validated"])
def test_a_checkpoint_whose_history_shows_it_learned_nothing_is_warned_about(checkpoint, caplog, best):
    history(checkpoint.parent, best)
    with caplog.at_level(logging.WARNING, logger="radtl.dicom.seg"):
        parameters = checkpoint_parameters(checkpoint)
    assert parameters["best_val_dice"] == ("0.0000" if best == 0.0 else "none")
    assert "learned nothing" in caplog.text and str(checkpoint) in caplog.text


def test_a_checkpoint_without_a_history_is_recorded_with_an_unknown_score(checkpoint):
    assert checkpoint_parameters(checkpoint)["best_validation"] == "unknown"


# --- masks and SEGs that do not fit the source -----------------------------------------------


def test_a_mask_off_the_series_grid_is_refused_naming_the_grid(source, tmp_path):
    with pytest.raises(SegmentationSourceError, match="grid"):
        write_segmentation(tmp_path / "seg.dcm", np.zeros((64, 64, 11), np.uint8), source, ALGORITHM)
    assert not (tmp_path / "seg.dcm").exists()


def test_a_binary_mask_must_hold_only_zeros_and_ones(source, tmp_path):
    with pytest.raises(SegmentationSourceError, match="BINARY"):
        write_segmentation(tmp_path / "seg.dcm", np.full(GRID, 0.3, np.float32), source, ALGORITHM)


def test_a_seg_read_against_another_series_is_refused(written):
    other = read_series_headers(LUNA / "case002")
    with pytest.raises(SegmentationSourceError, match=other.series_instance_uid):
        read_segmentation(written["binary"], other)


def test_a_source_without_sop_instance_uids_is_refused_naming_the_attribute(source, tmp_path):
    emptied = with_header(source, SOPInstanceUID="")
    with pytest.raises(SegmentationSourceError, match=r"SOPInstanceUID \(0008,0018\) in 12 of 12.*does not invent"):
        write_segmentation(tmp_path / "seg.dcm", asymmetric_mask(), emptied, ALGORITHM)
    assert not (tmp_path / "seg.dcm").exists()


# --- one writer, one segment or many ---------------------------------------------------------

LIVER = Segment("Liver", codes.SCT.AnatomicalStructure, codes.SCT.Liver)


def test_the_nodule_seg_is_one_segment_numbered_1_without_a_tracking_id(binary):
    assert [int(item.SegmentNumber) for item in binary.SegmentSequence] == [1]
    assert binary.SegmentSequence[0].SegmentLabel == LUNG_NODULE.label
    assert "TrackingID" not in binary.SegmentSequence[0]


def test_a_map_of_segment_numbers_is_written_as_one_segment_each(source, tmp_path):
    numbers = asymmetric_mask()
    numbers[40, 50, 9] = 2
    path = write_segmentation(tmp_path / "seg.dcm", numbers, source, None, [LUNG_NODULE, LIVER], values=[1, 117])
    mask, records = read_segment_map(path, source)
    np.testing.assert_array_equal(mask, numbers)
    assert [(r.number, r.segment, r.value) for r in records] == [(1, LUNG_NODULE, 1), (2, LIVER, 117)]


def test_stacked_segments_may_overlap_and_read_back_one_by_one(source, tmp_path):
    stacked = np.stack([asymmetric_mask(), asymmetric_mask()])
    path = write_segmentation(tmp_path / "seg.dcm", stacked, source, ALGORITHM, [LUNG_NODULE, LIVER])
    np.testing.assert_array_equal(read_segmentation(path, source, segment_number=2), asymmetric_mask())
    with pytest.raises(SegmentationSourceError, match="segments 1 and 2 both cover 37 voxel"):
        read_segment_map(path, source)


def test_a_segment_laterality_and_colour_read_back_as_written(source, tmp_path):
    left_kidney = Segment("Left kidney", codes.SCT.AnatomicalStructure, codes.SCT.Kidney,
                          property_type_modifier=codes.SCT.Left, colour=(46, 138, 184))
    path = write_segmentation(tmp_path / "seg.dcm", asymmetric_mask(), source, None, left_kidney)
    _, records = read_segment_map(path, source)
    assert records[0].segment == left_kidney


def test_a_tracking_id_that_is_not_a_label_map_value_records_none():
    assert tracked_value(pydicom.Dataset()) is None
    item = pydicom.Dataset()
    item.TrackingID = "Nodule 1"
    assert tracked_value(item) is None
    item.TrackingID = "label map value 117"
    assert tracked_value(item) == 117


# --- SaveDicomSeg ----------------------------------------------------------------------------


def test_save_dicom_seg_writes_into_a_folder_under_the_source_series_uid(tmp_path, source):
    image = LoadCTVolume()(CASE)
    nodule = [[-52.49, 20.46, 35.18, 15.07]]  # case001's first annotation (LPS)
    prediction = NoduleMask()(image, nodule)
    out = SaveDicomSeg(tmp_path, ALGORITHM.name, ALGORITHM.version)(prediction)
    path = tmp_path / f"{source.series_instance_uid}.seg.dcm"
    assert out is prediction and out.meta["dicom_seg"] == str(path)
    assert np.array_equal(read_segmentation(path, source), prediction[0].numpy())


def test_save_dicom_seg_without_a_source_series_is_refused(tmp_path):
    with pytest.raises(SegmentationSourceError, match="source_series"):
        SaveDicomSeg(tmp_path, ALGORITHM.name, ALGORITHM.version)(torch.zeros(1, *GRID))


def test_save_dicom_seg_refuses_a_second_series_for_the_same_file(tmp_path):
    saver = SaveDicomSeg(tmp_path / "one.seg.dcm", ALGORITHM.name, ALGORITHM.version)
    saver(LoadCTVolume()(CASE) * 0)
    with pytest.raises(SegmentationSourceError, match="already holds the SEG of .*case001.*give a folder"):
        saver(LoadCTVolume()(LUNA / "case002") * 0)
    assert read_segmentation(tmp_path / "one.seg.dcm", CASE).shape == GRID  # the first series' SEG is kept


def test_save_dicom_seg_records_the_checkpoint_it_was_given(tmp_path, checkpoint):
    saver = SaveDicomSeg(
        tmp_path, ALGORITHM.name, ALGORITHM.version, algorithm_parameters={"threshold": "0.5"}, checkpoint=checkpoint
    )
    seg = pydicom.dcmread(saver(LoadCTVolume()(CASE) * 0).meta["dicom_seg"])
    parameters = seg.SegmentSequence[0].SegmentationAlgorithmIdentificationSequence[0].AlgorithmParameters
    assert parameters.startswith("threshold=0.5,checkpoint_sha256=") and parameters.endswith("best_validation=unknown")


# --- the study's false-negative Dice loss ----------------------------------------------------


def nodule_target() -> torch.Tensor:
    target = torch.zeros(1, 1, 16, 16, 8)
    target[0, 0, 4:8, 4:8, 2:6] = 1  # 64 voxels
    return target


def test_false_negative_dice_loss_is_zero_for_a_perfect_prediction():
    target = nodule_target()
    assert FalseNegativeDiceLoss(sigmoid=False)(target.clone(), target).item() == pytest.approx(0.0, abs=1e-6)


def missed_and_extra() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The target, a prediction missing 16 of its voxels, and one marking 16 background voxels besides it."""
    target = nodule_target()
    missed = target.clone()
    missed[0, 0, 4:8, 4:8, 2] = 0
    extra = target.clone()
    extra[0, 0, 10:14, 10:14, 2] = 1
    return target, missed, extra


def test_missing_nodule_voxels_costs_more_than_as_many_false_positive_voxels():
    target, missed, extra = missed_and_extra()
    dice, loss = DiceLoss(smooth_nr=1.0, smooth_dr=1.0), FalseNegativeDiceLoss(sigmoid=False)
    assert dice(missed, target) < 1.5 * dice(extra, target)  # plain Dice barely tells the two apart
    assert loss(missed, target) > 8 * loss(extra, target)


def test_the_false_negative_term_is_dice_over_the_nodule_weighted_8():
    target, missed, _ = missed_and_extra()
    plain = DiceLoss(smooth_nr=1.0, smooth_dr=1.0)(missed, target)  # missed lies inside the nodule: p * y = p
    assert torch.allclose(FalseNegativeDiceLoss(sigmoid=False)(missed, target), plain + 8 * plain)


def test_false_positives_cost_only_the_plain_dice_term():
    target, _, extra = missed_and_extra()
    plain = DiceLoss(smooth_nr=1.0, smooth_dr=1.0)(extra, target)
    assert torch.allclose(FalseNegativeDiceLoss(sigmoid=False)(extra, target), plain)


def test_false_negative_dice_loss_without_the_false_negative_term_is_monai_dice():
    torch.manual_seed(0)
    logits, target = torch.randn(2, 1, 8, 8, 4), (torch.rand(2, 1, 8, 8, 4) > 0.7).float()
    expected = DiceLoss(sigmoid=True, smooth_nr=1.0, smooth_dr=1.0)(logits, target)
    assert torch.allclose(FalseNegativeDiceLoss(fn_weight=0)(logits, target), expected)
