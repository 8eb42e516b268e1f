"""radtl sweep: the study's grid over a bundle, resumable, with one tidy results table."""

from __future__ import annotations

import csv
import json

import pytest
import torch

from radtl.cli import main
from radtl.networks import create
from radtl.stats import select_best
from radtl.sweep import RunSpec, parse_inits, plan_runs


def _rows(path):
    return list(csv.DictReader(path.open()))


def test_parse_inits_reads_names_and_checkpoints(tmp_path):
    weights = tmp_path / "ResNet50.tar.gz"
    weights.write_bytes(b"x")
    assert parse_inits(f"random,radiologynet:{weights}") == [("random", ""), ("radiologynet", str(weights))]


@pytest.mark.parametrize(
    ("inits", "message"),
    [("coco", "unknown init 'coco'"), ("imagenet", "give the imagenet checkpoint"),
     ("random:/w.pth", "takes no checkpoint"), ("imagenet:/no/such.pth", "no such checkpoint file")],
)
def test_parse_inits_rejects_what_cannot_run(inits, message):
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        parse_inits(inits)


def test_plan_runs_is_the_full_grid_with_one_seed_per_repeat():
    runs = plan_runs(["resnet18", "resnet34"], [("random", "")], [1e-2, 1e-3, 1e-4, 1e-5], 5, [1.0], 1221)
    assert len(runs) == 2 * 4 * 5
    assert sorted({r.seed for r in runs}) == [1221, 1222, 1223, 1224, 1225]
    assert len({r.run_id for r in runs}) == len(runs)


def _result(lr, seed, val, test, key="f1", higher=True):
    spec = RunSpec("resnet18", "random", "", lr, seed, 1.0)
    return {"run_id": spec.run_id, **spec.__dict__, "status": "ok", "key_metric": key, "higher_is_better": higher,
            f"val_{key}": val, f"test_{key}": test, "epochs_to_convergence": 5}


def test_selection_takes_the_learning_rate_with_the_best_mean_validation_score():
    results = [_result(1e-3, 1, 0.80, 0.70), _result(1e-3, 2, 0.90, 0.72),
               _result(1e-4, 1, 0.86, 0.90), _result(1e-4, 2, 0.86, 0.92)]
    (row,) = select_best(results)
    assert row["lr"] == 1e-4 and row["runs"] == 2
    assert row["test_f1_mean"] == pytest.approx(0.91) and row["test_f1_sd"] == pytest.approx(0.01414, abs=1e-4)


def test_selection_minimises_errors():
    results = [_result(1e-3, 1, 9.0, 9.5, "mae", False), _result(1e-4, 1, 7.0, 8.0, "mae", False)]
    assert select_best(results)[0]["lr"] == 1e-4


def test_sweep_runs_a_small_grid_end_to_end_and_resumes(tmp_path, capsys):
    out = tmp_path / "sweep"
    args = ["sweep", "btmr", "--lrs", "1e-3,1e-4", "--repeats", "1", "--backbones", "resnet18",
            "--output_dir", str(out), "--set", "max_epochs=1"]
    main(args)
    results = _rows(out / "results.csv")
    assert [(r["lr"], r["status"]) for r in results] == [("0.001", "ok"), ("0.0001", "ok")]
    assert {"task", "backbone", "init", "seed", "train_fraction", "epochs_to_convergence", "val_f1", "test_f1",
            "test_accuracy"} <= set(results[0])
    assert results[0]["eval_split"] == "test"
    assert len(_rows(out / "curves.csv")) == 2
    (selected,) = _rows(out / "selection.csv")
    assert selected["backbone"] == "resnet18" and selected["runs"] == "1"

    first = (out / "runs" / results[0]["run_id"] / "result.json").read_text()
    (out / "runs" / results[1]["run_id"] / "result.json").unlink()  # as if interrupted during run 2
    capsys.readouterr()
    main(args)
    assert "done already" in capsys.readouterr().err  # logged to standard error (radtl.logs, the bundle's logging.conf)
    assert (out / "runs" / results[0]["run_id"] / "result.json").read_text() == first
    assert [r["status"] for r in _rows(out / "results.csv")] == ["ok", "ok"]


def test_a_failing_run_is_recorded_and_the_sweep_goes_on(tmp_path):
    vgg = tmp_path / "vgg16.pt"
    torch.save(create("vgg16", num_classes=36).state_dict(), vgg)
    out = tmp_path / "sweep"
    main(["sweep", "covid19_cxr", "--lrs", "1e-3", "--repeats", "1", "--backbones", "resnet18",
          "--init", f"radiologynet:{vgg},random", "--output_dir", str(out), "--set", "max_epochs=1"])
    results = {r["init"]: r for r in _rows(out / "results.csv")}
    assert results["radiologynet"]["status"] == "error" and "CheckpointError" in results["radiologynet"]["reason"]
    assert results["random"]["status"] == "ok"
    assert json.loads((out / "sweep.json").read_text())["overrides"] == {"max_epochs": 1}


def test_a_segmentation_sweep_scores_the_validation_series_the_study_held_out(tmp_path):
    out = tmp_path / "sweep"
    main(["sweep", "luna_nodule_seg", "--lrs", "1e-3", "--repeats", "1", "--backbones", "unet_resnet50",
          "--output_dir", str(out), "--set", "max_epochs=1", "--set", "patches_per_volume=2"])
    (result,) = _rows(out / "results.csv")
    assert result["status"] == "ok", result["reason"]
    assert result["eval_split"] == "validation" and {"val_dice", "test_dice", "test_iou"} <= set(result)


@pytest.mark.parametrize(
    ("argument", "named"),
    [
        (["--set", "max_epochs=$print(1)"], "max_epochs: expected an integer"),
        (["--set", "lr_typo=1e-3"], "lr_typo: not a setting"),
    ],
)
def test_a_setting_the_sweep_cannot_take_is_one_line_and_exit_2_before_any_run(tmp_path, capsys, argument, named):
    with pytest.raises(SystemExit) as stopped:
        main(["sweep", "btmr", "--lrs", "1e-3", "--output_dir", str(tmp_path / "sweep"), *argument])
    assert stopped.value.code == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("radtl sweep: ") and named in error and "\n" not in error
    assert not (tmp_path / "sweep").exists()
