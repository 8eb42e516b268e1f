"""Deprecated: moved to :mod:`radtl.transforms.io.array` and :mod:`radtl.transforms.intensity.array`;
import from ``radtl.transforms`` (issue 23)."""

from radtl.lazy import moved_names

__getattr__ = moved_names(__name__, dict.fromkeys(["LoadDicomImage", "VoiWindow"], "radtl.transforms"))
