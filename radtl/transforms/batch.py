"""Augmentation of a whole ``(N, C, H, W)`` batch on its device: parameters per image, one resampling per batch.

Pretraining reads uint8 batches from a packed memory-mapped dataset and moves them to the GPU;
augmenting there, batched, replaces per-image transforms in DataLoader workers.

- :func:`to_unit_float`: a uint8 batch to float32 in [0, 1].
- :class:`RandBatchAugment`: the RadiologyNET fine-tuning/pretraining augmentation (flip, rotation,
  isotropic scaling, intensity scaling, gamma), the spatial part as one ``grid_sample``.
- :class:`MultiCrop`: DINO's multi-crop views (Caron et al. 2021, "Emerging Properties in
  Self-Supervised Vision Transformers", Sec. 3 and Appendix D: two global crops, several local
  crops); ``local_crops=0`` gives OmniRad's global-crops-only variant. One ``grid_sample`` per crop set.

Both draw their per-image parameters on the CPU from one ``torch.Generator``
(:class:`BatchRandomizable`), so no draw waits on the device, and ``state_dict``/``load_state_dict``
let a resumed run continue the same random stream. Only the few parameter tensors travel to the
batch's device; every image operation runs there in the batch's dtype.

Coordinates: ``x`` is the last axis (width, growing to the right), ``y`` the one before it (height,
growing downwards), both normalised to [-1, 1] as ``F.affine_grid`` uses them with
``align_corners=False``. An ``affine_grid`` matrix (``theta``) maps output coordinates to the
input coordinates sampled there, i.e. it is the inverse of the transform applied to the content.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import ClassVar, Self

import torch
import torch.nn.functional as F
from monai.transforms import Transform
from monai.transforms.traits import RandomizableTrait
from monai.utils import TransformBackends

__all__ = [
    "BatchRandomizable",
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

#: MONAI ``AdjustContrast``'s epsilon: keeps the rescaling to [0, 1] finite on constant images.
GAMMA_EPSILON = 1e-7
#: torchvision ``RandomResizedCrop``: attempts at a crop inside the image before the central fallback.
CROP_ATTEMPTS = 10


def to_unit_float(batch: torch.Tensor) -> torch.Tensor:
    """A uint8 batch as float32 in [0, 1] (``x / 255``); a floating batch cast to float32, values unchanged.

    Args:
        batch: ``(N, C, H, W)`` uint8 display values, or floating values already in [0, 1].

    Returns:
        float32 tensor of the same shape on the same device.

    Raises:
        TypeError: for other dtypes (e.g. uint16), whose full scale cannot be known here.
    """
    if batch.dtype == torch.uint8:
        return batch.to(torch.float32).div_(255.0)
    if batch.is_floating_point():
        return batch.to(torch.float32)
    raise TypeError(f"to_unit_float takes uint8 or floating batches, got {batch.dtype}")


def affine_matrices(
    angle: torch.Tensor,
    scale: torch.Tensor,
    flip: torch.Tensor,
    center: torch.Tensor | None = None,
    spatial_size: Sequence[int] | None = None,
) -> torch.Tensor:
    """``F.affine_grid`` matrices of a flip, a rotation and a scaling of the image content, per image.

    The content is flipped along ``x`` (where ``flip``), rotated by ``angle`` about the centre, then
    magnified by ``scale``; the output centre shows the input point ``center``. A positive angle
    turns ``+x`` (right) towards ``+y`` (down): clockwise on a display with row 0 at the top. This
    is MONAI's ``Rotate`` with its defaults (``Rotate(pi / 2)`` equals ``torch.rot90(k=-1, dims=(-2, -1))``).

    The rotation acts in pixel space: with ``spatial_size`` the normalised coordinates are corrected
    for a non-square image, so a rotated circle stays a circle.

    Args:
        angle: ``(N,)`` rotation angles in radians.
        scale: ``(N,)`` isotropic magnifications, or ``(N, 2)`` per axis ``(x, y)``; above 1 enlarges the content.
        flip: ``(N,)`` bool, flip along ``x`` (the last axis) first.
        center: ``(N, 2)`` input point ``(x, y)``, normalised, sampled at the output centre; ``None``: the centre.
        spatial_size: ``(H, W)`` of the image the rotation acts in; ``None``: a square image.

    Returns:
        ``(N, 2, 3)`` matrices in ``angle``'s dtype and device, mapping output to input coordinates.
    """
    n = angle.shape[0]
    scale = scale.to(angle)
    scale_x, scale_y = (scale, scale) if scale.ndim == 1 else scale.unbind(-1)
    aspect = 1.0 if spatial_size is None else spatial_size[0] / spatial_size[1]  # H / W
    cos, sin = angle.cos(), angle.sin()
    sign = 1.0 - 2.0 * flip.to(angle)
    # inverse of x_out = S R(angle) F x_in in pixels, written in normalised coordinates (x_px ~ W x, y_px ~ H y):
    # x_in = F D^-1 R(-angle) D S^-1 x_out with D = diag(W, H)
    theta = torch.zeros(n, 2, 3, dtype=angle.dtype, device=angle.device)
    theta[:, 0, 0] = sign * cos / scale_x
    theta[:, 0, 1] = sign * sin * aspect / scale_y
    theta[:, 1, 0] = -sin / aspect / scale_x
    theta[:, 1, 1] = cos / scale_y
    if center is not None:
        theta[:, :, 2] = center.to(angle)
    return theta


def affine_resample(
    batch: torch.Tensor, theta: torch.Tensor, size: Sequence[int] | None = None, padding_mode: str = "zeros"
) -> torch.Tensor:
    """Resample each image through its affine matrix: one ``F.affine_grid`` and one ``F.grid_sample``.

    Bilinear, ``align_corners=False``: an identity matrix with an output size smaller than the
    input is ``F.interpolate(mode="bilinear", align_corners=False, antialias=False)``, and with
    ``padding_mode="border"`` so is any output size.

    Args:
        batch: ``(N, C, H, W)`` floating images.
        theta: ``(N, 2, 3)`` matrices mapping output to input coordinates (:func:`affine_matrices`),
            on any device; cast to the batch's device and dtype.
        size: output ``(H_out, W_out)``; ``None``: the input's.
        padding_mode: ``"zeros"``, ``"border"`` or ``"reflection"``, for samples outside the image.

    Returns:
        ``(N, C, H_out, W_out)`` tensor in the batch's dtype and device.
    """
    n, channels, height, width = batch.shape
    size = (height, width) if size is None else tuple(size)
    theta = theta.to(device=batch.device, dtype=batch.dtype)
    grid = F.affine_grid(theta, [n, channels, *size], align_corners=False)
    return F.grid_sample(batch, grid, mode="bilinear", padding_mode=padding_mode, align_corners=False)


def resized_crop_boxes(
    n: int,
    height: int,
    width: int,
    scale: Sequence[float],
    ratio: Sequence[float],
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Random crop boxes with torchvision ``RandomResizedCrop.get_params`` semantics, for ``n`` images.

    Each try draws an area fraction uniformly in ``scale`` and an aspect ratio ``w / h``
    log-uniformly in ``ratio``, rounds the sides, and keeps the first box that fits in the image,
    at a uniform position. After 10 failed tries the box is the central crop, the whole image when
    its aspect ratio lies in ``ratio`` (else clamped to the nearest ratio). The draws are made on the
    CPU, ``4 * 10 * n`` uniform numbers per call whatever the outcome, so the stream stays in step.

    Args:
        n: number of boxes (images).
        height: image height ``H``.
        width: image width ``W``.
        scale: ``(lo, hi)`` range of the crop area as a fraction of ``H * W``.
        ratio: ``(lo, hi)`` range of the crop aspect ratio ``w / h``.
        generator: CPU generator to draw from; ``None``: torch's default.

    Returns:
        ``(n, 4)`` int64 boxes ``(top, left, h, w)`` in pixels, on the CPU.
    """
    shape = (n, CROP_ATTEMPTS)
    area = float(height * width)
    target = area * (scale[0] + (scale[1] - scale[0]) * torch.rand(shape, generator=generator, dtype=torch.float64))
    log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
    aspect = torch.exp(log_lo + (log_hi - log_lo) * torch.rand(shape, generator=generator, dtype=torch.float64))
    w = torch.sqrt(target * aspect).round()  # half to even, as Python's round in torchvision
    h = torch.sqrt(target / aspect).round()
    top = torch.floor(torch.rand(shape, generator=generator, dtype=torch.float64) * (height - h + 1))
    left = torch.floor(torch.rand(shape, generator=generator, dtype=torch.float64) * (width - w + 1))
    fits = (w > 0) & (w <= width) & (h > 0) & (h <= height)
    first = fits.to(torch.uint8).argmax(dim=1, keepdim=True)  # first try that fits
    boxes = torch.cat([t.gather(1, first) for t in (top, left, h, w)], dim=1).long()

    in_ratio = width / height
    if in_ratio < min(ratio):
        crop_w, crop_h = width, round(width / min(ratio))
    elif in_ratio > max(ratio):
        crop_w, crop_h = round(height * max(ratio)), height
    else:
        crop_w, crop_h = width, height
    central = torch.tensor([(height - crop_h) // 2, (width - crop_w) // 2, crop_h, crop_w])
    return torch.where(fits.any(dim=1, keepdim=True), boxes, central)


def crop_matrices(boxes: torch.Tensor, height: int, width: int, flip: torch.Tensor) -> torch.Tensor:
    """``F.affine_grid`` matrices that map each output image onto its crop box, flipped along ``x`` where ``flip``.

    Args:
        boxes: ``(N, 4)`` boxes ``(top, left, h, w)`` in pixels (:func:`resized_crop_boxes`).
        height: image height ``H`` the boxes lie in.
        width: image width ``W`` the boxes lie in.
        flip: ``(N,)`` bool, flip the crop horizontally.

    Returns:
        ``(N, 2, 3)`` float64 matrices on the boxes' device, for :func:`affine_resample`.
    """
    top, left, h, w = boxes.to(torch.float64).unbind(-1)
    center = torch.stack([(left + w / 2) / width * 2 - 1, (top + h / 2) / height * 2 - 1], dim=-1)
    magnification = torch.stack([width / w, height / h], dim=-1)
    return affine_matrices(torch.zeros_like(top), magnification, flip, center=center)


def adjust_gamma(batch: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
    """MONAI ``AdjustContrast`` per image: rescale to [0, 1] by the image's min and max, raise to ``gamma``, rescale back.

    ``x' = ((x - min) / (max - min + eps)) ** gamma * (max - min) + min`` with MONAI's ``eps = 1e-7``:
    the minimum is kept exactly, the maximum up to ``eps``, and constant images stay constant.

    Args:
        batch: ``(N, C, H, W)`` floating images.
        gamma: ``(N,)`` exponents, on the batch's device.
    """
    low = batch.amin(dim=(1, 2, 3), keepdim=True)
    span = batch.amax(dim=(1, 2, 3), keepdim=True) - low
    return ((batch - low) / (span + GAMMA_EPSILON)) ** gamma.view(-1, 1, 1, 1) * span + low


def adjust_brightness(batch: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """torchvision ``adjust_brightness`` per image on [0, 1] values: ``clamp(x * factor, 0, 1)``.

    Args:
        batch: ``(N, C, H, W)`` images in [0, 1].
        factor: ``(N,)`` non-negative factors, on the batch's device.
    """
    return (batch * factor.view(-1, 1, 1, 1)).clamp(0.0, 1.0)


def adjust_contrast(batch: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """torchvision ``adjust_contrast`` per grey image on [0, 1] values: ``clamp(mean + factor * (x - mean), 0, 1)``.

    ``mean`` is the image's mean over all its pixels and channels, torchvision's grayscale mean for
    grey images (channels equal). Not MONAI's ``AdjustContrast``, which is :func:`adjust_gamma`.

    Args:
        batch: ``(N, C, H, W)`` grey images in [0, 1].
        factor: ``(N,)`` non-negative factors, on the batch's device.
    """
    mean = batch.mean(dim=(1, 2, 3), keepdim=True)
    factor = factor.view(-1, 1, 1, 1)
    return (factor * batch + (1.0 - factor) * mean).clamp(0.0, 1.0)


def color_jitter(
    batch: torch.Tensor, brightness: torch.Tensor, contrast: torch.Tensor, brightness_first: torch.Tensor
) -> torch.Tensor:
    """torchvision ``ColorJitter`` for grey images per image: brightness and contrast, in a random order.

    torchvision draws the order of its adjustments per call (hue and saturation do nothing to grey
    images); here it is drawn per image as ``brightness_first``.

    Args:
        batch: ``(N, C, H, W)`` grey images in [0, 1].
        brightness: ``(N,)`` brightness factors (:func:`adjust_brightness`), on the batch's device.
        contrast: ``(N,)`` contrast factors (:func:`adjust_contrast`), on the batch's device.
        brightness_first: ``(N,)`` bool, brightness before contrast, on the batch's device.
    """
    forward = adjust_contrast(adjust_brightness(batch, brightness), contrast)
    backward = adjust_brightness(adjust_contrast(batch, contrast), brightness)
    return torch.where(brightness_first.view(-1, 1, 1, 1), forward, backward)


def solarize(batch: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """Invert the values at or above ``threshold`` (PIL ``ImageOps.solarize`` on [0, 1] values): ``1 - x`` there.

    Args:
        batch: images in [0, 1], any shape.
        threshold: values ``>= threshold`` are inverted.
    """
    return torch.where(batch < threshold, batch, 1.0 - batch)


def gaussian_blur(batch: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Gaussian blur with a standard deviation per image: two grouped 1-D convolutions over the whole batch.

    The kernel radius is ``ceil(3 * max(sigma))``, capped at ``min(H, W) - 1`` so the reflect
    padding (torchvision's) fits; smaller sigmas use the same size with more of it near zero.
    Images with ``sigma <= 0`` are returned exactly as they were.

    Args:
        batch: ``(N, C, H, W)`` floating images.
        sigma: ``(N,)`` standard deviations in pixels, on any device (a CPU tensor avoids a device sync).

    Returns:
        ``(N, C, H, W)`` tensor in the batch's dtype and device.
    """
    n, channels, height, width = batch.shape
    if sigma.shape != (n,):
        raise ValueError(f"gaussian_blur needs one sigma per image, shape ({n},), got {tuple(sigma.shape)}")
    radius = min(math.ceil(3.0 * float(sigma.max())), min(height, width) - 1) if n else 0
    if radius <= 0:
        return batch
    sigma = sigma.to(device=batch.device, dtype=torch.float32)
    offsets = torch.arange(-radius, radius + 1, device=batch.device, dtype=torch.float32)
    # a vanishing sigma gives exp(-inf) = 0 off centre: a delta kernel, no division by zero
    kernel = torch.exp(-(offsets**2) / (2.0 * sigma.clamp_min(1e-6).view(-1, 1) ** 2))
    kernel = (kernel / kernel.sum(dim=1, keepdim=True)).to(batch.dtype).repeat_interleave(channels, dim=0)
    size = 2 * radius + 1
    planes = batch.reshape(1, n * channels, height, width)
    planes = F.conv2d(
        F.pad(planes, (0, 0, radius, radius), mode="reflect"), kernel.view(-1, 1, size, 1), groups=n * channels
    )
    planes = F.conv2d(
        F.pad(planes, (radius, radius, 0, 0), mode="reflect"), kernel.view(-1, 1, 1, size), groups=n * channels
    )
    blurred = planes.view(n, channels, height, width)
    return torch.where((sigma > 0).view(-1, 1, 1, 1), blurred, batch)


def _apply_to(
    batch: torch.Tensor, mask: torch.Tensor, fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
) -> torch.Tensor:
    """``fn`` on the images where the CPU ``mask`` holds, the others passed through exactly.

    ``fn(images, index)`` gets the selected images and their CPU indices into the batch (to pick its
    per-image parameters). The mask is on the CPU, so choosing the images never waits on the device.
    """
    if not bool(mask.any()):
        return batch
    if bool(mask.all()):
        return fn(batch, torch.arange(mask.shape[0]))
    index = mask.nonzero().squeeze(1)
    on_device = index.to(batch.device)
    return batch.index_copy(0, on_device, fn(batch.index_select(0, on_device), index))


def _check_batch(batch: torch.Tensor, name: str) -> None:
    if not isinstance(batch, torch.Tensor) or batch.ndim != 4:
        shape = tuple(batch.shape) if isinstance(batch, torch.Tensor) else type(batch).__name__
        raise ValueError(f"{name} takes a (N, C, H, W) tensor, got {shape}")
    if not batch.is_floating_point():
        raise TypeError(f"{name} takes floating images, got {batch.dtype}; convert uint8 batches with to_unit_float")


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
