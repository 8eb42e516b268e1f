"""The radtl MONAI Label app in a real server: a studies folder, then Orthanc over DICOMweb as the datastore.

Each module-scoped server is started with the documented command on a loopback port and stopped at the end.
The checkpoints are untrained; with ``threshold`` 0 the segmentation marks every voxel, so the label's
grid and content are known.
"""

from __future__ import annotations

import gzip
import json
import subprocess
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from pydicom import dcmread

from tests.support.label_server import INSTALL
from tests.support.tools import require_package

require_package("monailabel", INSTALL)

from radtl.dicom.pacs import fetch_series, find_instances, send
from radtl.dicom.seg import read_segmentation
from radtl.dicom.series import read_series_headers
from radtl.label.datastore import PacsDatastore
from radtl.transforms.io.array import LPS_TO_RAS
from tests.support.label_server import (
    BONE_AGE_SETTINGS,
    CXR,
    HAND,
    LUNA,
    LabelServer,
    ct_studies,
    make_app,
    with_patient_sex,
)
from tests.support.orthanc import orthanc_fixture  # noqa: F401 (fixture orthanc)
from tests.support.tools import require_tool, requires_tool

SEGMENTATION_SETTINGS = {"threshold": 0.0}  # every voxel is foreground: the label is known
CLASSIFICATION_SETTINGS = {"backbone": "mobilenet_v3_small"}  # a small network, chosen through --conf
CONF = {
    "models": "luna_nodule_seg,covid19_cxr,bone_age",
    "luna_nodule_seg": json.dumps(SEGMENTATION_SETTINGS),
    "covid19_cxr": json.dumps(CLASSIFICATION_SETTINGS),
    "bone_age": json.dumps(BONE_AGE_SETTINGS),
}
BUNDLES = {
    "luna_nodule_seg": SEGMENTATION_SETTINGS,
    "covid19_cxr": CLASSIFICATION_SETTINGS,
    "bone_age": BONE_AGE_SETTINGS,
}
GRID = (64, 64, 12)  # the sample series: 64 columns, 64 rows, 12 slices


def nifti(response) -> nib.Nifti1Image:
    assert response.status_code == 200, response.text
    return nib.Nifti1Image.from_bytes(gzip.decompress(response.content))


def label_file(mask: np.ndarray, affine: np.ndarray) -> bytes:
    return gzip.compress(nib.Nifti1Image(mask.astype(np.uint8), affine).to_bytes())


def nodule(shape=GRID) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    mask[20:30, 24:34, 3:7] = 1
    return mask


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    """A server over a studies folder with two CTs (NIfTI), a chest radiograph and two hand radiographs (DICOM), one
    of a male patient and one whose Patient's Sex is O."""
    root = tmp_path_factory.mktemp("label-local")
    studies = ct_studies(root)
    (studies / "cxr001.dcm").write_bytes(CXR.read_bytes())
    with_patient_sex(HAND, "M", studies / "hand_m.dcm")
    with_patient_sex(HAND, "O", studies / "hand_o.dcm")
    app = make_app(root, BUNDLES)
    with LabelServer(app, studies, CONF, root) as server:
        yield server


def test_info_lists_the_served_bundles_and_the_fine_tuning_task(local):
    info = local.request("GET", "/info/").json()
    assert info["models"]["luna_nodule_seg"]["type"] == "segmentation"
    assert info["models"]["luna_nodule_seg"]["labels"] == {"nodule": 1}
    assert info["models"]["covid19_cxr"] == info["models"]["covid19_cxr"] | {
        "type": "classification",
        "labels": ["normal", "covid"],
    }
    assert info["models"]["bone_age"]["labels"] == ["months"]
    assert set(info["trainers"]) == {"luna_nodule_seg"}
    assert info["datastore"]["total"] == 5


def test_segmentation_returns_a_label_on_the_image_grid(local, tmp_path):
    label = nifti(local.request("POST", "/infer/luna_nodule_seg", params={"image": "ct001", "output": "image"}))
    image = nib.load(local.studies + "/ct001.nii.gz")
    assert label.shape == image.shape == GRID
    np.testing.assert_allclose(label.affine, image.affine)
    assert np.asarray(label.dataobj).min() == 1, "threshold 0 (set with --conf) marks every voxel"
    params = local.request("POST", "/infer/luna_nodule_seg", params={"image": "ct001", "output": "json"}).json()
    assert params["label_names"] == {"nodule": 1} and params["foreground_voxels"] == np.prod(GRID)


def test_classification_returns_a_label_and_a_score_per_class(local):
    answer = local.request("POST", "/infer/covid19_cxr", params={"image": "cxr001"})
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert set(result["scores"]) == {"normal", "covid"}
    assert sum(result["scores"].values()) == pytest.approx(1.0, abs=1e-5)
    assert result["prediction"] == max(result["scores"], key=result["scores"].get)
    assert result["checkpoint"].endswith("model/covid19_cxr/model.pt")


def test_bone_age_answers_months_with_the_sex_read_from_the_dicom_header(local):
    answer = local.request("POST", "/infer/bone_age", params={"image": "hand_m"})
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert result["unit"] == "months" and result["sex"] == "M" and isinstance(result["prediction"], float)
    assert result["checkpoint"].endswith("model/bone_age/model.pt")


def test_bone_age_refuses_an_image_whose_patients_sex_is_not_m_or_f(local):
    answer = local.request("POST", "/infer/bone_age", params={"image": "hand_o"})
    assert answer.status_code == 422
    assert "Patient's Sex (0010,0040) of hand_o.dcm is 'O'; it must be M or F" in answer.json()["detail"]
    assert local.request("POST", "/infer/bone_age", params={"image": "hand_m"}).status_code == 200


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ("luna_nodule_seg", "output=dicom_seg needs a DICOM series, and image 'ct001' is ct001.nii.gz"),
        ("covid19_cxr", "output=dicom_seg needs a segmentation model; covid19_cxr is a classification model"),
    ],
)
def test_a_dicom_seg_of_what_is_not_a_segmented_dicom_series_is_a_422_saying_why(local, model, message):
    answer = local.request("POST", f"/infer/{model}", params={"image": "ct001", "output": "dicom_seg"})
    assert answer.status_code == 422
    assert message in answer.json()["detail"]


@pytest.mark.parametrize(
    ("path", "image", "status", "message"),
    [
        (
            "/infer/no_such_model",
            "ct001",
            404,
            "no model 'no_such_model'; this server serves luna_nodule_seg, covid19_cxr, bone_age",
        ),
        ("/infer/luna_nodule_seg", "ct999", 404, "no image 'ct999'"),
        ("/infer/covid19_cxr", "ct001", 422, "not a PNG, JPEG or DICOM file"),
    ],
)
def test_a_bad_request_is_an_http_error_with_a_message_and_the_server_keeps_serving(
    local, path, image, status, message
):
    answer = local.request("POST", path, params={"image": image})
    assert answer.status_code == status
    assert message in answer.json()["detail"]
    assert local.request("GET", "/info/").status_code == 200


def test_a_label_of_the_wrong_shape_is_refused_and_one_that_fits_is_saved(local):
    affine = nib.load(local.studies + "/ct001.nii.gz").affine
    wrong = local.request(
        "PUT",
        "/datastore/label",
        params={"image": "ct001", "tag": "final"},
        files={"label": ("ct001.nii.gz", label_file(nodule()[:-1], affine))},
    )
    assert wrong.status_code == 422
    assert "the label's shape (63, 64, 12) is not its image's grid (64, 64, 12)" in wrong.json()["detail"]
    assert not (Path(local.studies) / "labels" / "final" / "ct001.nii.gz").exists()

    saved = local.request(
        "PUT",
        "/datastore/label",
        params={"image": "ct001", "tag": "final"},
        files={"label": ("ct001.nii.gz", label_file(nodule(), affine))},
    )
    assert saved.status_code == 200, saved.text
    stored = nib.load(Path(local.studies) / "labels" / "final" / "ct001.nii.gz")
    np.testing.assert_array_equal(np.asarray(stored.dataobj), nodule())


def test_the_train_task_fine_tunes_the_served_model_on_the_saved_labels(local):
    for image in ("ct001", "ct002"):
        affine = nib.load(f"{local.studies}/{image}.nii.gz").affine
        saved = local.request(
            "PUT",
            "/datastore/label",
            params={"image": image, "tag": "final"},
            files={"label": (f"{image}.nii.gz", label_file(nodule(), affine))},
        )
        assert saved.status_code == 200, saved.text
    model = local.app / "model" / "luna_nodule_seg" / "model.pt"
    before = model.stat().st_mtime_ns

    answer = local.request("POST", "/train/luna_nodule_seg", params={"run_sync": "true"}, json={"max_epochs": 1})
    assert answer.status_code == 200, answer.text
    assert model.stat().st_mtime_ns > before, f"no new model.pt:\n{local.log_tail()}"
    datalist = json.loads((model.parent / "datalist.json").read_text())
    assert len(datalist["training"]) == 1 and len(datalist["validation"]) == 1
    assert json.loads((model.parent / "history.json").read_text())["epochs"]


@pytest.fixture(scope="module")
def pacs(orthanc, tmp_path_factory):
    """A server whose studies are in Orthanc (DICOMweb), holding the sample CT series case001."""
    root = tmp_path_factory.mktemp("label-pacs")
    send(sorted((LUNA / "case001").iterdir()), orthanc.dicomweb_url)
    app = make_app(root, BUNDLES)
    env = {"MONAI_LABEL_DICOMWEB_CACHE_PATH": str(root / "cache")}
    with LabelServer(app, orthanc.dicomweb_url, CONF, root, env) as server:
        yield server, orthanc


@pytest.fixture(scope="module")
def series():
    return read_series_headers(LUNA / "case001")


def test_inference_on_a_pacs_series_fetches_it_and_labels_its_grid(pacs, series):
    server, _ = pacs
    assert server.request("GET", "/datastore/", params={"output": "all"}).status_code == 200
    label = nifti(
        server.request(
            "POST", "/infer/luna_nodule_seg", params={"image": series.series_instance_uid, "output": "image"}
        )
    )
    assert label.shape == GRID


@pytest.fixture(scope="module")
def inferred_seg(pacs, series, tmp_path_factory):
    """What ``/infer/luna_nodule_seg?output=dicom_seg`` answers for the PACS series, saved to a file."""
    server, _ = pacs
    answer = server.request(
        "POST", "/infer/luna_nodule_seg", params={"image": series.series_instance_uid, "output": "dicom_seg"}
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/dicom"
    path = tmp_path_factory.mktemp("inferred") / "luna_nodule_seg.seg.dcm"
    path.write_bytes(answer.content)
    return path


def test_output_dicom_seg_answers_radtls_automatic_seg_of_the_series(inferred_seg, series):
    seg = dcmread(inferred_seg)
    assert seg.Modality == "SEG" and seg.StudyInstanceUID == series.datasets[0].StudyInstanceUID
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == series.series_instance_uid
    (segment,) = seg.SegmentSequence
    assert segment.SegmentAlgorithmType == "AUTOMATIC" and segment.SegmentLabel == "Lung nodule"
    assert segment.SegmentationAlgorithmIdentificationSequence[0].AlgorithmName == "luna_nodule_seg"
    np.testing.assert_array_equal(read_segmentation(inferred_seg, LUNA / "case001"), np.ones(GRID, np.uint8))


@requires_tool("dciodvfy", "dicom3tools")
def test_the_inferred_seg_is_valid_dicom(inferred_seg):
    report = subprocess.run(
        [require_tool("dciodvfy", "dicom3tools"), str(inferred_seg)], capture_output=True, text=True, check=False
    )
    assert not [line for line in report.stderr.splitlines() if line.startswith("Error")], report.stderr


def segmentations(orthanc, study_uid: str) -> set[str]:
    return {record.series_instance_uid for record in find_instances(orthanc.dicomweb_url, study_uid, modality="SEG")}


@pytest.fixture(scope="module")
def stored_seg(pacs, series, tmp_path_factory):
    """The SEG that a final label submitted for the PACS series became, fetched back from Orthanc."""
    server, orthanc = pacs
    study_uid = str(series.datasets[0].StudyInstanceUID)
    before = segmentations(orthanc, study_uid)
    affine = LPS_TO_RAS @ series.affine  # LPS to RAS, as the label the client got
    answer = server.request(
        "PUT",
        "/datastore/label",
        params={"image": series.series_instance_uid, "tag": "final"},
        files={"label": ("label.nii.gz", label_file(nodule(), affine))},
    )
    assert answer.status_code == 200, answer.text
    (new,) = segmentations(orthanc, study_uid) - before
    folder = tmp_path_factory.mktemp("seg")
    (path,) = fetch_series(orthanc.dicomweb_url, study_uid, new, folder)
    return path


def test_a_final_label_goes_to_the_pacs_as_a_manual_dicom_seg_of_the_series(stored_seg, series):
    seg = dcmread(stored_seg)
    assert seg.Modality == "SEG" and seg.StudyInstanceUID == series.datasets[0].StudyInstanceUID
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == series.series_instance_uid
    assert seg.SegmentSequence[0].SegmentAlgorithmType == "MANUAL"
    assert "SegmentationAlgorithmIdentificationSequence" not in seg.SegmentSequence[0]
    np.testing.assert_array_equal(read_segmentation(stored_seg, LUNA / "case001"), nodule())


@requires_tool("dciodvfy", "dicom3tools")
def test_the_stored_seg_is_valid_dicom(stored_seg):
    report = subprocess.run(
        [require_tool("dciodvfy", "dicom3tools"), str(stored_seg)], capture_output=True, text=True, check=False
    )
    assert not [line for line in report.stderr.splitlines() if line.startswith("Error")], report.stderr


def test_a_label_that_does_not_fit_the_series_never_reaches_the_pacs(pacs, series, stored_seg):
    server, orthanc = pacs
    study_uid = str(series.datasets[0].StudyInstanceUID)
    before = segmentations(orthanc, study_uid)
    shifted = LPS_TO_RAS @ series.affine
    shifted[0, 3] += 50.0  # 50 mm to the side
    answer = server.request(
        "PUT",
        "/datastore/label",
        params={"image": series.series_instance_uid, "tag": "final"},
        files={"label": ("label.nii.gz", label_file(nodule(), shifted))},
    )
    assert answer.status_code == 422
    assert "elsewhere in patient space" in answer.json()["detail"]
    assert segmentations(orthanc, study_uid) == before
    assert server.request("GET", "/info/").status_code == 200


def test_labels_in_the_pacs_come_back_as_training_data(pacs, series, stored_seg, tmp_path):
    _, orthanc = pacs
    store = PacsDatastore(orthanc.dicomweb_url, cache_path=str(tmp_path / "fresh-cache"))
    (item,) = store.datalist()
    assert Path(item["image"]).name == series.series_instance_uid
    np.testing.assert_array_equal(np.asarray(nib.load(item["label"]).dataobj), nodule())


def test_a_json_result_is_what_clients_parse(local):
    """The segmentation's JSON travels in the multipart answer as ``params``; clients read label_names there."""
    answer = local.request("POST", "/infer/luna_nodule_seg", params={"image": "ct001"})
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("multipart/")
    assert b'"label_names": {"nodule": 1}' in answer.content
