#!/usr/bin/env python
"""How clustering scales: time and memory of radtl's clusterings from 10 thousand to a million points.

RadiologyNET clustered 1,337,926 files (thesis 2.4.3). The script

1. writes, for each N of ``--sizes``, N points of ``--dim`` float32 features in ``--centres``
   Gaussian blobs to a ``.npy`` file, a block at a time (the points never sit in memory whole);
2. clusters each, memory-mapped, in a fresh child process: mini-batch k-means with k =
   ``--k`` (fit, then the nearest centre of every point, ``--chunk-rows`` rows at a time), and
   for N up to ``--exact-up-to`` also Lloyd k-means and FasterPAM k-medoids (on a
   ``--medoid-sample`` row sample, then the nearest medoid of every point);
3. reports seconds, the peak of the process's private memory (RssAnon, sampled every 50 ms:
   what the clustering allocates) and its peak resident set (ru_maxrss, which also counts the
   pages of the memory-mapped file the kernel keeps in its page cache), and the homogeneity of
   the clusters against the blobs as a check that the fit is a real one.

Usage::

    python benchmarks/cluster_scale.py                                   # 10k, 100k, 1M x 1000
    python benchmarks/cluster_scale.py --sizes 10000,100000 --dim 256    # a quick look

The default run takes about 10 minutes and 4 GB of disk on a 2-core VM. Figures depend on
the machine and its load; compare the ratios within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Self

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine import cpu_model


def write_points(path: Path, n: int, dim: int, centres: int, seed: int, block: int = 50_000) -> None:
    """N blob points as a float32 .npy, and their blob in ``<path>.truth.npy``."""
    rng = np.random.default_rng(seed)
    means = rng.normal(0.0, 1.0, (centres, dim)).astype(np.float32)
    points = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, dim))
    truth = rng.integers(0, centres, n)
    for start in range(0, n, block):
        rows = slice(start, min(start + block, n))
        points[rows] = means[truth[rows]] + rng.normal(0.0, 0.5, (rows.stop - rows.start, dim)).astype(np.float32)
    points.flush()
    del points
    np.save(path.with_suffix(".truth.npy"), truth)


class PeakPrivateMemory:
    """The largest RssAnon of this process while the block runs, in MB (Linux)."""

    def __init__(self, interval: float = 0.05) -> None:
        self.interval, self.peak_mb, self._stop = interval, 0.0, threading.Event()

    @staticmethod
    def _rss_anon_mb() -> float:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def _watch(self) -> None:
        while not self._stop.is_set():
            self.peak_mb = max(self.peak_mb, self._rss_anon_mb())
            self._stop.wait(self.interval)

    def __enter__(self) -> Self:
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_mb = max(self.peak_mb, self._rss_anon_mb())


def child(path: str, algorithm: str, k: int, chunk_rows: int, medoid_sample: int, batch_size: int) -> None:
    from sklearn.metrics import homogeneity_score

    from radtl.pseudolabel.cluster import ClusterModel

    points = np.load(path, mmap_mode="r")
    truth = np.load(Path(path).with_suffix(".truth.npy"))
    before_mb = PeakPrivateMemory._rss_anon_mb()
    with PeakPrivateMemory() as memory:
        start = time.perf_counter()
        model = ClusterModel(k, algorithm, seed=0, batch_size=batch_size, medoid_sample=medoid_sample,
                             chunk_rows=chunk_rows).fit(points)
        fitted = time.perf_counter()
        labels = model.predict(points)
        assigned = time.perf_counter()
    print(json.dumps({
        "fit_s": fitted - start,
        "assign_s": assigned - fitted,
        "private_before_mb": before_mb,
        "private_peak_mb": memory.peak_mb,
        "rss_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "homogeneity": float(homogeneity_score(truth, labels)),
    }))


def run_child(arguments: list[str]) -> dict:
    output = subprocess.run([sys.executable, __file__, "--child", *arguments], check=True, capture_output=True, text=True)
    return json.loads(output.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--dim", type=int, default=1000)
    parser.add_argument("--k", type=int, default=50)
    parser.add_argument("--centres", type=int, default=50, help="Gaussian blobs the points are drawn from")
    parser.add_argument("--chunk-rows", type=int, default=65536)
    parser.add_argument("--batch-size", type=int, default=4096)
    parser.add_argument("--medoid-sample", type=int, default=5000)
    parser.add_argument("--exact-up-to", type=int, default=100_000, help="largest N Lloyd k-means and k-medoids run on")
    parser.add_argument("--keep", type=Path, help="keep the point files here")
    parser.add_argument("--child", nargs=6, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        path, algorithm, k, chunk_rows, medoid_sample, batch_size = args.child
        child(path, algorithm, int(k), int(chunk_rows), int(medoid_sample), int(batch_size))
        return

    work = args.keep or Path(tempfile.mkdtemp(prefix="radtl-cluster-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"# radtl clustering scale, {time.strftime('%Y-%m-%d')}, {cpu_model()}, {os.cpu_count()} cores")
    print(f"points: float32, {args.dim} features, {args.centres} blobs; k = {args.k}\n")
    print("| N | algorithm | data (MB) | fit (s) | assign (s) | private peak (MB) | RSS peak (MB) | homogeneity |")
    print("|---|---|---|---|---|---|---|---|")
    rows = []
    for n in [int(s) for s in args.sizes.split(",")]:
        path = work / f"points_{n}x{args.dim}.npy"
        if not path.exists():
            write_points(path, n, args.dim, args.centres, seed=0)
        algorithms = ["minibatch-kmeans"] + (["kmeans", "kmedoids"] if n <= args.exact_up_to else [])
        for algorithm in algorithms:
            result = run_child([str(path), algorithm, str(args.k), str(args.chunk_rows), str(args.medoid_sample),
                                str(args.batch_size)])
            data_mb = n * args.dim * 4 / 2**20
            rows.append({"n": n, "algorithm": algorithm, "data_mb": data_mb, **result})
            print(f"| {n:,} | {algorithm} | {data_mb:,.0f} | {result['fit_s']:.1f} | {result['assign_s']:.1f} | "
                  f"{result['private_peak_mb']:,.0f} | {result['rss_peak_mb']:,.0f} | {result['homogeneity']:.3f} |",
                  flush=True)
    minibatch = [r for r in rows if r["algorithm"] == "minibatch-kmeans"]
    if len(minibatch) > 1:
        first = minibatch[0]
        print("\nmini-batch k-means, growth against the smallest N:")
        for row in minibatch[1:]:
            total = (row["fit_s"] + row["assign_s"]) / (first["fit_s"] + first["assign_s"])
            print(f"- N x{row['n'] / first['n']:g}: time x{total:.1f}, private memory x{row['private_peak_mb'] / first['private_peak_mb']:.1f}")
    if not args.keep:
        for path in work.glob("points_*"):
            path.unlink()
        work.rmdir()


if __name__ == "__main__":
    main()
