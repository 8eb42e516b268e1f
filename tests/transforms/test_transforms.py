"""MONAI transforms over the DICOM pipeline behave like the exporter and like MONAI transforms."""

import numpy as np
import torch
from monai.transforms import Compose, Resized

from radtl.dicom.frames import read_display_frames
from radtl.dicom.lut import Window, apply_window
from radtl.transforms import LoadDicomImage, LoadDicomImaged, VoiWindow, VoiWindowd


def test_loaded_image_is_channel_first_with_the_exporters_pixels(samples):
    path = samples / "cr" / "hand_mono1.dcm"
    image = LoadDicomImage()(str(path))
    expected = read_display_frames(path)[0].image
    assert image.shape == (1, *expected.shape)
    assert np.array_equal(image[0].numpy().astype(np.uint8), expected)
    assert image.meta["inverted"] and image.meta["Modality"] == "CR"


def test_frame_argument_selects_a_frame_of_a_multiframe_object(samples):
    path = str(samples / "enhanced" / "enhanced_mr.dcm")
    assert LoadDicomImage(frame=1)(path).meta["voi"] != LoadDicomImage(frame=0)(path).meta["voi"]


def test_dictionary_loader_composes_with_monai_transforms(samples):
    pipeline = Compose([LoadDicomImaged("image"), Resized("image", (32, 32))])
    out = pipeline({"image": str(samples / "ct" / "series_001" / "slice_001.dcm")})
    assert out["image"].shape == (1, 32, 32) and out["image"].dtype == torch.float32


def test_voi_window_matches_the_standard_function_on_tensors_and_arrays():
    hu = np.array([[-1000.0, 40.0, 1000.0]], dtype=np.float32)
    expected = apply_window(hu, Window(40, 400), 0.0, 1.0)
    assert np.allclose(VoiWindow(40, 400)(hu), expected)
    assert torch.allclose(VoiWindow(40, 400)(torch.as_tensor(hu)), torch.as_tensor(expected, dtype=torch.float32))


def test_voi_window_dictionary_twin():
    out = VoiWindowd("ct", center=40, width=400, function="LINEAR_EXACT", out_max=255)({"ct": np.array([40.0])})
    assert out["ct"][0] == 127.5
