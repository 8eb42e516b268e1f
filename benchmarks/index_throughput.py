#!/usr/bin/env python
"""``radtl index`` throughput and memory, and what an archive the size of RadiologyNET's would take.

The script

1. writes a synthetic archive (:func:`radtl.dicom.synthetic.write_archive`: CT, MR, CR and DX
   files with the header attributes a PACS export has, ``--image-size`` pixels a side);
2. indexes it from scratch with 1 and 2 workers (``--workers-list``), each in a fresh child
   process so that its peak memory is its own: files/s, peak RSS of the driver, and of the
   largest worker process (for N > 1 the local Dask cluster's start-up is part of the run);
3. re-runs on the unchanged archive (the listing and the DuckDB comparison alone);
4. measures the driver's bookkeeping at scale: an archive of ``--bookkeeping-files`` empty
   files (each an ``error`` row, so reading costs nothing) indexed in 1 worker, at two sizes,
   to show that the driver's peak memory does not grow with the archive;
5. prints markdown tables for ``docs/performance.md`` and an extrapolation to 25 million
   files (the study's archive) on N workers.

Usage::

    python benchmarks/index_throughput.py                         # 2000 files, workers 1,2, 2 repeats
    python benchmarks/index_throughput.py --files 400 --repeat 1  # a quick look

The default run takes about 3 minutes on a 2-core VM. Figures depend on the machine and its
load; compare the ratios within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine import cpu_model

STUDY_FILES = 25_000_000  # RadiologyNET's archive: 25 million DICOM files (thesis 2.2)


def run_child(arguments: list[str]) -> dict:
    """Run this script's ``--child`` mode in a fresh process and return what it measured."""
    output = subprocess.run([sys.executable, __file__, "--child", *arguments], check=True, capture_output=True, text=True)
    return json.loads(output.stdout.strip().splitlines()[-1])


def child(src: str, db: str, workers: int, chunk_size: int) -> None:
    from radtl.dicom.index import build_index

    start = time.perf_counter()
    summary = build_index(src, db, workers=workers, chunk_size=chunk_size, progress=False)
    seconds = time.perf_counter() - start
    print(json.dumps({
        "seconds": seconds,
        "indexed": summary.indexed,
        "unchanged": summary.unchanged,
        "driver_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "worker_peak_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
    }))


def write_empty_files(root: Path, count: int, per_folder: int = 1000) -> None:
    for number in range(count):
        folder = root / f"{number // per_folder:05d}"
        if number % per_folder == 0:
            folder.mkdir(parents=True)
        os.close(os.open(folder / f"{number:08d}.dcm", os.O_CREAT | os.O_WRONLY, 0o644))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=2000, help="files in the synthetic archive (multiple of 8)")
    parser.add_argument("--image-size", type=int, default=256)
    parser.add_argument("--workers-list", default="1,2")
    parser.add_argument("--chunk-size", type=int, default=250)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--bookkeeping-files", default="20000,200000", help="two archive sizes of empty files")
    parser.add_argument("--keep", type=Path, help="keep the archive and indexes here")
    parser.add_argument("--child", nargs=4, metavar=("SRC", "DB", "WORKERS", "CHUNK"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        src, db, workers, chunk = args.child
        child(src, db, int(workers), int(chunk))
        return

    from radtl.dicom.synthetic import write_archive

    work = args.keep or Path(tempfile.mkdtemp(prefix="radtl-index-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    archive = work / "archive"
    if not archive.exists():
        write_archive(archive, studies=args.files // 8, series_per_study=2, instances_per_series=4,
                      image_size=args.image_size)
    files = sum(1 for p in archive.rglob("*.dcm"))
    size_mb = sum(p.stat().st_size for p in archive.rglob("*.dcm")) / 2**20
    print(f"# radtl index benchmark, {time.strftime('%Y-%m-%d')}, {cpu_model()}, {os.cpu_count()} cores")
    print(f"archive: {files} files, {size_mb:.0f} MB ({args.image_size}x{args.image_size} 16-bit)\n")

    results: dict[int, list[dict]] = {}
    rerun: list[dict] = []
    for _ in range(args.repeat):
        for workers in [int(w) for w in args.workers_list.split(",")]:
            db = work / f"db{workers}"
            shutil.rmtree(db, ignore_errors=True)
            results.setdefault(workers, []).append(run_child([str(archive), str(db), str(workers), str(args.chunk_size)]))
            if workers == 1:
                rerun.append(run_child([str(archive), str(db), "1", str(args.chunk_size)]))

    print("| workers | files/s | seconds | driver peak RSS (MB) | largest worker peak RSS (MB) | speed-up |")
    print("|---|---|---|---|---|---|")
    best = {w: min(runs, key=lambda r: r["seconds"]) for w, runs in results.items()}
    base_rate = files / best[min(best)]["seconds"]
    for workers, run in best.items():
        rate = files / run["seconds"]
        worker_peak = "(in the driver)" if workers == 1 else f"{run['worker_peak_mb']:.0f}"
        print(f"| {workers} | {rate:.0f} | {run['seconds']:.1f} | {run['driver_peak_mb']:.0f} | {worker_peak} "
              f"| {rate / base_rate:.2f}x |")
    quiet = min(rerun, key=lambda r: r["seconds"])
    print(f"\nre-run on the unchanged archive (listing + comparison only): {quiet['seconds']:.2f} s "
          f"({files / quiet['seconds']:.0f} files/s checked), {quiet['unchanged']} unchanged\n")

    print("| empty files | seconds | files/s | driver peak RSS (MB) |")
    print("|---|---|---|---|")
    for count in [int(c) for c in args.bookkeeping_files.split(",")]:
        root = work / f"empty{count}"
        if not root.exists():
            write_empty_files(root, count)
        db = work / f"db-empty{count}"
        shutil.rmtree(db, ignore_errors=True)
        run = run_child([str(root), str(db), "1", "1000"])
        print(f"| {count} | {run['seconds']:.1f} | {count / run['seconds']:.0f} | {run['driver_peak_mb']:.0f} |")

    rate = files / best[min(best)]["seconds"]
    print(f"\n25 million files at {rate:.0f} files/s per worker (linear scaling assumed; the shared "
          "filesystem, not the CPU, is the limit beyond some N):")
    print("| workers | hours |")
    print("|---|---|")
    for workers in (1, 8, 32, 64):
        print(f"| {workers} | {STUDY_FILES / (rate * workers) / 3600:.1f} |")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
