"""radtl.dicom.io: the decoding plugin tried first for lossy JPEG, and instance UIDs a file holds empty."""

from __future__ import annotations

import numpy as np
import pytest
from pydicom.pixels import pixel_array as pydicom_pixel_array

import radtl.dicom.io as dicom_io
from radtl.dicom.io import decode_frames, empty_instance_uids, read_dataset
from tests.support.datasets import image_dataset
from tests.support.real_data import corpus


@pytest.fixture
def ybr_jpeg_ct():
    """deid-data's CT brain: a real 8-bit YBR_FULL_422 JPEG baseline file."""
    return read_dataset(corpus("deid") / "humans" / "ctbrain1.dcm")


def test_lossy_jpeg_is_decoded_by_pillow_first(ybr_jpeg_ct, monkeypatch):
    plugins = []

    def spy(ds, **options):
        plugins.append(options.get("decoding_plugin"))
        return pydicom_pixel_array(ds, **options)

    monkeypatch.setattr(dicom_io, "pixel_array", spy)
    assert decode_frames(ybr_jpeg_ct).shape == (1, 456, 510, 3)
    assert plugins == ["pillow"]


def test_a_stream_pillow_refuses_goes_to_the_other_plugins_with_a_warning(ybr_jpeg_ct, monkeypatch):
    def refuse(ds, **options):
        raise ValueError("not a JPEG stream Pillow reads")

    monkeypatch.setattr(dicom_io, "pixel_array", refuse)
    with pytest.warns(UserWarning, match="pillow could not decode this JPEG Baseline .* other plugins"):
        frames = decode_frames(ybr_jpeg_ct)
    assert frames.shape == (1, 456, 510, 3) and frames.dtype == np.uint8


def test_empty_instance_uids_are_named():
    ds = image_dataset(np.zeros((4, 4), np.uint16))
    ds.SOPInstanceUID = ""
    ds.SeriesInstanceUID = ""
    assert empty_instance_uids(ds) == ["SOPInstanceUID", "SeriesInstanceUID"]


def test_absent_instance_uids_are_not_empty_ones():
    ds = image_dataset(np.zeros((4, 4), np.uint16))
    assert empty_instance_uids(ds) == []
