"""Deprecated: moved to :mod:`radtl.transforms.io.dictionary` and :mod:`radtl.transforms.label.dictionary`; import from ``radtl.transforms``."""

import warnings

from radtl.transforms.io.dictionary import (
    LoadCTVolumeD,
    LoadCTVolumed,
    LoadCTVolumeDict,
)
from radtl.transforms.label.dictionary import (
    NoduleMaskD,
    NoduleMaskd,
    NoduleMaskDict,
)

warnings.warn(
    "radtl.transforms.ct.dictionary is deprecated and will be removed in the next release: import from radtl.transforms "
    "(radtl.transforms.io.dictionary and radtl.transforms.label.dictionary)",
    DeprecationWarning,
    stacklevel=2,
)

__all__ = [
    "LoadCTVolumeD",
    "LoadCTVolumeDict",
    "LoadCTVolumed",
    "NoduleMaskD",
    "NoduleMaskDict",
    "NoduleMaskd",
]
