"""Real vendor files shipped by pydicom and pydicom-data: every one converts or is reported, none crashes.

Compressed syntaxes (JPEG baseline/lossless, JPEG-LS, JPEG 2000, RLE), big endian, Modality
and VOI LUT Sequences, MONOCHROME1, palette colour and YBR all come from real encoders
here, not from our own generator.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from pydicom import dcmread
from pydicom.errors import InvalidDicomError

from radtl.dicom.convert import convert_tree
from radtl.dicom.io import native_grayscale_frames
from tests.support.datasets import real_corpus_folders


@pytest.fixture(scope="module")
def corpora(tmp_path_factory):
    """Both corpora converted, each into its own output: name -> (folder, summary, rows)."""
    results = {}
    for name, folder in real_corpus_folders().items():
        out = tmp_path_factory.mktemp(name)
        summary = convert_tree(folder, out, progress=False)
        with open(out / "manifest.csv", newline="") as handle:
            results[name] = (folder, summary, list(csv.DictReader(handle)))
    return results


@pytest.fixture(scope="module")
def by_name(corpora):
    return {Path(row["source"]).name: row for _, _, rows in corpora.values() for row in rows}


@pytest.mark.parametrize("name", ["pydicom", "pydicom-data"])
def test_every_file_is_converted_or_reported(corpora, name):
    folder, summary, rows = corpora[name]
    files = [p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")]
    assert summary.files == len(files) > 50
    assert {row["source"] for row in rows} == {str(p) for p in files}


@pytest.mark.parametrize("name", ["pydicom", "pydicom-data"])
def test_no_file_crashes_the_converter(corpora, name):
    _, _, rows = corpora[name]
    assert [row for row in rows if row["reason"].startswith("internal-error")] == []


@pytest.mark.parametrize("name", ["pydicom", "pydicom-data"])
def test_every_row_that_is_not_ok_has_a_reason(corpora, name):
    _, _, rows = corpora[name]
    assert all(row["reason"] for row in rows if row["status"] != "ok")


@pytest.mark.parametrize(
    "file, what",
    [
        ("CT_small.dcm", "CT, explicit little endian"),
        ("MR_small_bigendian.dcm", "big endian"),
        ("MR_small_RLE.dcm", "RLE Lossless"),
        ("MR_small_jpeg_ls_lossless.dcm", "JPEG-LS lossless"),
        ("JPEG2000.dcm", "JPEG 2000"),
        ("JPEG-LL.dcm", "JPEG lossless process 14"),
        ("JPGExtended.dcm", "JPEG extended 12-bit"),
        ("SC_rgb_jpeg_dcmtk.dcm", "YBR JPEG baseline colour"),
        ("OT-PAL-8-face.dcm", "PALETTE COLOR"),
        ("mlut_18.dcm", "Modality LUT Sequence"),
        ("vlut_04.dcm", "VOI LUT Sequence"),
        ("RG1_J2KI.dcm", "MONOCHROME1 CR in JPEG 2000"),
        ("emri_small_jpeg_2k_lossless.dcm", "multi-frame JPEG 2000"),
    ],
)
def test_real_encodings_decode(by_name, file, what):
    assert by_name[file]["status"] in {"ok", "skipped"}, f"{what}: {by_name[file]['reason']}"


def test_monochrome1_vendor_radiograph_is_inverted(by_name):
    assert by_name["RG1_UNCR.dcm"]["inverted"] == "1"


@pytest.mark.parametrize(
    "file, code",
    [("MR_truncated.dcm", "bad-pixel-data"), ("rtstruct.dcm", "no-pixel-data"), ("README.txt", "not-dicom")],
)
def test_known_bad_files_are_reported_with_the_right_reason(by_name, file, code):
    assert by_name[file]["reason"].startswith(f"{code}: ")


def native_grey_files():
    for folder in real_corpus_folders().values():
        for path in sorted(folder.rglob("*.dcm")):
            try:
                ds = dcmread(path)
            except (InvalidDicomError, EOFError, ValueError):
                continue
            if native_grayscale_frames(ds) is not None:
                yield pytest.param(ds, id=path.name)


@pytest.mark.parametrize("ds", native_grey_files())
def test_native_fast_path_returns_exactly_what_pydicom_decodes(ds):
    expected = ds.pixel_array
    fast = native_grayscale_frames(ds)
    assert fast.dtype == expected.dtype
    assert np.array_equal(fast, expected.reshape(fast.shape))
