"""Finding, listing and running bundles by name: the search rule, the wheel that carries the bundles, ``radtl run``'s
config merge and failure line, and ``--set key=value`` checked against the bundle's own keys.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

import radtl.bundle
from radtl.bundle import (
    BundleConfigError,
    BundleKind,
    BundleNotFoundError,
    BundleRunError,
    SettingError,
    bundle_config_files,
    bundle_root,
    bundle_search_path,
    bundle_table,
    checked_overrides,
    format_bundle_table,
    resolve_bundle,
    root_cause,
    run_bundle,
)
from radtl.errors import RadtlError, UsageError
from tests.support.paths import REPO

KINDS = {
    "bone_age": BundleKind.REGRESSION,
    "btmr": BundleKind.CLASSIFICATION,
    "covid19_cxr": BundleKind.CLASSIFICATION,
    "dino_pretrain": BundleKind.PRETRAINING,
    "grazpedwri_osteopenia": BundleKind.CLASSIFICATION,
    "luna_nodule_seg": BundleKind.SEGMENTATION,
    "radiologynet_pretrain": BundleKind.PRETRAINING,
    "unet_reconstruction_pretrain": BundleKind.PRETRAINING,
}


def _bundle(folder: Path, name: str | None = None) -> Path:
    """A minimal bundle: ``configs/metadata.json`` (naming it) and a ``train.json``."""
    (folder / "configs").mkdir(parents=True)
    (folder / "configs" / "metadata.json").write_text(json.dumps({"name": name or folder.name, "task": "a test"}))
    (folder / "configs" / "train.json").write_text(json.dumps({"backbone": "resnet18", "max_epochs": 1}))
    return folder


@pytest.fixture
def elsewhere(tmp_path, monkeypatch):
    """A working directory outside the repository, with ``./bundles/mine``, and two folders in RADTL_BUNDLES."""
    work, first, second = tmp_path / "work", tmp_path / "first", tmp_path / "second"
    _bundle(work / "bundles" / "mine")
    _bundle(first / "shared")
    _bundle(first / "mine")  # shadowed by ./bundles/mine
    _bundle(second / "shared")  # shadowed by first/shared
    monkeypatch.chdir(work)
    monkeypatch.setenv("RADTL_BUNDLES", os.pathsep.join([str(first), str(second), str(first), ""]))
    return work, first, second


def test_search_path_is_working_directory_then_radtl_bundles_then_radtls_own_each_once(elsewhere):
    work, first, second = elsewhere
    assert bundle_search_path() == [work / "bundles", first, second, REPO / "bundles"]


def test_a_name_is_the_first_folder_of_the_search_path_that_has_it(elsewhere):
    work, first, _ = elsewhere
    assert bundle_root("mine") == str(work / "bundles" / "mine")
    assert bundle_root("shared") == str(first / "shared")
    assert bundle_root("btmr") == str(REPO / "bundles" / "btmr")


def test_the_working_directory_is_the_bundle_when_inside_it(tmp_path, monkeypatch):
    inside = _bundle(tmp_path / "my_btmr", name="btmr")
    monkeypatch.chdir(inside)
    assert bundle_root("btmr") == str(inside)
    assert radtl.bundle.find_bundles()["my_btmr"] == inside


def test_an_unknown_bundle_names_the_closest_the_bundles_and_each_folder_once(monkeypatch):
    monkeypatch.chdir(REPO)  # ./bundles is radtl's own bundles/: searched once, listed once
    monkeypatch.delenv("RADTL_BUNDLES", raising=False)
    with pytest.raises(BundleNotFoundError) as raised:
        resolve_bundle("btrm")
    message = str(raised.value)
    assert isinstance(raised.value, RadtlError) and isinstance(raised.value, FileNotFoundError)
    assert "no bundle 'btrm' (did you mean 'btmr'?)" in message and "\n" not in message
    assert message.count(str(REPO / "bundles")) == 1 and all(name in message for name in KINDS)
    assert "radtl bundles" in raised.value.hint


def test_the_unknown_bundle_error_survives_pickling_as_it_was():
    error = BundleNotFoundError("btrm", ["btmr"], [REPO / "bundles"])
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is BundleNotFoundError and str(copy) == str(error) and copy.searched == [REPO / "bundles"]


def test_a_folder_that_is_not_a_bundle_is_named_as_such(tmp_path):
    with pytest.raises(BundleNotFoundError, match="is not a bundle folder .*configs/metadata.json"):
        resolve_bundle(tmp_path)


def test_a_bundle_folder_is_taken_as_it_is(elsewhere):
    _, _, second = elsewhere
    assert resolve_bundle(second / "shared") == second / "shared"


def test_bundle_table_lists_every_bundle_with_its_kind_task_and_network():
    rows = {row.name: row for row in bundle_table() if row.folder.parent == REPO / "bundles"}
    assert {name: row.kind for name, row in rows.items()} == KINDS
    assert rows["btmr"].network == "resnet50" and rows["luna_nodule_seg"].network == "unet_resnet50"
    assert rows["btmr"].task.startswith("Brain tumour classification") and rows["btmr"].folder == REPO / "bundles/btmr"
    lines = format_bundle_table(list(rows.values())).splitlines()
    assert lines[0].split() == ["name", "kind", "network", "task", "where"] and len(lines) == len(KINDS) + 1


def test_listing_bundles_imports_neither_torch_nor_monai():
    code = ("import sys, radtl.bundle; radtl.bundle.bundle_table(); "
            "print(sorted(m for m in ('torch', 'monai') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.stdout.strip() == "[]"


def test_the_packages_pyproject_lists_are_the_source_trees_and_the_bundles():
    setuptools = pytest.importorskip("setuptools")
    listed = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    assert sorted(listed) == sorted([*setuptools.find_packages(str(REPO), include=["radtl*"]), "radtl.bundles"])


def _copy_project(destination: Path) -> None:
    """What a wheel is built from, without build outputs, caches or trained weights."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "models", "*.egg-info")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, destination / name)
    for name in ("radtl", "bundles"):
        shutil.copytree(REPO / name, destination / name, ignore=ignore)


def _files(root: Path, under: str) -> set[str]:
    return {path.relative_to(root).as_posix() for path in (root / under).rglob("*")
            if path.is_file() and "__pycache__" not in path.parts and "models" not in path.parts}


def test_a_wheel_carries_the_bundles_and_radtl_finds_them_there(tmp_path):
    setuptools = pytest.importorskip("setuptools")
    if int(setuptools.__version__.split(".")[0]) < 68:
        pytest.skip(f"building the wheel needs setuptools>=68, not {setuptools.__version__}")
    source, wheels, site = tmp_path / "source", tmp_path / "wheels", tmp_path / "site"
    source.mkdir()
    _copy_project(source)
    build = subprocess.run(
        [sys.executable, "-c", f"import setuptools.build_meta as b; print(b.build_wheel({str(wheels)!r}))"],
        cwd=source, capture_output=True, text=True,
    )
    if build.returncode != 0 and "bdist_wheel" in build.stderr:
        pytest.skip("this setuptools builds wheels only with the wheel package, which is not installed")
    assert build.returncode == 0, build.stderr[-2000:]
    with zipfile.ZipFile(wheels / build.stdout.strip().splitlines()[-1]) as wheel:
        names = set(wheel.namelist())
        wheel.extractall(site)
    bundled = {"radtl/bundles/" + name.removeprefix("bundles/") for name in _files(REPO, "bundles")}
    assert bundled <= names and _files(REPO, "radtl") <= names
    code = "import radtl.bundle as b; print(b.bundle_search_path()[0]); print(b.bundle_root('btmr'))"
    found = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True,
                           env={**os.environ, "PYTHONPATH": str(site), "RADTL_BUNDLES": ""})
    assert found.stdout.split() == [str(site / "radtl" / "bundles"), str(site / "radtl" / "bundles" / "btmr")]


def test_evaluate_and_inference_merge_over_train_json():
    configs = REPO / "bundles" / "btmr" / "configs"
    assert bundle_config_files("btmr") == [configs / "train.json"]
    for given in (["evaluate"], ["evaluate.json"], ["train", "evaluate"], "evaluate"):
        assert bundle_config_files("btmr", given) == [configs / "train.json", configs / "evaluate.json"]


def test_a_config_file_given_by_path_merges_over_train_json(tmp_path):
    mine = tmp_path / "mine.json"
    mine.write_text(json.dumps({"max_epochs": 2}))
    assert bundle_config_files("btmr", [str(mine)])[1] == mine
    assert radtl.bundle.read_bundle_config("btmr", [str(mine)])["max_epochs"] == 2


def test_an_unknown_config_names_the_bundles_configs_and_the_closest():
    with pytest.raises(BundleConfigError, match=r"no config 'evaluat' \(did you mean 'evaluate'\?\); its configs are "
                                                 r"evaluate, inference, multi_gpu_train, train"):
        bundle_config_files("btmr", ["evaluat"])


def test_a_run_that_fails_is_one_line_naming_radtls_root_cause(tmp_path):
    with pytest.raises(BundleRunError) as raised:
        run_bundle("btmr", (), {"dataset_dir": str(tmp_path / "nope"), "output_dir": str(tmp_path / "out")})
    message = str(raised.value)
    assert message == f"btmr (train.json): {tmp_path / 'nope'}: missing folder (the btmr dataset)"
    assert type(root_cause(raised.value.__cause__)).__name__ == "DatasetLayoutError"
    assert "Failed to evaluate ConfigExpression" in str(raised.value.__cause__)  # MONAI's wrapper, kept for --debug


def test_an_override_the_parser_would_evaluate_is_refused_before_the_run(tmp_path):
    with pytest.raises(SettingError, match="would be evaluated"):
        run_bundle("btmr", (), {"dataset_dir": "$__import__('os').getcwd()", "output_dir": str(tmp_path)})


def test_the_installed_copy_of_a_bundle_runs_only_with_an_output_dir(monkeypatch):
    monkeypatch.setattr(radtl.bundle, "PACKAGE_BUNDLES_DIR", REPO / "bundles")  # as if installed from a wheel
    with pytest.raises(UsageError, match="copy installed with radtl") as raised:
        run_bundle("btmr")
    assert "--set output_dir=DIR" in raised.value.hint


def test_set_values_are_json_literals_or_text_for_keys_the_bundle_has():
    overrides = checked_overrides(
        ("max_epochs=1,lr=1e-3", "train#trainer#max_epochs=3", "dataset_dir=/data/btmr", 'labels=["a","b"]',
         "amp=true", "split_seed=7"),
        "btmr",
    )
    assert overrides == {"max_epochs": 1, "lr": 1e-3, "train#trainer#max_epochs": 3, "dataset_dir": "/data/btmr",
                         "labels": ["a", "b"], "amp": True, "split_seed": 7}
    assert checked_overrides("eval_split=validation", "btmr", ["evaluate"]) == {"eval_split": "validation"}


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("lrs=1e-3", "lrs: not a setting of bundle btmr (train.json); did you mean lr?"),
        ("train#trainer#max_epoch=2", "did you mean train#trainer#max_epochs?"),
        ("eval_split=validation", "it is a setting of evaluate: run with that config"),
        ("lr=abc", "lr: expected a number"),
        ("max_epochs", "expected key=value"),
    ],
)
def test_a_set_key_the_bundle_does_not_have_or_a_bad_value_is_refused(setting, message):
    with pytest.raises(SettingError) as raised:
        checked_overrides([setting], "btmr")
    assert message in str(raised.value)


@pytest.mark.parametrize(
    "setting", ["dataset_dir=$__import__('os').getcwd()", "output_dir=@bundle_root", 'labels=["%/etc/passwd"]']
)
def test_a_set_value_the_parser_would_evaluate_is_refused(setting):
    with pytest.raises(SettingError, match="would be evaluated by MONAI's config parser"):
        checked_overrides(setting, "btmr")


def test_a_set_key_inside_a_component_definition_is_refused():
    with pytest.raises(SettingError, match="not a key radtl passes"):
        checked_overrides("network_def#_target_=os.system", "btmr")


def test_a_set_key_the_command_sets_itself_is_refused_naming_its_option():
    with pytest.raises(SettingError, match="lr: set by radtl sweep --lrs"):
        checked_overrides("lr=1e-3", "btmr", reserved={"lr": "radtl sweep --lrs"})


def test_a_set_key_may_be_a_new_argument_of_a_component_but_not_of_a_plain_setting():
    assert checked_overrides(["network_def#features=[4,4,8,8,16,4]"], "luna_nodule_seg", ["inference"]) == {
        "network_def#features": [4, 4, 8, 8, 16, 4]}
    with pytest.raises(SettingError, match="not a setting"):
        checked_overrides(["max_epochs#x=1"], "btmr")
