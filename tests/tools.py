"""System tools some tests need (dicom3tools, Orthanc), skipped with the reason when absent.

``.ci/run`` installs every tool and sets ``RADTL_REQUIRE_TOOLS=1``: then a missing tool is a
failure, not a skip, so CI always exercises these tests.
"""

from __future__ import annotations

import os
import shutil

import pytest

__all__ = ["require_tool", "requires_tool"]


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
