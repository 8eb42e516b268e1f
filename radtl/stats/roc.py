"""ROC AUC with DeLong confidence intervals and DeLong's test for two paired AUCs.

DeLong, DeLong & Clarke-Pearson (1988), "Comparing the areas under two or more correlated receiver
operating characteristic curves: a nonparametric approach", Biometrics 44:837-845, estimate the
covariance of the Mann-Whitney AUCs of classifiers scored on the same cases from their *structural
components*. With ``m`` positive cases ``X_i`` and ``n`` negative cases ``Y_j`` and the kernel
``psi(x, y) = 1 if x > y, 1/2 if x == y, 0 if x < y``:

- ``AUC = 1/(m n) sum_i sum_j psi(X_i, Y_j)``;
- ``V10(X_i) = 1/n sum_j psi(X_i, Y_j)``, ``V01(Y_j) = 1/m sum_i psi(X_i, Y_j)`` (1988, eq. 3-4);
- ``S10``, ``S01``: the sample covariance matrices (``1/(m-1)``, ``1/(n-1)``) of the ``V10`` and ``V01``
  of all classifiers, and ``S = S10 / m + S01 / n`` (1988, eq. 5);
- for the contrast ``AUC_a - AUC_b``: ``var = S_aa + S_bb - 2 S_ab`` and ``z = (AUC_a - AUC_b) / sqrt(var)``,
  two-sided ``p = 2 (1 - Phi(|z|))``.

The components are computed with the midrank algorithm of Sun & Xu (2014), "Fast implementation of
DeLong's algorithm for comparing the areas under correlated receiver operating characteristic curves",
IEEE Signal Processing Letters 21:1389-1393, in ``O(N log N)`` instead of ``O(m n)``:
``V10_i = (Tz_i - Tx_i) / n`` and ``V01_j = 1 - (Tz_j - Ty_j) / m``, with ``Tx``, ``Ty``, ``Tz`` the
midranks within the positives, within the negatives and within all cases.

Labels follow scikit-learn: ``1`` (or ``True``) is the positive class, and a higher score means more
likely positive, so the AUCs equal :func:`sklearn.metrics.roc_auc_score`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

__all__ = ["AUCResult", "DeLongResult", "auc_ci", "delong_components", "delong_test"]


@dataclass(frozen=True)
class AUCResult:
    """One ROC AUC with its DeLong standard error and normal confidence interval.

    Args:
        auc: the area under the ROC curve (the Mann-Whitney estimate, ties counting 1/2).
        se: its DeLong standard error ``sqrt(S10 / m + S01 / n)``.
        ci_low: lower confidence limit ``auc - z * se``, clipped to [0, 1].
        ci_high: upper confidence limit ``auc + z * se``, clipped to [0, 1].
        n_positive: ``m``, the number of positive cases.
        n_negative: ``n``, the number of negative cases.
    """

    auc: float
    se: float
    ci_low: float
    ci_high: float
    n_positive: int
    n_negative: int


@dataclass(frozen=True)
class DeLongResult:
    """DeLong's paired test of ``AUC_a - AUC_b`` on the same cases.

    Args:
        a: the first classifier's :class:`AUCResult`.
        b: the second classifier's :class:`AUCResult`.
        difference: ``a.auc - b.auc``.
        ci_low: lower confidence limit of the difference, clipped to [-1, 1].
        ci_high: upper confidence limit of the difference, clipped to [-1, 1].
        z: ``difference / sqrt(var)``; ``None`` where the variance of the difference is zero.
        p_value: two-sided p-value; ``None`` where the variance of the difference is zero.
        correlation: DeLong correlation of the two AUC estimates; ``None`` where either variance is zero.
        reason: why ``z`` and ``p_value`` are ``None``; ``None`` when they were computed.
    """

    a: AUCResult
    b: AUCResult
    difference: float
    ci_low: float
    ci_high: float
    z: float | None
    p_value: float | None
    correlation: float | None
    reason: str | None = None


def _check_confidence(confidence: float) -> float:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    return float(stats.norm.ppf(0.5 + confidence / 2))


def _validated(
    y_true: Sequence[int] | np.ndarray, *scores: Sequence[float] | np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``y_true`` as a boolean mask and the scores as a ``(k, N)`` float array, or a ValueError naming the problem."""
    labels = np.asarray(y_true)
    if labels.ndim != 1:
        raise ValueError(f"y_true must be 1-D, got shape {labels.shape}")
    if labels.dtype != bool:
        if labels.dtype.kind not in "iuf":
            raise ValueError(f"y_true must be binary (0/1 or bool), got dtype {labels.dtype}")
        unexpected = np.setdiff1d(np.unique(labels), [0, 1])
        if unexpected.size:
            raise ValueError(f"y_true must be binary (0/1 or bool); found other values {unexpected[:5].tolist()}")
    positive = labels.astype(bool)
    m, n = int(positive.sum()), int((~positive).sum())
    if m < 2 or n < 2:
        raise ValueError(
            f"the DeLong variance needs at least 2 positive and 2 negative cases, got {m} positive and {n} negative"
        )
    rows = []
    for index, score in enumerate(scores):
        values = np.asarray(score, dtype=float)
        if values.shape != labels.shape:
            raise ValueError(f"scores {index} has shape {values.shape}, y_true has {labels.shape}: lengths must match")
        if not np.all(np.isfinite(values)):
            bad = int((~np.isfinite(values)).sum())
            raise ValueError(f"scores {index} has {bad} non-finite value(s) (NaN or inf)")
        rows.append(values)
    return positive, np.stack(rows)


def delong_components(
    y_true: Sequence[int] | np.ndarray, *scores: Sequence[float] | np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """AUCs ``(k,)`` and their DeLong covariance ``S = S10/m + S01/n`` ``(k, k)`` for ``k`` score vectors.

    Sun & Xu (2014), Algorithm "fastDeLong": midranks instead of the ``O(m n)`` kernel sums.

    Args:
        y_true: binary labels ``(N,)``, 1/True = positive.
        scores: one or more score vectors ``(N,)``, higher = more likely positive.

    Raises:
        ValueError: labels not binary, fewer than 2 cases of a class, lengths differing, non-finite scores.
    """
    positive, matrix = _validated(y_true, *scores)
    x, y = matrix[:, positive], matrix[:, ~positive]
    m, n = x.shape[1], y.shape[1]
    tx = stats.rankdata(x, axis=1)
    ty = stats.rankdata(y, axis=1)
    tz = stats.rankdata(np.concatenate([x, y], axis=1), axis=1)
    v10 = (tz[:, :m] - tx) / n
    v01 = 1.0 - (tz[:, m:] - ty) / m
    aucs = v10.mean(axis=1)
    covariance = np.atleast_2d(np.cov(v10)) / m + np.atleast_2d(np.cov(v01)) / n
    return aucs, covariance


def _auc_result(auc: float, variance: float, z: float, m: int, n: int) -> AUCResult:
    se = math.sqrt(max(variance, 0.0))
    return AUCResult(auc, se, max(0.0, auc - z * se), min(1.0, auc + z * se), m, n)


def auc_ci(
    y_true: Sequence[int] | np.ndarray, scores: Sequence[float] | np.ndarray, confidence: float = 0.95
) -> AUCResult:
    """ROC AUC with DeLong's standard error and a normal confidence interval clipped to [0, 1].

    A perfectly separating score has zero DeLong variance: its interval is ``[1, 1]``, a known
    optimism of the asymptotic interval on small samples.

    Args:
        y_true: binary labels ``(N,)``, 1/True = positive (at least 2 of each class).
        scores: the scores ``(N,)``, higher = more likely positive.
        confidence: the interval's coverage, in (0, 1).

    Raises:
        ValueError: see :func:`delong_components`, or ``confidence`` outside (0, 1).
    """
    z = _check_confidence(confidence)
    aucs, covariance = delong_components(y_true, scores)
    positive = np.asarray(y_true).astype(bool)
    return _auc_result(float(aucs[0]), float(covariance[0, 0]), z, int(positive.sum()), int((~positive).sum()))


def delong_test(
    y_true: Sequence[int] | np.ndarray,
    scores_a: Sequence[float] | np.ndarray,
    scores_b: Sequence[float] | np.ndarray,
    confidence: float = 0.95,
) -> DeLongResult:
    """DeLong's test of two correlated ROC AUCs scored on the same cases (DeLong et al. 1988).

    Where the variance of the difference is zero (identical score rankings, or two classifiers each
    separating the classes perfectly or scoring every case alike), ``z`` and ``p_value`` are ``None``
    and ``reason`` says why: a p-value from ``0 / 0`` would be meaningless. The interval then
    degenerates to the difference.

    Args:
        y_true: binary labels ``(N,)``, 1/True = positive (at least 2 of each class).
        scores_a: the first classifier's scores ``(N,)``.
        scores_b: the second classifier's scores ``(N,)``, same cases in the same order.
        confidence: the coverage of the AUC intervals and of the difference's interval, in (0, 1).

    Raises:
        ValueError: see :func:`delong_components`, or ``confidence`` outside (0, 1).
    """
    z_crit = _check_confidence(confidence)
    aucs, s = delong_components(y_true, scores_a, scores_b)
    positive = np.asarray(y_true).astype(bool)
    m, n = int(positive.sum()), int((~positive).sum())
    a = _auc_result(float(aucs[0]), float(s[0, 0]), z_crit, m, n)
    b = _auc_result(float(aucs[1]), float(s[1, 1]), z_crit, m, n)
    difference = a.auc - b.auc
    variance = float(s[0, 0] + s[1, 1] - 2 * s[0, 1])
    correlation = float(s[0, 1] / math.sqrt(s[0, 0] * s[1, 1])) if s[0, 0] > 0 and s[1, 1] > 0 else None
    # Rounding can leave a tiny residue of what is exactly zero (S_aa = S_bb = S_ab): treat it as zero.
    if variance <= 1e-12 * float(s[0, 0] + s[1, 1]):
        reason = (
            "the DeLong variance of the difference is zero (e.g. identical score rankings, or each classifier "
            "either separating the classes perfectly or scoring every case alike): no z or p-value"
        )
        return DeLongResult(a, b, difference, difference, difference, None, None, correlation, reason)
    se = math.sqrt(variance)
    z = difference / se
    p = float(2 * stats.norm.sf(abs(z)))
    low, high = max(-1.0, difference - z_crit * se), min(1.0, difference + z_crit * se)
    return DeLongResult(a, b, difference, low, high, z, p, correlation)
