"""Deprecated: moved to :mod:`radtl.transforms.io.array` and :mod:`radtl.transforms.label`; import from ``radtl.transforms``."""

import warnings

from radtl.transforms.io.array import (
    LPS_TO_RAS,
    LoadCTVolume,
)
from radtl.transforms.label.array import (
    NoduleSpheres,
)
from radtl.transforms.label.functional import (
    nodule_mask,
)

warnings.warn(
    "radtl.transforms.ct.array is deprecated and will be removed in the next release: import from radtl.transforms "
    "(radtl.transforms.io.array and radtl.transforms.label)",
    DeprecationWarning,
    stacklevel=2,
)

__all__ = [
    "LPS_TO_RAS",
    "LoadCTVolume",
    "NoduleSpheres",
    "nodule_mask",
]
