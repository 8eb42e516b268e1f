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
}
MOVED_NAMES = [
    ("radtl.dicom.convert", "read_display_frames", "radtl.dicom.frames"),
    ("radtl.data", "input_mean", "radtl.networks.transfer"),
    ("radtl.data.inputs", "INITS", "radtl.networks.transfer"),
    ("radtl.engines", "probe", "radtl.evaluation.probes"),
    ("radtl.engines.probes", "extract_features", "radtl.evaluation.probes"),
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
