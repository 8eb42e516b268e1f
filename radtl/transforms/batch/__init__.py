"""Augmentation of a whole ``(N, C, H, W)`` batch on its device: the maths in :mod:`~radtl.transforms.batch.functional`,
the randomised transforms (:class:`RandBatchAugment`, :class:`MultiCrop`) in :mod:`~radtl.transforms.batch.array`."""

from radtl.transforms.batch.array import BatchRandomizable, BatchRepeatChannel, MultiCrop, RandBatchAugment
from radtl.transforms.batch.functional import (
    CROP_ATTEMPTS,
    GAMMA_EPSILON,
    adjust_brightness,
    adjust_contrast,
    adjust_gamma,
    affine_matrices,
    affine_resample,
    color_jitter,
    crop_matrices,
    gaussian_blur,
    resized_crop_boxes,
    solarize,
    to_unit_float,
)

__all__ = [
    "CROP_ATTEMPTS",
    "GAMMA_EPSILON",
    "BatchRandomizable",
    "BatchRepeatChannel",
    "MultiCrop",
    "RandBatchAugment",
    "adjust_brightness",
    "adjust_contrast",
    "adjust_gamma",
    "affine_matrices",
    "affine_resample",
    "color_jitter",
    "crop_matrices",
    "gaussian_blur",
    "resized_crop_boxes",
    "solarize",
    "to_unit_float",
]
