"""Deprecated: moved to :mod:`radtl.transforms.io` (LoadDicomImage) and :mod:`radtl.transforms.intensity` (VoiWindow);
import from ``radtl.transforms`` (issue 23)."""

from radtl.lazy import moved_names

_MOVED = [
    "LoadDicomImage",
    "LoadDicomImageD",
    "LoadDicomImageDict",
    "LoadDicomImaged",
    "VoiWindow",
    "VoiWindowD",
    "VoiWindowDict",
    "VoiWindowd",
]
__getattr__ = moved_names(__name__, dict.fromkeys(_MOVED, "radtl.transforms"))
