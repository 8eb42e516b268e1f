"""The pure tensor functions under :mod:`radtl.transforms.batch.array`: batched ``(N, C, H, W)`` maths on the
batch's device, each with its per-image parameters given as tensors.

- :func:`to_unit_float`: a uint8 batch to float32 in [0, 1].
- :func:`affine_matrices`, :func:`affine_resample`: flips, rotations and scalings as one ``grid_sample``.
- :func:`resized_crop_boxes`, :func:`crop_matrices`: torchvision-style random resized crops as ``affine_grid``
  matrices.
- :func:`adjust_gamma`, :func:`adjust_brightness`, :func:`adjust_contrast`, :func:`color_jitter`, :func:`solarize`,
  :func:`gaussian_blur`: intensity operations with a parameter per image.

Coordinates: ``x`` is the last axis (width, growing to the right), ``y`` the one before it (height,
growing downwards), both normalised to [-1, 1] as ``F.affine_grid`` uses them with
``align_corners=False``. An ``affine_grid`` matrix (``theta``) maps output coordinates to the
input coordinates sampled there, i.e. it is the inverse of the transform applied to the content.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

__all__ = [
    "CROP_ATTEMPTS",
    "GAMMA_EPSILON",
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
