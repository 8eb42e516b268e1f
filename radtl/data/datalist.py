"""MONAI datalists with the study's splits: stratified splitting, undersampling, training fractions.

A datalist is the dict MONAI's ``load_decathlon_datalist`` reads: ``{"training": [...],
"validation": [...], "test": [...]}`` with one ``{"image": path, "label": ...}`` item per image,
plus radtl's description of the task (``"task"``, ``"labels"``). The study's protocol
(shared/science/radiologynet.md, "Fine-tuning protocol"): the dataset's own splits where it has
them, else a random 75 / 12.5 / 12.5 split; binary tasks balanced by undersampling; the
resource-limited experiment keeps 5, 25 or 50% of the training split with the class ratios kept.
Everything is seeded (the study's seed is 1221), so a datalist is the same on every run.
"""

from __future__ import annotations

import itertools
import os
from collections import defaultdict
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path

import numpy as np

from radtl.atomic import write_json_atomic
from radtl.errors import RadtlError

__all__ = [
    "SPLITS",
    "STUDY_SEED",
    "DatasetLayoutError",
    "Item",
    "age_strata",
    "stratified_split",
    "take_fraction",
    "undersample",
    "write_datalist",
]

#: The datalist keys, MONAI's names for the three splits.
SPLITS = ("training", "validation", "test")
#: The study's fixed seed (AIlab-RITEH/RadiologyNET-TL-models).
STUDY_SEED = 1221

Item = dict
Stratum = Callable[[Item], Hashable]


class DatasetLayoutError(RadtlError, ValueError):
    """A dataset folder does not have the published layout; the message names what is missing."""


def _by_stratum(items: Sequence[Item], stratum: Stratum) -> dict[Hashable, list[Item]]:
    groups: dict[Hashable, list[Item]] = defaultdict(list)
    for item in items:
        groups[stratum(item)].append(item)
    return dict(sorted(groups.items(), key=lambda kv: str(kv[0])))


def _label(item: Item) -> Hashable:
    return item["label"]


def stratified_split(
    items: Sequence[Item],
    fractions: Sequence[float] = (0.75, 0.125, 0.125),
    stratum: Stratum = _label,
    seed: int = STUDY_SEED,
) -> list[list[Item]]:
    """Split ``items`` into ``len(fractions)`` parts, each stratum (class) split in those proportions.

    Within a stratum the items are shuffled with ``seed`` and cut at the rounded cumulative
    fractions, so every part gets its share of every class and the result does not depend on
    the order of ``items``. Returns the parts in the order of ``fractions``.
    """
    if not np.isclose(sum(fractions), 1.0) or min(fractions) < 0:
        raise ValueError(f"split fractions must be >= 0 and sum to 1, got {list(fractions)}")
    rng = np.random.default_rng(seed)
    parts: list[list[Item]] = [[] for _ in fractions]
    bounds = np.cumsum([0.0, *fractions])
    for group in _by_stratum(sorted(items, key=lambda it: str(it["image"])), stratum).values():
        order = rng.permutation(len(group))
        cuts = np.rint(bounds * len(group)).astype(int)
        for part, (start, stop) in zip(parts, itertools.pairwise(cuts)):
            part.extend(group[i] for i in order[start:stop])
    return [sorted(part, key=lambda it: str(it["image"])) for part in parts]


def undersample(items: Sequence[Item], stratum: Stratum = _label, seed: int = STUDY_SEED) -> list[Item]:
    """Keep a random ``n_min`` items of every class, ``n_min`` being the smallest class's size.

    This is how the study balanced GRAZPEDWRI-DX (2,473 osteopenia cases against 2,473 of the
    others) and the COVID-19 Radiography Database.
    """
    groups = _by_stratum(sorted(items, key=lambda it: str(it["image"])), stratum)
    if not groups:
        return []
    n_min = min(len(g) for g in groups.values())
    rng = np.random.default_rng(seed)
    kept = [g[i] for g in groups.values() for i in sorted(rng.choice(len(g), n_min, replace=False))]
    return sorted(kept, key=lambda it: str(it["image"]))


def take_fraction(
    items: Sequence[Item], fraction: float, stratum: Stratum = _label, seed: int = STUDY_SEED
) -> list[Item]:
    """The study's resource-limited training set: ``fraction`` of ``items``, class ratios kept.

    Every class keeps at least one item, so a 5% cut of a small set still has every class.
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"train_fraction must be in (0, 1], got {fraction}")
    if fraction == 1:
        return list(items)
    rng = np.random.default_rng(seed)
    kept: list[Item] = []
    for group in _by_stratum(sorted(items, key=lambda it: str(it["image"])), stratum).values():
        n = max(1, round(fraction * len(group)))
        kept.extend(group[i] for i in sorted(rng.choice(len(group), n, replace=False)))
    return sorted(kept, key=lambda it: str(it["image"]))


def age_strata(items: Sequence[Item], bins: int = 4) -> Stratum:
    """A stratum function for regression: the label's quantile bin (``bins`` bins) over ``items``."""
    labels = np.asarray([float(it["label"]) for it in items])
    edges = np.quantile(labels, np.linspace(0, 1, bins + 1)[1:-1]) if len(labels) else np.array([])
    return lambda item: int(np.searchsorted(edges, float(item["label"]), side="right"))


def write_datalist(datalist: dict, path: str | os.PathLike) -> Path:
    """Write ``datalist`` as JSON (temporary name, then rename) and return the path."""
    return write_json_atomic(path, datalist)
