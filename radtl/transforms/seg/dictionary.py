"""Deprecated: moved to :mod:`radtl.transforms.io.dictionary`; import from ``radtl.transforms``."""

from radtl.lazy import moved_names

_MOVED = [
    "SaveDicomSegD",
    "SaveDicomSegDict",
    "SaveDicomSegd",
]
__getattr__ = moved_names(__name__, dict.fromkeys(_MOVED, "radtl.transforms"))
