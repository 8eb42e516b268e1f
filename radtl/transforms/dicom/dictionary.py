"""Deprecated: moved to :mod:`radtl.transforms.io.dictionary` and :mod:`radtl.transforms.intensity.dictionary`;
import from ``radtl.transforms`` (issue 23)."""

from radtl.lazy import moved_names

_MOVED = [
    "LoadDicomImageD",
    "LoadDicomImageDict",
    "LoadDicomImaged",
    "VoiWindowD",
    "VoiWindowDict",
    "VoiWindowd",
]
__getattr__ = moved_names(__name__, dict.fromkeys(_MOVED, "radtl.transforms"))
