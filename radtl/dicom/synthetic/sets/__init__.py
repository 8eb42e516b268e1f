"""The sample sets of ``dicom_samples/``, one module each, and :func:`make_samples`, which writes them.

The test sets ``cr``, ``dx``, ``ct``, ``mr``, ``enhanced`` and ``broken`` cover the conversion's cases; the
fine-tuning sets ``btmr``, ``bone_age``, ``grazpedwri_dx``, ``covid19_radiography`` and ``luna_nodule`` write
labelled images into ``tasks/<name>/``, laid out as the public datasets they stand in for. Importing this
package registers every set in :data:`~radtl.dicom.synthetic.registry.SAMPLE_SETS`, in the order below.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from pathlib import Path

from radtl.dicom.synthetic.registry import SAMPLE_SETS, sample_set

__all__ = ["SAMPLE_SETS", "SET_MODULES", "make_samples", "sample_set"]

#: The modules that register the sets, in the order ``--list`` names them.
SET_MODULES = (
    "cr", "dx", "ct", "mr", "enhanced", "broken", "btmr", "bone_age", "grazpedwri_dx", "covid19_radiography",
    "luna_nodule",
)
for _module in SET_MODULES:
    importlib.import_module(f"{__name__}.{_module}")


def make_samples(out_dir: str | Path, only: Iterable[str] | None = None) -> list[Path]:
    """Write the registered sample sets (all, or those named in ``only``) into ``out_dir``.

    Args:
        out_dir: the output folder; each set writes into its own subfolder.
        only: names of the sets to write, or None for all of them.

    Returns:
        The sorted paths of the written files.

    Raises:
        KeyError: a name in ``only`` is not registered.
    """
    out = Path(out_dir)
    names = list(SAMPLE_SETS) if only is None else list(only)
    unknown = [n for n in names if n not in SAMPLE_SETS]
    if unknown:
        raise KeyError(f"unknown sample set(s) {unknown}; known: {sorted(SAMPLE_SETS)}")
    written: list[Path] = []
    for name in names:
        written.extend(SAMPLE_SETS[name](out))
    return sorted(written)
