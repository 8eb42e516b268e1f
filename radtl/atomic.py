"""Writing a file so that readers, and other processes writing the same file, never see half of it."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["write_text_atomic"]


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to a temporary file named for this process, then rename it over ``path``.

    The rename is atomic, and the per-process temporary name lets several ``torchrun``
    processes write the same file (each rank writes the run's datalist) without one renaming
    the other's half-written file away.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    tmp.replace(path)
    return path
