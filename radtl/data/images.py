"""Image files to arrays: the one reader of a radiograph file that the transforms and the pack share.

- :func:`read_display_frame`: one frame of a DICOM file through radtl's PS3.3 pipeline
  (:func:`radtl.dicom.convert.display_frames`, the pixels ``radtl convert`` writes).
- :func:`read_radiograph`: a PNG, JPEG or DICOM file as a ``(H, W)`` float32 image in [0, 1].

Both return the array and the meta MONAI's loaders record (``filename_or_obj``, ``spatial_shape``);
:class:`radtl.transforms.LoadDicomImage` and :class:`radtl.transforms.LoadRadiograph` wrap them in a
``MetaTensor``, and :func:`radtl.data.write_pack` packs their images. This module imports nothing from
:mod:`radtl.transforms`, so the dependency goes one way.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from radtl.data.adapters import is_image_file
from radtl.dicom.frames import ColorMode, ConversionOptions, display_frames
from radtl.dicom.io import read_dataset

__all__ = ["PIL_SUFFIXES", "read_display_frame", "read_radiograph"]

#: The suffixes :func:`read_radiograph` reads with PIL; other image files are read as DICOM.
PIL_SUFFIXES = (".png", ".jpg", ".jpeg")
_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I")


def read_display_frame(
    path: str | os.PathLike, frame: int = 0, options: ConversionOptions | None = None
) -> tuple[np.ndarray, dict]:
    """One frame of the DICOM file at ``path`` as its display image, and its meta.

    Args:
        path: the DICOM file.
        frame: which frame of a multi-frame object (0-based).
        options: how to render it (window formula, colour, VOI preference); default grey, PS3.3 windowing.

    Returns:
        The ``(H, W)`` uint8 grey image, or ``(H, W, 3)`` uint8 when colour is kept; and its meta:
        ``filename_or_obj``, ``frame``, ``voi`` (how the frame was windowed), ``inverted``,
        ``Modality`` and ``spatial_shape`` (H, W).

    Raises:
        IndexError: the object has no frame ``frame``.
        radtl.dicom.errors.DicomConversionError: the file cannot be read or rendered.
    """
    ds = read_dataset(path)
    for display in display_frames(ds, options if options is not None else ConversionOptions()):
        if display.index == frame:
            break
    else:
        raise IndexError(f"{path} has no frame {frame}")
    meta = {
        "filename_or_obj": str(path),
        "frame": display.index,
        "voi": display.voi,
        "inverted": display.inverted,
        "Modality": str(ds.get("Modality", "")),
        "spatial_shape": np.asarray(display.image.shape[:2]),
    }
    return display.image, meta


def read_radiograph(path: str | os.PathLike) -> tuple[np.ndarray, dict]:
    """A PNG, JPEG or DICOM file as a ``(H, W)`` float32 image in [0, 1], and its meta.

    - PNG and JPEG (the public datasets' files): 8-bit values / 255, 16-bit values / 65535
      (GRAZPEDWRI-DX's PNGs), colour converted to luma (ITU-R 601, PIL's ``"L"``).
    - DICOM: frame 0 rendered by radtl's PS3.3 pipeline (Modality LUT, VOI, Presentation LUT) to
      the 8-bit grey display image ``radtl convert`` writes, then / 255; so a model fine-tuned on
      the study's 8-bit PNG exports sees the same values when a hospital feeds it DICOM.

    The meta holds ``filename_or_obj`` and ``spatial_shape`` (and for DICOM how it was windowed,
    as :func:`read_display_frame`).

    Raises:
        ValueError: the file is not a PNG, JPEG or DICOM file.
        OSError: PIL cannot read it.
        radtl.dicom.errors.DicomConversionError: a DICOM file that cannot be rendered.
    """
    path = Path(path)
    if path.suffix.lower() in PIL_SUFFIXES:
        with Image.open(path) as image:
            if image.mode in _SIXTEEN_BIT_MODES:
                array = np.asarray(image, dtype=np.float32) / 65535.0
            else:
                array = np.asarray(image.convert("L"), dtype=np.float32) / 255.0
        return array, {"filename_or_obj": str(path), "spatial_shape": np.asarray(array.shape)}
    if not is_image_file(path):
        raise ValueError(f"{path}: not a PNG, JPEG or DICOM file")
    grey, meta = read_display_frame(path, options=ConversionOptions(color=ColorMode.GRAY.value))
    return grey.astype(np.float32) / 255.0, meta
