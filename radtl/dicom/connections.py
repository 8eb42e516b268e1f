"""Credentials and TLS for PACS connections: who radtl is to the PACS, and how it checks who the PACS is.

DICOMweb (PS3.18) leaves authentication to HTTP: radtl sends basic credentials (RFC 7617) or a bearer token
(RFC 6750), over HTTPS with a CA bundle and, optionally, a client certificate; DIMSE takes TLS (PS3.15 B.1, the
Basic TLS Secure Transport Connection Profile) with the same CA bundle and client certificate. Everything comes from the
environment or a netrc-style file, never from the URL (:func:`radtl.dicom.pacs.parse_pacs_url` refuses a URL
with credentials) and never from a command line, where other users of the machine could read it:

========================== ===================================================================================
``RADTL_PACS_TOKEN``       a bearer token (``Authorization: Bearer ...``) for every DICOMweb PACS
``RADTL_PACS_USER``        a user name, with ``RADTL_PACS_PASSWORD``: HTTP basic authentication
``RADTL_PACS_NETRC``       a netrc file (``machine HOST login USER password SECRET``, or ``machine HOST password
                           TOKEN`` without ``login`` for a bearer token), matched by the PACS's host name
``RADTL_PACS_CA_BUNDLE``   PEM certificates of the authorities that sign the PACS's certificate (HTTPS and
                           ``dicoms://``); unset: the system's trusted authorities
``RADTL_PACS_CLIENT_CERT`` radtl's own certificate (PEM), with ``RADTL_PACS_CLIENT_KEY`` its private key (PEM,
                           unencrypted; may be omitted when the certificate file holds the key too)
========================== ===================================================================================

The first of these that is set wins: a token, then a user and password, then the netrc file. A netrc file must
belong to the user running radtl and be readable by nobody else (``chmod 600``), as ssh and curl ask of theirs;
radtl refuses one that is not. Secrets are kept out of ``repr``, logs and error messages: the
:class:`PacsCredentials` a person may see says who (the user name) and where from (the variable or file),
never the password or token. docs/pacs.md is the user's guide.
"""

from __future__ import annotations

import ipaddress
import logging
import netrc
import os
import socket
import ssl
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import requests
from requests.auth import AuthBase, HTTPBasicAuth

from radtl.errors import RadtlError

__all__ = [
    "CA_BUNDLE_VARIABLE",
    "CLIENT_CERT_VARIABLE",
    "CLIENT_KEY_VARIABLE",
    "ConnectionSettings",
    "CredentialsError",
    "NETRC_VARIABLE",
    "PASSWORD_VARIABLE",
    "PacsCredentials",
    "TOKEN_VARIABLE",
    "TlsSettings",
    "USER_VARIABLE",
    "certificate_problem",
    "connection_settings",
    "dicomweb_session",
    "dimse_tls_context",
    "session_for",
]

logger = logging.getLogger(__name__)

TOKEN_VARIABLE = "RADTL_PACS_TOKEN"
USER_VARIABLE = "RADTL_PACS_USER"
PASSWORD_VARIABLE = "RADTL_PACS_PASSWORD"
NETRC_VARIABLE = "RADTL_PACS_NETRC"
CA_BUNDLE_VARIABLE = "RADTL_PACS_CA_BUNDLE"
CLIENT_CERT_VARIABLE = "RADTL_PACS_CLIENT_CERT"
CLIENT_KEY_VARIABLE = "RADTL_PACS_CLIENT_KEY"
_REDACTED = "<redacted>"


class CredentialsError(RadtlError, ValueError):
    """Credentials or TLS settings radtl cannot use: a half-given pair, an unsafe or unreadable file."""


@dataclass(frozen=True, repr=False)
class PacsCredentials:
    """What radtl tells a DICOMweb PACS about who it is: a user and password, or a bearer token.

    The password and token never appear in ``repr``, ``str`` or messages; ``source`` (an environment variable's
    name, or a netrc file's path) tells a person where to fix them.

    Args:
        source: where they came from, e.g. ``"RADTL_PACS_USER"`` or ``"/home/me/.radtl-netrc"``.
        username: the HTTP basic user name (None with a token).
        password: the HTTP basic password.
        token: a bearer token (RFC 6750), sent as ``Authorization: Bearer TOKEN``.
    """

    source: str
    username: str | None = None
    password: str | None = field(default=None, compare=False)
    token: str | None = field(default=None, compare=False)

    def __post_init__(self):
        if (self.token is None) == (self.username is None):
            raise CredentialsError(f"credentials from {self.source}: give either a user name or a token")

    def __repr__(self) -> str:
        who = f"username={self.username!r}, password={_REDACTED}" if self.username is not None else f"token={_REDACTED}"
        return f"PacsCredentials(source={self.source!r}, {who})"

    __str__ = __repr__

    @property
    def description(self) -> str:
        """For messages: ``user 'alice' (from RADTL_PACS_USER)`` or ``the bearer token (from RADTL_PACS_TOKEN)``."""
        who = f"user {self.username!r}" if self.username is not None else "the bearer token"
        return f"{who} (from {self.source})"

    @property
    def where(self) -> str:
        """For hints: the variables or the netrc file (and its entry) that hold them."""
        if self.source == USER_VARIABLE:
            return f"{USER_VARIABLE} and {PASSWORD_VARIABLE}"
        if self.source == TOKEN_VARIABLE:
            return TOKEN_VARIABLE
        return f"the credentials file {self.source}"

    def requests_auth(self) -> AuthBase:
        """The requests authentication that sends these credentials on every request."""
        if self.token is not None:
            return _BearerAuth(self.token)
        return _RedactedBasicAuth(self.username, self.password or "")


class _BearerAuth(AuthBase):
    """``Authorization: Bearer TOKEN`` (RFC 6750 2.1); its repr hides the token."""

    def __init__(self, token: str):
        self._token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self._token}"
        return request

    def __repr__(self) -> str:
        return f"_BearerAuth({_REDACTED})"


class _Anonymous(AuthBase):
    """No Authorization header; set as a session's auth so that requests does not look in ``~/.netrc`` itself."""

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        return request


class _RedactedBasicAuth(HTTPBasicAuth):
    def __repr__(self) -> str:
        return f"HTTPBasicAuth({self.username!r}, {_REDACTED})"


@dataclass(frozen=True)
class TlsSettings:
    """How radtl checks the PACS's certificate, and the certificate it shows in return (paths to PEM files).

    Args:
        ca_bundle: the authorities to trust for the PACS's certificate; None: the system's.
        client_cert: radtl's certificate, for a PACS that asks for one (mutual TLS).
        client_key: its private key, unencrypted; None when ``client_cert`` holds it too.
    """

    ca_bundle: Path | None = None
    client_cert: Path | None = None
    client_key: Path | None = None

    def __post_init__(self):
        if self.client_key is not None and self.client_cert is None:
            raise CredentialsError(f"{CLIENT_KEY_VARIABLE} is set without {CLIENT_CERT_VARIABLE}",
                                   hint=f"set {CLIENT_CERT_VARIABLE} to the certificate that goes with the key")
        for name, path in (("CA bundle", self.ca_bundle), ("client certificate", self.client_cert),
                           ("client key", self.client_key)):
            if path is not None and not path.is_file():
                raise CredentialsError(f"the {name} {path} is not a file",
                                       hint="see docs/pacs.md for the RADTL_PACS_* variables")


@dataclass(frozen=True)
class ConnectionSettings:
    """The credentials (None: anonymous) and TLS settings for one PACS."""

    credentials: PacsCredentials | None = None
    tls: TlsSettings = field(default_factory=TlsSettings)


def _path(environ: Mapping[str, str], name: str) -> Path | None:
    value = environ.get(name, "")
    return Path(value).expanduser() if value else None


def _check_private(path: Path) -> None:
    """Refuse a credentials file others could read or change (as ssh does for its keys and curl for .netrc)."""
    try:
        info = path.stat()
    except OSError as error:
        raise CredentialsError(f"cannot read the credentials file {path}: {error.strerror}",
                               hint=f"check {NETRC_VARIABLE}") from None
    if not stat.S_ISREG(info.st_mode):
        raise CredentialsError(f"the credentials file {path} is not a regular file")
    if info.st_mode & 0o077:
        raise CredentialsError(f"the credentials file {path} is readable or writable by other users "
                               f"(mode {stat.S_IMODE(info.st_mode):o})", hint=f"chmod 600 {path}")
    if hasattr(os, "getuid") and info.st_uid != os.getuid():
        raise CredentialsError(f"the credentials file {path} belongs to another user",
                               hint="use a file of your own, mode 600")


def _netrc_credentials(path: Path, host: str) -> PacsCredentials | None:
    """The entry for ``host`` (or the ``default`` entry) of a netrc file; None when neither exists."""
    _check_private(path)
    try:
        entries = netrc.netrc(str(path))
    except netrc.NetrcParseError as error:
        # the message quotes the file name and line, never the token that failed (the parser is given no value)
        raise CredentialsError(f"the credentials file {path} is not a netrc file (line {error.lineno})") from None
    found = entries.authenticators(host)
    if found is None:
        logger.debug("no entry for %s in %s: no credentials", host, path)
        return None
    login, _account, password = found
    if not password:
        raise CredentialsError(f"the entry for {host} in {path} has no password",
                               hint="write: machine HOST login USER password SECRET (or password TOKEN alone)")
    if login:
        return PacsCredentials(str(path), username=login, password=password)
    return PacsCredentials(str(path), token=password)


def _credentials(host: str, environ: Mapping[str, str]) -> PacsCredentials | None:
    token, user, password = (environ.get(name) or None for name in (TOKEN_VARIABLE, USER_VARIABLE, PASSWORD_VARIABLE))
    if token is not None:
        return PacsCredentials(TOKEN_VARIABLE, token=token)
    if (user is None) != (password is None):
        given, missing = (USER_VARIABLE, PASSWORD_VARIABLE) if user is not None else (PASSWORD_VARIABLE, USER_VARIABLE)
        raise CredentialsError(f"{given} is set but {missing} is not", hint="set both, or neither")
    if user is not None:
        return PacsCredentials(USER_VARIABLE, username=user, password=password)
    netrc_path = _path(environ, NETRC_VARIABLE)
    return _netrc_credentials(netrc_path, host) if netrc_path is not None else None


def connection_settings(host: str, environ: Mapping[str, str] | None = None) -> ConnectionSettings:
    """The credentials and TLS settings for the PACS at ``host``, from the ``RADTL_PACS_*`` variables.

    Args:
        host: the PACS's host name or address, matched against a netrc file's ``machine`` entries.
        environ: the environment to read (default ``os.environ``).

    Raises:
        CredentialsError: half a user/password pair, a key without a certificate, a missing file, a netrc file
            others can read, or one that does not parse.
    """
    environ = os.environ if environ is None else environ
    tls = TlsSettings(
        _path(environ, CA_BUNDLE_VARIABLE), _path(environ, CLIENT_CERT_VARIABLE), _path(environ, CLIENT_KEY_VARIABLE)
    )
    return ConnectionSettings(_credentials(host, environ), tls)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _PacsSession(requests.Session):
    """A session whose CA bundle wins over ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE``, which requests would
    otherwise let override ``Session.verify`` (psf/requests#3829)."""

    ca_bundle: str | None = None

    def merge_environment_settings(self, url, proxies, stream, verify, cert):
        settings = super().merge_environment_settings(url, proxies, stream, verify, cert)
        if self.ca_bundle is not None:
            settings["verify"] = self.ca_bundle
        return settings


def dicomweb_session(scheme: str, host: str, settings: ConnectionSettings) -> requests.Session:
    """A requests session that authenticates with ``settings.credentials`` and verifies with its CA bundle.

    Credentials sent over plain ``http://`` to a host other than this machine are logged as a warning (anyone
    on the way can read them), but sent: some hospitals terminate TLS in front of the PACS.

    Args:
        scheme: ``"http"`` or ``"https"``.
        host: the PACS's host, for the warning.
        settings: from :func:`connection_settings`.
    """
    session = _PacsSession()
    session.auth = _Anonymous()  # only the credentials radtl was given, never requests' own ~/.netrc lookup
    if settings.credentials is not None:
        session.auth = settings.credentials.requests_auth()
        if scheme == "http" and not _is_loopback(host):
            logger.warning("sending %s to %s over unencrypted http://; use https://",
                           settings.credentials.description, host)
    tls = settings.tls
    if tls.ca_bundle is not None:
        session.verify = session.ca_bundle = str(tls.ca_bundle)
    if tls.client_cert is not None:
        session.cert = str(tls.client_cert) if tls.client_key is None else (str(tls.client_cert), str(tls.client_key))
    return session


def session_for(url: str) -> requests.Session:
    """:func:`dicomweb_session` for a DICOMweb root URL, with the settings of its host: for DICOMweb clients made
    elsewhere (MONAI Label's datastore) that must log in as radtl's own transfers do.

    Raises:
        CredentialsError: as :func:`connection_settings`.
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    return dicomweb_session(parts.scheme, host, connection_settings(host))


def dimse_tls_context(settings: TlsSettings) -> ssl.SSLContext:
    """A client TLS context for a DIMSE association (PS3.15 B.1): the PACS's certificate and host name checked.

    Raises:
        CredentialsError: a CA bundle or client certificate/key that does not load.
    """
    try:
        context = ssl.create_default_context(
            ssl.Purpose.SERVER_AUTH, cafile=str(settings.ca_bundle) if settings.ca_bundle else None
        )
        if settings.client_cert is not None:
            key = str(settings.client_key) if settings.client_key is not None else None
            context.load_cert_chain(str(settings.client_cert), key)
    except ssl.SSLError as error:
        raise CredentialsError(f"the TLS certificates do not load ({error.reason or error})",
                               hint=f"check {CA_BUNDLE_VARIABLE}, {CLIENT_CERT_VARIABLE} and {CLIENT_KEY_VARIABLE}"
                               ) from None
    return context


def certificate_problem(host: str, port: int, context: ssl.SSLContext, timeout_s: float) -> str | None:
    """Why a TLS handshake with ``host:port`` fails on the certificates, or None when it does not.

    pynetdicom reports a failed TLS handshake as any failed connection; this one extra handshake, made only after
    an association failed, tells a certificate radtl does not trust (final) from the network (worth retrying).
    """
    try:
        with socket.create_connection((host, port), timeout=timeout_s) as raw:
            with context.wrap_socket(raw, server_hostname=host):
                return None
    except ssl.SSLCertVerificationError as error:
        return f"TLS certificate verify failed: {error.verify_message}"
    except ssl.SSLError as error:
        return f"TLS handshake failed: {error.reason or error}"
    except OSError:
        return None
