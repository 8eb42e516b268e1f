"""CT volumes for segmentation: :class:`LoadCTVolume` (a DICOM series or an ITK image in HU) and
:class:`NoduleSpheres` (a nodule mask drawn from world-coordinate annotations, as LUNA16 publishes them).

Volumes follow MONAI's convention for ITK images: a ``(1, X, Y, Z)`` MetaTensor whose first spatial
axis runs along a row (increasing column index), the second down a column, the third along the slice
normal, with a RAS ``affine`` from voxel index to patient coordinates in mm. DICOM and ITK use LPS
(PS3.3 C.7.6.2.1.1); the affine's first two rows are negated to convert.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from monai.data import MetaTensor
from monai.transforms import LoadImage, Transform
from monai.utils import TransformBackends

from radtl.dicom.series import read_series

__all__ = ["LPS_TO_RAS", "LoadCTVolume", "NoduleSpheres", "nodule_mask"]

#: Patient LPS (DICOM, ITK, LUNA16's annotations) to RAS (MONAI's affines), and back: its own inverse.
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


class LoadCTVolume(Transform):
    """Load a CT volume in HU as a ``(1, X, Y, Z)`` float32 MetaTensor with a RAS affine.

    - A folder is read as one DICOM series by :func:`radtl.dicom.series.read_series`: checked
      (one series, CT, one orientation, no missing slices), sorted along the slice normal and
      rescaled to HU. ``meta["source_series"]`` keeps the folder for writing DICOM-SEG.
    - A file (LUNA16's ``.mhd`` + ``.raw``, NIfTI, NRRD) is read by MONAI's ``ITKReader``.

    Args:
        modality: the Modality a DICOM series must have (None: any).
    """

    backend = [TransformBackends.TORCH]

    def __init__(self, modality: str | None = "CT") -> None:
        self.modality = modality
        self.itk = LoadImage(reader="ITKReader", image_only=True, ensure_channel_first=True, dtype=np.float32)

    def __call__(self, path: str | os.PathLike) -> MetaTensor:
        path = Path(path)
        if not path.is_dir():
            if not path.is_file():
                raise FileNotFoundError(f"{path}: no such CT series folder or image file")
            return self.itk(path)
        series = read_series(path, self.modality)
        volume = np.ascontiguousarray(series.hu.transpose(2, 1, 0))[np.newaxis]  # (slice, row, col) -> (1, X, Y, Z)
        affine = torch.as_tensor(LPS_TO_RAS @ series.affine, dtype=torch.float64)
        meta = {
            "filename_or_obj": str(path),
            "source_series": str(path),
            "series_instance_uid": series.series_instance_uid,
            "original_affine": affine.clone(),
            "spatial_shape": np.asarray(volume.shape[1:]),
            "space": "RAS",
        }
        return MetaTensor(torch.from_numpy(volume), affine=affine, meta=meta)


def nodule_mask(
    shape: Sequence[int], affine: np.ndarray, nodules: Sequence[Sequence[float]], lps: bool = True
) -> np.ndarray:
    """A ``shape`` uint8 mask of the spheres ``(x, y, z, diameter)`` given in patient coordinates (mm).

    A voxel belongs to a nodule when its centre lies within half the diameter of the nodule's centre,
    distances measured in mm (anisotropic voxels included), as the common LUNA16 pipelines build masks.

    Args:
        shape: the volume's spatial shape ``(X, Y, Z)``.
        affine: the volume's voxel-to-patient affine (RAS, MONAI's).
        nodules: centres and diameters in mm, e.g. rows of LUNA16's ``annotations.csv``.
        lps: the centres are in LPS (LUNA16, DICOM, ITK), not RAS.
    """
    mask = np.zeros(tuple(int(s) for s in shape), dtype=np.uint8)
    affine = np.asarray(affine, dtype=np.float64)
    to_voxel = np.linalg.inv(affine)
    voxel_size = np.linalg.norm(affine[:3, :3], axis=0)
    for x, y, z, diameter in nodules:
        centre = np.array([-x, -y, z, 1.0] if lps else [x, y, z, 1.0])
        radius = float(diameter) / 2
        index = (to_voxel @ centre)[:3]
        reach = np.ceil(radius / voxel_size) + 1
        lo = np.maximum(np.floor(index - reach), 0).astype(int)
        hi = np.minimum(np.ceil(index + reach) + 1, mask.shape).astype(int)
        if np.any(hi <= lo):
            continue  # the sphere lies outside the volume: nothing of it to draw
        grid = np.stack(np.meshgrid(*(np.arange(a, b) for a, b in zip(lo, hi)), indexing="ij"), axis=-1)
        world = grid @ affine[:3, :3].T + affine[:3, 3]
        inside = np.linalg.norm(world - centre[:3], axis=-1) <= radius
        mask[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]] |= inside.astype(np.uint8)
    return mask


class NoduleSpheres(Transform):
    """The ``(1, X, Y, Z)`` nodule mask of an image, from world-coordinate nodule annotations.

    Args:
        lps: annotations are in LPS patient coordinates (LUNA16's ``annotations.csv``); False for RAS.
    """

    backend = [TransformBackends.NUMPY]

    def __init__(self, lps: bool = True) -> None:
        self.lps = lps

    def __call__(self, image: MetaTensor, nodules: Sequence[Sequence[float]]) -> MetaTensor:
        affine = image.affine.numpy() if isinstance(image, MetaTensor) else np.eye(4)
        mask = nodule_mask(image.shape[1:], affine, nodules, self.lps)
        label = MetaTensor(torch.from_numpy(mask[np.newaxis]), meta=dict(image.meta) if isinstance(image, MetaTensor) else {})
        if isinstance(image, MetaTensor):
            label.affine = image.affine.clone()
        return label
