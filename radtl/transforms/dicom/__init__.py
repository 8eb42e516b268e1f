"""Deprecated: moved to :mod:`radtl.transforms.io` (LoadDicomImage) and :mod:`radtl.transforms.intensity` (VoiWindow); import from ``radtl.transforms``."""

import warnings

from radtl.transforms.intensity import (
    VoiWindow,
    VoiWindowD,
    VoiWindowd,
    VoiWindowDict,
)
from radtl.transforms.io import (
    LoadDicomImage,
    LoadDicomImageD,
    LoadDicomImaged,
    LoadDicomImageDict,
)

warnings.warn(
    "radtl.transforms.dicom is deprecated and will be removed in the next release: import from radtl.transforms "
    "(radtl.transforms.io (LoadDicomImage) and radtl.transforms.intensity (VoiWindow))",
    DeprecationWarning,
    stacklevel=2,
)

__all__ = [
    "LoadDicomImage",
    "LoadDicomImageD",
    "LoadDicomImageDict",
    "LoadDicomImaged",
    "VoiWindow",
    "VoiWindowD",
    "VoiWindowDict",
    "VoiWindowd",
]
