"""Array transforms over radtl's DICOM pipeline, MONAI style (``(C, H, W)`` channel-first).

- :class:`LoadDicomImage`: a DICOM file to its display image, through the same
  :func:`radtl.dicom.frames.display_frames` that ``radtl convert`` uses, so a bundle fed
  DICOM sees exactly the pixels the exporter writes.
- :class:`VoiWindow`: a Window (PS3.3 C.11.2.1.2) on an image already in modality units
  (HU for CT), e.g. after MONAI's ``LoadImage``.
"""

from __future__ import annotations

import numpy as np
import torch
from monai.config import DtypeLike, NdarrayOrTensor
from monai.data import MetaTensor
from monai.transforms import Transform
from monai.utils import TransformBackends
from monai.utils.type_conversion import convert_to_dst_type

from radtl.data.images import read_display_frame
from radtl.dicom.frames import ColorMode, ConversionOptions
from radtl.dicom.lut import VoiLutFunction, Window, apply_window
from radtl.dicom.render import WindowFormula

__all__ = ["LoadDicomImage", "VoiWindow"]


class LoadDicomImage(Transform):
    """Load one frame of a DICOM file as a ``(C, H, W)`` display image in [0, 255].

    C is 1 for grey images, 3 for colour images kept as RGB. The MetaTensor's meta holds
    ``filename_or_obj``, ``frame``, ``voi`` (how the frame was windowed), ``inverted``,
    ``Modality`` and ``spatial_shape``.

    Args:
        frame: which frame of a multi-frame object (0-based).
        formula: ``"dicom"`` (PS3.3 windowing) or ``"paper"`` (RadiologyNET's formula).
        color: ``"gray"`` or ``"rgb"`` for colour images.
        voi_preference: ``"lut"`` or ``"window"`` first when a file has both.
        dtype: output dtype; float32 by default (values stay 0..255).
    """

    backend = [TransformBackends.TORCH]

    def __init__(
        self,
        frame: int = 0,
        formula: str = WindowFormula.DICOM.value,
        color: str = ColorMode.GRAY.value,
        voi_preference: str = "lut",
        dtype: DtypeLike | torch.dtype = torch.float32,
    ) -> None:
        self.frame = frame
        self.options = ConversionOptions(formula=formula, color=color, voi_preference=voi_preference)
        self.dtype = dtype

    def __call__(self, filename: str) -> MetaTensor:
        display, meta = read_display_frame(filename, self.frame, self.options)
        image = display[np.newaxis] if display.ndim == 2 else np.moveaxis(display, -1, 0)
        return MetaTensor(torch.as_tensor(np.ascontiguousarray(image)).to(self.dtype), meta=meta)


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
