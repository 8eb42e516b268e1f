"""Where each stage's parameters come from: top-level modules and functional groups."""

import numpy as np
import pytest

from radtl.dicom.lut import LookupTable, Rescale, VoiLutFunction, Window
from radtl.dicom.modules import grayscale_pipeline
from tests.support.datasets import image_dataset, item, sequence

PIXELS = np.zeros((4, 4), dtype=np.uint16)


class TestModalityStage:
    def test_rescale_attributes_become_a_rescale(self):
        ds = image_dataset(PIXELS, RescaleSlope=2, RescaleIntercept=-1024, RescaleType="HU")
        assert grayscale_pipeline(ds).modality == Rescale(2.0, -1024.0, "HU")

    def test_no_modality_attributes_mean_identity(self):
        assert grayscale_pipeline(image_dataset(PIXELS)).modality == Rescale()

    def test_modality_lut_sequence_becomes_a_lookup_table(self):
        lut = item(LUTDescriptor=[3, 10, 16], LUTData=[5, 6, 7], ModalityLUTType="HU")
        modality = grayscale_pipeline(image_dataset(PIXELS, ModalityLUTSequence=sequence(lut))).modality
        assert isinstance(modality, LookupTable)
        assert (modality.first_mapped, modality.bits, modality.data.tolist()) == (10, 16, [5, 6, 7])

    def test_first_mapped_value_is_signed_for_signed_pixels(self):
        # PS3.3 C.11.1.1.1: LUT Descriptor's second value is SS when Pixel Representation is 1
        lut = item(LUTDescriptor=[2, 65535, 16], LUTData=[0, 1])
        ds = image_dataset(PIXELS.astype(np.int16), ModalityLUTSequence=sequence(lut))
        assert grayscale_pipeline(ds).modality.first_mapped == -1

    def test_descriptor_zero_entries_means_65536(self):
        lut = item(LUTDescriptor=[0, 0, 16], LUTData=list(range(65536)))
        assert grayscale_pipeline(image_dataset(PIXELS, ModalityLUTSequence=sequence(lut))).modality.data.size == 65536

    def test_zero_slope_is_rejected_with_a_reason(self):
        pipeline = grayscale_pipeline(image_dataset(PIXELS, RescaleSlope=0, RescaleIntercept=0))
        assert pipeline.modality == Rescale() and "Slope" in pipeline.rejected[0]


class TestVoiStage:
    def test_multi_valued_windows_keep_their_order(self):
        ds = image_dataset(PIXELS, WindowCenter=[40, -600], WindowWidth=[400, 1500],
                           WindowCenterWidthExplanation=["SOFT", "LUNG"])
        assert grayscale_pipeline(ds).voi == (Window(40, 400, explanation="SOFT"), Window(-600, 1500, explanation="LUNG"))

    def test_voi_lut_function_applies_to_every_window(self):
        ds = image_dataset(PIXELS, WindowCenter=[1, 2], WindowWidth=[3, 4], VOILUTFunction="SIGMOID")
        assert {w.function for w in grayscale_pipeline(ds).voi} == {VoiLutFunction.SIGMOID}

    def test_invalid_window_is_rejected_and_the_others_kept(self):
        ds = image_dataset(PIXELS, WindowCenter=[40, 50], WindowWidth=[0, 100])
        pipeline = grayscale_pipeline(ds)
        assert pipeline.voi == (Window(50, 100),)
        assert "window 1" in pipeline.rejected[0]

    def test_voi_lut_sequence_comes_first_by_default_and_last_on_request(self):
        lut = item(LUTDescriptor=[2, 0, 8], LUTData=[0, 255])
        ds = image_dataset(PIXELS, VOILUTSequence=sequence(lut), WindowCenter=40, WindowWidth=400)
        assert isinstance(grayscale_pipeline(ds).voi[0], LookupTable)
        assert isinstance(grayscale_pipeline(ds, voi_preference="window").voi[0], Window)


class TestPerFrameFunctionalGroups:
    """Enhanced multi-frame objects: PS3.3 C.7.6.16.2.9 (Pixel Value Transformation), C.7.6.16.2.10 (Frame VOI LUT)."""

    @pytest.fixture
    def enhanced(self):
        frames = [
            item(PixelValueTransformationSequence=sequence(item(RescaleSlope=1, RescaleIntercept=0, RescaleType="US")),
                 FrameVOILUTSequence=sequence(item(WindowCenter=100, WindowWidth=200))),
            item(PixelValueTransformationSequence=sequence(item(RescaleSlope=2, RescaleIntercept=-10, RescaleType="US")),
                 FrameVOILUTSequence=sequence(item(WindowCenter=300, WindowWidth=50, VOILUTFunction="LINEAR_EXACT"))),
            item(),  # nothing per frame: the shared group applies
        ]
        shared = item(FrameVOILUTSequence=sequence(item(WindowCenter=7, WindowWidth=8)))
        return image_dataset(np.zeros((3, 4, 4), np.uint16), PerFrameFunctionalGroupsSequence=sequence(*frames),
                             SharedFunctionalGroupsSequence=sequence(shared))

    def test_each_frame_gets_its_own_rescale(self, enhanced):
        assert grayscale_pipeline(enhanced, 0).modality == Rescale(1, 0, "US")
        assert grayscale_pipeline(enhanced, 1).modality == Rescale(2, -10, "US")

    def test_each_frame_gets_its_own_window(self, enhanced):
        assert grayscale_pipeline(enhanced, 0).voi == (Window(100, 200),)
        assert grayscale_pipeline(enhanced, 1).voi == (Window(300, 50, VoiLutFunction.LINEAR_EXACT),)

    def test_shared_group_fills_in_for_a_frame_without_its_own(self, enhanced):
        assert grayscale_pipeline(enhanced, 2).voi == (Window(7, 8),)


class TestPresentation:
    """MONOCHROME1 and Presentation LUT Shape (PS3.3 C.7.6.3.1.2, C.8.11.1.1 DX Image Module)."""

    @pytest.mark.parametrize(
        "photometric, shape, inverted",
        [
            ("MONOCHROME2", None, False),
            ("MONOCHROME2", "IDENTITY", False),
            ("MONOCHROME1", None, True),
            ("MONOCHROME1", "IDENTITY", True),  # identity "other than to account for" MONOCHROME1
            ("MONOCHROME1", "INVERSE", True),  # the DX rule: INVERSE accompanies MONOCHROME1, one inversion
            ("MONOCHROME2", "INVERSE", True),
        ],
    )
    def test_inversion(self, photometric, shape, inverted):
        ds = image_dataset(PIXELS, PhotometricInterpretation=photometric)
        if shape:
            ds.PresentationLUTShape = shape
        assert grayscale_pipeline(ds).invert is inverted
