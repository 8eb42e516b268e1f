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

__all__ = [
    "StandardizeLabel",
    "VoiWindow",
]


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


class StandardizeLabel(Transform):
    """A regression target standardised, ``(y - mean) / std``, as a ``(1,)`` float32 tensor (what a one-output
    regressor's MSE compares); with ``inverse``, a standardised value (a prediction) back to the label's unit,
    ``y * std + mean``, and ``None`` (no label at inference) kept as ``None``.

    Args:
        mean: the labels' mean (bone age: the training set's mean age in months).
        std: the labels' standard deviation, in the same unit.
        inverse: undo the standardisation instead.
    """

    backend = [TransformBackends.TORCH]

    def __init__(self, mean: float, std: float, inverse: bool = False) -> None:
        if std <= 0:
            raise ValueError(f"std must be positive, got {std}")
        self.mean = float(mean)
        self.std = float(std)
        self.inverse = inverse

    def __call__(self, label):
        if self.inverse:
            return None if label is None else label * self.std + self.mean
        return torch.as_tensor([(label - self.mean) / self.std], dtype=torch.float32)

    def inverted(self) -> StandardizeLabel:
        """The transform that undoes this one."""
        return StandardizeLabel(self.mean, self.std, inverse=not self.inverse)
