"""A real Orthanc PACS for tests: its own temporary storage, free ports, DIMSE and DICOMweb.

Orthanc 1.10.1 (Debian bookworm) has no option to choose the address it binds: the HTTP and DICOM servers
listen on all interfaces (0.0.0.0). What the configuration can do, it does: ``RemoteAccessAllowed: false``
makes the HTTP server answer only requests from the loopback address, and the DICOM server only accepts
associations from the one modality it knows, AE title ``RADTL`` at host 127.0.0.1 (``DicomCheckModalityHost``),
so no other AE title and no other host can store, query or retrieve. A C-MOVE to ``RADTL`` goes to
127.0.0.1 at ``radtl_port`` (``radtl pull --retrieve move --listen 127.0.0.1:<radtl_port>``).

Startup takes well under a second; a clean shutdown takes about 1.5 s (the DICOM server stops on a 1 s poll),
so the ``orthanc`` fixture is module-scoped and tests keep apart by using fresh UIDs. ``fresh_orthanc`` is a
server of the test's own, for tests that stop it; ``stop_process()`` then ``restart()`` stops it and serves the
same storage again on the same ports.

``OrthancServer(users={"alice": "secret"})`` turns on HTTP basic authentication with those registered users;
with ``certificates=make_certificates(folder)`` (a throwaway CA, a server certificate for 127.0.0.1 and
localhost, and a client certificate, made with the ``openssl`` command), ``https=True`` serves HTTPS and
``dicom_tls=True`` makes the DICOM server speak TLS only (Orthanc 1.9+), asking for a client certificate
signed by the same CA.

HTTPS goes through :class:`TlsTerminator`, a TLS front in this process that passes the bytes on to Orthanc's
plain HTTP port, as nginx or a load balancer does before a hospital's Orthanc: Orthanc 1.10.1's own HTTPS
(``SslEnabled``, built on Debian's libcivetweb 1.15) crashes with a segmentation fault at the first TLS
handshake on Debian bookworm.
"""

from __future__ import annotations

import base64
import json
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Self

import pytest

from tests.support.tools import require_tool, requires_tool

# the fixtures are named orthanc and fresh_orthanc; import these names to use them
__all__ = [
    "CALLING_AET",
    "OrthancServer",
    "TestCertificates",
    "TlsTerminator",
    "free_port",
    "fresh_orthanc_fixture",
    "make_certificates",
    "orthanc_executable",
    "orthanc_fixture",
    "requires_orthanc",
]

ORTHANC = "Orthanc"
APT_PACKAGES = "orthanc orthanc-dicomweb"
DICOMWEB_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")
CALLING_AET = "RADTL"  # the one modality this Orthanc talks to
requires_orthanc = requires_tool(ORTHANC, APT_PACKAGES)


@dataclass(frozen=True)
class TestCertificates:
    """PEM files of a throwaway CA, a server certificate it signed (127.0.0.1, localhost) and a client one."""

    __test__ = False  # not a pytest test class, despite its name

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def _openssl(*args: str) -> None:
    subprocess.run([require_tool("openssl", "openssl"), *args], check=True, capture_output=True)


def make_certificates(directory: Path, days: int = 2) -> TestCertificates:
    """A CA, a server certificate for 127.0.0.1/localhost and a client certificate (CN RADTL), all RSA 2048."""
    directory.mkdir(parents=True, exist_ok=True)
    ca, ca_key = directory / "ca.pem", directory / "ca.key"
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", str(days), "-subj", "/CN=radtl test CA",
             "-keyout", str(ca_key), "-out", str(ca),
             "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")

    def signed(name: str, subject: str, extensions: str) -> tuple[Path, Path]:
        cert, key, request = (directory / f"{name}.{ext}" for ext in ("pem", "key", "csr"))
        extfile = directory / f"{name}.ext"
        extfile.write_text(extensions + "\nbasicConstraints=CA:FALSE\nsubjectKeyIdentifier=hash\n"
                           "authorityKeyIdentifier=keyid,issuer\n")
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", subject, "-keyout", str(key), "-out", str(request))
        _openssl("x509", "-req", "-in", str(request), "-CA", str(ca), "-CAkey", str(ca_key), "-set_serial",
                 str(int.from_bytes(name.encode(), "big")), "-days", str(days), "-extfile", str(extfile),
                 "-out", str(cert))
        return cert, key

    server_cert, server_key = signed("server", "/CN=127.0.0.1", "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                                     "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth")
    client_cert, client_key = signed("client", "/CN=RADTL", "keyUsage=digitalSignature,keyEncipherment\n"
                                     "extendedKeyUsage=clientAuth")
    return TestCertificates(ca, server_cert, server_key, client_cert, client_key)


class TlsTerminator:
    """A TLS server on 127.0.0.1 that relays each connection's plain bytes to ``target_port`` (and back).

    A client that does not trust the certificate, or that fails the handshake, is simply disconnected. With
    ``client_certificate_required``, a client must show a certificate signed by the test CA.
    """

    def __init__(self, certificates: TestCertificates, target_port: int, client_certificate_required: bool = False):
        self.target_port = target_port
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(certificates.server_cert, certificates.server_key)
        if client_certificate_required:
            self.context.verify_mode = ssl.CERT_REQUIRED
            self.context.load_verify_locations(certificates.ca)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.handshakes = 0  # completed TLS handshakes
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        try:
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() that close() alone would leave waiting
        except OSError:
            pass
        self.listener.close()
        self._thread.join(5)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:  # the listener was closed
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        secure = self.context.wrap_socket(client, server_side=True, do_handshake_on_connect=False)
        try:
            secure.do_handshake()
        except (ssl.SSLError, OSError):
            self._close_after_alert(secure)
            return
        self.handshakes += 1
        try:
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
        except OSError:  # Orthanc is not listening yet, or any more
            secure.close()
            return
        with secure, upstream:
            relay = threading.Thread(target=self._pump, args=(upstream, secure), daemon=True)
            relay.start()
            self._pump(secure, upstream)
            relay.join(5)

    @staticmethod
    def _close_after_alert(secure: ssl.SSLSocket) -> None:
        """Close as a web server does after a failed handshake: first read what the client still sends, so that
        the kernel does not answer it with a reset that would overtake the TLS alert already sent."""
        try:
            secure.shutdown(socket.SHUT_WR)
            secure.settimeout(2)
            while secure.recv(65536):
                pass
        except OSError:
            pass
        finally:
            secure.close()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            try:
                sink.shutdown(socket.SHUT_WR)
            except OSError:
                pass


def free_port() -> int:
    """A TCP port nothing listens on now (bound once on 127.0.0.1 with port 0, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class OrthancServer:
    """Orthanc with a temporary configuration, storage and index; ``with OrthancServer() as server: ...``."""

    def __init__(
        self,
        executable: str = ORTHANC,
        startup_timeout_s: float = 30.0,
        *,
        users: dict[str, str] | None = None,
        certificates: TestCertificates | None = None,
        https: bool = False,
        dicom_tls: bool = False,
    ):
        if (https or dicom_tls) and certificates is None:
            raise ValueError("https and dicom_tls need certificates=make_certificates(folder)")
        self.executable, self.startup_timeout_s = executable, startup_timeout_s
        self.users, self.certificates, self.https, self.dicom_tls = users, certificates, https, dicom_tls
        self.tls_terminator: TlsTerminator | None = None
        self.http_port, self.dicom_port = free_port(), free_port()
        self.radtl_port = free_port()  # where Orthanc sends a C-MOVE to AE title RADTL (radtl pull --listen)
        self.aet = "ORTHANC"
        self.process: subprocess.Popen | None = None
        self._tmp: tempfile.TemporaryDirectory | None = None

    @property
    def rest_url(self) -> str:
        if self.tls_terminator is not None:
            return f"https://127.0.0.1:{self.tls_terminator.port}"
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def dicomweb_url(self) -> str:
        return f"{self.rest_url}/dicom-web"

    @property
    def dicom_url(self) -> str:
        return f"{'dicoms' if self.dicom_tls else 'dicom'}://{self.aet}@127.0.0.1:{self.dicom_port}"

    @property
    def log_path(self) -> Path:
        assert self._tmp is not None, "the server was never started"
        return Path(self._tmp.name) / "orthanc.log"

    def config(self, directory: Path) -> dict:
        config = self._plain_config(directory)
        if self.users:
            config.update(AuthenticationEnabled=True, RegisteredUsers=dict(self.users))
        if self.dicom_tls:
            certificates = self.certificates
            config.update(
                DicomTlsEnabled=True,
                DicomTlsCertificate=str(certificates.server_cert),
                DicomTlsPrivateKey=str(certificates.server_key),
                DicomTlsTrustedCertificates=str(certificates.ca),
                DicomTlsRemoteCertificateRequired=True,
            )
            config["DicomModalities"]["radtl"]["UseDicomTls"] = True
        return config

    def _plain_config(self, directory: Path) -> dict:
        return {
            "Name": "radtl-test",
            "StorageDirectory": str(directory / "storage"),
            "IndexDirectory": str(directory / "index"),
            "HttpPort": self.http_port,
            "DicomPort": self.dicom_port,
            "DicomAet": self.aet,
            "RemoteAccessAllowed": False,  # HTTP: loopback clients only (there is no bind-address option)
            "AuthenticationEnabled": False,
            "Plugins": [str(DICOMWEB_PLUGIN)],
            "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
            # DIMSE: only AE title RADTL from 127.0.0.1; C-GET answers on our association, and a C-MOVE to RADTL
            # dials radtl_port (radtl pull --retrieve move --listen 127.0.0.1:<radtl_port>)
            "DicomModalities": {"radtl": {"AET": CALLING_AET, "Host": "127.0.0.1", "Port": self.radtl_port}},
            "DicomCheckModalityHost": True,
            "DicomAlwaysAllowEcho": False,
            "DicomAlwaysAllowStore": False,
            "DicomAlwaysAllowFind": False,
            "DicomAlwaysAllowGet": False,
            "DicomAlwaysAllowMove": False,
            "DicomScpTimeout": 10,
            "SaveJobs": False,
            "WebDavEnabled": False,
            "HttpThreadsCount": 4,
            "ConcurrentJobs": 1,
        }

    def start(self) -> Self:
        assert self.process is None, "already started"
        self._tmp = tempfile.TemporaryDirectory(prefix="radtl-orthanc-")
        if self.https:
            self.tls_terminator = TlsTerminator(self.certificates, self.http_port).start()
        directory = Path(self._tmp.name)
        config_path = directory / "orthanc.json"
        config_path.write_text(json.dumps(self.config(directory), indent=2))
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen([self.executable, str(config_path)], stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + self.startup_timeout_s
        while not self._answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                why = f"exited with {self.process.returncode}" if self.process.poll() is not None else "timed out"
                tail = self.log_tail()
                self.stop()
                raise RuntimeError(f"Orthanc did not start ({why}); its log ends:\n{tail}")
            time.sleep(0.05)
        return self

    def _answers(self) -> bool:
        request = urllib.request.Request(f"{self.rest_url}/system")
        if self.users:
            user, password = next(iter(self.users.items()))
            request.add_header("Authorization", "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode())
        context = ssl.create_default_context(cafile=str(self.certificates.ca)) if self.https else None
        try:
            with urllib.request.urlopen(request, timeout=1, context=context) as response:
                return response.status == 200
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False

    def log_tail(self, lines: int = 30) -> str:
        if self._tmp is None or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, timeout_s: float = 10.0) -> None:
        """Terminate Orthanc (kill it after ``timeout_s``) and delete its files; calling it again does nothing."""
        self.stop_process(timeout_s)
        if self.tls_terminator is not None:
            self.tls_terminator.stop()
            self.tls_terminator = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def stop_process(self, timeout_s: float = 10.0) -> None:
        """Terminate Orthanc (kill it after ``timeout_s``), keeping its storage: :meth:`restart` serves it again."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def restart(self) -> Self:
        """Start Orthanc again after :meth:`stop_process`, on the same ports with the same storage."""
        assert self._tmp is not None and self.process is not None and self.process.poll() is not None
        directory = Path(self._tmp.name)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen([self.executable, str(directory / "orthanc.json")], stdout=log,
                                            stderr=subprocess.STDOUT)
        deadline = time.monotonic() + self.startup_timeout_s
        while not self._answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"Orthanc did not restart; its log ends:\n{self.log_tail()}")
            time.sleep(0.05)
        return self

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()


def orthanc_executable() -> str:
    """Skip without Orthanc (the reason from :func:`requires_tool`), or fail when RADTL_REQUIRE_TOOLS is set."""
    (missing_and_optional,) = requires_orthanc.args
    if missing_and_optional:
        pytest.skip(requires_orthanc.kwargs["reason"])
    executable = require_tool(ORTHANC, APT_PACKAGES)
    assert DICOMWEB_PLUGIN.exists(), f"{DICOMWEB_PLUGIN} is missing (apt-get install orthanc-dicomweb)"
    return executable


@pytest.fixture(scope="module", name="orthanc")
def orthanc_fixture() -> Iterator[OrthancServer]:
    """A started Orthanc shared by a test module (tests use fresh UIDs); always stopped."""
    with OrthancServer(orthanc_executable()) as server:
        yield server


@pytest.fixture(name="fresh_orthanc")
def fresh_orthanc_fixture() -> Iterator[OrthancServer]:
    """A started Orthanc of the test's own, which the test may stop; always stopped."""
    with OrthancServer(orthanc_executable()) as server:
        yield server
