"""Modules and names moved by issue 23 stay importable from their old paths for one release, with a
DeprecationWarning, and reach the one implementation at the new path."""

import importlib
import sys

import pytest

MOVED_MODULES = {
    "radtl.dicom.export": "radtl.dicom.convert",
    "radtl.seg.dicom_seg": "radtl.dicom.seg",
    "radtl.seg.pacs": "radtl.dicom.pacs",
    "radtl.seg.preview": "radtl.dicom.seg_preview",
    "radtl.seg.segment": "radtl.segment",
    "radtl.engines.energy": "radtl.energy",
    "radtl.data.packed": "radtl.data.pack",
}
MOVED_NAMES = [
    ("radtl.dicom.convert", "read_display_frames", "radtl.dicom.frames"),
    ("radtl.data", "input_mean", "radtl.networks.transfer"),
    ("radtl.data.inputs", "INITS", "radtl.networks.transfer"),
    ("radtl.engines", "probe", "radtl.evaluation.probes"),
    ("radtl.engines.probes", "extract_features", "radtl.evaluation.probes"),
    # the transforms' old groups: every name is importable from radtl.transforms
    *((old, name, "radtl.transforms") for old, names in {
        "radtl.transforms.dicom": ["LoadDicomImage", "LoadDicomImaged", "VoiWindow", "VoiWindowd"],
        "radtl.transforms.dicom.array": ["LoadDicomImage", "VoiWindow"],
        "radtl.transforms.dicom.dictionary": ["LoadDicomImageD", "VoiWindowDict"],
        "radtl.transforms.ct": ["LoadCTVolume", "LoadCTVolumed", "NoduleMaskd", "nodule_mask", "LPS_TO_RAS"],
        "radtl.transforms.ct.array": ["LoadCTVolume", "NoduleSpheres", "nodule_mask", "LPS_TO_RAS"],
        "radtl.transforms.ct.dictionary": ["LoadCTVolumed", "NoduleMaskd"],
        "radtl.transforms.seg": ["SaveDicomSeg", "SaveDicomSegd"],
        "radtl.transforms.seg.array": ["SaveDicomSeg"],
        "radtl.transforms.seg.dictionary": ["SaveDicomSegd"],
    }.items() for name in names),
]


@pytest.mark.parametrize("old", sorted(MOVED_MODULES))
def test_an_old_module_path_warns_and_is_the_new_module(old, monkeypatch):
    monkeypatch.delitem(sys.modules, old, raising=False)
    with pytest.warns(DeprecationWarning, match=f"{old} moved to {MOVED_MODULES[old]}"):
        module = importlib.import_module(old)
    assert module is importlib.import_module(MOVED_MODULES[old])


@pytest.mark.parametrize(("old", "name", "new"), MOVED_NAMES)
def test_an_old_name_warns_and_is_the_new_object(old, name, new):
    with pytest.warns(DeprecationWarning, match=f"{name} moved to"):
        value = getattr(importlib.import_module(old), name)
    assert value is getattr(importlib.import_module(new), name)


def test_radtl_dicom_exports_the_frames_and_the_convert_command_from_their_new_modules():
    import radtl.dicom
    from radtl.dicom import convert, frames

    assert radtl.dicom.display_frames is frames.display_frames and radtl.dicom.convert_tree is convert.convert_tree


def test_the_old_nodule_transform_name_warns_and_is_nodule_mask():
    import radtl.transforms

    with pytest.warns(DeprecationWarning, match="NoduleSpheres is deprecated"):
        transform = radtl.transforms.NoduleSpheres()
    assert isinstance(transform, radtl.transforms.NoduleMask)


def test_resize_with_pad_warns_and_is_the_uint8_square_resize():
    import numpy as np

    from radtl.dicom.image import resize_longest_pad_uint8, resize_with_pad

    image = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    with pytest.warns(DeprecationWarning, match="resize_with_pad is deprecated"):
        square = resize_with_pad(image, 8)
    assert np.array_equal(square, resize_longest_pad_uint8(image, 8))
