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
    LoadDicomImaged,
    LoadDicomImageD,
    LoadDicomImageDict,
    VoiWindowd,
    VoiWindowD,
    VoiWindowDict,
)
from radtl.transforms.io import LoadRadiograph, LoadRadiographd, LoadRadiographD, LoadRadiographDict
from radtl.transforms.seg import SaveDicomSeg, SaveDicomSegD, SaveDicomSegd, SaveDicomSegDict

__all__ = [
    "LoadDicomImage", "LoadDicomImaged", "LoadDicomImageD", "LoadDicomImageDict",
    "VoiWindow", "VoiWindowd", "VoiWindowD", "VoiWindowDict",
    "LoadRadiograph", "LoadRadiographd", "LoadRadiographD", "LoadRadiographDict",
    "LoadCTVolume", "LoadCTVolumed", "LoadCTVolumeD", "LoadCTVolumeDict",
    "NoduleSpheres", "NoduleMaskd", "NoduleMaskD", "NoduleMaskDict",
    "SaveDicomSeg", "SaveDicomSegd", "SaveDicomSegD", "SaveDicomSegDict",
]
