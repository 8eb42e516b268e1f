"""Enhanced (multi-frame) CT read as a series: one instance whose frames are the slices, placed by their functional
groups (PS3.3 C.7.6.16), giving the same volume and affine as the single-frame series it was converted from.

The enhanced instance is made from a real series, TotalSegmentator's 20 Siemens CT slices (their empty Study,
Series and SOP Instance UIDs and SOP Class UID filled in here), by highdicom's Legacy Converted Enhanced CT
converter (PS3.3 A.70), with the slices given in shuffled order so that frame order is not slice order.
"""

from __future__ import annotations

import copy
import random
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian

from radtl.dicom.seg import read_segmentation, write_segmentation
from radtl.dicom.series import MixedGeometryError, read_series, read_series_headers
from radtl.dicom.sr import read_nodule_report
from radtl.transforms import LoadCTVolume
from tests.support.real_data import corpus
from tests.support.segmentation import radtl_segment, untrained_unet
from tests.support.tools import dciodvfy_errors, requires_tool

LEGACY_CONVERTED_ENHANCED_CT = "1.2.840.10008.5.1.4.1.1.2.2"


def filled_in(source: Path) -> list[Dataset]:
    """TotalSegmentator's slices, decompressed, with the UIDs and SOP Class UID its files leave empty."""
    study, series, frame_of_reference = hd.UID(), hd.UID(), hd.UID()
    datasets = []
    for path in sorted(source.iterdir()):
        ds = pydicom.dcmread(path)
        ds.decompress()
        ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = hd.UID()
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
        ds.FrameOfReferenceUID = ds.get("FrameOfReferenceUID") or frame_of_reference
        datasets.append(ds)
    return datasets


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> tuple[Path, Path]:
    """``(single-frame series folder, folder of its one Legacy Converted Enhanced CT instance)``."""
    root = tmp_path_factory.mktemp("enhanced-ct")
    datasets = filled_in(corpus("totalsegmentator") / "example_ct_dicom")
    single = root / "single"
    single.mkdir()
    for ds in datasets:
        ds.save_as(single / f"{ds.SOPInstanceUID}.dcm", enforce_file_format=True)
    shuffled = datasets[:]
    random.Random(24).shuffle(shuffled)
    enhanced = hd.legacy.LegacyConvertedEnhancedCTImage(
        shuffled, series_instance_uid=hd.UID(), series_number=2, sop_instance_uid=hd.UID(), instance_number=1,
        transfer_syntax_uid=ExplicitVRLittleEndian,
    )
    (root / "enhanced").mkdir()
    enhanced.save_as(root / "enhanced" / "ct.dcm", enforce_file_format=True)
    return single, root / "enhanced"


def edited_copy(folder: Path, tmp_path: Path, edit) -> Path:
    """The enhanced instance of ``folder`` with ``edit(dataset)`` applied, alone in a new folder."""
    ds = pydicom.dcmread(folder / "ct.dcm")
    edit(ds)
    (tmp_path / "edited").mkdir()
    ds.save_as(tmp_path / "edited" / "ct.dcm", enforce_file_format=True)
    return tmp_path / "edited"


def test_the_converted_instance_is_one_multi_frame_enhanced_ct(folders):
    _, enhanced = folders
    ds = pydicom.dcmread(enhanced / "ct.dcm", stop_before_pixels=True)
    assert ds.SOPClassUID == LEGACY_CONVERTED_ENHANCED_CT and int(ds.NumberOfFrames) == 20


def test_an_enhanced_ct_reads_as_the_same_hu_volume_and_affine_as_its_single_frame_series(folders):
    single, enhanced = (read_series(folder) for folder in folders)
    assert enhanced.shape == single.shape == (20, 512, 512)
    np.testing.assert_allclose(enhanced.affine, single.affine, atol=1e-6)
    np.testing.assert_array_equal(enhanced.hu, single.hu)


def test_frames_are_sorted_along_the_normal_not_by_frame_number(folders):
    series = read_series_headers(folders[1])
    assert series.multiframe and sorted(series.frames) == list(range(1, 21))
    assert series.frames != tuple(range(1, 21)), "the fixture stores the slices shuffled"
    ds = series.datasets[0]
    along_normal = [
        float(np.dot(ds.PerFrameFunctionalGroupsSequence[number - 1].PlanePositionSequence[0].ImagePositionPatient,
                     np.cross(series.affine[:3, 0], series.affine[:3, 1])))
        for number in series.frames
    ]
    assert along_normal == sorted(along_normal)


def test_load_ct_volume_gives_the_same_tensor_for_both(folders):
    single, enhanced = (LoadCTVolume()(folder) for folder in folders)
    np.testing.assert_array_equal(enhanced.numpy(), single.numpy())
    np.testing.assert_allclose(enhanced.affine.numpy(), single.affine.numpy(), atol=1e-6)


def test_a_per_frame_rescale_applies_to_its_own_frame(folders, tmp_path):
    """Pixel Value Transformation in a frame's Per-Frame Functional Groups wins over the shared one (C.7.6.16.2.9)."""
    original = read_series(folders[1])
    frame = original.frames[5]

    def raise_one_frame(ds):
        rescale = copy.deepcopy(ds.SharedFunctionalGroupsSequence[0].PixelValueTransformationSequence)
        rescale[0].RescaleIntercept = float(rescale[0].RescaleIntercept) + 100
        ds.PerFrameFunctionalGroupsSequence[frame - 1].PixelValueTransformationSequence = rescale

    edited = read_series(edited_copy(folders[1], tmp_path, raise_one_frame))
    np.testing.assert_array_equal(edited.hu[5], original.hu[5] + 100)
    np.testing.assert_array_equal(np.delete(edited.hu, 5, axis=0), np.delete(original.hu, 5, axis=0))


def test_a_frame_without_its_plane_position_is_named(folders, tmp_path):
    def drop_position(ds):
        del ds.PerFrameFunctionalGroupsSequence[2].PlanePositionSequence

    with pytest.raises(MixedGeometryError, match=r"1 of 20 frame\(s\) \(e.g. frame 3\) without ImagePositionPatient"):
        read_series_headers(edited_copy(folders[1], tmp_path, drop_position))


def test_a_multi_frame_instance_beside_single_frame_slices_is_refused(folders, tmp_path):
    single, enhanced = folders
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    ds = pydicom.dcmread(enhanced / "ct.dcm")
    ds.SeriesInstanceUID = pydicom.dcmread(next(single.iterdir()), stop_before_pixels=True).SeriesInstanceUID
    ds.save_as(mixed / "enhanced.dcm", enforce_file_format=True)
    for path in list(single.iterdir())[:3]:
        (mixed / path.name).write_bytes(path.read_bytes())
    with pytest.raises(MixedGeometryError, match="1 of them multi-frame .*single-frame slices or one multi-frame"):
        read_series_headers(mixed)


def test_the_real_enhanced_mr_has_its_frames_placed_from_its_functional_groups(tmp_path):
    """heudiconv's Siemens Enhanced MR: three frames, each with its own Plane Orientation (a three-plane scout), so
    its functional groups are read frame by frame, and a volume is refused because the frames are not parallel."""
    (source,) = corpus("heudiconv").glob("MRI_102TD_PHA_S*.dcm")
    folder = tmp_path / "mr"
    folder.mkdir()
    (folder / source.name).write_bytes(source.read_bytes())
    with pytest.raises(MixedGeometryError, match="3 different Image Orientation"):
        read_series_headers(folder, modality=None)


def test_one_frame_of_the_real_enhanced_mr_reads_with_its_plane_from_the_functional_groups(tmp_path):
    """The same file cut to its second frame (Number of Frames 1): read with modality None, it is one slice placed
    by that frame's Plane Position and Orientation and Pixel Measures, its values rescaled by its own Pixel Value
    Transformation."""
    (source,) = corpus("heudiconv").glob("MRI_102TD_PHA_S*.dcm")
    ds = pydicom.dcmread(source)
    frame_bytes = int(ds.Rows) * int(ds.Columns) * int(ds.BitsAllocated) // 8
    second = ds.PerFrameFunctionalGroupsSequence[1]
    expected = ds.pixel_array[1]
    ds.PixelData = ds.PixelData[frame_bytes : 2 * frame_bytes]
    ds.NumberOfFrames = 1
    ds.PerFrameFunctionalGroupsSequence = [second]
    (tmp_path / "mr").mkdir()
    ds.save_as(tmp_path / "mr" / "frame2.dcm", enforce_file_format=True)

    series = read_series(tmp_path / "mr", modality=None)
    assert series.shape == (1, 162, 162) and series.frames == (1,)
    np.testing.assert_allclose(series.affine[:3, 3], [float(v) for v in second.PlanePositionSequence[0].ImagePositionPatient])
    row, column = np.reshape([float(v) for v in second.PlaneOrientationSequence[0].ImageOrientationPatient], (2, 3))
    np.testing.assert_allclose(series.affine[:3, 0], row / np.linalg.norm(row) * 1.6, atol=1e-6)
    np.testing.assert_allclose(series.affine[:3, 1], column / np.linalg.norm(column) * 1.6, atol=1e-6)
    np.testing.assert_array_equal(series.hu[0], expected)  # Rescale Slope 1, Intercept 0


def a_box() -> np.ndarray:
    mask = np.zeros((512, 512, 20), np.uint8)
    mask[100:200, 150:250, 3:6] = 1
    return mask


def frame_positions(seg_path: Path) -> list[tuple[float, ...]]:
    seg = pydicom.dcmread(seg_path)
    return [tuple(float(v) for v in item.PlanePositionSequence[0].ImagePositionPatient)
            for item in seg.PerFrameFunctionalGroupsSequence]


def test_a_seg_of_the_enhanced_ct_puts_each_frame_where_the_single_frame_seg_does(folders, tmp_path):
    single = write_segmentation(tmp_path / "single.seg.dcm", a_box(), folders[0], None)
    enhanced = write_segmentation(tmp_path / "enhanced.seg.dcm", a_box(), folders[1], None)
    assert frame_positions(enhanced) == frame_positions(single) and len(frame_positions(enhanced)) == 3
    seg, source = pydicom.dcmread(enhanced), read_series_headers(folders[1])
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == source.series_instance_uid
    referenced = [item.DerivationImageSequence[0].SourceImageSequence[0] for item in seg.PerFrameFunctionalGroupsSequence]
    assert {item.ReferencedSOPInstanceUID for item in referenced} == {source.datasets[0].SOPInstanceUID}
    assert sorted(int(item.ReferencedFrameNumber) for item in referenced) == sorted(source.frames[3:6])


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return untrained_unet(tmp_path_factory.mktemp("untrained") / "model.pt")


@requires_tool("dciodvfy", "dicom3tools")
def test_radtl_segment_takes_an_enhanced_ct_and_writes_a_valid_seg_its_preview_and_sr(folders, checkpoint, tmp_path):
    sr = tmp_path / "SR.dcm"
    assert radtl_segment(folders[1], tmp_path / "SEG.dcm", checkpoint, "--set", "threshold=0", "--sr", str(sr)) == 0
    assert (tmp_path / "SEG.png").is_file()
    assert dciodvfy_errors(tmp_path / "SR.dcm") == []
    [nodule] = read_nodule_report(tmp_path / "SR.dcm")  # threshold 0: the whole volume is one "nodule"
    assert nodule.volume_mm3 > 0
    assert (read_segmentation(tmp_path / "SEG.dcm", folders[1]) == 1).all()  # threshold 0: every voxel, read back
    seg = pydicom.dcmread(tmp_path / "SEG.dcm")
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == read_series_headers(folders[1]).series_instance_uid
    assert int(seg.NumberOfFrames) == 20
    assert dciodvfy_errors(tmp_path / "SEG.dcm") == []
