"""``radtl pseudolabel``: a generated archive with known structure in, its structure recovered as pseudo-labels."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from radtl.cli import main as cli_main
from radtl.dicom.convert import ExportSettings, convert_tree
from radtl.dicom.index import build_index
from radtl.dicom.synthetic import write_archive, write_reports
from radtl.pseudolabel.pipeline import load_config, run_pseudolabel

IMAGE_SIZE = 32
TINY_SOURCES = {
    "tags": {"method": "autoencoder", "hidden": [32, 16, 16], "dim": 8, "learning_rate": 1e-2, "batch_size": 16,
             "max_epochs": 20, "patience": 3},
    "images": {"folder": "converted", "image_size": IMAGE_SIZE, "channels": [4, 8], "bottleneck": 8,
               "learning_rate": 1e-3, "batch_size": 16, "max_epochs": 4, "patience": 2},
    "text": {"reports": "reports.csv", "method": "pv-dbow", "min_count": 2, "vector_size": 16, "epochs": 30, "sample": 0},
}


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    """40 studies (CT, MR, CR, DX; 8 body parts) with phantom images, reports, an index and converted PNGs.

    One file's pixel data is cut short, so it is indexed but fails conversion.
    """
    root = tmp_path_factory.mktemp("pseudolabel")
    files = write_archive(root / "dicom", studies=40, series_per_study=1, instances_per_series=3,
                          image_size=IMAGE_SIZE, pixels="phantom", body_part_missing=0.3, seed=5)
    write_reports(files, root / "reports.csv", missing=0.1, short=0.05, seed=5)
    broken = files[0].path
    data = broken.read_bytes()
    broken.write_bytes(data[: len(data) - IMAGE_SIZE * IMAGE_SIZE])
    build_index(root / "dicom", root / "index", progress=False)
    convert_tree(root / "dicom", root / "converted", ExportSettings(size=IMAGE_SIZE), progress=False)
    return root


def _config(root: Path, name: str, **settings) -> Path:
    values = {"index": "index", "out": name, **TINY_SOURCES,
              "clustering": {"k": "elbow", "ks": [4, 6, 8, 10, 12, 15, 20]},
              "fusion": {"method": "embeddings", "balance": True},
              "report": {"embedding": "pca", "per_cluster": 4, "tile": 32}}
    values.update(settings)
    values = {k: v for k, v in values.items() if v is not None}
    path = root / f"{name}.yaml"
    path.write_text(yaml.safe_dump(values), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def result(archive):
    return run_pseudolabel(_config(archive, "all_sources"), progress=False)


def test_pseudolabels_recover_modality_and_body_part_far_above_a_shuffled_baseline(result):
    for split in ("training", "test"):
        scores = result.metrics["splits"][split]
        assert scores["S"] > 0.6, scores
        assert scores["S"] > scores["S_shuffled"] + 0.3, scores


def test_every_source_was_used_and_distances_were_scored(result):
    assert all(result.metrics["sources"][name]["used"] for name in ("tags", "images", "text"))
    scores = result.metrics["splits"]["training"]
    assert 0 <= scores["D_I"] <= 2 and 0 <= scores["D_D"] <= 2 and scores["D_score"] > 0


def test_missing_reports_and_failed_conversions_are_counted_not_dropped(result, archive):
    labels = pd.read_csv(result.out / "labels.csv", keep_default_na=False)
    assert labels["path"].nunique() == 120
    failed = labels[labels["image"] == ""]
    assert len(failed) == 1 and "images" in failed["missing_sources"].iloc[0]
    notes = "\n".join(result.notes)
    assert "images missing for 1 of 120 items: conversion:" in notes
    assert "text missing for" in notes and "no report" in notes and "report too short" in notes
    no_text = labels["missing_sources"].str.contains("text")
    assert no_text.any() and labels.loc[no_text, "cluster"].notna().all()


def test_labels_table_and_pretraining_datalist_hold_the_kept_clusters(result):
    labels = pd.read_csv(result.out / "labels.csv", keep_default_na=False)
    assert {"path", "frame", "image", "split", "cluster", "kept"} <= set(labels.columns)
    assert set(labels.loc[labels["kept"], "cluster"]) == set(result.kept)
    datalist = json.loads((result.out / "datalist.json").read_text())
    items = datalist["training"] + datalist["validation"] + datalist["test"]
    assert len(items) == int((labels["kept"] & (labels["image"] != "")).sum())
    assert {item["label"] for item in items} <= set(range(len(result.kept)))
    assert all(Path(item["image"]).is_file() for item in items)
    assert {item["modality"] for item in items} <= set(labels["Modality"])  # the pretraining bundle's --modality filter
    assert len(datalist["labels"]) == len(result.kept)


def test_patients_do_not_cross_splits(result, archive):
    labels = pd.read_csv(result.out / "labels.csv", keep_default_na=False)
    patients = labels["path"].map(lambda p: Path(p).relative_to(archive / "dicom").parts[0])
    assert (labels.groupby(patients)["split"].nunique() == 1).all()


def test_fitted_extractors_are_saved_for_reuse(result):
    models = result.out / "models"
    for name in ("tag_features.joblib", "tags", "images", "text", "fusion.joblib", "clusters.joblib"):
        assert (models / name).exists(), name


def test_the_report_renders_with_its_pictures(result):
    report = result.out / "report"
    html = (report / "report.html").read_text()

    class Images(HTMLParser):
        def __init__(self):
            super().__init__()
            self.sources: list[str] = []

        def handle_starttag(self, tag, attrs):
            if tag == "img":
                self.sources.append(dict(attrs)["src"])

    parser = Images()
    parser.feed(html)
    names = {Path(src).name for src in parser.sources}
    assert {"mosaic.png", "composition_bodypart.png", "composition_modality.png", "elbow.png", "embedding.png"} <= names
    assert all((report / src).is_file() for src in parser.sources)
    assert "Pseudo-labels" in (report / "report.md").read_text()


def test_an_absent_source_is_left_out_with_a_note(archive):
    config = _config(archive, "tags_only", images=None, clustering={"k": 8},
                     text={"reports": "no-such-reports.csv"}, report={"embedding": "none"})
    result = run_pseudolabel(config, progress=False)
    assert result.metrics["sources"]["text"]["used"] is False
    assert any("no reports file" in note for note in result.notes)
    assert any("images: not configured" in note for note in result.notes)
    assert result.k == 8 and np.isfinite(result.metrics["splits"]["training"]["S"])


def test_clusterprobs_fusion_clusters_each_source_first(archive):
    config = _config(archive, "clusterprobs", images=None, fusion={"method": "clusterprobs", "k": {"tags": 6, "text": 6}},
                     clustering={"k": 8, "algorithm": "kmedoids", "metric": "cosine", "stability_runs": 3},
                     report={"embedding": "none"})
    result = run_pseudolabel(config, progress=False)
    assert result.k == 8
    assert len(result.metrics["stability"]["objective"]) == 3


def test_unknown_settings_are_refused_with_their_names(archive):
    with pytest.raises(ValueError, match="unknown setting.*colour"):
        load_config(_config(archive, "typo", colour="red"))
    with pytest.raises(ValueError, match="clustering: unknown setting.*kk"):
        load_config(_config(archive, "typo2", clustering={"kk": 3}))


def test_cli_runs_the_pipeline_and_fails_cleanly_on_a_bad_config(archive, capsys):
    cli_main(["pseudolabel", str(_config(archive, "cli", images=None, clustering={"k": 6}, report={"embedding": "none"})),
              "--progress", "False"])
    assert "6 clusters" in capsys.readouterr().out
    with pytest.raises(SystemExit) as raised:
        cli_main(["pseudolabel", str(archive / "missing.yaml")])
    assert raised.value.code == 2
    assert "no pseudo-labelling configuration" in capsys.readouterr().err
