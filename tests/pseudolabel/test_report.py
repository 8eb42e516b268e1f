"""Specification of radtl.pseudolabel.report: mosaics, Fig. 2.11-style composition charts, embedding maps, the report."""

from __future__ import annotations

import logging
import shutil
import sys
import urllib.parse
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from radtl.pseudolabel.report import (
    UNREADABLE_GREY,
    cluster_mosaic,
    composition_chart,
    composition_table,
    embed_2d,
    embedding_plot,
    write_report,
)
from radtl.report import figures


def write_pngs(folder: Path, count: int, seed: int = 0) -> list[Path]:
    """``count`` small grey PNGs of varying shape (so padding is exercised) with random pixels."""
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(count):
        path = folder / f"image_{i}.png"
        Image.fromarray(rng.integers(0, 256, (20 + 3 * i, 30), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


def blobs(n: int = 60, d: int = 8, seed: int = 0) -> np.ndarray:
    """Three well-separated Gaussian blobs in ``d`` dimensions."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=10.0, size=(3, d))
    return centres[np.arange(n) % 3] + rng.normal(size=(n, d))


# -- cluster_mosaic -------------------------------------------------------------------------------


def test_mosaic_has_one_row_per_cluster_and_a_label_column_plus_per_cluster_columns(tmp_path):
    paths = write_pngs(tmp_path, 6)
    out = cluster_mosaic({0: paths[:3], 5: paths[3:], 9: paths}, tmp_path / "mosaic.png", per_cluster=4, tile=32)
    with Image.open(out) as image:
        assert image.size == ((1 + 4) * 32, 3 * 32)  # (width, height)


def test_mosaic_with_the_same_seed_writes_the_same_bytes_and_another_seed_draws_other_images(tmp_path):
    paths = write_pngs(tmp_path, 12)
    first = cluster_mosaic({1: paths}, tmp_path / "a.png", per_cluster=3, tile=16, seed=7).read_bytes()
    again = cluster_mosaic({1: paths}, tmp_path / "b.png", per_cluster=3, tile=16, seed=7).read_bytes()
    other = cluster_mosaic({1: paths}, tmp_path / "c.png", per_cluster=3, tile=16, seed=8).read_bytes()
    assert first == again
    assert first != other


def test_mosaic_draws_a_missing_image_file_as_a_grey_tile_and_warns_with_the_count(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="radtl.pseudolabel.report"):
        out = cluster_mosaic({0: [tmp_path / "vanished.png"]}, tmp_path / "mosaic.png", per_cluster=1, tile=32)
    pixels = np.asarray(Image.open(out))
    image_tile = pixels[:, 32:64]
    assert np.median(image_tile) == UNREADABLE_GREY
    assert "1 image(s) could not be read" in caplog.text


def test_mosaic_leaves_black_tiles_when_a_cluster_has_fewer_images_than_per_cluster(tmp_path):
    paths = write_pngs(tmp_path, 2)
    out = cluster_mosaic({3: paths}, tmp_path / "mosaic.png", per_cluster=5, tile=16, labels={3: "kept"})
    pixels = np.asarray(Image.open(out))
    assert pixels.shape == (16, 6 * 16)
    assert pixels[:, 16:48].any()  # the two images
    assert not pixels[:, 48:].any()  # three empty slots


# -- composition_table / composition_chart (thesis Fig. 2.11 / 2.15) -----------------------------


def test_composition_table_counts_each_value_per_cluster_with_missing_values_as_their_own_category():
    clusters = [2, 2, 2, 1, 1, 2]
    values = ["CT", "CT", None, "MR", "", float("nan")]
    table = composition_table(clusters, values)
    assert list(table.index) == [1, 2]
    assert table.loc[1].to_dict() == {"CT": 0, "(missing)": 1, "MR": 1}
    assert table.loc[2].to_dict() == {"CT": 2, "(missing)": 2, "MR": 0}


def test_composition_table_normalized_gives_the_fraction_of_each_value_inside_a_cluster():
    table = composition_table([0, 0, 0, 0, 1], ["CT", "CT", "CT", None, "MR"], missing_label="?", normalize=True)
    assert table.loc[0, "CT"] == pytest.approx(0.75)
    assert table.loc[0, "?"] == pytest.approx(0.25)
    assert table.loc[1, "MR"] == pytest.approx(1.0)
    np.testing.assert_allclose(table.sum(axis=1), 1.0)


def test_composition_table_rejects_clusters_and_values_of_different_lengths():
    with pytest.raises(ValueError, match="3 cluster ids but 2 values"):
        composition_table([0, 1, 2], ["CT", "MR"])


def test_composition_chart_writes_a_readable_png_for_three_clusters(tmp_path):
    out = composition_chart([0, 0, 1, 2, 2], ["CT", None, "MR", "MR", "CR"], tmp_path / "modality.png",
                            title="Modality")
    with Image.open(out) as image:
        image.load()
        assert image.width > 200 and image.height > 200


def test_composition_chart_grows_wider_to_keep_150_clusters_readable(tmp_path):
    rng = np.random.default_rng(0)
    clusters = rng.integers(0, 150, 3000)
    values = rng.choice([f"part{i}" for i in range(30)] + [None], 3000)
    small = composition_chart(clusters[:40] % 3, values[:40], tmp_path / "small.png", title="Body part")
    large = composition_chart(clusters, values, tmp_path / "large.png", title="BodyPartExamined", top=12)
    with Image.open(small) as few, Image.open(large) as many:
        many.load()
        assert many.width > 2 * few.width


# -- embed_2d / embedding_plot --------------------------------------------------------------------


@pytest.mark.parametrize("method", ["tsne", "pca"])
def test_embed_2d_maps_n_points_to_n_by_2_coordinates(method):
    xy = embed_2d(blobs(), method=method, seed=0)
    assert xy.shape == (60, 2)
    assert np.isfinite(xy).all()


@pytest.mark.parametrize("method", ["tsne", "pca"])
def test_embed_2d_with_the_same_seed_gives_the_same_map(method):
    np.testing.assert_allclose(embed_2d(blobs(), method, seed=3), embed_2d(blobs(), method, seed=3))


def test_embed_2d_tsne_caps_the_perplexity_so_a_handful_of_points_works():
    assert embed_2d(blobs(n=5), "tsne", seed=0, perplexity=30.0).shape == (5, 2)


def test_embed_2d_umap_without_umap_learn_raises_import_error_with_the_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "umap", None)  # makes `import umap` fail whether or not it is installed
    with pytest.raises(ImportError, match="pip install umap-learn"):
        embed_2d(blobs(), "umap")


def test_embed_2d_needs_at_least_three_points():
    with pytest.raises(ValueError, match="at least 3 points"):
        embed_2d(np.zeros((2, 4)), "pca")


def test_embed_2d_rejects_an_unknown_method():
    with pytest.raises(ValueError, match="unknown method"):
        embed_2d(blobs(), "isomap")


def test_embedding_plot_maps_a_random_subsample_of_max_points_rows_once_for_all_colourings(tmp_path, monkeypatch):
    seen = []

    def spy(embedding, method, seed, perplexity):
        seen.append(embedding.copy())
        return embedding[:, :2]

    monkeypatch.setattr(figures, "embed_2d", spy)  # embedding_plot lives in radtl.report.figures
    embedding = np.arange(200 * 3, dtype=float).reshape(200, 3)
    colourings = {"Modality": ["CT", "MR"] * 100, "cluster": list(range(200))}
    out = embedding_plot(embedding, colourings, tmp_path / "map.png", method="pca", max_points=50)
    assert len(seen) == 1
    rows = seen[0][:, 0] / 3
    assert seen[0].shape == (50, 3)
    assert len(set(rows)) == 50 and not np.array_equal(rows, np.arange(50))  # distinct random rows
    with Image.open(out) as image:
        assert image.width > 200


def test_embedding_plot_rejects_a_colouring_of_the_wrong_length(tmp_path):
    with pytest.raises(ValueError, match="'cluster' has 3 values for 60 points"):
        embedding_plot(blobs(), {"cluster": [0, 1, 2]}, tmp_path / "map.png", method="pca")


# -- write_report ---------------------------------------------------------------------------------


class TagChecker(HTMLParser):
    """Collects image sources and checks that every opened non-void element is closed in order."""

    VOID = frozenset({"meta", "img", "br", "hr", "link", "input"})

    def __init__(self):
        super().__init__()
        self.stack: list[str] = []
        self.mismatched: list[str] = []
        self.srcs: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.srcs.append(dict(attrs)["src"])
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack.pop() != tag:
            self.mismatched.append(tag)

    def handle_data(self, data):
        self.text.append(data)


@pytest.fixture
def written_report(tmp_path):
    out_dir = tmp_path / "report"
    (out_dir / "figures").mkdir(parents=True)
    inside = out_dir / "figures" / "modality chart.png"
    outside = tmp_path / "mosaic.png"
    for path in (inside, outside):
        Image.new("L", (8, 8)).save(path)
    table = pd.DataFrame({"CT": [3, 0], "share": [0.123456, 1.0]}, index=pd.Index([7, 12], name="cluster"))
    md, page = write_report(
        out_dir,
        title="Pseudo-labels <v1>",
        summary={"clusters": 50, "kept": 36, "HS_M": 0.98765},
        tables={"Modality per cluster": table},
        figures={"Fig. 2.15: Modality per cluster": inside, "Fig. 2.12: random images": outside},
        notes=["report text missing for 12 of 240 items", "<script>alert(1)</script>"],
    )
    return out_dir, md, page


def test_write_report_writes_report_md_and_report_html_in_the_folder(written_report):
    out_dir, md, page = written_report
    assert (md, page) == (out_dir / "report.md", out_dir / "report.html")
    assert md.is_file() and page.is_file()


def test_report_markdown_holds_the_summary_and_tables_with_floats_to_three_decimals(written_report):
    text = written_report[1].read_text()
    assert "| HS_M | 0.988 |" in text
    assert "| cluster | CT | share |" in text
    assert "| 12 | 0 | 1.000 |" in text
    assert "- report text missing for 12 of 240 items" in text


def test_report_markdown_image_links_are_relative_and_resolve_after_the_folder_is_moved(written_report, tmp_path):
    out_dir, md, _ = written_report
    moved = tmp_path / "moved" / "report"
    shutil.copytree(out_dir, moved)
    shutil.copy(tmp_path / "mosaic.png", tmp_path / "moved" / "mosaic.png")
    links = [urllib.parse.unquote(line.split("](", 1)[1].rstrip(")")) for line in md.read_text().splitlines()
             if line.startswith("![")]
    assert links == ["figures/modality chart.png", "../mosaic.png"]
    assert all((moved / link).is_file() for link in links)


def test_report_html_escapes_text_and_parses_with_every_element_closed(written_report):
    page = written_report[2].read_text()
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    checker = TagChecker()
    checker.feed(page)
    checker.close()
    assert checker.mismatched == [] and checker.stack == []
    assert "<script>alert(1)</script>" in checker.text  # shown as text, not run


def test_report_html_image_sources_are_relative_to_the_report_folder(written_report):
    out_dir, _, page = written_report
    checker = TagChecker()
    checker.feed(page.read_text())
    assert checker.srcs == ["figures/modality%20chart.png", "../mosaic.png"]
    assert all((out_dir / urllib.parse.unquote(src)).is_file() for src in checker.srcs)


def test_write_report_refuses_a_figure_file_that_does_not_exist(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.png"):
        write_report(tmp_path, title="t", summary={}, tables={}, figures={"gone": tmp_path / "missing.png"})
