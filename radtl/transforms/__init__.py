"""MONAI transforms over radtl's DICOM pipeline, usable by ``_target_`` from bundle JSON."""

from radtl.transforms.batch import BatchRandomizable, MultiCrop, RandBatchAugment, to_unit_float
from radtl.transforms.ct import (
    LoadCTVolume,
    LoadCTVolumeD,
    LoadCTVolumed,
    LoadCTVolumeDict,
    NoduleMaskD,
    NoduleMaskd,
    NoduleMaskDict,
    NoduleSpheres,
)
from radtl.transforms.dicom.array import LoadDicomImage, VoiWindow
from radtl.transforms.dicom.dictionary import (
    LoadDicomImageD,
    LoadDicomImaged,
    LoadDicomImageDict,
    VoiWindowD,
    VoiWindowd,
    VoiWindowDict,
)
from radtl.transforms.io import (
    LoadPacked,
    LoadPackedD,
    LoadPackedd,
    LoadPackedDict,
    LoadRadiograph,
    LoadRadiographD,
    LoadRadiographd,
    LoadRadiographDict,
)
from radtl.transforms.seg import SaveDicomSeg, SaveDicomSegD, SaveDicomSegd, SaveDicomSegDict

__all__ = [
    "BatchRandomizable",
    "LoadCTVolume",
    "LoadCTVolumeD",
    "LoadCTVolumeDict",
    "LoadCTVolumed",
    "LoadDicomImage",
    "LoadDicomImageD",
    "LoadDicomImageDict",
    "LoadDicomImaged",
    "LoadPacked",
    "LoadPackedD",
    "LoadPackedDict",
    "LoadPackedd",
    "LoadRadiograph",
    "LoadRadiographD",
    "LoadRadiographDict",
    "LoadRadiographd",
    "MultiCrop",
    "NoduleMaskD",
    "NoduleMaskDict",
    "NoduleMaskd",
    "NoduleSpheres",
    "RandBatchAugment",
    "SaveDicomSeg",
    "SaveDicomSegD",
    "SaveDicomSegDict",
    "SaveDicomSegd",
    "VoiWindow",
    "VoiWindowD",
    "VoiWindowDict",
    "VoiWindowd",
    "to_unit_float",
]
