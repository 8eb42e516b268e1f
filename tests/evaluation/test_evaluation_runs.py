"""The evaluation tools on a real sample bundle: a small sweep, its report, Grad-CAM, rating sheet, probes, perturbation.

One small sweep of the ``btmr`` sample (ResNet18, random vs a "radiologynet" checkpoint, three
runs each, all and half of the training data, two epochs) is run once for the module; every
tool then runs on its results and models through the CLI, as a user would.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

from radtl.cli import main
from radtl.networks import create

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    root = tmp_path_factory.mktemp("evaluation")
    checkpoint = root / "pretrained_resnet18.pt"
    torch.manual_seed(0)
    torch.save(create("resnet18", num_classes=0).state_dict(), checkpoint)
    out = root / "sweep"
    main(["sweep", "btmr", "--lrs", "1e-3", "--repeats", "3", "--backbones", "resnet18",
          "--init", f"random,radiologynet:{checkpoint}", "--train_fraction", "0.5,1.0",
          "--output_dir", str(out), "--set", "max_epochs=2", "--set", "image_size=32"])
    return {"root": root, "out": out, "checkpoint": checkpoint}


def _model(sweep, init: str) -> str:
    results = pd.read_csv(sweep["out"] / "results.csv")
    run = results[(results["init"] == init) & (results["train_fraction"] == 1.0)].iloc[0]
    return str(sweep["out"] / "runs" / run["run_id"] / "model.pt")


def test_the_sweep_records_wall_time_and_energy_per_run(sweep):
    results = pd.read_csv(sweep["out"] / "results.csv")
    assert (results["status"] == "ok").all() and len(results) == 12
    assert (results["seconds"] > 0).all()
    assert (results["energy_kwh"] > 0).all()  # codecarbon is in the test extras


def test_the_report_of_a_real_sweep_has_tables_tests_and_figures(sweep):
    out = sweep["root"] / "report"
    main(["report", str(sweep["out"]), "--out", str(out)])
    text = (out / "report.md").read_text()
    assert "Fine-tuning on 100% of the training data" in text
    assert "Resource-limited experiment: 50% of the training data" in text
    assert "Statistics: test f1" in text
    tests = json.loads((out / "statistics.json").read_text())
    assert {t["metric"] for t in tests} == {"test_f1", "epochs_to_convergence"}
    assert {p.name for p in (out / "figures").iterdir()} == {
        "btmr_resnet18_bars.png", "btmr_resnet18_curves.png", "btmr_resnet18_resource_limited.png"}


@pytest.fixture(scope="module")
def heatmaps(sweep):
    folders = {}
    for init in ("random", "radiologynet"):
        folders[init] = sweep["root"] / f"gradcam_{init}"
        main(["gradcam", "btmr", "--checkpoint", _model(sweep, init), "--out", str(folders[init]), "--limit", "4",
              "--set", "backbone=resnet18", "--set", "image_size=32"])
    return folders


def test_gradcam_saves_each_input_beside_its_heatmap(heatmaps):
    table = pd.read_csv(heatmaps["random"] / "heatmaps.csv")
    assert len(table) == 4 and {"image", "heatmap", "label", "predicted", "probability"} <= set(table.columns)
    for name in table["heatmap"]:
        assert (heatmaps["random"] / name).read_bytes()[:4] == b"\x89PNG"


def test_the_rating_sheet_blinds_the_two_models_heatmaps_and_the_ratings_reach_the_report(sweep, heatmaps):
    sheet_dir = sweep["root"] / "rating"
    sources = ",".join(f"{init}={folder}" for init, folder in heatmaps.items())
    main(["rating_sheet", "--sources", sources, "--out", str(sheet_dir), "--n", "4", "--raters", "r1"])
    sheet = pd.read_csv(sheet_dir / "sheet.csv", dtype=str)
    assert "source" not in sheet.columns and len(sheet) == 4 * 2
    sheet["rating"] = ["4", "2"] * 4
    sheet.to_csv(sheet_dir / "sheet.csv", index=False)
    out = sweep["root"] / "rated_report"
    main(["report", str(sweep["out"]), "--out", str(out), "--ratings", str(sheet_dir / "sheet.csv"),
          "--key", str(sheet_dir / "key.csv")])
    assert "## Heatmap ratings" in (out / "report.md").read_text()
    assert (out / "tables" / "heatmap_ratings.csv").is_file()


def test_probe_runs_every_frozen_regime_on_a_checkpoint(sweep):
    out = sweep["root"] / "probe"
    main(["probe", "btmr", "--checkpoint", str(sweep["checkpoint"]), "--out", str(out), "--set", "backbone=resnet18",
          "--set", "image_size=32", "--ks", "1,5", "--scales", "32,16", "--head_epochs", "5", "--lora_ranks", "4", "--lora_epochs", "1",
          "--embedding", "pca"])
    metrics = json.loads((out / "probe.json").read_text())
    for key in ("knn1_accuracy", "knn5_accuracy", "logistic_accuracy", "head_accuracy", "lora_r4_accuracy"):
        assert 0.0 <= metrics[key] <= 1.0, key
    assert any(key.startswith("scale16") for key in metrics)
    assert (out / "embedding.png").is_file()


def test_perturbation_compares_the_stability_of_two_models(sweep):
    out = sweep["root"] / "perturb"
    models = f"random={_model(sweep, 'random')},radiologynet={_model(sweep, 'radiologynet')}"
    main(["perturb", "btmr", "--checkpoints", models, "--out", str(out), "--limit", "6", "--set", "backbone=resnet18",
          "--set", "image_size=32", "--shifts", "0.1", "--scales", "0.8"])
    stability = pd.read_csv(out / "stability.csv")
    assert set(stability["model"]) == {"random", "radiologynet"}
    assert {"none", "shift+x10%", "scale80%", "overall"} <= set(stability["perturbation"])
    comparison = pd.read_csv(out / "comparison.csv")
    assert len(comparison) == 1


def test_without_codecarbon_a_run_records_its_wall_time_only(monkeypatch):
    from radtl import energy

    monkeypatch.setattr(energy, "codecarbon_available", lambda: False)
    with energy.RunMeter() as meter:
        pass
    assert set(meter.result()) == {"seconds"}


def test_a_meter_that_cannot_measure_says_why_and_keeps_the_run(monkeypatch):
    import codecarbon

    from radtl.energy import RunMeter

    def broken(*args, **kwargs):
        raise RuntimeError("no power counters")

    monkeypatch.setattr(codecarbon, "OfflineEmissionsTracker", broken)
    with RunMeter() as meter:
        pass
    assert meter.result()["energy_note"] == "codecarbon did not start: RuntimeError: no power counters"
    assert "seconds" in meter.result()


@pytest.mark.parametrize("bundle", ["covid19_cxr", "grazpedwri_osteopenia"])
def test_gradcam_runs_on_the_single_logit_bundles(tmp_path, bundle):
    from radtl.evaluation.runs import BundleTask

    task = BundleTask(bundle, tmp_path / "parts", backbone="resnet18", image_size=32)
    checkpoint = tmp_path / "model.pt"
    torch.save(task.config.get_parsed_content("network_def", lazy=False).state_dict(), checkpoint)
    main(["gradcam", bundle, "--checkpoint", str(checkpoint), "--out", str(tmp_path / "cam"), "--limit", "2",
          "--method", "gradcam++", "--set", "backbone=resnet18", "--set", "image_size=32"])
    table = pd.read_csv(tmp_path / "cam" / "heatmaps.csv")
    assert len(table) == 2 and set(table["predicted"]) <= {0, 1}


def test_probe_without_peft_stops_before_any_work_and_says_how_to_install_it(tmp_path, monkeypatch, capsys):
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "peft" else find_spec(name, *a))
    with pytest.raises(SystemExit):
        main(["probe", "btmr", "--out", str(tmp_path / "probe"), "--set", "backbone=resnet18"])
    assert "pip install -e '.[lora]'" in capsys.readouterr().err
    assert not (tmp_path / "probe" / "probe.json").exists()


def test_a_checkpoint_of_another_architecture_is_one_line_and_exit_status_2(sweep, tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["perturb", "btmr", "--checkpoints", f"a={_model(sweep, 'random')}", "--out", str(tmp_path / "p"),
              "--set", "backbone=mobilenet_v3_small", "--set", "image_size=32"])
    assert stop.value.code == 2
    assert "radtl perturb:" in capsys.readouterr().err
