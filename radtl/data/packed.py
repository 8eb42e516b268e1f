"""Deprecated: the pack moved to :mod:`radtl.data.pack` (format, writer, reader); import from ``radtl.data``."""

import warnings

from radtl.data.pack import (
    FORMAT,
    FORMAT_VERSION,
    NotInPackError,
    PackedDataset,
    PackedImages,
    PackError,
    PackResult,
    ensure_pack,
    modality_filter,
    write_pack,
)

warnings.warn(
    "radtl.data.packed is deprecated and will be removed in the next release: import from radtl.data "
    "(or radtl.data.pack)",
    DeprecationWarning,
    stacklevel=2,
)

__all__ = ["FORMAT", "FORMAT_VERSION", "NotInPackError", "PackError", "PackResult", "PackedDataset", "PackedImages",
           "ensure_pack", "modality_filter", "write_pack"]
