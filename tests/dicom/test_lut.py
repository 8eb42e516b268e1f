"""The grayscale stages' arithmetic, pinned on values computed by hand from DICOM PS3.3 C.11."""

import numpy as np
import pytest

from radtl.dicom.lut import (
    LookupTable,
    Rescale,
    VoiLutFunction,
    Window,
    apply_inversion,
    apply_lut,
    apply_modality_lut,
    apply_paper_window,
    apply_rescale,
    apply_voi_lut,
    apply_window,
)

SOFT_TISSUE = dict(center=40.0, width=400.0)


def window(function, center=40.0, width=400.0):
    return Window(center, width, VoiLutFunction(function))


class TestModalityLut:
    def test_rescale_maps_stored_values_to_modality_units(self):
        # PS3.3 C.11.1.1.2: output = m * SV + b
        assert apply_rescale(np.array([0, 1000]), Rescale(2.0, -1024.0)).tolist() == [-1024.0, 976.0]

    def test_rescale_with_zero_slope_is_refused(self):
        with pytest.raises(ValueError, match="Slope"):
            Rescale(0.0, 10.0)

    def test_lut_clamps_below_first_mapped_and_beyond_last_entry(self):
        # PS3.3 C.11.1.1.1: values < first mapped -> first entry, beyond the table -> last entry
        lut = LookupTable(first_mapped=-2, bits=16, data=np.array([10, 20, 30, 40]))
        assert apply_lut(np.array([-5, -2, -1, 0, 1, 5]), lut).tolist() == [10, 10, 20, 30, 40, 40]

    def test_modality_stage_dispatches_on_transform_kind(self):
        lut = LookupTable(first_mapped=0, bits=16, data=np.array([100, 200]))
        assert apply_modality_lut(np.array([1]), lut).tolist() == [200]
        assert apply_modality_lut(np.array([1]), Rescale(1.0, -1024.0)).tolist() == [-1023]


class TestLinearWindow:
    """PS3.3 C.11.2.1.2.1 with c=40, w=400: thresholds at c-0.5-(w-1)/2 = -160 and c-0.5+(w-1)/2 = 239."""

    @pytest.mark.parametrize(
        "x, expected",
        [
            (-1000.0, 0.0),
            (-160.0, 0.0),  # x <= lower threshold -> y_min
            (-60.0, (-99.5 / 399 + 0.5) * 255),  # 63.909...
            (39.5, 127.5),  # c - 0.5 is the midpoint, not c
            (40.0, (0.5 / 399 + 0.5) * 255),  # 127.819...
            (239.0, 255.0),
            (240.0, 255.0),
        ],
    )
    def test_linear_matches_the_standard_piecewise_definition(self, x, expected):
        assert apply_window(np.array([x]), window("LINEAR"))[0] == pytest.approx(expected)

    def test_width_one_is_a_threshold_at_center_minus_half(self):
        y = apply_window(np.array([99.0, 99.5, 99.6, 100.0]), Window(100.0, 1.0))
        assert y.tolist() == [0.0, 0.0, 255.0, 255.0]

    def test_width_below_one_is_invalid_for_linear(self):
        with pytest.raises(ValueError, match=">= 1"):
            Window(40.0, 0.5)

    def test_output_range_is_configurable(self):
        assert apply_window(np.array([39.5]), window("LINEAR"), y_min=0.0, y_max=1.0)[0] == pytest.approx(0.5)


class TestLinearExactWindow:
    """PS3.3 C.11.2.1.3.2: y = ((x - c) / w + 0.5) * 255, limits at c - w/2 and c + w/2."""

    @pytest.mark.parametrize("x, expected", [(-160.0, 0.0), (-60.0, 63.75), (40.0, 127.5), (240.0, 255.0), (900.0, 255.0)])
    def test_linear_exact(self, x, expected):
        assert apply_window(np.array([x]), window("LINEAR_EXACT"))[0] == pytest.approx(expected)

    def test_fractional_width_is_valid(self):
        assert Window(0.0, 0.5, VoiLutFunction.LINEAR_EXACT).width == 0.5

    def test_zero_width_is_invalid(self):
        with pytest.raises(ValueError, match="> 0"):
            Window(0.0, 0.0, VoiLutFunction.LINEAR_EXACT)


class TestSigmoidWindow:
    """PS3.3 C.11.2.1.3.1: y = 255 / (1 + exp(-4 (x - c) / w))."""

    @pytest.mark.parametrize(
        "x, expected",
        [(40.0, 127.5), (140.0, 255 / (1 + np.exp(-1.0))), (-60.0, 255 / (1 + np.exp(1.0)))],  # 186.42, 68.58
    )
    def test_sigmoid(self, x, expected):
        assert apply_window(np.array([x]), window("SIGMOID"))[0] == pytest.approx(expected)

    def test_sigmoid_never_reaches_the_limits(self):
        y = apply_window(np.array([-420.0, 500.0]), window("SIGMOID"))  # c -+ 460
        assert 0.0 < y[0] < 3.0 and 252.0 < y[1] < 255.0


class TestPaperWindow:
    def test_paper_formula_is_the_study_formula(self):
        # RadiologyNET thesis 2.3.2: (x - (c - w/2)) / w * 255 = (-60 - (-160)) / 400 * 255
        assert apply_paper_window(np.array([-60.0]), Window(**SOFT_TISSUE))[0] == pytest.approx(63.75)

    def test_paper_formula_ignores_the_files_voi_lut_function(self):
        sigmoid = window("SIGMOID")
        assert apply_paper_window(np.array([140.0]), sigmoid)[0] == pytest.approx(191.25)

    def test_paper_and_standard_linear_differ_by_less_than_one_grey_level(self):
        x = np.linspace(-300, 300, 2001)
        difference = apply_paper_window(x, Window(**SOFT_TISSUE)) - apply_window(x, Window(**SOFT_TISSUE))
        assert 0 < np.abs(difference).max() < 1


class TestVoiLutSequence:
    def test_lut_output_is_scaled_from_its_bit_depth_to_255(self):
        # PS3.3 C.11.2.1.1: output range 0 .. 2**bits - 1
        lut = LookupTable(first_mapped=0, bits=12, data=np.array([0, 1365, 2730, 4095]))
        assert apply_voi_lut(np.array([0, 1, 2, 3, 9]), lut).tolist() == pytest.approx([0, 85, 170, 255, 255])

    def test_vendor_data_exceeding_declared_bits_widens_the_range(self):
        lut = LookupTable(first_mapped=0, bits=8, data=np.array([0, 1023]))
        assert apply_voi_lut(np.array([1]), lut)[0] == pytest.approx(255.0)


def test_inversion_turns_monochrome1_into_p_values():
    # PS3.3 C.7.6.3.1.2: MONOCHROME1 shows the minimum as white
    assert apply_inversion(np.array([0.0, 63.75, 255.0])).tolist() == [255.0, 191.25, 0.0]
