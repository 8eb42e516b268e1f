"""Batch augmentation on the device: RadiologyNET's flip/rotate/scale/intensity and DINO's multi-crop, per image."""

import math

import pytest
import torch
import torch.nn.functional as F
from monai.transforms import Rotate

from radtl.transforms import MultiCrop, RandBatchAugment, to_unit_float
from radtl.transforms.batch import (
    adjust_gamma,
    affine_matrices,
    affine_resample,
    crop_matrices,
    gaussian_blur,
    resized_crop_boxes,
)

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])

#: RandBatchAugment with every probability zero: the identity.
NOTHING = {"flip_prob": 0.0, "rotate_prob": 0.0, "scale_prob": 0.0, "intensity_prob": 0.0, "gamma_prob": 0.0}
#: MultiCrop of the whole image only, no flip, jitter, blur or solarisation: a plain resize.
PLAIN_CROPS = {
    "global_scale": (1.0, 1.0),
    "local_scale": (1.0, 1.0),
    "ratio": (1.0, 1.0),
    "flip_prob": 0.0,
    "jitter_prob": 0.0,
    "blur_prob": (0.0, 0.0, 0.0),
    "solarize_prob": (0.0, 0.0),
}


def images(n: int = 4, height: int = 16, width: int = 16, device: str = "cpu", dtype=torch.float32) -> torch.Tensor:
    """A seeded ``(n, 1, height, width)`` batch in [0, 1], quantised to k / 255 like converted uint8 images."""
    generator = torch.Generator().manual_seed(1)
    pixels = torch.randint(0, 256, (n, 1, height, width), generator=generator, dtype=torch.uint8)
    return to_unit_float(pixels).to(device=device, dtype=dtype)


# --- to_unit_float ---


def test_to_unit_float_divides_uint8_by_255():
    out = to_unit_float(torch.tensor([[[[0, 51, 255]]]], dtype=torch.uint8))
    assert out.dtype == torch.float32
    assert torch.equal(out, torch.tensor([[[[0.0, 0.2, 1.0]]]]))


def test_to_unit_float_rejects_integers_of_unknown_scale():
    with pytest.raises(TypeError, match="uint8 or floating"):
        to_unit_float(torch.zeros(1, 1, 2, 2, dtype=torch.int16))


# --- affine matrices and crop boxes ---


def test_affine_matrix_of_no_change_is_the_identity():
    theta = affine_matrices(torch.zeros(2), torch.ones(2), torch.zeros(2, dtype=torch.bool), spatial_size=(8, 12))
    assert torch.equal(theta, torch.eye(2, 3).expand(2, 2, 3))


def test_rotation_matches_monai_rotate_on_a_non_square_image():
    image = images(1, 12, 20)
    for angle in (math.pi / 6, -0.4):
        theta = affine_matrices(torch.tensor([angle]), torch.ones(1), torch.zeros(1, dtype=torch.bool), None, (12, 20))
        expected = Rotate(angle, keep_size=True, mode="bilinear", padding_mode="zeros", align_corners=False)(image[0])
        assert torch.allclose(affine_resample(image, theta)[0], expected.as_tensor(), atol=1e-5)


def test_crop_boxes_lie_inside_the_image_with_area_and_aspect_in_range():
    generator = torch.Generator().manual_seed(0)
    boxes = resized_crop_boxes(200, 40, 60, (0.2, 0.6), (3 / 4, 4 / 3), generator)
    top, left, h, w = boxes.unbind(-1)
    assert boxes.dtype == torch.int64 and boxes.shape == (200, 4)
    assert bool((top >= 0).all() and (left >= 0).all() and (top + h <= 40).all() and (left + w <= 60).all())
    area, aspect = (h * w) / (40 * 60), w / h
    assert bool((area > 0.18).all() and (area < 0.62).all())  # rounding of the sides moves the area a little
    assert bool((aspect > 0.7).all() and (aspect < 1.4).all())


def test_crop_boxes_fall_back_to_the_central_crop_when_no_try_fits():
    boxes = resized_crop_boxes(3, 20, 20, (0.9, 1.0), (4.0, 5.0), torch.Generator().manual_seed(0))
    assert torch.equal(boxes, torch.tensor([[7, 0, 5, 20]]).expand(3, 4))  # h = round(20 / 4), top = (20 - 5) // 2


def test_crop_matrix_of_the_whole_image_is_the_identity():
    theta = crop_matrices(torch.tensor([[0, 0, 10, 30]]), 10, 30, torch.tensor([False]))
    assert torch.equal(theta, torch.eye(2, 3, dtype=torch.float64)[None])


# --- RandBatchAugment ---


@pytest.mark.parametrize("device", DEVICES)
def test_augment_with_all_probabilities_zero_returns_the_input_exactly(device):
    batch = images(device=device)
    assert torch.equal(RandBatchAugment(**NOTHING, seed=0)(batch), batch)


def test_rotation_and_scaling_drawn_as_the_identity_return_the_input_exactly():
    batch = images()
    augment = RandBatchAugment(
        **{**NOTHING, "rotate_prob": 1.0, "scale_prob": 1.0}, rotate_range=0.0, scale_range=(1, 1)
    )
    assert torch.equal(augment(batch), batch)


def test_flip_with_probability_one_is_torch_flip_of_the_last_axis():
    batch = images(height=8, width=12)
    out = RandBatchAugment(**{**NOTHING, "flip_prob": 1.0}, seed=0)(batch)
    assert torch.equal(out, torch.flip(batch, dims=(-1,)))


def test_positive_quarter_turn_matches_monai_rotate_and_rot90_clockwise_on_screen():
    batch = images(2)
    out = RandBatchAugment(**{**NOTHING, "rotate_prob": 1.0}, rotate_range=(math.pi / 2, math.pi / 2), seed=0)(batch)
    assert torch.allclose(out, torch.rot90(batch, k=-1, dims=(-2, -1)), atol=1e-5)
    assert torch.allclose(out[0], Rotate(math.pi / 2, align_corners=False)(batch[0]).as_tensor(), atol=1e-5)


def test_scaling_above_one_magnifies_the_content_about_the_centre():
    square = torch.zeros(1, 1, 32, 32)
    square[..., 12:20, 12:20] = 1.0  # 8 x 8 centred
    out = RandBatchAugment(**{**NOTHING, "scale_prob": 1.0}, scale_range=(2.0, 2.0), seed=0)(square)
    assert out.sum().item() == pytest.approx(4 * 64, rel=0.02)
    assert torch.equal(out[..., 9:23, 9:23] > 0.5, torch.ones(1, 1, 14, 14, dtype=torch.bool))


def test_same_seed_gives_the_same_augmentation_and_different_seeds_differ():
    batch = images(8)
    first, again, other = (RandBatchAugment(seed=seed)(batch) for seed in (3, 3, 4))
    assert torch.equal(first, again)
    assert not torch.allclose(first, other)


def test_set_random_state_reseeds_like_the_seed_argument():
    batch = images(8)
    augment = RandBatchAugment(seed=1)
    augment(batch)
    assert augment.set_random_state(seed=3) is augment
    assert torch.equal(augment(batch), RandBatchAugment(seed=3)(batch))


def test_state_dict_round_trip_continues_the_same_random_stream():
    batch = images(8)
    augment = RandBatchAugment(seed=5)
    augment(batch)
    saved = augment.state_dict()
    expected = [augment(batch), augment(batch)]
    resumed = RandBatchAugment(seed=99)
    resumed.load_state_dict(saved)
    assert all(torch.equal(resumed(batch), out) for out in expected)


def test_load_state_dict_without_a_generator_entry_names_the_missing_key():
    with pytest.raises(KeyError, match="generator"):
        RandBatchAugment().load_state_dict({})


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_augment_keeps_shape_dtype_and_device(device, dtype):
    batch = images(3, 10, 14, device=device, dtype=dtype)
    out = RandBatchAugment(flip_prob=1.0, rotate_prob=1.0, scale_prob=1.0, intensity_prob=1.0, gamma_prob=1.0)(batch)
    assert out.shape == batch.shape and out.dtype == dtype and out.device == batch.device


def test_intensity_scaling_multiplies_each_image_by_one_factor_in_range():
    batch = images(16) + 0.1  # no zeros to divide by
    out = RandBatchAugment(**{**NOTHING, "intensity_prob": 1.0}, intensity_factor=0.2, seed=0)(batch)
    ratio = out / batch
    per_image = ratio.flatten(1)
    assert torch.allclose(per_image, per_image[:, :1].expand_as(per_image))
    assert bool(((per_image >= 0.8) & (per_image <= 1.2)).all())


def test_gamma_keeps_each_images_min_and_max_and_stays_finite():
    batch = images(8) * torch.linspace(0.2, 3.0, 8).view(-1, 1, 1, 1)
    batch[0] = 0.5  # a constant image
    out = RandBatchAugment(**{**NOTHING, "gamma_prob": 1.0}, gamma=(0.5, 2.0), seed=0)(batch)
    assert bool(torch.isfinite(out).all())
    assert torch.allclose(out.amin(dim=(1, 2, 3)), batch.amin(dim=(1, 2, 3)), atol=1e-5)
    assert torch.allclose(out.amax(dim=(1, 2, 3)), batch.amax(dim=(1, 2, 3)), atol=1e-5)
    assert not torch.allclose(out, batch)


def test_adjust_gamma_is_monai_adjust_contrast_per_image():
    from monai.transforms import AdjustContrast

    batch = images(2)
    out = adjust_gamma(batch, torch.tensor([0.7, 1.6]))
    for image, gamma, result in zip(batch, (0.7, 1.6), out, strict=True):
        assert torch.allclose(result, AdjustContrast(gamma)(image), atol=1e-6)


def test_augment_rejects_uint8_batches_with_a_hint():
    with pytest.raises(TypeError, match="to_unit_float"):
        RandBatchAugment()(torch.zeros(1, 1, 4, 4, dtype=torch.uint8))


def test_augment_rejects_a_probability_outside_zero_one():
    with pytest.raises(ValueError, match="flip_prob"):
        RandBatchAugment(flip_prob=1.5)


# --- MultiCrop ---


@pytest.mark.parametrize("device", DEVICES)
def test_multicrop_returns_the_configured_numbers_and_sizes_of_crops(device):
    batch = images(3, 40, 48, device=device)
    global_views, local_views = MultiCrop(global_crops=2, global_size=24, local_crops=3, local_size=8, seed=0)(batch)
    assert [tuple(v.shape) for v in global_views] == [(3, 1, 24, 24)] * 2
    assert [tuple(v.shape) for v in local_views] == [(3, 1, 8, 8)] * 3
    assert all(v.dtype == batch.dtype and v.device == batch.device for v in global_views + local_views)


def test_multicrop_without_local_crops_gives_an_empty_local_list():
    global_views, local_views = MultiCrop(global_size=16, local_crops=0, seed=0)(images(2, 32, 32))
    assert len(global_views) == 2 and local_views == []


def test_multicrop_crops_lie_within_zero_one():
    views = MultiCrop(global_size=20, local_size=8, local_crops=4, jitter_prob=1.0, solarize_prob=(1.0, 1.0), seed=0)(
        images(4, 32, 32)
    )
    assert all(bool(((v >= 0) & (v <= 1)).all()) for v in views[0] + views[1])


@pytest.mark.parametrize("size", [12, 40])  # downscale and upscale
def test_whole_image_crop_without_other_changes_is_a_plain_resize(size):
    batch = images(2, 24, 24)
    global_views, local_views = MultiCrop(global_size=size, local_crops=1, local_size=size, **PLAIN_CROPS, seed=0)(
        batch
    )
    expected = F.interpolate(batch, size=(size, size), mode="bilinear", align_corners=False, antialias=False)
    assert all(torch.allclose(view, expected, atol=1e-5) for view in global_views + local_views)


def test_multicrop_same_seed_same_views_and_state_dict_resumes():
    batch = images(2, 32, 32)
    crops = MultiCrop(global_size=16, local_crops=2, local_size=8, seed=7)
    crops(batch)
    saved = crops.state_dict()
    expected = crops(batch)
    resumed = MultiCrop(global_size=16, local_crops=2, local_size=8, seed=0)
    resumed.load_state_dict(saved)
    got = resumed(batch)
    assert all(torch.equal(a, b) for a, b in zip(got[0] + got[1], expected[0] + expected[1], strict=True))


def test_solarize_probability_one_on_the_second_global_crop_inverts_bright_pixels():
    batch = images(2, 16, 16)
    plain = {**PLAIN_CROPS, "solarize_prob": (0.0, 1.0)}
    first, second = MultiCrop(global_size=16, local_crops=0, **plain, seed=0)(batch)[0]
    assert torch.allclose(first, batch, atol=1e-5)
    assert torch.allclose(second, torch.where(batch < 0.5, batch, 1.0 - batch), atol=1e-5)


def test_gaussian_blur_with_sigma_zero_is_the_identity():
    batch = images(3)
    assert torch.equal(gaussian_blur(batch, torch.zeros(3)), batch)


def test_gaussian_blur_blurs_only_the_images_with_positive_sigma_and_keeps_constants():
    batch = images(2)
    batch[1] = 0.25
    out = gaussian_blur(batch, torch.tensor([0.0, 1.5]))
    assert torch.equal(out[0], batch[0])
    assert torch.allclose(out[1], batch[1])
    blurred = gaussian_blur(batch[:1], torch.tensor([1.5]))
    assert blurred.std() < batch[:1].std() and torch.allclose(blurred.mean(), batch[:1].mean(), atol=0.02)


def test_gaussian_blur_has_the_requested_standard_deviation():
    point = torch.zeros(1, 1, 31, 31)
    point[..., 15, 15] = 1.0
    profile = gaussian_blur(point, torch.tensor([2.0]))[0, 0, 15]
    offsets = torch.arange(31.0) - 15
    variance = (profile * offsets**2).sum() / profile.sum()
    assert variance.sqrt().item() == pytest.approx(2.0, rel=0.02)
