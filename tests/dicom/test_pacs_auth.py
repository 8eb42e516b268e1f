"""Authenticated, encrypted PACS connections: a real Orthanc with a registered user, HTTPS and DICOM TLS, and a
small DICOMweb server that wants a bearer token.

One Orthanc serves the module: basic authentication on its plain HTTP port, the same behind HTTPS (a TLS front
with a certificate made here, see tests/support/orthanc.py), and a DICOM port that speaks TLS only and asks for
radtl's client certificate. The DICOM objects stored and found are a DICOM-SEG over the sample series case001 and
its nodule measurement report (SR), found back as radtl's results of the study.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pydicom
import pytest

from radtl.dicom import pacs
from radtl.dicom.connections import (
    CA_BUNDLE_VARIABLE,
    CLIENT_CERT_VARIABLE,
    CLIENT_KEY_VARIABLE,
    NETRC_VARIABLE,
    PASSWORD_VARIABLE,
    TOKEN_VARIABLE,
    USER_VARIABLE,
)
from radtl.dicom.pacs import PacsAuthenticationError, PacsError, fetch_series, find_instances, find_results, send
from radtl.dicom.seg import Algorithm, write_segmentation
from radtl.dicom.sr import write_nodule_report
from tests.support.http import QuietHandler, serving
from tests.support.orthanc import (
    OrthancServer,
    TestCertificates,
    TlsTerminator,
    make_certificates,
    orthanc_executable,
)
from tests.support.paths import SAMPLES

USER = "radiologist"
PASSWORD = "pw-Zk4-never-logged"
TOKEN = "tok-9fQ-never-logged"
VARIABLES = (TOKEN_VARIABLE, USER_VARIABLE, PASSWORD_VARIABLE, NETRC_VARIABLE, CA_BUNDLE_VARIABLE,
             CLIENT_CERT_VARIABLE, CLIENT_KEY_VARIABLE)
CASE = SAMPLES / "tasks" / "luna_nodule" / "case001"


@pytest.fixture(autouse=True)
def environ(monkeypatch) -> pytest.MonkeyPatch:
    """No RADTL_PACS_* variable from the machine running the tests; each test sets its own."""
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.fixture
def sleeps(monkeypatch) -> list[float]:
    """The backoff delays, recorded instead of slept: empty when nothing was retried."""
    delays: list[float] = []
    monkeypatch.setattr(pacs, "sleep", delays.append)
    return delays


@pytest.fixture(scope="module")
def certificates(tmp_path_factory) -> TestCertificates:
    return make_certificates(tmp_path_factory.mktemp("certificates"))


@pytest.fixture(scope="module")
def seg(tmp_path_factory) -> pydicom.Dataset:
    """A one-segment DICOM-SEG over case001 (its file is ``seg.filename``)."""
    mask = np.zeros((64, 64, 12), dtype=np.uint8)
    mask[10:14, 20:23, 2:5] = 1
    made_by = Algorithm("luna_nodule_seg", "0.1.0")
    path = write_segmentation(tmp_path_factory.mktemp("seg") / "nodule.seg.dcm", mask, CASE, made_by)
    return pydicom.dcmread(path, stop_before_pixels=True)


@pytest.fixture(scope="module")
def sr(seg, tmp_path_factory) -> pydicom.Dataset:
    """The SEG's nodule measurement report (its file is ``sr.filename``)."""
    path = write_nodule_report(tmp_path_factory.mktemp("sr") / "nodule.sr.dcm", seg.filename, CASE)
    return pydicom.dcmread(path, stop_before_pixels=True)


def result_modalities(url: str, study_uid: str) -> set[str]:
    """The modalities of radtl's results that ``radtl results`` finds in the study."""
    return {series.modality for series in find_results(url, study_uid)}


@pytest.fixture(scope="module")
def secure_orthanc(certificates) -> Iterator[OrthancServer]:
    with OrthancServer(orthanc_executable(), users={USER: PASSWORD}, certificates=certificates, https=True,
                       dicom_tls=True) as server:
        yield server


def plain_dicomweb(server: OrthancServer) -> str:
    """The Orthanc's own (plain HTTP) DICOMweb root, beside the HTTPS front."""
    return f"http://127.0.0.1:{server.http_port}/dicom-web"


def https_dicomweb(server: OrthancServer) -> str:
    return f"{server.rest_url}/dicom-web"


def sop_instance_uids(url: str, seg: pydicom.Dataset) -> set[str]:
    return {record.sop_instance_uid for record in find_instances(url, seg.StudyInstanceUID, modality="SEG")}


def log_in(environ: pytest.MonkeyPatch, password: str = PASSWORD) -> None:
    environ.setenv(USER_VARIABLE, USER)
    environ.setenv(PASSWORD_VARIABLE, password)


def use_client_certificate(environ: pytest.MonkeyPatch, certificates: TestCertificates) -> None:
    environ.setenv(CA_BUNDLE_VARIABLE, str(certificates.ca))
    environ.setenv(CLIENT_CERT_VARIABLE, str(certificates.client_cert))
    environ.setenv(CLIENT_KEY_VARIABLE, str(certificates.client_key))


# ---- HTTP basic authentication against Orthanc (AuthenticationEnabled, RegisteredUsers) ----


def test_basic_auth_stores_and_finds_a_seg(secure_orthanc, seg, environ):
    log_in(environ)
    assert send([seg.filename], plain_dicomweb(secure_orthanc)) == [seg.SOPInstanceUID]
    assert seg.SOPInstanceUID in sop_instance_uids(plain_dicomweb(secure_orthanc), seg)


def test_basic_auth_stores_a_seg_and_its_sr_and_finds_both_as_results(secure_orthanc, seg, sr, environ):
    log_in(environ)
    url = plain_dicomweb(secure_orthanc)
    assert send([seg.filename, sr.filename], url) == [seg.SOPInstanceUID, sr.SOPInstanceUID]
    assert result_modalities(url, seg.StudyInstanceUID) == {"SEG", "SR"}


def test_a_netrc_entry_for_the_host_logs_in(secure_orthanc, seg, environ, tmp_path):
    netrc = tmp_path / "pacs.netrc"
    netrc.write_text(f"machine 127.0.0.1 login {USER} password {PASSWORD}\n")
    netrc.chmod(0o600)
    environ.setenv(NETRC_VARIABLE, str(netrc))
    assert send([seg.filename], plain_dicomweb(secure_orthanc)) == [seg.SOPInstanceUID]


def test_a_wrong_password_is_one_authentication_error_without_retries(secure_orthanc, seg, environ, sleeps):
    log_in(environ, password="wrong-" + PASSWORD)
    with pytest.raises(PacsAuthenticationError) as caught:
        send([seg.filename], plain_dicomweb(secure_orthanc))
    error = caught.value
    assert (error.status, error.attempts, sleeps) == (401, 1, [])
    assert f"refused the credentials of user '{USER}' (from {USER_VARIABLE})" in str(error)
    assert error.hint.startswith(f"check {USER_VARIABLE} and {PASSWORD_VARIABLE}")
    assert isinstance(error, PacsError)  # `radtl segment` keeps the SEG and says how to send it later


def test_no_credentials_for_a_pacs_that_wants_them_says_which_variables_to_set(secure_orthanc, seg, sleeps):
    with pytest.raises(PacsAuthenticationError, match=r"asks for credentials \(HTTP 401") as caught:
        find_instances(plain_dicomweb(secure_orthanc), seg.StudyInstanceUID)
    assert USER_VARIABLE in caught.value.hint and TOKEN_VARIABLE in caught.value.hint and sleeps == []


# ---- HTTPS with a CA bundle ----


def test_https_with_the_ca_bundle_stores_finds_and_fetches_a_seg(secure_orthanc, certificates, seg, environ,
                                                                 tmp_path):
    log_in(environ)
    environ.setenv(CA_BUNDLE_VARIABLE, str(certificates.ca))
    url = https_dicomweb(secure_orthanc)
    assert send([seg.filename], url) == [seg.SOPInstanceUID]
    assert seg.SOPInstanceUID in sop_instance_uids(url, seg)
    (fetched,) = fetch_series(url, seg.StudyInstanceUID, seg.SeriesInstanceUID, tmp_path / "fetched")
    assert pydicom.dcmread(fetched).SOPInstanceUID == seg.SOPInstanceUID


def test_https_stores_an_sr_and_finds_the_study_results(secure_orthanc, certificates, seg, sr, environ):
    log_in(environ)
    environ.setenv(CA_BUNDLE_VARIABLE, str(certificates.ca))
    url = https_dicomweb(secure_orthanc)
    assert send([seg.filename, sr.filename], url) == [seg.SOPInstanceUID, sr.SOPInstanceUID]
    assert result_modalities(url, sr.StudyInstanceUID) == {"SEG", "SR"}


def test_https_without_the_ca_bundle_is_a_final_certificate_error(secure_orthanc, seg, environ, sleeps):
    log_in(environ)
    handshakes = secure_orthanc.tls_terminator.handshakes
    with pytest.raises(PacsError, match="TLS certificate verify failed") as caught:
        send([seg.filename], https_dicomweb(secure_orthanc))
    assert CA_BUNDLE_VARIABLE in str(caught.value) and caught.value.attempts == 1 and sleeps == []
    assert secure_orthanc.tls_terminator.handshakes == handshakes  # nothing was sent


def test_a_wrong_password_over_https_is_one_request(secure_orthanc, certificates, seg, environ, sleeps):
    log_in(environ, password="wrong")
    environ.setenv(CA_BUNDLE_VARIABLE, str(certificates.ca))
    handshakes = secure_orthanc.tls_terminator.handshakes
    with pytest.raises(PacsAuthenticationError):
        send([seg.filename], https_dicomweb(secure_orthanc))
    assert secure_orthanc.tls_terminator.handshakes == handshakes + 1


@pytest.fixture
def mutual_tls_front(secure_orthanc, certificates) -> Iterator[str]:
    """A second HTTPS front before the same Orthanc that asks for a client certificate; its DICOMweb root."""
    front = TlsTerminator(certificates, secure_orthanc.http_port, client_certificate_required=True).start()
    try:
        yield f"https://127.0.0.1:{front.port}/dicom-web"
    finally:
        front.stop()


def test_https_with_a_client_certificate_stores_a_seg(mutual_tls_front, certificates, seg, environ):
    log_in(environ)
    use_client_certificate(environ, certificates)
    assert send([seg.filename], mutual_tls_front) == [seg.SOPInstanceUID]


def test_https_without_the_client_certificate_it_asks_for_is_final(mutual_tls_front, certificates, seg, environ,
                                                                   sleeps):
    log_in(environ)
    environ.setenv(CA_BUNDLE_VARIABLE, str(certificates.ca))
    with pytest.raises(PacsError, match="the PACS refused the TLS handshake") as caught:
        send([seg.filename], mutual_tls_front)
    assert CLIENT_CERT_VARIABLE in str(caught.value) and sleeps == []


# ---- DIMSE over TLS (Orthanc's DicomTlsEnabled, with a client certificate required) ----


def test_dicom_tls_stores_finds_and_retrieves_a_seg(secure_orthanc, certificates, seg, environ, tmp_path):
    use_client_certificate(environ, certificates)
    url = secure_orthanc.dicom_url
    assert url.startswith("dicoms://")
    assert send([seg.filename], url) == [seg.SOPInstanceUID]
    assert seg.SOPInstanceUID in sop_instance_uids(url, seg)
    (fetched,) = fetch_series(url, seg.StudyInstanceUID, seg.SeriesInstanceUID, tmp_path / "fetched")
    assert pydicom.dcmread(fetched).SOPInstanceUID == seg.SOPInstanceUID


def test_dicom_tls_without_the_ca_bundle_is_a_final_certificate_error(secure_orthanc, certificates, seg, environ,
                                                                      sleeps):
    use_client_certificate(environ, certificates)
    environ.delenv(CA_BUNDLE_VARIABLE)
    with pytest.raises(PacsError, match="TLS certificate verify failed") as caught:
        send([seg.filename], secure_orthanc.dicom_url)
    assert CA_BUNDLE_VARIABLE in str(caught.value) and caught.value.attempts == 1 and sleeps == []


def test_plain_dicom_to_a_tls_only_port_is_not_an_association(secure_orthanc, seg, sleeps):
    plain = secure_orthanc.dicom_url.replace("dicoms://", "dicom://")
    with pytest.raises(PacsError, match="no association"):
        send([seg.filename], plain, attempts=2, backoff_s=0.0)


# ---- a bearer token, against a DICOMweb server of the test's own ----


@dataclass
class TokenServer:
    """What a fake DICOMweb server saw: each request's method, path and Authorization header."""

    url: str
    requests: list[tuple[str, str, str | None]] = field(default_factory=list)


@contextmanager
def dicomweb_wanting_token(token: str, instance: pydicom.Dataset) -> Iterator[TokenServer]:
    """A DICOMweb root on 127.0.0.1 that answers STOW-RS and QIDO-RS for ``instance`` when given ``token``,
    and 401 otherwise."""
    uids = {"00081150": {"vr": "UI", "Value": [instance.SOPClassUID]},
            "00081155": {"vr": "UI", "Value": [instance.SOPInstanceUID]}}
    found = {"0020000E": {"vr": "UI", "Value": [instance.SeriesInstanceUID]},
             "00080018": {"vr": "UI", "Value": [instance.SOPInstanceUID]},
             "00080016": {"vr": "UI", "Value": [instance.SOPClassUID]},
             "00080060": {"vr": "CS", "Value": [instance.Modality]}}
    series = {"0020000E": {"vr": "UI", "Value": [instance.SeriesInstanceUID]},
              "00080060": {"vr": "CS", "Value": [instance.Modality]},
              "00080070": {"vr": "LO", "Value": [instance.Manufacturer]},
              "0008103E": {"vr": "LO", "Value": [instance.SeriesDescription]},
              "00201209": {"vr": "IS", "Value": [1]}}

    seen = TokenServer(url="")  # the URL once the server has its port

    class Handler(QuietHandler):
        def answer(self, body: object) -> None:
            seen.requests.append((self.command, self.path, self.headers.get("Authorization")))
            if self.headers.get("Authorization") != f"Bearer {token}":
                self.send_response(401)
                self.send_header("WWW-Authenticate", "Bearer")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.answer_json(body)

        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self.answer({"00081199": {"vr": "SQ", "Value": [uids]}})

        def do_GET(self):  # QIDO-RS for instances or series; it asks for pages until one is empty
            path, query = urlsplit(self.path).path, parse_qs(urlsplit(self.path).query)
            if query.get("offset", ["0"])[0] != "0":
                return self.answer([])
            if path.endswith("/series"):
                wanted = query.get("Modality", [instance.Modality])[0]
                return self.answer([series] if wanted == instance.Modality else [])
            self.answer([found])

    with serving(Handler) as port:
        seen.url = f"http://127.0.0.1:{port}/dicom-web"
        yield seen


def test_a_bearer_token_is_sent_with_stow_and_qido(seg, environ):
    environ.setenv(TOKEN_VARIABLE, TOKEN)
    with dicomweb_wanting_token(TOKEN, seg) as server:
        assert send([seg.filename], server.url) == [seg.SOPInstanceUID]
        assert sop_instance_uids(server.url, seg) == {seg.SOPInstanceUID}
    assert {(method, authorization) for method, _, authorization in server.requests} == {
        ("POST", f"Bearer {TOKEN}"), ("GET", f"Bearer {TOKEN}")
    }


def test_a_bearer_token_stores_an_sr_and_finds_it_as_a_result(sr, environ):
    environ.setenv(TOKEN_VARIABLE, TOKEN)
    with dicomweb_wanting_token(TOKEN, sr) as server:
        assert send([sr.filename], server.url) == [sr.SOPInstanceUID]
        [result] = find_results(server.url, sr.StudyInstanceUID)
    assert (result.modality, result.series_instance_uid) == ("SR", sr.SeriesInstanceUID)
    assert {authorization for _, _, authorization in server.requests} == {f"Bearer {TOKEN}"}


def test_a_refused_token_is_one_request_and_one_clear_error(seg, environ, sleeps):
    environ.setenv(TOKEN_VARIABLE, "expired-" + TOKEN)
    with dicomweb_wanting_token(TOKEN, seg) as server:
        with pytest.raises(PacsAuthenticationError, match=f"the bearer token \\(from {TOKEN_VARIABLE}\\)") as caught:
            send([seg.filename], server.url)
    assert len(server.requests) == 1 and sleeps == [] and caught.value.hint == f"check {TOKEN_VARIABLE}"


# ---- secrets never shown ----


def test_no_secret_reaches_the_logs_or_the_errors(secure_orthanc, certificates, seg, environ, caplog, sleeps):
    """Every path that talks about a connection, at DEBUG, with the secrets set: success, refusal, bad TLS."""
    texts = []
    with caplog.at_level(logging.DEBUG):
        log_in(environ)
        send([seg.filename], plain_dicomweb(secure_orthanc))
        for password, url in (("wrong-" + PASSWORD, plain_dicomweb(secure_orthanc)),
                              (PASSWORD, https_dicomweb(secure_orthanc))):  # refused; no CA bundle
            log_in(environ, password)
            with pytest.raises(PacsError) as caught:
                send([seg.filename], url)
            texts += [str(caught.value), repr(caught.value), caught.value.hint, str(caught.value.__cause__)]
        environ.delenv(USER_VARIABLE)
        environ.delenv(PASSWORD_VARIABLE)
        environ.setenv(TOKEN_VARIABLE, TOKEN)
        with dicomweb_wanting_token("another-token", seg) as server, pytest.raises(PacsError) as caught:
            send([seg.filename], server.url)
        texts += [str(caught.value), repr(caught.value), caught.value.hint]
    texts.append(caplog.text)
    texts += [repr(record.args) for record in caplog.records]
    leaks = [text for text in texts for secret in (PASSWORD, TOKEN) if secret in text]
    assert not leaks


def test_radtl_send_with_a_wrong_password_prints_one_line_without_it(secure_orthanc, seg, environ, capsys):
    from radtl.cli import main

    log_in(environ, password="wrong-" + PASSWORD)
    with pytest.raises(SystemExit) as exit_:
        main(["send", seg.filename, "--to", plain_dicomweb(secure_orthanc)])
    out, err = capsys.readouterr()
    *logged, error = err.strip().splitlines()  # the console log (INFO) comes before the error's one line
    assert exit_.value.code == 2 and not [line for line in logged if line.startswith("radtl send:")]
    assert error.startswith(f"radtl send: STOW-RS to {plain_dicomweb(secure_orthanc)}: the PACS refused the "
                          f"credentials of user '{USER}'")
    assert PASSWORD not in out + err
