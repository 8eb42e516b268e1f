"""The fine-tuning bundles: valid MONAI bundles that train, evaluate and infer from the README commands.

Each bundle runs as a user runs it (``python -m monai.bundle run --config_file ...`` in a
subprocess) on its sample set in ``dicom_samples/tasks/``, with ``--max_epochs 2`` to keep the
suite short; docs/fine-tuning.md records full default runs.
"""

from __future__ import annotations

import csv
import json
import os
import sys
from pathlib import Path

import pytest
import torch
from monai.bundle import verify_metadata

from radtl.data import prepare_datalist
from radtl.networks import create
from tests.support.bundles import monai_run
from tests.support.monai_meta_schema import SCHEMA
from tests.support.paths import REPO

BUNDLES = ("btmr", "bone_age", "grazpedwri_osteopenia", "covid19_cxr")  # image-level tasks; see test_segmentation_bundle
ALL_BUNDLES = (*BUNDLES, "luna_nodule_seg")
METRICS = {"btmr": {"f1", "accuracy"}, "bone_age": {"mae", "rmse"}}
INFERENCE_INPUTS = {
    "btmr": "dicom_samples/tasks/btmr/Testing",
    "bone_age": "dicom_samples/tasks/bone_age/boneage-training-dataset",
    "grazpedwri_osteopenia": "dicom_samples/tasks/grazpedwri_dx/images_part1",
    "covid19_cxr": "dicom_samples/tasks/covid19_radiography/COVID/images",
}


@pytest.fixture(scope="module", params=BUNDLES)
def trained(request, tmp_path_factory):
    """Each bundle trained for two epochs on its sample set: ``(bundle, output folder, log)``."""
    out = tmp_path_factory.mktemp(request.param)
    log = monai_run(request.param, "train", output_dir=out, max_epochs=2)
    return request.param, out, log


def _configs(bundle: str) -> dict:
    return {p.stem: json.loads(p.read_text()) for p in (REPO / "bundles" / bundle / "configs").glob("*.json")}


@pytest.mark.parametrize("bundle", ALL_BUNDLES)
def test_metadata_is_valid_against_monais_schema(bundle, tmp_path):
    schema = tmp_path / "meta_schema.json"
    schema.write_text(json.dumps(SCHEMA))
    verify_metadata(meta_file=str(REPO / "bundles" / bundle / "configs" / "metadata.json"), filepath=str(schema))


@pytest.mark.parametrize("bundle", ALL_BUNDLES)
def test_bundle_has_the_monai_bundle_files(bundle):
    root = REPO / "bundles" / bundle
    for name in ("train", "evaluate", "inference", "multi_gpu_train", "metadata"):
        assert (root / "configs" / f"{name}.json").is_file(), name
    for name in ("configs/logging.conf", "docs/README.md", "large_files.yml"):
        assert (root / name).is_file(), name


@pytest.mark.parametrize("bundle", ALL_BUNDLES)
def test_bundle_json_is_wiring_only(bundle):
    """Bundles hold no code: every target is MONAI's, Ignite's, PyTorch's or radtl's."""
    assert not (REPO / "bundles" / bundle / "scripts").exists()
    targets = []

    def collect(node):
        if isinstance(node, dict):
            targets.extend([node["_target_"]] if "_target_" in node else [])
            for value in node.values():
                collect(value)
        elif isinstance(node, list):
            for value in node:
                collect(value)

    collect(_configs(bundle))
    assert targets
    for target in targets:
        assert "." not in target or target.split(".")[0] in {"radtl", "torch", "ignite", "monai"}, target


def test_bundle_trains_on_its_sample_set(trained):
    _, out, log = trained
    history = json.loads((out / "history.json").read_text())
    assert history["epochs_run"] == 2 and len(history["epochs"]) == 2
    assert history["epochs_to_convergence"] in (1, 2)
    assert f"val_{history['key_metric']}" in history["epochs"][0]
    assert (out / "model.pt").is_file() and (out / "datalist.json").is_file()
    assert any((out / "tensorboard").iterdir())
    assert "epoch 2/2" in log


@pytest.fixture(scope="module")
def evaluated(trained):
    """Each trained bundle's ``evaluate.json`` run on its test split: ``(bundle, output folder)``."""
    bundle, out, _ = trained
    monai_run(bundle, "train", "evaluate", output_dir=out)
    return bundle, out


def test_bundle_evaluates_its_checkpoint_on_the_test_split(evaluated):
    bundle, out = evaluated
    result = json.loads((out / "test_metrics.json").read_text())
    assert result["split"] == "test" and result["checkpoint"] == str(out / "model.pt")
    assert set(result["metrics"]) == METRICS.get(bundle, {"f1", "accuracy"})


def test_bundle_evaluation_reports_what_it_confuses_or_how_its_values_scatter(evaluated):
    bundle, out = evaluated
    cases = len(json.loads((out / "datalist.json").read_text())["test"])
    if bundle == "bone_age":
        assert len(list(csv.DictReader((out / "test_cases.csv").open()))) == cases
        assert (out / "test_scatter.png").read_bytes().startswith(b"\x89PNG")
        return
    labels = _configs(bundle)["train"]["labels"]
    rows = list(csv.reader((out / "test_confusion_matrix.csv").open()))
    assert rows[0][1:] == labels and [row[0] for row in rows[1:]] == labels
    assert sum(int(count) for row in rows[1:] for count in row[1:]) == cases
    assert (out / "test_confusion_matrix.png").read_bytes().startswith(b"\x89PNG")
    assert [row["class"] for row in csv.DictReader((out / "test_per_class.csv").open())] == labels
    result = json.loads((out / "test_metrics.json").read_text())
    assert list(result["per_class"]) == labels and result["confusion_matrix"]["labels"] == labels
    assert sum(map(sum, result["confusion_matrix"]["counts"])) == cases


def test_bundle_infers_from_dicom_files(trained):
    bundle, out, _ = trained
    monai_run(bundle, "train", "inference", output_dir=out)
    rows = list(csv.DictReader((out / "predictions" / "predictions.csv").open()))
    inputs = sorted(p for p in (REPO / INFERENCE_INPUTS[bundle]).rglob("*.dcm"))
    assert sorted(Path(r["image"]) for r in rows) == inputs
    value = rows[0]["prediction"]
    if bundle == "bone_age":
        float(value)
    else:
        labels = _configs(bundle)["train"]["labels"]
        assert value in labels and all(f"probability_{n}" in rows[0] for n in labels[-1:])


def test_bundle_runs_from_inside_its_folder_with_overrides(tmp_path):
    log = monai_run(
        "covid19_cxr", "train", cwd=REPO / "bundles" / "covid19_cxr", output_dir=tmp_path,
        backbone="mobilenet_v3_large", lr=0.01, seed=7, train_fraction=0.5, max_epochs=1,
    )
    history = json.loads((tmp_path / "history.json").read_text())
    datalist = json.loads((tmp_path / "datalist.json").read_text())
    full = prepare_datalist("covid19_radiography", REPO / "dicom_samples" / "tasks" / "covid19_radiography")
    assert history["epochs"][0]["lr"] == 0.01
    assert len(datalist["training"]) == len(full["training"]) // 2 and datalist["validation"] == full["validation"]
    assert "backbone: 'mobilenet_v3_large'" in log


def test_pretrained_checkpoint_is_transferred_and_reported(tmp_path):
    checkpoint = tmp_path / "pretrained.pt"
    torch.save({"model_state": create("resnet18", num_classes=36).state_dict()}, checkpoint)
    log = monai_run("covid19_cxr", "train", output_dir=tmp_path / "run", pretrained=checkpoint, init="radiologynet", max_epochs=1)
    assert f"{checkpoint} (radiologynet" in log and "shape-mismatched 2: fc.weight" in log  # the head left out, said so


def test_multi_gpu_config_runs_under_torchrun(tmp_path):
    """``torchrun`` with ``multi_gpu_train.json``; on a machine without GPUs, two CPU processes over gloo."""
    torchrun = (sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29533")
    log = monai_run(
        "btmr", "train", "multi_gpu_train", prefix=torchrun, output_dir=tmp_path, backbone="resnet18", max_epochs=1
    )
    assert json.loads((tmp_path / "history.json").read_text())["epochs_run"] == 1
    assert (tmp_path / "model.pt").is_file()
    assert log.count("done: 1 epoch in") == 1  # logged by the first process only (radtl.engines.EpochLog)
    assert "Traceback" not in log and os.environ.get("RANK") is None
