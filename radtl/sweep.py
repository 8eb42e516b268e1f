"""The study's fine-tuning protocol as a resumable grid over one bundle: ``radtl sweep``.

RadiologyNET (shared/science/radiologynet.md, "Fine-tuning protocol") fine-tuned every
(architecture, initialisation) at learning rates 1e-2, 1e-3, 1e-4, 1e-5, five runs each, chose
the learning rate with the best validation score, and reported that configuration's test score
as mean +/- SD over its runs plus the best run. The resource-limited experiment repeated this
on 5, 25 and 50% of the training split for 10 epochs.

Each run is the bundle's own ``train.json`` then ``train.json + evaluate.json`` (MONAI's
``ConfigWorkflow``) with the run's settings as overrides, in ``OUT/runs/<run id>/``. A run is
done when its ``result.json`` exists, so an interrupted sweep picks up where it stopped; a run
that fails records why in its ``result.json`` (status ``error``) and the sweep goes on. After
every run the tables are rewritten:

- ``results.csv``: one row per run: task, backbone, init, lr, seed, train fraction, epochs run,
  epochs to convergence, wall time (``seconds``) and, with codecarbon installed, ``energy_kwh`` and
  ``emissions_kg`` (:class:`radtl.energy.RunMeter`), the best validation score and every test metric (``test_*``: the
  metrics of the split ``evaluate.json`` scores, named in ``eval_split``; ``validation`` for
  LUNA, whose only held-out split is the validation series, as in the study);
- ``curves.csv``: every run's per-epoch training loss and validation metrics;
- ``selection.csv``: per (backbone, init, train fraction), the learning rate with the best mean
  validation score, its test metrics as mean and SD over the runs, and the best run.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import logging
import os
import shutil
import traceback
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from radtl.atomic import write_json_atomic, write_text_atomic
from radtl.bundle import Bundle, BundleKind, checked_settings, root_cause, run_workflow, split_values
from radtl.energy import RunMeter
from radtl.networks.transfer import INITS
from radtl.stats.selection import select_best

__all__ = ["STUDY_LRS", "RunSpec", "parse_inits", "plan_runs", "sweep"]

logger = logging.getLogger("radtl.sweep")

#: The study's learning rates.
STUDY_LRS = (1e-2, 1e-3, 1e-4, 1e-5)


@dataclass(frozen=True)
class RunSpec:
    """One fine-tuning run of a sweep."""

    backbone: str
    init: str
    pretrained: str
    lr: float
    seed: int
    train_fraction: float

    @property
    def run_id(self) -> str:
        return f"{self.backbone}_{self.init}_lr{self.lr:g}_frac{self.train_fraction:g}_seed{self.seed}"

    def overrides(self) -> dict:
        """The bundle settings this run changes."""
        return {
            "backbone": self.backbone,
            "init": self.init,
            "pretrained": self.pretrained,
            "lr": self.lr,
            "seed": self.seed,
            "train_fraction": self.train_fraction,
        }


def parse_inits(inits: str | Sequence[str]) -> list[tuple[str, str]]:
    """``"random,imagenet:/w/in.pth,radiologynet:/w/rn.tar.gz"`` as ``[(init, checkpoint path), ...]``.

    ``random`` takes no checkpoint; ``imagenet`` and ``radiologynet`` need one (nothing is
    downloaded), and the file must exist.
    """
    parsed = []
    for entry in split_values(inits):
        name, _, path = entry.partition(":")
        if name not in INITS:
            raise ValueError(f"unknown init {name!r} in {entry!r}; the study's are {', '.join(INITS)}")
        if name == "random" and path:
            raise ValueError(f"{entry!r}: random initialisation takes no checkpoint")
        if name != "random":
            if not path:
                raise ValueError(f"{entry!r}: give the {name} checkpoint as {name}:PATH")
            if not Path(path).expanduser().is_file():
                raise FileNotFoundError(f"{entry!r}: no such checkpoint file {path}")
            path = str(Path(path).expanduser().resolve())
        parsed.append((name, path))
    return parsed


def plan_runs(
    backbones: Sequence[str], inits: Sequence[tuple[str, str]], lrs: Sequence[float], repeats: int,
    train_fractions: Sequence[float], seed: int,
) -> list[RunSpec]:
    """The grid, repeats innermost; repeat k uses seed ``seed + k``."""
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    return [
        RunSpec(backbone, init, path, float(lr), seed + k, float(fraction))
        for fraction, backbone, (init, path), lr, k in itertools.product(
            train_fractions, backbones, inits, lrs, range(repeats)
        )
    ]


#: The kinds of bundle a sweep fine-tunes: those with the study's protocol (``train.json`` + ``evaluate.json``).
_SWEPT = (BundleKind.CLASSIFICATION, BundleKind.REGRESSION, BundleKind.SEGMENTATION)


def _read_config(bundle: Path) -> dict:
    return json.loads((bundle / "configs" / "train.json").read_text())


def _evaluation_split(bundle: Path, settings: dict) -> str:
    """The split ``evaluate.json`` scores: ``test``, or ``validation`` for LUNA, which the study split no further."""
    default = json.loads((bundle / "configs" / "evaluate.json").read_text()).get("eval_split", "test")
    return str(settings.get("eval_split", default))


def _train_and_test(bundle: Path, run_dir: Path, settings: dict) -> dict:
    configs = bundle / "configs"
    run_workflow([configs / "train.json"], settings)
    run_workflow([configs / "train.json", configs / "evaluate.json"], settings)
    history = json.loads((run_dir / "history.json").read_text())
    split = _evaluation_split(bundle, settings)
    test = json.loads((run_dir / f"{split}_metrics.json").read_text())["metrics"]
    return {
        "eval_split": split,
        "epochs_run": history["epochs_run"],
        "epochs_to_convergence": history["epochs_to_convergence"],
        "stopped_early": history["stopped_early"],
        "key_metric": history["key_metric"],
        "higher_is_better": history["higher_is_better"],
        f"val_{history['key_metric']}": history["best_metric"],
        **{f"test_{k}": v for k, v in test.items()},
    }


def _run(bundle: Path, task: str, spec: RunSpec, run_dir: Path, overrides: dict, energy_country: str) -> dict:
    if run_dir.exists():
        shutil.rmtree(run_dir)  # an unfinished run from an interrupted sweep starts again
    run_dir.mkdir(parents=True)
    settings = {**overrides, **spec.overrides(), "output_dir": str(run_dir), "bundle_root": str(bundle)}
    result = {"run_id": spec.run_id, "task": task, **asdict(spec)}
    with RunMeter(energy_country) as meter:
        try:
            result.update(status="ok", reason="", **_train_and_test(bundle, run_dir, settings))
        except Exception as error:  # noqa: BLE001 - the per-run boundary: record why, keep the sweep going
            cause = root_cause(error)
            where = traceback.extract_tb(cause.__traceback__)[-1]
            result.update(status="error", reason=f"{type(cause).__name__}: {cause} ({where.filename}:{where.lineno})")
            logger.error("run %s failed: %s", spec.run_id, result["reason"])
    result.update(meter.result())
    write_json_atomic(run_dir / "result.json", result, default=float)
    return result


def _write_csv(rows: Sequence[dict], path: Path) -> None:
    columns = list(dict.fromkeys(k for row in rows for k in row))
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(path, text.getvalue())


def _curves(results: Sequence[dict], runs_dir: Path) -> list[dict]:
    rows = []
    for result in results:
        history = runs_dir / result["run_id"] / "history.json"
        if result.get("status") == "ok" and history.is_file():
            rows.extend({"run_id": result["run_id"], **epoch} for epoch in json.loads(history.read_text())["epochs"])
    return rows


def sweep(
    bundle: str | os.PathLike,
    lrs: str | Sequence[float] = STUDY_LRS,
    repeats: int = 5,
    init: str | Sequence[str] = "random",
    backbones: str | Sequence[str] | None = None,
    train_fraction: str | float | Sequence[float] = 1.0,
    output_dir: str | os.PathLike | None = None,
    seed: int = 1221,
    energy_country: str = "HRV",
    **overrides,
) -> Path:
    """Run the grid (see the module docstring) and return the output folder.

    Args:
        bundle: a bundle folder or the name of one of radtl's bundles (``btmr``).
        lrs: learning rates, e.g. ``"1e-2,1e-3,1e-4,1e-5"``.
        repeats: runs per setting (seeds ``seed``, ``seed + 1``, ...).
        init: ``random``, ``imagenet:PATH``, ``radiologynet:PATH``, comma separated.
        backbones: architectures; by default the two the study used for this task
            (the bundle's ``study_backbones``).
        train_fraction: fractions of the training split, e.g. ``"0.05,0.25,0.5"``.
        output_dir: where runs and tables go (default ``sweeps/<bundle>``).
        seed: the first repeat's seed.
        energy_country: ISO 3166-1 alpha-3 code of the grid for ``emissions_kg`` (with codecarbon installed).
        overrides: further bundle settings for every run (``max_epochs=10``, ``dataset_dir=...``).

    Raises:
        radtl.bundle.SettingError: a setting (of ``overrides`` or of the grid) that is not one of
            :data:`radtl.bundle.SETTINGS`, or not of its type and bounds; nothing has run.
        radtl.bundle.BundleKindError: a bundle that does not fine-tune (a pretraining bundle).
    """
    overrides = checked_settings(overrides, "radtl sweep")
    bundle = Bundle(bundle).require(*_SWEPT, tool="radtl sweep").root
    config = _read_config(bundle)
    backbones = split_values(backbones) if backbones else list(config.get("study_backbones", [config["backbone"]]))
    specs = plan_runs(
        backbones, parse_inits(init), split_values(lrs, float, "--lrs"), int(repeats),
        split_values(train_fraction, float, "--train_fraction"), int(seed)
    )
    for spec in specs:
        checked_settings(spec.overrides(), "radtl sweep")
    out = Path(output_dir or Path("sweeps") / bundle.name).resolve()
    runs_dir = out / "runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / "sweep.json", {"bundle": str(bundle), "runs": [s.run_id for s in specs], "overrides": overrides},
                      default=float)
    task = config.get("layout", bundle.name)
    results = []
    for number, spec in enumerate(specs, 1):
        done = runs_dir / spec.run_id / "result.json"
        if done.is_file() and json.loads(done.read_text()).get("status") == "ok":
            logger.info("run %d/%d %s: done already", number, len(specs), spec.run_id)
            results.append(json.loads(done.read_text()))
            continue
        logger.info("run %d/%d %s", number, len(specs), spec.run_id)
        results.append(_run(bundle, task, spec, runs_dir / spec.run_id, overrides, energy_country))
        _write_csv(results, out / "results.csv")
    _write_csv(results, out / "results.csv")
    _write_csv(_curves(results, runs_dir), out / "curves.csv")
    _write_csv(select_best(results), out / "selection.csv")
    failed = sum(r["status"] != "ok" for r in results)
    logger.info("%d run(s), %d failed; tables in %s", len(results), failed, out)
    return out
