"""Load any image the fine-tuning datasets hold, MONAI style: :class:`LoadRadiograph`."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from monai.data import MetaTensor
from monai.transforms import Transform
from monai.utils import TransformBackends
from PIL import Image

from radtl.data.adapters import is_image_file
from radtl.transforms.dicom.array import LoadDicomImage

__all__ = ["LoadRadiograph"]

_PIL_SUFFIXES = (".png", ".jpg", ".jpeg")


class LoadRadiograph(Transform):
    """Load a PNG, JPEG or DICOM file as a ``(1, H, W)`` float32 image in [0, 1].

    - PNG and JPEG (the public datasets' files): 8-bit values / 255, 16-bit values / 65535
      (GRAZPEDWRI-DX's PNGs), colour converted to luma (ITU-R 601, PIL's ``"L"``).
    - DICOM: rendered by radtl's PS3.3 pipeline (Modality LUT, VOI, Presentation LUT) to the
      8-bit display image ``radtl convert`` writes, then / 255; so a model fine-tuned on the
      study's 8-bit PNG exports sees the same values when a hospital feeds it DICOM.

    The MetaTensor's meta holds ``filename_or_obj`` and ``spatial_shape`` (and for DICOM how it
    was windowed).
    """

    backend = [TransformBackends.TORCH]

    def __init__(self) -> None:
        self.dicom = LoadDicomImage(color="gray")

    def __call__(self, filename: str | os.PathLike) -> MetaTensor:
        path = Path(filename)
        if path.suffix.lower() in _PIL_SUFFIXES:
            with Image.open(path) as image:
                if image.mode in ("I;16", "I;16B", "I;16L", "I"):
                    array = np.asarray(image, dtype=np.float32) / 65535.0
                else:
                    array = np.asarray(image.convert("L"), dtype=np.float32) / 255.0
            meta = {"filename_or_obj": str(path), "spatial_shape": np.asarray(array.shape)}
            return MetaTensor(torch.from_numpy(np.ascontiguousarray(array[np.newaxis])), meta=meta)
        if not is_image_file(path):
            raise ValueError(f"{path}: not a PNG, JPEG or DICOM file")
        image = self.dicom(path)
        return image / 255.0
