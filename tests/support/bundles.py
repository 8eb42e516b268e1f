"""Running a bundle as its README says, in a fresh process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support.paths import REPO


def monai_run(bundle: str, *configs: str, cwd: Path = REPO, prefix: tuple[str, ...] = (), **settings):
    """``python -m monai.bundle run --config_file "[...]" --key value ...`` as the README writes it."""
    folder = Path("configs") if cwd != REPO else Path("bundles") / bundle / "configs"
    files = [str(folder / f"{c}.json") for c in configs]
    command = [*(prefix or (sys.executable,)), "-m", "monai.bundle", "run", "--config_file",
               files[0] if len(files) == 1 else str(files)]
    for key, value in settings.items():
        command += [f"--{key}", str(value)]
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=600)
    errors = [line for line in (result.stdout + result.stderr).splitlines() if "Error" in line]
    assert result.returncode == 0, "\n".join(errors[:20]) + "\n...\n" + result.stderr[-3000:]
    return result.stdout + result.stderr
