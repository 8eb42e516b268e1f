"""Intensity transforms (``VoiWindow``, label standardisation): array transforms and their dictionary twins."""

from radtl.transforms.intensity.array import (
    StandardizeLabel,
    VoiWindow,
)
from radtl.transforms.intensity.dictionary import (
    StandardizeLabelD,
    StandardizeLabeld,
    StandardizeLabelDict,
    VoiWindowD,
    VoiWindowd,
    VoiWindowDict,
)

__all__ = [
    "StandardizeLabel",
    "StandardizeLabeld",
    "StandardizeLabelD",
    "StandardizeLabelDict",
    "VoiWindow",
    "VoiWindowD",
    "VoiWindowDict",
    "VoiWindowd",
]
