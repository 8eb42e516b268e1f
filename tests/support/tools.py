"""System tools and optional packages some tests need (dicom3tools, Orthanc, MONAI Label), skipped with the
reason when absent.

``.ci/run`` installs every tool, the README's test command installs MONAI Label, and ``.ci/run`` sets
``RADTL_REQUIRE_TOOLS=1``: then a missing tool or package is a failure, not a skip, so CI always
exercises these tests.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess

import pytest

__all__ = ["dciodvfy_errors", "require_package", "require_tool", "requires_tool"]


def _required() -> bool:
    return bool(os.environ.get("RADTL_REQUIRE_TOOLS"))


def requires_tool(executable: str, apt_package: str) -> pytest.MarkDecorator:
    """Skip the test when ``executable`` is not on PATH, unless RADTL_REQUIRE_TOOLS is set."""
    return pytest.mark.skipif(
        shutil.which(executable) is None and not _required(),
        reason=f"{executable} not installed (apt-get install {apt_package}); .ci/run installs it and sets RADTL_REQUIRE_TOOLS=1",
    )


def require_tool(executable: str, apt_package: str) -> str:
    """The path of ``executable``; fails the test when it is missing (call inside a :func:`requires_tool` test)."""
    path = shutil.which(executable)
    assert path, f"RADTL_REQUIRE_TOOLS is set but {executable} is missing (apt-get install {apt_package})"
    return path


def require_package(module: str, install: str) -> None:
    """Skip the calling test module when ``module`` cannot be imported; with RADTL_REQUIRE_TOOLS set, fail instead.

    Call at module level, before the module's imports of ``module``.
    """
    if importlib.util.find_spec(module) is not None:
        return
    if _required():
        raise ImportError(f"RADTL_REQUIRE_TOOLS is set but {module} is missing ({install})")
    pytest.skip(
        f"{module} not installed ({install}); the README's test command installs it, .ci/run sets RADTL_REQUIRE_TOOLS=1",
        allow_module_level=True,
    )


def dciodvfy_errors(path) -> list[str]:
    dciodvfy = require_tool("dciodvfy", "dicom3tools")
    report = subprocess.run([dciodvfy, str(path)], capture_output=True, text=True, check=False)
    return [line for line in report.stderr.splitlines() if line.startswith("Error")]
