"""What people look at after pseudo-labelling, and the report that ties it together (thesis 2.4).

RadiologyNET judged its clusters by eye as much as by HS / NMI: random images per cluster
(thesis Fig. 2.12), the mixture of Modality and BodyPartExamined inside each cluster as stacked
bars (Fig. 2.11 on the clustering sample, Fig. 2.15 on the whole labelled archive), and the sizes
and fate of the final groups (Fig. 2.14: 50 groups, 14 heterogeneous ones dropped, 36 kept).
This module draws those views and writes them into one report:

- :func:`cluster_mosaic`: one row of random images per cluster (Fig. 2.12);
- :func:`composition_table` / :func:`composition_chart`: value counts per cluster and the
  stacked bars of Fig. 2.11 / 2.15, one chart per attribute (call it once for BodyPartExamined,
  once for Modality);
- :func:`elbow_plot`: the clustering objective against k, with the Kneedle elbow marked;
- :func:`embed_2d` / :func:`embedding_plot` (from :mod:`radtl.report.figures`, which the
  evaluation tools share): a 2-D map (t-SNE, UMAP or PCA) of the fused embeddings, coloured by
  any labelling;
- :func:`write_report`: ``report.md`` and ``report.html`` with the same content (summary, tables,
  figures, notes), figure links relative so the folder can be moved or zipped.

Every function writes one file (two for :func:`write_report`) atomically and returns its path.
Figures use matplotlib's object-oriented :class:`~matplotlib.figure.Figure`, no pyplot state.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from PIL import Image, ImageDraw, ImageFont

from radtl.atomic import write_bytes_atomic
from radtl.dicom.image import resize_longest_pad_uint8
from radtl.png import encode_png
from radtl.report import document
from radtl.report.document import (
    Bullets,
    Heading,
    Table,
    format_cell,
    save_figure,
    table_from_frame,
    write_document,
)
from radtl.report.figures import (
    MAX_OWN_COLOURS,
    MISSING_COLOUR,
    OTHER,
    OTHER_COLOUR,
    PALETTE,
    as_categories,
    embed_2d,
    embedding_plot,
    ranked_categories,
)

__all__ = [
    "cluster_mosaic",
    "composition_chart",
    "composition_table",
    "elbow_plot",
    "embed_2d",
    "embedding_plot",
    "write_report",
]

logger = logging.getLogger(__name__)

#: Grey level of the tile drawn for an image that could not be read (its X is white).
UNREADABLE_GREY = 128


# --------------------------------------------------------------------------------------------
# Mosaic of random images per cluster (thesis Fig. 2.12)
# --------------------------------------------------------------------------------------------


def _load_tile(path: str | os.PathLike, tile: int) -> np.ndarray | None:
    """The image at ``path`` as grey, fitted into ``tile x tile`` with black padding; None if unreadable."""
    try:
        with Image.open(path) as image:
            grey = np.asarray(image.convert("L"))
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        logger.debug("cluster_mosaic: cannot read %s: %s", path, error)
        return None
    return resize_longest_pad_uint8(grey, tile)


def _unreadable_tile(tile: int) -> np.ndarray:
    image = Image.new("L", (tile, tile), UNREADABLE_GREY)
    draw = ImageDraw.Draw(image)
    draw.line((0, 0, tile - 1, tile - 1), fill=255, width=max(1, tile // 32))
    draw.line((0, tile - 1, tile - 1, 0), fill=255, width=max(1, tile // 32))
    return np.asarray(image)


def _label_tile(text: str, tile: int) -> np.ndarray:
    """``text`` in white on dark grey, word-wrapped (and cut) to fit a ``tile x tile`` square."""
    image = Image.new("L", (tile, tile), 40)
    draw = ImageDraw.Draw(image)
    try:
        font = ImageFont.load_default(size=max(8, tile // 6))
    except (ImportError, OSError):  # Pillow without FreeType: the fixed bitmap font
        font = ImageFont.load_default()
    margin = max(1, tile // 16)
    lines: list[str] = []
    for word in text.split():
        if lines and draw.textlength(f"{lines[-1]} {word}", font=font) <= tile - 2 * margin:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    line_height = font.getbbox("Ag")[3] + 1
    for i, line in enumerate(lines):
        draw.text((margin, margin + i * line_height), line, fill=255, font=font)
    return np.asarray(image)


def cluster_mosaic(
    images: Mapping[int, Sequence[str | os.PathLike]],
    path: str | os.PathLike,
    *,
    per_cluster: int = 8,
    tile: int = 64,
    seed: int = 0,
    labels: Mapping[int, str] | None = None,
) -> Path:
    """Write a PNG with one row of randomly drawn images per cluster, as thesis Fig. 2.12 shows them.

    Rows follow the sorted cluster ids. Each row starts with a label tile (the cluster id and, if
    given, its label text, e.g. "12 (kept)"), then up to ``per_cluster`` images drawn without
    replacement from that cluster's list, each read as grey and fitted into ``tile x tile`` with
    black padding (the RadiologyNET resize, :func:`radtl.dicom.image.resize_longest_pad_uint8`). A cluster
    with fewer images leaves black tiles. An image that cannot be read becomes a grey tile with
    a white X; how many there were is logged as a warning, and the mosaic is still written.
    The mosaic is ``len(images) * tile`` pixels high and ``(1 + per_cluster) * tile`` wide.

    Args:
        images: cluster id -> paths of that cluster's images (PNG or anything Pillow reads).
        path: the PNG file to write.
        per_cluster: images per row.
        tile: side of each square tile in pixels.
        seed: seed of the numpy Generator that draws the images, so the same seed gives the same file.
        labels: optional cluster id -> text shown after the id in the label tile.
    """
    if not images:
        raise ValueError("cluster_mosaic needs at least one cluster, got an empty mapping")
    if per_cluster < 1 or tile < 8:
        raise ValueError(f"cluster_mosaic needs per_cluster >= 1 and tile >= 8, got {per_cluster} and {tile}")
    rng = np.random.default_rng(seed)
    clusters = sorted(images)
    canvas = np.zeros((len(clusters) * tile, (1 + per_cluster) * tile), dtype=np.uint8)
    unreadable = 0
    for row, cluster in enumerate(clusters):
        top = row * tile
        text = str(cluster)
        if labels is not None and labels.get(cluster):
            text = f"{text} ({labels[cluster]})"
        canvas[top : top + tile, :tile] = _label_tile(text, tile)
        paths = list(images[cluster])
        drawn = rng.choice(len(paths), size=min(per_cluster, len(paths)), replace=False) if paths else []
        for column, index in enumerate(drawn, start=1):
            pixels = _load_tile(paths[int(index)], tile)
            if pixels is None:
                unreadable += 1
                pixels = _unreadable_tile(tile)
            canvas[top : top + tile, column * tile : (column + 1) * tile] = pixels
    if unreadable:
        logger.warning("cluster_mosaic: %d image(s) could not be read and are drawn as grey tiles", unreadable)
    return write_bytes_atomic(path, encode_png(canvas))


# --------------------------------------------------------------------------------------------
# Composition of each cluster (thesis Fig. 2.11 / 2.15)
# --------------------------------------------------------------------------------------------


def composition_table(
    clusters: Sequence[int],
    values: Sequence[str | None],
    missing_label: str = "(missing)",
    *,
    normalize: bool = False,
) -> pd.DataFrame:
    """Count each value (e.g. Modality) inside each cluster: the numbers behind thesis Fig. 2.11 / 2.15.

    Rows are the sorted cluster ids (index name ``"cluster"``), columns the values, most frequent
    overall first (index name ``"value"``). None, NaN and blank strings count as ``missing_label``,
    a category of its own.

    Args:
        clusters: the cluster id of each item.
        values: the attribute value of each item, aligned with ``clusters``.
        missing_label: the column name for missing values.
        normalize: divide each row by its total, giving the fraction of each value in the cluster.
    """
    if len(clusters) != len(values):
        raise ValueError(f"composition_table: {len(clusters)} cluster ids but {len(values)} values")
    categories = as_categories(values, missing_label)
    table = pd.crosstab(pd.Series(list(clusters), name="cluster"), pd.Series(categories, name="value", dtype=object))
    order = ranked_categories(categories)  # every category, missing included, by frequency
    table = table.reindex(columns=order).sort_index()
    table.columns.name = "value"
    if normalize:
        return table.div(table.sum(axis=1), axis=0)
    return table


def composition_chart(
    clusters: Sequence[int],
    values: Sequence[str | None],
    path: str | os.PathLike,
    *,
    title: str,
    missing_label: str = "(missing)",
    top: int = 12,
) -> Path:
    """Write thesis Fig. 2.11 / 2.15 for one attribute: per cluster, a bar stacked by value fractions.

    The ``top`` most frequent values get their own tab20 colour (stacked from the bottom, most
    frequent first), the rest are merged into "other" (dark grey), and missing values are a
    category of their own (light grey, hatched, at the top). Bars are in sorted cluster order; the
    figure widens with the number of clusters up to a cap, so 150 clusters stay readable. The
    legend sits outside the axes. The fractions come from :func:`composition_table`.

    Args:
        clusters: the cluster id of each item.
        values: the attribute value of each item (e.g. BodyPartExamined), aligned with ``clusters``.
        path: the PNG file to write.
        title: the chart title, e.g. "Modality per cluster".
        missing_label: legend entry for None / NaN / blank values.
        top: how many of the most frequent values get a colour of their own (0 to 18).
    """
    if not 0 <= top <= MAX_OWN_COLOURS:
        raise ValueError(f"composition_chart: top must be between 0 and {MAX_OWN_COLOURS}, got {top}")
    if len(clusters) == 0:
        raise ValueError("composition_chart needs at least one item, got none")
    fractions = composition_table(clusters, values, missing_label, normalize=True)
    named = [c for c in fractions.columns if c != missing_label][:top]
    rest = [c for c in fractions.columns if c != missing_label and c not in named]
    segments: list[tuple[str, np.ndarray, dict]] = [
        (name, fractions[name].to_numpy(), {"color": PALETTE[i]}) for i, name in enumerate(named)
    ]
    if rest:
        segments.append((OTHER, fractions[rest].sum(axis=1).to_numpy(), {"color": OTHER_COLOUR}))
    if missing_label in fractions.columns:
        style = {"color": MISSING_COLOUR, "hatch": "///", "edgecolor": "#a0a0a0"}
        segments.append((missing_label, fractions[missing_label].to_numpy(), style))

    n = len(fractions)
    width_in = min(3.0 + 0.14 * n, 28.0)
    fig = Figure(figsize=(width_in, 4.5))
    ax = fig.add_subplot()
    x = np.arange(n)
    bottom = np.zeros(n)
    for name, heights, style in segments:
        ax.bar(x, heights, bottom=bottom, width=0.85, linewidth=0, label=name, **style)
        bottom += heights
    fontsize = 8 if n <= 40 else 6
    step = max(1, math.ceil(n / (width_in * 72 / (fontsize + 2))))  # thin the tick labels past the width cap
    ax.set_xticks(x[::step], [str(c) for c in fractions.index[::step]], rotation=90 if n > 20 else 0, fontsize=fontsize)
    ax.set_xlim(-0.6, n - 0.4)
    ax.set_ylim(0, 1)
    ax.set_xlabel("cluster")
    ax.set_ylabel("fraction of the cluster")
    ax.set_title(title)
    handles, legend_labels = ax.get_legend_handles_labels()
    ax.legend(handles[::-1], legend_labels[::-1], loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8,
              frameon=False)  # reversed: the legend reads top-down like the stack
    return save_figure(fig, path)


def elbow_plot(ks: Sequence[int], objective: Sequence[float], k: int, path: str | os.PathLike, *,
               title: str = "Elbow") -> Path:
    """Write the objective (within-cluster sum of distances) against k, the chosen ``k`` marked (thesis 2.4.2).

    Args:
        ks: the numbers of clusters tried.
        objective: the clustering objective for each.
        k: the elbow.
        path: the PNG file to write.
        title: the chart title.
    """
    fig = Figure(figsize=(5.0, 3.5))
    ax = fig.add_subplot()
    ax.plot(ks, objective, marker="o", color=PALETTE[0])
    ax.axvline(k, color=PALETTE[2], linestyle="--", label=f"elbow: k = {k}")
    ax.set_xlabel("k (clusters)")
    ax.set_ylabel("objective")
    ax.set_title(title)
    ax.legend(frameon=False)
    fig.tight_layout()
    return save_figure(fig, path)


# --------------------------------------------------------------------------------------------
# Report: one document, rendered as Markdown and as HTML (radtl.report.document)
# --------------------------------------------------------------------------------------------


def write_report(
    out_dir: str | os.PathLike,
    *,
    title: str,
    summary: Mapping[str, object],
    tables: Mapping[str, pd.DataFrame],
    figures: Mapping[str, str | os.PathLike],
    notes: Sequence[str] = (),
) -> tuple[Path, Path]:
    """Write ``out_dir/report.md`` and ``out_dir/report.html`` with the same content.

    The document is: the title; the summary as a two-column key / value table; each table under
    its name (the index as first column unless it is the default 0..n-1, floats with 3 decimals);
    each figure (e.g. the Fig. 2.11 / 2.15 charts, the mosaic) with its caption, linked by a path
    relative to ``out_dir`` so the folder can be moved or zipped with its figures; the notes as
    a bullet list. The HTML escapes all text and is one file with inline CSS, apart from the
    images. A figure file that does not exist raises :class:`FileNotFoundError`.

    Args:
        out_dir: the folder of the report, created if needed.
        title: the report title.
        summary: key -> value shown in the summary table (e.g. "clusters": 50).
        tables: table name -> DataFrame.
        figures: caption -> image file.
        notes: free-text remarks, e.g. "report text missing for 12 of 240 items".
    """
    blocks: list = []
    if summary:
        blocks += [Heading("Summary", 2), Table(["Key", "Value"], [[str(k), format_cell(v)] for k, v in summary.items()])]
    if tables:
        blocks.append(Heading("Tables", 2))
        for name, frame in tables.items():
            blocks += [Heading(name, 3), table_from_frame(frame)]
    if figures:
        blocks.append(Heading("Figures", 2))
        blocks += [document.Image(file, caption) for caption, file in figures.items()]
    if notes:
        blocks += [Heading("Notes", 2), Bullets([str(note) for note in notes])]
    return write_document(out_dir, title, blocks)
