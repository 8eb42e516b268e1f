"""Start-up compatibility of MONAI Label 0.8.5 with radtl's pydicom 3, in one place.

``monailabel.datastore.utils.convert`` imports ``pydicom_seg`` when the server starts, before any
app code runs. pydicom-seg cannot be installed beside radtl: it pins ``numpy<2`` and imports
``pydicom._storage_sopclass_uids``, which pydicom 3 removed. radtl's app never uses it: labels
become DICOM-SEG through :func:`radtl.dicom.seg.write_segmentation` (highdicom) and are read
back through :func:`radtl.dicom.seg.read_segmentation`. So when pydicom-seg is absent,
:func:`install` registers a stand-in module whose every attribute raises a :class:`RuntimeError`
that says so; an installed pydicom-seg is left alone.

:func:`install` must run before ``monailabel.interfaces.app`` is imported: ``radtl-label`` (the
server's entry point) calls it first thing, and the app's ``main.py`` calls it for the training
subprocess that MONAI Label starts with ``python -m monailabel.interfaces.utils.app``.
"""

from __future__ import annotations

import importlib.util
import sys
import types

__all__ = ["STAND_IN", "install"]

#: The name a stand-in module carries, so a caller can tell it from the real package.
STAND_IN = "radtl.label.compat"


class _PydicomSegStandIn(types.ModuleType):
    """``pydicom_seg`` as radtl's app needs it: importable, and useless by design."""

    __radtl_stand_in__ = STAND_IN

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        raise RuntimeError(
            f"pydicom_seg.{name}: pydicom-seg is not installed (it needs numpy<2 and pydicom<3); radtl's MONAI Label "
            "app writes and reads DICOM-SEG with radtl.dicom.seg (highdicom) instead"
        )


def install() -> bool:
    """Make ``import pydicom_seg`` succeed when pydicom-seg is absent; True when the stand-in was installed.

    Idempotent. An importable pydicom-seg (or an earlier stand-in) is kept as it is.
    """
    if "pydicom_seg" in sys.modules or importlib.util.find_spec("pydicom_seg") is not None:
        return False
    sys.modules["pydicom_seg"] = _PydicomSegStandIn("pydicom_seg", "radtl's stand-in for pydicom-seg (not installed)")
    return True
