"""Load any image the fine-tuning datasets hold, MONAI style: :class:`LoadRadiograph`; from a pack, :class:`LoadPacked`."""

from __future__ import annotations

import os

import numpy as np
import torch
from monai.data import MetaTensor
from monai.transforms import Transform
from monai.utils import TransformBackends

from radtl.data.images import read_radiograph
from radtl.data.pack import PackedImages

__all__ = ["LoadPacked", "LoadRadiograph"]


class LoadRadiograph(Transform):
    """Load a PNG, JPEG or DICOM file as a ``(1, H, W)`` float32 image in [0, 1].

    :func:`radtl.data.images.read_radiograph` reads it:

    - PNG and JPEG (the public datasets' files): 8-bit values / 255, 16-bit values / 65535
      (GRAZPEDWRI-DX's PNGs), colour converted to luma (ITU-R 601, PIL's ``"L"``).
    - DICOM: rendered by radtl's PS3.3 pipeline (Modality LUT, VOI, Presentation LUT) to the
      8-bit display image ``radtl convert`` writes, then / 255; so a model fine-tuned on the
      study's 8-bit PNG exports sees the same values when a hospital feeds it DICOM.

    The MetaTensor's meta holds ``filename_or_obj`` and ``spatial_shape`` (and for DICOM how it
    was windowed).
    """

    backend = [TransformBackends.TORCH]

    def __call__(self, filename: str | os.PathLike) -> MetaTensor:
        image, meta = read_radiograph(filename)
        return MetaTensor(torch.from_numpy(np.ascontiguousarray(image[np.newaxis])), meta=meta)


class LoadPacked(Transform):
    """Load a file's image from a pack (``radtl pack``) as a ``(1, S, S)`` float32 image in [0, 1].

    The packed image is :class:`LoadRadiograph`'s image after the bundles' ``Resize``
    (longest side S, anti-aliased) and ``SpatialPad`` (S x S), rounded to 8 bits; so a
    bundle can swap its loader for this one and keep its Resize and SpatialPad (then no-ops).
    The pack is opened on the first call, so the transform pickles cheaply into DataLoader
    workers. The MetaTensor's meta holds ``filename_or_obj`` (the path asked for),
    ``spatial_shape`` (S, S) and ``pack_position``.

    Args:
        pack: the pack folder, or an opened :class:`~radtl.data.PackedImages`.

    Raises:
        radtl.data.NotInPackError: (on call) the file is not in the pack.
    """

    backend = LoadRadiograph.backend

    def __init__(self, pack: str | os.PathLike | PackedImages) -> None:
        self.pack = pack
        self._opened = pack if isinstance(pack, PackedImages) else None

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        if not isinstance(self.pack, PackedImages):
            state["_opened"] = None  # each worker opens the pack itself
        return state

    def __call__(self, filename: str | os.PathLike) -> MetaTensor:
        if self._opened is None:
            self._opened = PackedImages(self.pack)
        position = self._opened.locate(filename)
        image = torch.from_numpy(self._opened[position]).to(torch.float32).div_(255.0)[np.newaxis]
        meta = {"filename_or_obj": str(filename), "spatial_shape": np.asarray(image.shape[1:]),
                "pack_position": position}
        return MetaTensor(image, meta=meta)
