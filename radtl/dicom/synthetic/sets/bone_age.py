"""``tasks/bone_age/``: the layout of the RSNA Pediatric Bone Age set, hands and a CSV of bone ages."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydicom.uid import RLELossless

from radtl.dicom.synthetic.iods import cr_image
from radtl.dicom.synthetic.modules import Study, add_window, age_string, birth_date, write
from radtl.dicom.synthetic.phantoms import downsample, growing_hand, to_12bit
from radtl.dicom.synthetic.registry import TASKS, sample_set, write_csv


@sample_set("bone_age")
def build_bone_age(out_dir: Path) -> list[Path]:
    """96 MONOCHROME1 CR hands of bone ages 1 to 18 years (RLE) and ``boneage-training-dataset.csv``."""
    folder = out_dir / TASKS / "bone_age"
    rng = np.random.default_rng(7101)
    n = 96
    ids = np.sort(rng.choice(np.arange(1377, 15611), n, replace=False))
    bone_ages = np.rint(12 + 204 * (rng.permutation(n) + rng.uniform(0, 1, n)) / n).astype(int)
    males = rng.random(n) < 0.54
    written, rows = [], []
    for image_id, boneage, male in zip(ids.tolist(), bone_ages.tolist(), males.tolist(), strict=True):
        months = int(np.clip(round(boneage + rng.normal(0, 10)), 6, 228))  # chronological age
        study = Study(
            f"bone-age-{image_id}", f"RADTL^BONEAGE^{image_id}", f"RADTL-BA-{image_id:05d}", birth_date(months),
            "M" if male else "F", "Hand bone age", age_string(months), f"ACC-BA-{image_id:05d}",
        )
        soft, bone = growing_hand(rng, boneage, male)
        val = downsample(3.0 - 1.3 * soft - 1.0 * bone, 2)
        val += 0.015 * rng.standard_normal(val.shape) * (val < 2.98)
        # MONOCHROME1: direct exposure (background) high, bone low
        arr = to_12bit(val, 0.0, 3.0, 200, 3800)
        ds = cr_image(study, "img", 1, arr, "MONOCHROME1", "HAND", "PA", ["R", "H"], 3.0, laterality="L")
        add_window(ds, [2300], [3400])
        written.append(write(ds, folder / "boneage-training-dataset" / f"{image_id}.dcm", RLELossless))
        rows.append((image_id, boneage, "True" if male else "False"))
    written.append(write_csv(folder / "boneage-training-dataset.csv", ("id", "boneage", "male"), rows))
    return written
