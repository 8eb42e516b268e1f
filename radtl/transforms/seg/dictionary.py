"""Deprecated: moved to :mod:`radtl.transforms.io.dictionary`; import from ``radtl.transforms``."""

import warnings

from radtl.transforms.io.dictionary import (
    SaveDicomSegD,
    SaveDicomSegd,
    SaveDicomSegDict,
)

warnings.warn(
    "radtl.transforms.seg.dictionary is deprecated and will be removed in the next release: import from radtl.transforms "
    "(radtl.transforms.io.dictionary)",
    DeprecationWarning,
    stacklevel=2,
)

__all__ = [
    "SaveDicomSegD",
    "SaveDicomSegDict",
    "SaveDicomSegd",
]
