"""Seconds for ``radtl pull`` (WADO-RS, C-GET, C-MOVE) from a local Orthanc, and for ``radtl export``.

Pull: ``--series`` series of ``--instances`` synthetic instances (64x64) are stored in a fresh Orthanc on
127.0.0.1 (untimed), then pulled by each protocol with 1 and 2 workers into a new folder, and once more into the
same folder (a re-run that finds every series whole and fetches nothing). Export: the same files are indexed
(untimed) and exported de-identified under the Basic Profile with retain-longitudinal-dates, by one process and
by two, then exported again into the same OUT (a re-run that writes nothing). Each figure is the median of
``--repeat`` runs; compare them as ratios within one run, the machine being shared.

Needs Orthanc with its DICOMweb plugin (``apt install orthanc orthanc-dicomweb``).

Usage::

    python benchmarks/cohort_throughput.py                     # 20 series x 10 instances, 3 repeats
    python benchmarks/cohort_throughput.py --series 40 --json cohort.json   # 400 instances
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from machine import cpu_model  # noqa: E402

from radtl.atomic import write_json_atomic  # noqa: E402
from radtl.cohort.export import export_cohort  # noqa: E402
from radtl.cohort.pull import pull_cohort  # noqa: E402
from radtl.dicom.index.build import build_index  # noqa: E402
from radtl.dicom.pacs import send  # noqa: E402
from radtl.dicom.synthetic.archive import write_archive  # noqa: E402
from tests.support.orthanc import OrthancServer, orthanc_executable  # noqa: E402


def timed(run) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def median_of(repeat: int, run) -> float:
    return statistics.median(timed(run) for _ in range(repeat))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=20)
    parser.add_argument("--instances", type=int, default=10, help="instances per series")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as scratch, OrthancServer(orthanc_executable()) as orthanc:
        scratch = Path(scratch)
        files = write_archive(scratch / "archive", studies=args.series // 2, series_per_study=2,
                              instances_per_series=args.instances, image_size=64, seed=3)
        count = len(files)
        send([f.path for f in files], orthanc.dicom_url)
        urls = {"WADO-RS": (orthanc.dicomweb_url, {}), "C-GET": (orthanc.dicom_url, {}),
                "C-MOVE": (orthanc.dicom_url, {"retrieve": "move", "listen": f"127.0.0.1:{orthanc.radtl_port}"})}
        runs = iter(range(10**6))
        for protocol, (url, extra) in urls.items():
            for workers in (1, 2):
                def pull(url=url, extra=extra, workers=workers) -> None:
                    pull_cohort(url, scratch / f"pull{next(runs)}", query="Modality=*", workers=workers,
                                progress=False, **extra)
                figures[f"pull {protocol}, {workers} worker(s)"] = median_of(args.repeat, pull)
            again = scratch / f"again-{protocol}"
            pull_cohort(url, again, query="Modality=*", progress=False, **extra)
            figures[f"pull {protocol}, re-run (nothing fetched)"] = median_of(
                args.repeat, lambda url=url, extra=extra, again=again: pull_cohort(
                    url, again, query="Modality=*", progress=False, **extra))
        build_index(scratch / "archive", scratch / "index", progress=False)
        outs = iter(range(10**6))
        figures["export, retain-longitudinal-dates"] = median_of(args.repeat, lambda: export_cohort(
            scratch / "index", "SELECT path FROM dicom", scratch / f"cohort{next(outs)}",
            options="retain-longitudinal-dates", keys=scratch / "keys", progress=False))
        figures["export, 2 workers"] = median_of(args.repeat, lambda: export_cohort(
            scratch / "index", "SELECT path FROM dicom", scratch / f"cohort{next(outs)}",
            options="retain-longitudinal-dates", keys=scratch / "keys", workers=2, progress=False))
        figures["export, re-run (nothing written)"] = median_of(args.repeat, lambda: export_cohort(
            scratch / "index", "SELECT path FROM dicom", scratch / "cohort0", options="retain-longitudinal-dates",
            keys=scratch / "keys", progress=False))
    print(f"{count} instances in {args.series} series of 64x64; median of {args.repeat}; {cpu_model()}")
    for name, seconds in figures.items():
        print(f"  {name:42s} {seconds:6.2f} s  {count / seconds:7.1f} instances/s")
    if args.json:
        write_json_atomic(args.json, {"instances": count, "series": args.series, "repeat": args.repeat,
                                      "cpu": cpu_model(), "seconds": figures})


if __name__ == "__main__":
    main()
