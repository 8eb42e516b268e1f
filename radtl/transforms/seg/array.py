"""Deprecated: moved to :mod:`radtl.transforms.io.array`; import from ``radtl.transforms``."""

import warnings

from radtl.transforms.io.array import (
    SaveDicomSeg,
)

warnings.warn(
    "radtl.transforms.seg.array is deprecated and will be removed in the next release: import from radtl.transforms "
    "(radtl.transforms.io.array)",
    DeprecationWarning,
    stacklevel=2,
)

__all__ = [
    "SaveDicomSeg",
]
