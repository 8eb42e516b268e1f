"""``enhanced/``: an Enhanced MR and an Enhanced CT instance of four frames, each frame its own rescale and window."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from radtl.dicom.synthetic.iods import add_enhanced_multiframe
from radtl.dicom.synthetic.modules import (
    ENHANCED_CT_IMAGE,
    ENHANCED_MR_IMAGE,
    Study,
    code,
    new_instance,
    set_pixels,
    write,
)
from radtl.dicom.synthetic.phantoms import brain_mr_slice, ct_chest_slice
from radtl.dicom.synthetic.registry import sample_set

ENH_MR_STUDY = Study("enh-mr", "RADTL^BRAIN^EMR", "RADTL-EMR-0001", "19850101", "M", "EMR brain", "039Y", "ACC-EMR-1")
ENH_CT_STUDY = Study("enh-ct", "RADTL^CHEST^ECT", "RADTL-ECT-0001", "19750101", "M", "ECT chest", "049Y", "ACC-ECT-1")
#: Per-frame (rescale slope, rescale intercept, window centre, window width, window explanation).
ENH_MR_FRAMES = [
    (1.0, 0.0, 1400, 2800, "FRAME 1"),
    (2.0, 0.0, 1500, 3000, "FRAME 2"),
    (1.0, 0.0, 20, 10, "FRAME 3"),
    (2.0, -100.0, 1300, 2600, "FRAME 4"),
]
ENH_CT_FRAMES = [
    (1.0, -1024.0, 40, 400, "SOFT_TISSUE"),
    (2.0, -2048.0, 40, 400, "SOFT_TISSUE"),
    (0.5, -1024.0, -600, 1500, "LUNG"),
    (1.0, -1024.0, 400, 1800, "BONE"),
]
UNINFORMATIVE_FRAME = 2  # 0-based index of the (almost) constant frame in enhanced_mr.dcm


@sample_set("enhanced")
def build_enhanced(out_dir: Path) -> list[Path]:
    """``enhanced/``: four-frame Enhanced MR (one frame almost uniform) and Enhanced CT, per-frame rescale."""
    written = []
    # --- Enhanced MR: 4 frames; frame index 2 is almost constant -------------
    rng = np.random.default_rng(5001)
    shape = (128, 128)
    spacing, step = 1.8, 5.0
    frames = []
    for i, (slope, intercept, *_) in enumerate(ENH_MR_FRAMES):
        if i == UNINFORMATIVE_FRAME:
            stored = np.full(shape, 10, dtype=np.uint16)  # uninformative: 3 distinct values
            stored[60:64, 60:64] = 11
            stored[0, 0] = 12
        else:
            signal = brain_mr_slice(rng, i + 1, shape, scale=0.9)
            stored = np.clip(np.rint((signal - intercept) / slope), 0, 4095).astype(np.uint16)
        frames.append(stored)
    ds = new_instance(ENHANCED_MR_IMAGE, ENH_MR_STUDY.key, "enhanced_mr")
    image_type = ["DERIVED", "PRIMARY", "T2", "NONE"]
    positions = [[-shape[1] * spacing / 2, -shape[0] * spacing / 2, 30.0 + step * i] for i in range(4)]
    add_enhanced_multiframe(
        ds,
        ENH_MR_STUDY,
        "MR",
        image_type,
        4,
        spacing,
        step,
        positions,
        code("12738006", "SCT", "Brain"),
        ENH_MR_FRAMES,
        "US",
        "MRImageFrameTypeSequence",
        {
            "PixelPresentation": "MONOCHROME",
            "VolumetricProperties": "VOLUME",
            "VolumeBasedCalculationTechnique": "NONE",
            "ComplexImageComponent": "MAGNITUDE",
            "AcquisitionContrast": "T2",
        },
    )
    ds.ResonantNucleus = "1H"
    ds.KSpaceFiltering = "NONE"
    ds.MagneticFieldStrength = "1.5"
    ds.ApplicableSafetyStandardAgency = "IEC"
    ds.ImageComments = f"Frame index {UNINFORMATIVE_FRAME} (0-based) is almost uniform"
    set_pixels(ds, np.stack(frames), bits_stored=12, multiframe=True)
    written.append(write(ds, out_dir / "enhanced" / "enhanced_mr.dcm"))

    # --- Enhanced CT: 4 frames, per-frame rescale to HU ------------------------
    rng = np.random.default_rng(5002)
    spacing_ct = 3.0
    frames = []
    for i, (slope, intercept, *_) in enumerate(ENH_CT_FRAMES):
        hu = ct_chest_slice(rng, i + 1, shape)
        frames.append(np.clip(np.rint((hu - intercept) / slope), 0, 65535).astype(np.uint16))
    ds = new_instance(ENHANCED_CT_IMAGE, ENH_CT_STUDY.key, "enhanced_ct")
    image_type = ["DERIVED", "PRIMARY", "VOLUME", "NONE"]
    positions = [[-shape[1] * spacing_ct / 2, -shape[0] * spacing_ct / 2, -100.0 - 5.0 * i] for i in range(4)]
    add_enhanced_multiframe(
        ds,
        ENH_CT_STUDY,
        "CT",
        image_type,
        4,
        spacing_ct,
        5.0,
        positions,
        code("51185008", "SCT", "Thorax"),
        ENH_CT_FRAMES,
        "HU",
        "CTImageFrameTypeSequence",
        {
            "PixelPresentation": "MONOCHROME",
            "VolumetricProperties": "VOLUME",
            "VolumeBasedCalculationTechnique": "NONE",
        },
    )
    set_pixels(ds, np.stack(frames), bits_stored=16, multiframe=True)
    written.append(write(ds, out_dir / "enhanced" / "enhanced_ct.dcm"))
    return written
