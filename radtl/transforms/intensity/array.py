"""Intensity transforms, MONAI style (``(C, H, W)`` channel-first).

- :class:`VoiWindow`: a Window (PS3.3 C.11.2.1.2) on an image already in modality units
  (HU for CT), e.g. after MONAI's ``LoadImage``.
"""

from __future__ import annotations

import numpy as np
import torch
from monai.config import DtypeLike, NdarrayOrTensor
from monai.transforms import Transform
from monai.utils import TransformBackends
from monai.utils.type_conversion import convert_to_dst_type

from radtl.dicom.lut import VoiLutFunction, Window, apply_window

__all__ = ["VoiWindow"]


class VoiWindow(Transform):
    """Apply a Window with its VOI LUT Function to values in modality units, PS3.3 C.11.2.1.2.

    Args:
        center: Window Center.
        width: Window Width.
        function: ``"LINEAR"``, ``"LINEAR_EXACT"`` or ``"SIGMOID"``.
        out_max: the output range is ``[0, out_max]`` (255 for display values, 1 for networks).
        dtype: output dtype.
    """

    backend = [TransformBackends.NUMPY]

    def __init__(
        self, center: float, width: float, function: str = "LINEAR", out_max: float = 1.0, dtype: DtypeLike = np.float32
    ) -> None:
        self.window = Window(center, width, VoiLutFunction(function))
        self.out_max = out_max
        self.dtype = dtype

    def __call__(self, img: NdarrayOrTensor) -> NdarrayOrTensor:
        values = img.detach().cpu().numpy() if isinstance(img, torch.Tensor) else np.asarray(img)
        out = apply_window(values, self.window, 0.0, self.out_max).astype(self.dtype)
        return convert_to_dst_type(out, img, dtype=self.dtype)[0]
