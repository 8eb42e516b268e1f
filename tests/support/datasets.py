"""Small DICOM datasets built in memory, and the folders of real vendor files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid


def image_dataset(pixels: np.ndarray, **attributes) -> Dataset:
    """A minimal single- or multi-frame grey image dataset holding ``pixels`` (``(H, W)`` or ``(F, H, W)``)."""
    pixels = np.asarray(pixels)
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"  # Secondary Capture
    ds.SOPInstanceUID = generate_uid()
    ds.Modality = "OT"
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.SamplesPerPixel = 1
    ds.Rows, ds.Columns = pixels.shape[-2:]
    if pixels.ndim == 3:
        ds.NumberOfFrames = pixels.shape[0]
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = int(pixels.dtype.kind == "i")
    ds.PixelData = pixels.astype(np.int16 if ds.PixelRepresentation else np.uint16).tobytes()
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    return ds


def item(**attributes) -> Dataset:
    ds = Dataset()
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    return ds


def sequence(*items: Dataset) -> Sequence:
    return Sequence(list(items))


def real_corpus_folders() -> dict[str, Path]:
    """The folders of real vendor files: pydicom's test files and the pydicom-data package's."""
    from pydicom.data import get_testdata_file

    pydicom_data = get_testdata_file("RG1_UNCR.dcm")  # shipped by the pydicom-data package
    if pydicom_data is None:
        pytest.fail("pydicom-data is not installed: pip install -e '.[test]'")
    return {"pydicom": Path(get_testdata_file("CT_small.dcm")).parent, "pydicom-data": Path(pydicom_data).parent}
