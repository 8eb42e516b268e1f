"""``tasks/luna_nodule/``: chest CT series with lung nodules and a LUNA16-style ``annotations.csv``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydicom.uid import RLELossless

from radtl.dicom.synthetic.iods import ct_image
from radtl.dicom.synthetic.modules import Study, birth_date, uid, write
from radtl.dicom.synthetic.phantoms import TASK_SHAPE, lung_nodule_series
from radtl.dicom.synthetic.registry import TASKS, sample_set

LUNA_SERIES = 20
LUNA_SLICES = 12
LUNA_SPACING = 5.0  # mm, in-plane and between slices: a 320 mm field of view at 64x64


@sample_set("luna_nodule")
def build_luna_nodule(out_dir: Path) -> list[Path]:
    """20 CT series of 12 slices (RLE) with one or two nodules each, and ``annotations.csv``."""
    written = []
    rng = np.random.default_rng(8101)
    rows = ["seriesuid,coordX,coordY,coordZ,diameter_mm"]
    for case in range(1, LUNA_SERIES + 1):
        years = int(rng.integers(45, 80))
        study = Study(
            f"luna-{case}", f"RADTL^LUNG^{case:03d}", f"RADTL-LUNG-{case:04d}", birth_date(12 * years + 6),
            str(rng.choice(["F", "M"])), "CT chest low dose", f"{years:03d}Y", f"ACC-LUNG-{case:04d}",
        )
        slices, nodules = lung_nodule_series(rng, TASK_SHAPE, LUNA_SLICES, LUNA_SPACING)
        folder = out_dir / TASKS / "luna_nodule" / f"case{case:03d}"
        origin = [-TASK_SHAPE[1] * LUNA_SPACING / 2, -TASK_SHAPE[0] * LUNA_SPACING / 2, 0.0]
        for z, hu in enumerate(slices):
            ds = ct_image(
                study, ("slice", z), z + 1, hu, z * LUNA_SPACING, spacing=LUNA_SPACING, thickness=LUNA_SPACING
            )
            written.append(write(ds, folder / f"slice{z + 1:03d}.dcm", RLELossless))
        for col, row, z, diameter in nodules:
            world = (origin[0] + col * LUNA_SPACING, origin[1] + row * LUNA_SPACING, z * LUNA_SPACING)
            rows.append(f"{uid('series', study.key, 1)},{world[0]:.2f},{world[1]:.2f},{world[2]:.2f},{diameter:.2f}")
    csv_path = out_dir / TASKS / "luna_nodule" / "annotations.csv"
    csv_path.write_text("\n".join(rows) + "\n")
    written.append(csv_path)
    return written
