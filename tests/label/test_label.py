"""radtl.label's parts in process: the label checks, the tasks built from the bundles' configs, the app's --conf."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import requests
import torch

from tests.support.label_server import INSTALL
from tests.support.orthanc import OrthancServer, orthanc_executable
from tests.support.tools import require_package, requires_tool

require_package("monailabel", INSTALL)

from fastapi import HTTPException

from radtl.dicom.connections import PASSWORD_VARIABLE, USER_VARIABLE
from radtl.dicom.pacs import PacsError, send
from radtl.dicom.series import read_series_headers
from radtl.label.app import RadtlApp, bundle_kind, servable_bundles
from radtl.label.datastore import LabelError, PacsDatastore, checked_label, http_errors, image_grid
from radtl.label.tasks import (
    BundleClassification,
    BundleFineTune,
    BundleRegression,
    BundleSegmentation,
    LabelTaskError,
    patient_sex,
)
from radtl.transforms import LoadCTVolume
from tests.support.label_server import BONE_AGE_SETTINGS, CXR, HAND, LUNA, ct_nifti, with_patient_sex

SERIES = LUNA / "case001"
GRID = (64, 64, 12)


@pytest.fixture(scope="module")
def ct_affine():
    return LoadCTVolume()(SERIES).affine.numpy()


def write_nifti(path, array, affine):
    nib.save(nib.Nifti1Image(np.asarray(array, np.uint8), affine), str(path))
    return path


def test_a_dicom_series_grid_is_columns_rows_slices_with_its_ras_affine(ct_affine):
    shape, affine = image_grid(SERIES)
    assert shape == GRID
    np.testing.assert_allclose(affine, ct_affine)


def test_a_label_on_the_series_grid_is_read_as_its_segment_numbers(tmp_path, ct_affine):
    mask = np.zeros(GRID, np.uint8)
    mask[10:20, 30:40, 2:4] = 1
    np.testing.assert_array_equal(checked_label(write_nifti(tmp_path / "l.nii.gz", mask, ct_affine), SERIES, 1), mask)


@pytest.mark.parametrize(
    ("shape", "shift_mm", "value", "message"),
    [
        ((64, 64, 11), 0.0, 1, "the label's shape (64, 64, 11) is not its image's grid (64, 64, 12)"),
        (GRID, 5.0, 1, "elsewhere in patient space"),
        (GRID, 0.0, 2, "label values must be segment numbers 0..1; found 0, 2"),
    ],
)
def test_a_label_that_does_not_fit_its_image_is_refused_with_the_reason(
    tmp_path, ct_affine, shape, shift_mm, value, message
):
    affine = ct_affine.copy()
    affine[2, 3] += shift_mm
    mask = np.zeros(shape, np.uint8)
    mask[0, 0, 0] = value
    with pytest.raises(LabelError) as caught:
        checked_label(write_nifti(tmp_path / "l.nii.gz", mask, affine), SERIES, segments=1)
    assert message in str(caught.value)


def test_unreadable_and_raw_scribble_labels_are_refused(tmp_path):
    (tmp_path / "broken.nii.gz").write_bytes(b"not a nifti")
    with pytest.raises(LabelError, match="cannot read the label broken.nii.gz"):
        checked_label(tmp_path / "broken.nii.gz", SERIES, 1)
    with pytest.raises(LabelError, match=r"\.bin label"):
        checked_label(tmp_path / "scribbles.bin", SERIES, 1)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """Untrained weights for the segmentation bundle and small classification and regression networks."""
    from radtl.bundle import load_bundle_config

    folder = tmp_path_factory.mktemp("weights")
    paths = {}
    bundles = {"luna_nodule_seg": {}, "covid19_cxr": {"backbone": "mobilenet_v3_small"}, "bone_age": BONE_AGE_SETTINGS}
    for name, settings in bundles.items():
        network = load_bundle_config(name, settings).get_parsed_content("network_def", lazy=False)
        paths[name] = folder / f"{name}.pt"
        torch.save({"model": network.state_dict()}, paths[name])
    return paths


def test_segmentation_labels_a_series_and_its_nifti_copy_on_the_same_grid(checkpoints, tmp_path, one_thread):
    task = BundleSegmentation(
        "luna_nodule_seg", [tmp_path / "missing.pt", checkpoints["luna_nodule_seg"]], {"threshold": 0.0}
    )
    for image in (SERIES, ct_nifti(SERIES, tmp_path / "ct.nii.gz")):
        path, result = task({"image": str(image)})
        label = nib.load(path)
        assert label.shape == GRID and np.asarray(label.dataobj).all()
        assert result["checkpoint"] == str(checkpoints["luna_nodule_seg"])
        assert result["foreground_voxels"] == np.prod(GRID)


def test_classification_of_a_pacs_series_folder_takes_its_one_instance(checkpoints, tmp_path, one_thread):
    task = BundleClassification("covid19_cxr", [checkpoints["covid19_cxr"]], {"backbone": "mobilenet_v3_small"})
    folder = tmp_path / "series"
    folder.mkdir()
    (folder / "1.dcm").write_bytes(CXR.read_bytes())
    _, result = task({"image": str(folder)})
    assert set(result["scores"]) == {"normal", "covid"} and result["prediction"] in result["scores"]
    (folder / "2.dcm").write_bytes(CXR.read_bytes())
    with pytest.raises(LabelTaskError, match="classifies one image; series folder .* holds 2 files"):
        task({"image": str(folder)})


def test_a_task_without_weights_is_not_offered_and_says_what_to_train(tmp_path):
    task = BundleSegmentation("luna_nodule_seg", [tmp_path / "model.pt"])
    assert not task.is_valid()
    with pytest.raises(LabelTaskError, match="luna_nodule_seg has no trained weights"):
        task({"image": str(SERIES)})


def test_fine_tuning_keeps_one_labelled_image_in_five_for_validation(tmp_path):
    task = BundleFineTune("luna_nodule_seg", tmp_path)
    items = [{"image": f"ct{i:02d}", "label": f"l{i:02d}"} for i in range(10)]
    datalist = task.split(items)
    assert [item["image"] for item in datalist["validation"]] == ["ct00", "ct05"]
    assert len(datalist["training"]) == 8
    with pytest.raises(LabelTaskError, match="needs at least 2 images with final labels"):
        task.split(items[:1])


def test_the_app_serves_segmentation_classification_and_regression_bundles_only():
    assert {"luna_nodule_seg", "covid19_cxr", "btmr", "grazpedwri_osteopenia", "bone_age"} <= set(servable_bundles())
    assert bundle_kind("luna_nodule_seg") == "segmentation" and bundle_kind("btmr") == "classification"
    assert bundle_kind("bone_age") == "regression"
    with pytest.raises(ValueError, match="not a segmentation, classification or regression bundle"):
        bundle_kind("radiologynet_pretrain")


def test_bone_age_answers_months_for_a_hand_radiograph_with_its_patients_sex(checkpoints, tmp_path, one_thread):
    task = BundleRegression("bone_age", [checkpoints["bone_age"]], BONE_AGE_SETTINGS)
    answers = {}
    for sex in ("M", "F"):
        _, answers[sex] = task({"image": str(with_patient_sex(HAND, sex, tmp_path / f"{sex}.dcm"))})
    assert answers["M"]["unit"] == "months" and answers["M"]["sex"] == "M" and answers["F"]["sex"] == "F"
    assert answers["M"]["prediction"] != answers["F"]["prediction"], "the sex reaches the network"


@pytest.mark.parametrize(("sex", "found"), [(None, "is absent or empty"), ("", "is absent or empty"), ("O", "is 'O'"),
                                            ("X", "is 'X'")])
def test_an_image_without_the_patients_sex_is_refused_naming_the_attribute(tmp_path, sex, found):
    with pytest.raises(LabelTaskError) as caught:
        patient_sex(with_patient_sex(HAND, sex, tmp_path / "hand.dcm"), "bone_age")
    assert f"Patient's Sex (0010,0040) of hand.dcm {found}; it must be M or F" in str(caught.value)


def test_a_png_has_no_patients_sex_for_bone_age(tmp_path):
    png = tmp_path / "hand.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n")
    with pytest.raises(LabelTaskError, match="bone_age needs the patient's sex from the image's DICOM header"):
        patient_sex(png, "bone_age")


@pytest.mark.parametrize(
    ("value", "message"), [("{threshold", "must be a JSON object"), ("[1]", "must be a JSON object")]
)
def test_bundle_settings_in_conf_must_be_a_json_object(tmp_path, value, message):
    with pytest.raises(ValueError, match=message):
        RadtlApp(str(tmp_path), str(tmp_path / "studies"), {"models": "luna_nodule_seg", "luna_nodule_seg": value})


def test_conf_checkpoint_comes_before_the_apps_and_the_bundles_weights(tmp_path):
    conf = {"models": "luna_nodule_seg", "luna_nodule_seg": json.dumps({"checkpoint": "/weights/mine.pt"})}
    app = RadtlApp(str(tmp_path), str(tmp_path / "studies"), conf)
    first, second, third = app.checkpoints("luna_nodule_seg")
    assert str(first) == "/weights/mine.pt" and second == tmp_path / "model" / "luna_nodule_seg" / "model.pt"
    assert third.parts[-3:] == ("luna_nodule_seg", "models", "model.pt")


def test_a_failed_fetch_leaves_no_half_series_in_the_cache(tmp_path, monkeypatch):
    from radtl.label import datastore as module

    def fetch_one_then_fail(url, study_uid, series_uid, folder):
        folder.mkdir(parents=True)
        (folder / "1.dcm").write_bytes(b"first instance")
        raise PacsError(url, "WADO-RS from", 3, "connection reset")

    store = PacsDatastore("http://127.0.0.1:9/dicom-web", cache_path=str(tmp_path))
    monkeypatch.setattr(store, "_study_of", lambda series_uid: "1.2.3")
    monkeypatch.setattr(module, "fetch_series", fetch_one_then_fail)
    with pytest.raises(PacsError):
        store.get_image_uri("1.2.3.4")
    assert not list(Path(store._datastore.image_path()).glob("1.2.3.4*"))


def test_an_unreachable_pacs_is_a_502_that_names_it():
    with pytest.raises(HTTPException) as caught, http_errors("label for series '1.2'"):
        raise requests.ConnectionError("Connection refused")
    assert caught.value.status_code == 502 and "the PACS failed: Connection refused" in caught.value.detail


@requires_tool("Orthanc", "orthanc")
def test_a_pacs_datastore_logs_in_with_the_pacs_credentials(tmp_path, monkeypatch):
    """MONAI Label's own DICOMweb searches carry RADTL_PACS_* as radtl's transfers do (docs/pacs.md)."""
    monkeypatch.setenv(USER_VARIABLE, "annotator")
    monkeypatch.setenv(PASSWORD_VARIABLE, "pw-label-store")
    with OrthancServer(orthanc_executable(), users={"annotator": "pw-label-store"}) as orthanc:
        send(sorted((LUNA / "case001").iterdir()), orthanc.dicomweb_url)
        store = PacsDatastore(orthanc.dicomweb_url, cache_path=str(tmp_path))
        assert store.list_images() == [read_series_headers(LUNA / "case001").series_instance_uid]
