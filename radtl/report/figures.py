"""radtl's report figures: categorical colours, 2-D embedding maps, and the comparison report's curves and bars.

:func:`embed_2d` / :func:`embedding_plot` map any ``(n, d)`` features (fused pseudo-labelling
embeddings, a backbone's features) to 2-D, coloured by any labelling; the colours of categorical
values are shared by every chart (:data:`PALETTE`, :func:`ranked_categories`).

Each function draws one PNG with matplotlib's object-oriented :class:`~matplotlib.figure.Figure`
(no pyplot state) and returns its path. Curves are the mean over a setting's runs with a
band of one standard deviation, as RadiologyNET's training-progress figures (thesis 4.2) show
them; bars are the mean test score with one SD as the error bar and the pairwise p-values of
:func:`radtl.stats.compare_groups` as brackets above them. An evaluation's figures are its
:func:`confusion_matrix_plot` (a classifier) and :func:`prediction_scatter` (a regressor).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.colors import to_hex
from matplotlib.figure import Figure

from radtl.errors import MissingPackageError
from radtl.report.document import is_missing, save_figure

__all__ = [
    "MAX_OWN_COLOURS",
    "PALETTE",
    "as_categories",
    "bar_chart",
    "confusion_matrix_plot",
    "embed_2d",
    "embedding_plot",
    "format_p",
    "fraction_curves",
    "init_colour",
    "prediction_scatter",
    "ranked_categories",
    "validation_curves",
]

#: tab20 without its two greys, which are kept for "other" and for missing values: at most this
#: many values get a colour of their own in a chart or a scatter legend.
MAX_OWN_COLOURS = 18
PALETTE = tuple(to_hex(c) for i, c in enumerate(colormaps["tab20"].colors) if i not in (14, 15))
OTHER_COLOUR = "#7f7f7f"
MISSING_COLOUR = "#d9d9d9"
OTHER = "other"


def as_categories(values: Sequence, missing_label: str) -> list[str]:
    """Each value as its category name: ``str(value)``, or ``missing_label`` for None / NaN / ""."""
    return [missing_label if is_missing(v) else str(v) for v in values]


def ranked_categories(categories: Sequence[str], exclude: str | None = None) -> list[str]:
    """Distinct categories, most frequent first (ties by name), leaving ``exclude`` out."""
    counts = pd.Series(list(categories), dtype=object).value_counts()
    return sorted((c for c in counts.index if c != exclude), key=lambda c: (-counts[c], c))

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


def embed_2d(embedding: np.ndarray, method: str = "tsne", seed: int = 0, perplexity: float = 30.0) -> np.ndarray:
    """Map an ``(n, d)`` embedding to ``(n, 2)`` coordinates for plotting.

    ``"tsne"``: :class:`sklearn.manifold.TSNE` with ``init="pca"`` and perplexity
    ``min(perplexity, (n - 1) / 3)`` (t-SNE needs about three neighbours per unit of perplexity);
    ``"umap"``: ``umap.UMAP`` (package umap-learn, imported only here); ``"pca"``: the first two
    principal components, fast and deterministic. An embedding with one dimension is padded with a
    zero column.

    Args:
        embedding: ``(n, d)`` array, n >= 3.
        method: "tsne", "umap" or "pca".
        seed: random state of the method, so the same seed gives the same map.
        perplexity: t-SNE perplexity before the cap above (ignored by the other methods).
    """
    data = np.asarray(embedding, dtype=np.float64)
    if data.ndim != 2:
        raise ValueError(f"embed_2d takes an (n, d) embedding, got shape {data.shape}")
    n = data.shape[0]
    if n < 3:
        raise ValueError(f"embed_2d needs at least 3 points to draw a 2-D map, got {n}")
    if data.shape[1] < 2:
        data = np.hstack([data, np.zeros((n, 2 - data.shape[1]))])
    if method == "pca":
        from sklearn.decomposition import PCA

        return PCA(n_components=2, random_state=seed).fit_transform(data)
    if method == "tsne":
        from sklearn.manifold import TSNE

        tsne = TSNE(n_components=2, init="pca", perplexity=min(perplexity, (n - 1) / 3), random_state=seed)
        return tsne.fit_transform(data)
    if method == "umap":
        try:
            import umap
        except ImportError as error:
            raise MissingPackageError("embed_2d(method='umap') needs the umap-learn package: pip install umap-learn") from error
        reducer = umap.UMAP(n_components=2, n_neighbors=min(15, n - 1), random_state=seed)
        return np.asarray(reducer.fit_transform(data))
    raise ValueError(f"embed_2d: unknown method {method!r}; use 'tsne', 'umap' or 'pca'")


def embedding_plot(
    embedding: np.ndarray,
    colourings: Mapping[str, Sequence],
    path: str | os.PathLike,
    *,
    method: str = "tsne",
    max_points: int = 5000,
    seed: int = 0,
    perplexity: float = 30.0,
) -> Path:
    """Write a 2-D map of the embedding, one panel per colouring (e.g. Modality, BodyPartExamined, cluster).

    At most ``max_points`` rows, drawn at random with ``seed``, are mapped by :func:`embed_2d`
    once and drawn in every panel. Colours are categorical: the 18 most frequent values of a
    colouring get their own, the rest are "other" and missing values "(missing)", so a legend has
    at most 20 entries.

    Args:
        embedding: ``(n, d)`` array of the items' (fused) embeddings.
        colourings: panel title -> the value of each of the n items.
        path: the PNG file to write.
        method: "tsne", "umap" or "pca" (see :func:`embed_2d`).
        max_points: the most rows mapped and drawn.
        seed: seed of the subsample and of the method.
        perplexity: t-SNE perplexity (see :func:`embed_2d`).
    """
    data = np.asarray(embedding)
    if data.ndim != 2:
        raise ValueError(f"embedding_plot takes an (n, d) embedding, got shape {data.shape}")
    n = data.shape[0]
    for name, values in colourings.items():
        if len(values) != n:
            raise ValueError(f"embedding_plot: colouring {name!r} has {len(values)} values for {n} points")
    rows = np.arange(n)
    if n > max_points:
        rows = np.sort(np.random.default_rng(seed).choice(n, size=max_points, replace=False))
    xy = embed_2d(data[rows], method, seed, perplexity)

    panels = list(colourings.items()) or [("", [None] * n)]
    ncols = min(len(panels), 3)
    nrows = math.ceil(len(panels) / ncols)
    fig = Figure(figsize=(7.5 * ncols, 5.0 * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    size = float(np.clip(20000 / len(rows), 1.0, 20.0))
    for ax, (name, values) in zip(axes, panels):
        categories = np.array(as_categories([values[i] for i in rows], "(missing)"), dtype=object)
        if name:
            ranked = ranked_categories(categories, exclude="(missing)")
            colours = {c: PALETTE[i] for i, c in enumerate(ranked[:MAX_OWN_COLOURS])}
            groups = [(c, categories == c, colours[c]) for c in colours]
            other = ~np.isin(categories, list(colours) + ["(missing)"])
            groups += [(OTHER, other, OTHER_COLOUR), ("(missing)", categories == "(missing)", MISSING_COLOUR)]
        else:
            groups = [("", np.ones(len(rows), dtype=bool), PALETTE[0])]
        for label, mask, colour in reversed(groups):  # grey groups underneath the named ones
            if mask.any():
                ax.scatter(xy[mask, 0], xy[mask, 1], s=size, c=colour, label=label or None, alpha=0.7, linewidths=0)
        ax.set_title(name)
        ax.set_xticks([])
        ax.set_yticks([])
        if name:
            handles, labels = ax.get_legend_handles_labels()
            ax.legend(handles[::-1], labels[::-1], loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=7,
                      markerscale=max(1.0, 6.0 / math.sqrt(size)), frameon=False)
    for ax in axes[len(panels) :]:
        ax.set_axis_off()
    fig.suptitle(f"{method.upper()} map of {len(rows)} of {n} items")
    return save_figure(fig, path)


def confusion_matrix_plot(
    matrix: np.ndarray, labels: Sequence[str], path: str | os.PathLike, *, title: str = ""
) -> Path:
    """Draw a confusion matrix as a grid of counts, rows the true class and columns the predicted one.

    Each cell is shaded by the fraction of its row (the true class's images) so that classes of
    different sizes read alike, and holds the count.

    Args:
        matrix: ``(C, C)`` counts, as :func:`radtl.engines.confusion_matrix` gives them.
        labels: the C class names, in index order.
        path: the PNG to write.
        title: the figure title.
    """
    counts = np.asarray(matrix)
    if counts.ndim != 2 or counts.shape != (len(labels), len(labels)):
        raise ValueError(f"confusion_matrix_plot: a {len(labels)}-class matrix is ({len(labels)}, {len(labels)}), "
                         f"got shape {counts.shape}")
    rows = counts.sum(axis=1, keepdims=True)
    fractions = np.divide(counts, rows, out=np.zeros(counts.shape, dtype=float), where=rows > 0)
    side = max(3.0, 1.5 + 0.6 * len(labels))
    fig = Figure(figsize=(side + 1.0, side), layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(fractions, cmap="Blues", vmin=0.0, vmax=1.0)
    for (row, column), count in np.ndenumerate(counts):
        ax.text(column, row, str(int(count)), ha="center", va="center", fontsize=9,
                color="white" if fractions[row, column] > 0.5 else "black")
    ticks, names = np.arange(len(labels)), [str(name) for name in labels]
    slanted = len(labels) > 2 or max(map(len, names), default=0) > 8  # long names would run into each other
    ax.set_xticks(ticks, names, rotation=45 if slanted else 0, ha="right" if slanted else "center")
    ax.set_yticks(ticks, names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=10)
    fig.colorbar(image, ax=ax, shrink=0.8, label="fraction of the true class")
    return save_figure(fig, path)


def prediction_scatter(
    true: Sequence[float], predicted: Sequence[float], path: str | os.PathLike, *, unit: str | None = None,
    title: str = "",
) -> Path:
    """Predicted against true values, one point per case, with the identity line ``predicted = true``.

    The title ends with the mean absolute error of the points drawn.

    Args:
        true: the reference values.
        predicted: the model's values, in the same order.
        path: the PNG to write.
        unit: the values' unit, for the axes and the MAE (``"months"``).
        title: the title's beginning (the MAE follows).
    """
    x, y = np.asarray(true, dtype=float), np.asarray(predicted, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"prediction_scatter takes two equal-length value lists, got {x.shape} and {y.shape}")
    suffix = f" ({unit})" if unit else ""
    mae = float(np.mean(np.abs(y - x))) if x.size else math.nan
    fig = Figure(figsize=(5.0, 5.0), layout="constrained")
    ax = fig.subplots()
    finite = np.concatenate([x, y])
    finite = finite[np.isfinite(finite)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    margin = 0.05 * ((high - low) or 1.0)
    low, high = low - margin, high + margin
    ax.plot([low, high], [low, high], color="grey", linestyle="--", linewidth=1, label="predicted = true")
    ax.scatter(x, y, s=14, color=PALETTE[0], alpha=0.8, linewidths=0, label=f"{x.size} case(s)")
    ax.set_xlim(low, high)
    ax.set_ylim(low, high)
    ax.set_aspect("equal")
    ax.set_xlabel(f"true{suffix}")
    ax.set_ylabel(f"predicted{suffix}")
    ax.legend(loc="upper left", fontsize=8, frameon=False)
    ax.grid(alpha=0.3)
    error = "MAE n/a" if math.isnan(mae) else f"MAE {mae:.2f}{' ' + unit if unit else ''}"
    ax.set_title(f"{title}: {error}" if title else error, fontsize=10)
    return save_figure(fig, path)
