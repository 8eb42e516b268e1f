"""Display-image operations after the grayscale pipeline: colour, the square resize, frame policies.

Colour and the frame policies take and return ``uint8`` arrays, ``(H, W)`` grey or ``(H, W, 3)`` RGB.

The square resize, once: the longer side to ``size``, aspect kept, centred, zero padding.

RadiologyNET (thesis 2.3.2) fits every image into ``size x size`` (256 for clustering, 224 for
pretraining) with PIL's bilinear filter, which widens with the scale factor when downsampling
(antialiased). :func:`resize_longest_pad` does that on float images in [0, 1], channel by channel in
PIL's 32-bit float mode ``"F"``; :func:`resize_longest_pad_uint8` is the adapter for the 8-bit paths
(``radtl convert``'s PNGs, the pseudo-labelling encoders and report, the pack). Every square resize in
radtl goes through this one float computation, so the same file gives the same pixels everywhere:
``radtl convert``'s PNG, the pack's stored image, the encoders' input and a bundle's input after
:class:`~radtl.transforms.ResizeLongestPadd` (times 255, rounded).

Against the study's own resize (PIL ``"L"`` bilinear on the 8-bit image, 8-bit fixed-point
arithmetic), the float computation differs by at most one grey level on a small fraction of pixels
(``tests/dicom/test_resize.py`` measures it on real files).


Every loader, writer and transform of radtl resizes with these functions; they need NumPy and PIL only,
so ``radtl convert`` and the pack writer stay free of torch and MONAI.
"""

from __future__ import annotations

import warnings

import numpy as np
from PIL import Image

__all__ = [
    "color_to_uint8",
    "resize_longest_pad",
    "resize_longest_pad_uint8",
    "resize_with_pad",
    "resized_shape",
    "rgb_to_gray",
    "to_uint8",
    "uninformative_reason",
]

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



def resized_shape(height: int, width: int, size: int) -> tuple[int, int]:
    """The ``(height, width)`` an image of that shape is resized to before padding: the longer side ``size``.

    ``size <= 0`` keeps the shape.
    """
    if size <= 0:
        return height, width
    scale = size / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def resize_longest_pad(image: np.ndarray, size: int) -> np.ndarray:
    """Fit a float image into ``size x size``: longer side ``size``, aspect kept, centred, zero padding.

    Each channel is resized by PIL's antialiased bilinear filter in mode ``"F"`` (float32).

    Args:
        image: ``(H, W)`` or ``(H, W, C)`` float image, values in [0, 1] (any real values work).
        size: the side of the square; 0 (or less) returns ``image`` unchanged.

    Returns:
        ``(size, size)`` or ``(size, size, C)`` float32.
    """
    if size <= 0:
        return image
    image = np.asarray(image, dtype=np.float32)
    if image.ndim not in (2, 3):
        raise ValueError(f"resize_longest_pad takes an (H, W) or (H, W, C) image, got shape {image.shape}")
    height, width = image.shape[:2]
    new_h, new_w = resized_shape(height, width, size)
    if (new_h, new_w) != (height, width):
        planes = image[..., np.newaxis] if image.ndim == 2 else image
        resized = [
            np.asarray(Image.fromarray(np.ascontiguousarray(planes[..., c])).resize((new_w, new_h), Image.Resampling.BILINEAR))
            for c in range(planes.shape[-1])
        ]
        image = resized[0] if image.ndim == 2 else np.stack(resized, axis=-1)
    if (new_h, new_w) == (size, size):
        return image
    canvas = np.zeros((size, size) + image.shape[2:], dtype=np.float32)
    top, left = (size - new_h) // 2, (size - new_w) // 2
    canvas[top : top + new_h, left : left + new_w] = image
    return canvas


def resize_longest_pad_uint8(image: np.ndarray, size: int) -> np.ndarray:
    """:func:`resize_longest_pad` for 8-bit images: ``uint8 / 255``, resized, ``* 255`` rounded back to uint8.

    Args:
        image: ``(H, W)`` or ``(H, W, C)`` uint8.
        size: the side of the square; 0 (or less) returns ``image`` unchanged.

    Returns:
        ``(size, size)`` or ``(size, size, C)`` uint8.
    """
    if size <= 0:
        return image
    square = resize_longest_pad(np.asarray(image, dtype=np.float32) / 255.0, size)
    return to_uint8(square)


def to_uint8(image: np.ndarray) -> np.ndarray:
    """A float image in [0, 1] to uint8: ``rint(clip(image * 255, 0, 255))`` (round half to even)."""
    return np.rint(np.clip(np.asarray(image, dtype=np.float32) * 255.0, 0.0, 255.0)).astype(np.uint8)


def resize_with_pad(image: np.ndarray, size: int) -> np.ndarray:
    """Deprecated: :func:`resize_longest_pad_uint8`, the one square resize.

    Fit a uint8 ``image`` into ``size x size`` keeping its aspect ratio, centred, padded with zeros
    (the RadiologyNET resize, thesis 2.3.2); ``size=0`` returns the image unchanged.
    """
    warnings.warn(
        "radtl.dicom.image.resize_with_pad is deprecated and will be removed in the next release: use "
        "resize_longest_pad_uint8",
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
