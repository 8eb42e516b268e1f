"""radtl.label.compat: MONAI Label's import of pydicom-seg satisfied without installing it (no MONAI Label needed)."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def run_python(code: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, check=False, **kwargs
    )


def test_the_stand_in_makes_pydicom_seg_importable_and_says_what_radtl_uses_instead():
    result = run_python("""
        import importlib.util, sys
        assert importlib.util.find_spec("pydicom_seg") is None, "this test needs pydicom-seg absent"
        import radtl.label  # installs the stand-in
        from radtl.label.compat import STAND_IN, install
        assert not install(), "installs once"
        import pydicom_seg
        assert pydicom_seg.__radtl_stand_in__ == STAND_IN
        try:
            pydicom_seg.MultiClassWriter
        except RuntimeError as error:
            print(error)
    """)
    assert result.returncode == 0, result.stderr
    assert "pydicom-seg is not installed" in result.stdout and "radtl.dicom.seg" in result.stdout


def test_an_installed_pydicom_seg_is_left_alone(tmp_path):
    (tmp_path / "pydicom_seg").mkdir()
    (tmp_path / "pydicom_seg" / "__init__.py").write_text("REAL = True\n")
    result = run_python(
        """
        from radtl.label.compat import install
        assert not install()
        import pydicom_seg
        print(pydicom_seg.REAL)
    """,
        env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"
