"""Modules that moved keep their old import path for one release: importing it warns and gives the same objects."""

from __future__ import annotations

import importlib
import sys

import pytest

import radtl.data
import radtl.dicom.image
import radtl.transforms

#: old module -> names it must still give, each the same object as ``radtl.transforms``' (or ``radtl.data``'s).
OLD_PATHS = {
    "radtl.transforms.dicom": ["LoadDicomImage", "LoadDicomImaged", "VoiWindow", "VoiWindowd"],
    "radtl.transforms.dicom.array": ["LoadDicomImage", "VoiWindow"],
    "radtl.transforms.dicom.dictionary": ["LoadDicomImageD", "VoiWindowDict"],
    "radtl.transforms.ct": ["LoadCTVolume", "LoadCTVolumed", "NoduleMaskd", "NoduleSpheres", "nodule_mask", "LPS_TO_RAS"],
    "radtl.transforms.ct.array": ["LoadCTVolume", "NoduleSpheres", "nodule_mask", "LPS_TO_RAS"],
    "radtl.transforms.ct.dictionary": ["LoadCTVolumed", "NoduleMaskd"],
    "radtl.transforms.seg": ["SaveDicomSeg", "SaveDicomSegd"],
    "radtl.transforms.seg.array": ["SaveDicomSeg"],
    "radtl.transforms.seg.dictionary": ["SaveDicomSegd"],
    "radtl.data.packed": ["PackedImages", "PackedDataset", "write_pack", "NotInPackError"],
}


@pytest.mark.parametrize("old", sorted(OLD_PATHS))
def test_an_old_module_path_warns_and_gives_the_same_objects(monkeypatch, old):
    for name in [m for m in sys.modules if m == old or m.startswith(old + ".")]:
        monkeypatch.delitem(sys.modules, name)
    with pytest.warns(DeprecationWarning, match=old.replace(".", r"\.") + " is deprecated"):
        module = importlib.import_module(old)
    home = radtl.data if old.startswith("radtl.data") else radtl.transforms
    for name in OLD_PATHS[old]:
        assert getattr(module, name) is getattr(home, name), name


def test_the_old_nodule_transform_name_warns_and_is_nodule_mask():
    with pytest.warns(DeprecationWarning, match="NoduleSpheres is deprecated"):
        transform = radtl.transforms.NoduleSpheres()
    assert isinstance(transform, radtl.transforms.NoduleMask)


def test_resize_with_pad_warns_and_is_the_uint8_square_resize():
    import numpy as np

    from radtl.dicom.image import resize_with_pad

    image = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    with pytest.warns(DeprecationWarning, match="resize_with_pad is deprecated"):
        square = resize_with_pad(image, 8)
    assert np.array_equal(square, radtl.dicom.image.resize_longest_pad_uint8(image, 8))
