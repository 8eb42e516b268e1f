#!/usr/bin/env python
"""How long a ``radtl`` command takes to start, against ``python -c "import pydicom"`` in the same run; and
``radtl convert`` as a whole process, start-up included, against the RadiologyNET-style export loop.

The script

1. times, as fresh processes, ``python -c "import pydicom"`` (the floor: any DICOM tool pays it),
   ``python -c "import torch, monai, ignite"`` (what every radtl command paid before its imports were lazy), and
   ``radtl --help``, ``radtl convert --help``, ``radtl query DB SQL`` on a small index and ``radtl index`` of one
   file (run as ``python -m radtl.cli``, what the ``radtl`` script runs), each ``--repeat`` times interleaved:
   the median wall time, the CPU time and the peak memory of each (from ``os.wait4``);
2. writes the 300-file synthetic corpus of ``benchmarks/convert_throughput.py`` and converts it with
   ``python benchmarks/radiologynet_baseline.py CORPUS OUT`` and with ``radtl convert CORPUS OUT --formula paper``
   (one process each, 256 px), interleaved, best of ``--repeat``;
3. prints the ratios and a markdown table for ``docs/performance.md``.

Targets (issue 22): ``radtl --help`` and ``radtl query`` within 1.5x of the pydicom floor; whole-process
``radtl convert`` at least 2x the baseline's speed.

Usage::

    python benchmarks/cli_startup.py                 # 7 repeats of each start-up, 3 of each conversion
    python benchmarks/cli_startup.py --files 60 --repeat 3

The default run takes about 2 minutes on a 2-core VM. Compare the ratios within one run: the machine is shared.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine import cpu_model  # benchmarks/machine.py, beside this script

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


def timed(command: list[str], cwd: Path | None = None) -> tuple[float, float, float]:
    """Run ``command`` to its end; (wall seconds, CPU seconds, peak resident MiB) of that process alone."""
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({process.returncode}): {process.stderr.read().decode()[-500:]}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def radtl(*arguments: str) -> list[str]:
    return [sys.executable, "-m", "radtl.cli", *arguments]


def startup_rows(work: Path, repeat: int) -> dict[str, list[tuple[float, float, float]]]:
    samples = REPO / "dicom_samples" / "ct"
    index = work / "index"
    subprocess.run(radtl("index", str(samples), str(index), "--progress", "False"), check=True,
                   stdout=subprocess.DEVNULL)
    one_file = sorted(p for p in samples.rglob("*") if p.is_file())[0]
    commands = {
        'python -c "import pydicom"': [sys.executable, "-c", "import pydicom"],
        'python -c "import torch, monai, ignite"': [sys.executable, "-c", "import torch, monai, ignite"],
        "radtl --help": radtl("--help"),
        "radtl convert --help": radtl("convert", "--help"),
        'radtl query DB "SELECT Modality, count(*) ..."': radtl(
            "query", str(index), "SELECT Modality, count(*) FROM dicom GROUP BY ALL"),
        "radtl index FILE DB (one file)": None,
    }
    times: dict[str, list[tuple[float, float, float]]] = {name: [] for name in commands}
    for attempt in range(repeat):
        for name, command in commands.items():
            if command is None:
                target = work / f"index_one_{attempt}"
                command = radtl("index", str(one_file), str(target), "--progress", "False")
            times[name].append(timed(command))
    return times


def conversion_runs(work: Path, files: int, repeat: int) -> dict[str, list[float]]:
    sys.path.insert(0, str(HERE))
    from convert_throughput import make_corpus

    corpus = work / "corpus"
    paths = make_corpus(corpus, files)
    runs = {
        "RadiologyNET-style loop (python benchmarks/radiologynet_baseline.py)": lambda out: [
            sys.executable, str(HERE / "radiologynet_baseline.py"), str(corpus), str(out), "--size", "256"],
        "radtl convert --formula paper (1 process)": lambda out: radtl(
            "convert", str(corpus), str(out), "--formula", "paper", "--size", "256", "--progress", "False"),
    }
    times: dict[str, list[float]] = {name: [] for name in runs}
    for attempt in range(repeat):
        for number, (name, command) in enumerate(runs.items()):
            out = work / f"out_{number}_{attempt}"
            times[name].append(timed(command(out))[0])
            shutil.rmtree(out)
    return {"files": len(paths), **times}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=7, help="runs of each start-up (default 7)")
    parser.add_argument("--convert-repeat", type=int, default=3, help="runs of each conversion (default 3)")
    parser.add_argument("--files", type=int, default=300, help="conversion corpus size (default 300)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="radtl-cli-startup-") as folder:
        work = Path(folder)
        startup = startup_rows(work, args.repeat)
        conversion = conversion_runs(work, args.files, args.convert_repeat)

    floor = statistics.median(wall for wall, _, _ in startup['python -c "import pydicom"'])
    print(f"# radtl start-up, {datetime.date.today()}, {cpu_model()}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}\n")
    print(f"Start-up: median of {args.repeat} fresh processes, interleaved; CPU time and peak memory are "
          "medians too.\n")
    print("| command | wall time (s) | CPU time (s) | peak memory (MiB) | vs `import pydicom` |")
    print("|---|---:|---:|---:|---:|")
    for name, runs in startup.items():
        wall = statistics.median(r[0] for r in runs)
        cpu = statistics.median(r[1] for r in runs)
        memory = statistics.median(r[2] for r in runs)
        print(f"| `{name}` | {wall:.2f} | {cpu:.2f} | {memory:.0f} | {wall / floor:.2f}x |")
    files = conversion.pop("files")
    print(f"\nWhole-process conversion of the {files}-file corpus of `benchmarks/convert_throughput.py` "
          f"(256 px), best of {args.convert_repeat} interleaved runs (slowest in brackets):\n")
    print("| process | wall time (s) | files/s | vs baseline |")
    print("|---|---:|---:|---:|")
    base = min(next(iter(conversion.values())))
    for name, runs in conversion.items():
        print(f"| {name} | {min(runs):.2f} ({max(runs):.2f}) | {files / min(runs):.0f} | {base / min(runs):.2f}x |")

    help_ratio = statistics.median(r[0] for r in startup["radtl --help"]) / floor
    query_ratio = statistics.median(r[0] for r in startup['radtl query DB "SELECT Modality, count(*) ..."']) / floor
    convert_ratio = base / min(list(conversion.values())[1])
    print(f"\ntargets: radtl --help {help_ratio:.2f}x the floor "
          f"(<= 1.5x: {'met' if help_ratio <= 1.5 else 'NOT met'}); "
          f"radtl query {query_ratio:.2f}x (<= 1.5x: {'met' if query_ratio <= 1.5 else 'NOT met'}); "
          f"radtl convert {convert_ratio:.2f}x the baseline (>= 2x: {'met' if convert_ratio >= 2 else 'NOT met'})")
    print(f"total benchmark time {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
