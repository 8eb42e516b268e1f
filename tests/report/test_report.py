"""radtl report: a sweep's results as the study's tables, tests and figures, saying what it could not test."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from radtl.cli import main
from radtl.report.comparison import build_report, load_results
from radtl.report.document import Heading, Image, Paragraph, write_document

INITS = ("random", "imagenet", "radiologynet")


def _runs(test_scores: dict[str, list[float]], lr=1e-3, fraction=1.0, val_offset=0.0, task="btmr"):
    rows = []
    for init, scores in test_scores.items():
        for seed, score in enumerate(scores, start=1221):
            run_id = f"resnet18_{init}_lr{lr:g}_frac{fraction:g}_seed{seed}"
            rows.append({"run_id": run_id, "task": task, "backbone": "resnet18", "init": init, "pretrained": "",
                         "lr": lr, "seed": seed, "train_fraction": fraction, "status": "ok", "reason": "",
                         "eval_split": "test", "epochs_run": 12, "epochs_to_convergence": 5 + seed % 3,
                         "stopped_early": True, "key_metric": "f1", "higher_is_better": True,
                         "val_f1": score + val_offset, "test_f1": score, "test_accuracy": score,
                         "seconds": 10.0, "energy_kwh": 2e-5})
    return rows


def _curves(results: pd.DataFrame, epochs: int = 12) -> pd.DataFrame:
    rows = [{"run_id": run, "epoch": e, "train_loss": 1 / e, "val_f1": min(1.0, score * e / epochs)}
            for run, score in zip(results["run_id"], results["test_f1"]) for e in range(1, epochs + 1)]
    return pd.DataFrame(rows)


def _sweep_dir(tmp_path, rows, name="sweep"):
    folder = tmp_path / name
    folder.mkdir()
    results = pd.DataFrame(rows)
    results.to_csv(folder / "results.csv", index=False)
    _curves(results).to_csv(folder / "curves.csv", index=False)
    return folder


#: Three initialisations, five runs each, no overlap and unequal spread: the study's Kruskal-Wallis path.
SEPARATED = {"random": [0.50, 0.60, 0.70, 0.55, 0.65], "imagenet": [0.900, 0.901, 0.902, 0.903, 0.904],
             "radiologynet": [0.800, 0.801, 0.802, 0.803, 0.804]}


@pytest.fixture
def separated_report(tmp_path):
    rows = _runs(SEPARATED) + _runs({k: [v - 0.2 for v in vs] for k, vs in SEPARATED.items()}, lr=1e-4, val_offset=-0.3)
    folder = _sweep_dir(tmp_path, rows)
    md, page = build_report(folder, tmp_path / "report")
    return md.read_text(), page.read_text(), tmp_path / "report"


def test_the_report_is_markdown_and_html_with_the_same_tables(separated_report):
    md, page, out = separated_report
    assert (out / "report.md").is_file() and (out / "report.html").is_file()
    assert "Task btmr" in md and "<h2>Task btmr</h2>" in page
    assert md.count("| resnet18 |") == page.count("<td>resnet18</td>")


def test_the_results_table_shows_the_chosen_learning_rate_mean_sd_best_run_and_epochs(separated_report):
    _, _, out = separated_report
    table = pd.read_csv(out / "tables" / "btmr_results.csv")
    imagenet = table[table["init"] == "imagenet"].iloc[0]
    assert imagenet["lr"] == 0.001  # the better mean validation score of the two learning rates
    assert imagenet["test_f1 (mean ± SD)"] == f"{np.mean(SEPARATED['imagenet']):.3f} ± {np.std(SEPARATED['imagenet'], ddof=1):.3f}"
    assert imagenet["best run test_f1"] == pytest.approx(0.904)
    assert {"epochs to convergence", "wall time s (mean)", "energy Wh (mean)"} <= set(table.columns)
    assert list(table["init"]) == list(INITS)  # the study's order: Baseline, ImageNet, RadiologyNET


def test_separated_groups_with_unequal_variances_give_the_published_bonferroni_p(separated_report):
    md, _, out = separated_report
    p_values = pd.read_csv(out / "tables" / "btmr_test_f1_p_values.csv")
    pairwise = p_values[p_values["test"] == "Mann-Whitney U"]
    assert set(pairwise["p"]) == {"p = 0.024"}  # 5 vs 5, no overlap, x3 comparisons (thesis Table 4.x)
    omnibus = p_values[p_values["comparison"] == "all initialisations"].iloc[0]
    assert omnibus["test"] == "Kruskal-Wallis"
    expected = stats.kruskal(*SEPARATED.values()).pvalue
    assert omnibus["p"] == f"p = {expected:.3f}"
    assert "Kruskal-Wallis" in md and "Bonferroni" in md


def test_every_test_is_kept_in_statistics_json(separated_report):
    _, _, out = separated_report
    tests = json.loads((out / "statistics.json").read_text())
    first = next(t for t in tests if t["metric"] == "test_f1")
    assert first["task"] == "btmr" and first["backbone"] == "resnet18" and first["sizes"] == {i: 5 for i in INITS}


def test_the_figures_are_pngs_linked_relative_to_the_report(separated_report):
    md, page, out = separated_report
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert {"figures/btmr_resnet18_bars.png", "figures/btmr_resnet18_curves.png"} <= set(links)
    for link in links:
        assert (out / link).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f'src="{link}"' in page


def test_the_resource_limited_runs_get_their_own_table_tests_and_curves(tmp_path):
    rows = _runs(SEPARATED) + _runs(SEPARATED, fraction=0.25) + _runs(SEPARATED, fraction=0.5)
    md, _ = build_report(_sweep_dir(tmp_path, rows), tmp_path / "report")
    text = md.read_text()
    assert "Resource-limited experiment: 25%, 50% of the training data" in text
    limited = pd.read_csv(tmp_path / "report" / "tables" / "btmr_resource_limited.csv")
    assert sorted(set(limited["training data"])) == ["25%", "50%"]
    assert (tmp_path / "report" / "figures" / "btmr_resnet18_resource_limited.png").is_file()


def test_results_of_several_sweeps_are_reported_together(tmp_path):
    full = _sweep_dir(tmp_path, _runs(SEPARATED), "full")
    limited = _sweep_dir(tmp_path, _runs(SEPARATED, fraction=0.5), "limited")
    assert len(load_results([full, limited]).results) == 30


# -- bad input: say what could not be tested, never a p-value from nothing ---------------------------------


def _untested(md: str) -> str:
    return md.split("## What could not be tested", 1)[1]


def test_a_single_initialisation_is_reported_as_not_testable(tmp_path):
    md, _ = build_report(_sweep_dir(tmp_path, _runs({"random": [0.5, 0.6, 0.7]})), tmp_path / "report")
    text = md.read_text()
    assert "only one group" in _untested(text)
    assert "p = " not in text and "p < " not in text
    assert not list((tmp_path / "report" / "tables").glob("*p_values.csv"))


def test_a_diverged_run_is_left_out_and_named(tmp_path):
    rows = _runs({"random": [0.5, 0.6, 0.7, 0.65, 0.55], "imagenet": [0.9, 0.91, 0.92, 0.93, 0.94]})
    rows[0]["test_f1"] = float("nan")
    md, _ = build_report(_sweep_dir(tmp_path, rows), tmp_path / "report")
    assert re.search(r"random: 1 of 5 value\(s\) not finite", md.read_text())


def test_constant_scores_are_not_tested(tmp_path):
    rows = _runs({"random": [0.9] * 3, "imagenet": [0.9] * 3})
    md, _ = build_report(_sweep_dir(tmp_path, rows), tmp_path / "report")
    assert re.search(r"test_f1: .*constant", _untested(md.read_text()))
    assert not (tmp_path / "report" / "tables" / "btmr_test_f1_p_values.csv").exists()


def test_unequal_group_sizes_are_tested_and_noted(tmp_path):
    rows = _runs({"random": [0.5, 0.6, 0.7, 0.65, 0.55], "imagenet": [0.9, 0.91, 0.95]})
    md, _ = build_report(_sweep_dir(tmp_path, rows), tmp_path / "report")
    assert "sizes differ" in md.read_text() and "p = " in md.read_text()


def test_failed_runs_are_listed_with_their_reason(tmp_path):
    rows = _runs({"random": [0.5, 0.6], "imagenet": [0.9, 0.91]})
    rows[1].update(status="error", reason="CheckpointError: another architecture", test_f1=None, val_f1=None)
    md, _ = build_report(_sweep_dir(tmp_path, rows), tmp_path / "report")
    text = md.read_text()
    assert "## Runs that failed" in text and "CheckpointError: another architecture" in text


def test_a_table_that_is_not_a_sweep_result_is_refused(tmp_path):
    (tmp_path / "results.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="missing column"):
        load_results(tmp_path)
    with pytest.raises(FileNotFoundError, match="no results table"):
        load_results(tmp_path / "elsewhere")


def test_no_curves_means_no_curve_figures_and_says_so(tmp_path):
    folder = _sweep_dir(tmp_path, _runs(SEPARATED))
    (folder / "curves.csv").unlink()
    md, _ = build_report(folder, tmp_path / "report")
    assert "no per-epoch curves" in _untested(md.read_text())


def test_the_document_writer_refuses_a_missing_figure(tmp_path):
    with pytest.raises(FileNotFoundError):
        write_document(tmp_path, "t", [Heading("h"), Paragraph("x"), Image(tmp_path / "gone.png", "gone")])


def test_the_cli_writes_the_report(tmp_path, capsys):
    folder = _sweep_dir(tmp_path, _runs(SEPARATED))
    main(["report", str(folder), "--out", str(tmp_path / "out")])
    assert "report.md" in capsys.readouterr().out


def test_the_cli_refuses_ratings_without_their_key(tmp_path):
    with pytest.raises(SystemExit):
        main(["report", str(tmp_path), "--out", str(tmp_path / "out"), "--ratings", "sheet.csv"])
