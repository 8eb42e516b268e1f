"""The label tests' temporary files stay in pytest's folder, not the machine's: a task's result (MONAI Label's
endpoint removes it once it has answered, ``send_response``, but these tests also call the tasks directly), and the
logging configuration MONAI Label writes each time an app starts (``init_log_config``). The servers the tests
start get their own ``TMPDIR`` (tests/support/label_server.py)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator

import pytest


@pytest.fixture(scope="package", autouse=True)
def temporary_files_in_pytests_folder(tmp_path_factory) -> Iterator[None]:
    before = tempfile.tempdir
    tempfile.tempdir = str(tmp_path_factory.mktemp("tmp"))
    try:
        yield
    finally:
        tempfile.tempdir = before
