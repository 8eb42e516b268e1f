"""Intensity transforms (``VoiWindow``): array transforms and their dictionary twins."""

from radtl.transforms.intensity.array import (
    VoiWindow,
)
from radtl.transforms.intensity.dictionary import (
    VoiWindowD,
    VoiWindowd,
    VoiWindowDict,
)

__all__ = [
    "VoiWindow",
    "VoiWindowD",
    "VoiWindowDict",
    "VoiWindowd",
]
