"""``broken/``: deliberately broken inputs, one per way a conversion must fail cleanly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydicom.encaps import encapsulate
from pydicom.uid import MPEG2MPML

from radtl.dicom.synthetic.iods import basic_text_sr, ct_image, secondary_capture
from radtl.dicom.synthetic.modules import (
    MULTIFRAME_GRAYSCALE_BYTE_SC,
    SECONDARY_CAPTURE_IMAGE,
    Study,
    set_pixels,
    write,
)
from radtl.dicom.synthetic.phantoms import ct_chest_slice
from radtl.dicom.synthetic.registry import sample_set

BROKEN_STUDY = Study("broken", "RADTL^BROKEN", "RADTL-BAD-0001", "19600101", "O", "Deliberately broken inputs")


@sample_set("broken")
def build_broken(out_dir: Path) -> list[Path]:
    """Seven files a conversion must reject, each with its own failure: see the numbered comments."""
    folder = out_dir / "broken"
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    rng = np.random.default_rng(6001)
    hu = ct_chest_slice(rng, 2, (128, 128))

    # 1. valid CT header, Pixel Data shorter than Rows*Columns*2 (even length)
    ds = ct_image(BROKEN_STUDY, "truncated_pixels", 1, hu, -100.0, series=1)
    ds.PixelData = ds.PixelData[: 128 * 64 * 2 + 100]  # about half the expected bytes
    written.append(write(ds, folder / "truncated_pixels.dcm"))

    # 2. not DICOM at all
    p = folder / "not_dicom.dcm"
    p.write_bytes(b"this is not a DICOM file\n")
    written.append(p)

    # 3. Basic Text SR: valid DICOM without Pixel Data
    written.append(write(basic_text_sr(BROKEN_STUDY, "sr", series=5), folder / "structured_report.dcm"))

    # 4. header claims 65535 x 65535 x 1000 frames, Pixel Data is 16 bytes
    ds = secondary_capture(
        MULTIFRAME_GRAYSCALE_BYTE_SC, BROKEN_STUDY, "absurd", modality="OT", series=3,
        description="Absurd dimensions", body_part="CHEST",
    )
    set_pixels(ds, np.arange(16, dtype=np.uint8).reshape(4, 4), bits_stored=8)
    ds.PresentationLUTShape = "IDENTITY"
    ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = "0", "1", "US"
    ds.Rows = ds.Columns = 65535
    ds.NumberOfFrames = 1000
    ds.FrameIncrementPointer = 0x00181063  # Frame Time
    ds.FrameTime = "40"
    written.append(write(ds, folder / "absurd_dimensions.dcm"))

    # 5. MPEG-2 transfer syntax (no Python decoder), junk in the single fragment
    ds = secondary_capture(
        SECONDARY_CAPTURE_IMAGE, BROKEN_STUDY, "mpeg2", modality="OT", series=4,
        description="Unsupported compression", body_part="CHEST",
    )
    ds.LossyImageCompression = "01"
    ds.SamplesPerPixel = 3
    ds.PhotometricInterpretation = "YBR_PARTIAL_420"
    ds.PlanarConfiguration = 0
    ds.Rows, ds.Columns = 128, 128
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    junk = b"\x00\x00\x01\xb3" + bytes(range(16, 48))  # MPEG sequence header start code + junk
    ds.PixelData = encapsulate([junk])
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    written.append(write(ds, folder / "unsupported_compression.dcm", MPEG2MPML))

    # 6. valid CT file cut 300 bytes into the main dataset
    full = folder / "truncated_header.dcm"
    write(ct_image(BROKEN_STUDY, "truncated_header", 2, hu, -105.0, series=2), full)
    raw = full.read_bytes()
    meta_len = int.from_bytes(raw[140:144], "little")  # (0002,0000) UL value
    full.write_bytes(raw[: 144 + meta_len + 300])
    written.append(full)

    # 7. zero-byte file
    p = folder / "empty.dcm"
    p.write_bytes(b"")
    written.append(p)
    return written
