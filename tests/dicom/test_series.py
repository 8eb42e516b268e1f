"""CT series as checked volumes (radtl.dicom.series), nodule masks from world coordinates
(radtl.transforms.io, radtl.transforms.label) and the CT segmentation layouts (``luna16``, ``ct_series``)."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import itk
import nibabel as nib
import numpy as np
import pydicom
import pytest
import torch
from monai.data import MetaTensor
from monai.transforms import LoadImage
from pydicom.pixels import apply_modality_lut
from pydicom.uid import CTImageStorage, generate_uid

from radtl.data import DatasetLayoutError, prepare_datalist, series_datalist
from radtl.dicom.series import (
    MissingSlicesError,
    MixedGeometryError,
    MixedSeriesError,
    SeriesError,
    UnexpectedModalityError,
    read_series,
)
from radtl.transforms import LoadCTVolume, LoadCTVolumed, NoduleMaskd, nodule_mask
from tests.support.datasets import image_dataset
from tests.support.paths import SAMPLES

LUNA = SAMPLES / "tasks" / "luna_nodule"
CASE = LUNA / "case001"
#: The sample series: 12 axial slices of 64x64, 5 mm in-plane and between slices, first slice at z = 0.
SAMPLE_AFFINE_LPS = np.array([[5.0, 0, 0, -160], [0, 5.0, 0, -160], [0, 0, 5.0, 0], [0, 0, 0, 1]])


def copy_series(source: Path, destination: Path) -> Path:
    shutil.copytree(source, destination)
    return destination


def rewrite(path: Path, **attributes) -> None:
    ds = pydicom.dcmread(path)
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    ds.save_as(path)


def hu_of(path: Path) -> np.ndarray:
    """pydicom's Modality LUT stage over the stored values: the independent HU of one file."""
    ds = pydicom.dcmread(path)
    return apply_modality_lut(ds.pixel_array, ds)


def z_of(path: Path) -> float:
    return float(pydicom.dcmread(path, stop_before_pixels=True).ImagePositionPatient[2])


def load_with_itk(folder: Path) -> MetaTensor:
    return LoadImage(reader="ITKReader", image_only=True, ensure_channel_first=True)(str(folder))


@pytest.fixture
def series(tmp_path) -> Path:
    """A writable copy of sample case001."""
    return copy_series(CASE, tmp_path / "case001")


@pytest.fixture
def shuffled(tmp_path) -> Path:
    """case001 with file names and Instance Numbers in an order unrelated to the slice positions."""
    folder = tmp_path / "shuffled"
    folder.mkdir()
    files = sorted(CASE.iterdir())
    rng = np.random.default_rng(7)
    names, numbers = rng.permutation(len(files)), rng.permutation(len(files))
    for path, name, number in zip(files, names, numbers):
        target = folder / f"img{name:02d}"
        shutil.copy(path, target)
        rewrite(target, InstanceNumber=int(number) + 1)
    assert [z_of(p) for p in sorted(folder.iterdir())] != sorted(z_of(p) for p in folder.iterdir())
    return folder


def write_ct_series(folder: Path, row_cosine, column_cosine, slices: int = 4) -> Path:
    """A tiny uncompressed CT series: ``slices`` images of 5x6, spacing 0.8 (rows) x 1.2 (columns) x 3 mm,
    stacked along row x column, written in an order unrelated to the stacking (names and Instance Numbers)."""
    folder.mkdir(parents=True)
    row_cosine, column_cosine = np.asarray(row_cosine, float), np.asarray(column_cosine, float)
    normal = np.cross(row_cosine, column_cosine)
    study, series, frame = generate_uid(), generate_uid(), generate_uid()
    order = np.random.default_rng(3).permutation(slices)
    for k in range(slices):
        stored = (np.arange(30).reshape(5, 6) * 10 + 1000 * k).astype(np.int16)
        position = np.array([10.0, -20.0, 30.0]) + 3.0 * k * normal
        ds = image_dataset(
            stored,
            SOPClassUID=CTImageStorage,
            Modality="CT",
            PatientID="TILT",
            StudyInstanceUID=study,
            SeriesInstanceUID=series,
            FrameOfReferenceUID=frame,
            InstanceNumber=int(order[k]) + 1,
            ImagePositionPatient=[f"{v:.6f}" for v in position],
            ImageOrientationPatient=[f"{v:.6f}" for v in (*row_cosine, *column_cosine)],
            PixelSpacing=[0.8, 1.2],
            SliceThickness=3.0,
            RescaleIntercept=-1024,
            RescaleSlope=1,
        )
        ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.save_as(folder / f"f{order[k]:02d}.dcm", enforce_file_format=True)
    return folder


# --- reading a series ------------------------------------------------------------------------


def test_slices_are_sorted_by_position_along_the_normal_not_by_file_name_or_instance_number(shuffled):
    volume = read_series(shuffled)
    assert [z_of(p) for p in volume.paths] == [5.0 * k for k in range(12)]
    by_position = sorted(shuffled.iterdir(), key=z_of)
    assert all(np.array_equal(volume.hu[k], hu_of(path)) for k, path in enumerate(by_position))


def test_affine_maps_column_row_slice_index_to_lps_millimetres_from_the_lowest_slice(shuffled):
    volume = read_series(shuffled)
    assert np.array_equal(volume.affine, SAMPLE_AFFINE_LPS)
    for k, ds in enumerate(volume.datasets):
        assert np.allclose(volume.affine @ [0, 0, k, 1], [*map(float, ds.ImagePositionPatient), 1])


def test_hu_is_stored_value_times_slope_plus_intercept():
    path = CASE / "slice006.dcm"
    ds = pydicom.dcmread(path)
    assert (float(ds.RescaleSlope), float(ds.RescaleIntercept)) == (1.0, -1024.0)
    volume = read_series(CASE)
    assert volume.hu.dtype == np.float32 and volume.hu.shape == (12, 64, 64)
    assert np.array_equal(volume.hu[5], apply_modality_lut(ds.pixel_array, ds))
    assert np.array_equal(volume.hu[5], ds.pixel_array * 1.0 - 1024.0)


# --- agreement with ITK (GDCM) ---------------------------------------------------------------


@pytest.fixture(scope="module")
def sample_volumes() -> tuple[MetaTensor, MetaTensor]:
    return LoadCTVolume()(CASE), load_with_itk(CASE)


def test_load_ct_volume_equals_itk_voxel_for_voxel_on_a_sample_series(sample_volumes):
    radtl_volume, itk_volume = sample_volumes
    assert radtl_volume.shape == itk_volume.shape == (1, 64, 64, 12)
    assert torch.equal(radtl_volume.as_tensor(), itk_volume.as_tensor().float())


def test_load_ct_volume_affine_equals_itk_affine_in_ras(sample_volumes):
    radtl_volume, itk_volume = sample_volumes
    assert torch.allclose(radtl_volume.affine, itk_volume.affine.double())
    assert np.array_equal(radtl_volume.affine.numpy(), np.diag([-1, -1, 1, 1]) @ SAMPLE_AFFINE_LPS)


def test_load_ct_volume_records_its_source_series_for_dicom_seg(sample_volumes):
    meta = sample_volumes[0].meta
    assert meta["source_series"] == str(CASE)
    assert meta["series_instance_uid"] == pydicom.dcmread(CASE / "slice001.dcm").SeriesInstanceUID


@pytest.mark.parametrize(
    ("row_cosine", "column_cosine"),
    [
        ((1, 0, 0), (0, 0, -1)),  # coronal
        ((0, 1, 0), (0, 0, -1)),  # sagittal
        ((np.cos(0.5), np.sin(0.5), 0), (0, 0, -1)),  # oblique, rotated about the patient axis
        ((1, 0, 0), (0, np.cos(0.5), -np.sin(0.5))),  # axial tilted about left-right
    ],
    ids=["coronal", "sagittal", "oblique", "tilted"],
)
def test_load_ct_volume_agrees_with_itk_on_a_non_axial_series(tmp_path, row_cosine, column_cosine):
    folder = write_ct_series(tmp_path / "series", row_cosine, column_cosine)
    radtl_volume, itk_volume = LoadCTVolume()(folder), load_with_itk(folder)
    assert radtl_volume.shape == itk_volume.shape == (1, 6, 5, 4)
    assert torch.equal(radtl_volume.as_tensor(), itk_volume.as_tensor().float())
    assert torch.allclose(radtl_volume.affine, itk_volume.affine.double(), atol=1e-5)


# --- a folder that is not one complete series ------------------------------------------------


def test_a_missing_middle_slice_is_reported_as_missing(series):
    (series / "slice006.dcm").unlink()
    with pytest.raises(MissingSlicesError, match="missing"):
        read_series(series)


def test_a_slice_with_another_orientation_is_mixed_geometry(series):
    rewrite(series / "slice004.dcm", ImageOrientationPatient=[1, 0, 0, 0, 0, -1])
    with pytest.raises(MixedGeometryError, match="Image Orientation"):
        read_series(series)


def test_two_slices_at_one_position_are_mixed_geometry(series):
    shutil.copy(series / "slice005.dcm", series / "slice005_copy.dcm")
    rewrite(series / "slice005_copy.dcm", SOPInstanceUID=generate_uid())
    with pytest.raises(MixedGeometryError, match="same position"):
        read_series(series)


def test_a_series_of_another_modality_is_refused_unless_modality_is_none(series):
    for path in series.iterdir():
        rewrite(path, Modality="MR")
    with pytest.raises(UnexpectedModalityError, match="MR"):
        read_series(series)
    assert read_series(series, modality=None).hu.shape == (12, 64, 64)


def test_two_series_in_one_folder_are_mixed_and_both_uids_are_named(series):
    for path in (LUNA / "case002").iterdir():
        shutil.copy(path, series / f"other_{path.name}")
    uids = [pydicom.dcmread(case / "slice001.dcm").SeriesInstanceUID for case in (CASE, LUNA / "case002")]
    with pytest.raises(MixedSeriesError) as raised:
        read_series(series)
    assert all(uid in str(raised.value) for uid in uids)


def test_a_file_that_is_not_dicom_is_named(series):
    (series / "notes.txt").write_text("reading room notes\n")
    with pytest.raises(MixedSeriesError, match="notes.txt"):
        read_series(series)


def test_hidden_files_and_a_dicomdir_are_not_instances(series):
    expected = read_series(series).hu
    (series / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (series / "DICOMDIR").write_bytes(b"not read")
    assert np.array_equal(read_series(series).hu, expected)


@pytest.mark.parametrize("path", ["empty", "slice001.dcm", "nowhere"], ids=["empty-folder", "a-file", "missing"])
def test_an_empty_folder_a_file_or_a_missing_path_is_not_a_series(tmp_path, path):
    (tmp_path / "empty").mkdir()
    shutil.copy(CASE / "slice001.dcm", tmp_path)
    with pytest.raises(SeriesError, match=path):
        read_series(tmp_path / path)


# --- nodule masks from world coordinates ------------------------------------------------------

#: RAS affine of a (40, 40, 16) grid of 0.75 x 0.75 x 2 mm voxels, origin at RAS (10, 20, -30).
ANISOTROPIC = np.array([[0.75, 0, 0, 10.0], [0, 0.75, 0, 20.0], [0, 0, 2.0, -30.0], [0, 0, 0, 1]])
GRID = (40, 40, 16)


def lps_of(index) -> list[float]:
    """The LPS centre of voxel ``index`` of the ANISOTROPIC grid."""
    x, y, z, _ = ANISOTROPIC @ [*index, 1]
    return [-x, -y, z]


def test_nodule_mask_covers_the_voxels_within_half_the_diameter_in_millimetres():
    mask = nodule_mask(GRID, ANISOTROPIC, [[*lps_of((20, 20, 8)), 10.0]])
    assert mask[20, 20, 8] == 1
    assert mask[26, 20, 8] == 1 and mask[27, 20, 8] == 0  # 4.5 mm and 5.25 mm along x
    assert mask[20, 14, 8] == 1 and mask[20, 13, 8] == 0  # along y
    assert mask[20, 20, 10] == 1 and mask[20, 20, 11] == 0  # 4 mm and 6 mm along z


def test_a_large_nodule_mask_holds_the_sphere_volume_in_voxels():
    mask = nodule_mask(GRID, ANISOTROPIC, [[*lps_of((20, 20, 8)), 24.0]])
    sphere_voxels = 4 / 3 * np.pi * 12.0**3 / (0.75 * 0.75 * 2.0)
    assert mask.sum() == pytest.approx(sphere_voxels, rel=0.05)


def test_a_nodule_outside_the_volume_draws_nothing():
    mask = nodule_mask(GRID, ANISOTROPIC, [[*lps_of((20, 20, 60)), 10.0], [*lps_of((-30, 20, 8)), 10.0]])
    assert not mask.any()


def test_nodule_centres_are_ras_when_lps_is_false():
    x, y, z = lps_of((12, 30, 5))
    in_ras = nodule_mask(GRID, ANISOTROPIC, [[-x, -y, z, 6.0]], lps=False)
    assert np.array_equal(in_ras, nodule_mask(GRID, ANISOTROPIC, [[x, y, z, 6.0]]))
    assert in_ras[12, 30, 5] == 1


def grid_image() -> MetaTensor:
    return MetaTensor(torch.zeros(1, *GRID), affine=torch.as_tensor(ANISOTROPIC))


def test_nodule_maskd_draws_the_label_from_nodules_on_the_image_grid():
    nodules = [[*lps_of((20, 20, 8)), 10.0]]
    out = NoduleMaskd()({"image": grid_image(), "nodules": nodules})
    assert out["label"].shape == (1, *GRID)
    assert torch.equal(out["label"].affine, out["image"].affine)
    assert np.array_equal(out["label"][0].numpy(), nodule_mask(GRID, ANISOTROPIC, nodules))


def test_nodule_maskd_keeps_a_provided_label():
    label = torch.ones(1, *GRID)
    out = NoduleMaskd()({"image": grid_image(), "label": label, "nodules": [[*lps_of((20, 20, 8)), 10.0]]})
    assert out["label"] is label


def test_nodule_maskd_without_label_or_nodules_is_a_key_error():
    with pytest.raises(KeyError, match="nodules"):
        NoduleMaskd()({"image": grid_image()})


def test_sample_annotations_mark_soft_tissue_nodules_in_the_lung():
    nodules = [[float(r[c]) for c in ("coordX", "coordY", "coordZ", "diameter_mm")] for r in annotation_rows(CASE)]
    out = NoduleMaskd()(LoadCTVolumed("image")({"image": str(CASE), "nodules": nodules}))
    hu, mask = out["image"][0].numpy(), out["label"][0].numpy().astype(bool)
    assert mask.sum() > 50
    assert hu[mask].mean() > -300 > hu[~mask].mean()


def annotation_rows(case: Path) -> list[dict]:
    uid = pydicom.dcmread(case / "slice001.dcm").SeriesInstanceUID
    with open(LUNA / "annotations.csv", newline="") as f:
        return [row for row in csv.DictReader(f) if row["seriesuid"] == uid]


# --- ct_series layout -------------------------------------------------------------------------


def test_ct_series_validates_on_every_tenth_series_folder_sorted_by_name():
    datalist = prepare_datalist("ct_series", LUNA)
    assert len(datalist["training"]) == 18 and datalist["test"] == []
    assert [Path(item["image"]).name for item in datalist["validation"]] == ["case001", "case011"]


def test_ct_series_split_does_not_change_when_a_mask_replaces_annotations(tmp_path):
    for case in sorted(LUNA.glob("case*"))[:11]:
        shutil.copytree(case, tmp_path / case.name)
    shutil.copy(LUNA / "annotations.csv", tmp_path)
    before = prepare_datalist("ct_series", tmp_path)["validation"]
    (tmp_path / "masks").mkdir()
    nib.save(nib.Nifti1Image(np.zeros((64, 64, 12), np.uint8), np.eye(4)), tmp_path / "masks" / "case011.nii.gz")
    after = prepare_datalist("ct_series", tmp_path)["validation"]
    assert [Path(i["image"]).name for i in after] == [Path(i["image"]).name for i in before] == ["case001", "case011"]
    assert "label" in after[1] and "nodules" in after[0]


def test_ct_series_attaches_each_series_nodules_from_annotations_csv():
    datalist = prepare_datalist("ct_series", LUNA)
    for item in datalist["training"] + datalist["validation"]:
        rows = annotation_rows(Path(item["image"]))
        expected = [[float(r[c]) for c in ("coordX", "coordY", "coordZ", "diameter_mm")] for r in rows]
        assert item["nodules"] == expected and "label" not in item


def test_ct_series_uses_a_provided_mask_as_the_label(tmp_path):
    for case in ("case001", "case002"):
        copy_series(LUNA / case, tmp_path / case)
    shutil.copy(LUNA / "annotations.csv", tmp_path)
    (tmp_path / "masks").mkdir()
    mask = tmp_path / "masks" / "case001.nii.gz"
    itk.imwrite(itk.image_from_array(np.zeros((12, 64, 64), dtype=np.uint8)), str(mask))
    datalist = prepare_datalist("ct_series", tmp_path)
    items = {Path(i["image"]).name: i for i in datalist["training"] + datalist["validation"]}
    assert items["case001"] == {"image": str((tmp_path / "case001").resolve()), "label": str(mask.resolve())}
    assert "nodules" in items["case002"] and "label" not in items["case002"]


# --- luna16 layout ----------------------------------------------------------------------------

LUNA16_ORIGIN = (-40.0, -30.0, -100.0)  # LPS, mm
LUNA16_SPACING = (0.7, 0.8, 2.5)  # x, y, z in mm
LUNA16_UIDS = ("1.3.6.1.4.1.14519.5.2.1.11", "1.3.6.1.4.1.14519.5.2.1.22", "1.3.6.1.4.1.14519.5.2.1.33")


def world_lps(index) -> list[float]:
    """LPS centre of voxel (x, y, z) of the LUNA16 test volumes (identity direction, as LUNA16's)."""
    return [o + i * s for o, i, s in zip(LUNA16_ORIGIN, index, LUNA16_SPACING)]


@pytest.fixture
def luna16_tree(tmp_path) -> Path:
    """subset0/ and subset1/ with three small .mhd volumes; nodules in the first two."""
    for n, uid in enumerate(LUNA16_UIDS):
        image = itk.image_from_array(np.full((10, 24, 20), -1000, dtype=np.int16))  # (z, y, x)
        image.SetOrigin(LUNA16_ORIGIN)
        image.SetSpacing(LUNA16_SPACING)
        (tmp_path / f"subset{n % 2}").mkdir(exist_ok=True)
        itk.imwrite(image, str(tmp_path / f"subset{n % 2}" / f"{uid}.mhd"))
    rows = [
        "seriesuid,coordX,coordY,coordZ,diameter_mm",
        f"{LUNA16_UIDS[0]},{','.join(f'{v:.2f}' for v in world_lps((5, 7, 3)))},6.0",
        f"{LUNA16_UIDS[1]},1.5,2.5,-90.0,4.0",
        f"{LUNA16_UIDS[1]},-3.0,-4.0,-85.0,5.0",
    ]
    (tmp_path / "annotations.csv").write_text("\n".join(rows) + "\n")
    return tmp_path


def test_luna16_items_are_mhd_volumes_with_their_nodules(luna16_tree):
    datalist = prepare_datalist("luna16", luna16_tree)
    items = {Path(i["image"]).stem: i for i in datalist["training"] + datalist["validation"]}
    assert items[LUNA16_UIDS[0]]["image"] == str((luna16_tree / "subset0" / f"{LUNA16_UIDS[0]}.mhd").resolve())
    assert items[LUNA16_UIDS[0]]["nodules"] == [[*(round(v, 2) for v in world_lps((5, 7, 3))), 6.0]]
    assert items[LUNA16_UIDS[1]]["nodules"] == [[1.5, 2.5, -90.0, 4.0], [-3.0, -4.0, -85.0, 5.0]]
    assert items[LUNA16_UIDS[2]]["nodules"] == []


def test_luna16_validates_on_every_tenth_series_sorted_by_seriesuid(luna16_tree):
    datalist = prepare_datalist("luna16", luna16_tree)
    assert [Path(i["image"]).stem for i in datalist["validation"]] == [LUNA16_UIDS[0]]
    assert [Path(i["image"]).stem for i in datalist["training"]] == list(LUNA16_UIDS[1:])
    assert datalist["test"] == []


@pytest.mark.parametrize(
    ("remove", "named"), [("annotations.csv", "annotations.csv"), ("subset*", "subset")], ids=["csv", "subsets"]
)
def test_luna16_names_what_is_missing(luna16_tree, remove, named):
    for path in luna16_tree.glob(remove):
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    with pytest.raises(DatasetLayoutError, match=named):
        prepare_datalist("luna16", luna16_tree)


def test_luna16_names_the_line_of_a_malformed_annotation(luna16_tree):
    with open(luna16_tree / "annotations.csv", "a") as f:
        f.write(f"{LUNA16_UIDS[2]},1.0,two,3.0,4.0\n")
    with pytest.raises(DatasetLayoutError, match="line 5"):
        prepare_datalist("luna16", luna16_tree)


def test_a_luna16_nodule_lands_on_its_voxel_of_the_mhd_volume(luna16_tree):
    item = next(i for i in prepare_datalist("luna16", luna16_tree)["validation"])
    out = NoduleMaskd()(LoadCTVolumed("image")(item))
    assert out["image"].shape == (1, 20, 24, 10)
    mask = out["label"][0].numpy()
    centre = np.argwhere(mask).mean(axis=0)
    assert mask[5, 7, 3] == 1 and np.allclose(centre, (5, 7, 3), atol=0.01)


# --- inference inputs -------------------------------------------------------------------------


def test_series_datalist_of_a_series_folder_is_one_item():
    assert series_datalist(CASE) == [{"image": str(CASE)}]


def test_series_datalist_of_a_folder_of_series_folders_is_one_item_per_folder():
    items = series_datalist(LUNA)
    assert items == [{"image": str(case)} for case in sorted(LUNA.glob("case*"))]
