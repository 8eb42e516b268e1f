#!/usr/bin/env python
"""The example figures the documentation quotes, re-run over seeds and thread counts, with their spread.

Two documented runs are repeated exactly as a reader would type them:

- ``pseudolabel``: the demo archive of ``docs/pseudolabelling.md`` (``write_archive`` with 80
  studies of 3 phantom images, ``radtl index``, ``radtl convert --size 64``) labelled with
  ``docs/examples/pseudolabel.yaml``. The figures: k at the Kneedle elbow, the clusters kept,
  S per split, the dropped clusters' mix, the wall time of the pipeline and of the whole
  process (also quoted in ``docs/performance.md``), and, for a seed run with several settings,
  how far each source's embeddings moved.
- ``btmr``: ``bundles/btmr/docs/README.md``, "Expected metrics": the bundle's ``train.json``
  with its defaults on ``dicom_samples/tasks/btmr`` (ResNet50, 64x64, random init, early
  stopping), then ``evaluate.json`` on the test split. The figures: validation macro F1 after
  epoch 1, the best epoch, the epoch early stopping ended the run, test macro F1 and accuracy,
  and the train and evaluation wall times.

Each run is a fresh child process with ``--threads`` compute threads (``OMP_NUM_THREADS``,
``OPENBLAS_NUM_THREADS``, ``MKL_NUM_THREADS`` and ``torch.set_num_threads``), one of the
``--isa`` kernel sets (``native``: what this CPU supports; ``avx2``: PyTorch's, oneDNN's and
OpenBLAS's AVX2 kernels, as on a CPU without AVX-512, through ``ATEN_CPU_CAPABILITY``,
``ONEDNN_MAX_CPU_ISA`` and ``OPENBLAS_CORETYPE``) and one seed:

- pseudolabel seed ``s``: the seed of the tag, image and text encoders and of the clustering
  (``tags.seed``, ``images.seed``, ``text.seed``, ``clustering.seed``); the split keeps the
  configuration's seed (1221), so every run labels the same items. The documented run is s = 0
  (the defaults).
- btmr seed ``s``: the bundle's ``seed`` (``monai.utils.set_determinism``: initialisation,
  augmentation, batch order); the split keeps ``split_seed`` 1221. The documented run is
  s = 1221 (the default).

The archive is generated, indexed and converted once under ``--work`` (``write_archive`` is
seeded, so it is the same files every time) and kept there. Each run's folder keeps its settings
and timings in ``doc_figures_run.json``; ``--reuse`` reads a finished run back from it instead of
running it again, and the output marks it so.

Usage::

    python benchmarks/doc_figures.py                                    # both, 5 + 3 seeds x 1 and 2 threads
    python benchmarks/doc_figures.py --only pseudolabel --seeds 0,1,2,3,4 --threads 1,2
    python benchmarks/doc_figures.py --only btmr --seeds 1221,0,1 --threads 2
    python benchmarks/doc_figures.py --only pseudolabel --threads 1 --isa native,avx2
    python benchmarks/doc_figures.py --quick                             # the documented seeds, 1 thread, btmr 2 epochs

``--quick`` checks the script end to end in a few minutes: btmr then trains 2 epochs, so its
F1 is not the documented figure (the output says so). The full default run took about an hour
of wall time and half an hour of CPU time on a shared 2-core machine, mostly in the 2-thread
runs. Wall times depend on the machine and its load: the output prints the CPU, the core count
and the load average before and after each run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import cpu_model

REPO = Path(__file__).resolve().parents[1]
EXAMPLE_CONFIG = REPO / "docs" / "examples" / "pseudolabel.yaml"
BTMR = REPO / "bundles" / "btmr" / "configs"
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
#: Kernel sets a run can be held to: another CPU's arithmetic on this one.
ISA_VARIABLES = {
    "native": {},
    "avx2": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "OPENBLAS_CORETYPE": "Haswell"},
}

#: The documented runs' seeds (the configuration's and the bundle's defaults).
DOCUMENTED_SEED = {"pseudolabel": 0, "btmr": 1221}
DEFAULT_SEEDS = {"pseudolabel": (0, 1, 2, 3, 4), "btmr": (1221, 0, 1)}
#: Each run's folder keeps its settings and its timings here (``--reuse`` reads it back).
RECORD = "doc_figures_run.json"


def _child_env(threads: int, isa: str = "native") -> dict:
    env = dict(os.environ, **{name: str(threads) for name in THREAD_VARIABLES}, **ISA_VARIABLES[isa])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, (str(REPO), env.get("PYTHONPATH"))))
    return env


def _load() -> float:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")


# --------------------------------------------------------------------------------------------
# The demo archive (docs/pseudolabelling.md, "Try it on a generated archive")
# --------------------------------------------------------------------------------------------


def prepare_archive(work: Path) -> Path:
    """The documented commands: write_archive + write_reports, radtl index, radtl convert --size 64."""
    demo = work / "demo"
    if (demo / "converted" / "manifest.csv").is_file() and (demo / "index").is_dir():
        return demo
    shutil.rmtree(demo, ignore_errors=True)
    env = _child_env(2)
    code = ("from radtl.dicom.synthetic import write_archive, write_reports; "
            f"files = write_archive({str(demo / 'dicom')!r}, studies=80, series_per_study=1, instances_per_series=3, "
            "image_size=64, pixels='phantom'); "
            f"write_reports(files, {str(demo / 'reports.csv')!r})")
    for command in ([sys.executable, "-c", code],
                    [sys.executable, "-m", "radtl.cli", "index", str(demo / "dicom"), str(demo / "index")],
                    [sys.executable, "-m", "radtl.cli", "convert", str(demo / "dicom"), str(demo / "converted"),
                     "--size", "64"]):
        subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return demo


def pseudolabel_config(demo: Path, out: Path, seed: int) -> dict:
    """docs/examples/pseudolabel.yaml with its paths pointed at ``demo`` and every model seed set to ``seed``."""
    import yaml

    config = yaml.safe_load(EXAMPLE_CONFIG.read_text(encoding="utf-8"))
    config.update(index=str(demo / "index"), out=str(out))
    config["images"]["folder"] = str(demo / "converted")
    config["text"]["reports"] = str(demo / "reports.csv")
    for source in ("tags", "images", "text"):
        config[source]["seed"] = seed
    config["clustering"]["seed"] = seed
    return config


def run_pseudolabel_child(demo: Path, out: Path, seed: int, threads: int) -> dict:
    """One run of the example in this process (a child: thread variables set before numpy and torch load)."""
    import torch

    torch.set_num_threads(threads)
    import pandas as pd

    from radtl.pseudolabel import run_pseudolabel

    started = time.perf_counter()
    result = run_pseudolabel(pseudolabel_config(demo, out, seed), progress=False)
    seconds = time.perf_counter() - started
    clusters = pd.read_csv(out / "clusters.csv")
    dropped = [{column: row[column] for column in clusters.columns if column in
                ("cluster", "size", "modality", "body_part", "modality_entropy", "body_part_entropy", "reason")}
               for _, row in clusters[~clusters["kept"]].iterrows()]
    return {"k": result.k, "kept": len(result.kept), "elbow_note": result.metrics.get("elbow", {}).get("note"),
            "S": {split: scores.get("S") for split, scores in result.metrics["splits"].items()},
            "dropped": dropped, "seconds": round(seconds, 1)}


# --------------------------------------------------------------------------------------------
# btmr (bundles/btmr/docs/README.md, "Expected metrics")
# --------------------------------------------------------------------------------------------


def run_btmr(out: Path, seed: int, threads: int, isa: str, max_epochs: int | None) -> dict:
    """``monai.bundle run`` of train.json, then train.json + evaluate.json, as the README's commands; the timings."""
    shutil.rmtree(out, ignore_errors=True)
    extra = ["--output_dir", str(out), "--seed", str(seed)]
    if max_epochs is not None:
        extra += ["--max_epochs", str(max_epochs)]
    env = _child_env(threads, isa)
    seconds = {}
    for step, files in (("train", [BTMR / "train.json"]), ("evaluate", [BTMR / "train.json", BTMR / "evaluate.json"])):
        command = [sys.executable, "-m", "monai.bundle", "run", "--config_file", str([str(f) for f in files]), *extra]
        started = time.perf_counter()
        subprocess.run(command, env=env, check=True, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        seconds[step] = round(time.perf_counter() - started, 1)
    return {"train_seconds": seconds["train"], "evaluate_seconds": seconds["evaluate"]}


def btmr_figures(out: Path) -> dict:
    """The README's figures from what the run wrote: ``history.json`` and ``test_metrics.json``."""
    history = json.loads((out / "history.json").read_text())
    test = json.loads((out / "test_metrics.json").read_text())["metrics"]
    return {"val_f1_epoch1": history["epochs"][0].get("val_f1"), "best_epoch": history["best_epoch"],
            "best_val_f1": history["best_metric"], "epochs_run": history["epochs_run"],
            "test_f1": test.get("f1"), "test_accuracy": test.get("accuracy"),
            "train_loop_seconds": history.get("seconds")}


# --------------------------------------------------------------------------------------------
# Spread
# --------------------------------------------------------------------------------------------


def spread(values, digits: int = 3) -> str:
    """``min-max (mean m)`` of numbers to ``digits`` decimals; a count per value for few distinct integers."""
    values = [v for v in values if v is not None]
    if not values:
        return "n/a"
    if all(isinstance(v, int) for v in values) and len(set(values)) <= 4:
        counts = {v: values.count(v) for v in sorted(set(values))}
        return ", ".join(f"{v} in {n} of {len(values)}" for v, n in counts.items())
    return f"{min(values):.{digits}f}-{max(values):.{digits}f} (mean {statistics.fmean(values):.{digits}f})"


def _print_runs(name: str, runs: list[dict], figures: dict) -> None:
    print(f"\n== {name}: {len(runs)} runs ==")
    for run in runs:
        shown = "  ".join(f"{label} {_fmt(getter(run), label)}" for label, getter in figures.items())
        reused = "  (read back with --reuse)" if run.get("reused") else ""
        print(f"  seed {run['seed']:>5}  {_setting(run)}  {shown}  "
              f"load {run['load_before']:.1f}->{run['load_after']:.1f}{reused}")
    settings = sorted({_setting(r) for r in runs})
    for setting in settings + ([None] if len(settings) > 1 else []):
        chosen = [r for r in runs if setting is None or _setting(r) == setting]
        print(f"  {'all runs' if setting is None else setting}:")
        for figure, getter in figures.items():
            print(f"    {figure:<18} {spread([getter(r) for r in chosen], 1 if 'seconds' in figure else 3)}")
    by_seed: dict[int, set] = {}
    for run in runs:
        by_seed.setdefault(run["seed"], set()).add(json.dumps({f: getter(run) for f, getter in figures.items()
                                                               if "seconds" not in f}, sort_keys=True))
    same = [seed for seed, results in by_seed.items() if len(results) == 1]
    if len(settings) > 1:
        print(f"  same figures (times aside) with every setting: seeds {same or 'none'} of {sorted(by_seed)}")


def _print_embedding_differences(runs: list[dict]) -> None:
    """For each seed run with several settings: the largest difference of each source's embeddings from the first."""
    import numpy as np

    for seed in sorted({r["seed"] for r in runs}):
        same_seed = [r for r in runs if r["seed"] == seed]
        first = same_seed[0]
        for other in same_seed[1:]:
            differences = []
            for source in ("tags", "images", "text"):
                a, b = (Path(r["out"]) / f"embeddings_{source}.npy" for r in (first, other))
                if a.is_file() and b.is_file():
                    differences.append(f"{source} {float(np.nanmax(np.abs(np.load(a) - np.load(b)))):.2g}")
            print(f"  seed {seed}: embeddings of {_setting(other)} against {_setting(first)}, largest difference: "
                  + (", ".join(differences) or "n/a"))


def _print_dropped(runs: list[dict]) -> None:
    """Each distinct set of dropped clusters, with what they held (from the run's ``labels.csv``) and why."""
    import pandas as pd

    seen: dict[str, list[str]] = {}
    for run in runs:
        labels = pd.read_csv(Path(run["out"]) / "labels.csv")
        parts = []
        for cluster in run["dropped"]:
            held = labels[labels["cluster"] == cluster["cluster"]].value_counts(["Modality", "BodyPart"])
            mix = ", ".join(f"{n} {modality} {body_part}" for (modality, body_part), n in held.items())
            parts.append(f"{mix} ({cluster['reason']})")
        seen.setdefault("; ".join(parts) or "none", []).append(f"seed {run['seed']} {_setting(run)}")
    for dropped, where in seen.items():
        print(f"  dropped: {dropped}  <- {', '.join(where)}")


def _setting(run: dict) -> str:
    return f"{run['threads']} thread(s), {run['isa']} kernels"


def _fmt(value, label: str) -> str:
    if isinstance(value, float):
        return f"{value:.1f}" if "seconds" in label else f"{value:.3f}"
    return str(value)


PSEUDOLABEL_FIGURES = {
    "k": lambda r: r["k"], "kept": lambda r: r["kept"],
    "S training": lambda r: r["S"]["training"], "S validation": lambda r: r["S"]["validation"],
    "S test": lambda r: r["S"]["test"], "pipeline seconds": lambda r: r["seconds"],
    "process seconds": lambda r: r["process_seconds"],
}
BTMR_FIGURES = {
    "val F1 epoch 1": lambda r: r["val_f1_epoch1"], "best epoch": lambda r: r["best_epoch"],
    "epochs run": lambda r: r["epochs_run"], "test F1": lambda r: r["test_f1"],
    "test accuracy": lambda r: r["test_accuracy"], "train seconds": lambda r: r["train_seconds"],
    "evaluate seconds": lambda r: r["evaluate_seconds"],
}


def measure(example: str, seed: int, threads: int, isa: str, work: Path, max_epochs: int | None,
            reuse: bool) -> dict:
    """One run of ``example`` in a child process, or (``reuse``) the record of one already in its folder."""
    out = work / f"{example}_seed{seed}_threads{threads}_{isa}{f'_epochs{max_epochs}' if max_epochs else ''}"
    record = out / RECORD
    settings = {"seed": seed, "threads": threads, "isa": isa, "max_epochs": max_epochs}
    if reuse and record.is_file() and json.loads(record.read_text())["settings"] == settings:
        run = json.loads(record.read_text())["run"]
    else:
        load_before = _load()
        if example == "pseudolabel":
            shutil.rmtree(out, ignore_errors=True)
            started = time.perf_counter()
            completed = subprocess.run(
                [sys.executable, __file__, "--child", "pseudolabel", "--seed", str(seed), "--threads", str(threads),
                 "--work", str(work), "--out", str(out)],
                env=_child_env(threads, isa), check=True, capture_output=True, text=True)
            result = [line for line in completed.stdout.splitlines() if line.startswith("RESULT ")][-1]
            run = json.loads(result[len("RESULT "):])
            run["process_seconds"] = round(time.perf_counter() - started, 1)
        else:
            run = run_btmr(out, seed, threads, isa, max_epochs)
        run.update(load_before=load_before, load_after=_load())
        record.write_text(json.dumps({"settings": settings, "run": {**run, "reused": True}}) + "\n")
    if example == "btmr":
        run.update(btmr_figures(out))
    return {**run, "seed": seed, "threads": threads, "isa": isa, "out": str(out)}


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(v) for v in text.split(",") if v.strip())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=("pseudolabel", "btmr"), help="run one example (default: both)")
    parser.add_argument("--seeds", type=_ints, help="comma-separated seeds (default: 0-4 for pseudolabel, "
                                                    "1221,0,1 for btmr; the first is the documented one)")
    parser.add_argument("--threads", type=_ints, default=(1, 2), help="comma-separated thread counts (default 1,2)")
    parser.add_argument("--isa", type=lambda t: tuple(v for v in t.split(",") if v), default=("native",),
                        help="comma-separated kernel sets: native, avx2 (default native)")
    parser.add_argument("--work", type=Path, default=REPO / "out" / "doc_figures", help="scratch folder")
    parser.add_argument("--btmr-max-epochs", type=int, help="cap btmr's epochs (not the documented run)")
    parser.add_argument("--quick", action="store_true",
                        help="the documented seed only, 1 thread, btmr capped at 2 epochs: checks the script")
    parser.add_argument("--reuse", action="store_true",
                        help="read back a run whose folder under --work holds a finished run with the same settings "
                             "(its figures and the times measured then) instead of running it again")
    parser.add_argument("--json", type=Path, help="also write every run as JSON here")
    parser.add_argument("--child", choices=("pseudolabel",), help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        print("RESULT " + json.dumps(run_pseudolabel_child(args.work / "demo", args.out, args.seed, args.threads[0])))
        return 0

    unknown = sorted(set(args.isa) - set(ISA_VARIABLES))
    if unknown:
        parser.error(f"--isa: unknown {', '.join(unknown)}; known: {', '.join(ISA_VARIABLES)}")
    examples = [args.only] if args.only else ["pseudolabel", "btmr"]
    threads = (1,) if args.quick else args.threads
    max_epochs = 2 if args.quick and args.btmr_max_epochs is None else args.btmr_max_epochs
    import torch

    print(f"machine: {cpu_model()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"torch {torch.__version__}; load average {_load():.2f}")
    args.work.mkdir(parents=True, exist_ok=True)
    everything = {}
    for example in examples:
        seeds = (DOCUMENTED_SEED[example],) if args.quick else (args.seeds or DEFAULT_SEEDS[example])
        runs = []
        if example == "pseudolabel":
            started = time.perf_counter()
            demo = prepare_archive(args.work)
            print(f"demo archive: {demo} ({time.perf_counter() - started:.1f} s)")
        for seed in seeds:
            for count, isa in ((c, i) for c in threads for i in args.isa):
                run = measure(example, seed, count, isa, args.work, max_epochs if example == "btmr" else None,
                              args.reuse)
                runs.append(run)
                shown = {k: v for k, v in run.items() if k not in ("dropped", "seed", "threads", "isa", "out")}
                print(f"  {example} seed {seed} {_setting(run)}: {json.dumps(shown)}", flush=True)
        figures = PSEUDOLABEL_FIGURES if example == "pseudolabel" else BTMR_FIGURES
        title = example if example == "pseudolabel" else (
            f"btmr, max_epochs {max_epochs} (NOT the documented run)" if max_epochs else "btmr")
        _print_runs(title, runs, figures)
        if example == "pseudolabel":
            _print_embedding_differences(runs)
            _print_dropped(runs)
        everything[example] = runs
    if args.json:
        args.json.write_text(json.dumps(everything, indent=1, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
