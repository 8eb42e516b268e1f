"""The registry of sample sets: a name per builder that writes one set of synthetic files.

A builder is ``func(out_dir) -> list[Path]``: it writes into its own subfolder of ``out_dir`` (by convention
named as the set; the fine-tuning sets write into ``tasks/<name>/``) and returns the paths it wrote. The
sets of ``dicom_samples/`` register themselves in :mod:`radtl.dicom.synthetic.sets`, one module each.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

__all__ = ["SAMPLE_SETS", "TASKS", "SampleBuilder", "sample_set", "write_csv"]

SampleBuilder = Callable[[Path], list[Path]]
#: name -> builder, in registration order.
SAMPLE_SETS: dict[str, SampleBuilder] = {}
#: The subfolder of the fine-tuning sets, laid out as the public datasets they stand in for.
TASKS = "tasks"


def sample_set(name: str) -> Callable[[SampleBuilder], SampleBuilder]:
    """Decorator registering ``func(out_dir: Path) -> list[Path]`` as set ``name``.

    Args:
        name: the set's name (``--only NAME`` on the command line).

    Raises:
        ValueError: ``name`` is registered already.
    """

    def register(func: SampleBuilder) -> SampleBuilder:
        if name in SAMPLE_SETS:
            raise ValueError(f"sample set {name!r} registered twice")
        SAMPLE_SETS[name] = func
        return func

    return register


def write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[object]]) -> Path:
    """Write a plain CSV with ``\\n`` line ends (the same bytes on every platform); return ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    return path
