"""radtl pull against a real Orthanc (DICOMweb, C-GET, C-MOVE) loaded with a tiny synthetic archive, and against
stubs for the hostile answers."""

from __future__ import annotations

import csv
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from pydicom import dcmread

from radtl.cohort.pull import PullIncomplete, RateLimiter, parse_query, pull_cohort
from radtl.dicom import pacs
from radtl.dicom.pacs import MoveDestination, PacsError, send
from radtl.dicom.synthetic.archive import ArchiveFile, write_archive
from radtl.errors import RadtlError, UsageError
from tests.support.http import QuietHandler, serving
from tests.support.orthanc import OrthancServer, free_port, fresh_orthanc_fixture, orthanc_fixture  # noqa: F401
from tests.support.paths import REPO


@dataclass(frozen=True)
class Instance:
    study: str
    series: str
    sop: str
    modality: str
    body_part: str
    accession: str
    study_date: str


def load_archive(server: OrthancServer, folder: Path) -> list[Instance]:
    """Four studies (CT head, CT chest, CT abdomen, MR brain) of 2 series x 3 instances of 32x32, stored by C-STORE."""
    files: list[ArchiveFile] = write_archive(folder, studies=4, series_per_study=2, instances_per_series=3,
                                             body_part_missing=0.0, image_size=32, seed=25)
    send([f.path for f in files], server.dicom_url)
    instances = []
    for f in files:
        ds = dcmread(f.path, stop_before_pixels=True)
        instances.append(Instance(ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID, ds.Modality,
                                  ds.BodyPartExamined, ds.AccessionNumber, ds.StudyDate))
    return instances


@pytest.fixture(scope="module")
def archive(orthanc, tmp_path_factory) -> list[Instance]:
    return load_archive(orthanc, tmp_path_factory.mktemp("archive"))


def pulled(out: Path) -> dict[tuple[str, str], list[str]]:
    """``OUT/<study>/<series>/<sop>.dcm`` as {(study, series): [sop, ...]} (the partial folder and manifest aside)."""
    found: dict[tuple[str, str], list[str]] = {}
    for path in sorted(out.glob("*/*/*")):
        if path.parts[-3] != ".partial":
            found.setdefault((path.parts[-3], path.parts[-2]), []).append(path.name)
    return found


def expected(instances: list[Instance], keep) -> dict[tuple[str, str], list[str]]:
    found: dict[tuple[str, str], list[str]] = {}
    for instance in sorted(instances, key=lambda i: i.sop):
        if keep(instance):
            found.setdefault((instance.study, instance.series), []).append(f"{instance.sop}.dcm")
    return found


def manifest_rows(out: Path) -> list[dict[str, str]]:
    with (out / "pull_manifest.csv").open(newline="") as file:
        return list(csv.DictReader(file))


def is_ct_chest(instance: Instance) -> bool:
    return instance.modality == "CT" and instance.body_part == "CHEST"


@pytest.fixture
def sleeps(monkeypatch) -> list[float]:
    """The backoff delays, recorded instead of slept."""
    delays: list[float] = []
    monkeypatch.setattr(pacs, "sleep", delays.append)
    return delays


# ---- what is pulled ----


def test_dicomweb_query_pulls_exactly_the_matching_series(orthanc, archive, tmp_path):
    summary = pull_cohort(orthanc.dicomweb_url, tmp_path, query="Modality=CT BodyPartExamined=CHEST")
    assert pulled(tmp_path) == expected(archive, is_ct_chest)
    assert summary.statuses == {"complete": 2} and summary.instances == 6
    first = next((tmp_path / archive[0].study).glob("*/*.dcm"), None) or next(tmp_path.glob("*/*/*.dcm"))
    assert dcmread(first).pixel_array.shape == (32, 32)


def test_c_get_query_pulls_exactly_the_matching_series(orthanc, archive, tmp_path):
    pull_cohort(orthanc.dicom_url, tmp_path, query="Modality=CT StudyDate=20100101-20111231")
    assert pulled(tmp_path) == expected(archive, lambda i: i.modality == "CT" and i.study_date <= "20111231")


def test_c_move_query_pulls_exactly_the_matching_series(orthanc, archive, tmp_path):
    pull_cohort(orthanc.dicom_url, tmp_path, query="Modality=MR", retrieve="move",
                listen=f"127.0.0.1:{orthanc.radtl_port}")
    assert pulled(tmp_path) == expected(archive, lambda i: i.modality == "MR")


@pytest.mark.parametrize("retrieve", ["get", "move"])
def test_a_dimse_pull_leaves_no_temporary_file_behind(orthanc, archive, tmp_path, monkeypatch, retrieve):
    """pynetdicom writes each received instance to a temporary file first (radtl asks it to, to bound memory)."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    pull_cohort(orthanc.dicom_url, tmp_path / "out", query="Modality=MR", retrieve=retrieve,
                listen=f"127.0.0.1:{orthanc.radtl_port}")
    assert pulled(tmp_path / "out") == expected(archive, lambda i: i.modality == "MR")
    assert list((tmp_path / "tmp").iterdir()) == []


def test_a_c_move_that_cannot_reach_radtl_says_the_pacs_must_know_its_address(orthanc, archive, tmp_path, sleeps):
    with pytest.raises(PullIncomplete, match="2 refused"):  # Orthanc dials radtl_port, radtl listens elsewhere
        pull_cohort(orthanc.dicom_url, tmp_path, query="Modality=MR", retrieve="move",
                    listen=f"127.0.0.1:{free_port()}")
    rows = manifest_rows(tmp_path)
    assert all("the PACS must know AE title 'RADTL' at the host and port radtl listens on" in r["reason"]
               for r in rows) and sleeps == []


@pytest.mark.parametrize("retrieve", ["get", "move"])
def test_radiographs_are_retrieved_by_dimse_too(orthanc, tmp_path, retrieve):
    """C-GET proposes, and the C-MOVE destination accepts, the storage classes of a cohort, not only CT and MR."""
    radiographs = [f for f in write_archive(tmp_path / "archive", studies=10, series_per_study=1,
                                            instances_per_series=1, image_size=8, seed=9) if f.modality in ("CR", "DX")]
    send([f.path for f in radiographs], orthanc.dicom_url)
    studies = sorted({f.study_uid for f in radiographs})
    summary = pull_cohort(orthanc.dicom_url, tmp_path / "out", query="StudyInstanceUID=" + "\\".join(studies),
                          retrieve=retrieve, listen=f"127.0.0.1:{orthanc.radtl_port}")
    assert summary.statuses == {"complete": 4} and sorted(study for study, _ in pulled(tmp_path / "out")) == studies


@pytest.mark.parametrize("service", ["dicom_url", "dicomweb_url"])
def test_a_list_of_study_uids_in_the_query_pulls_those_studies(orthanc, archive, tmp_path, service):
    chosen = {archive[0].study, archive[-1].study}
    pull_cohort(getattr(orthanc, service), tmp_path, query="StudyInstanceUID=" + "\\".join(sorted(chosen)))
    assert pulled(tmp_path) == expected(archive, lambda i: i.study in chosen)


@pytest.mark.parametrize("column", ["StudyInstanceUID", "AccessionNumber"])
def test_studies_csv_pulls_every_series_of_the_listed_studies(orthanc, archive, tmp_path, column):
    chosen = [archive[0], archive[-1]]
    (tmp_path / "studies.csv").write_text(f"{column}\n" + "".join(
        f"{i.study if column == 'StudyInstanceUID' else i.accession}\n" for i in chosen))
    pull_cohort(orthanc.dicomweb_url, tmp_path / "out", studies=tmp_path / "studies.csv")
    assert pulled(tmp_path / "out") == expected(archive, lambda i: i.study in {c.study for c in chosen})


def test_series_csv_pulls_only_the_listed_series_and_reports_the_unknown_one(orthanc, archive, tmp_path):
    chosen = archive[3]
    (tmp_path / "series.csv").write_text(f"StudyInstanceUID,SeriesInstanceUID\n{chosen.study},{chosen.series}\n"
                                         f"{chosen.study},1.2.3.4.5\n")
    summary = pull_cohort(orthanc.dicom_url, tmp_path / "out", series=tmp_path / "series.csv")
    assert pulled(tmp_path / "out") == expected(archive, lambda i: i.series == chosen.series)
    assert summary.statuses == {"complete": 1, "not-found": 1}
    assert [r["reason"] for r in manifest_rows(tmp_path / "out") if r["status"] == "not-found"] == [
        "nothing matches SeriesInstanceUID=1.2.3.4.5"]


def test_the_manifest_has_one_row_per_series_with_counts_and_status(orthanc, archive, tmp_path):
    pull_cohort(orthanc.dicomweb_url, tmp_path, query="Modality=CT BodyPartExamined=CHEST")
    rows = manifest_rows(tmp_path)
    assert sorted((r["StudyInstanceUID"], r["SeriesInstanceUID"]) for r in rows) == sorted(
        expected(archive, is_ct_chest))
    assert {(r["Modality"], r["expected"], r["received"], r["status"], r["reason"]) for r in rows} == {
        ("CT", "3", "3", "complete", "")}


# ---- resumable, idempotent ----


def test_a_second_pull_fetches_nothing_and_keeps_the_manifest(orthanc, archive, tmp_path):
    pull_cohort(orthanc.dicom_url, tmp_path, query="Modality=CT BodyPartExamined=CHEST")
    before = manifest_rows(tmp_path)
    again = pull_cohort(orthanc.dicom_url, tmp_path, query="Modality=CT BodyPartExamined=CHEST")
    assert again.instances == 0 and manifest_rows(tmp_path) == before
    assert pulled(tmp_path) == expected(archive, is_ct_chest)


@pytest.mark.parametrize("service", ["dicom_url", "dicomweb_url"])
def test_an_instance_already_in_the_partial_folder_is_not_fetched_again(orthanc, archive, tmp_path, service):
    first = next(i for i in archive if is_ct_chest(i))
    partial = tmp_path / ".partial" / first.series
    partial.mkdir(parents=True)
    (partial / f"{first.sop}.dcm").write_bytes(b"kept as it is")  # not fetched again, so not overwritten
    summary = pull_cohort(getattr(orthanc, service), tmp_path, query="Modality=CT BodyPartExamined=CHEST")
    assert summary.instances == 5 and pulled(tmp_path) == expected(archive, is_ct_chest)
    assert (tmp_path / first.study / first.series / f"{first.sop}.dcm").read_bytes() == b"kept as it is"
    assert not any(partial.parent.iterdir())


def test_temporary_files_a_killed_pull_left_are_removed_not_moved_into_the_series(orthanc, archive, tmp_path):
    first = next(i for i in archive if is_ct_chest(i))
    partial = tmp_path / ".partial" / first.series
    partial.mkdir(parents=True)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()  # the pid of a process that has ended
    (partial / f"{first.sop}.dcm.{dead}.tmp").write_bytes(b"half")
    (partial / f".{first.sop}.body.{dead}.tmp").write_bytes(b"half")
    pull_cohort(orthanc.dicomweb_url, tmp_path, query="Modality=CT BodyPartExamined=CHEST")
    assert pulled(tmp_path) == expected(archive, is_ct_chest)
    assert not list(tmp_path.rglob("*.tmp"))


def test_two_pulls_into_one_folder_at_once_are_refused(tmp_path):
    from radtl.atomic import folder_lock

    with folder_lock(tmp_path, "test"), pytest.raises(RadtlError, match="another `radtl pull` is writing"):
        pull_cohort("http://127.0.0.1:9/dicom-web", tmp_path, query="Modality=CT")


def test_the_progress_bar_counts_instances(orthanc, archive, tmp_path, capsys):
    pull_cohort(orthanc.dicomweb_url, tmp_path, query="Modality=CT BodyPartExamined=CHEST", progress=True)
    assert "6/6" in capsys.readouterr().err


def radtl_pull(*arguments: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "radtl.cli", "pull", *arguments], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})


def wait_for(condition, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def dcm_files(out: Path) -> list[Path]:
    return [p for p in out.rglob("*") if p.is_file() and p.name != "pull_manifest.csv"]


def test_a_killed_pull_rerun_ends_with_every_instance_once_fetching_only_what_was_missing(orthanc, archive, tmp_path):
    query = "Modality=CT StudyDate=20100101-20111231"  # 4 series, 12 instances
    process = radtl_pull(orthanc.dicomweb_url, str(tmp_path), "--query", query, "--rate", "5", "--workers", "1")
    try:
        wait_for(lambda: len([p for p in dcm_files(tmp_path) if p.suffix == ".dcm"]) >= 4)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    before = {p.name for p in dcm_files(tmp_path) if p.suffix == ".dcm"}
    assert 4 <= len(before) < 12
    summary = pull_cohort(orthanc.dicomweb_url, tmp_path, query=query)
    want = expected(archive, lambda i: i.modality == "CT" and i.study_date <= "20111231")
    assert pulled(tmp_path) == want
    files = [p.name for p in dcm_files(tmp_path)]
    assert sorted(files) == sorted(name for names in want.values() for name in names)  # once each, no leftovers
    assert summary.instances == 12 - len(before)
    assert {r["status"] for r in manifest_rows(tmp_path)} == {"complete"}


# ---- failures ----


def test_orthanc_stopped_mid_pull_fails_in_one_line_keeps_complete_series_and_a_rerun_finishes(fresh_orthanc,
                                                                                               tmp_path):
    archive = load_archive(fresh_orthanc, tmp_path / "archive")
    out, query = tmp_path / "out", "Modality=CT"  # 6 series, 18 instances
    process = radtl_pull(fresh_orthanc.dicomweb_url, str(out), "--query", query, "--rate", "4", "--workers", "1",
                         "--attempts", "2")
    wait_for(lambda: len(pulled(out)) >= 1)
    fresh_orthanc.stop_process()
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 2
    lines = stderr.strip().splitlines()  # dicomweb-client logs its searches at INFO before it
    assert [line for line in lines if line.startswith("radtl")] == lines[-1:]
    assert lines[-1].startswith("radtl pull: pulled ") and "failed" in lines[-1]
    assert "run the same command again" in lines[-1]
    rows = manifest_rows(out)
    kept = pulled(out)
    assert kept and all(files == expected(archive, lambda i: True)[key] for key, files in kept.items())
    failed = [r for r in rows if r["status"] == "failed"]
    assert failed and all(r["reason"] for r in failed)
    fresh_orthanc.restart()
    pull_cohort(fresh_orthanc.dicomweb_url, out, query=query)
    assert pulled(out) == expected(archive, lambda i: i.modality == "CT")
    assert {r["status"] for r in manifest_rows(out)} == {"complete"}


def test_an_unknown_calling_aet_is_refused_at_once_without_retry(orthanc, archive, tmp_path, sleeps):
    with pytest.raises(PullIncomplete) as raised:
        pull_cohort(f"{orthanc.dicom_url}?calling=STRANGER", tmp_path, query="Modality=MR")
    (row,) = manifest_rows(tmp_path)
    assert "1 refused" in str(raised.value), (str(raised.value), row, sleeps)
    assert row["status"] == "refused" and "Calling AE title not recognised" in row["reason"] and sleeps == []


def test_a_pacs_not_listening_is_retried_with_backoff_then_fails(tmp_path, sleeps):
    with pytest.raises(PacsError, match="after 3 attempts"):
        pull_cohort(f"dicom://ORTHANC@127.0.0.1:{free_port()}", tmp_path, query="Modality=MR", backoff_s=0.01)
    assert sleeps == [0.01, 0.02]


@pytest.mark.parametrize("service", ["dicom_url", "dicomweb_url"])
def test_an_instance_over_the_size_limit_is_refused_with_its_reason(orthanc, archive, tmp_path, service):
    with pytest.raises(PullIncomplete, match="2 refused"):
        pull_cohort(getattr(orthanc, service), tmp_path, query="Modality=CT BodyPartExamined=CHEST",
                    max_instance_bytes=1000)
    rows = manifest_rows(tmp_path)
    assert [r["status"] for r in rows] == ["refused", "refused"]
    assert all("3 instance(s) refused" in r["reason"] and "more than the limit" in r["reason"] for r in rows)
    assert pulled(tmp_path) == {}


class EndlessResponse:
    """A response whose body never ends (a hostile or broken PACS)."""

    headers: dict[str, str] = {}

    def iter_content(self, size: int) -> Iterator[bytes]:
        while True:
            yield b"x" * size


def test_a_streamed_answer_is_cut_at_the_limit_without_reading_the_rest(tmp_path):
    with pytest.raises(pacs._InstanceRefused, match="more than the limit of 3000000 bytes"):
        pacs._stream_to_file(EndlessResponse(), tmp_path / "body", 3_000_000, "1.2.3")
    assert (tmp_path / "body").stat().st_size <= 3_000_000


def test_the_instance_is_the_first_part_of_a_multipart_related_answer(tmp_path):
    body = tmp_path / "body"
    body.write_bytes(b"--b1\r\nContent-Type: application/dicom\r\n\r\nDICM\r\n--DATA\r\n--b1--\r\n")
    boundary = pacs._multipart_boundary('multipart/related; type="application/dicom"; boundary="b1"')
    pacs._copy_single_part(body, boundary, tmp_path / "instance", 100, "1.2.3")
    assert (tmp_path / "instance").read_bytes() == b"DICM\r\n--DATA"
    with pytest.raises(pacs._InstanceRefused, match="more than the limit of 5"):
        pacs._copy_single_part(body, boundary, tmp_path / "instance", 5, "1.2.3")


@contextmanager
def qido_paging(page_at: Callable[[int], list[dict]]) -> Iterator[str]:
    """A DICOMweb URL on 127.0.0.1 whose every search is answered with ``page_at(offset)`` as DICOM JSON."""

    class Handler(QuietHandler):
        def do_GET(self):
            self.answer_json(page_at(int(parse_qs(urlsplit(self.path).query).get("offset", ["0"])[0])))

    with serving(Handler) as port:
        yield f"http://127.0.0.1:{port}/dicom-web"


def qido_answering(answer: list[dict]):
    """A DICOMweb URL whose every search is answered with ``answer`` (and its next pages with nothing)."""
    return qido_paging(lambda offset: answer if offset == 0 else [])


def study(number: int) -> dict:
    return {"0020000D": {"vr": "UI", "Value": [f"1.2.826.0.1.3680043.8.498.{number}"]}}


def test_a_pacs_that_ignores_the_offset_ends_the_search_after_the_repeated_page():
    same_page = [study(1), study(2)]
    with qido_paging(lambda offset: same_page) as url:
        found = pacs._qido(pacs.parse_pacs_url(url), 5.0, "search_for_studies")
    assert [ds.StudyInstanceUID for ds in found] == ["1.2.826.0.1.3680043.8.498.1", "1.2.826.0.1.3680043.8.498.2"]


def test_a_qido_answer_over_the_size_bound_is_refused_before_it_is_decoded(monkeypatch):
    monkeypatch.setattr(pacs, "MAX_QIDO_PAGE_BYTES", 10_000)
    with qido_paging(lambda offset: [study(i) for i in range(1000)] if offset == 0 else []) as url:
        with pytest.raises(pacs._Refused, match="more than 10000 bytes"):
            pacs._qido(pacs.parse_pacs_url(url), 5.0, "search_for_studies")


@pytest.mark.parametrize("answer, complaint", [({"not": "an array"}, "not an array"), ([["nested"]], "not an array"),
                                               ([{"0020000D": {"Value": ["1.2.3"]}}], "not DICOM JSON")])
def test_a_qido_answer_that_is_not_dicom_json_is_refused(answer, complaint):
    with qido_paging(lambda offset: answer if offset == 0 else []) as url:
        with pytest.raises(pacs._Refused, match=complaint):
            pacs._qido(pacs.parse_pacs_url(url), 5.0, "search_for_studies")


def test_a_uid_that_is_not_one_never_becomes_part_of_a_qido_path():
    with pytest.raises(pacs._Refused, match="is not a UID"):
        pacs._qido_url(pacs.parse_pacs_url("http://127.0.0.1:9/dicom-web"), "search_for_series", "1.2/../../x")


def test_a_pacs_that_never_stops_answering_is_refused_at_the_bound(monkeypatch):
    monkeypatch.setattr(pacs, "MAX_QIDO_RESULTS", 2500)
    with qido_paging(lambda offset: [study(offset + i) for i in range(1000)]) as url:
        with pytest.raises(pacs._Refused, match="more than 2500 results"):
            pacs._qido(pacs.parse_pacs_url(url), 5.0, "search_for_studies")


@pytest.mark.filterwarnings("ignore:Invalid value for VR UI")
def test_a_pacs_answer_with_a_uid_that_is_not_a_uid_never_becomes_a_path(tmp_path):
    hostile = [{"0020000D": {"vr": "UI", "Value": ["../escaped"]}, "0020000E": {"vr": "UI", "Value": ["../x"]},
                "00080018": {"vr": "UI", "Value": ["../y"]}}]
    with qido_answering(hostile) as url, pytest.raises(PullIncomplete, match="1 refused"):
        pull_cohort(url, tmp_path / "out", query="Modality=CT")
    (row,) = manifest_rows(tmp_path / "out")
    assert "not a UID: '../escaped'" in row["reason"]
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["out", "pull_manifest.csv"]


def test_the_move_destination_listens_on_127_0_0_1_and_refuses_instances_it_did_not_ask_for(orthanc, tmp_path):
    one = write_archive(tmp_path, studies=1, series_per_study=1, instances_per_series=1, image_size=8, seed=7)[0]
    with MoveDestination(orthanc.dicom_url) as destination:
        assert destination._server.server_address[0] == "127.0.0.1"
        with pytest.raises(PacsError, match="status 0xC001"):  # the PACS's AE title, but nothing was asked for
            send([one.path], f"dicom://RADTL@127.0.0.1:{destination.port}?calling=ORTHANC", attempts=1)
    assert len(destination.refused) == 1 and "not asked for" in destination.refused[0]


def test_credentials_come_from_the_environment_and_appear_in_no_log_manifest_or_error(tmp_path, monkeypatch,
                                                                                      caplog):
    from tests.support.orthanc import orthanc_executable

    with OrthancServer(orthanc_executable(), users={"alice": "pull-s3cret"}) as server:
        archive = load_archive(server, tmp_path / "archive")
        monkeypatch.setenv("RADTL_PACS_USER", "alice")
        monkeypatch.setenv("RADTL_PACS_PASSWORD", "pull-s3cret")
        with caplog.at_level(logging.DEBUG):
            pull_cohort(server.dicomweb_url, tmp_path / "good", query="Modality=MR")
        assert pulled(tmp_path / "good") == expected(archive, lambda i: i.modality == "MR")
        monkeypatch.setenv("RADTL_PACS_PASSWORD", "wrong-s3cret")
        with caplog.at_level(logging.DEBUG), pytest.raises(PullIncomplete, match="1 refused") as raised:
            pull_cohort(server.dicomweb_url, tmp_path / "bad", query="Modality=MR")
    (row,) = manifest_rows(tmp_path / "bad")
    assert "refused the credentials of user 'alice'" in row["reason"]
    for text in (caplog.text, str(raised.value), raised.value.hint,
                 *((tmp_path / run / "pull_manifest.csv").read_text() for run in ("good", "bad"))):
        assert "s3cret" not in text


# ---- options ----


def test_a_query_splits_study_and_series_keys_and_checks_values():
    assert parse_query('Modality=CT StudyDate=20200101-20201231 "SeriesDescription=CT HEAD*"') == (
        {"StudyDate": "20200101-20201231"}, {"Modality": "CT", "SeriesDescription": "CT HEAD*"})
    for bad, complaint in [("StudyDate=2020", "date"), ("StudyDate=20201399", "not a date"),
                           ("Modality=ct", "capital"), ("StudyInstanceUID=../x", "UID"),
                           ("Modaliti=CT", "did you mean Modality")]:
        with pytest.raises(UsageError, match=complaint):
            parse_query(bad)


def test_a_lone_wildcard_is_universal_matching_and_selects_nothing():
    assert parse_query("Modality=* StudyDate=20200101-") == ({"StudyDate": "20200101-"}, {})


@pytest.mark.parametrize("service", ["dicom_url", "dicomweb_url"])
def test_modality_wildcard_pulls_every_series_by_either_protocol(orthanc, archive, tmp_path, service, recwarn):
    pull_cohort(getattr(orthanc, service), tmp_path, query="Modality=* StudyDate=19000101-20991231")
    assert pulled(tmp_path).items() >= expected(archive, lambda i: True).items()  # other tests' studies too
    assert not [w for w in recwarn if "Invalid value for VR" in str(w.message)]


def test_exactly_one_selection_is_required(tmp_path):
    with pytest.raises(UsageError, match="exactly one of --query, --studies and --series"):
        pull_cohort("http://127.0.0.1:9/dicom-web", tmp_path, query="Modality=CT", series=tmp_path / "s.csv")


def test_the_rate_limit_spaces_instances_over_all_workers():
    now, waits = [0.0], []
    limiter = RateLimiter(4.0, clock=lambda: now[0], sleep=waits.append)
    for _ in range(3):
        limiter.acquire()
    assert waits == [0.25, 0.5]


def test_cli_refuses_a_bad_query_key_and_two_selections_in_one_line(tmp_path):
    def run(*arguments):
        return subprocess.run([sys.executable, "-m", "radtl.cli", "pull", "http://127.0.0.1:9/dicom-web",
                               str(tmp_path), *arguments], capture_output=True, text=True,
                              env={**os.environ, "PYTHONPATH": str(REPO)})

    bad_key = run("--query", "Modaliti=CT")
    assert bad_key.returncode == 2 and bad_key.stderr.count("\n") == 1 and "did you mean Modality?" in bad_key.stderr
    both = run("--query", "Modality=CT", "--series", "s.csv")
    assert both.returncode == 2 and both.stderr.count("\n") == 1 and "exactly one of" in both.stderr
