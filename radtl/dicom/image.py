"""Display-image operations after the grayscale pipeline: colour, frame policies.

The square resize is :func:`radtl.transforms.spatial.functional.resize_longest_pad_uint8`.

All functions take and return ``uint8`` arrays, ``(H, W)`` grey or ``(H, W, 3)`` RGB.
"""

from __future__ import annotations

import warnings

import numpy as np
from PIL import Image

from radtl.transforms.spatial.functional import resize_longest_pad_uint8

__all__ = ["color_to_uint8", "rgb_to_gray", "resize_with_pad", "uninformative_reason"]

#: ITU-R BT.601 luma weights, the usual RGB-to-grey conversion for medical colour images.
BT601_LUMA = (0.299, 0.587, 0.114)


def color_to_uint8(rgb: np.ndarray, bits_stored: int) -> np.ndarray:
    """Scale ``(H, W, 3)`` colour samples of ``bits_stored`` bits to 8 bits (palette LUTs are often 16-bit)."""
    rgb = np.asarray(rgb)
    if rgb.dtype == np.uint8:
        return rgb[..., :3]
    if rgb.dtype.kind == "f":
        return np.clip(np.rint(rgb[..., :3] * 255.0 / max(float(rgb.max()), 1.0)), 0, 255).astype(np.uint8)
    bits = max(int(bits_stored), int(rgb.max()).bit_length(), 8)
    return (rgb[..., :3].astype(np.uint32) >> (bits - 8)).astype(np.uint8)


def rgb_to_gray(rgb: np.ndarray) -> np.ndarray:
    """``(H, W, 3)`` uint8 RGB to ``(H, W)`` uint8 luma, Y = 0.299 R + 0.587 G + 0.114 B (ITU-R BT.601)."""
    luma = rgb[..., 0] * BT601_LUMA[0] + rgb[..., 1] * BT601_LUMA[1] + rgb[..., 2] * BT601_LUMA[2]
    return np.clip(np.rint(luma), 0, 255).astype(np.uint8)


def resize_with_pad(image: np.ndarray, size: int) -> np.ndarray:
    """Deprecated: :func:`radtl.transforms.spatial.functional.resize_longest_pad_uint8`, the one square resize.

    Fit a uint8 ``image`` into ``size x size`` keeping its aspect ratio, centred, padded with zeros
    (the RadiologyNET resize, thesis 2.3.2); ``size=0`` returns the image unchanged.
    """
    warnings.warn(
        "radtl.dicom.image.resize_with_pad is deprecated and will be removed in the next release: use "
        "radtl.transforms.spatial.functional.resize_longest_pad_uint8",
        DeprecationWarning,
        stacklevel=2,
    )
    return resize_longest_pad_uint8(image, size)


def uninformative_reason(image: np.ndarray, min_value_fraction: float = 0.1, min_aspect: float = 0.1) -> str | None:
    """RadiologyNET's frame policies (thesis 2.3.2); the reason a frame is dropped, or None to keep it.

    - value policy: distinct grey levels / 256 possible levels must exceed ``min_value_fraction``;
    - shape policy: shorter side / longer side must exceed ``min_aspect`` (drops scout lines,
      strips and other slivers).

    Apply to the 8-bit frame at native size, before padding adds zeros.
    """
    height, width = image.shape[:2]
    aspect = min(height, width) / max(height, width)
    if aspect <= min_aspect:
        return f"uninformative-frame: shape {width}x{height} (side ratio {aspect:.3f} <= {min_aspect})"
    grey = image if image.ndim == 2 else rgb_to_gray(image)
    levels = sum(1 for count in Image.fromarray(np.ascontiguousarray(grey)).histogram() if count)
    if levels / 256 <= min_value_fraction:
        return f"uninformative-frame: {levels} distinct grey levels (<= {min_value_fraction:.0%} of 256)"
    return None
