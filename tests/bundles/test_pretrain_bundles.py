"""The pretraining bundles: they run from the README commands, export what fine-tuning loads, resume after a kill,
and pretraining helps a related task with little data.

Bundles run as a user runs them (``python -m monai.bundle run`` in a subprocess, :func:`monai_run`)
on their sample set or on small synthetic shape sets (:mod:`tests.support.shapes`), for one or a few
epochs; docs/pretraining.md records full default runs.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from monai.bundle import ConfigParser, verify_metadata

from radtl.networks import create, load_pretrained
from tests.support.bundles import monai_run
from tests.support.monai_meta_schema import SCHEMA
from tests.support.paths import REPO
from tests.support.shapes import write_downstream_set, write_pseudolabel_set

PRETRAIN = "radiologynet_pretrain"
RECONSTRUCTION = "unet_reconstruction_pretrain"
BUNDLES = (PRETRAIN, RECONSTRUCTION, "dino_pretrain")


def bundle_network(bundle: str, **settings) -> torch.nn.Module:
    """The network a bundle's train.json builds (``network_def``), with settings overridden."""
    parser = ConfigParser()
    parser.read_config(REPO / "bundles" / bundle / "configs" / "train.json")
    parser.update(settings)
    return parser.get_parsed_content("network_def")


def assert_backbone_loads(model: torch.nn.Module, checkpoint: Path, head: tuple[str, ...]) -> None:
    """Every exported tensor loads by name and shape; only the fine-tuning head is left to train."""
    report = load_pretrained(model, checkpoint)
    exported = torch.load(checkpoint, weights_only=True)["state_dict"]
    assert not report.unexpected and not report.mismatched and not report.adapted
    assert sorted(report.loaded) == sorted(exported)
    assert report.missing and all(key.startswith(head) for key in report.missing)


@pytest.mark.parametrize("bundle", BUNDLES)
def test_pretraining_bundle_is_a_valid_monai_bundle_of_wiring_only(bundle, tmp_path):
    root = REPO / "bundles" / bundle
    schema = tmp_path / "meta_schema.json"
    schema.write_text(json.dumps(SCHEMA))
    verify_metadata(meta_file=str(root / "configs" / "metadata.json"), filepath=str(schema))
    for name in ("configs/train.json", "configs/multi_gpu_train.json", "configs/logging.conf", "docs/README.md",
                 "large_files.yml"):
        assert (root / name).is_file(), name
    targets = re.findall(r'"_target_": "([^"]+)"', "".join(p.read_text() for p in (root / "configs").glob("*.json")))
    assert targets and all("." not in t or t.split(".")[0] in {"radtl", "torch", "ignite", "monai"} for t in targets)


@pytest.fixture(scope="module")
def pretrained_sample(tmp_path_factory):
    """The pseudo-label bundle pretrained for one epoch on its sample set: ``(output folder, log)``."""
    out = tmp_path_factory.mktemp("pretrain")
    verbose = REPO / "bundles" / PRETRAIN / "configs" / "logging_verbose.conf"  # the engines' logs: validations counted
    log = monai_run(PRETRAIN, "train", output_dir=out, max_epochs=1, validate_every=0.05, logging_file=verbose)  # 5%
    return out, log


def test_pretraining_bundle_runs_on_its_sample_set(pretrained_sample):
    out, log = pretrained_sample
    history = json.loads((out / "history.json").read_text())
    assert history["epochs_run"] == 1 and history["key_metric"] == "f1"
    assert (out / "model.pt").is_file() and (out / "pack" / "pack.json").is_file()
    assert "backbone exported to" in log and "epoch 1/1" in log


def test_pretraining_validates_every_fraction_of_an_epoch(pretrained_sample):
    out, log = pretrained_sample
    pack = json.loads((out / "pack" / "pack.json").read_text())
    iterations = -(-pack["splits"]["training"] // 16)
    validations = log.count("SupervisedEvaluator - INFO - Engine run finished")
    assert validations == iterations  # 5% of a 10-iteration epoch rounds to every iteration


def test_exported_backbone_loads_into_a_fine_tuning_bundle_with_a_full_key_match(pretrained_sample):
    out, _ = pretrained_sample
    exported = torch.load(out / "backbone.pt", weights_only=True)
    assert exported["architecture"] == "resnet18" and exported["head"] == ["fc."]
    assert exported["labels"] == json.loads((REPO / "dicom_samples/tasks/pseudolabels/datalist.json").read_text())["labels"]
    assert_backbone_loads(bundle_network("covid19_cxr"), out / "backbone.pt", ("fc.",))


def test_reconstruction_bundle_exports_a_unet_the_nodule_bundle_loads(tmp_path):
    datalist = write_pseudolabel_set(tmp_path / "shapes", per_class=4, validation=2)
    out = tmp_path / "run"
    monai_run(RECONSTRUCTION, "train", output_dir=out, datalist=datalist, image_size=32, max_epochs=1)
    history = json.loads((out / "history.json").read_text())
    assert history["key_metric"] == "psnr" and history["epochs"][0]["val_psnr"] > 0
    assert_backbone_loads(bundle_network("luna_nodule_seg", backbone="unet"), out / "backbone.pt", ("final_conv.",))


def _final_weights(out: Path) -> dict[str, torch.Tensor]:
    newest = max(out.glob("resume_checkpoint_*.pt"), key=lambda p: int(re.findall(r"\d+", p.name)[-1]))
    return torch.load(newest, weights_only=True)["network"]


def test_pretraining_resumes_after_a_kill_where_it_stopped(tmp_path):
    """A run killed mid-epoch and started again ends with the weights of a run never killed."""
    datalist = write_pseudolabel_set(tmp_path / "shapes", per_class=12, validation=2)
    settings = {"datalist": datalist, "image_size": 32, "max_epochs": 2, "batch_size": 8, "checkpoint_every": 2,
                "validate_every": 0.5}
    whole = tmp_path / "whole"
    monai_run(PRETRAIN, "train", output_dir=whole, **settings)

    killed = tmp_path / "killed"
    command = [sys.executable, "-m", "monai.bundle", "run", "--config_file",
               str(REPO / "bundles" / PRETRAIN / "configs" / "train.json"), "--output_dir", str(killed)]
    command += [arg for key, value in settings.items() for arg in (f"--{key}", str(value))]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not (killed / "resume_checkpoint_4.pt").exists():  # mid-way through the first epoch of 6 iterations
        assert process.poll() is None and time.monotonic() < deadline, "the run ended before its 4th iteration"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (killed / "resume_checkpoint_12.pt").exists()

    log = monai_run(PRETRAIN, "train", output_dir=killed, **settings)
    resumed = int(re.search(r"resumed from .*resume_checkpoint_(\d+)\.pt: iteration (\d+)", log).group(2))
    assert 4 <= resumed < 12
    assert json.loads((killed / "history.json").read_text())["epochs_run"] == 2
    expected, got = _final_weights(whole), _final_weights(killed)
    assert expected.keys() == got.keys()
    assert all(torch.allclose(expected[k].float(), got[k].float(), atol=1e-6) for k in expected)


def test_pretraining_then_fine_tuning_on_5_percent_beats_training_from_scratch(tmp_path):
    """Pretrain on shape pseudo-labels, then fine-tune the btmr bundle on 5% of a related shape task:
    the pretrained backbone scores higher on the test split than random initialisation, same epochs."""
    datalist = write_pseudolabel_set(tmp_path / "shapes", per_class=60, validation=10)
    pretrained = tmp_path / "pretrained"
    monai_run(PRETRAIN, "train", output_dir=pretrained, datalist=datalist, image_size=32, max_epochs=4,
              validate_every=0.5)
    downstream = write_downstream_set(tmp_path / "downstream", training=80, testing=30)
    scores = {}
    for init in ("random", "radiologynet"):
        out = tmp_path / init
        fine_tune = {"dataset_dir": downstream, "output_dir": out, "backbone": "resnet18", "image_size": 32, "train_fraction": 0.05,
                     "max_epochs": 30, "patience": 30, "init": init}
        if init == "radiologynet":
            fine_tune["pretrained"] = pretrained / "backbone.pt"
        monai_run("btmr", "train", **fine_tune)
        assert len(json.loads((out / "datalist.json").read_text())["training"]) == 12  # 5% of 240
        monai_run("btmr", "train", "evaluate", **fine_tune)
        scores[init] = json.loads((out / "test_metrics.json").read_text())["metrics"]["f1"]
    assert scores["radiologynet"] > scores["random"] + 0.1, scores


def test_multi_gpu_pretraining_runs_under_torchrun_with_a_shard_per_process(tmp_path):
    """``torchrun`` with ``multi_gpu_train.json``; on a machine without GPUs, two CPU processes over gloo."""
    datalist = write_pseudolabel_set(tmp_path / "shapes", per_class=8, validation=2)
    torchrun = (sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29541")
    # shards of 8 items: the 32 training items make four shards, two for each process
    log = monai_run(PRETRAIN, "train", "multi_gpu_train", prefix=torchrun, output_dir=tmp_path / "run",
                    datalist=datalist, image_size=32, max_epochs=1, batch_size=4, pack_shard_size=8)
    assert json.loads((tmp_path / "run" / "history.json").read_text())["epochs_run"] == 1
    assert (tmp_path / "run" / "backbone.pt").is_file()
    assert log.count("done: 1 epoch in") == 1 and "Traceback" not in log


@pytest.fixture(scope="module")
def dino_run(tmp_path_factory):
    """DINO (multi-crop) on the shape set for two epochs with a ViT-Tiny/16: ``(output folder, log)``."""
    root = tmp_path_factory.mktemp("dino")
    datalist = write_pseudolabel_set(root / "shapes", per_class=8, validation=4)
    log = monai_run("dino_pretrain", "train", output_dir=root / "run", datalist=datalist, backbone="vit_tiny",
                    image_size=32, local_crops=2, local_size=16, prototypes=256, batch_size=8, max_epochs=2)
    return root / "run", log


def test_dino_bundle_trains_and_validates_by_knn_on_the_pseudo_labels(dino_run):
    out, _ = dino_run
    history = json.loads((out / "history.json").read_text())
    assert history["key_metric"] == "knn" and history["epochs_run"] == 2
    assert all(0 <= epoch["val_knn"] <= 1 and epoch["train_loss"] > 0 for epoch in history["epochs"])
    assert history["epochs"][1]["lr"] != history["epochs"][0]["lr"]  # the cosine schedule moves


def test_dino_teacher_backbone_loads_into_fine_tuning_and_a_dense_adapter(dino_run):
    out, _ = dino_run
    exported = torch.load(out / "backbone.pt", weights_only=True)
    assert exported["architecture"] == "vit_tiny" and "teacher" in exported["pretraining"]
    classifier = bundle_network("covid19_cxr", backbone="vit_tiny")  # built for 224: the positions are resized
    report = load_pretrained(classifier, out / "backbone.pt")
    assert not report.unexpected and not report.mismatched
    assert report.adapted == ["patch_embedding.position_embeddings"]
    assert sorted(report.loaded + report.adapted) == sorted(exported["state_dict"])
    assert all(key.startswith("classification_head.") for key in report.missing)
    adapter = create("encoder_unet", encoder="vit_tiny", out_channels=1, img_size=32)
    report = load_pretrained(adapter, out / "backbone.pt")
    assert sorted(report.loaded) == sorted(f"encoder.{key}" for key in exported["state_dict"])
    assert adapter.eval()(torch.rand(2, 3, 32, 32)).shape == (2, 1, 32, 32)


def test_omnirad_variant_runs_with_global_crops_only_and_the_ibot_loss(tmp_path):
    datalist = write_pseudolabel_set(tmp_path / "shapes", per_class=4, validation=4)
    log = monai_run("dino_pretrain", "train", output_dir=tmp_path / "run", datalist=datalist, backbone="vit_tiny",
                    image_size=32, local_crops=0, ibot=True, prototypes=128, batch_size=8, max_epochs=1)
    exported = torch.load(tmp_path / "run" / "backbone.pt", weights_only=True)
    assert "iBOT" in exported["pretraining"] and "OmniRad" in exported["pretraining"]
    assert "mask_token" not in exported["state_dict"]  # the mask token is the trainer's, not the backbone's
    assert "epoch 1/1" in log
