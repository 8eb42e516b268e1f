"""Deterministic generator of small synthetic DICOM sample files for radtl.

Every file written here is *synthetic*: pixel data are geometric phantoms
(ellipses, capsules, smooth noise) and all patient data are invented. The
output is byte-for-byte reproducible: fixed dates/times, UIDs derived from
fixed strings (``pydicom.uid.generate_uid(entropy_srcs=...)``), fixed random
seeds and a fixed Implementation Class UID / Version Name in the File Meta.

This script is the command line of :mod:`radtl.dicom.synthetic`, which builds
the files: one function per PS3.3 module (``modules``), one per IOD (``iods``),
the phantoms (``phantoms``) and one module per sample set (``sets/<name>.py``).
It imports this checkout's ``radtl``, installed or not; that package needs only
pydicom (3.x) and numpy.

Usage::

    python dicom_samples/make_samples.py --out dicom_samples      # all sets
    python dicom_samples/make_samples.py --out /tmp/x --only ct   # one set
    python dicom_samples/make_samples.py --list                   # list sets

Programmatic use::

    from radtl.dicom.synthetic import make_samples, SAMPLE_SETS
    paths = make_samples(out_dir, only=["cr", "dx"])
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # this checkout's radtl, whether or not it is installed

import pydicom

from radtl.dicom.synthetic.sets import SAMPLE_SETS, make_samples, sample_set

__all__ = ["SAMPLE_SETS", "main", "make_samples", "sample_set"]


def main(argv: Sequence[str] | None = None) -> int:
    """Write the sample sets and list the written files with their sizes; ``--list`` names the sets."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(__file__).resolve().parent,
        help="output folder (default: the folder containing this script)",
    )
    parser.add_argument(
        "--only",
        action="append",
        metavar="NAME",
        choices=sorted(SAMPLE_SETS),
        help="generate only this set (repeatable)",
    )
    parser.add_argument("--list", action="store_true", help="list the registered sets and exit")
    args = parser.parse_args(argv)
    if args.list:
        print("\n".join(SAMPLE_SETS))
        return 0
    paths = make_samples(args.out, args.only)
    total = sum(p.stat().st_size for p in paths)
    for p in paths:
        print(f"{p.stat().st_size:>9}  {p}")
    print(f"{total:>9}  total ({len(paths)} files, pydicom {pydicom.__version__})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
