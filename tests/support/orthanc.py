"""A real Orthanc PACS for tests: its own temporary storage, free ports, DIMSE and DICOMweb.

Orthanc 1.10.1 (Debian bookworm) has no option to choose the address it binds: the HTTP and DICOM servers
listen on all interfaces (0.0.0.0). What the configuration can do, it does: ``RemoteAccessAllowed: false``
makes the HTTP server answer only requests from the loopback address, and the DICOM server only accepts
associations from the one modality it knows, AE title ``RADTL`` at host 127.0.0.1 (``DicomCheckModalityHost``),
so no other AE title and no other host can store, query or retrieve.

Startup takes well under a second; a clean shutdown takes about 1.5 s (the DICOM server stops on a 1 s poll),
so the ``orthanc`` fixture is module-scoped and tests keep apart by using fresh UIDs. ``fresh_orthanc`` is a
server of the test's own, for tests that stop it.
"""

from __future__ import annotations

import json
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Self

import pytest

from tests.support.tools import require_tool, requires_tool

# the fixtures are named orthanc and fresh_orthanc; import these names to use them
__all__ = ["CALLING_AET", "OrthancServer", "free_port", "fresh_orthanc_fixture", "orthanc_fixture", "requires_orthanc"]

ORTHANC = "Orthanc"
APT_PACKAGES = "orthanc orthanc-dicomweb"
DICOMWEB_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")
CALLING_AET = "RADTL"  # the one modality this Orthanc talks to
requires_orthanc = requires_tool(ORTHANC, APT_PACKAGES)


def free_port() -> int:
    """A TCP port nothing listens on now (bound once on 127.0.0.1 with port 0, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class OrthancServer:
    """Orthanc with a temporary configuration, storage and index; ``with OrthancServer() as server: ...``."""

    def __init__(self, executable: str = ORTHANC, startup_timeout_s: float = 30.0):
        self.executable, self.startup_timeout_s = executable, startup_timeout_s
        self.http_port, self.dicom_port = free_port(), free_port()
        self.aet = "ORTHANC"
        self.process: subprocess.Popen | None = None
        self._tmp: tempfile.TemporaryDirectory | None = None

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def dicomweb_url(self) -> str:
        return f"{self.rest_url}/dicom-web"

    @property
    def dicom_url(self) -> str:
        return f"dicom://{self.aet}@127.0.0.1:{self.dicom_port}"

    @property
    def log_path(self) -> Path:
        assert self._tmp is not None, "the server was never started"
        return Path(self._tmp.name) / "orthanc.log"

    def config(self, directory: Path) -> dict:
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
            # DIMSE: only AE title RADTL from 127.0.0.1 (its port is never dialled: C-GET answers on our association)
            "DicomModalities": {"radtl": {"AET": CALLING_AET, "Host": "127.0.0.1", "Port": free_port()}},
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
        try:
            with urllib.request.urlopen(f"{self.rest_url}/system", timeout=1) as response:
                return response.status == 200
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False

    def log_tail(self, lines: int = 30) -> str:
        if self._tmp is None or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, timeout_s: float = 10.0) -> None:
        """Terminate Orthanc (kill it after ``timeout_s``) and delete its files; calling it again does nothing."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()


def _orthanc_executable() -> str:
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
    with OrthancServer(_orthanc_executable()) as server:
        yield server


@pytest.fixture(name="fresh_orthanc")
def fresh_orthanc_fixture() -> Iterator[OrthancServer]:
    """A started Orthanc of the test's own, which the test may stop; always stopped."""
    with OrthancServer(_orthanc_executable()) as server:
        yield server
