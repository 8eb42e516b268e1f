"""MONAI transforms over radtl's DICOM pipeline, usable by ``_target_`` from bundle JSON."""

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
from radtl.transforms.io import LoadRadiograph, LoadRadiographD, LoadRadiographd, LoadRadiographDict
from radtl.transforms.seg import SaveDicomSeg, SaveDicomSegD, SaveDicomSegd, SaveDicomSegDict

__all__ = [
    "LoadCTVolume",
    "LoadCTVolumeD",
    "LoadCTVolumeDict",
    "LoadCTVolumed",
    "LoadDicomImage",
    "LoadDicomImageD",
    "LoadDicomImageDict",
    "LoadDicomImaged",
    "LoadRadiograph",
    "LoadRadiographD",
    "LoadRadiographDict",
    "LoadRadiographd",
    "NoduleMaskD",
    "NoduleMaskDict",
    "NoduleMaskd",
    "NoduleSpheres",
    "SaveDicomSeg",
    "SaveDicomSegD",
    "SaveDicomSegDict",
    "SaveDicomSegd",
    "VoiWindow",
    "VoiWindowD",
    "VoiWindowDict",
    "VoiWindowd",
]
