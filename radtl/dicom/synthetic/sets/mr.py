"""``mr/``: a five-slice T2-weighted brain MR series."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from radtl.dicom.synthetic.iods import add_mr_acquisition, axial_slice
from radtl.dicom.synthetic.modules import MR_IMAGE, Study, add_window, decimal_string, set_pixels, write
from radtl.dicom.synthetic.phantoms import brain_mr_slice
from radtl.dicom.synthetic.registry import sample_set

MR_STUDY = Study("mr-brain", "RADTL^BRAIN^MR", "RADTL-MR-0001", "19900101", "F", "MR brain", "034Y", "ACC-MR-1")
MR_SLICES = 5


@sample_set("mr")
def build_mr(out_dir: Path) -> list[Path]:
    """``mr/series_001/``: five axial T2 brain slices."""
    written = []
    rng = np.random.default_rng(4001)
    spacing, step = 1.2, 6.0
    for i in range(MR_SLICES):
        number = i + 1
        img = np.rint(brain_mr_slice(rng, i, scale=0.86 + 0.04 * min(i, 4 - i))).astype(np.uint16)
        ds = axial_slice(
            MR_IMAGE, MR_STUDY, f"slice{number}", number=number, shape=img.shape, spacing=spacing,
            z=20.0 + step * i, thickness=5.0, modality="MR", description="T2 TSE axial", body_part="HEAD",
            image_type=["ORIGINAL", "PRIMARY", "OTHER"],
        )
        ds.SpacingBetweenSlices = decimal_string(step)
        add_mr_acquisition(ds)
        set_pixels(ds, img, bits_stored=12)
        add_window(ds, [1400], [2800])
        written.append(write(ds, out_dir / "mr" / "series_001" / f"slice_{number:03d}.dcm"))
    return written
