"""Label maths: nodule masks drawn from world-coordinate annotations, as LUNA16 publishes them."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["nodule_mask"]


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
