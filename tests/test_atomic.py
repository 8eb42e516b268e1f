"""radtl.atomic: a file is replaced whole or not at all, and a failed write leaves no temporary behind."""

import json
import os
import subprocess
import sys

import pytest

from radtl.atomic import (
    atomic_path,
    folder_lock,
    remove_stale_temporaries,
    temporary_path,
    write_atomic,
    write_json_atomic,
)


def test_a_write_that_fails_midway_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "result.json"
    target.write_text("old")

    def half_then_fail(path):
        path.write_text('{"half": ')
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_atomic(target, half_then_fail)
    assert target.read_text() == "old" and sorted(tmp_path.iterdir()) == [target]


def test_an_interrupt_inside_atomic_path_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "part-0.parquet"
    target.write_bytes(b"old")
    with pytest.raises(KeyboardInterrupt), atomic_path(target) as temporary:
        temporary.write_bytes(b"new, half")
        raise KeyboardInterrupt
    assert target.read_bytes() == b"old" and sorted(tmp_path.iterdir()) == [target]


def test_atomic_path_writes_beside_the_target_under_a_per_process_name_then_renames(tmp_path):
    target = tmp_path / "seg.dcm"
    with atomic_path(target) as temporary:
        assert temporary == temporary_path(target) == tmp_path / f"seg.dcm.{os.getpid()}.tmp"
        temporary.write_bytes(b"whole")
        assert not target.exists()  # readers see nothing until the rename
    assert target.read_bytes() == b"whole" and sorted(tmp_path.iterdir()) == [target]


def test_a_block_that_never_writes_fails_at_the_rename_and_leaves_nothing(tmp_path):
    with pytest.raises(FileNotFoundError), atomic_path(tmp_path / "never.json"):
        pass
    assert not list(tmp_path.iterdir())


def test_write_json_atomic_writes_indented_json_with_a_final_newline_into_a_new_folder(tmp_path):
    path = write_json_atomic(tmp_path / "run" / "metrics.json", {"accuracy": 0.5, "name": "ü"}, indent=2,
                             ensure_ascii=False)
    assert path.read_text(encoding="utf-8") == json.dumps({"accuracy": 0.5, "name": "ü"}, indent=2,
                                                          ensure_ascii=False) + "\n"


def test_write_json_atomic_converts_what_json_cannot_hold_only_when_told_how(tmp_path):
    np = pytest.importorskip("numpy")
    assert json.loads(write_json_atomic(tmp_path / "a.json", {"x": np.float32(0.25)}, default=float).read_text()) == {
        "x": 0.25}
    with pytest.raises(TypeError):
        write_json_atomic(tmp_path / "b.json", {"x": np.float32(0.25)})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]


def test_folder_lock_refuses_a_second_holder_and_names_the_command(tmp_path):
    with folder_lock(tmp_path, "`radtl export`"):
        other_process = subprocess.run(
            [sys.executable, "-c", "import sys; from radtl.atomic import folder_lock\n"
             "with folder_lock(sys.argv[1], '`radtl export`'): pass", str(tmp_path)],
            capture_output=True, text=True)
    assert other_process.returncode != 0 and f"another `radtl export` is writing {tmp_path}" in other_process.stderr


def test_folder_lock_is_released_when_the_block_ends(tmp_path):
    with folder_lock(tmp_path / ".lock", "`radtl index`"):
        pass
    with folder_lock(tmp_path / ".lock", "`radtl index`"):
        pass


def test_stale_temporaries_of_dead_writers_are_removed_and_a_live_writers_kept(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / "a" / f"x.dcm.{dead.stdout.strip()}.tmp"
    stale.parent.mkdir()
    stale.write_bytes(b"half")
    live = temporary_path(tmp_path / "y.dcm")
    live.write_bytes(b"being written")
    other = tmp_path / "notes.tmp"
    other.write_text("not radtl's")
    assert remove_stale_temporaries(tmp_path) == 1
    assert not stale.exists() and live.exists() and other.exists()
