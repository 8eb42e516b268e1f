"""``radtl report``: a sweep's results as the study's tables, tests and figures.

RadiologyNET reported each downstream task as (shared/science/radiologynet.md, "Fine-tuning
protocol" and "Statistics"; thesis 3.2-3.3 and 4):

- per architecture and initialisation, the learning rate chosen on validation, the test score
  of that configuration's runs as mean +/- SD, its best run and the epochs to convergence;
- the initialisations compared with a fixed procedure (:func:`radtl.stats.compare_groups`:
  Levene, then Kruskal-Wallis and Bonferroni-corrected Mann-Whitney U, or ANOVA and Tukey HSD,
  or a t-test for two groups), on the test score and on the epochs to convergence;
- the validation curves of the first 10 epochs, and the resource-limited experiment
  (5, 25 and 50% of the training data, 10 epochs);
- the radiologists' ratings of blinded Grad-CAM heatmaps.

:func:`build_report` turns one or more sweep folders (``results.csv`` with ``curves.csv``
beside it) into ``report.md`` and ``report.html`` with the same content, the figures in
``figures/``, every table as CSV in ``tables/`` and every test in ``statistics.json``. What
cannot be tested (one group, a diverged run, no variation) is said in the report with its reason;
no p-value is printed that was computed from nothing.
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from radtl.atomic import write_json_atomic, write_text_atomic
from radtl.report.document import Bullets, Heading, Image, Paragraph, table_from_frame, write_document
from radtl.report.figures import bar_chart, format_p, fraction_curves, validation_curves
from radtl.stats import GroupComparison, compare_groups
from radtl.stats.selection import select_best

__all__ = ["REQUIRED_COLUMNS", "SweepResults", "build_report", "load_results"]

logger = logging.getLogger(__name__)

#: Columns ``results.csv`` must have (``radtl sweep`` writes them).
REQUIRED_COLUMNS = ("run_id", "task", "backbone", "init", "lr", "seed", "train_fraction", "status", "key_metric",
                    "higher_is_better")
#: Initialisations in the order the study's tables list them; others follow by name.
INIT_ORDER = ("random", "imagenet", "radiologynet")
#: Epochs shown by the training-progress figures (the study's: the first 10).
CURVE_EPOCHS = 10


@dataclass
class SweepResults:
    """The runs of one or more sweeps: ``results`` (one row per run) and ``curves`` (one row per run and epoch)."""

    results: pd.DataFrame
    curves: pd.DataFrame
    sources: list[str] = field(default_factory=list)


def _results_file(path: Path) -> Path:
    if path.is_dir():
        path = path / "results.csv"
    if not path.is_file():
        raise FileNotFoundError(f"no results table at {path} (give a sweep folder or its results.csv)")
    return path


def load_results(paths: str | os.PathLike | Sequence[str | os.PathLike]) -> SweepResults:
    """Read the ``results.csv`` (and ``curves.csv`` beside it, when there) of each sweep folder or file.

    Raises:
        FileNotFoundError: a path with no results table.
        ValueError: a table without the columns :data:`REQUIRED_COLUMNS` names, or with no runs.
    """
    paths = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    tables, curves, sources = [], [], []
    for path in paths:
        file = _results_file(Path(path))
        table = pd.read_csv(file)
        missing = [c for c in REQUIRED_COLUMNS if c not in table.columns]
        if missing:
            raise ValueError(f"{file}: not a radtl sweep results table; missing column(s) {', '.join(missing)}")
        if table.empty:
            raise ValueError(f"{file}: the results table has no runs")
        tables.append(table)
        sources.append(str(file))
        if (file.parent / "curves.csv").is_file() and (file.parent / "curves.csv").stat().st_size > 1:
            curves.append(pd.read_csv(file.parent / "curves.csv"))
    results = pd.concat(tables, ignore_index=True)
    results["status"] = results["status"].fillna("error")
    results["higher_is_better"] = results["higher_is_better"].astype(str).str.lower().isin(["true", "1"])
    curve_table = pd.concat(curves, ignore_index=True) if curves else pd.DataFrame(columns=["run_id", "epoch"])
    return SweepResults(results, curve_table, sources)


def _init_order(inits) -> list[str]:
    inits = list(dict.fromkeys(inits))
    return [i for i in INIT_ORDER if i in inits] + sorted(i for i in inits if i not in INIT_ORDER)


def _records(frame: pd.DataFrame) -> list[dict]:
    """Rows as dicts with missing values as None (what :func:`radtl.stats.select_best` expects)."""
    return [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
            for row in frame.to_dict("records")]


def _mean_sd(values: pd.Series) -> str:
    values = pd.to_numeric(values, errors="coerce")
    finite = values[np.isfinite(values)]
    if finite.empty:
        return "n/a"
    if len(finite) == 1:
        return f"{finite.iloc[0]:.3f}"
    return f"{finite.mean():.3f} ± {finite.std(ddof=1):.3f}"


def _slug(*parts: object) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "_", "_".join(str(p) for p in parts)).strip("_")


@dataclass
class _Task:
    """One task's runs and what the report derives from them."""

    name: str
    runs: pd.DataFrame
    curves: pd.DataFrame

    @property
    def key(self) -> str:
        return str(self.runs["key_metric"].iloc[0])

    @property
    def higher_is_better(self) -> bool:
        return bool(self.runs["higher_is_better"].iloc[0])

    @property
    def test_metric(self) -> str:
        return f"test_{self.key}"

    @property
    def split(self) -> str:
        if "eval_split" in self.runs and self.runs["eval_split"].notna().any():
            return str(self.runs["eval_split"].dropna().iloc[0])
        return "test"

    def selected_runs(self) -> pd.DataFrame:
        """The runs of the learning rate chosen on validation, per (backbone, init, train fraction)."""
        ok = self.runs[self.runs["status"] == "ok"]
        chosen = select_best(_records(ok))
        if not chosen:
            return ok.iloc[0:0].assign(selected_lr=pd.Series(dtype=float))
        keys = pd.DataFrame([{k: row[k] for k in ("backbone", "init", "train_fraction", "lr")} for row in chosen])
        return ok.merge(keys, on=["backbone", "init", "train_fraction", "lr"])


def _summary_table(task: _Task, runs: pd.DataFrame) -> pd.DataFrame:
    """The study's results table: per backbone and init, the chosen lr, test scores, best run, epochs, cost."""
    test_columns = [task.test_metric] + sorted(c for c in runs if c.startswith("test_") and c != task.test_metric)
    sign = 1 if task.higher_is_better else -1
    val_column = f"val_{task.key}"
    rows = []
    for (backbone, init), group in runs.groupby(["backbone", "init"], sort=False):
        scored = group[pd.to_numeric(group[val_column], errors="coerce").notna()] if val_column in group else group
        best = scored.loc[(sign * pd.to_numeric(scored[val_column])).idxmax()] if len(scored) else None
        row = {"backbone": backbone, "init": init, "lr": f"{group['lr'].iloc[0]:g}", "runs": len(group)}
        for column in test_columns:
            row[f"{column} (mean ± SD)"] = _mean_sd(group[column])
        row[f"best run {task.test_metric}"] = "n/a" if best is None else f"{float(best[task.test_metric]):.3f}"
        row["epochs to convergence"] = _mean_sd(group.get("epochs_to_convergence", pd.Series(dtype=float)))
        if "seconds" in group:
            row["wall time s (mean)"] = f"{pd.to_numeric(group['seconds'], errors='coerce').mean():.1f}"
        if "energy_kwh" in group and group["energy_kwh"].notna().any():
            row["energy Wh (mean)"] = f"{1000 * pd.to_numeric(group['energy_kwh'], errors='coerce').mean():.2f}"
        rows.append(row)
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    frame["order"] = frame["init"].map({init: i for i, init in enumerate(_init_order(frame["init"]))})
    return frame.sort_values(["backbone", "order"]).drop(columns="order").reset_index(drop=True)


def _samples(runs: pd.DataFrame, metric: str) -> dict[str, list[float]]:
    if metric not in runs:
        return {}
    by_init = {init: pd.to_numeric(group[metric], errors="coerce").tolist() for init, group in runs.groupby("init")}
    return {init: by_init[init] for init in _init_order(by_init)}


def _p_table(comparisons: Sequence[tuple[dict, GroupComparison]]) -> pd.DataFrame:
    rows = []
    for keys, comparison in comparisons:
        if comparison.omnibus_test:
            rows.append({**keys, "comparison": "all initialisations", "test": comparison.omnibus_test,
                         "statistic": comparison.omnibus_statistic, "p": format_p(comparison.omnibus_p)})
        for pair in comparison.pairwise:
            rows.append({**keys, "comparison": f"{pair.group_a} vs {pair.group_b}", "test": pair.test,
                         "statistic": pair.statistic, "p": format_p(pair.p_value)})
    return pd.DataFrame(rows)


class _Report:
    """Builds the blocks of the document and writes figures, tables and statistics as it goes."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self.figures = out_dir / "figures"
        self.tables = out_dir / "tables"
        self.figures.mkdir(parents=True, exist_ok=True)
        self.tables.mkdir(parents=True, exist_ok=True)
        self.blocks: list = []
        self.untested: list[str] = []
        self.statistics: list[dict] = []

    def table(self, frame: pd.DataFrame, name: str) -> None:
        write_text_atomic(self.tables / f"{name}.csv", frame.to_csv(index=False))
        self.blocks.append(table_from_frame(frame))

    def compare(self, samples: dict[str, list[float]], metric: str, where: dict) -> GroupComparison:
        comparison = compare_groups(samples, metric=metric)
        label = ", ".join(f"{k} {v}" for k, v in where.items())
        self.untested += [f"{label}, {metric}: {reason}" for reason in comparison.not_tested]
        self.statistics.append({**where, **comparison.to_dict()})
        return comparison

    def statistics_blocks(self, comparisons: Sequence[tuple[dict, GroupComparison]], name: str) -> None:
        for keys, comparison in comparisons:
            label = ", ".join(str(v) for v in keys.values())
            text = f"{label}: {comparison.procedure}" if comparison.procedure else label
            notes = list(comparison.notes) + list(comparison.not_tested)
            self.blocks.append(Paragraph(text.rstrip(".") + "." + (" Notes: " + "; ".join(notes) if notes else "")))
        p_values = _p_table(comparisons)
        if not p_values.empty:
            self.table(p_values, name)


def _task_section(report: _Report, task: _Task) -> None:
    higher = "higher is better" if task.higher_is_better else "lower is better"
    report.blocks.append(Heading(f"Task {task.name}", 2))
    ok, failed = (task.runs["status"] == "ok").sum(), (task.runs["status"] != "ok").sum()
    report.blocks.append(Paragraph(
        f"{len(task.runs)} run(s), {ok} finished, {failed} failed. Key metric: {task.key} ({higher}), scored on the "
        f"{task.split} split; the learning rate of each backbone and initialisation is the one with the best mean "
        f"validation {task.key} (thesis 3.2)."
    ))
    selected = task.selected_runs()
    full = selected[selected["train_fraction"] == selected["train_fraction"].max()] if len(selected) else selected
    if full.empty:
        report.untested.append(f"task {task.name}: no finished run has a validation score; nothing to compare")
        return
    fraction = float(full["train_fraction"].iloc[0])
    report.blocks.append(Heading(f"Fine-tuning on {fraction:.0%} of the training data", 3))
    report.table(_summary_table(task, full), _slug(task.name, "results"))

    for metric, title in ((task.test_metric, f"{task.split} {task.key}"), ("epochs_to_convergence", "epochs to convergence")):
        comparisons = []
        for backbone, runs in full.groupby("backbone"):
            where = {"task": task.name, "backbone": backbone}
            comparisons.append(({"backbone": backbone}, report.compare(_samples(runs, metric), metric, where)))
        report.blocks.append(Heading(f"Statistics: {title}", 4))
        report.statistics_blocks(comparisons, _slug(task.name, metric, "p_values"))
        if metric == task.test_metric:
            for (keys, comparison), (backbone, runs) in zip(comparisons, full.groupby("backbone")):
                pairs = [(p.group_a, p.group_b, p.p_value) for p in comparison.pairwise]
                path = bar_chart(_samples(runs, metric), pairs, metric,
                                 report.figures / f"{_slug(task.name, backbone, 'bars')}.png",
                                 title=f"{task.name}, {backbone}: {metric} by initialisation")
                report.blocks.append(Image(path, f"{task.name}, {backbone}: {task.split} {task.key}, mean ± SD over "
                                                 "the chosen learning rate's runs (dots), with the pairwise p-values"))

    val_metric = f"val_{task.key}"
    if not task.curves.empty and val_metric in task.curves:
        report.blocks.append(Heading(f"Training progress: the first {CURVE_EPOCHS} epochs", 3))
        for backbone, runs in full.groupby("backbone"):
            curves = {init: task.curves[task.curves["run_id"].isin(group["run_id"])]
                      for init, group in runs.groupby("init")}
            curves = {init: curves[init] for init in _init_order(curves)}
            path = validation_curves(curves, val_metric, report.figures / f"{_slug(task.name, backbone, 'curves')}.png",
                                     epochs=CURVE_EPOCHS, title=f"{task.name}, {backbone}")
            report.blocks.append(Image(path, f"{task.name}, {backbone}: validation {task.key} per epoch, mean ± SD "
                                             "over the chosen learning rate's runs"))
    else:
        report.untested.append(f"task {task.name}: no per-epoch curves (curves.csv) beside the results; "
                               "the training-progress figures are left out")

    limited = selected[selected["train_fraction"] < fraction]
    if not limited.empty:
        _limited_section(report, task, limited, full)


def _limited_section(report: _Report, task: _Task, limited: pd.DataFrame, full: pd.DataFrame) -> None:
    fractions = sorted(limited["train_fraction"].unique())
    report.blocks.append(Heading(
        "Resource-limited experiment: " + ", ".join(f"{f:.0%}" for f in fractions) + " of the training data", 3))
    frames = []
    for fraction in fractions:
        frame = _summary_table(task, limited[limited["train_fraction"] == fraction])
        frames.append(frame.assign(**{"training data": f"{fraction:.0%}"}))
    table = pd.concat(frames, ignore_index=True)
    table = table[["training data"] + [c for c in table.columns if c != "training data"]]
    report.table(table, _slug(task.name, "resource_limited"))
    comparisons = []
    for (backbone, fraction), runs in limited.groupby(["backbone", "train_fraction"]):
        where = {"task": task.name, "backbone": backbone, "training data": f"{fraction:.0%}"}
        comparison = report.compare(_samples(runs, task.test_metric), task.test_metric, where)
        comparisons.append(({"backbone": backbone, "training data": f"{fraction:.0%}"}, comparison))
    report.blocks.append(Heading(f"Statistics: {task.split} {task.key} with limited data", 4))
    report.statistics_blocks(comparisons, _slug(task.name, "resource_limited_p_values"))
    val_metric = f"val_{task.key}"
    for backbone, runs in limited.groupby("backbone"):
        curves = {}
        for fraction, group in runs.groupby("train_fraction"):
            by_init = {init: task.curves[task.curves["run_id"].isin(g["run_id"])] for init, g in group.groupby("init")}
            curves[float(fraction)] = {init: by_init[init] for init in _init_order(by_init)}
        if task.curves.empty or val_metric not in task.curves:
            continue
        scores = pd.concat([runs, full[full["backbone"] == backbone]])
        path = fraction_curves(curves, scores, val_metric, task.test_metric,
                               report.figures / f"{_slug(task.name, backbone, 'resource_limited')}.png",
                               epochs=CURVE_EPOCHS, title=f"{task.name}, {backbone}: resource-limited training")
        report.blocks.append(Image(path, f"{task.name}, {backbone}: validation {task.key} per epoch for each training "
                                         f"fraction, and the {task.split} score against the fraction"))


def _ratings_section(report: _Report, ratings: pd.DataFrame) -> None:
    from radtl.interpret.rating import rating_summary

    report.blocks.append(Heading("Heatmap ratings", 2))
    report.blocks.append(Paragraph(
        f"{len(ratings)} rating(s) of {ratings['case'].nunique()} case(s) by {ratings['rater'].nunique()} rater(s), "
        "1 (irrelevant regions) to 5 (only relevant regions), sources shown blinded as panels (thesis 5.1)."
    ))
    report.table(rating_summary(ratings).reset_index(), "heatmap_ratings")
    per_case = ratings.groupby(["source", "case"])["rating"].mean().reset_index()
    samples = {source: group["rating"].tolist() for source, group in per_case.groupby("source")}
    comparison = report.compare(samples, "rating", {"section": "heatmap ratings"})
    report.statistics_blocks([({"ratings": "mean rating per case"}, comparison)], "heatmap_ratings_p_values")
    for note in ratings.attrs.get("notes", []):
        report.untested.append(f"heatmap ratings: {note}")


_PROCEDURE = (
    "Each comparison follows the study (thesis 3.3): Levene's test first; where variances differ "
    "(p < 0.05), Kruskal-Wallis over the initialisations and pairwise two-sided Mann-Whitney U tests "
    "with Bonferroni correction; otherwise one-way ANOVA and Tukey's HSD; two groups: the independent "
    "t-test (or Mann-Whitney U when variances differ). The runs compared are those of the learning rate "
    "chosen on validation. Runs with a missing or non-finite score (a diverged run) are left out and named."
)


def build_report(
    results: str | os.PathLike | Sequence[str | os.PathLike] | SweepResults,
    out_dir: str | os.PathLike,
    ratings: pd.DataFrame | None = None,
    title: str = "Initialisation comparison",
) -> tuple[Path, Path]:
    """Write the comparison report of ``results`` into ``out_dir``; return ``(report.md, report.html)``.

    Args:
        results: sweep folders or ``results.csv`` files (see :func:`load_results`), or loaded results.
        out_dir: the report's folder: ``report.md``, ``report.html``, ``figures/``, ``tables/``, ``statistics.json``.
        ratings: heatmap ratings from :func:`radtl.interpret.rating.read_ratings`, reported and tested by source.
        title: the report's title.
    """
    data = results if isinstance(results, SweepResults) else load_results(results)
    out_dir = Path(out_dir)
    report = _Report(out_dir)
    runs = data.results
    report.blocks.append(Paragraph(
        f"{len(runs)} run(s) from {', '.join(data.sources) or 'the given table'}: "
        + ", ".join(f"{task} ({len(group)})" for task, group in runs.groupby("task"))
        + "."
    ))
    report.blocks.append(Paragraph(_PROCEDURE))
    for name, group in runs.groupby("task", sort=False):
        ids = set(group["run_id"])
        _task_section(report, _Task(str(name), group, data.curves[data.curves["run_id"].isin(ids)]))
    if ratings is not None:
        _ratings_section(report, ratings)
    failed = runs[runs["status"] != "ok"]
    if not failed.empty:
        report.blocks.append(Heading("Runs that failed", 2))
        report.table(failed[["run_id", "task", "reason"]].fillna(""), "failed_runs")
    report.blocks.append(Heading("What could not be tested", 2))
    report.blocks.append(Bullets(report.untested or ["Every planned comparison could be tested."]))
    write_json_atomic(out_dir / "statistics.json", report.statistics, default=str)
    paths = write_document(out_dir, title, report.blocks)
    logger.info("report: %s (%d comparison(s), %d not tested)", paths[0], len(report.statistics), len(report.untested))
    return paths
