"""radtl.dicom.pacs against a real Orthanc (DIMSE and DICOMweb), and against small fakes for the failures."""

from __future__ import annotations

import copy
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid
from pynetdicom import AE, StoragePresentationContexts, evt

from radtl.dicom import pacs
from radtl.dicom.pacs import PacsAddress, PacsError, fetch_series, find_instances, parse_pacs_url, send
from tests.support.http import QuietHandler, serving
from tests.support.orthanc import free_port, fresh_orthanc_fixture, orthanc_fixture  # noqa: F401 (fixtures orthanc, fresh_orthanc)

CT_SMALL = get_testdata_file("CT_small.dcm")
MR_JPEG2000 = get_testdata_file("MR_small_jp2klossless.dcm")


@dataclass
class Series:
    study_uid: str
    series_uid: str
    paths: list[Path]

    @property
    def sop_instance_uids(self) -> set[str]:
        return {dcmread(path, stop_before_pixels=True).SOPInstanceUID for path in self.paths}


def write_ct_series(directory: Path, slices: int = 3) -> Series:
    """A 3-slice CT series made of pydicom's CT_small, with fresh UIDs and positions 5 mm apart."""
    template = dcmread(CT_SMALL)
    study_uid, series_uid, frame_uid = generate_uid(), generate_uid(), generate_uid()
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(slices):
        ds = copy.deepcopy(template)
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study_uid, series_uid, frame_uid
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.InstanceNumber = index + 1
        x, y, z = template.ImagePositionPatient
        ds.ImagePositionPatient = [x, y, z + 5.0 * index]
        ds.SliceLocation = float(template.SliceLocation) + 5.0 * index
        paths.append(directory / f"slice{index}.dcm")
        ds.save_as(paths[-1])
    return Series(study_uid, series_uid, paths)


@pytest.fixture
def ct_series(tmp_path: Path) -> Series:
    return write_ct_series(tmp_path / "ct")


@contextmanager
def http_server_answering(status: int) -> Iterator[tuple[str, list[str]]]:
    """A DICOMweb URL on 127.0.0.1 whose every POST is answered with ``status``, and the list of POSTs seen."""
    posts: list[str] = []

    class Handler(QuietHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            posts.append(self.path)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

    with serving(Handler) as port:
        yield f"http://127.0.0.1:{port}/dicom-web", posts


@contextmanager
def storage_scp(status: int, abort_at: int | None = None) -> Iterator[tuple[str, list[str]]]:
    """A pynetdicom storage SCP on 127.0.0.1 answering C-STOREs with ``status``, and the UIDs it was sent.

    With ``abort_at=n`` it aborts the association instead of answering the n-th C-STORE (0-based), once.
    """
    received: list[str] = []
    calls = []

    def on_store(event) -> int:
        calls.append(event.request.AffectedSOPInstanceUID)
        if len(calls) - 1 == abort_at:
            event.assoc.abort()
        else:
            received.append(event.request.AffectedSOPInstanceUID)
        return status

    ae = AE("FAKEPACS")
    ae.supported_contexts = StoragePresentationContexts
    server = ae.start_server(("127.0.0.1", 0), block=False, evt_handlers=[(evt.EVT_C_STORE, on_store)])
    try:
        yield f"dicom://FAKEPACS@127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()


@pytest.fixture
def sleeps(monkeypatch) -> list[float]:
    """The backoff delays, recorded instead of slept."""
    delays: list[float] = []
    monkeypatch.setattr(pacs, "sleep", delays.append)
    return delays


# ---- URLs ----


def test_dimse_url_names_the_called_aet_and_defaults_the_calling_aet_to_radtl():
    assert parse_pacs_url("dicom://ORTHANC@pacs.example.org:104") == PacsAddress(
        "dicom://ORTHANC@pacs.example.org:104", "dicom", "pacs.example.org", 104, "ORTHANC", "RADTL"
    )


def test_dimse_url_takes_the_calling_aet_from_the_query():
    address = parse_pacs_url("dicom://ORTHANC@127.0.0.1:4242?calling=MYAET")
    assert (address.called_aet, address.calling_aet, address.is_dimse) == ("ORTHANC", "MYAET", True)


def test_dicoms_url_is_dimse_over_tls():
    address = parse_pacs_url("dicoms://ORTHANC@pacs.example.org:2762?calling=MYAET")
    assert (address.scheme, address.is_dimse, address.is_tls, address.called_aet, address.calling_aet) == (
        "dicoms", True, True, "ORTHANC", "MYAET"
    )
    assert not parse_pacs_url("dicom://ORTHANC@pacs.example.org:104").is_tls


@pytest.mark.parametrize("url", ["http://127.0.0.1:8042/dicom-web", "https://pacs.example.org/dicom-web/"])
def test_http_url_is_a_dicomweb_root(url):
    address = parse_pacs_url(url)
    assert not address.is_dimse and address.url == url.rstrip("/") and address.called_aet is None


@pytest.mark.parametrize(
    "url, complaint",
    [
        ("dicom://127.0.0.1:104", "AET@host:port"),  # no AE title
        ("dicom://ORTHANC@127.0.0.1", "AET@host:port"),  # no port
        ("dicom://ORTHANC@127.0.0.1:99999", "invalid port"),
        ("dicom://ORTHANC@127.0.0.1:x", "invalid port"),
        ("dicom://AN_AE_TITLE_OF_17CH@127.0.0.1:104", "1-16"),
        ("dicom://ORTHANC@127.0.0.1:104?calling=AN_AE_TITLE_OF_17CH", "1-16"),
        ("dicom://ORTHANC@127.0.0.1:104?called=X", "calling=AET"),
        ("ftp://127.0.0.1/dicom-web", "unknown scheme"),
        ("127.0.0.1:104", "unknown scheme"),
        ("http:///dicom-web", "http(s)://host"),
    ],
)
def test_malformed_url_is_a_value_error_saying_what_is_wrong(url, complaint):
    with pytest.raises(ValueError, match=re.escape(complaint)):
        parse_pacs_url(url)


def test_credentials_in_a_dicomweb_url_are_refused_without_repeating_them():
    with pytest.raises(ValueError, match="credentials in the URL are not supported") as raised:
        parse_pacs_url("https://user:secret@pacs.example.org:8443/dicom-web")
    assert "secret" not in str(raised.value)


@pytest.mark.parametrize("scheme", ["dicom", "dicoms"])
def test_a_password_in_a_dimse_url_is_refused_without_repeating_it(scheme):
    with pytest.raises(ValueError, match="a DIMSE URL carries no password") as raised:
        parse_pacs_url(f"{scheme}://ORTHANC:secret@pacs.example.org:104")
    assert "secret" not in str(raised.value)


# ---- against Orthanc ----


def test_c_store_returns_the_uids_and_c_find_lists_the_series(orthanc, ct_series):
    assert set(send(ct_series.paths, orthanc.dicom_url)) == ct_series.sop_instance_uids
    found = find_instances(orthanc.dicom_url, ct_series.study_uid)
    assert {record.sop_instance_uid for record in found} == ct_series.sop_instance_uids
    assert {(r.series_instance_uid, r.sop_class_uid, r.modality) for r in found} == {
        (ct_series.series_uid, "1.2.840.10008.5.1.4.1.1.2", "CT")
    }


def test_stow_returns_the_uids_and_qido_lists_the_series(orthanc, ct_series):
    assert send(ct_series.paths, orthanc.dicomweb_url) == [dcmread(p).SOPInstanceUID for p in ct_series.paths]
    found = find_instances(orthanc.dicomweb_url, ct_series.study_uid)
    assert {record.sop_instance_uid for record in found} == ct_series.sop_instance_uids
    assert {(r.series_instance_uid, r.sop_class_uid, r.modality) for r in found} == {
        (ct_series.series_uid, "1.2.840.10008.5.1.4.1.1.2", "CT")
    }


@pytest.mark.parametrize("service", ["dicom_url", "dicomweb_url"])
def test_find_instances_keeps_only_the_modality_asked_for(orthanc, ct_series, service):
    send(ct_series.paths, orthanc.dicom_url)
    assert len(find_instances(getattr(orthanc, service), ct_series.study_uid, modality="CT")) == 3
    assert find_instances(getattr(orthanc, service), ct_series.study_uid, modality="MR") == []


def test_c_get_and_wado_rs_fetch_the_same_readable_instances(orthanc, ct_series, tmp_path):
    send(ct_series.paths, orthanc.dicom_url)
    by_c_get = fetch_series(orthanc.dicom_url, ct_series.study_uid, ct_series.series_uid, tmp_path / "c-get")
    by_wado = fetch_series(orthanc.dicomweb_url, ct_series.study_uid, ct_series.series_uid, tmp_path / "wado")
    assert (
        [p.name for p in by_c_get]
        == [p.name for p in by_wado]
        == sorted(f"{uid}.dcm" for uid in ct_series.sop_instance_uids)
    )
    originals = {ds.SOPInstanceUID: ds for ds in map(dcmread, ct_series.paths)}
    for path in by_c_get + by_wado:
        fetched = dcmread(path)  # a Part 10 file: preamble and file meta included
        assert fetched.file_meta.MediaStorageSOPInstanceUID == fetched.SOPInstanceUID
        np.testing.assert_array_equal(fetched.pixel_array, originals[fetched.SOPInstanceUID].pixel_array)


def test_c_get_receives_a_compressed_instance_in_its_stored_transfer_syntax(orthanc, tmp_path):
    mr = dcmread(MR_JPEG2000)
    send([MR_JPEG2000], orthanc.dicomweb_url)
    (fetched,) = fetch_series(orthanc.dicom_url, mr.StudyInstanceUID, mr.SeriesInstanceUID, tmp_path)
    assert dcmread(fetched).file_meta.TransferSyntaxUID == mr.file_meta.TransferSyntaxUID  # JPEG 2000 lossless


@pytest.mark.parametrize("service", ["dicom_url", "dicomweb_url"])
def test_fetching_an_unknown_series_names_both_uids_and_is_not_retried(orthanc, tmp_path, sleeps, service):
    study_uid, series_uid = generate_uid(), generate_uid()
    with pytest.raises(PacsError, match=f"series {series_uid} of study {study_uid} not found") as raised:
        fetch_series(getattr(orthanc, service), study_uid, series_uid, tmp_path)
    assert raised.value.attempts == 1 and sleeps == []


def test_an_unknown_calling_aet_is_rejected_for_good_without_retry(orthanc, ct_series, sleeps):
    with pytest.raises(PacsError, match="Calling AE title not recognised") as raised:
        send(ct_series.paths, f"{orthanc.dicom_url}?calling=STRANGER")
    assert raised.value.attempts == 1 and sleeps == []


def test_a_pacs_that_went_away_mid_session_is_a_pacs_error_and_the_file_stays(fresh_orthanc, ct_series, sleeps):
    first, second = ct_series.paths[:2]
    send([first], fresh_orthanc.dicom_url)
    fresh_orthanc.stop()
    before = second.read_bytes()
    with pytest.raises(PacsError, match="no association") as raised:
        send([second], fresh_orthanc.dicom_url, attempts=2, backoff_s=0.01)
    assert raised.value.attempts == 2 and second.read_bytes() == before


# ---- failures, against fakes ----


def test_nothing_listening_is_retried_with_exponential_backoff_then_a_pacs_error(ct_series, sleeps, caplog):
    url, path = f"dicom://ORTHANC@127.0.0.1:{free_port()}", ct_series.paths[0]
    before = path.read_bytes()
    with caplog.at_level(logging.WARNING, logger="radtl.dicom.pacs"), pytest.raises(PacsError) as raised:
        send([path], url, attempts=3, backoff_s=0.01)
    assert str(raised.value).startswith(f"C-STORE to {url} failed after 3 attempts: no association")
    assert sleeps == [0.01, 0.02]
    assert len([r for r in caplog.records if r.name == "radtl.dicom.pacs" and "retrying" in r.message]) == 2
    assert path.read_bytes() == before


def test_stow_answered_503_is_retried_attempts_times_then_a_pacs_error(ct_series, sleeps):
    with http_server_answering(503) as (url, posts), pytest.raises(PacsError, match="HTTP 503") as raised:
        send(ct_series.paths[:1], url, attempts=3, backoff_s=0.01)
    assert len(posts) == 3 and raised.value.attempts == 3 and sleeps == [0.01, 0.02]


def test_stow_answered_400_is_not_retried(ct_series, sleeps):
    with http_server_answering(400) as (url, posts), pytest.raises(PacsError, match="HTTP 400") as raised:
        send(ct_series.paths[:1], url, attempts=3, backoff_s=0.01)
    assert len(posts) == 1 and raised.value.attempts == 1 and sleeps == []


def test_stow_answered_200_without_referencing_the_instances_is_not_a_success(ct_series):
    with http_server_answering(200) as (url, posts), pytest.raises(PacsError, match="does not reference 1 instance"):
        send(ct_series.paths[:1], url)
    assert len(posts) == 1


def test_a_c_store_failure_status_is_a_pacs_error_not_a_success(ct_series, sleeps):
    with storage_scp(0xA700) as (url, received), pytest.raises(PacsError, match="status 0xA700") as raised:
        send(ct_series.paths, url, attempts=3)
    assert len(received) == 1 and raised.value.attempts == 1 and sleeps == []  # stops at the first refusal


def test_an_association_aborted_mid_series_is_retried_with_the_files_not_yet_stored(ct_series, sleeps):
    with storage_scp(0x0000, abort_at=1) as (url, received):
        uids = send(ct_series.paths, url, attempts=2)
    assert uids == received == [dcmread(p).SOPInstanceUID for p in ct_series.paths] and len(sleeps) == 1


def test_a_c_store_warning_status_is_stored_and_logged(ct_series, caplog):
    with storage_scp(0xB007) as (url, received), caplog.at_level(logging.WARNING, logger="radtl.dicom.pacs"):
        assert send(ct_series.paths[:1], url) == received
    assert "warning 0xB007" in caplog.text
