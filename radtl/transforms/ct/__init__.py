"""Deprecated: moved to :mod:`radtl.transforms.io` (LoadCTVolume) and :mod:`radtl.transforms.label` (NoduleMask); import from ``radtl.transforms``."""

import warnings

from radtl.transforms.io import (
    LPS_TO_RAS,
    LoadCTVolume,
    LoadCTVolumeD,
    LoadCTVolumed,
    LoadCTVolumeDict,
)
from radtl.transforms.label import (
    NoduleMaskD,
    NoduleMaskd,
    NoduleMaskDict,
    NoduleSpheres,
    nodule_mask,
)

warnings.warn(
    "radtl.transforms.ct is deprecated and will be removed in the next release: import from radtl.transforms "
    "(radtl.transforms.io (LoadCTVolume) and radtl.transforms.label (NoduleMask))",
    DeprecationWarning,
    stacklevel=2,
)

__all__ = [
    "LPS_TO_RAS",
    "LoadCTVolume",
    "LoadCTVolumeD",
    "LoadCTVolumeDict",
    "LoadCTVolumed",
    "NoduleMaskD",
    "NoduleMaskDict",
    "NoduleMaskd",
    "NoduleSpheres",
    "nodule_mask",
]
