"""``tasks/grazpedwri_dx/``: the layout of GRAZPEDWRI-DX, paediatric wrists and its ``dataset.csv``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydicom.uid import RLELossless

from radtl.dicom.synthetic.iods import dx_image
from radtl.dicom.synthetic.modules import MANUFACTURER, Study, add_window, age_string, birth_date, code, write
from radtl.dicom.synthetic.phantoms import downsample, pediatric_wrist
from radtl.dicom.synthetic.registry import TASKS, sample_set, write_csv

GRAZ_COLUMNS = (
    "filestem", "patient_id", "timehash", "gender", "age", "laterality", "projection", "ao_classification", "cast",
    "diagnosis_uncertain", "fracture_visible", "initial_exam", "metal", "osteopenia", "pixel_spacing",
    "device_manufacturer",
)
GRAZ_AO = ["23r-M/2.1", "23r-M/3.1", "23r-E/2.1", "23u-E/7", "23r-M/2.1;23u-E/7"]
GRAZ_SPACING = 1.2


@sample_set("grazpedwri_dx")
def build_grazpedwri_dx(out_dir: Path) -> list[Path]:
    """96 DX wrists of 80 patients in two ``images_part*`` folders (RLE) and ``dataset.csv``."""
    folder = out_dir / TASKS / "grazpedwri_dx"
    rng = np.random.default_rng(7201)
    # 80 patients, 16 of them with a follow-up image: 40 osteopenia images (33 patients), 56 without (47)
    labels = [True] * 33 + [False] * 47
    follow_up = set(rng.choice(np.flatnonzero(labels), 7, replace=False).tolist())
    follow_up |= set(rng.choice(np.flatnonzero(np.logical_not(labels)), 9, replace=False).tolist())
    patient_ids = rng.choice(np.arange(1, 6092), len(labels), replace=False)
    images = []  # (filestem, row, image parameters)
    for k, (osteopenia, pid) in enumerate(zip(labels, patient_ids.tolist(), strict=True)):
        gender = "M" if rng.random() < 0.6 else "F"
        age = round(float(rng.uniform(2.0, 17.5)), 1)
        side = "L" if rng.random() < 0.5 else "R"
        timehash = int(rng.integers(100_000_000, 1_300_000_000))
        for visit in range(1 + (k in follow_up)):
            fracture = rng.random() < (0.6 if visit == 0 else 0.3)
            metal = rng.random() < 0.05
            stem = f"{pid:04d}_{timehash:010d}_{visit + 1:02d}_WRI-{side}1_{gender}{int(age):03d}"
            row = (
                stem, pid, timehash, gender, age, side, 1, str(rng.choice(GRAZ_AO)) if fracture else "", "", "",
                1 if fracture else "", 1 if visit == 0 else "", 1 if metal else "", 1 if osteopenia else "",
                GRAZ_SPACING, MANUFACTURER,
            )
            images.append((stem, row, (pid, age, gender, side, osteopenia, fracture, metal)))
            timehash += int(rng.integers(600_000, 6_000_000))
            age = round(age + float(rng.uniform(0.05, 0.4)), 1)
    images.sort(key=lambda item: item[0])
    written = []
    for index, (stem, _, (pid, age, gender, side, osteopenia, fracture, metal)) in enumerate(images):
        study = Study(
            f"graz-{stem}", f"RADTL^GRAZ^{pid}", f"RADTL-GW-{pid:04d}", birth_date(age * 12), gender, "Wrist",
            age_string(int(age * 12)), f"ACC-GW-{index + 1:04d}",
        )
        att = pediatric_wrist(rng, age, osteopenia, fracture, metal)
        att = downsample(att, 2) * rng.uniform(0.96, 1.04)
        if side == "R":
            att = att[:, ::-1]
        arr = np.clip(np.rint(3000 + 16000 * att + 150 * rng.standard_normal(att.shape) * (att > 0.02)), 0, 65535)
        ds = dx_image(
            study, "img", arr.astype(np.uint16), "MONOCHROME2", code("8205005", "SCT", "Wrist"), "WRIST", side,
            ["R", "H"] if side == "L" else ["L", "H"], GRAZ_SPACING, bits_stored=16,
        )
        ds.KVP = "55"
        add_window(ds, [21000], [36000])
        part = "images_part1" if index < len(images) // 2 else "images_part2"
        written.append(write(ds, folder / part / f"{stem}.dcm", RLELossless))
    written.append(write_csv(folder / "dataset.csv", GRAZ_COLUMNS, [row for _, row, _ in images]))
    return written
