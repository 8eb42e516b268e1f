"""radtl.dicom.connections: where credentials and certificates come from, what is refused, what is never shown."""

from __future__ import annotations

import base64
import logging
import ssl
from pathlib import Path

import pytest
import requests

from radtl.dicom.connections import (
    CA_BUNDLE_VARIABLE,
    CLIENT_CERT_VARIABLE,
    CLIENT_KEY_VARIABLE,
    NETRC_VARIABLE,
    PASSWORD_VARIABLE,
    TOKEN_VARIABLE,
    USER_VARIABLE,
    ConnectionSettings,
    CredentialsError,
    PacsCredentials,
    TlsSettings,
    connection_settings,
    dicomweb_session,
    dimse_tls_context,
)
from radtl.errors import RadtlError
from tests.support.orthanc import TestCertificates, make_certificates

SECRET = "s3cret-Qx7-never-shown"
HOST = "pacs.example.org"


@pytest.fixture(scope="module")
def certificates(tmp_path_factory) -> TestCertificates:
    return make_certificates(tmp_path_factory.mktemp("certificates"))


def write_netrc(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


def authorization(session: requests.Session, url: str = f"https://{HOST}/dicom-web/studies") -> str | None:
    return session.prepare_request(requests.Request("GET", url)).headers.get("Authorization")


# ---- where credentials come from ----


def test_no_variables_mean_no_credentials_and_the_systems_authorities():
    assert connection_settings(HOST, {}) == ConnectionSettings(None, TlsSettings())


def test_user_and_password_variables_are_basic_credentials():
    credentials = connection_settings(HOST, {USER_VARIABLE: "alice", PASSWORD_VARIABLE: SECRET}).credentials
    assert (credentials.username, credentials.password, credentials.source) == ("alice", SECRET, USER_VARIABLE)


def test_a_token_wins_over_a_user_and_password():
    environ = {TOKEN_VARIABLE: SECRET, USER_VARIABLE: "alice", PASSWORD_VARIABLE: "other"}
    credentials = connection_settings(HOST, environ).credentials
    assert (credentials.token, credentials.username) == (SECRET, None)


@pytest.mark.parametrize("given, missing", [(USER_VARIABLE, PASSWORD_VARIABLE), (PASSWORD_VARIABLE, USER_VARIABLE)])
def test_half_a_user_and_password_pair_is_refused_naming_the_missing_variable(given, missing):
    with pytest.raises(CredentialsError, match=f"{given} is set but {missing} is not") as caught:
        connection_settings(HOST, {given: SECRET if given == PASSWORD_VARIABLE else "alice"})
    assert SECRET not in str(caught.value)


def test_a_netrc_entry_for_the_host_gives_its_login_and_password(tmp_path):
    path = write_netrc(tmp_path / "netrc", f"machine other.org login bob password x\nmachine {HOST} login alice "
                                           f"password {SECRET}\n")
    credentials = connection_settings(HOST, {NETRC_VARIABLE: str(path)}).credentials
    assert (credentials.username, credentials.password, credentials.source) == ("alice", SECRET, str(path))


def test_a_netrc_entry_without_login_is_a_bearer_token(tmp_path):
    path = write_netrc(tmp_path / "netrc", f"machine {HOST} password {SECRET}\n")
    assert connection_settings(HOST, {NETRC_VARIABLE: str(path)}).credentials.token == SECRET


def test_a_netrc_file_without_an_entry_for_the_host_uses_its_default_or_nothing(tmp_path):
    only_other = write_netrc(tmp_path / "other", "machine other.org login bob password x\n")
    with_default = write_netrc(tmp_path / "default", "machine other.org login bob password x\n"
                                                     "default login carol password y\n")
    assert connection_settings(HOST, {NETRC_VARIABLE: str(only_other)}).credentials is None
    assert connection_settings(HOST, {NETRC_VARIABLE: str(with_default)}).credentials.username == "carol"


def test_variables_win_over_the_netrc_file(tmp_path):
    path = write_netrc(tmp_path / "netrc", f"machine {HOST} login alice password {SECRET}\n")
    environ = {NETRC_VARIABLE: str(path), USER_VARIABLE: "bob", PASSWORD_VARIABLE: "pw"}
    assert connection_settings(HOST, environ).credentials.username == "bob"


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o620])
def test_a_netrc_file_other_users_can_read_or_write_is_refused_with_chmod_600(tmp_path, mode):
    path = write_netrc(tmp_path / "netrc", f"machine {HOST} login alice password {SECRET}\n", mode)
    with pytest.raises(CredentialsError, match="readable or writable by other users") as caught:
        connection_settings(HOST, {NETRC_VARIABLE: str(path)})
    assert caught.value.hint == f"chmod 600 {path}" and isinstance(caught.value, RadtlError)


def test_a_missing_netrc_file_is_refused_naming_the_variable(tmp_path):
    with pytest.raises(CredentialsError, match="cannot read the credentials file .*missing") as caught:
        connection_settings(HOST, {NETRC_VARIABLE: str(tmp_path / "missing")})
    assert NETRC_VARIABLE in caught.value.hint


def test_a_netrc_file_that_does_not_parse_is_refused_without_quoting_it(tmp_path):
    path = write_netrc(tmp_path / "netrc", f"machine {HOST} login alice password {SECRET} bogus\n")
    with pytest.raises(CredentialsError, match="is not a netrc file") as caught:
        connection_settings(HOST, {NETRC_VARIABLE: str(path)})
    assert SECRET not in str(caught.value)


# ---- TLS settings ----


def test_a_client_key_without_a_certificate_is_refused(certificates):
    with pytest.raises(CredentialsError, match=f"{CLIENT_KEY_VARIABLE} is set without {CLIENT_CERT_VARIABLE}"):
        connection_settings(HOST, {CLIENT_KEY_VARIABLE: str(certificates.client_key)})


def test_a_ca_bundle_that_is_not_a_file_is_refused(tmp_path):
    with pytest.raises(CredentialsError, match="the CA bundle .*missing.pem is not a file"):
        connection_settings(HOST, {CA_BUNDLE_VARIABLE: str(tmp_path / "missing.pem")})


def test_the_dimse_tls_context_checks_the_certificate_and_the_host_name(certificates):
    context = dimse_tls_context(TlsSettings(certificates.ca, certificates.client_cert, certificates.client_key))
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


def test_a_client_certificate_that_does_not_load_is_a_credentials_error(certificates):
    with pytest.raises(CredentialsError, match="the TLS certificates do not load"):
        dimse_tls_context(TlsSettings(certificates.ca, certificates.client_cert, certificates.ca))


# ---- the DICOMweb session ----


def test_the_session_sends_basic_credentials():
    session = dicomweb_session("https", HOST, ConnectionSettings(PacsCredentials(USER_VARIABLE, "alice", SECRET)))
    assert authorization(session) == "Basic " + base64.b64encode(f"alice:{SECRET}".encode()).decode()


def test_the_session_sends_a_bearer_token():
    session = dicomweb_session("https", HOST, ConnectionSettings(PacsCredentials(TOKEN_VARIABLE, token=SECRET)))
    assert authorization(session) == f"Bearer {SECRET}"


def test_an_anonymous_session_sends_no_authorization_even_with_a_home_netrc(tmp_path, monkeypatch):
    monkeypatch.setenv("NETRC", str(write_netrc(tmp_path / "home-netrc", f"machine {HOST} login a password b\n")))
    assert requests.Session().prepare_request(requests.Request("GET", f"https://{HOST}/")).headers["Authorization"]
    assert authorization(dicomweb_session("https", HOST, ConnectionSettings())) is None


def test_the_ca_bundle_wins_over_requests_ca_bundle(certificates, monkeypatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    session = dicomweb_session("https", HOST, ConnectionSettings(tls=TlsSettings(certificates.ca)))
    settings = session.merge_environment_settings(f"https://{HOST}/", {}, None, None, None)
    assert settings["verify"] == str(certificates.ca)


def test_the_session_shows_the_client_certificate_and_key(certificates):
    tls = TlsSettings(certificates.ca, certificates.client_cert, certificates.client_key)
    assert dicomweb_session("https", HOST, ConnectionSettings(tls=tls)).cert == (
        str(certificates.client_cert), str(certificates.client_key)
    )


def test_credentials_over_plain_http_to_another_host_are_warned_about(caplog):
    credentials = ConnectionSettings(PacsCredentials(USER_VARIABLE, "alice", SECRET))
    with caplog.at_level(logging.WARNING, logger="radtl.dicom.connections"):
        dicomweb_session("http", "127.0.0.1", credentials)
        assert not caplog.records
        dicomweb_session("http", HOST, credentials)
    assert "unencrypted http://" in caplog.text and "alice" in caplog.text and SECRET not in caplog.text


# ---- secrets are never shown ----


@pytest.mark.parametrize("credentials", [
    PacsCredentials(USER_VARIABLE, "alice", SECRET),
    PacsCredentials(TOKEN_VARIABLE, token=SECRET),
], ids=["basic", "token"])
def test_no_representation_of_the_credentials_shows_the_secret(credentials):
    shown = [repr(credentials), str(credentials), f"{credentials}", credentials.description,
             repr(ConnectionSettings(credentials)), repr(credentials.requests_auth())]
    assert not [text for text in shown if SECRET in text]
    assert "<redacted>" in repr(credentials)


def test_credentials_are_either_a_user_or_a_token():
    with pytest.raises(CredentialsError, match="either a user name or a token"):
        PacsCredentials("somewhere", username="alice", password="x", token=SECRET)
