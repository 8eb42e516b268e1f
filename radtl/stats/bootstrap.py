"""Bootstrap confidence intervals for any statistic of one or more samples (Efron & Tibshirani 1993).

A thin, checked layer over :func:`scipy.stats.bootstrap`: a seed for reproducibility, cases resampled
jointly by default (``paired=True``), so that ``bootstrap_ci(sklearn.metrics.f1_score, y_true, y_pred)``
resamples (label, prediction) pairs, and a clear error instead of a silent NaN interval when the
statistic fails on some resamples (e.g. a ROC AUC on a resample holding one class only).

Methods (scipy's): ``"percentile"`` (Efron 1979), ``"basic"`` (the reverse percentile), and ``"bca"``,
bias-corrected and accelerated (Efron 1987, JASA 82:171; Efron & Tibshirani 1993, ch. 14).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from scipy import stats

from radtl.errors import RadtlError

__all__ = ["BOOTSTRAP_METHODS", "BootstrapCI", "BootstrapError", "bootstrap_ci"]

BootstrapMethod = Literal["percentile", "bca", "basic"]
BOOTSTRAP_METHODS: tuple[str, ...] = ("percentile", "bca", "basic")


class BootstrapError(RadtlError, ValueError):
    """The statistic failed (raised, or gave a non-finite value) on the data or on some resamples."""


@dataclass(frozen=True)
class BootstrapCI:
    """A bootstrap confidence interval.

    Args:
        estimate: the statistic on the original samples.
        ci_low: lower confidence limit.
        ci_high: upper confidence limit.
        confidence: the interval's nominal coverage.
        n_resamples: number of bootstrap resamples.
        method: ``"percentile"``, ``"bca"`` or ``"basic"``.
        standard_error: the standard deviation of the bootstrap distribution.
    """

    estimate: float
    ci_low: float
    ci_high: float
    confidence: float
    n_resamples: int
    method: str
    standard_error: float


def bootstrap_ci(
    statistic: Callable[..., float],
    *samples: Any,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    method: BootstrapMethod = "percentile",
    seed: int | None = 0,
    paired: bool = True,
) -> BootstrapCI:
    """Bootstrap confidence interval of ``statistic(*samples)`` via :func:`scipy.stats.bootstrap`.

    Args:
        statistic: called as ``statistic(*resampled_samples)`` with 1-D arrays, returns a number.
        samples: one or more 1-D samples; with ``paired=True`` all of the same length (the cases).
        confidence: the interval's coverage, in (0, 1).
        n_resamples: number of resamples (at least 1).
        method: ``"percentile"``, ``"bca"`` or ``"basic"``.
        seed: seed of the resampling generator; the same seed gives the same interval.
        paired: resample cases jointly across ``samples`` (``True``), or each sample independently.

    Raises:
        ValueError: bad arguments (method, confidence, n_resamples, sample lengths, empty samples).
        BootstrapError: the statistic raises or is not finite on the original samples, or on any
            resample (the message counts them and quotes the first failure), or the interval is
            undefined (e.g. BCa on a degenerate bootstrap distribution).
    """
    if method.lower() not in BOOTSTRAP_METHODS:
        raise ValueError(f"method must be one of {BOOTSTRAP_METHODS}, got {method!r}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be at least 1, got {n_resamples}")
    if not samples:
        raise ValueError("at least one sample is needed")
    data = tuple(np.asarray(sample) for sample in samples)
    for index, sample in enumerate(data):
        if sample.ndim != 1 or sample.size < 2:
            raise ValueError(f"sample {index} must be 1-D with at least 2 values, got shape {sample.shape}")
    if paired and len({sample.size for sample in data}) > 1:
        raise ValueError(f"paired samples must have equal lengths, got {[sample.size for sample in data]}")

    try:
        estimate = float(statistic(*data))
    except Exception as error:  # re-raised with context, not hidden
        raise BootstrapError(f"the statistic fails on the original samples: {error!r}") from error
    if not math.isfinite(estimate):
        raise BootstrapError(f"the statistic is not finite on the original samples ({estimate})")

    def guarded(*resampled: np.ndarray) -> float:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                value = float(statistic(*resampled))
            except Exception as error:  # noqa: BLE001 - counted, then reported in the BootstrapError below
                failures.append(repr(error))
                return math.nan
        if not math.isfinite(value):
            explanation = f" ({caught[0].message})" if caught else ""
            failures.append(f"non-finite value {value}{explanation}")
        else:
            held.extend(caught)
        return value

    # Warnings (the statistic's and scipy's) are held back: a failure is reported once, as a BootstrapError
    # naming its cause, not as thousands of warnings about its NaN symptoms; otherwise each distinct
    # warning is passed on once.
    failures: list[str] = []
    held: list[warnings.WarningMessage] = []
    with warnings.catch_warnings(record=True) as caught_by_scipy:
        warnings.simplefilter("always")
        try:
            result = stats.bootstrap(
                data,
                guarded,
                n_resamples=n_resamples,
                vectorized=False,
                paired=paired,
                confidence_level=confidence,
                method=method,
                rng=np.random.default_rng(seed),
            )
        except Exception as error:
            if failures:  # scipy choked on the NaNs of failed resamples: report the cause, not the symptom
                raise BootstrapError(_failure_message(failures, n_resamples, method)) from error
            raise
    if failures:
        raise BootstrapError(_failure_message(failures, n_resamples, method))
    low, high = float(result.confidence_interval.low), float(result.confidence_interval.high)
    if not (math.isfinite(low) and math.isfinite(high)):
        spread = float(np.ptp(result.bootstrap_distribution))
        raise BootstrapError(
            f"the {method} interval is undefined (limits {low}, {high}; the bootstrap distribution spans {spread:g}): "
            "a degenerate distribution, e.g. every resample giving the same value, has no such interval"
        )
    seen = set()
    for message in [*held, *caught_by_scipy]:
        key = (message.category, str(message.message))
        if key not in seen:
            seen.add(key)
            warnings.warn_explicit(message.message, message.category, message.filename, message.lineno)
    return BootstrapCI(estimate, low, high, confidence, n_resamples, method, float(result.standard_error))


def _failure_message(failures: list[str], n_resamples: int, method: str) -> str:
    evaluations = f"{n_resamples} resamples" + (" and the BCa jackknife" if method.lower() == "bca" else "")
    return (
        f"the statistic failed on {len(failures)} of the {evaluations}, first: {failures[0]}; "
        "typical cause: a resample holding one class only. "
        "Use more cases, a statistic defined on every resample, or a stratified bootstrap"
    )
