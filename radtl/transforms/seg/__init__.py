"""Deprecated: moved to :mod:`radtl.transforms.io`; import from ``radtl.transforms``."""

import warnings

from radtl.transforms.io import (
    SaveDicomSeg,
    SaveDicomSegD,
    SaveDicomSegd,
    SaveDicomSegDict,
)

warnings.warn(
    "radtl.transforms.seg is deprecated and will be removed in the next release: import from radtl.transforms "
    "(radtl.transforms.io)",
    DeprecationWarning,
    stacklevel=2,
)

__all__ = [
    "SaveDicomSeg",
    "SaveDicomSegD",
    "SaveDicomSegDict",
    "SaveDicomSegd",
]
