"""``radtl-label``: MONAI Label's own command line, started after radtl's compatibility shim.

``radtl-label start_server --app apps/radtl --studies STUDIES --conf models luna_nodule_seg`` takes
exactly ``monailabel``'s arguments. It exists because ``monailabel start_server`` imports pydicom-seg
before any app code runs (see :mod:`radtl.label.compat`).
"""

from __future__ import annotations

import sys

from radtl.label.compat import install

__all__ = ["main"]


def main(argv: list[str] | None = None) -> None:
    """Run ``monailabel`` with ``argv`` (default: this process's arguments)."""
    install()
    try:
        from monailabel.main import Main
    except ImportError as error:
        sys.exit(
            f"radtl-label: MONAI Label is not installed ({error}); install it with\n"
            '  pip install "radtl[label]" && pip install --no-deps monailabel==0.8.5'
        )
    if argv is not None:
        sys.argv = [sys.argv[0], *argv]
    Main().run()


if __name__ == "__main__":
    main()
