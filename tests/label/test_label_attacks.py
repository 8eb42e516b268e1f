"""Attacks on ``radtl-label`` (issue 21, items 1-4), each against a real server on loopback, and the same rule for
every other way outside text becomes a bundle setting (``--conf``, ``radtl sweep``, a datalist).

One module-scoped server with a bearer token and a 4 MiB upload limit takes every probe; the start-up checks run
``radtl-label`` without starting a server (they exit, or stop at ``--dryrun``).
"""

from __future__ import annotations

import asyncio
import gzip
import http.client
import json
import os
import subprocess
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from tests.support.label_server import INSTALL
from tests.support.tools import require_package

require_package("monailabel", INSTALL)

from radtl.bundle import SettingError, checked_settings, run_workflow
from radtl.label.app import RadtlApp
from radtl.label.guard import RequestGuard
from radtl.label.tasks import BundleFineTune
from radtl.sweep import sweep
from tests.support.label_server import CXR, LUNA, LabelServer, _command, ct_nifti, ct_studies, make_app

TOKEN = "radtl-test-token-0123456789abcdef"
UPLOAD_LIMIT_MB = 4
GRID = (64, 64, 12)


def code_payload(marker: Path) -> str:
    """A setting that MONAI's config parser would run as Python: it creates ``marker``."""
    return f"$__import__('pathlib').Path({str(marker)!r}).touch()"


def label_file(mask: np.ndarray, affine: np.ndarray) -> bytes:
    return gzip.compress(nib.Nifti1Image(mask.astype(np.uint8), affine).to_bytes())


def gzip_bomb_label(side: int = 1024) -> bytes:
    """A NIfTI label of ``side``**3 uint8 voxels as about 1 MB of gzip: a header member, then members of zeros."""
    header = nib.Nifti1Header()
    header.set_data_dtype(np.uint8)
    header.set_data_shape((side, side, side))
    header.set_data_offset(352)
    start = header.binaryblock + b"\0" * 4  # the 348-byte header and the 4-byte extension flag
    chunk = 16 << 20
    zeros = gzip.compress(bytes(chunk), compresslevel=9)
    return gzip.compress(start) + zeros * (side**3 // chunk)


@pytest.fixture(scope="module")
def guarded(tmp_path_factory):
    """A server with a bearer token over a studies folder holding two CTs."""
    root = tmp_path_factory.mktemp("label-guarded")
    studies = ct_studies(root)
    app = make_app(root, {"luna_nodule_seg": {}})
    conf = {"models": "luna_nodule_seg"}
    args = ["--max_upload_mb", str(UPLOAD_LIMIT_MB)]
    with LabelServer(app, studies, conf, root, token=TOKEN, args=args) as server:
        yield server


# 1. No code runs from a request: a train setting is parsed to its type or refused, naming it.


@pytest.mark.parametrize("setting", ["max_epochs", "lr", "patience", "batch_size"])
@pytest.mark.parametrize("run_sync", ["false", "true"])
def test_a_train_setting_that_monai_would_evaluate_runs_nothing_and_is_refused_by_name(
    guarded, tmp_path, setting, run_sync
):
    marker = tmp_path / "executed"
    answer = guarded.request(
        "POST", "/train/luna_nodule_seg", params={"run_sync": run_sync}, json={setting: code_payload(marker)}
    )
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"].startswith(f"train request: {setting}: expected ")
    time.sleep(0.5)  # a training subprocess, had one started, would have parsed its settings by now
    assert not marker.exists()


def test_a_setting_for_one_model_in_a_train_all_request_is_checked_too(guarded, tmp_path):
    marker = tmp_path / "executed"
    answer = guarded.request("POST", "/train/", json={"luna_nodule_seg": {"max_epochs": code_payload(marker)}})
    assert answer.status_code == 422 and "max_epochs" in answer.json()["detail"]
    assert not marker.exists()


@pytest.mark.parametrize("value", [0, 10**9, 2.5, True, "ten", [1], {"_target_": "os.system"}])
def test_a_train_setting_of_another_type_or_out_of_bounds_is_refused(guarded, value):
    answer = guarded.request("POST", "/train/luna_nodule_seg", json={"max_epochs": value})
    assert answer.status_code == 422
    assert "max_epochs: expected an integer from 1 to 100000" in answer.json()["detail"]


@pytest.mark.parametrize("output", ["image", "dicom_seg"])
def test_inference_takes_an_image_of_the_datastore_never_a_path_on_the_server(guarded, output):
    answer = guarded.request(
        "POST", "/infer/luna_nodule_seg", params={"image": guarded.studies + "/ct001.nii.gz", "output": output}
    )
    assert answer.status_code == 404 and "no image" in answer.json()["detail"]


# 2. Nothing is written outside the store, replaced or deleted without the setting that allows it.


@pytest.mark.parametrize("path", ["/datastore/", "/datastore/image"])
def test_an_image_id_that_leads_outside_the_studies_is_refused(guarded, path):
    studies = Path(guarded.studies)
    answer = guarded.request(
        "PUT", path, params={"image": "../victim/written"}, files={"file": ("x.nii.gz", b"junk")}
    )
    assert answer.status_code == 422 and "not a plain name" in answer.json()["detail"]
    assert not (studies.parent / "victim").exists()
    assert not list(studies.parent.rglob("written*"))


def test_an_existing_image_is_not_replaced(guarded):
    image = Path(guarded.studies) / "ct002.nii.gz"
    before = image.read_bytes()
    answer = guarded.request(
        "PUT", "/datastore/image", params={"image": "ct002"}, files={"file": ("ct002.nii.gz", b"junk")}
    )
    assert answer.status_code == 409 and "--conf allow_overwrite true" in answer.json()["detail"]
    assert image.read_bytes() == before


def test_a_label_tag_that_leads_outside_the_labels_folder_is_refused(guarded):
    affine = nib.load(guarded.studies + "/ct001.nii.gz").affine
    mask = np.zeros(GRID, np.uint8)
    answer = guarded.request(
        "PUT",
        "/datastore/label",
        params={"image": "ct001", "tag": "../../victim"},
        files={"label": ("ct001.nii.gz", label_file(mask, affine))},
    )
    assert answer.status_code == 422 and "label tag '../../victim' is not a plain name" in answer.json()["detail"]
    assert not list(Path(guarded.studies).parent.rglob("victim*"))


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/datastore/", {"id": "ct001"}),
        ("/datastore/image", {"id": "ct001"}),
        ("/datastore/label", {"id": "ct001", "tag": "final"}),
    ],
)
def test_deleting_is_off_unless_the_server_allows_it(guarded, path, params):
    answer = guarded.request("DELETE", path, params=params)
    assert answer.status_code == 403 and "--conf allow_delete true" in answer.json()["detail"]
    assert (Path(guarded.studies) / "ct001.nii.gz").is_file()


# 3. Memory stays bounded: a label is checked from its header, an upload from its Content-Length.


def test_a_gzip_bomb_label_is_refused_from_its_header_and_memory_stays_bounded(guarded):
    bomb = gzip_bomb_label()
    assert len(bomb) < 2 << 20
    before = guarded.rss_bytes()
    started = time.monotonic()
    answer = guarded.request(
        "PUT", "/datastore/label", params={"image": "ct001", "tag": "final"}, files={"label": ("ct001.nii.gz", bomb)}
    )
    seconds = time.monotonic() - started
    grown = guarded.rss_bytes() - before
    assert answer.status_code == 422, answer.text
    assert "declares (1024, 1024, 1024) voxels" in answer.json()["detail"]
    assert seconds < 10 and grown < 500 << 20, (seconds, grown)
    assert not (Path(guarded.studies) / "labels" / "final" / "ct001.nii.gz").exists()


def test_an_image_declaring_more_than_the_per_image_budget_is_refused_from_its_header(guarded):
    bomb = gzip_bomb_label(side=1100)  # 1.33 GB of uint8 declared, 1.3 MB sent
    before = guarded.rss_bytes()
    answer = guarded.request("PUT", "/datastore/image", params={"image": "bomb"}, files={"file": ("bomb.nii.gz", bomb)})
    grown = guarded.rss_bytes() - before
    assert answer.status_code == 422 and "over this server's per-image budget" in answer.json()["detail"], answer.text
    assert grown < 500 << 20, grown
    assert not list(Path(guarded.studies).glob("bomb*"))


def test_a_body_over_the_upload_limit_is_refused_before_it_is_read(guarded):
    connection = http.client.HTTPConnection("127.0.0.1", guarded.port, timeout=30)
    connection.putrequest("PUT", "/datastore/image?image=big")
    connection.putheader("Authorization", f"Bearer {TOKEN}")
    connection.putheader("Content-Type", "multipart/form-data; boundary=x")
    connection.putheader("Content-Length", str((UPLOAD_LIMIT_MB + 1) << 20))
    connection.endheaders()  # and no body: the answer must not wait for it
    answer = connection.getresponse()
    assert answer.status == 413 and b"at most" in answer.read()
    connection.close()


def test_a_body_that_does_not_declare_its_length_is_refused(guarded):
    connection = http.client.HTTPConnection("127.0.0.1", guarded.port, timeout=30)
    connection.putrequest("PUT", "/datastore/image?image=big")
    connection.putheader("Authorization", f"Bearer {TOKEN}")
    connection.putheader("Transfer-Encoding", "chunked")
    connection.endheaders()
    answer = connection.getresponse()
    assert answer.status == 411 and b"Content-Length" in answer.read()
    connection.close()


# 4. Authentication: a server with a token answers nothing without it; one beyond loopback needs one.


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/info/"),
        ("GET", "/"),
        ("GET", "/openapi.json"),
        ("GET", "/datastore/?output=all"),
        ("GET", "/datastore/image?image=ct001"),
        ("PUT", "/datastore/image?image=new"),
        ("DELETE", "/datastore/?id=ct001"),
        ("POST", "/infer/luna_nodule_seg?image=ct001"),
        ("POST", "/infer/luna_nodule_seg?image=ct001&output=dicom_seg"),
        ("POST", "/train/luna_nodule_seg"),
        ("DELETE", "/train/"),
    ],
)
@pytest.mark.parametrize("authorization", [None, "Bearer wrong-token-0123456789", f"Basic {TOKEN}", TOKEN])
def test_no_request_without_the_token_succeeds(guarded, method, path, authorization):
    headers = {"Authorization": authorization} if authorization else {}
    answer = guarded.request(method, path, headers=headers)
    assert answer.status_code == 401 and answer.headers["www-authenticate"] == "Bearer"
    assert TOKEN not in answer.text


def test_with_the_token_requests_succeed_and_a_label_is_saved(guarded):
    assert guarded.request("GET", "/info/").json()["datastore"]["total"] == 2
    affine = nib.load(guarded.studies + "/ct001.nii.gz").affine
    mask = np.zeros(GRID, np.uint8)
    mask[20:30, 20:30, 3:6] = 1
    answer = guarded.request(
        "PUT",
        "/datastore/label",
        params={"image": "ct001", "tag": "final"},
        files={"label": ("ct001.nii.gz", label_file(mask, affine))},
    )
    assert answer.status_code == 200, answer.text
    stored = nib.load(Path(guarded.studies) / "labels" / "final" / "ct001.nii.gz")
    np.testing.assert_array_equal(np.asarray(stored.dataobj), mask)


def test_the_token_never_appears_in_the_servers_log(guarded):
    assert TOKEN not in guarded.log_path.read_text(errors="replace")


def start_server(tmp_path, *args, env=None, timeout=120) -> subprocess.CompletedProcess:
    app = tmp_path / "app"
    app.mkdir(exist_ok=True)
    command = [*_command(), "start_server", "--app", str(app), "--studies", str(tmp_path / "studies"), *args]
    environment = {k: v for k, v in os.environ.items() if not k.startswith("RADTL_LABEL_TOKEN")}
    environment["TMPDIR"] = str(tmp_path)  # MONAI Label writes its logging configuration there
    return subprocess.run(
        command, cwd=tmp_path, env={**environment, **(env or {})}, capture_output=True, text=True, timeout=timeout,
        check=False,
    )


def test_a_non_loopback_host_without_a_token_refuses_to_start_with_one_line(tmp_path):
    result = start_server(tmp_path, "--host", "0.0.0.0", "--port", "9")
    assert result.returncode != 0
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("radtl-label: refusing to listen on 0.0.0.0 without authentication")


def test_insecure_lets_it_listen_beyond_loopback_and_says_so(tmp_path):
    result = start_server(tmp_path, "--host", "0.0.0.0", "--insecure", "--dryrun")
    assert result.returncode == 0, result.stderr
    assert "listening on 0.0.0.0; authentication: NONE (--insecure)" in result.stderr
    assert "USING:: host = 0.0.0.0" in result.stderr


def test_the_server_listens_on_loopback_unless_told_otherwise(tmp_path):
    result = start_server(tmp_path, "--dryrun")
    assert result.returncode == 0, result.stderr
    assert "USING:: host = 127.0.0.1" in result.stderr
    assert "USING:: uvicorn_app = radtl.label.asgi:app" in result.stderr


def test_a_token_file_lets_it_listen_beyond_loopback_and_the_token_is_not_logged(tmp_path):
    (tmp_path / "token").write_text(TOKEN + "\n")
    result = start_server(tmp_path, "--host", "0.0.0.0", "--token_file", str(tmp_path / "token"), "--dryrun")
    assert result.returncode == 0, result.stderr
    assert "authentication: bearer token" in result.stderr and TOKEN not in result.stderr + result.stdout


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--token", TOKEN], {}, "a token on the command line is visible to every user"),
        ([], {"RADTL_LABEL_TOKEN": "tiny-secret"}, "the token is shorter than 16 characters"),
        ([], {"RADTL_LABEL_TOKEN_FILE": "/no/such/token"}, "cannot read the token file /no/such/token"),
        ([], {"RADTL_LABEL_TOKEN": TOKEN, "MONAI_LABEL_AUTH_ENABLE": "true"}, "use one"),
    ],
)
def test_an_unusable_token_stops_the_start_with_one_line_that_does_not_hold_it(tmp_path, args, env, message):
    result = start_server(tmp_path, *args, env=env)
    assert result.returncode != 0
    (line,) = result.stderr.strip().splitlines()
    assert message in line
    assert TOKEN not in line and "tiny-secret" not in line


# The same rule wherever else outside text becomes a bundle setting.


def test_conf_bundle_settings_are_parsed_to_their_types(tmp_path):
    conf = {"models": "luna_nodule_seg", "luna_nodule_seg": json.dumps({"threshold": "0.4", "checkpoint": "/w/m.pt"})}
    app = RadtlApp(str(tmp_path), str(tmp_path / "studies"), conf)
    assert app.bundle_settings["luna_nodule_seg"] == {"threshold": 0.4}


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"threshold": "$__import__('os').getcwd()"}, "threshold: expected a number from 0 to 1"),
        ({"checkpoint": "%/etc/passwd"}, "checkpoint: '%/etc/passwd' would be evaluated"),
        ({"network_def": {"_target_": "os.system"}}, "network_def: not a setting --conf luna_nodule_seg may give"),
        ({"backbone": "@network_def"}, "backbone: expected one of"),
    ],
)
def test_conf_bundle_settings_that_monai_would_evaluate_are_refused_by_name(tmp_path, settings, message):
    conf = {"models": "luna_nodule_seg", "luna_nodule_seg": json.dumps(settings)}
    with pytest.raises(SettingError, match=message.replace("(", r"\(")):
        RadtlApp(str(tmp_path), str(tmp_path / "studies"), conf)


@pytest.mark.parametrize("key", ["allow_overwrite", "allow_delete", "validation_every"])
def test_conf_switches_are_parsed_to_their_types(tmp_path, key):
    with pytest.raises(SettingError, match=f"--conf {key}: expected"):
        RadtlApp(str(tmp_path), str(tmp_path / "studies"), {"models": "luna_nodule_seg", key: "$x"})


def test_a_sweep_setting_that_monai_would_evaluate_is_refused_before_any_run(tmp_path):
    marker = tmp_path / "executed"
    with pytest.raises(SettingError, match="max_epochs: expected an integer"):
        sweep("btmr", lrs="1e-3", repeats=1, backbones="resnet18", output_dir=tmp_path / "out",
              max_epochs=code_payload(marker))
    with pytest.raises(SettingError, match="backbone: expected one of"):
        sweep("btmr", lrs="1e-3", repeats=1, backbones="@network_def", output_dir=tmp_path / "out")
    assert not marker.exists() and not (tmp_path / "out").exists()


class _Datastore:
    def __init__(self, items):
        self.items = items

    def datalist(self):
        return self.items


@pytest.mark.parametrize("path", ["$__import__('os').getcwd()", "@bundle_root", "%/etc/passwd", "/a::b"])
def test_a_datalist_path_that_monai_would_evaluate_never_reaches_the_parser(tmp_path, path):
    task = BundleFineTune("luna_nodule_seg", tmp_path / "model")
    items = [{"image": "/data/ct1.nii.gz", "label": "/data/l1.nii.gz"}, {"image": path, "label": "/data/l2.nii.gz"}]
    with pytest.raises(SettingError, match="datalist#"):
        task({"max_epochs": 1}, _Datastore(items))
    assert not (tmp_path / "model" / "datalist.json").exists()


def test_run_workflow_refuses_nested_overrides_the_parser_would_evaluate(tmp_path):
    with pytest.raises(SettingError, match="datalist#training#0#_target_"):
        run_workflow([], {"datalist": {"training": [{"_target_": "os.system", "command": "true"}]}})


def test_checked_settings_names_an_unknown_setting_and_lists_the_accepted(tmp_path):
    with pytest.raises(SettingError, match="^device_ids: not a setting x may give; it may give max_epochs$"):
        checked_settings({"device_ids": 1}, "x", ["max_epochs"])


def test_an_nrrd_label_declaring_more_voxels_than_its_image_is_refused_from_its_header(tmp_path):
    from radtl.label.datastore import LabelError, checked_label

    image = ct_nifti(LUNA / "case001", tmp_path / "ct.nii.gz")
    header = b"NRRD0004\ntype: uint8\ndimension: 3\nsizes: 1024 1024 1024\nencoding: gzip\n\n"
    (tmp_path / "bomb.nrrd").write_bytes(header + gzip.compress(bytes(1 << 20)))
    with pytest.raises(LabelError, match=r"declares \(1024, 1024, 1024\) voxels of 1 bytes, more than its image"):
        checked_label(tmp_path / "bomb.nrrd", image, segments=1)


def test_a_label_in_a_format_without_a_readable_header_is_refused(tmp_path):
    from radtl.label.datastore import LabelError, checked_label

    image = ct_nifti(LUNA / "case001", tmp_path / "ct.nii.gz")
    (tmp_path / "label.mha").write_bytes(b"ObjectType = Image\nDimSize = 1024 1024 1024\n")
    with pytest.raises(LabelError, match="radtl takes labels as .nii.gz, .nii, .nrrd, .png, .jpg, .jpeg"):
        checked_label(tmp_path / "label.mha", image, segments=1)


def test_a_websocket_without_the_token_is_closed_before_the_app_sees_it():
    seen, sent = [], []

    async def app(scope, receive, send):
        seen.append(scope["type"])

    async def receive():
        return {"type": "websocket.connect"}

    async def send(message):
        sent.append(message)

    guard = RequestGuard(app, TOKEN, max_body_bytes=1024)
    scope = {"type": "websocket", "path": "/", "headers": [(b"authorization", b"Bearer wrong-token-0123456789")]}
    asyncio.run(guard(scope, receive, send))
    assert seen == [] and sent == [{"type": "websocket.close", "code": 1008}]
    asyncio.run(guard(dict(scope, headers=[(b"authorization", f"Bearer {TOKEN}".encode())]), receive, send))
    assert seen == ["websocket"]


def nrrd_label(path: Path, shape: tuple[int, ...], encoding: str, data: bytes, extra: str = "") -> Path:
    sizes = " ".join(map(str, shape))
    header = f"NRRD0004\ntype: uint8\ndimension: {len(shape)}\nsizes: {sizes}\nencoding: {encoding}\n{extra}\n"
    path.write_bytes(header.encode() + data)
    return path


def test_a_gzip_nrrd_label_inflating_beyond_its_declared_grid_is_refused_as_it_inflates(tmp_path):
    from radtl.label.datastore import LabelError, checked_label, declared_grid

    image = ct_nifti(LUNA / "case001", tmp_path / "ct.nii.gz")
    grid = nib.load(image).shape
    bomb = nrrd_label(tmp_path / "bomb.nrrd", grid, "gzip", gzip.compress(bytes(64 << 20)))  # 64 MiB in ~64 kB
    with pytest.raises(LabelError, match="inflates to more than the .* bytes its header declares"):
        checked_label(bomb, image, segments=1)
    whole = nrrd_label(tmp_path / "label.nrrd", grid, "gzip", gzip.compress(bytes(int(np.prod(grid)))))
    assert declared_grid(whole) == (grid, 1)  # gzip data of the declared size passes the check


def test_a_detached_nrrd_label_that_would_read_another_file_is_refused(tmp_path):
    from radtl.label.datastore import LabelError, checked_label

    image = ct_nifti(LUNA / "case001", tmp_path / "ct.nii.gz")
    detached = nrrd_label(tmp_path / "label.nrrd", nib.load(image).shape, "raw", b"", extra="data file: /etc/passwd\n")
    with pytest.raises(LabelError, match="a detached NRRD"):
        checked_label(detached, image, segments=1)


@pytest.mark.parametrize("upload", ["ct.nii.gz", "radiograph.dcm"])
def test_an_image_within_the_budget_is_added_under_its_plain_id(guarded, tmp_path, upload):
    if upload.endswith(".dcm"):
        image = CXR
    else:
        image = ct_nifti(LUNA / "case003", tmp_path / upload)
    image_id = f"new-{upload.split('.')[0]}"
    answer = guarded.request(
        "PUT", "/datastore/image", params={"image": image_id}, files={"file": (upload, image.read_bytes())}
    )
    assert answer.status_code == 200, answer.text
    suffix = "".join(Path(upload).suffixes)
    assert [path.name for path in Path(guarded.studies).glob(f"{image_id}.*")] == [f"{image_id}{suffix}"]


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
def test_model_weights_are_never_replaced_or_deleted_over_http(guarded, method):
    checkpoint = Path(guarded.app) / "model" / "luna_nodule_seg" / "model.pt"
    before = checkpoint.read_bytes()
    files = {"file": ("model.pt", b"a pickle the server would load")} if method == "PUT" else None
    answer = guarded.request(method, "/model/luna_nodule_seg", files=files)
    assert answer.status_code == 403 and "not replaced or deleted over HTTP" in answer.json()["detail"]
    assert checkpoint.read_bytes() == before
