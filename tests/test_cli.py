"""The command line a person meets: it starts at once, lists its commands, explains each one, refuses what it does
not understand, and says what went wrong in one line."""

from __future__ import annotations

import importlib
import inspect
import json
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import radtl
from radtl.cli import RadtlCLI, main
from radtl.commands import commands
from radtl.errors import RadtlError
from tests.support.paths import REPO

HEAVY = ("torch", "monai", "ignite")

#: Run a radtl command in a fresh interpreter, then print which heavy packages it imported (as JSON, last line).
_PROBE = """
import json, sys
from radtl.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print(json.dumps(sorted({name.split('.')[0] for name in sys.modules} & {'torch', 'monai', 'ignite'})))
"""


def heavy_imports(*arguments: str, cwd: Path | None = None) -> list[str]:
    result = subprocess.run([sys.executable, "-c", _PROBE, *arguments], capture_output=True, text=True,
                            cwd=cwd, timeout=300, env={**os.environ, "PYTHONPATH": str(REPO)})
    return json.loads(result.stdout.strip().splitlines()[-1])


def run_cli(*arguments: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "radtl.cli", *arguments], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})})


@pytest.fixture(scope="module")
def small_index(tmp_path_factory, samples):
    db = tmp_path_factory.mktemp("cli") / "index"
    main(["index", str(samples / "ct"), str(db), "--progress", "False"])
    return db


# ---------------------------------------------------------------------------------------------
# start-up: the commands that read DICOM or an index never import torch, MONAI or Ignite


def test_help_imports_no_torch_monai_or_ignite():
    assert heavy_imports("--help") == []
    assert heavy_imports() == []
    assert heavy_imports("convert", "--help") == []


def test_convert_imports_no_torch_monai_or_ignite(tmp_path, samples):
    assert heavy_imports("convert", str(samples / "ct"), str(tmp_path / "png"), "--size", "32") == []
    assert (tmp_path / "png" / "manifest.csv").is_file()


def test_index_query_profile_and_imputation_import_no_torch(tmp_path, samples, small_index):
    assert heavy_imports("index", str(samples / "ct"), str(tmp_path / "index")) == []
    assert heavy_imports("query", str(small_index), "SELECT count(*) FROM dicom") == []
    assert heavy_imports("profile", str(small_index)) == []
    assert heavy_imports("impute-body-part", str(small_index)) == []


def test_send_imports_no_torch(tmp_path):
    assert heavy_imports("send", str(tmp_path / "missing.dcm"), "--to", "http://127.0.0.1:9/dicom-web") == []


def test_export_imports_no_torch(tmp_path, small_index):
    sql = "SELECT path FROM dicom WHERE Modality = 'CT'"
    assert heavy_imports("export", str(small_index), sql, str(tmp_path / "cohort"), "--progress", "False") == []
    assert (tmp_path / "cohort" / "export_manifest.csv").is_file()


def test_pull_imports_no_torch(tmp_path):
    assert heavy_imports("pull", "http://127.0.0.1:9/dicom-web", str(tmp_path / "out"), "--query", "Modality=CT",
                         "--attempts", "1") == []


def test_convert_and_index_dask_workers_import_no_torch(tmp_path, samples):
    """A worker imports what its tasks need: the conversion and indexing modules, never the training stack."""
    distributed = pytest.importorskip("distributed")
    from radtl.dicom.convert import ExportSettings, convert_tree
    from radtl.dicom.index.build import build_index

    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        with distributed.Client(cluster) as client:
            convert_tree(samples / "ct", tmp_path / "png", ExportSettings(size=32), scheduler=cluster.scheduler_address,
                         progress=False)
            build_index(samples / "ct", tmp_path / "index", scheduler=cluster.scheduler_address, progress=False)
            imported = client.run(lambda: sorted({m.split(".")[0] for m in sys.modules} & set(HEAVY)))
    assert list(imported.values()) == [[]]


# ---------------------------------------------------------------------------------------------
# finding your way


def test_plain_radtl_and_help_list_every_command_with_its_purpose(capsys):
    for arguments in ([], ["--help"], ["-h"]):
        main(arguments)
        text = capsys.readouterr().out
        for name, command in commands(RadtlCLI).items():
            assert f"  {name} " in text
            assert command.summary.split()[0] in text
    assert "impute-body-part" in text and "impute_body_part" not in text


def test_every_command_help_exits_0_with_options_defaults_and_an_example():
    for name, command in commands(RadtlCLI).items():
        result = run_cli(name, "--help")
        assert result.returncode == 0, (name, result.stderr)
        assert result.stdout.startswith(f"usage: radtl {name}")
        assert "\nexample" in result.stdout, name
        for option in command.options:
            shown = option.name.upper() if option.positional else f"--{option.name}"
            assert shown in result.stdout, (name, shown)
            assert option.help, f"radtl {name}: {option.name} has no help text"
    assert "(default: 256)" in run_cli("convert", "--help").stdout


def test_segment_help_exits_0_and_shows_its_options():
    result = run_cli("segment", "--help")
    assert result.returncode == 0
    assert "usage: radtl segment [SERIES_DIR] [options]" in result.stdout and "--fetch" in result.stdout


def test_version(capsys):
    main(["--version"])
    assert capsys.readouterr().out.strip() == f"radtl {radtl.__version__}"


# ---------------------------------------------------------------------------------------------
# errors: one base class, one line, exit status 2


def _user_error_classes() -> list[type]:
    classes = []
    for module in pkgutil.walk_packages(radtl.__path__, "radtl."):
        if module.name.startswith("radtl.label"):
            continue  # imports MONAI Label, tested in test_label*.py
        loaded = importlib.import_module(module.name)
        for name, value in vars(loaded).items():
            if (inspect.isclass(value) and issubclass(value, Exception) and value.__module__ == module.name
                    and not name.startswith("_")):
                classes.append(value)
    return classes


def test_every_radtl_error_class_derives_from_radtl_error():
    classes = _user_error_classes()
    assert len(classes) >= 14
    assert [c.__qualname__ for c in classes if not issubclass(c, RadtlError)] == []


def test_a_missing_source_is_one_line_and_exit_2(tmp_path):
    result = run_cli("convert", "/data/archive", str(tmp_path / "x"))
    assert result.returncode == 2
    assert result.stderr.strip() == "radtl convert: no such file or folder: /data/archive; check the path"


def test_debug_shows_the_traceback(tmp_path):
    for flag, env in ((["--debug"], {}), ([], {"RADTL_DEBUG": "1"})):
        result = run_cli("convert", "/data/archive", str(tmp_path / "x"), *flag, env=env)
        assert result.returncode == 1
        assert "Traceback" in result.stderr and "FileNotFoundError" in result.stderr


def test_a_missing_argument_is_named(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["convert", "somewhere"])
    assert exit_.value.code == 2
    assert capsys.readouterr().err.strip() == "radtl convert: missing OUT; usage: radtl convert SRC OUT [options]"


def test_an_unknown_option_is_refused_naming_the_closest(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["sweep", "btmr", "--lr", "1e-3"])
    assert exit_.value.code == 2
    error = capsys.readouterr().err
    assert error.startswith("radtl sweep: unknown option --lr; did you mean --lrs?")
    assert "--set key=value" in error


def test_an_unknown_option_of_a_command_without_bundle_settings_is_refused(capsys, tmp_path):
    with pytest.raises(SystemExit):
        main(["convert", "a", "b", "--sise", "64"])
    assert "unknown option --sise; did you mean --size?" in capsys.readouterr().err


def test_an_unknown_command_names_the_closest(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["conver", "a", "b"])
    assert exit_.value.code == 2
    assert "unknown command 'conver'; did you mean 'convert'?" in capsys.readouterr().err


def test_bad_sql_is_one_line(capsys, small_index):
    with pytest.raises(SystemExit) as exit_:
        main(["query", str(small_index), "SELEC nonsense"])
    assert exit_.value.code == 2
    error = capsys.readouterr().err
    assert error.startswith("radtl query: ") and len(error.strip().splitlines()) == 1


def test_index_of_a_folder_without_dicom_says_so(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("no DICOM here")
    main(["index", str(tmp_path), str(tmp_path / "db")])
    out = capsys.readouterr().out
    assert "no DICOM file found" in out and "query it" not in out


def test_hyphenated_and_underscored_names_both_run(capsys, small_index):
    main(["impute-body-part", str(small_index)])
    hyphen = capsys.readouterr().out
    main(["impute_body_part", str(small_index)])
    assert capsys.readouterr().out == hyphen


# ---------------------------------------------------------------------------------------------
# output folders


def test_gitignore_covers_the_default_output_folders():
    paths = ["out/x.png", "sweeps/btmr/results.csv", "report/report.html", "bundles/btmr/models/model.pt"]
    result = subprocess.run(["git", "check-ignore", *paths], cwd=REPO, capture_output=True, text=True)
    if result.returncode == 128:
        pytest.skip(f"not a git checkout: {result.stderr.strip()}")
    assert result.stdout.split() == paths


# ---------------------------------------------------------------------------------------------
# bundles by name: listed, run, and given settings only as --set keys they have


def test_radtl_bundles_lists_every_bundle_with_its_kind_and_network(capsys):
    from radtl.bundle import find_bundles

    main(["bundles"])
    rows = capsys.readouterr().out.splitlines()
    assert rows[0].split()[:3] == ["name", "kind", "network"]
    listed = {row.split()[0]: row.split()[1:3] for row in rows[1:]}
    assert set(listed) == set(find_bundles()) >= {"btmr", "luna_nodule_seg", "dino_pretrain"}
    assert listed["btmr"] == ["classification", "resnet50"] and listed["luna_nodule_seg"][0] == "segmentation"


def test_radtl_run_prints_the_root_cause_in_one_line(tmp_path):
    result = run_cli("run", "btmr", "--set", f"dataset_dir={tmp_path / 'nowhere'}", "--set", f"output_dir={tmp_path}")
    assert result.returncode == 2
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("radtl run:")]
    assert "missing folder" in line and "Traceback" not in result.stderr


def test_a_misspelt_bundle_names_the_closest_and_the_ones_there_are(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["sweep", "btrm"])
    assert exit_.value.code == 2
    error = capsys.readouterr().err.strip()
    assert "no bundle 'btrm' (did you mean 'btmr'?)" in error and "covid19_cxr" in error and "\n" not in error


def test_a_set_key_the_bundle_does_not_have_is_refused_naming_the_closest(capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_:
        main(["sweep", "btmr", "--set", "max_epoch=1", "--output_dir", str(tmp_path / "sweep")])
    assert exit_.value.code == 2
    assert "max_epoch: not a setting of bundle btmr" in capsys.readouterr().err
    assert not (tmp_path / "sweep").exists()


def test_a_set_key_a_command_option_owns_is_refused(capsys, tmp_path):
    with pytest.raises(SystemExit):
        main(["sweep", "btmr", "--set", "lr=1e-3", "--output_dir", str(tmp_path / "sweep")])
    assert "lr: set by --lrs" in capsys.readouterr().err


def test_repeated_set_options_all_arrive():
    from radtl.cli import _gather_repeated

    gathered = _gather_repeated(["btmr", "--set", "a=1", "--lrs", "1e-3", "--set=b=x y"])
    assert gathered == ["btmr", "--lrs", "1e-3", "--set=['a=1', 'b=x y']"]


def test_output_piped_into_a_reader_that_stops_early_ends_quietly():
    result = subprocess.run(f"{sys.executable} -m radtl.cli sweep --help | head -1", shell=True, capture_output=True,
                            text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.stdout == "usage: radtl sweep BUNDLE [options]\n" and result.stderr == ""


def test_send_refuses_a_file_that_is_not_dicom_before_sending_anything(tmp_path, capsys):
    png = tmp_path / "case.seg.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    with pytest.raises(SystemExit) as exit_:
        main(["send", str(png), "--to", "http://127.0.0.1:9/dicom-web"])
    assert exit_.value.code == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith(f"radtl send: {png} is not a DICOM file") and "nothing was sent" in error


def test_a_required_option_left_out_is_named(capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_:
        main(["send", str(tmp_path / "a.dcm")])
    assert exit_.value.code == 2
    assert capsys.readouterr().err.strip() == (
        "radtl send: missing --to TO; usage: radtl send [FILES ...] --to TO")


def test_text_where_an_option_takes_a_number_is_refused(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["convert", "a", "b", "--size", "abc"])
    assert exit_.value.code == 2
    assert capsys.readouterr().err.strip() == (
        "radtl convert: --size takes a whole number, got 'abc'; radtl convert --help shows it")


def test_a_list_option_names_the_entry_that_is_not_a_number(capsys, tmp_path):
    with pytest.raises(SystemExit):
        main(["sweep", "btmr", "--lrs", "1e-3,abc", "--output_dir", str(tmp_path / "sweep")])
    assert capsys.readouterr().err.strip() == "radtl sweep: --lrs: 'abc' is not a number"


def test_an_argument_may_be_given_by_name_as_fire_takes_it(capsys, tmp_path, small_index):
    main(["query", "--db", str(small_index), "--sql", "SELECT count(*) AS n FROM dicom"])
    assert capsys.readouterr().out.splitlines()[0] == "n"


@pytest.fixture(scope="module")
def trained_btmr(tmp_path_factory):
    """The README's `radtl run` on the sample data: one tiny epoch of btmr."""
    out = tmp_path_factory.mktemp("btmr")
    result = run_cli("run", "btmr", "--set", "max_epochs=1", "--set", "image_size=32", "--set", "backbone=resnet18",
                     "--set", f"output_dir={out}")
    assert result.returncode == 0, result.stderr
    return out, result


def test_radtl_run_prints_one_line_per_epoch_and_no_engine_logs(trained_btmr):
    out, result = trained_btmr
    lines = result.stderr.splitlines()
    assert [line.split()[:2] for line in lines if line.startswith("epoch ")] == [["epoch", "1/1"]]
    assert not [line for line in lines if "ignite" in line or "\r" in line or "\x1b" in line]
    assert (out / "model.pt").is_file()


def test_verbose_shows_the_engine_logs(trained_btmr):
    out, _ = trained_btmr
    settings = ["--set", "image_size=32", "--set", "backbone=resnet18", "--set", f"output_dir={out}"]
    quiet = run_cli("run", "btmr", "evaluate", *settings)
    verbose = run_cli("--verbose", "run", "btmr", "evaluate", *settings)
    assert quiet.returncode == verbose.returncode == 0
    assert "ignite.engine" not in quiet.stderr and "ignite.engine" in verbose.stderr
    assert (out / "test_confusion_matrix.png").is_file()
