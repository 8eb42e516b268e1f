#!/usr/bin/env python
"""``radtl convert`` and ``radtl index`` over the whole mutant set: the figures of docs/reliability.md.

The script

1. writes ``--count`` seeded mutants of pydicom's test files (``tests/support/mutants.py``: truncations,
   flipped bytes, absurd Image Pixel Module values, huge declared lengths, bad windows, the
   deflate bomb, the RLE bomb, the 1x1 RLE image that panics pylibjpeg-rle);
2. runs ``radtl convert MUTANTS OUT`` and ``radtl index MUTANTS DB`` with their default options,
   each in its own process under ``/usr/bin/time -v``;
3. checks what docs/reliability.md promises: exit status 0, every mutant in the manifest
   (no frame twice, one row for a failed file) and exactly one index row per mutant, no
   ``internal-error``, the hostile files with their reason codes, peak memory under 2 GB;
4. prints the figures as markdown, and exits 1 when a promise is broken.

Usage::

    PYTHONPATH=. python benchmarks/mutants.py                    # 300 mutants, seed 0
    PYTHONPATH=. python benchmarks/mutants.py --count 1000 --seed 7 --keep /tmp/mutants

The default run takes about a minute on a 2-core VM (most of it the two commands' start-up).
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from radtl.dicom.index import query  # noqa: E402
from tests.support.mutants import HOSTILE_KINDS, SOURCES, write_mutants  # noqa: E402

MEMORY_LIMIT_KB = 2_000_000


def _run_timed(arguments: list[str]) -> tuple[int, int, float, str]:
    """Run ``radtl ARGUMENTS`` under ``/usr/bin/time -v``: exit status, peak RSS (kB), wall seconds, stdout."""
    radtl = Path(sys.executable).with_name("radtl")
    command = ["/usr/bin/time", "-v", str(radtl), *arguments, "--progress", "False"]
    environment = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    done = subprocess.run(command, capture_output=True, text=True, env=environment)
    peak = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr).group(1))
    clock = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", done.stderr).group(1)
    seconds = sum(float(part) * 60**power for power, part in enumerate(reversed(clock.split(":"))))
    exit_status = int(re.search(r"Exit status: (\d+)", done.stderr).group(1))
    if exit_status:
        print(done.stdout, done.stderr[-3000:], sep="\n", file=sys.stderr)
    return exit_status, peak, seconds, done.stdout


def _kind(name: str) -> str:
    """``0042-truncate-header-CT_small.dcm`` -> ``truncate-header``; ``rle-bomb.dcm`` -> ``rle-bomb``."""
    for source in SOURCES:
        if name.endswith(f"-{source}"):
            return name.removesuffix(f"-{source}").split("-", 1)[1]
    return name.removesuffix(".dcm")


def _codes(reasons) -> Counter:
    return Counter(reason.split(":", 1)[0] or "(none: ok)" for reason in reasons)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", type=Path, help="write mutants and outputs here and keep them")
    arguments = parser.parse_args()
    work = arguments.keep or Path(tempfile.mkdtemp(prefix="radtl-mutants-"))
    try:
        mutants = work / "mutants"
        shutil.rmtree(mutants, ignore_errors=True)
        paths = write_mutants(mutants, arguments.count, arguments.seed)
        broken: list[str] = []

        shutil.rmtree(work / "converted", ignore_errors=True)
        convert_run = _run_timed(["convert", str(mutants), str(work / "converted")])
        convert_status, convert_peak, convert_seconds, _ = convert_run
        with open(work / "converted" / "manifest.csv", newline="") as handle:
            manifest = list(csv.DictReader(handle))
        sources = Counter(row["source"] for row in manifest)
        frames = Counter((row["source"], row["frame"]) for row in manifest)
        failed = Counter(row["source"] for row in manifest if row["status"] == "error")
        if set(sources) != {str(path) for path in paths}:
            broken.append("convert: the manifest's sources are not the mutants")
        if max(frames.values()) > 1 or any(failed[s] and sources[s] != 1 for s in sources):
            broken.append("convert: a frame listed twice, or a failed file with more than one row")

        shutil.rmtree(work / "index", ignore_errors=True)
        index_status, index_peak, index_seconds, _ = _run_timed(["index", str(mutants), str(work / "index")])
        rows = query(work / "index", "SELECT path, status, reason, warnings FROM dicom")
        if sorted(rows["path"]) != sorted(str(path) for path in paths):
            broken.append("index: not exactly one row per mutant")

        for command, status, peak in (("convert", convert_status, convert_peak), ("index", index_status, index_peak)):
            if status:
                broken.append(f"{command}: exit status {status}")
            if peak > MEMORY_LIMIT_KB:
                broken.append(f"{command}: peak memory {peak / 1e6:.2f} GB")
        convert_codes = _codes(row["reason"] for row in manifest)
        index_codes = _codes(rows["reason"].fillna(""))
        if convert_codes["internal-error"] or index_codes["internal-error"]:
            broken.append("internal-error rows")
        for kind, code in HOSTILE_KINDS.items():
            (reason,) = [row["reason"] for row in manifest if Path(row["source"]).name == f"{kind}.dcm"]
            if not reason.startswith(f"{code}: "):
                broken.append(f"convert: {kind} got {reason!r}, not {code}")
        cut_short = int(rows["warnings"].fillna("").str.contains("cut short").sum())

        kinds = {_kind(path.name) for path in paths}
        print(f"{len(paths)} mutants (seed {arguments.seed}) of {len(SOURCES)} pydicom test files, "
              f"{len(kinds)} kinds\n")
        print("| command | exit status | rows | files | peak RSS | wall time |\n|---|---|---|---|---|---|")
        print(f"| `radtl convert` | {convert_status} | {len(manifest)} | {len(sources)} | {convert_peak / 1e6:.2f} GB "
              f"| {convert_seconds:.1f} s |")
        print(f"| `radtl index` | {index_status} | {len(rows)} | {rows['path'].nunique()} | {index_peak / 1e6:.2f} GB "
              f"| {index_seconds:.1f} s |\n")
        statuses = Counter(row["status"] for row in manifest)
        print("convert rows by status: " + ", ".join(f"{s} {n}" for s, n in sorted(statuses.items())))
        print("index rows by status: " + ", ".join(f"{s} {n}" for s, n in sorted(Counter(rows["status"]).items()))
              + f"; {cut_short} ok row(s) warn that the file is cut short\n")
        print("| reason code | convert rows | index rows |\n|---|---|---|")
        for code in sorted(set(convert_codes) | set(index_codes)):
            print(f"| {code} | {convert_codes[code]} | {index_codes[code]} |")
        print("\n" + ("every promise kept" if not broken else "BROKEN:\n  " + "\n  ".join(broken)))
        return 1 if broken else 0
    finally:
        if arguments.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
