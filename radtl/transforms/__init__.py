"""MONAI transforms over radtl's DICOM pipeline, usable by ``_target_`` from bundle JSON."""

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

__all__ = [
    "LoadDicomImage", "LoadDicomImaged", "LoadDicomImageD", "LoadDicomImageDict",
    "VoiWindow", "VoiWindowd", "VoiWindowD", "VoiWindowDict",
    "LoadRadiograph", "LoadRadiographd", "LoadRadiographD", "LoadRadiographDict",
]
