"""``dx/``: Digital X-Ray For Presentation, a hand with a sigmoid window and a chest with a VOI LUT table."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from radtl.dicom.synthetic.iods import dx_image
from radtl.dicom.synthetic.modules import Study, add_voi_lut, add_window, code, write
from radtl.dicom.synthetic.phantoms import chest_radiograph, hand_radiograph, percentile_window, to_12bit
from radtl.dicom.synthetic.registry import sample_set

DX_HAND = Study("dx-hand", "RADTL^HAND^DX", "RADTL-DX-0001", "20170101", "M", "DX hand", "007Y", "ACC-DX-1")
DX_CHEST = Study("dx-chest", "RADTL^CHEST^DX", "RADTL-DX-0002", "19800101", "F", "DX chest", "044Y", "ACC-DX-2")


@sample_set("dx")
def build_dx(out_dir: Path) -> list[Path]:
    """``dx/``: a MONOCHROME1 hand with an INVERSE Presentation LUT and a SIGMOID window; a chest with a VOI LUT."""
    written = []
    rng = np.random.default_rng(2001)
    soft, bone = hand_radiograph(rng, mirror=True)
    hand = to_12bit(3.0 - 1.5 * soft - 1.4 * bone + 0.02 * rng.standard_normal(soft.shape), 0.0, 3.0, 300, 3900)
    ds = dx_image(
        DX_HAND,
        "hand_mono1_inverse",
        hand,
        "MONOCHROME1",
        code("85562004", "SCT", "Hand"),
        "HAND",
        "R",
        ["L", "H"],
        1.0,
    )
    center, width = percentile_window(hand, 0.5, 99.5)
    add_window(ds, [center], [width], ["SIGMOID DEFAULT"], "SIGMOID")
    written.append(write(ds, out_dir / "dx" / "hand_mono1_inverse.dcm"))

    rng = np.random.default_rng(2002)
    chest = to_12bit(chest_radiograph(rng) + 0.01 * rng.standard_normal((256, 224)), 0.0, 3.0, 200, 3600)
    ds = dx_image(
        DX_CHEST, "chest_voilut", chest, "MONOCHROME2", code("51185008", "SCT", "Thorax"), "CHEST", "U", ["L", "F"], 1.6
    )
    # smooth sigmoid VOI LUT, 4096 entries mapping 0..4095 -> 0..4095 (12-bit output)
    c, w = percentile_window(chest)
    x = np.arange(4096, dtype=np.float64)
    curve = 1.0 / (1.0 + np.exp(-4.0 * (x - c) / w))
    curve = (curve - curve[0]) / (curve[-1] - curve[0])
    add_voi_lut(ds, np.rint(curve * 4095), bits=12, explanation="SIGMOID SOFT CHEST")
    written.append(write(ds, out_dir / "dx" / "chest_voilut.dcm"))
    return written
