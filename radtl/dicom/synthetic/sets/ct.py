"""``ct/``: a six-slice chest CT series (two slices RLE Lossless) and one image with a Modality LUT Sequence."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydicom.uid import ExplicitVRLittleEndian, RLELossless

from radtl.dicom.synthetic.iods import ct_image, secondary_capture
from radtl.dicom.synthetic.modules import (
    DATE,
    SECONDARY_CAPTURE_IMAGE,
    TIME,
    Study,
    add_modality_lut,
    add_window,
    set_pixels,
    write,
)
from radtl.dicom.synthetic.phantoms import ct_chest_slice, ellipse
from radtl.dicom.synthetic.registry import sample_set

CT_STUDY = Study("ct-chest", "RADTL^CHEST^CT", "RADTL-CT-0001", "19650101", "F", "CT chest", "059Y", "ACC-CT-1")
CT_LUT_STUDY = Study("ct-lut", "RADTL^PHANTOM^CTLUT", "RADTL-CT-0002", "20000101", "O", "CT water phantom")
CT_SLICES = 6
CT_RLE_SLICES = (2, 5)  # 1-based instance numbers stored with RLE Lossless
CT_SPACING = 1.5
CT_STEP = 5.0


@sample_set("ct")
def build_ct(out_dir: Path) -> list[Path]:
    """``ct/``: six chest slices (slices 2 and 5 RLE Lossless) and a Secondary Capture with a Modality LUT."""
    written = []
    rng = np.random.default_rng(3001)
    for i in range(CT_SLICES):
        number = i + 1
        z = -100.0 - CT_STEP * i  # feet-ward
        ds = ct_image(
            CT_STUDY, f"slice{number}", number, ct_chest_slice(rng, i), z, spacing=CT_SPACING, thickness=CT_STEP
        )
        ts = RLELossless if number in CT_RLE_SLICES else ExplicitVRLittleEndian
        written.append(write(ds, out_dir / "ct" / "series_001" / f"slice_{number:03d}.dcm", ts))

    # Single image whose stored->HU transform is a Modality LUT Sequence.
    # CT Image IOD mandates Rescale Slope/Intercept, so this is a Secondary
    # Capture instance (Modality CT) where the Modality LUT module is allowed.
    # LUT Data are unsigned, so the output range is 0..3000 HU: the phantom is
    # imaged inside a water tank (no air in the field of view).
    shape = (128, 128)
    rng = np.random.default_rng(3002)
    hu = np.zeros(shape)
    for mask, value in [
        (ellipse(shape, (64, 64), (54, 46)), 1300.0),  # skull-like shell
        (ellipse(shape, (64, 64), (49, 41)), 35.0),  # brain-like interior
        (ellipse(shape, (45, 50), (8, 8)), 80.0),
        (ellipse(shape, (45, 78), (8, 8)), 250.0),
        (ellipse(shape, (80, 50), (8, 8)), 600.0),
        (ellipse(shape, (80, 78), (8, 8)), 2000.0),
    ]:
        hu = hu * (1 - mask) + value * mask
    hu = np.clip(hu + 4.0 * rng.standard_normal(shape), 0, 3000)
    stored_axis = np.arange(4096, dtype=np.float64)
    # piecewise-linear: fine 0.1 HU steps for 0..100 HU, coarse above
    lut_hu = np.where(stored_axis <= 1000, stored_axis * 0.1, 100.0 + (stored_axis - 1000) * 2900.0 / 3095.0)
    lut_values = np.rint(lut_hu).astype(np.uint16)
    stored = np.rint(np.interp(hu, lut_hu, stored_axis)).astype(np.uint16)

    ds = secondary_capture(
        SECONDARY_CAPTURE_IMAGE, CT_LUT_STUDY, "modality_lut", modality="CT", series=1,
        description="Modality LUT phantom", body_part="HEAD",
    )
    ds.DateOfSecondaryCapture = DATE
    ds.TimeOfSecondaryCapture = TIME
    ds.PixelSpacing = ["1", "1"]
    set_pixels(ds, stored, bits_stored=12)
    add_modality_lut(ds, lut_values, bits=16, lut_type="HU", explanation="PIECEWISE LINEAR TO HU")
    add_window(ds, [40], [400], ["SOFT TISSUE"])
    written.append(write(ds, out_dir / "ct" / "ct_modality_lut.dcm"))
    return written
