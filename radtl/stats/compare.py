"""Comparing a metric across pretraining groups, the RadiologyNET way (thesis 3.3).

The study compared the downstream scores of RadiologyNET-, ImageNet- and randomly initialised
models (five runs each) with one fixed procedure:

1. a Levene test for equal variances (Levene 1960), here the classic mean-centred statistic;
2. unequal variances (p < 0.05): Kruskal-Wallis (Kruskal & Wallis 1952) over three or more groups,
   then pairwise two-sided Mann-Whitney U tests (Mann & Whitney 1947) with Bonferroni correction;
   two groups: one two-sided Mann-Whitney U test;
3. equal variances: one-way ANOVA over three or more groups, then Tukey's HSD (Tukey 1949;
   Tukey-Kramer for unequal sizes); two groups: the independent two-sample t-test.

The published pairwise p-values are scipy's two-sided *exact* Mann-Whitney p times the number of
pairwise comparisons, capped at 1 (for 5 vs 5 runs and no ties, U = 0, 1, 2, 3, 4, 6 give
0.024, 0.048, 0.095, 0.167, 0.286, 0.667 with three groups). The study reports those pairwise
p-values even where the omnibus test was not significant, so :func:`compare_groups` always computes
the pairwise tests and records whether the omnibus test rejected.

Bad input never turns into a p-value computed from nothing: non-finite values (a diverged run) are
dropped with a note, a group with fewer than two values is excluded with a reason, and a comparison
that cannot be made (one group, every value equal) is reported in
:attr:`GroupComparison.not_tested` instead of as a p-value.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

__all__ = [
    "EXACT_MWU_MAX_PAIRS",
    "GroupComparison",
    "PairwiseTest",
    "compare_groups",
    "compare_table",
    "mann_whitney_bonferroni",
]

#: Largest ``n_a * n_b`` for which the exact Mann-Whitney distribution is used (about 10 ms at 100 x 100);
#: larger samples, and any sample pair with ties, use scipy's ``"auto"`` (normal approximation with tie
#: and continuity correction).
EXACT_MWU_MAX_PAIRS = 10_000

MANN_WHITNEY = "Mann-Whitney U"
TUKEY_HSD = "Tukey HSD"
T_TEST = "independent t-test"
KRUSKAL_WALLIS = "Kruskal-Wallis"
ONE_WAY_ANOVA = "one-way ANOVA"


@dataclass(frozen=True)
class PairwiseTest:
    """One pairwise comparison of :class:`GroupComparison`.

    Args:
        group_a: the first group's name.
        group_b: the second group's name.
        test: ``"Mann-Whitney U"``, ``"Tukey HSD"`` or ``"independent t-test"``.
        statistic: Mann-Whitney: U of ``group_a`` (the number of pairs with ``a > b``, ties counting 1/2);
            Tukey HSD: ``mean(a) - mean(b)``; t-test: t of ``a`` against ``b``.
        p_value: the p-value to report: Mann-Whitney: ``min(1, p_raw * m)`` (Bonferroni over the ``m``
            pairwise comparisons); Tukey HSD: the studentized-range p, already family-wise; t-test:
            ``p_raw`` (a single comparison).
        p_raw: the test's own p-value before any multiple-comparison correction (Tukey HSD has none:
            equal to ``p_value``).
    """

    group_a: str
    group_b: str
    test: str
    statistic: float
    p_value: float
    p_raw: float


@dataclass(frozen=True)
class GroupComparison:
    """The result of :func:`compare_groups`: what was tested, how, and what could not be.

    Args:
        metric: the metric compared (for reports only).
        sizes: number of values used per group (groups with at least two finite values).
        means: mean per group.
        sds: sample standard deviation (``ddof=1``) per group.
        levene_statistic: Levene's W (mean-centred), ``None`` where undefined or not reached.
        levene_p: its p-value.
        equal_variances: ``levene_p >= alpha``; ``None`` where Levene was not computed.
        omnibus_test: ``"Kruskal-Wallis"`` or ``"one-way ANOVA"``; ``None`` for two groups.
        omnibus_statistic: H or F.
        omnibus_p: the omnibus p-value.
        pairwise: one :class:`PairwiseTest` per pair of groups that could be tested.
        procedure: one sentence naming the path taken through the study's procedure.
        notes: what was excluded or unusual and why (non-finite values, unequal sizes, p-value method).
        not_tested: why nothing, or some part, could not be tested.
        alpha: the significance level used for every decision.
    """

    metric: str
    sizes: dict[str, int]
    means: dict[str, float]
    sds: dict[str, float]
    levene_statistic: float | None = None
    levene_p: float | None = None
    equal_variances: bool | None = None
    omnibus_test: str | None = None
    omnibus_statistic: float | None = None
    omnibus_p: float | None = None
    pairwise: tuple[PairwiseTest, ...] = ()
    procedure: str = ""
    notes: tuple[str, ...] = ()
    not_tested: tuple[str, ...] = ()
    alpha: float = 0.05

    @property
    def tested(self) -> bool:
        """Whether any p-value was computed (omnibus or pairwise)."""
        return self.omnibus_p is not None or bool(self.pairwise)

    @property
    def omnibus_significant(self) -> bool | None:
        """Whether the omnibus test rejected at :attr:`alpha`; ``None`` without an omnibus test."""
        return None if self.omnibus_p is None else self.omnibus_p < self.alpha

    def pairwise_frame(self) -> pd.DataFrame:
        """The pairwise tests as a table: ``group_a, group_b, test, statistic, p_value, p_raw``."""
        columns = ["group_a", "group_b", "test", "statistic", "p_value", "p_raw"]
        return pd.DataFrame([asdict(test) for test in self.pairwise], columns=columns)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict: tuples become lists, non-finite floats ``None``, plus ``tested``."""
        result = _json_safe(asdict(self))
        result["tested"] = self.tested
        result["omnibus_significant"] = self.omnibus_significant
        return result


def _json_safe(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(item) for item in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value


def _format_p(p: float) -> str:
    return f"{p:.3g}"


def _format_value(value: float) -> str:
    return f"{value:g}"


def mann_whitney_bonferroni(
    a: Sequence[float],
    b: Sequence[float],
    comparisons: int = 1,
    *,
    group_a: str = "a",
    group_b: str = "b",
) -> PairwiseTest:
    """Two-sided Mann-Whitney U test of ``a`` against ``b``, Bonferroni-corrected over ``comparisons`` tests.

    The p-value is exact (the permutation distribution of U; Mann & Whitney 1947) when the pooled
    values have no ties and ``len(a) * len(b) <= EXACT_MWU_MAX_PAIRS``, otherwise scipy's ``"auto"``
    (the normal approximation with tie and continuity correction). This reproduces the study's
    published values: ``p_value = min(1, p_exact * comparisons)`` (thesis 3.3).

    Args:
        a: the first group's values (finite).
        b: the second group's values (finite).
        comparisons: ``m``, the number of pairwise comparisons in the family (3 for three groups).
        group_a: the first group's name, copied into the result.
        group_b: the second group's name, copied into the result.

    Raises:
        ValueError: ``comparisons < 1``, a group with no values, or every value identical (no test can
            separate the groups).
    """
    if comparisons < 1:
        raise ValueError(f"comparisons must be at least 1, got {comparisons}")
    x = np.asarray(a, dtype=float)
    y = np.asarray(b, dtype=float)
    if x.size == 0 or y.size == 0:
        raise ValueError(f"Mann-Whitney U needs values in both groups ({group_a}: {x.size}, {group_b}: {y.size})")
    pooled = np.concatenate([x, y])
    if np.all(pooled == pooled[0]):
        raise ValueError(f"every value of {group_a} and {group_b} is {_format_value(pooled[0])}: no test applies")
    result = stats.mannwhitneyu(x, y, alternative="two-sided", method=_mwu_method(x, y))
    p_raw = float(result.pvalue)
    return PairwiseTest(group_a, group_b, MANN_WHITNEY, float(result.statistic), min(1.0, p_raw * comparisons), p_raw)


def _mwu_method(x: np.ndarray, y: np.ndarray) -> str:
    """``"exact"`` without ties in the pooled values and ``x.size * y.size <= EXACT_MWU_MAX_PAIRS``, else ``"auto"``."""
    pooled = np.concatenate([x, y])
    has_ties = np.unique(pooled).size < pooled.size
    return "exact" if not has_ties and x.size * y.size <= EXACT_MWU_MAX_PAIRS else "auto"


def _mwu_method_note(
    groups: Mapping[str, np.ndarray], pairs: Sequence[tuple[str, str]], label: Callable[[str], str]
) -> str:
    approximate = [f"{label(a)} vs {label(b)}" for a, b in pairs if _mwu_method(groups[a], groups[b]) != "exact"]
    if not approximate:
        return "Mann-Whitney U p-values exact (no ties)"
    return (
        "Mann-Whitney U p-values from the normal approximation with tie and continuity correction (ties or large "
        f"samples) for {', '.join(approximate)}; exact otherwise"
    )


@dataclass
class _Builder:
    """Mutable collector for one :class:`GroupComparison`, frozen at the end."""

    metric: str
    alpha: float
    notes: list[str] = field(default_factory=list)
    not_tested: list[str] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)

    def build(self, groups: Mapping[str, np.ndarray], procedure: str) -> GroupComparison:
        return GroupComparison(
            metric=self.metric,
            sizes={name: int(v.size) for name, v in groups.items()},
            means={name: float(np.mean(v)) for name, v in groups.items()},
            sds={name: float(np.std(v, ddof=1)) for name, v in groups.items()},
            procedure=procedure,
            notes=tuple(self.notes),
            not_tested=tuple(self.not_tested),
            alpha=self.alpha,
            **self.values,
        )


def compare_groups(
    samples: Mapping[str, Sequence[float]],
    metric: str = "",
    alpha: float = 0.05,
    *,
    group: str = "",
) -> GroupComparison:
    """Compare ``metric`` across groups with the study's Levene-first procedure (thesis 3.3).

    - Levene's test (Levene 1960) with ``center="mean"``: the classic Levene statistic the study
      names, i.e. one-way ANOVA on ``|x_ij - mean_i|`` (scipy's default ``center="median"`` is the
      Brown-Forsythe variant).
    - ``levene_p < alpha`` (unequal variances): Kruskal-Wallis H over three or more groups, then
      every pair by a two-sided Mann-Whitney U test with Bonferroni correction
      (:func:`mann_whitney_bonferroni`, ``m = k(k-1)/2``); two groups: one Mann-Whitney U test, ``m = 1``.
    - ``levene_p >= alpha``: one-way ANOVA F over three or more groups, then Tukey's HSD
      (``scipy.stats.tukey_hsd``, the Tukey-Kramer form when sizes differ); two groups: the
      independent two-sample t-test with pooled variance.

    The pairwise tests are computed whether or not the omnibus test rejected (the study reports them
    either way); :attr:`GroupComparison.omnibus_significant` and the procedure sentence say which.

    Input that cannot support a test gives a reason, never a p-value computed from nothing:

    - non-finite values are dropped, with a note naming the group and count;
    - a group with fewer than two finite values is excluded (a reason in ``not_tested``);
    - one group, or fewer than two usable groups: nothing tested;
    - every value identical: nothing tested;
    - no variation inside any group (but different values between groups): Levene's W is 0/0 and
      the parametric tests divide by a zero within-group variance, so they are not reported; the
      rank tests (Kruskal-Wallis, Mann-Whitney U) remain defined and are used instead. The same
      fallback applies whenever Levene's statistic is otherwise undefined;
    - a pair whose pooled values are all identical is skipped with a reason (``m`` still counts it);
    - unequal group sizes are allowed and noted.

    Args:
        samples: group name -> the metric's values in that group (e.g. one per training run).
        metric: the metric's name, for reports.
        alpha: significance level for Levene's decision and the omnibus test's verdict.
        group: what the groups are (e.g. ``"init"``), only to label messages as ``init=random``.

    Raises:
        ValueError: ``alpha`` outside (0, 1), two group names equal after ``str()``, or values that are
            not 1-D numbers.
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")

    def label(name: str) -> str:
        return f"{group}={name}" if group else name

    builder = _Builder(metric, alpha)
    groups: dict[str, np.ndarray] = {}
    names = [str(name) for name in samples]
    if len(set(names)) < len(names):
        raise ValueError(f"group names must be distinct as strings, got {names}")
    for name, values in zip(names, samples.values(), strict=True):
        array = np.asarray(values, dtype=float)
        if array.ndim != 1:
            raise ValueError(f"{label(name)}: values must be 1-D, got shape {array.shape}")
        finite = array[np.isfinite(array)]
        if finite.size < array.size:
            dropped = array.size - finite.size
            builder.notes.append(
                f"{label(name)}: {dropped} of {array.size} value(s) not finite (a diverged run), excluded"
            )
        if finite.size < 2:
            builder.not_tested.append(
                f"{label(name)}: {finite.size} finite value(s), at least 2 needed: group excluded"
            )
            continue
        groups[name] = finite

    if not names:
        builder.not_tested.append("no groups: nothing to compare")
        return builder.build(groups, "nothing tested")
    if len(names) == 1:
        builder.not_tested.append(f"only one group ({label(names[0])}): nothing to compare")
        return builder.build(groups, "nothing tested")
    if len(groups) < 2:
        left = ", ".join(label(name) for name in groups) or "none"
        builder.not_tested.append(
            f"fewer than two groups with at least 2 finite values (left: {left}): nothing to compare"
        )
        return builder.build(groups, "nothing tested")

    pooled = np.concatenate(list(groups.values()))
    if np.all(pooled == pooled[0]):
        builder.not_tested.append(
            f"every value is {_format_value(pooled[0])}: constant, no test can separate the groups"
        )
        return builder.build(groups, "nothing tested")

    sizes = [v.size for v in groups.values()]
    if len(set(sizes)) > 1:
        builder.notes.append(f"group sizes differ ({', '.join(str(n) for n in sizes)})")

    arrays = list(groups.values())
    no_within_variation = all(np.all(v == v[0]) for v in arrays)
    if no_within_variation:
        rank_reason = "no within-group variation: Levene and the parametric tests (ANOVA, t-test, Tukey HSD) undefined"
        builder.not_tested.append(f"{rank_reason}; rank tests used instead")
        return _rank_tests(builder, groups, label, f"{rank_reason}: ")

    with np.errstate(invalid="ignore", divide="ignore"):  # 0/0 is caught just below, with a reason
        levene = stats.levene(*arrays, center="mean")
    if not (_levene_defined(arrays) and math.isfinite(levene.statistic) and math.isfinite(levene.pvalue)):
        rank_reason = (
            "Levene statistic undefined (every absolute deviation from its group mean is equal, up to rounding): "
            "equal variances cannot be assessed"
        )
        builder.not_tested.append(f"{rank_reason}; rank tests used instead")
        return _rank_tests(builder, groups, label, f"{rank_reason}: ")

    levene_p = float(levene.pvalue)
    equal = levene_p >= alpha
    builder.values.update(levene_statistic=float(levene.statistic), levene_p=levene_p, equal_variances=equal)
    if not equal:
        return _rank_tests(builder, groups, label, f"Levene p = {_format_p(levene_p)} < {alpha:g}: ")
    return _parametric_tests(builder, groups, label, f"Levene p = {_format_p(levene_p)} >= {alpha:g}: ")


def _levene_defined(arrays: Sequence[np.ndarray]) -> bool:
    """Whether Levene's W has a denominator above rounding noise.

    W divides by the within-group spread of ``z_ij = |x_ij - mean_i|``. Where every ``z_ij`` of a group is
    equal (e.g. discrete accuracies 0.8, 0.9 and 0.6, 0.7), that spread is 0 or a few ulps of rounding, and
    scipy returns NaN or, worse, a p-value computed from the rounding. A relative spread under 1e-10 counts
    as zero.
    """
    deviations = [np.abs(v - v.mean()) for v in arrays]
    within = sum(float(((d - d.mean()) ** 2).sum()) for d in deviations)
    scale = sum(float((d**2).sum()) for d in deviations)
    return within > 1e-20 * scale


def _omnibus_clause(test: str, p: float, alpha: float) -> str:
    if p < alpha:
        return f"{test} (p = {_format_p(p)}, significant at {alpha:g})"
    return f"{test} (p = {_format_p(p)}, not significant at {alpha:g}; pairwise tests reported anyway, as in the study)"


def _rank_tests(builder: _Builder, groups: dict[str, np.ndarray], label, prefix: str) -> GroupComparison:
    """Kruskal-Wallis then Bonferroni-corrected Mann-Whitney U (or one Mann-Whitney U for two groups)."""
    pairs = list(combinations(groups, 2))
    m = len(pairs)
    tests = []
    for name_a, name_b in pairs:
        pooled = np.concatenate([groups[name_a], groups[name_b]])
        if np.all(pooled == pooled[0]):
            builder.not_tested.append(
                f"{label(name_a)} vs {label(name_b)}: every value is {_format_value(pooled[0])}: "
                "no test can separate them"
            )
            continue
        tests.append(mann_whitney_bonferroni(groups[name_a], groups[name_b], m, group_a=name_a, group_b=name_b))
    tested_pairs = [(t.group_a, t.group_b) for t in tests]
    if tested_pairs:
        builder.notes.append(_mwu_method_note(groups, tested_pairs, label))
    builder.values["pairwise"] = tuple(tests)
    if len(groups) == 2:
        return builder.build(groups, prefix + "two-sided Mann-Whitney U (one comparison, no correction)")
    kruskal = stats.kruskal(*groups.values())
    h, p = float(kruskal.statistic), float(kruskal.pvalue)
    builder.values.update(omnibus_test=KRUSKAL_WALLIS, omnibus_statistic=h, omnibus_p=p)
    procedure = (
        f"{prefix}{_omnibus_clause(KRUSKAL_WALLIS, p, builder.alpha)}, "
        f"then pairwise two-sided Mann-Whitney U with Bonferroni correction (x{m})"
    )
    return builder.build(groups, procedure)


def _parametric_tests(builder: _Builder, groups: dict[str, np.ndarray], label, prefix: str) -> GroupComparison:
    """One-way ANOVA then Tukey HSD (or the pooled-variance t-test for two groups)."""
    names = list(groups)
    arrays = list(groups.values())
    if len(groups) == 2:
        t = stats.ttest_ind(arrays[0], arrays[1], equal_var=True)
        p = float(t.pvalue)
        builder.values["pairwise"] = (PairwiseTest(names[0], names[1], T_TEST, float(t.statistic), p, p),)
        return builder.build(groups, prefix + "independent two-sample t-test (pooled variance)")
    anova = stats.f_oneway(*arrays)
    f, p = float(anova.statistic), float(anova.pvalue)
    builder.values.update(omnibus_test=ONE_WAY_ANOVA, omnibus_statistic=f, omnibus_p=p)
    tukey = stats.tukey_hsd(*arrays)
    tests = []
    for i, j in combinations(range(len(names)), 2):
        p_ij = float(tukey.pvalue[i, j])
        tests.append(PairwiseTest(names[i], names[j], TUKEY_HSD, float(tukey.statistic[i, j]), p_ij, p_ij))
    builder.values["pairwise"] = tuple(tests)
    kramer = " (Tukey-Kramer, unequal sizes)" if len({v.size for v in arrays}) > 1 else ""
    procedure = f"{prefix}{_omnibus_clause(ONE_WAY_ANOVA, p, builder.alpha)}, then Tukey HSD{kramer}"
    return builder.build(groups, procedure)


def compare_table(
    table: pd.DataFrame,
    metric: str,
    group: str,
    by: Sequence[str] = (),
    alpha: float = 0.05,
) -> list[tuple[dict[str, Any], GroupComparison]]:
    """:func:`compare_groups` for every combination of the ``by`` columns of a long results table.

    Typical use: one row per training run, ``compare_table(runs, "f1", group="init", by=["task", "model"])``
    compares the initialisations within each task and model, as the study did.

    Args:
        table: one row per observation (e.g. per run).
        metric: the column holding the values compared.
        group: the column whose values name the groups (e.g. ``"init"``).
        by: columns defining separate comparisons; empty: one comparison over the whole table.
        alpha: passed to :func:`compare_groups`.

    Returns:
        ``(key, comparison)`` per combination in order of first appearance, ``key`` mapping each ``by``
        column to its value. Rows without a group value are excluded with a note.

    Raises:
        ValueError: a named column is missing (the message lists the available ones).
    """
    for role, column in [("metric", metric), ("group", group), *(("by", column) for column in by)]:
        if column not in table.columns:
            raise ValueError(
                f"{role} column {column!r} not in the table; available columns: {', '.join(map(str, table.columns))}"
            )
    by = list(by)
    parts = table.groupby(by, sort=False, dropna=False) if by else [((), table)]
    results = []
    for key_values, part in parts:
        key = {column: _plain(value) for column, value in zip(by, key_values, strict=True)}
        missing = part[group].isna()
        part = part[~missing]
        samples = {
            str(value): part.loc[part[group] == value, metric].to_numpy(dtype=float, na_value=np.nan)
            for value in pd.unique(part[group])
        }
        comparison = compare_groups(samples, metric=metric, alpha=alpha, group=group)
        if missing.any():
            note = f"{int(missing.sum())} row(s) with no {group} value, excluded"
            comparison = replace(comparison, notes=(note, *comparison.notes))
        results.append((key, comparison))
    return results


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python scalar it holds (keys stay JSON-friendly)."""
    return value.item() if isinstance(value, np.generic) else value
