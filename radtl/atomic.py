"""Writing a file so that readers, and other processes writing the same file, never see half of it.

Every file radtl writes goes through :func:`atomic_path`: the content is written to a temporary path in the
target's folder (:func:`temporary_path`, ``NAME.PID.tmp``), which is renamed over the target only when complete
(``os.replace``, atomic within one filesystem, POSIX ``rename(2)``), and removed if the writing fails. The
per-process name lets several ``torchrun`` processes write the same file (each rank writes the run's datalist)
without one renaming the other's half-written file away; a ``*.tmp`` left in a folder is a file whose writer was
killed, never a finished one. :func:`write_atomic` (any writer that takes a path), :func:`write_text_atomic`,
:func:`write_bytes_atomic` and :func:`write_json_atomic` are the common cases.

A command that fills a folder over many runs (``radtl index``, ``pull``, ``export``) holds :func:`folder_lock` on it
while it writes, so that two runs do not interleave, and starts by :func:`remove_stale_temporaries`: the
``NAME.PID.tmp`` files of writers that were killed.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from radtl.errors import RadtlError

__all__ = [
    "FolderBusyError",
    "atomic_path",
    "folder_lock",
    "remove_stale_temporaries",
    "temporary_path",
    "write_atomic",
    "write_bytes_atomic",
    "write_json_atomic",
    "write_text_atomic",
]


def temporary_path(path: str | os.PathLike) -> Path:
    """Where :func:`atomic_path` writes ``path`` before renaming it: ``NAME.PID.tmp`` in the same folder.

    Args:
        path: the file to be written.
    """
    path = Path(path)
    return path.with_name(f"{path.name}.{os.getpid()}.tmp")


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` to write; rename it over ``path`` when the block ends without error.

    If the block raises (``KeyboardInterrupt`` included), the temporary file is removed and ``path`` is left as it
    was. The folder is not created: callers that may write into a new folder create it (:func:`write_atomic`
    does), or create it once for many files.

    Example::

        with atomic_path(out / "part-0.parquet") as temporary:
            pyarrow.parquet.write_table(table, temporary)

    Args:
        path: the file to write.
    """
    path = Path(path)
    temporary = temporary_path(path)
    try:
        yield temporary
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_atomic(path: str | os.PathLike, write: Callable[[Path], object]) -> Path:
    """Call ``write(temporary)`` for a temporary file (:func:`atomic_path`), then rename it over ``path``.

    The folder is created if missing. ``write`` is any writer that takes a path (``joblib.dump``, ``torch.save``,
    ``Figure.savefig`` with the format given).

    Args:
        path: the file to write.
        write: writes the whole content to the path it is given.

    Returns:
        ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as temporary:
        write(temporary)
    return path


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (:func:`write_atomic`)."""
    return write_atomic(path, lambda tmp: tmp.write_text(text))


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (:func:`write_atomic`)."""
    return write_atomic(path, lambda tmp: tmp.write_bytes(data))


def write_json_atomic(
    path: str | os.PathLike,
    data: object,
    indent: int = 1,
    default: Callable[[object], object] | None = None,
    ensure_ascii: bool = True,
) -> Path:
    """Write ``data`` as JSON with a final newline to ``path`` atomically (:func:`write_atomic`).

    Args:
        path: the file to write.
        data: anything ``json.dumps`` takes.
        indent: spaces per level.
        default: turns what JSON cannot hold into what it can (``float`` for NumPy scalars, ``str`` for paths);
            None raises ``TypeError`` for such values, as ``json.dumps`` does.
        ensure_ascii: escape non-ASCII characters.

    Returns:
        ``path``.
    """
    text = json.dumps(data, indent=indent, default=default, ensure_ascii=ensure_ascii) + "\n"
    return write_text_atomic(path, text)


class FolderBusyError(RadtlError, RuntimeError):
    """Another process holds :func:`folder_lock` on the folder."""


@contextmanager
def folder_lock(lock: str | os.PathLike, holder: str) -> Iterator[None]:
    """Hold an exclusive lock (``flock(2)``, released when the process ends, even killed) while the block runs.

    Args:
        lock: the file to lock, created if missing (or an existing folder, locked itself).
        holder: the command that holds it, for the error, e.g. ``"radtl export"``.

    Raises:
        FolderBusyError: another process holds it; nothing waits.
    """
    lock = Path(lock)
    descriptor = os.open(lock, os.O_RDONLY) if lock.is_dir() else os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            where = lock if lock.is_dir() else lock.parent
            raise FolderBusyError(f"another {holder} is writing {where}",
                                  hint="wait for it to finish, or write elsewhere") from None
        yield
    finally:
        os.close(descriptor)  # closing the last descriptor releases the lock


_TEMPORARY_NAME = re.compile(r"^.+\.(\d+)\.tmp$")


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def remove_stale_temporaries(folder: str | os.PathLike) -> int:
    """Remove the ``NAME.PID.tmp`` files under ``folder`` (recursively) whose writing process is no longer running.

    Such a file is what :func:`atomic_path` leaves when its process is killed (``SIGKILL`` runs no cleanup); a
    running process's file is left alone. Returns how many were removed.
    """
    removed = 0
    for path in Path(folder).rglob("*.tmp"):
        match = _TEMPORARY_NAME.match(path.name)
        if match and path.is_file() and not _running(int(match.group(1))):
            path.unlink(missing_ok=True)
            removed += 1
    return removed
