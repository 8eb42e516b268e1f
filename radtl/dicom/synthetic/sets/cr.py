"""``cr/``: Computed Radiography, a chest (MONOCHROME2, one window and two) and a hand (MONOCHROME1)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from radtl.dicom.synthetic.iods import cr_image
from radtl.dicom.synthetic.modules import Study, add_window, write
from radtl.dicom.synthetic.phantoms import chest_radiograph, hand_radiograph, percentile_window, to_12bit
from radtl.dicom.synthetic.registry import sample_set

CR_CHEST = Study("cr-chest", "RADTL^CHEST^CR", "RADTL-CR-0001", "19700101", "M", "CR chest", "054Y", "ACC-CR-1")
CR_HAND = Study("cr-hand", "RADTL^HAND^CR", "RADTL-CR-0002", "20140101", "F", "CR hand", "010Y", "ACC-CR-2")


@sample_set("cr")
def build_cr(out_dir: Path) -> list[Path]:
    """``cr/``: a chest with one window, the same chest whose first window is unusable, a MONOCHROME1 hand."""
    rng = np.random.default_rng(1001)
    chest = to_12bit(chest_radiograph(rng) + 0.01 * rng.standard_normal((256, 224)), 0.0, 3.0, 150, 3700)
    written = []

    ds = cr_image(CR_CHEST, "chest_mono2", 1, chest, "MONOCHROME2", "CHEST", "PA", ["L", "F"], 1.6)
    center, width = percentile_window(chest)
    add_window(ds, [center], [width])
    written.append(write(ds, out_dir / "cr" / "chest_mono2.dcm"))

    # First window is deliberately unusable (centre far above the 12-bit range).
    ds = cr_image(CR_CHEST, "chest_multiwindow", 2, chest, "MONOCHROME2", "CHEST", "PA", ["L", "F"], 1.6)
    c, w = percentile_window(chest)
    add_window(ds, [30000, c], [100, w], ["BOGUS ABOVE RANGE", "DEFAULT"])
    written.append(write(ds, out_dir / "cr" / "chest_multiwindow.dcm"))

    rng = np.random.default_rng(1002)
    soft, bone = hand_radiograph(rng)
    # MONOCHROME1: high stored value = dark.  Direct exposure -> high, bone -> low.
    hand = to_12bit(3.0 - 1.6 * soft - 1.3 * bone + 0.02 * rng.standard_normal(soft.shape), 0.0, 3.0, 200, 3800)
    ds = cr_image(CR_HAND, "hand_mono1", 1, hand, "MONOCHROME1", "HAND", "PA", ["R", "H"], 1.0, laterality="L")
    center, width = percentile_window(hand, 0.5, 99.5)
    add_window(ds, [center], [width])
    written.append(write(ds, out_dir / "cr" / "hand_mono1.dcm"))
    return written
