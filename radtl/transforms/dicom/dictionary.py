"""Deprecated: moved to :mod:`radtl.transforms.io.dictionary` and :mod:`radtl.transforms.intensity.dictionary`; import from ``radtl.transforms``."""

import warnings

from radtl.transforms.intensity.dictionary import (
    VoiWindowD,
    VoiWindowd,
    VoiWindowDict,
)
from radtl.transforms.io.dictionary import (
    LoadDicomImageD,
    LoadDicomImaged,
    LoadDicomImageDict,
)

warnings.warn(
    "radtl.transforms.dicom.dictionary is deprecated and will be removed in the next release: import from radtl.transforms "
    "(radtl.transforms.io.dictionary and radtl.transforms.intensity.dictionary)",
    DeprecationWarning,
    stacklevel=2,
)

__all__ = [
    "LoadDicomImageD",
    "LoadDicomImageDict",
    "LoadDicomImaged",
    "VoiWindowD",
    "VoiWindowDict",
    "VoiWindowd",
]
