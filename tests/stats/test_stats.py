"""radtl.stats: the RadiologyNET comparison procedure, DeLong's test and bootstrap intervals, as specifications."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.metrics import f1_score, roc_auc_score
from statsmodels.stats.multicomp import pairwise_tukeyhsd

from radtl.stats import (
    BootstrapError,
    auc_ci,
    bootstrap_ci,
    compare_groups,
    compare_table,
    delong_test,
    mann_whitney_bonferroni,
)

# --- the RadiologyNET procedure (thesis 3.3) -------------------------------------------------------------------

#: Three groups of five runs with no overlap and very different spreads: Levene rejects.
SEPARATED = {
    "RadiologyNET": [0.801, 0.802, 0.803, 0.804, 0.805],
    "ImageNet": [0.60, 0.65, 0.70, 0.75, 0.79],
    "random": [0.10, 0.20, 0.30, 0.40, 0.50],
}
#: Wide group with three close low values: a tight group placed among them gets any U from 0 to 15.
WIDE = [10.0, 10.5, 11.0, 60.0, 100.0]
#: Where a value of the tight group lands: below 10 (beats no WIDE value), between 10 and 10.5 (beats one), ...
LEVEL_BEATING = {0: 9.0, 1: 10.25, 2: 10.75}
#: How many WIDE values each of the tight group's five values beats, for each published U.
BEATEN_PER_VALUE = {0: (0, 0, 0, 0, 0), 1: (1, 0, 0, 0, 0), 2: (1, 1, 0, 0, 0), 3: (1, 1, 1, 0, 0), 4: (1, 1, 1, 1, 0)}
BEATEN_PER_VALUE[6] = (1, 1, 1, 1, 2)


def groups_with_u(u: int) -> dict[str, list[float]]:
    """Three groups of five without ties, Levene-rejecting, where ``U(tight, wide) == u``."""
    tight = [LEVEL_BEATING[beaten] + 0.01 * i for i, beaten in enumerate(BEATEN_PER_VALUE[u])]
    return {"tight": tight, "wide": WIDE, "far": [200.0, 200.1, 200.2, 200.3, 200.4]}


def pair(comparison, group_a: str, group_b: str):
    (found,) = [t for t in comparison.pairwise if (t.group_a, t.group_b) == (group_a, group_b)]
    return found


def test_separated_groups_of_five_give_the_published_bonferroni_p_of_0_024():
    comparison = compare_groups(SEPARATED, metric="f1")

    assert comparison.equal_variances is False
    assert comparison.omnibus_test == "Kruskal-Wallis"
    assert [t.test for t in comparison.pairwise] == ["Mann-Whitney U"] * 3
    assert [t.p_value for t in comparison.pairwise] == pytest.approx([0.0238] * 3, abs=5e-4)
    assert comparison.procedure.startswith("Levene p = ")
    assert "Bonferroni correction (x3)" in comparison.procedure


@pytest.mark.parametrize(("u", "published"), [(0, 0.024), (1, 0.048), (2, 0.095), (3, 0.167), (4, 0.286), (6, 0.667)])
def test_mann_whitney_p_values_reproduce_the_published_ones_for_each_u(u, published):
    comparison = compare_groups(groups_with_u(u))

    assert comparison.levene_p < 0.05 and comparison.omnibus_test == "Kruskal-Wallis"
    tested = pair(comparison, "tight", "wide")
    assert tested.statistic == u
    assert tested.p_value == pytest.approx(published, abs=5e-4)
    exact = stats.mannwhitneyu(groups_with_u(u)["tight"], WIDE, method="exact").pvalue
    assert tested.p_value == pytest.approx(min(1.0, 3 * exact))


def test_mann_whitney_bonferroni_multiplies_by_the_comparisons_and_caps_at_one():
    a, b = [1.0, 2.0, 3.0, 4.0, 5.0], [1.5, 2.5, 3.5, 4.5, 5.5]
    raw = stats.mannwhitneyu(a, b, method="exact").pvalue

    once = mann_whitney_bonferroni(a, b)
    thrice = mann_whitney_bonferroni(a, b, comparisons=3)

    assert once.p_value == once.p_raw == pytest.approx(raw)
    assert thrice.p_raw == pytest.approx(raw)
    assert thrice.p_value == 1.0


def test_mann_whitney_with_ties_uses_the_tie_corrected_normal_approximation():
    a, b = [1.0, 1.0, 2.0, 3.0], [2.0, 4.0, 5.0, 5.0]

    tested = mann_whitney_bonferroni(a, b)

    assert tested.p_raw == pytest.approx(stats.mannwhitneyu(a, b, method="asymptotic").pvalue)


def test_two_groups_with_unequal_variances_get_one_uncorrected_mann_whitney_test():
    samples = {"ImageNet": SEPARATED["RadiologyNET"], "random": SEPARATED["random"]}

    comparison = compare_groups(samples)

    assert comparison.equal_variances is False
    assert comparison.omnibus_test is None and comparison.omnibus_p is None
    (tested,) = comparison.pairwise
    assert tested.test == "Mann-Whitney U"
    assert tested.p_value == tested.p_raw == pytest.approx(stats.mannwhitneyu(*samples.values(), method="exact").pvalue)


def test_two_groups_with_equal_variances_get_the_pooled_t_test():
    samples = {"a": [0.81, 0.83, 0.80, 0.84, 0.82], "b": [0.78, 0.80, 0.77, 0.81, 0.79]}

    comparison = compare_groups(samples)

    assert comparison.equal_variances is True
    (tested,) = comparison.pairwise
    expected = stats.ttest_ind(*samples.values(), equal_var=True)
    assert tested.test == "independent t-test"
    assert (tested.statistic, tested.p_value) == pytest.approx((expected.statistic, expected.pvalue))


def test_levene_is_the_classic_mean_centred_test():
    samples = groups_with_u(3)
    deviations = [np.abs(np.asarray(v) - np.mean(v)) for v in samples.values()]

    comparison = compare_groups(samples)

    anova_on_deviations = stats.f_oneway(*deviations)  # Levene (1960) is ANOVA on |x - mean|
    assert comparison.levene_statistic == pytest.approx(anova_on_deviations.statistic)
    assert comparison.levene_p == pytest.approx(anova_on_deviations.pvalue)
    assert comparison.levene_p == pytest.approx(stats.levene(*samples.values(), center="mean").pvalue)


def test_kruskal_wallis_equals_scipy():
    comparison = compare_groups(SEPARATED)

    expected = stats.kruskal(*SEPARATED.values())
    assert (comparison.omnibus_statistic, comparison.omnibus_p) == pytest.approx((expected.statistic, expected.pvalue))


EQUAL_SPREAD = {
    "a": [0.70, 0.74, 0.78, 0.72, 0.76],
    "b": [0.73, 0.77, 0.81, 0.75, 0.79],
    "c": [0.80, 0.84, 0.88, 0.82, 0.86],
}
UNEQUAL_SIZES = {
    "a": [0.70, 0.74, 0.78, 0.72, 0.76, 0.75],
    "b": [0.73, 0.77, 0.81, 0.75],
    "c": [0.80, 0.84, 0.88, 0.82, 0.86],
}


def test_one_way_anova_equals_scipy_when_variances_are_equal():
    comparison = compare_groups(EQUAL_SPREAD)

    assert comparison.equal_variances is True
    assert comparison.omnibus_test == "one-way ANOVA"
    expected = stats.f_oneway(*EQUAL_SPREAD.values())
    assert (comparison.omnibus_statistic, comparison.omnibus_p) == pytest.approx((expected.statistic, expected.pvalue))


@pytest.mark.parametrize("samples", [EQUAL_SPREAD, UNEQUAL_SIZES], ids=["equal-sizes", "unequal-sizes"])
def test_tukey_hsd_p_values_equal_statsmodels(samples):
    comparison = compare_groups(samples)
    values = np.concatenate([np.asarray(v) for v in samples.values()])
    labels = np.repeat(list(samples), [len(v) for v in samples.values()])

    reference = pairwise_tukeyhsd(values, labels)  # pairs in sorted order: (a, b), (a, c), (b, c)

    assert comparison.equal_variances is True
    assert [t.test for t in comparison.pairwise] == ["Tukey HSD"] * 3
    assert [t.p_value for t in comparison.pairwise] == pytest.approx(list(reference.pvalues), abs=1e-3)
    assert [t.statistic for t in comparison.pairwise] == pytest.approx(list(-reference.meandiffs))


def test_pairwise_tests_are_reported_even_when_the_omnibus_test_is_not_significant():
    samples = {
        "a": [0.80, 0.84, 0.78, 0.82, 0.76],
        "b": [0.81, 0.79, 0.83, 0.77, 0.85],
        "c": [0.8, 0.82, 0.78, 0.84, 0.8],
    }

    comparison = compare_groups(samples)

    assert comparison.omnibus_significant is False
    assert len(comparison.pairwise) == 3
    assert "not significant" in comparison.procedure and "reported anyway" in comparison.procedure


def test_pairwise_frame_has_one_row_per_pair():
    frame = compare_groups(SEPARATED).pairwise_frame()

    assert list(frame.columns) == ["group_a", "group_b", "test", "statistic", "p_value", "p_raw"]
    assert frame[["group_a", "group_b"]].values.tolist() == [
        ["RadiologyNET", "ImageNet"],
        ["RadiologyNET", "random"],
        ["ImageNet", "random"],
    ]


def test_to_dict_is_json_safe():
    comparison = compare_groups({"a": [0.9, math.nan, 0.8], "b": [0.9, 0.9]})

    round_trip = json.loads(json.dumps(comparison.to_dict(), allow_nan=False))

    assert round_trip["tested"] is True
    assert round_trip["sizes"] == {"a": 2, "b": 2}


# --- bad input: reasons, never a p-value computed from nothing ---------------------------------------------------


def assert_nothing_tested(comparison) -> None:
    assert not comparison.tested
    assert comparison.pairwise == ()
    assert comparison.omnibus_p is None and comparison.levene_p is None
    assert comparison.procedure == "nothing tested"


def test_a_single_group_is_not_tested():
    comparison = compare_groups({"random": [0.1, 0.2, 0.3]}, group="init")

    assert_nothing_tested(comparison)
    assert comparison.not_tested == ("only one group (init=random): nothing to compare",)


def test_no_groups_are_not_tested():
    assert_nothing_tested(compare_groups({}))


def test_non_finite_values_are_dropped_with_a_note():
    samples = {"random": [0.1, math.nan, 0.3, math.inf, 0.2], "ImageNet": [0.7, 0.8, 0.9]}

    comparison = compare_groups(samples, group="init")

    assert "init=random: 2 of 5 value(s) not finite (a diverged run), excluded" in comparison.notes
    assert comparison.sizes == {"random": 3, "ImageNet": 3}
    assert comparison.tested


def test_a_group_with_one_finite_value_is_excluded_with_a_reason():
    samples = {"a": [0.1, 0.2, 0.3], "b": [0.5, math.nan], "c": [0.7, 0.8, 0.9]}

    comparison = compare_groups(samples)

    assert "b: 1 finite value(s), at least 2 needed: group excluded" in comparison.not_tested
    assert set(comparison.sizes) == {"a", "c"}
    assert [(t.group_a, t.group_b) for t in comparison.pairwise] == [("a", "c")]


def test_fewer_than_two_usable_groups_are_not_tested():
    comparison = compare_groups({"a": [0.1, 0.2, 0.3], "b": [0.5], "c": [math.nan, math.nan]})

    assert_nothing_tested(comparison)
    assert (
        comparison.not_tested[-1] == "fewer than two groups with at least 2 finite values (left: a): nothing to compare"
    )


def test_constant_values_are_not_tested():
    comparison = compare_groups({"a": [0.9, 0.9, 0.9], "b": [0.9, 0.9], "c": [0.9, 0.9, 0.9]})

    assert_nothing_tested(comparison)
    assert comparison.not_tested == ("every value is 0.9: constant, no test can separate the groups",)


def test_zero_within_group_variance_falls_back_to_the_rank_tests():
    samples = {"a": [0.7, 0.7, 0.7], "b": [0.8, 0.8, 0.8], "c": [0.9, 0.9, 0.9]}

    comparison = compare_groups(samples)

    assert comparison.levene_p is None and comparison.equal_variances is None
    assert comparison.omnibus_test == "Kruskal-Wallis"
    assert comparison.omnibus_p == pytest.approx(stats.kruskal(*samples.values()).pvalue)
    assert {t.test for t in comparison.pairwise} == {"Mann-Whitney U"}
    assert comparison.not_tested[0].startswith("no within-group variation: Levene and the parametric tests")
    assert comparison.procedure.startswith("no within-group variation")


def test_an_undefined_levene_statistic_falls_back_to_the_rank_tests():
    samples = {"a": [0.8, 0.9], "b": [0.6, 0.7]}  # every |x - mean| is 0.05 (up to rounding): W is 0/0

    comparison = compare_groups(samples)

    assert comparison.levene_p is None
    assert comparison.not_tested[0].startswith("Levene statistic undefined")
    assert [t.test for t in comparison.pairwise] == ["Mann-Whitney U"]


def test_an_exactly_zero_levene_denominator_falls_back_to_the_rank_tests():
    comparison = compare_groups({"a": [0.0, 2.0], "b": [5.0, 7.0]})

    assert comparison.levene_p is None
    assert comparison.procedure.startswith("Levene statistic undefined")


def test_a_pair_with_identical_values_is_skipped_with_a_reason():
    samples = {"a": [0.7, 0.7, 0.7], "b": [0.8, 0.8, 0.8], "c": [0.7, 0.7, 0.7]}

    comparison = compare_groups(samples)

    assert "a vs c: every value is 0.7: no test can separate them" in comparison.not_tested
    assert [(t.group_a, t.group_b) for t in comparison.pairwise] == [("a", "b"), ("b", "c")]
    assert "(x3)" in comparison.procedure  # the family still has three comparisons


def test_unequal_group_sizes_are_allowed_and_noted():
    comparison = compare_groups(UNEQUAL_SIZES)

    assert "group sizes differ (6, 4, 5)" in comparison.notes
    assert "Tukey-Kramer" in comparison.procedure


def test_group_names_equal_as_strings_are_rejected():
    with pytest.raises(ValueError, match="distinct"):
        compare_groups({1: [0.1, 0.2], "1": [0.3, 0.4]})


# --- compare_table ------------------------------------------------------------------------------------------------


@pytest.fixture
def runs() -> pd.DataFrame:
    rows = []
    for task, shift in [("covid", 0.0), ("btmr", 0.1)]:
        for init, values in SEPARATED.items():
            rows += [{"task": task, "init": init, "seed": s, "f1": v + shift} for s, v in enumerate(values)]
    return pd.DataFrame(rows)


def test_compare_table_gives_one_comparison_per_by_combination(runs):
    results = compare_table(runs, "f1", group="init", by=["task"])

    assert [key for key, _ in results] == [{"task": "covid"}, {"task": "btmr"}]
    for _, comparison in results:
        assert comparison.metric == "f1"
        assert comparison.sizes == {"RadiologyNET": 5, "ImageNet": 5, "random": 5}


def test_compare_table_without_by_compares_the_whole_table(runs):
    ((key, comparison),) = compare_table(runs[runs.task == "covid"], "f1", group="init")

    assert key == {}
    assert comparison.to_dict() == compare_groups(SEPARATED, metric="f1", group="init").to_dict()


def test_compare_table_notes_rows_without_a_group(runs):
    runs.loc[0, "init"] = None

    ((_, comparison),) = compare_table(runs[runs.task == "covid"], "f1", group="init")

    assert comparison.notes[0] == "1 row(s) with no init value, excluded"


def test_compare_table_names_the_available_columns_when_the_metric_is_missing(runs):
    with pytest.raises(ValueError, match="metric column 'dice' not in the table; available columns: task, init"):
        compare_table(runs, "dice", group="init")


# --- DeLong ------------------------------------------------------------------------------------------------------


def slow_delong(y_true, scores_a, scores_b):
    """DeLong et al. (1988) read literally: the psi kernel over all (positive, negative) pairs, O(m n)."""
    y = np.asarray(y_true).astype(bool)
    components = []
    for scores in (scores_a, scores_b):
        x, z = np.asarray(scores)[y], np.asarray(scores)[~y]
        psi = np.where(x[:, None] > z[None, :], 1.0, np.where(x[:, None] == z[None, :], 0.5, 0.0))
        components.append((psi.mean(), psi.mean(axis=1), psi.mean(axis=0)))
    (auc_a, v10_a, v01_a), (auc_b, v10_b, v01_b) = components
    s10, s01 = np.cov(np.stack([v10_a, v10_b])), np.cov(np.stack([v01_a, v01_b]))
    s = s10 / y.sum() + s01 / (~y).sum()
    variance = s[0, 0] + s[1, 1] - 2 * s[0, 1]
    z = (auc_a - auc_b) / math.sqrt(variance)
    return {"auc_a": auc_a, "auc_b": auc_b, "s": s, "z": z, "p": 2 * stats.norm.sf(abs(z))}


@pytest.fixture
def tied_scores():
    """Labels and two correlated classifiers' scores, rounded so that both have many ties."""
    rng = np.random.default_rng(7)
    y = rng.integers(0, 2, 120)
    a = np.round(y + rng.normal(0, 1.0, 120), 1)
    b = np.round(0.6 * a + 0.5 * y + rng.normal(0, 0.8, 120), 0)
    return y, a, b


def test_delong_aucs_equal_sklearn(tied_scores):
    y, a, b = tied_scores

    result = delong_test(y, a, b)

    assert (result.a.auc, result.b.auc) == pytest.approx((roc_auc_score(y, a), roc_auc_score(y, b)))


def test_delong_variance_z_and_p_equal_the_direct_structural_components_with_ties(tied_scores):
    y, a, b = tied_scores
    reference = slow_delong(y, a, b)

    result = delong_test(y, a, b)

    assert (result.a.se, result.b.se) == pytest.approx(
        (math.sqrt(reference["s"][0, 0]), math.sqrt(reference["s"][1, 1]))
    )
    assert result.z == pytest.approx(reference["z"])
    assert result.p_value == pytest.approx(reference["p"])
    assert result.correlation == pytest.approx(
        reference["s"][0, 1] / math.sqrt(reference["s"][0, 0] * reference["s"][1, 1])
    )


def test_delong_p_is_symmetric_in_the_two_classifiers(tied_scores):
    y, a, b = tied_scores

    forward, backward = delong_test(y, a, b), delong_test(y, b, a)

    assert forward.p_value == pytest.approx(backward.p_value)
    assert forward.difference == pytest.approx(-backward.difference)
    assert (forward.ci_low, forward.ci_high) == pytest.approx((-backward.ci_high, -backward.ci_low))


def test_auc_confidence_interval_contains_the_auc(tied_scores):
    y, a, _ = tied_scores

    result = auc_ci(y, a)

    assert result.ci_low < result.auc < result.ci_high
    assert result.ci_high - result.ci_low == pytest.approx(2 * stats.norm.ppf(0.975) * result.se)
    assert (result.n_positive, result.n_negative) == (int(y.sum()), int((1 - y).sum()))


def test_delong_difference_interval_contains_the_difference(tied_scores):
    result = delong_test(*tied_scores)

    assert result.ci_low < result.difference < result.ci_high
    assert result.reason is None


def test_identical_scores_give_no_z_or_p_but_a_reason(tied_scores):
    y, a, _ = tied_scores

    result = delong_test(y, a, a.copy())

    assert result.z is None and result.p_value is None
    assert "variance of the difference is zero" in result.reason
    assert result.difference == 0.0


@pytest.mark.parametrize(
    ("y_true", "scores", "message"),
    [
        ([0, 1, 2, 1], [0.1, 0.2, 0.3, 0.4], "binary"),
        (["a", "b", "a", "b"], [0.1, 0.2, 0.3, 0.4], "binary"),
        ([1, 1, 1, 1], [0.1, 0.2, 0.3, 0.4], "0 negative"),
        ([0, 1, 0, 1], [0.1, 0.2, 0.3], "lengths must match"),
        ([0, 1, 0, 1], [0.1, math.nan, 0.3, 0.4], "non-finite"),
    ],
    ids=["three-labels", "strings", "one-class", "lengths", "nan-score"],
)
def test_delong_rejects_invalid_input_with_a_message_naming_the_problem(y_true, scores, message):
    with pytest.raises(ValueError, match=message):
        delong_test(y_true, scores, [0.4, 0.3, 0.2, 0.1][: len(scores)])


def test_boolean_labels_are_accepted(tied_scores):
    y, a, b = tied_scores

    assert delong_test(y.astype(bool), a, b) == delong_test(y, a, b)


# --- bootstrap ----------------------------------------------------------------------------------------------------


@pytest.fixture
def labels_and_predictions():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 60)
    return y, np.where(rng.random(60) < 0.8, y, 1 - y)


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """A paired statistic that is fast enough to bootstrap thousands of times in a test."""
    return float(np.mean(y_true == y_pred))


def test_bootstrap_is_deterministic_for_a_seed(labels_and_predictions):
    first = bootstrap_ci(accuracy, *labels_and_predictions, seed=5)
    again = bootstrap_ci(accuracy, *labels_and_predictions, seed=5)
    other = bootstrap_ci(accuracy, *labels_and_predictions, seed=6)

    assert first == again
    assert other != first


@pytest.mark.parametrize("method", ["percentile", "bca", "basic"])
def test_bootstrap_interval_contains_the_estimate(labels_and_predictions, method):
    result = bootstrap_ci(accuracy, *labels_and_predictions, method=method)

    assert result.estimate == accuracy(*labels_and_predictions)
    assert result.ci_low < result.estimate < result.ci_high
    assert (result.method, result.n_resamples, result.confidence) == (method, 2000, 0.95)


def test_bootstrap_resamples_cases_jointly_for_sklearn_metrics(labels_and_predictions):
    result = bootstrap_ci(f1_score, *labels_and_predictions, n_resamples=200)

    assert result.estimate == pytest.approx(f1_score(*labels_and_predictions))
    assert 0 < result.ci_low < result.estimate < result.ci_high < 1


def test_bootstrap_of_the_mean_equals_scipy():
    x = np.random.default_rng(1).normal(size=40)

    result = bootstrap_ci(np.mean, x, seed=11, method="bca")
    expected = stats.bootstrap(
        (x,), np.mean, n_resamples=2000, vectorized=False, paired=True, method="bca", rng=np.random.default_rng(11)
    )

    assert (result.ci_low, result.ci_high) == pytest.approx(tuple(expected.confidence_interval))
    assert result.standard_error == pytest.approx(expected.standard_error)


def test_bootstrap_explains_resamples_where_the_statistic_fails():
    y = np.array([0, 0, 0, 0, 0, 0, 0, 1, 1])

    with pytest.raises(BootstrapError, match=r"failed on \d+ of the 200 resamples.*one class"):
        bootstrap_ci(roc_auc_score, y, np.arange(9.0), n_resamples=200)


def test_bootstrap_rejects_paired_samples_of_different_lengths():
    with pytest.raises(ValueError, match="equal lengths"):
        bootstrap_ci(f1_score, [0, 1, 0, 1], [0, 1, 1])


def test_bootstrap_rejects_an_unknown_method():
    with pytest.raises(ValueError, match="method must be one of"):
        bootstrap_ci(np.mean, [1.0, 2.0, 3.0], method="studentized")
