"""Deprecated: moved to :mod:`radtl.transforms.io` (LoadCTVolume) and :mod:`radtl.transforms.label`
(NoduleMask); import from ``radtl.transforms``."""

from radtl.lazy import moved_names

_MOVED = [
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
__getattr__ = moved_names(__name__, dict.fromkeys(_MOVED, "radtl.transforms"))
