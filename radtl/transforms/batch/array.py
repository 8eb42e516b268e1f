"""Augmentation of a whole ``(N, C, H, W)`` batch on its device: parameters per image, one resampling per batch.

Pretraining reads uint8 batches from a packed memory-mapped dataset and moves them to the GPU;
augmenting there, batched, replaces per-image transforms in DataLoader workers.

- :func:`~radtl.transforms.batch.functional.to_unit_float`: a uint8 batch to float32 in [0, 1].
- :class:`RandBatchAugment`: the RadiologyNET fine-tuning/pretraining augmentation (flip, rotation,
  isotropic scaling, intensity scaling, gamma), the spatial part as one ``grid_sample``.
- :class:`BatchRepeatChannel`: a grey ``(N, 1, H, W)`` batch to the three channels an ImageNet-shaped stem takes.
- :class:`MultiCrop`: DINO's multi-crop views (Caron et al. 2021, "Emerging Properties in
  Self-Supervised Vision Transformers", Sec. 3 and Appendix D: two global crops, several local
  crops); ``local_crops=0`` gives OmniRad's global-crops-only variant. One ``grid_sample`` per crop set.

Both draw their per-image parameters on the CPU from one ``torch.Generator``
(:class:`BatchRandomizable`), so no draw waits on the device, and ``state_dict``/``load_state_dict``
let a resumed run continue the same random stream. Only the few parameter tensors travel to the
batch's device; every image operation runs there in the batch's dtype.

The maths is in :mod:`radtl.transforms.batch.functional`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar, Self

import torch
from monai.transforms import Transform
from monai.transforms.traits import RandomizableTrait
from monai.utils import TransformBackends

from radtl.transforms.batch.functional import (
    _apply_to,
    _check_batch,
    adjust_gamma,
    affine_matrices,
    affine_resample,
    color_jitter,
    crop_matrices,
    gaussian_blur,
    resized_crop_boxes,
    solarize,
)

__all__ = ["BatchRandomizable", "BatchRepeatChannel", "MultiCrop", "RandBatchAugment"]


def _probability(name: str, value: float) -> float:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} is a probability in [0, 1], got {value}")
    return float(value)


def _interval(name: str, value: float | Sequence[float], *, low: float | None = None) -> tuple[float, float]:
    """``(lo, hi)`` from a pair, or ``(-v, v)`` from one number; ``lo <= hi`` and, with ``low``, ``lo > low``."""
    pair = (-abs(float(value)), abs(float(value))) if isinstance(value, int | float) else tuple(map(float, value))
    if len(pair) != 2 or pair[0] > pair[1]:
        raise ValueError(f"{name} is a number or a pair (lo, hi) with lo <= hi, got {value}")
    if low is not None and pair[0] <= low:
        raise ValueError(f"{name} must lie above {low}, got {value}")
    return pair


class BatchRandomizable(RandomizableTrait):
    """Per-image random parameters from one CPU ``torch.Generator``, resumable through its state.

    The generator plays the part of MONAI ``Randomizable.R``. Parameters are drawn on the CPU and
    only moved to the batch's device to be used, so drawing never synchronises with a GPU, and the
    stream depends on the seed and the batch sizes alone.

    Args:
        seed: seeds the generator; ``None``: seeded from the operating system's entropy.
    """

    def __init__(self, seed: int | None = None) -> None:
        self.generator = torch.Generator(device="cpu")
        self.set_random_state(seed)

    def set_random_state(self, seed: int | None = None, state: torch.Generator | None = None) -> Self:
        """Reseed, like MONAI ``Randomizable.set_random_state``.

        Args:
            seed: seed the generator with this integer.
            state: use this CPU generator instead (shared, not copied).
                With neither, the generator is seeded from the operating system's entropy.

        Returns:
            this transform.
        """
        if seed is not None:
            self.generator.manual_seed(int(seed))
        elif state is not None:
            if not isinstance(state, torch.Generator) or state.device.type != "cpu":
                raise TypeError(f"state must be None or a CPU torch.Generator, got {state!r}")
            self.generator = state
        else:
            self.generator.seed()
        return self

    def state_dict(self) -> dict[str, torch.Tensor]:
        """``{"generator": generator state}``, to save with a training checkpoint."""
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state_dict: Mapping[str, torch.Tensor]) -> None:
        """Restore the generator from :meth:`state_dict`: the next draws continue the saved stream.

        Raises:
            KeyError: when ``state_dict`` has no ``"generator"`` entry.
        """
        if "generator" not in state_dict:
            raise KeyError(f"{type(self).__name__}.load_state_dict needs a 'generator' entry, got {sorted(state_dict)}")
        self.generator.set_state(state_dict["generator"].cpu())

    def _uniform(self, n: int, low: float, high: float) -> torch.Tensor:
        """``(n,)`` float64 values uniform in ``[low, high)``, on the CPU."""
        return low + (high - low) * torch.rand(n, generator=self.generator, dtype=torch.float64)

    def _chance(self, n: int, prob: float) -> torch.Tensor:
        """``(n,)`` bool, each true with probability ``prob``, on the CPU."""
        return torch.rand(n, generator=self.generator, dtype=torch.float64) < prob


class RandBatchAugment(BatchRandomizable, Transform):
    """RadiologyNET's fine-tuning/pretraining augmentation, per image, over a batch on its device.

    Each image independently gets, with its own probability: a horizontal flip (last axis), a
    rotation uniform in ``rotate_range``, an isotropic scaling uniform in ``scale_range`` (the three
    composed into one affine matrix and applied by one bilinear ``grid_sample`` with zero padding,
    see :func:`affine_matrices` for the angle's sign, which is MONAI ``Rotate``'s), then MONAI
    ``RandScaleIntensity`` (``x * (1 + f)``, ``f`` uniform in ``intensity_factor``) and MONAI
    ``RandAdjustContrast`` (:func:`adjust_gamma`, gamma uniform in ``gamma``). Images whose rotation
    and scaling are the identity (not drawn, or drawn as angle 0 and scale 1) are flipped exactly
    (``torch.flip``) or passed through unchanged, without resampling, which would only approximate them.

    Args:
        flip_prob: probability of a horizontal flip.
        rotate_range: rotation angle range in radians, ``(lo, hi)`` or ``v`` for ``(-v, v)``; default ±15°.
        rotate_prob: probability of a rotation.
        scale_range: ``(lo, hi)`` magnification range, positive; above 1 enlarges the content.
        scale_prob: probability of a scaling.
        intensity_factor: ``f`` range, ``(lo, hi)`` or ``v`` for ``(-v, v)``, as MONAI ``RandScaleIntensity(factors=)``.
        intensity_prob: probability of an intensity scaling.
        gamma: ``(lo, hi)`` gamma range, positive, as MONAI ``RandAdjustContrast(gamma=)``.
        gamma_prob: probability of a gamma adjustment.
        seed: seed of the parameter generator (:class:`BatchRandomizable`).
    """

    backend: ClassVar[list[TransformBackends]] = [TransformBackends.TORCH]

    def __init__(
        self,
        flip_prob: float = 0.5,
        rotate_range: float | Sequence[float] = 0.2618,
        rotate_prob: float = 0.5,
        scale_range: Sequence[float] = (0.9, 1.1),
        scale_prob: float = 0.5,
        intensity_factor: float | Sequence[float] = 0.2,
        intensity_prob: float = 0.5,
        gamma: Sequence[float] = (0.8, 1.25),
        gamma_prob: float = 0.5,
        seed: int | None = None,
    ) -> None:
        self.flip_prob = _probability("flip_prob", flip_prob)
        self.rotate_range = _interval("rotate_range", rotate_range)
        self.rotate_prob = _probability("rotate_prob", rotate_prob)
        self.scale_range = _interval("scale_range", scale_range, low=0.0)
        self.scale_prob = _probability("scale_prob", scale_prob)
        self.intensity_factor = _interval("intensity_factor", intensity_factor)
        self.intensity_prob = _probability("intensity_prob", intensity_prob)
        self.gamma = _interval("gamma", gamma, low=0.0)
        self.gamma_prob = _probability("gamma_prob", gamma_prob)
        super().__init__(seed)

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        """Augment each image of ``batch``.

        Args:
            batch: ``(N, C, H, W)`` floating images, on any device.

        Returns:
            ``(N, C, H, W)`` tensor in the batch's dtype and device; the input is never modified in place
            (it may be returned as is when no image draws any change).
        """
        _check_batch(batch, type(self).__name__)
        n, _, height, width = batch.shape
        # every parameter is drawn on every call, so the stream depends on the batch sizes only
        flip = self._chance(n, self.flip_prob)
        rotate = self._chance(n, self.rotate_prob)
        angle = torch.where(rotate, self._uniform(n, *self.rotate_range), 0.0)
        zoom = self._chance(n, self.scale_prob)
        scale = torch.where(zoom, self._uniform(n, *self.scale_range), 1.0)
        brighten = self._chance(n, self.intensity_prob)
        factor = 1.0 + self._uniform(n, *self.intensity_factor)
        contrast = self._chance(n, self.gamma_prob)
        gamma = self._uniform(n, *self.gamma)

        moving = (angle != 0) | (scale != 1)  # an identity affine is not resampled: exact, not just close
        out = _apply_to(batch, flip & ~moving, lambda x, _: x.flip(-1))
        out = _apply_to(
            out,
            moving,
            lambda x, i: affine_resample(x, affine_matrices(angle[i], scale[i], flip[i], None, (height, width))),
        )
        out = _apply_to(out, brighten, lambda x, i: x * factor[i].to(x).view(-1, 1, 1, 1))
        return _apply_to(out, contrast, lambda x, i: adjust_gamma(x, gamma[i].to(x)))


class MultiCrop(BatchRandomizable, Transform):
    """DINO's multi-crop augmentation of grey images, per image, over a batch on its device.

    Every crop set (each global crop, each local crop) is a random resized crop of every image
    (:func:`resized_crop_boxes`, torchvision ``RandomResizedCrop`` semantics) with a random
    horizontal flip, both folded into one affine matrix per image and applied by one bilinear
    ``grid_sample`` (border padding) over the batch; then, per image, torchvision ``ColorJitter``
    brightness and contrast with probability ``jitter_prob`` (:func:`color_jitter`), a Gaussian blur
    (:func:`gaussian_blur`, sigma uniform in ``blur_sigma``) and a solarisation (:func:`solarize`)
    with the probabilities of DINO's recipe. Crops are clamped to [0, 1]; normalisation is left to the caller.

    Differences from DINO's torchvision/PIL pipeline: bilinear instead of bicubic resizing and no
    antialiasing (as ``F.interpolate(antialias=False)``); no grayscale conversion or hue/saturation
    jitter, which do nothing to grey images.

    Args:
        global_crops: number of global crops (DINO: 2).
        global_size: side of the square global crops.
        global_scale: ``(lo, hi)`` area fraction of the global crops.
        local_crops: number of local crops (DINO: 8; OmniRad: 0).
        local_size: side of the square local crops.
        local_scale: ``(lo, hi)`` area fraction of the local crops.
        ratio: ``(lo, hi)`` aspect ratio ``w / h`` of the crops, drawn log-uniformly.
        flip_prob: probability of a horizontal flip.
        brightness: brightness factors are uniform in ``[max(0, 1 - brightness), 1 + brightness]``.
        contrast: contrast factors are uniform in ``[max(0, 1 - contrast), 1 + contrast]``.
        jitter_prob: probability of the brightness and contrast jitter.
        blur_prob: blur probability of the first global crop, the other global crops, the local crops.
        blur_sigma: ``(lo, hi)`` blur standard deviation in pixels of the crop.
        solarize_prob: solarisation probability of the first global crop, the other global crops
            (local crops are never solarised).
        seed: seed of the parameter generator (:class:`BatchRandomizable`).
    """

    backend: ClassVar[list[TransformBackends]] = [TransformBackends.TORCH]

    def __init__(
        self,
        global_crops: int = 2,
        global_size: int = 224,
        global_scale: Sequence[float] = (0.4, 1.0),
        local_crops: int = 8,
        local_size: int = 96,
        local_scale: Sequence[float] = (0.05, 0.4),
        ratio: Sequence[float] = (3 / 4, 4 / 3),
        flip_prob: float = 0.5,
        brightness: float = 0.4,
        contrast: float = 0.4,
        jitter_prob: float = 0.8,
        blur_prob: Sequence[float] = (1.0, 0.1, 0.5),
        blur_sigma: Sequence[float] = (0.1, 2.0),
        solarize_prob: Sequence[float] = (0.0, 0.2),
        seed: int | None = None,
    ) -> None:
        if global_crops < 1 or local_crops < 0:
            raise ValueError(
                f"MultiCrop needs global_crops >= 1 and local_crops >= 0, got {global_crops}, {local_crops}"
            )
        if global_size < 1 or local_size < 1:
            raise ValueError(f"crop sizes must be positive, got global_size={global_size}, local_size={local_size}")
        if len(blur_prob) != 3:
            raise ValueError(f"blur_prob is (first global, other globals, locals), got {blur_prob}")
        if len(solarize_prob) != 2:
            raise ValueError(f"solarize_prob is (first global, other globals), got {solarize_prob}")
        if brightness < 0 or contrast < 0:
            raise ValueError(f"brightness and contrast must be >= 0, got {brightness}, {contrast}")
        self.global_crops = int(global_crops)
        self.global_size = int(global_size)
        self.global_scale = self._area_fraction("global_scale", global_scale)
        self.local_crops = int(local_crops)
        self.local_size = int(local_size)
        self.local_scale = self._area_fraction("local_scale", local_scale)
        self.ratio = _interval("ratio", ratio, low=0.0)
        self.flip_prob = _probability("flip_prob", flip_prob)
        self.brightness = (max(0.0, 1.0 - brightness), 1.0 + brightness)
        self.contrast = (max(0.0, 1.0 - contrast), 1.0 + contrast)
        self.jitter_prob = _probability("jitter_prob", jitter_prob)
        self.blur_prob = tuple(_probability("blur_prob", p) for p in blur_prob)
        self.blur_sigma = _interval("blur_sigma", blur_sigma)
        if self.blur_sigma[0] < 0:
            raise ValueError(f"blur_sigma must be >= 0, got {blur_sigma}")
        self.solarize_prob = tuple(_probability("solarize_prob", p) for p in solarize_prob)
        super().__init__(seed)

    @staticmethod
    def _area_fraction(name: str, value: Sequence[float]) -> tuple[float, float]:
        pair = _interval(name, value, low=0.0)
        if pair[1] > 1.0:
            raise ValueError(f"{name} is an area fraction in (0, 1], got {value}")
        return pair

    def __call__(self, batch: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Crop every image ``global_crops`` and ``local_crops`` times.

        Args:
            batch: ``(N, C, H, W)`` floating images in [0, 1], on any device.

        Returns:
            ``(global_views, local_views)``: lists of ``global_crops`` tensors ``(N, C, global_size, global_size)``
            and ``local_crops`` tensors ``(N, C, local_size, local_size)`` (empty when ``local_crops=0``),
            in the batch's dtype and device; view ``k`` of image ``i`` is ``views[k][i]``.
        """
        _check_batch(batch, type(self).__name__)
        global_views = [
            self.crop(
                batch, self.global_size, self.global_scale, self.blur_prob[min(k, 1)], self.solarize_prob[min(k, 1)]
            )
            for k in range(self.global_crops)
        ]
        local_views = [
            self.crop(batch, self.local_size, self.local_scale, self.blur_prob[2], 0.0) for _ in range(self.local_crops)
        ]
        return global_views, local_views

    def crop(
        self, batch: torch.Tensor, size: int, scale: Sequence[float], blur_prob: float, solarize_prob: float
    ) -> torch.Tensor:
        """One crop set: a random resized, flipped, jittered, blurred and solarised crop of every image.

        Args:
            batch: ``(N, C, H, W)`` floating images in [0, 1].
            size: side of the square crops.
            scale: ``(lo, hi)`` crop area fraction.
            blur_prob: probability of the Gaussian blur.
            solarize_prob: probability of the solarisation.

        Returns:
            ``(N, C, size, size)`` tensor in [0, 1], in the batch's dtype and device.
        """
        n, _, height, width = batch.shape
        boxes = resized_crop_boxes(n, height, width, scale, self.ratio, self.generator)
        flip = self._chance(n, self.flip_prob)
        jitter = self._chance(n, self.jitter_prob)
        brightness = self._uniform(n, *self.brightness)
        contrast = self._uniform(n, *self.contrast)
        brightness_first = self._chance(n, 0.5)
        blur = self._chance(n, blur_prob)
        sigma = self._uniform(n, *self.blur_sigma)
        solar = self._chance(n, solarize_prob)

        crops = affine_resample(batch, crop_matrices(boxes, height, width, flip), (size, size), padding_mode="border")
        crops = _apply_to(
            crops,
            jitter,
            lambda x, i: color_jitter(x, brightness[i].to(x), contrast[i].to(x), brightness_first[i].to(x.device)),
        )
        crops = _apply_to(crops, blur, lambda x, i: gaussian_blur(x, sigma[i]))
        crops = _apply_to(crops, solar, lambda x, _: solarize(x))
        return crops.clamp(0.0, 1.0)


class BatchRepeatChannel(Transform):
    """Repeat the channels of an ``(N, C, H, W)`` batch: ``(N, C * repeats, H, W)``, the same image in each copy.

    The pretraining bundles feed grey batches to backbones with three input channels (ImageNet's stems), as
    MONAI's ``RepeatChannel`` does for one channel-first image; this one keeps the batch dimension first.

    Args:
        repeats: how many copies of the channels.
    """

    backend = [TransformBackends.TORCH]

    def __init__(self, repeats: int = 3) -> None:
        if int(repeats) < 1:
            raise ValueError(f"repeats must be at least 1, got {repeats}")
        self.repeats = int(repeats)

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        _check_batch(batch, "BatchRepeatChannel")
        return batch.repeat(1, self.repeats, 1, 1)
