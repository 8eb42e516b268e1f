"""Deprecated: moved to :mod:`radtl.transforms.io.array` and :mod:`radtl.transforms.intensity.array`; import from ``radtl.transforms``."""

import warnings

from radtl.transforms.intensity.array import (
    VoiWindow,
)
from radtl.transforms.io.array import (
    LoadDicomImage,
)

warnings.warn(
    "radtl.transforms.dicom.array is deprecated and will be removed in the next release: import from radtl.transforms "
    "(radtl.transforms.io.array and radtl.transforms.intensity.array)",
    DeprecationWarning,
    stacklevel=2,
)

__all__ = [
    "LoadDicomImage",
    "VoiWindow",
]
