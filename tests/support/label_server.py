"""A real MONAI Label server running radtl's app, for tests: loopback, a free port, always stopped.

It is started the documented way, ``radtl-label start_server --app APP --studies STUDIES --conf ...``,
with the app folder copied from ``apps/radtl`` and untrained checkpoints written where the app looks
first (``APP/model/<bundle>/model.pt``), so the tests need no trained weights.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Self

import nibabel as nib
import numpy as np
import pydicom
import requests
import torch

from radtl.bundle import load_bundle_config
from radtl.transforms import LoadCTVolume
from tests.support.orthanc import free_port
from tests.support.paths import REPO

__all__ = [
    "BONE_AGE_SETTINGS",
    "CXR",
    "HAND",
    "INSTALL",
    "LUNA",
    "LabelServer",
    "ct_nifti",
    "ct_studies",
    "make_app",
    "with_patient_sex",
]

LUNA = REPO / "dicom_samples" / "tasks" / "luna_nodule"
CXR = REPO / "dicom_samples" / "tasks" / "covid19_radiography" / "COVID" / "images" / "COVID-1.dcm"
#: A hand radiograph of the bone-age sample (CR, Patient's Sex M).
HAND = REPO / "dicom_samples" / "tasks" / "bone_age" / "boneage-training-dataset" / "12946.dcm"
#: A small bone-age network, chosen through --conf.
BONE_AGE_SETTINGS = {"backbone": "mobilenet_v3_small"}
INSTALL = 'pip install "radtl[label]" && pip install --no-deps monailabel==0.8.5'


def ct_nifti(series: Path, path: Path) -> Path:
    """A DICOM CT series saved as NIfTI (int16 HU, its RAS affine), as a local datastore holds CT."""
    volume = LoadCTVolume()(series)
    nib.save(nib.Nifti1Image(volume[0].numpy().astype(np.int16), volume.affine.numpy()), str(path))
    return path


def with_patient_sex(source: Path, sex: str | None, path: Path) -> Path:
    """``source`` copied to ``path`` with Patient's Sex (0010,0040) set to ``sex`` (None: the attribute removed)."""
    ds = pydicom.dcmread(source)
    if sex is None:
        del ds.PatientSex
    else:
        ds.PatientSex = sex
    ds.save_as(path)
    return path


def ct_studies(root: Path) -> Path:
    """``root/studies``: a local datastore holding two sample CTs as NIfTI, ``ct001`` and ``ct002``."""
    studies = root / "studies"
    studies.mkdir()
    ct_nifti(LUNA / "case001", studies / "ct001.nii.gz")
    ct_nifti(LUNA / "case002", studies / "ct002.nii.gz")
    return studies


def make_app(root: Path, bundles: dict[str, dict]) -> Path:
    """``root/app``: the radtl app with an untrained checkpoint for each bundle (built with its settings)."""
    app = root / "app"
    app.mkdir(parents=True)
    shutil.copy(REPO / "apps" / "radtl" / "main.py", app / "main.py")
    for name, settings in bundles.items():
        network = load_bundle_config(name, settings).get_parsed_content("network_def", lazy=False)
        (app / "model" / name).mkdir(parents=True)
        torch.save({"model": network.state_dict()}, app / "model" / name / "model.pt")
    return app


def _command() -> list[str]:
    script = Path(sys.executable).with_name("radtl-label")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "radtl.label.server"]


class LabelServer:
    """``radtl-label start_server`` on 127.0.0.1; a context manager that always stops it.

    Args:
        app: the app folder.
        studies: a studies folder or a DICOMweb URL.
        conf: ``--conf`` key/value pairs.
        workdir: the server's working directory (its log goes there too).
        env: extra environment (MONAI Label's settings).
        token: the bearer token the server requires (given as ``RADTL_LABEL_TOKEN``), sent with every request.
        args: further ``radtl-label start_server`` arguments (``--max_upload_mb 4``).
    """

    def __init__(
        self,
        app: Path,
        studies: str | Path,
        conf: dict[str, str],
        workdir: Path,
        env: dict[str, str] | None = None,
        startup_timeout_s: float = 180.0,
        token: str | None = None,
        args: list[str] | None = None,
    ) -> None:
        self.app, self.studies, self.conf, self.workdir = app, str(studies), conf, workdir
        self.env = {**os.environ, **(env or {})}
        self.env.pop("RADTL_LABEL_TOKEN", None)
        self.env.pop("RADTL_LABEL_TOKEN_FILE", None)
        # the server's temporary files (MONAI Label's logging config, uploads it keeps after a refused request) go
        # to the test's folder, not the machine's
        self.temporary = workdir / "tmp"
        self.temporary.mkdir(parents=True, exist_ok=True)
        self.env["TMPDIR"] = str(self.temporary)
        if token:
            self.env["RADTL_LABEL_TOKEN"] = token
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.args = list(args or [])
        self.startup_timeout_s = startup_timeout_s
        self.port = free_port()
        self.log_path = workdir / f"monailabel-{self.port}.log"
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Self:
        command = [
            *_command(),
            "start_server",
            "--app",
            str(self.app),
            "--studies",
            self.studies,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            *self.args,
        ]
        for key, value in self.conf.items():
            command += ["--conf", key, value]
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                command, cwd=self.workdir, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited with status {self.process.returncode}:\n{self.log_tail()}")
            try:
                if requests.get(f"{self.url}/info/", headers=self.headers, timeout=60).status_code == 200:
                    return self
            except requests.ConnectionError:
                pass
            time.sleep(0.5)
        self.stop()
        raise TimeoutError(f"no answer on {self.url}/info/ in {self.startup_timeout_s:.0f} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, timeout_s: float = 20.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)  # the server and any training subprocess it started
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        """A request with the server's token (unless ``headers`` are given)."""
        kwargs.setdefault("headers", self.headers)
        return requests.request(method, f"{self.url}{path}", timeout=300, **kwargs)

    def rss_bytes(self) -> int:
        """The server process's resident memory (``VmRSS`` of ``/proc/<pid>/status``)."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError(f"no VmRSS for process {self.process.pid}")
