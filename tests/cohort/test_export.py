"""``radtl export``: the files an index query selects, de-identified into a cohort with its manifest and provenance
(issue 25). The archive carries planted identifying values (:mod:`tests.support.identifiers`); none may reach the
cohort."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest

from radtl.atomic import FolderBusyError, folder_lock
from radtl.cohort.export import (
    ExportError,
    ExportStatus,
    cohort_path,
    default_keys_folder,
    export_cohort,
    query_identifies,
)
from radtl.dicom.deidentifier import DeidentificationError
from radtl.dicom.index.build import build_index
from radtl.dicom.index.store import query
from radtl.dicom.synthetic.iods import ct_image
from radtl.dicom.synthetic.modules import Study, write
from radtl.errors import RadtlError
from tests.support.identifiers import (
    FIRST_PATIENT_STUDY_DATES,
    PLANTED,
    PLANTED_DATES,
    days_between,
    identifying_variants,
    write_planted_archive,
)
from tests.support.paths import REPO
from tests.support.tools import dciodvfy_errors, requires_tool

EVERYTHING = "SELECT path FROM dicom"


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("planted") / "archive"
    write_planted_archive(root)
    return root


@pytest.fixture(scope="module")
def index(archive) -> Path:
    db = archive.parent / "index"
    build_index(archive, db, progress=False)
    return db


@pytest.fixture(scope="module")
def cohort(index, tmp_path_factory) -> Path:
    """The whole archive exported with the defaults: burned-in files left out."""
    out = tmp_path_factory.mktemp("default") / "cohort"
    export_cohort(index, EVERYTHING, out, progress=False)
    return out


@pytest.fixture(scope="module")
def cohort_with_burned_in(index, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("burned_in") / "cohort"
    export_cohort(index, EVERYTHING, out, allow_burned_in=True, progress=False)
    return out


def manifest(out: Path) -> list[dict]:
    with open(out / "export_manifest.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def real_sources(out: Path, keys: Path | None = None) -> dict[str, dict]:
    """Each manifest row by its real source: withheld rows completed from the keys folder's sources.csv."""
    keys = keys or default_keys_folder(out)
    rows = {row["source"]: row for row in manifest(out) if row["source"] != "withheld"}
    if (keys / "sources.csv").exists():
        with open(keys / "sources.csv", newline="") as handle:
            rows |= {row["source"]: row for row in csv.DictReader(handle) if row["cohort"] == str(out.absolute())}
    return rows


def exported_files(out: Path) -> list[Path]:
    return sorted(out.rglob("*.dcm"))


# ---------------------------------------------------------------------------------------------
# Done when: no planted value anywhere in the cohort


def test_no_planted_identifying_value_or_date_is_in_any_byte_of_the_cohort(cohort_with_burned_in):
    files = [p for p in cohort_with_burned_in.rglob("*") if p.is_file()]
    assert len(exported_files(cohort_with_burned_in)) == 6
    assert {"export_manifest.csv", "provenance.json"} <= {p.name for p in files}
    planted = {**PLANTED, **PLANTED_DATES}
    found = [(what, path.relative_to(cohort_with_burned_in).as_posix())
             for path in files for what, value in planted.items()
             if any(variant in path.read_bytes() for variant in identifying_variants(value))]
    names = [(what, path) for path in files for what, value in planted.items()
             if any(variant.decode() in str(path) for variant in identifying_variants(value) if b"\0" not in variant)]
    assert found == [] and names == []


# ---------------------------------------------------------------------------------------------
# UIDs: the same in every run with the same keys


def test_two_exports_with_the_same_keys_give_the_same_files_and_uids(index, tmp_path):
    keys = tmp_path / "keys"
    first, second = tmp_path / "first", tmp_path / "second"
    export_cohort(index, EVERYTHING, first, keys=keys, progress=False)
    export_cohort(index, EVERYTHING, second, keys=keys, progress=False)
    names = [p.relative_to(first) for p in exported_files(first)]
    assert names == [p.relative_to(second) for p in exported_files(second)]
    for name in names:
        a, b = pydicom.dcmread(first / name), pydicom.dcmread(second / name)
        assert (a.StudyInstanceUID, a.SeriesInstanceUID, a.FrameOfReferenceUID, a.PatientID) == \
               (b.StudyInstanceUID, b.SeriesInstanceUID, b.FrameOfReferenceUID, b.PatientID)


def test_a_later_export_of_more_files_joins_the_earlier_cohort(index, tmp_path):
    out = tmp_path / "cohort"
    export_cohort(index, "SELECT path FROM dicom WHERE path LIKE '%ct_1.dcm'", out, progress=False)
    first_slice = real_sources(out)["Quimby_Zyxwvut/ct_1.dcm"]["path"]
    export_cohort(index, "SELECT path FROM dicom WHERE Modality = 'CT'", out, progress=False)
    rows = real_sources(out)
    second_slice = rows["Quimby_Zyxwvut/ct_2.dcm"]["path"]
    assert rows["Quimby_Zyxwvut/ct_1.dcm"]["path"] == first_slice
    assert Path(second_slice).parts[:2] == Path(first_slice).parts[:2]  # the same new study and series
    assert len(exported_files(out)) == 4


# ---------------------------------------------------------------------------------------------
# valid output


@requires_tool("dciodvfy", "dicom3tools")
def test_dciodvfy_finds_no_error_in_an_exported_file_that_its_source_did_not_have(archive, cohort_with_burned_in):
    rows = real_sources(cohort_with_burned_in)
    assert len(rows) == 6
    for source, row in rows.items():
        added = set(dciodvfy_errors(cohort_with_burned_in / row["path"])) - set(dciodvfy_errors(archive / source))
        assert added == set(), source


def test_the_exported_cohort_is_an_archive_radtl_index_reads_whole(cohort, tmp_path):
    result = subprocess.run([sys.executable, "-m", "radtl.cli", "index", str(cohort), str(tmp_path / "db"),
                             "--progress", "False"], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 0, result.stderr
    rows = query(tmp_path / "db", "SELECT path, status FROM dicom ORDER BY path")
    assert set(rows[rows.path.str.endswith(".dcm")].status) == {"ok"} and rows.path.str.endswith(".dcm").sum() == 4
    assert sorted(Path(p).name for p in rows[rows.status != "ok"].path) == ["export_manifest.csv", "provenance.json"]


@pytest.mark.filterwarnings("ignore:.*VR UI:UserWarning")
@pytest.mark.parametrize("bad", ["../../etc/passwd", "1.2.3/../..", "", "1.2." + "3" * 70])
def test_a_new_uid_that_is_not_a_uid_never_names_a_path(bad):
    ds = pydicom.Dataset()
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID = "2.25.1", "2.25.2", bad
    with pytest.raises(DeidentificationError, match="invalid-uid"):
        cohort_path(ds)


# ---------------------------------------------------------------------------------------------
# pixels that may carry text


def test_burned_in_files_are_left_out_by_default_with_their_reason(cohort):
    rows = real_sources(cohort)
    for source in ("p2/screenshot.dcm", "p2/us.dcm"):
        assert rows[source]["status"] == ExportStatus.BURNED_IN.value and rows[source]["path"] == ""
        assert rows[source]["reason"]
    assert len(exported_files(cohort)) == 4


def test_allow_burned_in_exports_them_flagged(cohort_with_burned_in):
    rows = real_sources(cohort_with_burned_in)
    for source in ("p2/screenshot.dcm", "p2/us.dcm"):
        assert rows[source]["status"] == ExportStatus.OK_BURNED_IN.value and rows[source]["reason"]
        assert (cohort_with_burned_in / rows[source]["path"]).is_file()


# ---------------------------------------------------------------------------------------------
# options


def test_retain_longitudinal_dates_keeps_each_patients_intervals(index, tmp_path):
    out = tmp_path / "cohort"
    export_cohort(index, "SELECT path FROM dicom WHERE path LIKE '%ct_1.dcm'", out,
                  options="retain-longitudinal-dates", progress=False)
    rows = real_sources(out)
    dates = [pydicom.dcmread(out / rows[s]["path"]).StudyDate for s in ("Quimby_Zyxwvut/ct_1.dcm", "study_b/ct_1.dcm")]
    assert days_between(*dates) == days_between(*FIRST_PATIENT_STUDY_DATES)
    assert set(dates).isdisjoint(FIRST_PATIENT_STUDY_DATES)


# ---------------------------------------------------------------------------------------------
# the keys stay out of the cohort


def test_a_keys_folder_inside_out_is_refused(index, tmp_path):
    with pytest.raises(RadtlError, match="inside"):
        export_cohort(index, EVERYTHING, tmp_path / "cohort", keys=tmp_path / "cohort" / "keys", progress=False)
    assert not (tmp_path / "cohort").exists()


def test_the_salt_and_mapping_are_beside_out_never_in_it(cohort):
    keys = default_keys_folder(cohort)
    assert keys.parent == cohort.parent and (keys / "pseudonyms.csv").is_file()
    salt = (keys / "salt").read_bytes()
    assert not any(salt in path.read_bytes() for path in cohort.rglob("*") if path.is_file())
    assert not [p for p in cohort.rglob("*") if p.name in ("salt", "pseudonyms.csv", "sources.csv")]


def test_withhold_mapping_writes_no_pseudonyms(index, tmp_path):
    export_cohort(index, EVERYTHING, tmp_path / "cohort", withhold_mapping=True, progress=False)
    assert not (tmp_path / "cohort.keys" / "pseudonyms.csv").exists()
    assert json.loads((tmp_path / "cohort" / "provenance.json").read_text())["mapping_withheld"] is True


def test_a_source_path_holding_the_patients_name_is_withheld_from_the_manifest(cohort):
    listed = {row["source"] for row in manifest(cohort)}
    assert "withheld" in listed and "p2/ct_1.dcm" in listed
    assert not [source for source in listed if "Quimby" in source]
    assert {"Quimby_Zyxwvut/ct_1.dcm", "Quimby_Zyxwvut/ct_2.dcm"} <= set(real_sources(cohort))


def test_a_query_naming_a_patient_is_withheld_from_the_provenance(index, tmp_path):
    sql = f"SELECT path FROM dicom WHERE PatientID = '{PLANTED['patient id']}'"
    export_cohort(index, sql, tmp_path / "cohort", progress=False)
    assert json.loads((tmp_path / "cohort" / "provenance.json").read_text())["query"] == "withheld"
    assert PLANTED["patient id"] in (tmp_path / "cohort.keys" / "queries.csv").read_text()


@pytest.mark.parametrize("sql, identifies", [
    ("SELECT path FROM dicom WHERE Modality = 'CT' AND path LIKE '%ct_1.dcm'", False),
    ("SELECT path FROM dicom WHERE path NOT LIKE '%Vexlarn%'", True),  # another patient's name, not selected
    (f"SELECT path FROM dicom WHERE StudyDescription <> '{PLANTED['second accession number']}'", True),
    ("SELECT path FROM dicom WHERE patientbirthdate > '1900'", True),
])
def test_a_query_that_may_name_any_patient_of_the_index_is_recognised(index, sql, identifies):
    assert query_identifies(index, sql) is identifies


# ---------------------------------------------------------------------------------------------
# provenance


def test_provenance_records_the_query_index_settings_counts_and_each_files_hash(index, cohort):
    provenance = json.loads((cohort / "provenance.json").read_text())
    assert provenance["query"] == EVERYTHING and provenance["profile"] == "basic"
    assert provenance["index"]["path"] == str(index.resolve()) and provenance["index"]["format"] == 1
    assert provenance["counts"] == {"burned-in": 2, "ok": 4} and provenance["method_codes"]
    assert provenance["files"] == {p.relative_to(cohort).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
                                   for p in exported_files(cohort)}


# ---------------------------------------------------------------------------------------------
# bad input is a row; a user error is refused


@pytest.fixture(scope="module")
def messy_index(tmp_path_factory) -> tuple[Path, int]:
    """Three good CT slices, a damaged copy of one, and a larger CT; returns the index and a size limit only the
    larger one exceeds."""
    root = tmp_path_factory.mktemp("messy") / "archive"
    good = write_planted_archive(root, patients=1)
    (root / "damaged.dcm").write_bytes(good[0].read_bytes()[:400])
    big = Study("big", "BIG^PATIENT", "BIG-1", "19700101", "M", "CT chest")
    write(ct_image(big, "slice", 1, np.zeros((64, 64)), z=0.0), root / "big.dcm")
    db = root.parent / "index"
    build_index(root, db, progress=False)
    return db, max(p.stat().st_size for p in good) + 1


def test_a_damaged_file_and_one_over_the_size_limit_get_rows_and_the_rest_is_exported(messy_index, tmp_path):
    db, limit = messy_index
    summary = export_cohort(db, EVERYTHING, tmp_path / "cohort", max_file_bytes=limit, progress=False)
    rows = real_sources(tmp_path / "cohort")
    assert rows["big.dcm"]["status"] == "error" and rows["big.dcm"]["reason"].startswith("too-large")
    assert rows["damaged.dcm"]["status"] == "error" and rows["damaged.dcm"]["reason"]
    assert summary.statuses == {"ok": 3, "error": 2} and len(exported_files(tmp_path / "cohort")) == 3


def test_a_reason_never_repeats_the_source_path_or_an_identifying_value(tmp_path):
    root = tmp_path / "archive"
    gone = write_planted_archive(root, patients=1)[0]
    build_index(root, tmp_path / "index", progress=False)
    gone.unlink()  # indexed, then removed: reading it fails with an OSError that names the file
    export_cohort(tmp_path / "index", EVERYTHING, tmp_path / "cohort", progress=False)
    row = real_sources(tmp_path / "cohort")["Quimby_Zyxwvut/ct_1.dcm"]
    assert row["status"] == "error" and row["reason"].startswith("unreadable")
    assert "quimby" not in (tmp_path / "cohort" / "export_manifest.csv").read_text().lower()


def test_a_short_identifying_value_is_withheld_as_a_word_not_inside_other_numbers():
    from radtl.cohort.export import _scrubbed

    reason = _scrubbed("Burned In Annotation (0028,0301) is YES; patient 1 of 3", ["1"])
    assert reason == "Burned In Annotation (0028,0301) is YES; patient [withheld] of 3"


def test_a_refusal_quoting_an_identifying_value_is_recorded_without_it(index, tmp_path, monkeypatch):
    from radtl.cohort import export

    def refuse(self, ds):
        raise DeidentificationError(f"refused: odd value in {ds.PatientName} / {ds.PatientID}")

    monkeypatch.setattr(export.Deidentifier, "deidentify", refuse)
    export_cohort(index, "SELECT path FROM dicom WHERE path LIKE '%ct_1.dcm'", tmp_path / "cohort", progress=False)
    reasons = {row["reason"] for row in manifest(tmp_path / "cohort")}
    assert reasons == {"refused: odd value in [withheld] / [withheld]"}


def test_a_query_without_a_path_column_is_refused_before_anything_is_written(index, tmp_path):
    with pytest.raises(ExportError, match="no path column"):
        export_cohort(index, "SELECT Modality FROM dicom", tmp_path / "cohort", progress=False)
    assert not (tmp_path / "cohort").exists() and not (tmp_path / "cohort.keys").exists()


def test_a_query_that_writes_is_refused(index, tmp_path):
    with pytest.raises(ExportError, match="query failed"):
        export_cohort(index, f"COPY dicom TO '{tmp_path / 'x.csv'}'", tmp_path / "cohort", progress=False)
    assert not (tmp_path / "x.csv").exists()


# ---------------------------------------------------------------------------------------------
# idempotent and resumable


def test_a_rerun_writes_nothing_new_and_says_so(index, cohort):
    before = {p: p.stat().st_mtime_ns for p in exported_files(cohort)}
    summary = export_cohort(index, EVERYTHING, cohort, progress=False)
    assert summary.written == 0 and summary.already_exported == 4 and "nothing new written" in str(summary)
    assert {p: p.stat().st_mtime_ns for p in exported_files(cohort)} == before
    assert {row["reason"] for row in manifest(cohort) if row["status"] == "ok"} == {"already exported"}


def test_a_run_killed_half_way_is_completed_by_running_it_again(index, tmp_path, monkeypatch):
    from radtl.cohort import export

    real = export.Deidentifier.deidentify
    calls = []

    def interrupted(self, ds):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(self, ds)

    out = tmp_path / "cohort"
    monkeypatch.setattr(export.Deidentifier, "deidentify", interrupted)
    with pytest.raises(KeyboardInterrupt):
        export_cohort(index, EVERYTHING, out, progress=False)
    assert len(manifest(out)) == 2 and len(exported_files(out)) == 2
    monkeypatch.setattr(export.Deidentifier, "deidentify", real)
    summary = export_cohort(index, EVERYTHING, out, progress=False)
    assert (summary.written, summary.already_exported) == (2, 2) and len(manifest(out)) == 6


def test_worker_processes_write_the_same_cohort_as_one_process(index, tmp_path):
    one = export_cohort(index, EVERYTHING, tmp_path / "one", keys=tmp_path / "keys", progress=False)
    (tmp_path / "keys2").mkdir(mode=0o700)  # the same salt, an empty mapping: the workers' patients must reach it
    shutil.copy2(tmp_path / "keys" / "salt", tmp_path / "keys2" / "salt")
    two = export_cohort(index, EVERYTHING, tmp_path / "two", keys=tmp_path / "keys2", workers=2, progress=False)
    assert one.statuses == two.statuses and two.written == 4
    files = {p.relative_to(tmp_path / "one"): p.read_bytes() for p in exported_files(tmp_path / "one")}
    assert {p.relative_to(tmp_path / "two"): p.read_bytes() for p in exported_files(tmp_path / "two")} == files
    assert manifest(tmp_path / "two") == manifest(tmp_path / "one")
    with open(tmp_path / "keys2" / "pseudonyms.csv", newline="") as handle:
        assert len(list(csv.DictReader(handle))) == 2


def test_a_half_written_file_of_a_killed_run_is_removed_by_the_next(index, cohort):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    half = exported_files(cohort)[0].with_name(f"x.dcm.{dead.stdout.strip()}.tmp")
    half.write_bytes(b"half of a de-identified file")
    export_cohort(index, EVERYTHING, cohort, progress=False)
    assert not half.exists()


def test_two_exports_into_one_out_at_once_are_refused(index, cohort):
    with folder_lock(cohort, "`radtl export`"):
        with pytest.raises(FolderBusyError, match="another `radtl export` is writing"):
            export_cohort(index, EVERYTHING, cohort, progress=False)


def test_out_refuses_other_options_than_it_was_exported_with(index, cohort):
    with pytest.raises(ExportError, match="retain-longitudinal-dates"):
        export_cohort(index, EVERYTHING, cohort, options="retain-longitudinal-dates", progress=False)


# ---------------------------------------------------------------------------------------------
# the command line


def run_cli(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "radtl.cli", *arguments], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)})


@pytest.mark.parametrize("sql, extra, message", [
    ("SELECT Modality FROM dicom", (), "no path column"),
    ("SELECT path FROM nowhere", (), "query failed"),
    (EVERYTHING, ("--options", "retain-everything"), "retain-everything"),
    (EVERYTHING, ("--keys", "{out}/keys"), "inside"),
    (EVERYTHING, ("--profile", "clean"), "unknown profile"),
])
def test_a_user_error_is_one_line_and_exit_status_2(index, tmp_path, sql, extra, message):
    out = tmp_path / "cohort"
    result = run_cli("export", str(index), sql, str(out), *(e.format(out=out) for e in extra))
    assert result.returncode == 2 and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_the_command_exports_with_dashed_options_and_prints_the_counts(index, tmp_path):
    result = run_cli("export", str(index), EVERYTHING, str(tmp_path / "cohort"), "--allow-burned-in",
                     "--withhold-mapping", "--options", "retain-longitudinal-dates,clean-descriptions",
                     "--progress", "False")
    assert result.returncode == 0, result.stderr
    assert "6 file(s) written" in result.stdout and "ok-burned-in 2" in result.stdout
    assert not (tmp_path / "cohort.keys" / "pseudonyms.csv").exists()
