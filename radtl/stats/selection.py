"""The study's model selection over a sweep's runs (RadiologyNET thesis 3.2): per backbone, initialisation and
training fraction, the learning rate with the best mean validation score, reported as the mean and SD of its
runs' test metrics and its best run.

``radtl sweep`` writes ``selection.csv`` with it, and ``radtl report`` selects the same rows from a results
table.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Sequence

__all__ = ["select_best"]


def _mean_sd(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def select_best(results: Sequence[dict]) -> list[dict]:
    """The study's model selection: per (backbone, init, train fraction), the learning rate with the
    best mean validation score; its test metrics as mean and SD over its runs, and the best run
    (best validation score) with its test metrics."""
    ok = [r for r in results if r.get("status") == "ok" and r.get(f"val_{r['key_metric']}") is not None]
    rows = []
    for (backbone, init, fraction), group in itertools.groupby(
        sorted(ok, key=lambda r: (r["backbone"], r["init"], r["train_fraction"], r["lr"])),
        key=lambda r: (r["backbone"], r["init"], r["train_fraction"]),
    ):
        group = list(group)
        key, higher = group[0]["key_metric"], group[0]["higher_is_better"]
        sign = 1 if higher else -1
        by_lr = {lr: list(runs) for lr, runs in itertools.groupby(group, key=lambda r: r["lr"])}
        lr, runs = max(by_lr.items(), key=lambda kv: sign * statistics.fmean(r[f"val_{key}"] for r in kv[1]))
        best = max(runs, key=lambda r: sign * r[f"val_{key}"])
        row = {"backbone": backbone, "init": init, "train_fraction": fraction, "lr": lr, "runs": len(runs)}
        row[f"val_{key}_mean"] = statistics.fmean(r[f"val_{key}"] for r in runs)
        for metric in sorted({k for r in runs for k in r if k.startswith("test_")}):
            values = [r[metric] for r in runs if isinstance(r.get(metric), (int, float))]
            if values:
                row[f"{metric}_mean"], row[f"{metric}_sd"] = _mean_sd(values)
        converged = [r["epochs_to_convergence"] for r in runs if r.get("epochs_to_convergence")]
        row["epochs_to_convergence_mean"] = statistics.fmean(converged) if converged else math.nan
        row["best_run"] = best["run_id"]
        row.update({f"best_run_{k}": v for k, v in best.items() if k.startswith("test_")})
        rows.append(row)
    return rows
