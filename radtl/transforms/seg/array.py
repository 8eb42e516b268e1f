"""Deprecated: moved to :mod:`radtl.transforms.io.array`; import from ``radtl.transforms``."""

from radtl.lazy import moved_names

__getattr__ = moved_names(__name__, dict.fromkeys(["SaveDicomSeg"], "radtl.transforms"))
