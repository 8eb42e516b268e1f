"""Deprecated: moved to :mod:`radtl.transforms.io.array` and :mod:`radtl.transforms.label`;
import from ``radtl.transforms`` (issue 23)."""

from radtl.lazy import moved_names

_MOVED = [
    "LPS_TO_RAS",
    "LoadCTVolume",
    "NoduleSpheres",
    "nodule_mask",
]
__getattr__ = moved_names(__name__, dict.fromkeys(_MOVED, "radtl.transforms"))
