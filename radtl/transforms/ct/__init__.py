from radtl.transforms.ct.array import LPS_TO_RAS, LoadCTVolume, NoduleSpheres, nodule_mask
from radtl.transforms.ct.dictionary import (
    LoadCTVolumeD,
    LoadCTVolumed,
    LoadCTVolumeDict,
    NoduleMaskD,
    NoduleMaskd,
    NoduleMaskDict,
)

__all__ = [
    "LPS_TO_RAS", "LoadCTVolume", "LoadCTVolumeD", "LoadCTVolumeDict", "LoadCTVolumed",
    "NoduleMaskD", "NoduleMaskDict", "NoduleMaskd", "NoduleSpheres", "nodule_mask",
]
