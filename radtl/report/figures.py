"""The comparison report's figures: validation curves, resource-limited curves, bars with p-values.

Each function draws one PNG with matplotlib's object-oriented :class:`~matplotlib.figure.Figure`
(no pyplot state) and returns its path. Curves are the mean over a setting's runs with a
band of one standard deviation, as RadiologyNET's training-progress figures (thesis 4.2) show
them; bars are the mean test score with one SD as the error bar and the pairwise p-values of
:func:`radtl.stats.compare_groups` as brackets above them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.figure import Figure

from radtl.report.document import save_figure

__all__ = ["bar_chart", "format_p", "fraction_curves", "init_colour", "validation_curves"]

_KNOWN = {"random": 0, "imagenet": 1, "radiologynet": 2}


def init_colour(init: str) -> str:
    """One colour per initialisation, the same in every figure of a report."""
    palette = colormaps["tab10"].colors
    return palette[_KNOWN.get(init, 3 + sum(map(ord, init)) % 7)]


def format_p(p: float | None) -> str:
    """``p = 0.024``, ``p < 0.001``, or ``n/a`` where no test was possible."""
    if p is None or not np.isfinite(p):
        return "n/a"
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def _band(ax, x: np.ndarray, runs: np.ndarray, colour, label: str) -> None:
    """Mean over the rows of ``runs`` (runs x epochs, NaN where a run had stopped) with a +/- 1 SD band."""
    counts = np.sum(np.isfinite(runs), axis=0)
    keep = counts > 0
    with np.errstate(invalid="ignore"):
        mean = np.nanmean(runs[:, keep], axis=0)
        sd = np.nanstd(runs[:, keep], axis=0, ddof=1) if runs.shape[0] > 1 else np.zeros(keep.sum())
    sd = np.nan_to_num(sd)
    ax.plot(x[keep], mean, color=colour, label=f"{label} (n={runs.shape[0]})", marker="o", markersize=3)
    ax.fill_between(x[keep], mean - sd, mean + sd, color=colour, alpha=0.2, linewidth=0)


def _epoch_matrix(curves: pd.DataFrame, column: str, epochs: int) -> np.ndarray:
    """Runs x epochs 1..``epochs`` of ``column``; NaN after a run stopped early."""
    table = curves.pivot_table(index="run_id", columns="epoch", values=column, aggfunc="first")
    return table.reindex(columns=range(1, epochs + 1)).to_numpy(dtype=float)


def validation_curves(
    curves: Mapping[str, pd.DataFrame], metric: str, path: str | os.PathLike, *, epochs: int = 10, title: str = ""
) -> Path:
    """Per-epoch validation ``metric`` of each initialisation's runs over the first ``epochs`` epochs.

    Args:
        curves: init -> rows of ``curves.csv`` (``run_id``, ``epoch``, ``val_<metric>``) of its runs.
        metric: the column to draw, e.g. ``val_f1``.
        path: the PNG to write.
        epochs: how many epochs the x axis shows (the study's figures: the first 10).
        title: the figure title.
    """
    fig = Figure(figsize=(6.0, 3.8), layout="constrained")
    ax = fig.subplots()
    x = np.arange(1, epochs + 1)
    for init, rows in curves.items():
        if len(rows):
            _band(ax, x, _epoch_matrix(rows, metric, epochs), init_colour(init), init)
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric)
    ax.set_xticks(x)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=10)
    return save_figure(fig, path)


def fraction_curves(
    curves: Mapping[float, Mapping[str, pd.DataFrame]],
    scores: pd.DataFrame,
    metric: str,
    test_metric: str,
    path: str | os.PathLike,
    *,
    epochs: int = 10,
    title: str = "",
) -> Path:
    """The resource-limited experiment: validation curves per training fraction, and test score against fraction.

    Args:
        curves: training fraction -> init -> ``curves.csv`` rows of its runs (one panel per fraction).
        scores: one row per run with ``train_fraction``, ``init`` and ``test_metric`` (the last panel).
        metric: validation column of the curves, e.g. ``val_f1``.
        test_metric: test column of ``scores``, e.g. ``test_f1``.
        path: the PNG to write.
        epochs: epochs on the curves' x axis (the study: 10).
        title: the figure title.
    """
    fractions = sorted(curves)
    fig = Figure(figsize=(3.6 * (len(fractions) + 1), 3.6), layout="constrained")
    axes = fig.subplots(1, len(fractions) + 1, squeeze=False)[0]
    x = np.arange(1, epochs + 1)
    for ax, fraction in zip(axes, fractions):
        for init, rows in curves[fraction].items():
            if len(rows):
                _band(ax, x, _epoch_matrix(rows, metric, epochs), init_colour(init), init)
        ax.set_title(f"{fraction:.0%} of the training data", fontsize=9)
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    ax = axes[-1]
    for init, rows in scores.groupby("init", sort=False):
        summary = rows.groupby("train_fraction")[test_metric].agg(["mean", "std"]).sort_index()
        ax.errorbar(summary.index * 100, summary["mean"], yerr=summary["std"].fillna(0.0), marker="o", capsize=3,
                    color=init_colour(str(init)), label=str(init))
    ax.set_xlabel("training data (%)")
    ax.set_ylabel(test_metric)
    ax.set_title("test score by training fraction", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    return save_figure(fig, path)


def bar_chart(
    values: Mapping[str, Sequence[float]],
    pairs: Sequence[tuple[str, str, float | None]],
    metric: str,
    path: str | os.PathLike,
    *,
    title: str = "",
) -> Path:
    """Mean +/- SD of each group's ``values`` as bars, with a bracket and its p-value per compared pair.

    Args:
        values: group (init) -> the runs' scores.
        pairs: ``(group_a, group_b, p)`` brackets to draw; ``p`` None is drawn as "n/a".
        metric: the y-axis label.
        path: the PNG to write.
        title: the figure title.
    """
    groups = list(values)
    means = np.array([np.mean(values[g]) if len(values[g]) else np.nan for g in groups])
    sds = np.array([np.std(values[g], ddof=1) if len(values[g]) > 1 else 0.0 for g in groups])
    fig = Figure(figsize=(1.6 * len(groups) + 2.0, 4.0), layout="constrained")
    ax = fig.subplots()
    x = np.arange(len(groups))
    ax.bar(x, means, yerr=sds, capsize=4, color=[init_colour(g) for g in groups], alpha=0.85)
    for i, g in enumerate(groups):
        ax.scatter(np.full(len(values[g]), i), values[g], color="black", s=8, zorder=3)
    finite = [v for g in groups for v in values[g] if np.isfinite(v)] + list((means + sds)[np.isfinite(means)])
    top = max(finite) if finite else 1.0
    bottom = min(0.0, min(finite)) if finite else 0.0
    step = 0.08 * ((top - bottom) or 1.0)
    pairs = sorted(((groups.index(a), groups.index(b), p) for a, b, p in pairs if a in groups and b in groups),
                   key=lambda pair: (abs(pair[1] - pair[0]), min(pair[:2])))  # short brackets below long ones
    for level, (xa, xb, p) in enumerate(pairs, start=1):
        y = top + level * step
        ax.plot([xa, xa, xb, xb], [y - step * 0.3, y, y, y - step * 0.3], color="black", linewidth=0.8)
        ax.text((xa + xb) / 2, y, format_p(p), ha="center", va="bottom", fontsize=8)
    ax.set_ylim(bottom, top + (len(pairs) + 1) * step)
    ax.set_xticks(x, groups)
    ax.set_ylabel(metric)
    ax.set_title(title, fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    return save_figure(fig, path)
