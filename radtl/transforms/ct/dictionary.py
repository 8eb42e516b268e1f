"""Deprecated: moved to :mod:`radtl.transforms.io.dictionary` and :mod:`radtl.transforms.label.dictionary`;
import from ``radtl.transforms`` (issue 23)."""

from radtl.lazy import moved_names

_MOVED = [
    "LoadCTVolumeD",
    "LoadCTVolumeDict",
    "LoadCTVolumed",
    "NoduleMaskD",
    "NoduleMaskDict",
    "NoduleMaskd",
]
__getattr__ = moved_names(__name__, dict.fromkeys(_MOVED, "radtl.transforms"))
