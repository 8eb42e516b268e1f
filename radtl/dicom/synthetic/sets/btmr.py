"""``tasks/btmr/``: the layout of Kaggle's Brain Tumor MRI Dataset, four classes of T2 brain slices."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydicom.uid import RLELossless

from radtl.dicom.synthetic.iods import add_mr_acquisition, axial_slice
from radtl.dicom.synthetic.modules import MR_IMAGE, Study, add_window, birth_date, set_pixels, write
from radtl.dicom.synthetic.phantoms import brain_tumour_mr, percentile_window
from radtl.dicom.synthetic.registry import TASKS, sample_set

BTMR_CLASSES = {"glioma": "gl", "meningioma": "me", "notumor": "no", "pituitary": "pi"}
BTMR_SPLITS = {"Training": ("Tr", 24), "Testing": ("Te", 6)}


@sample_set("btmr")
def build_btmr(out_dir: Path) -> list[Path]:
    """30 T2 brain slices per class (24 ``Training``, 6 ``Testing``), RLE Lossless, one study each."""
    written = []
    spacing = 3.6  # 64 x 3.6 mm = 230 mm field of view
    for split, (prefix, count) in BTMR_SPLITS.items():
        for label, (name, short) in enumerate(BTMR_CLASSES.items()):
            rng = np.random.default_rng(7001 + 10 * label + (prefix == "Te"))
            for i in range(1, count + 1):
                stem = f"{prefix}-{short}_{i:04d}"
                n = 1000 * (prefix == "Te") + 100 * label + i
                years = int(rng.integers(20, 80))
                study = Study(
                    f"btmr-{stem}", f"RADTL^BTMR^{n}", f"RADTL-BTMR-{n:04d}", birth_date(12 * years + 6),
                    str(rng.choice(["F", "M"])), "MR brain", f"{years:03d}Y", f"ACC-BTMR-{n:04d}",
                )
                img = np.rint(brain_tumour_mr(rng, name)).astype(np.uint16)
                ds = axial_slice(
                    MR_IMAGE, study, "img", number=1, shape=img.shape, spacing=spacing, z=float(rng.uniform(10, 40)),
                    thickness=5.0, modality="MR", description="T2 TSE axial", body_part="HEAD",
                    image_type=["ORIGINAL", "PRIMARY", "OTHER"],
                )
                add_mr_acquisition(ds)
                set_pixels(ds, img, bits_stored=12)
                center, width = percentile_window(img, 0.5, 99.8)
                add_window(ds, [center], [width])
                written.append(write(ds, out_dir / TASKS / "btmr" / split / name / f"{stem}.dcm", RLELossless))
    return written
