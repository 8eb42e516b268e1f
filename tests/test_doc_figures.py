"""Example figures the docs quote: each page names the script that prints them, which runs what the page runs.

The figures themselves depend on the seed (and, for btmr, on the thread count), so they are not
asserted here; ``benchmarks/doc_figures.py`` reruns the examples and prints their spread.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
from pathlib import Path

import pytest
import yaml

from tests.support.paths import REPO

SCRIPT = "benchmarks/doc_figures.py"


@pytest.fixture(scope="module")
def doc_figures():
    spec = importlib.util.spec_from_file_location("doc_figures", REPO / SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("page", ["docs/pseudolabelling.md", "docs/performance.md", "bundles/btmr/docs/README.md"])
def test_a_page_quoting_example_figures_names_the_script_that_prints_them(page):
    assert SCRIPT in (REPO / page).read_text(encoding="utf-8")


def test_the_btmr_run_uses_the_seed_of_the_bundle_the_readme_runs(doc_figures):
    train = json.loads((REPO / "bundles" / "btmr" / "configs" / "train.json").read_text(encoding="utf-8"))
    assert doc_figures.DOCUMENTED_SEED["btmr"] == train["seed"]
    assert doc_figures.DEFAULT_SEEDS["btmr"][0] == train["seed"]


def test_the_pseudolabel_run_is_the_example_configuration_with_only_paths_and_seeds_set(doc_figures):
    from radtl.pseudolabel.encoders import ImageEncoder, TagEncoder
    from radtl.pseudolabel.pipeline import ClusteringConfig
    from radtl.pseudolabel.text import TextEmbedder

    example = yaml.safe_load(doc_figures.EXAMPLE_CONFIG.read_text(encoding="utf-8"))
    seed = doc_figures.DOCUMENTED_SEED["pseudolabel"]
    run = doc_figures.pseudolabel_config(Path("/demo"), Path("/run"), seed)

    # the example sets no seed, so its run is every stage's default seed: the one the script calls documented
    defaults = {"tags": TagEncoder, "images": ImageEncoder, "text": TextEmbedder}
    for source, cls in defaults.items():
        assert "seed" not in example[source]
        assert inspect.signature(cls).parameters["seed"].default == seed
    assert "seed" not in example["clustering"]
    assert ClusteringConfig().seed == seed

    paths = {("index",), ("out",), ("images", "folder"), ("text", "reports")}
    seeds = {("tags", "seed"), ("images", "seed"), ("text", "seed"), ("clustering", "seed")}

    def flat(config):
        return {(key, sub): value for key, section in config.items()
                for sub, value in (section.items() if isinstance(section, dict) else [(None, section)])}

    def drop(config, keys):
        return {k: v for k, v in flat(config).items() if (k[0],) not in keys and k not in keys}

    assert drop(run, paths | seeds) == drop(example, paths | seeds)
    assert {key: value for key, value in flat(run).items() if key in seeds} == dict.fromkeys(seeds, seed)


def test_the_spread_counts_few_integers_and_ranges_the_rest(doc_figures):
    assert doc_figures.spread([10, 8, 10, 10, 8]) == "8 in 2 of 5, 10 in 3 of 5"
    assert doc_figures.spread([0.5, 0.75, None]) == "0.500-0.750 (mean 0.625)"
