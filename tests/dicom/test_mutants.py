"""Bad input never stops ``radtl convert`` or ``radtl index``: a seeded sample of mutated files (tests/support/mutants.py).

The default run takes 40 mutants, the deflate bomb, the RLE bomb and the pylibjpeg-rle panic
always among them; ``python benchmarks/mutants.py`` runs the whole set (docs/reliability.md).
"""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.dataelem import RawDataElement
from pydicom.tag import Tag

import radtl.dicom.convert as export
from radtl.dicom.convert import ExportSettings, convert_file, convert_tree
from radtl.dicom.frames import ConversionOptions
from radtl.dicom.index import build_index, query
from radtl.dicom.index.build import index_file
from radtl.dicom.index.header import HeaderOptions
from tests.support.mutants import HOSTILE_KINDS, make_mutants, with_pixel_data_length, write_mutants

SAMPLE_SIZE = 40
#: The sample runs under a 64 MiB budget so that the deflate bomb stops inflating early; the full run keeps the default.
BUDGET = 2**26


@pytest.fixture(scope="module")
def mutants(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("mutants")
    write_mutants(folder, SAMPLE_SIZE, seed=0)
    return folder


@pytest.fixture(scope="module")
def manifest(mutants, tmp_path_factory) -> list[dict]:
    out = tmp_path_factory.mktemp("mutants_converted")
    settings = ExportSettings(size=32, conversion=ConversionOptions(max_pixel_bytes=BUDGET))
    convert_tree(mutants, out, settings, progress=False)
    with open(out / "manifest.csv", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def index_rows(mutants, tmp_path_factory):
    db = tmp_path_factory.mktemp("mutants_index") / "db"
    build_index(mutants, db, chunk_size=16, progress=False, max_pixel_bytes=BUDGET)
    return query(db, "SELECT path, status, reason, warnings FROM dicom")


def test_the_sample_holds_the_hostile_files_and_every_kind_of_mutation():
    kinds = {mutant.kind for mutant in make_mutants(SAMPLE_SIZE, seed=0)}
    assert set(HOSTILE_KINDS) <= kinds and len(kinds) == len(HOSTILE_KINDS) + 15


def test_mutants_are_the_same_for_the_same_seed():
    assert make_mutants(8, seed=3) == make_mutants(8, seed=3) != make_mutants(8, seed=4)


def test_convert_lists_every_mutant_and_no_frame_twice(manifest, mutants):
    assert {row["source"] for row in manifest} == {str(path) for path in mutants.iterdir()}
    assert max(Counter((row["source"], row["frame"]) for row in manifest).values()) == 1
    errors = Counter(row["source"] for row in manifest if row["status"] == "error")
    assert max(errors.values()) == 1 and all(errors[row["source"]] == 0 for row in manifest if row["status"] != "error")


def test_convert_records_no_internal_error(manifest):
    assert [row["reason"] for row in manifest if row["reason"].startswith("internal-error")] == []


@pytest.mark.parametrize("kind, code", sorted(HOSTILE_KINDS.items()))
def test_convert_gives_each_hostile_file_its_reason(manifest, kind, code):
    (row,) = [row for row in manifest if Path(row["source"]).name == f"{kind}.dcm"]
    assert row["status"] == "error" and row["reason"].startswith(f"{code}: ")


def test_convert_never_makes_an_image_of_a_file_cut_inside_its_header(manifest):
    cut = [row for row in manifest if "-truncate-header-" in row["source"]]
    assert cut and {row["status"] for row in cut} == {"error"}


def test_index_gives_every_mutant_exactly_one_row(index_rows, mutants):
    assert sorted(index_rows["path"]) == sorted(str(path) for path in mutants.iterdir())


def test_index_records_no_internal_error(index_rows):
    assert not index_rows["reason"].fillna("").str.startswith("internal-error").any()


def test_index_refuses_to_inflate_the_deflate_bomb(index_rows):
    (reason,) = index_rows.loc[index_rows["path"].str.endswith("deflate-bomb.dcm"), "reason"]
    assert reason.startswith("too-large: ") and "max_pixel_bytes" in reason


def test_index_flags_every_file_cut_inside_an_element_of_its_header(index_rows):
    cut = index_rows[index_rows["path"].str.contains("-truncate-header-")]
    flagged = (cut["status"] == "error") | cut["warnings"].fillna("").str.contains("cut short")
    assert len(cut) and flagged.all(), cut[~flagged]


def test_a_4_gib_length_declared_in_a_small_file_allocates_nothing(tmp_path):
    path = tmp_path / "huge_length.dcm"
    path.write_bytes(with_pixel_data_length(Path(get_testdata_file("CT_small.dcm")).read_bytes(), 0xFFFFFFF0, keep=64))
    script = ("import resource, sys; from radtl.dicom.io import read_file; "
              "resource.setrlimit(resource.RLIMIT_AS, (3 * 2**30, 3 * 2**30)); print(read_file(sys.argv[1]).cut_short)")
    done = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "(7FE0,0010) PixelData: 64 of 4294967280 bytes present"


def test_the_decoder_panic_is_a_row_on_dask_workers_too(mutants, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for name in ("rle-panic.dcm", sorted(p.name for p in mutants.iterdir() if "slope-zero" in p.name)[0]):
        (src / name).write_bytes((mutants / name).read_bytes())
    summary = convert_tree(src, tmp_path / "out", ExportSettings(size=32), workers=2, progress=False)
    assert summary.files == 2 and summary.reasons[("error", "bad-pixel-data")] == 1


def test_an_interruption_still_stops_the_run(mutants, tmp_path, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(export, "read_dataset", interrupted)
    with pytest.raises(KeyboardInterrupt):
        convert_file(mutants / "rle-panic.dcm", mutants, tmp_path, ExportSettings())


def _with_raw_element(tag: int, vr: str, value: bytes, meta: bool = False) -> bytes:
    """CT_small with one element written as raw bytes that do not fit its VR (PS3.5 6.2)."""
    ds = dcmread(get_testdata_file("CT_small.dcm"))
    target = ds.file_meta if meta else ds
    target[tag] = RawDataElement(Tag(tag), vr, len(value), value, 0, False, True)
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=False)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("element", "convert_code"),
    [
        pytest.param((0x00280011, "WS", b"\x10\x00"), "not-dicom", id="columns-of-an-unknown-vr"),
        pytest.param((0x00280010, "US", b"\x10\x00\x00"), "not-dicom", id="rows-of-an-odd-length"),
        pytest.param((0x00020000, "UL", b"\x01\x00\x00\x00\x02\x00\x00\x00", True), None, id="two-group-lengths"),
    ],
)
def test_an_element_whose_bytes_do_not_fit_its_vr_is_a_reason_not_an_internal_error(tmp_path, element, convert_code):
    path = tmp_path / "damaged.dcm"
    path.write_bytes(_with_raw_element(*element))
    rows = convert_file(path, tmp_path, tmp_path / "out", ExportSettings(size=32))
    indexed, _ = index_file(str(path), HeaderOptions())
    reasons = [row["reason"] for row in rows] + [indexed.get("reason") or ""]
    assert not [reason for reason in reasons if reason.startswith("internal-error")], reasons
    if convert_code:
        assert rows[0]["reason"].startswith(f"{convert_code}: a header element is unreadable")
        assert indexed["status"] == "ok" and "invalid_values" in indexed  # the index keeps the row, the value noted


def test_a_header_without_pixel_data_and_with_two_sop_classes_is_indexed(tmp_path):
    ds = dcmread(get_testdata_file("CT_small.dcm"), stop_before_pixels=True)
    ds.SOPClassUID = ["1.2.840.10008.5.1.4.1.1.2", "1.2.3"]
    path = tmp_path / "two_sop_classes.dcm"
    ds.save_as(path, enforce_file_format=False)
    indexed, _ = index_file(str(path), HeaderOptions())
    assert indexed["status"] == "ok", indexed.get("reason")
