"""The DICOM-tag feature table of RadiologyNET (thesis 2.3.2, "DICOM tags").

The study kept 55 tags (28 continuous, 27 categorical with at most 50 levels), judged their
missing values missing-at-random, imputed them with MissForest (random forests; the MSE
criterion, thesis Eq. 2.1, for continuous tags and Gini impurity, Eq. 2.2, for categorical ones)
and then one-hot encoded the categorical tags and scaled the continuous ones to [0, 1]. The
result fed the tag autoencoder / PCA of thesis 2.4.

Two classes, used in that order:

- :class:`MissForestImputer`: MissForest (D. J. Stekhoven and P. Bühlmann, "MissForest:
  non-parametric missing value imputation for mixed-type data", Bioinformatics 28(1):112-118,
  2012) on a float matrix whose categorical columns hold integer codes, with the forests kept so
  that new data can be imputed later;
- :class:`TagFeatureTable`: the whole preprocessing on a :class:`pandas.DataFrame` of tag values
  (type coercion, DICOM Age String parsing, level coding, imputation, scaling, one-hot), fitted
  once on a sample of the archive, saved to one file with :meth:`TagFeatureTable.save` and
  re-applied to the archive batch by batch with :meth:`TagFeatureTable.transform`.

Files written by :meth:`TagFeatureTable.save` are pickles (joblib): load only files you trust.
"""

from __future__ import annotations

import math
import numbers
import os
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import sklearn
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.exceptions import NotFittedError
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from radtl.atomic import atomic_path, write_atomic
from radtl.pseudolabel.persistence import check_saved_format

__all__ = [
    "ARCHIVE_IMPUTER_PARAMS",
    "DEFAULT_FILENAME",
    "FORMAT_VERSION",
    "MissForestImputer",
    "TagFeatureTable",
    "parse_age_string",
    "parse_age_strings",
    "tag_features_from_index",
]

#: Version of the file :meth:`TagFeatureTable.save` writes; :meth:`TagFeatureTable.load` reads only this one.
FORMAT_VERSION = 1
#: The file name :meth:`TagFeatureTable.save` and :meth:`TagFeatureTable.load` use when given a folder.
DEFAULT_FILENAME = "tag_features.joblib"
_FORMAT_NAME = "radtl.pseudolabel.TagFeatureTable"

# DICOM Age String (AS), PS3.5 Table 6.2-1: "nnnD, nnnW, nnnM, nnnY", exactly four characters.
_AGE_STRING = re.compile(r"(\d{3})([DWMY])")
_YEARS_PER_UNIT = {"D": 1.0 / 365.25, "W": 7.0 / 365.25, "M": 1.0 / 12.0, "Y": 1.0}


# --------------------------------------------------------------------------------------------
# MissForest
# --------------------------------------------------------------------------------------------


class MissForestImputer(TransformerMixin, BaseEstimator):
    """MissForest imputation of a mixed continuous / categorical matrix, re-applicable to new rows.

    Stekhoven and Bühlmann (2012), Algorithm 1, as RadiologyNET used it (thesis 2.3.2):

    1. initial guess: the mean of the observed values of each continuous column, the mode of each
       categorical one;
    2. the columns are visited in increasing amount of missingness (``missing_order_``);
    3. in each iteration, for every column with missing values, a random forest is fitted on the
       rows where that column is observed, with all other columns (their current imputed values)
       as predictors, and predicts the column's missing entries, which replace the current ones
       straight away (the next column's forest sees them): a regression forest with the squared
       error (MSE) criterion, thesis Eq. 2.1, for a continuous column, a classification forest
       with Gini impurity, thesis Eq. 2.2, for a categorical one;
    4. after each iteration the stopping criterion gamma compares the new imputed matrix with the
       previous one, for continuous columns N and categorical columns F:

       - ``Delta_N = sum_{j in N} (X_new - X_old)^2 / sum_{j in N} X_new^2``
       - ``Delta_F = sum_{j in F} sum_i I(X_new != X_old) / #NA``, ``#NA`` the number of missing
         entries in categorical columns;

       the iterations stop as soon as the difference increases (does not decrease) for the first
       time for both types at once (only the types with missing entries count), and the
       *previous* iteration's matrix is returned; or after ``max_iter`` iterations, returning the
       last one. This is the rule of the authors' R package ``missForest``.

    Differences from the R package, and additions for re-use on new data:

    - categorical predictors enter scikit-learn's forests as their integer codes (ordered
      splits), where R's ``randomForest`` splits factors by subsets of levels;
    - ``Delta_F`` is divided by the number of missing categorical entries, as in the paper (the
      R package divides by all categorical entries; the stopping decision is the same, as only
      the comparison between iterations matters);
    - the forests of the returned iteration are kept (``forests_``) and :meth:`transform`
      applies them to new rows. A forest is kept for *every* column: a column complete in the
      fitting sample can still be missing in later batches of the archive, and it has no forest
      from the iterations (nothing to impute there), so after the iterations a forest is fitted
      for each complete column on the returned imputed matrix;
    - the trees of a forest grown to full depth (``max_depth=None``, ``min_samples_leaf=1``,
      the paper's setting) hold about as many nodes as the sample has rows, for each of the
      ``n_estimators`` trees of each column: on a sample of 10^5 rows and tens of columns that is
      tens of gigabytes. Bound ``max_depth`` or raise ``min_samples_leaf`` there.

    Args:
        categorical: indices of the categorical columns. Their values are integer codes
            ``0 .. L-1`` stored as floats, ``NaN`` for missing.
        max_iter: the most MissForest iterations (the R package's ``maxiter``, default 10).
        n_estimators: trees per forest (``ntree``, default 100).
        max_depth: the forests' ``max_depth`` (``None``: trees grown to full depth, as in the paper).
        min_samples_leaf: the forests' ``min_samples_leaf`` (R's ``randomForest`` uses node size 1
            for classification and 5 for regression; one value serves both here).
        random_state: seed for the forests (an int makes :meth:`fit` reproducible).
        n_jobs: the forests' ``n_jobs``.
        max_features: predictors tried at each split; ``"sqrt"`` is the R package's default
            ``mtry = floor(sqrt(p))``.
        transform_passes: sweeps over the columns that :meth:`transform` makes on new data. New
            rows start from the training mean / mode and each pass re-predicts every entry missing
            there, column by column in ``missing_order_``, with the saved forests; there is no
            stopping criterion for a batch (it would make a row's imputation depend on the other
            rows of its batch), so the number is fixed. The default, 2, lets each column's
            prediction see the others' forest predictions rather than the initial fill; in
            MissForest most of the change happens in the first iterations. 0 leaves the initial
            fill.

    Attributes:
        n_features_in_: number of columns.
        categorical_: the validated, sorted categorical column indices.
        initial_fill_: ``(n_features,)`` training mean (continuous) or mode (categorical; the
            smallest code among ties) of each column's observed values.
        n_missing_: ``(n_features,)`` missing entries per column at fit time.
        missing_order_: ``(n_features,)`` column indices in increasing number of missing entries
            at fit time (ties by index); the visiting order of :meth:`fit` and :meth:`transform`.
        forests_: ``{column index: fitted forest}`` for every column (empty with one column, which
            has no predictors: it is filled with its mean / mode).
        n_iter_: the iteration whose matrix :meth:`fit_transform` returned (0: nothing to impute).
        deltas_: ``(iterations run, 2)`` stopping criterion after each iteration, columns
            ``(Delta_N, Delta_F)``, ``NaN`` for a type without missing entries. When the criterion
            stopped the iterations there is one more row than ``n_iter_``: the iteration whose
            increase stopped them.
    """

    def __init__(
        self,
        categorical: Iterable[int] = (),
        max_iter: int = 10,
        n_estimators: int = 100,
        max_depth: int | None = None,
        min_samples_leaf: float = 1,
        random_state: int | np.random.RandomState | None = None,
        n_jobs: int | None = None,
        max_features: str | float | None = "sqrt",
        transform_passes: int = 2,
    ):
        self.categorical = categorical
        self.max_iter = max_iter
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.min_samples_leaf = min_samples_leaf
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.max_features = max_features
        self.transform_passes = transform_passes

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags

    # -- validation -------------------------------------------------------------------------

    def _categorical_indices(self, n_features: int) -> tuple[int, ...]:
        indices = list(self.categorical)
        for index in indices:
            if isinstance(index, bool) or not isinstance(index, numbers.Integral):
                raise TypeError(f"categorical: column indices must be integers, got {index!r}")
            if not 0 <= index < n_features:
                raise ValueError(f"categorical: column index {index} is out of range for {n_features} columns")
        if len(set(indices)) != len(indices):
            raise ValueError(f"categorical: repeated column indices in {indices}")
        return tuple(sorted(int(i) for i in indices))

    def _check_params(self) -> None:
        if isinstance(self.max_iter, bool) or not isinstance(self.max_iter, numbers.Integral) or self.max_iter < 1:
            raise ValueError(f"max_iter must be an integer >= 1, got {self.max_iter!r}")
        passes = self.transform_passes
        if isinstance(passes, bool) or not isinstance(passes, numbers.Integral) or passes < 0:
            raise ValueError(f"transform_passes must be an integer >= 0, got {passes!r}")

    @staticmethod
    def _as_matrix(X: Any) -> np.ndarray:
        try:
            X = np.array(X, dtype=np.float64)  # a copy: the caller's array is never written to
        except (TypeError, ValueError) as error:
            raise ValueError(f"X must be a numeric 2D array with NaN for missing values: {error}") from error
        if X.ndim != 2:
            raise ValueError(f"X must be 2D (rows, columns), got {X.ndim} dimension(s) of shape {X.shape}")
        return X

    @staticmethod
    def _check_values(X: np.ndarray, categorical: tuple[int, ...]) -> None:
        infinite = np.flatnonzero(np.isinf(X).any(axis=0))
        if infinite.size:
            raise ValueError(f"column(s) {infinite.tolist()} hold infinite values; use NaN for missing")
        for index in categorical:
            observed = X[:, index][~np.isnan(X[:, index])]
            invalid = observed[(observed != np.floor(observed)) | (observed < 0)]
            if invalid.size:
                raise ValueError(
                    f"categorical column {index} must hold integer codes 0..L-1 (NaN for missing), found {invalid[0]!r}"
                )

    # -- fitting ----------------------------------------------------------------------------

    def _new_forest(self, categorical: bool, rng: np.random.RandomState):
        params = {
            "n_estimators": self.n_estimators,
            "max_depth": self.max_depth,
            "min_samples_leaf": self.min_samples_leaf,
            "max_features": self.max_features,
            "n_jobs": self.n_jobs,
            "random_state": rng.randint(np.iinfo(np.int32).max),
        }
        if categorical:
            return RandomForestClassifier(criterion="gini", **params)  # thesis Eq. 2.2
        return RandomForestRegressor(criterion="squared_error", **params)  # thesis Eq. 2.1

    def fit(self, X, y=None) -> MissForestImputer:
        """Run MissForest on ``X`` (2D floats, ``NaN`` missing) and keep the forests; see the class doc."""
        self.fit_transform(X)
        return self

    def fit_transform(self, X, y=None, **fit_params) -> np.ndarray:
        """Run MissForest on ``X`` and return the imputed matrix it produced (float64, a new array).

        This is the matrix of the iteration the stopping criterion chose, not ``transform(X)``.

        Raises:
            ValueError: a column has no observed value (its index is named), or ``X`` is invalid.
        """
        self._check_params()
        X = self._as_matrix(X)
        n_rows, n_features = X.shape
        if n_rows == 0 or n_features == 0:
            raise ValueError(f"X must have at least one row and one column, got shape {X.shape}")
        categorical = self._categorical_indices(n_features)
        self._check_values(X, categorical)
        is_categorical = np.zeros(n_features, dtype=bool)
        is_categorical[list(categorical)] = True

        missing = np.isnan(X)
        n_missing = missing.sum(axis=0)
        empty = np.flatnonzero(n_missing == n_rows)
        if empty.size:
            raise ValueError(
                f"column(s) {empty.tolist()} have no observed value: MissForest has nothing to learn them from"
            )

        initial_fill = np.empty(n_features)
        for j in range(n_features):
            observed = X[~missing[:, j], j]
            if is_categorical[j]:
                codes, counts = np.unique(observed, return_counts=True)
                initial_fill[j] = codes[np.argmax(counts)]
            else:
                initial_fill[j] = observed.mean()
        order = np.argsort(n_missing, kind="stable")
        imputed = np.where(missing, initial_fill, X)

        rng = check_random_state(self.random_state)
        deltas: list[tuple[float, float]] = []
        forests: dict[int, Any] = {}
        n_iter = 0
        if n_features > 1 and missing.any():
            to_impute = [int(j) for j in order if n_missing[j] > 0]
            continuous_missing = missing[:, ~is_categorical].any()
            categorical_missing = int(missing[:, is_categorical].sum())
            previous_delta = np.array([np.inf, np.inf])
            for iteration in range(1, self.max_iter + 1):
                previous = imputed.copy()
                iteration_forests = {}
                for j in to_impute:
                    observed = ~missing[:, j]
                    predictors = np.delete(imputed, j, axis=1)
                    forest = self._new_forest(is_categorical[j], rng)
                    forest.fit(predictors[observed], imputed[observed, j])
                    imputed[~observed, j] = forest.predict(predictors[~observed])
                    iteration_forests[j] = forest
                delta = np.array(
                    [
                        _delta_continuous(imputed, previous, ~is_categorical) if continuous_missing else np.nan,
                        _delta_categorical(imputed, previous, is_categorical, categorical_missing)
                        if categorical_missing
                        else np.nan,
                    ]
                )
                deltas.append((float(delta[0]), float(delta[1])))
                present = ~np.isnan(delta)
                if not np.any(delta[present] < previous_delta[present]):
                    imputed = previous  # the criterion increased for every type: keep the previous iteration
                    break
                previous_delta = delta
                forests = iteration_forests
                n_iter = iteration
        if n_features > 1:
            # Forests for the columns complete at fit time, which later batches may lack.
            for j in order:
                j = int(j)
                if j not in forests:
                    predictors = np.delete(imputed, j, axis=1)
                    forests[j] = self._new_forest(is_categorical[j], rng).fit(predictors, imputed[:, j])

        self.n_features_in_ = n_features
        self.categorical_ = categorical
        self.initial_fill_ = initial_fill
        self.n_missing_ = n_missing
        self.missing_order_ = order
        self.forests_ = forests
        self.n_iter_ = n_iter
        self.deltas_ = np.array(deltas, dtype=np.float64).reshape(-1, 2)
        return imputed

    # -- re-applying ------------------------------------------------------------------------

    def transform(self, X) -> np.ndarray:
        """Impute the missing entries of new rows ``X`` with the fitted forests; observed entries are kept.

        Missing entries start at ``initial_fill_`` and are re-predicted ``transform_passes`` times,
        column by column in ``missing_order_``. Each row's result depends on that row alone.
        Returns a new float64 array.
        """
        check_is_fitted(self, "forests_")
        X = self._as_matrix(X)
        if X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {X.shape[1]} columns; the imputer was fitted on {self.n_features_in_}")
        self._check_values(X, self.categorical_)
        missing = np.isnan(X)
        imputed = np.where(missing, self.initial_fill_, X)
        if not self.forests_:
            return imputed
        columns = [int(j) for j in self.missing_order_ if missing[:, j].any()]
        for _ in range(self.transform_passes):
            for j in columns:
                rows = missing[:, j]
                imputed[rows, j] = self.forests_[j].predict(np.delete(imputed[rows], j, axis=1))
        return imputed


def _delta_continuous(new: np.ndarray, old: np.ndarray, columns: np.ndarray) -> float:
    """Stekhoven and Bühlmann's Delta_N: sum over continuous columns of (new - old)^2 / sum of new^2."""
    change = float(np.sum((new[:, columns] - old[:, columns]) ** 2))
    scale = float(np.sum(new[:, columns] ** 2))
    if scale == 0.0:
        return 0.0 if change == 0.0 else math.inf
    return change / scale


def _delta_categorical(new: np.ndarray, old: np.ndarray, columns: np.ndarray, n_missing: int) -> float:
    """Stekhoven and Bühlmann's Delta_F: entries changed in categorical columns / missing categorical entries."""
    return float(np.sum(new[:, columns] != old[:, columns])) / n_missing


# --------------------------------------------------------------------------------------------
# Value parsing
# --------------------------------------------------------------------------------------------


def _is_missing(value: Any) -> bool:
    """``None``, NaN, ``pd.NA``, ``NaT``, or a string that is empty after stripping (an empty DICOM value)."""
    if value is None:
        return True
    if isinstance(value, (str, bytes)):
        return not value.strip()
    if isinstance(value, (list, tuple, np.ndarray)):
        return False
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def parse_age_string(value: Any) -> float:
    """A DICOM Age String (VR AS, PS3.5 Table 6.2-1: ``nnnD``, ``nnnW``, ``nnnM`` or ``nnnY``) in years.

    Days are divided by 365.25, weeks are 7 days, months are 1/12 year: ``"045Y"`` -> 45.0,
    ``"018M"`` -> 1.5, ``"026W"`` -> 0.498, ``"010D"`` -> 0.0274. Surrounding spaces (DICOM
    padding) are ignored; anything else that is not exactly three digits and one of D, W, M, Y
    (empty, ``None``, numbers, ``"45"``, ``"abc"``) gives ``NaN``.
    """
    if isinstance(value, bytes):
        value = value.decode("ascii", errors="replace")
    if not isinstance(value, str):
        return math.nan
    match = _AGE_STRING.fullmatch(value.strip())
    if match is None:
        return math.nan
    return int(match[1]) * _YEARS_PER_UNIT[match[2]]


def _factorize(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """``pd.factorize`` (codes, -1 for NA; distinct values), tolerating unhashable values (lists)."""
    try:
        codes, uniques = pd.factorize(values, use_na_sentinel=True)
    except TypeError:
        codes, uniques = pd.factorize(
            values.map(lambda v: v if isinstance(v, (str, bytes, numbers.Number)) or v is None else str(v)),
            use_na_sentinel=True,
        )
    return np.asarray(codes), np.asarray(uniques, dtype=object)


def _map_distinct(values: pd.Series, parse: Callable[[Any], Any]) -> tuple[np.ndarray, list[Any]]:
    """Parse each distinct value once (archives repeat tag values a lot): (codes, parsed distinct values)."""
    codes, uniques = _factorize(values)
    return codes, [parse(value) for value in uniques]


def parse_age_strings(values: pd.Series) -> pd.Series:
    """:func:`parse_age_string` over a Series: float64 years, same index, ``NaN`` where invalid or missing."""
    codes, parsed = _map_distinct(values, parse_age_string)
    years = np.append(np.asarray(parsed, dtype=np.float64), np.nan)[codes]  # code -1 -> the appended NaN
    return pd.Series(years, index=values.index, name=values.name, dtype=np.float64)


def _number(value: Any) -> tuple[float, bool]:
    """A tag value as a float: (value, whether a present value had to be dropped as not a number)."""
    if _is_missing(value):
        return math.nan, False
    if isinstance(value, (bool, np.bool_)):
        return float(value), False
    if isinstance(value, bytes):
        value = value.decode("ascii", errors="replace")
    try:
        number = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError, OverflowError):
        return math.nan, True
    if not math.isfinite(number):
        return math.nan, True
    return number, False


def _age(value: Any) -> tuple[float, bool]:
    """A tag value as years from a DICOM Age String: (value, whether a present value was not one)."""
    if _is_missing(value):
        return math.nan, False
    years = parse_age_string(value)
    return years, math.isnan(years)


def _level(value: Any) -> str | None:
    """The string form of a categorical tag value, ``None`` for missing.

    Integral numbers print without a decimal part, so a code read as ``1`` in one batch and as
    ``1.0`` in another (pandas turns integer columns with missing values into floats) is one level.
    """
    if _is_missing(value):
        return None
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        number = float(value)
        return str(int(number)) if number.is_integer() else repr(number)
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    return str(value).strip()


# --------------------------------------------------------------------------------------------
# The feature table
# --------------------------------------------------------------------------------------------


class TagFeatureTable:
    """RadiologyNET's DICOM-tag preprocessing (thesis 2.3.2): MissForest, then [0, 1] scaling and one-hot.

    Fitted once on a sample of the archive, saved, and applied to the rest batch by batch:

    - continuous tags: numeric columns are used as floats, bool columns as 0/1; a column of
      strings most of whose non-empty values are DICOM Age Strings (``^\\d{3}[DWMY]$``,
      PS3.5 Table 6.2-1; e.g. PatientAge) is parsed to years with :func:`parse_age_string`;
      otherwise strings are parsed as numbers. Present values that are not numbers (or, in an age
      column, not Age Strings), and infinities, become missing and are counted in
      ``coercion_counts_``. Empty strings are missing values, not junk;
    - categorical tags: any values (str, int, bool, None/NaN); a level is the stripped string
      form of a value (integral floats print as integers: ``1.0`` and ``1`` are level ``"1"``);
      the levels are the sorted distinct forms in the fitting frame; a column with more than
      ``max_levels`` is refused (the study kept only categorical tags with at most 50). Levels
      not seen at fit time are treated as missing at transform time and counted in
      ``unseen_levels_``;
    - missing values, judged missing-at-random in the study, are imputed with
      :class:`MissForestImputer` (MSE forests, thesis Eq. 2.1, for continuous tags; Gini
      forests, Eq. 2.2, for categorical tags coded ``0..L-1``);
    - continuous tags are then min-max scaled to [0, 1] with the minimum and maximum of the
      imputed fitting sample (a constant tag gives 0.0; new values outside the range are
      clipped), and categorical tags one-hot encoded, one feature ``"{tag}={level}"`` per level.

    The output is a float32 DataFrame with the columns ``feature_names_`` (continuous tags in the
    given order, then each categorical tag's levels) and the input's index.

    Args:
        continuous: names of the continuous tag columns.
        categorical: names of the categorical tag columns.
        max_levels: the most levels a categorical tag may have (the study: 50).
        imputer_params: keyword arguments for :class:`MissForestImputer` (not ``categorical``,
            which the table sets); ``random_state`` defaults to the table's.
        random_state: seed of the imputer's forests.

    Attributes (after :meth:`fit`):
        continuous_kinds_: ``{tag: "number" | "age"}``, how each continuous tag is parsed.
        levels_: ``{tag: [level, ...]}`` for each categorical tag.
        imputer_: the fitted :class:`MissForestImputer` (columns: continuous tags, then categorical codes).
        data_min_, data_max_: ``(n_continuous,)`` the scaling range.
        feature_names_: the output columns.
        coercion_counts_: ``{continuous tag: values dropped as not numbers}``, fit and every
            transform since added up.
        unseen_levels_: ``{categorical tag: values of levels unseen at fit}``, added up over transforms.
    """

    def __init__(
        self,
        continuous: Sequence[str],
        categorical: Sequence[str],
        max_levels: int = 50,
        imputer_params: dict | None = None,
        random_state: int | None = 0,
    ):
        self.continuous = tuple(continuous)
        self.categorical = tuple(categorical)
        names = self.continuous + self.categorical
        if not names:
            raise ValueError("TagFeatureTable needs at least one continuous or categorical column")
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"columns listed more than once (or as both continuous and categorical): {repeated}")
        if isinstance(max_levels, bool) or not isinstance(max_levels, numbers.Integral) or max_levels < 1:
            raise ValueError(f"max_levels must be an integer >= 1, got {max_levels!r}")
        self.max_levels = int(max_levels)
        self.imputer_params = dict(imputer_params or {})
        allowed = set(MissForestImputer().get_params()) - {"categorical"}
        unknown = sorted(set(self.imputer_params) - allowed)
        if unknown:
            raise ValueError(f"imputer_params: unknown or reserved MissForestImputer parameters {unknown}")
        self.random_state = random_state

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(continuous={list(self.continuous)}, categorical={list(self.categorical)}, "
            f"max_levels={self.max_levels})"
        )

    # -- fitting ----------------------------------------------------------------------------

    def fit(self, frame: pd.DataFrame) -> TagFeatureTable:
        """Learn the parsing, the levels, the imputation forests and the scaling from ``frame``."""
        self.fit_transform(frame)
        return self

    def fit_transform(self, frame: pd.DataFrame) -> pd.DataFrame:
        """:meth:`fit`, returning the features of ``frame`` from the imputation MissForest produced.

        Raises:
            ValueError: listed columns absent from ``frame`` (named), a categorical column with more
                than ``max_levels`` levels (named, with its count), a column with no value at all.
        """
        self._check_frame(frame)
        self.coercion_counts_ = {name: 0 for name in self.continuous}
        self.unseen_levels_ = {name: 0 for name in self.categorical}
        self.continuous_kinds_ = {name: _continuous_kind(frame[name]) for name in self.continuous}

        self.levels_ = {}
        for name in self.categorical:
            _, forms = _map_distinct(frame[name], _level)
            levels = sorted({form for form in forms if form is not None})
            if len(levels) > self.max_levels:
                raise ValueError(
                    f"categorical column {name!r} has {len(levels)} levels, more than max_levels={self.max_levels}; "
                    "leave it out of the table (the study kept categorical tags with at most 50 levels)"
                )
            self.levels_[name] = levels

        matrix = self._matrix(frame)
        empty = [name for name, column in zip(self.continuous + self.categorical, matrix.T) if np.isnan(column).all()]
        if empty:
            raise ValueError(f"column(s) {empty} have no usable value in the fitting frame: nothing to impute from")

        params = {"random_state": self.random_state, **self.imputer_params}
        n_continuous = len(self.continuous)
        self.imputer_ = MissForestImputer(
            categorical=tuple(range(n_continuous, n_continuous + len(self.categorical))), **params
        )
        imputed = self.imputer_.fit_transform(matrix)
        self.data_min_ = imputed[:, :n_continuous].min(axis=0)
        self.data_max_ = imputed[:, :n_continuous].max(axis=0)
        self.feature_names_ = list(self.continuous) + [
            f"{name}={level}" for name in self.categorical for level in self.levels_[name]
        ]
        return self._encode(imputed, frame.index)

    # -- applying ---------------------------------------------------------------------------

    def transform(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The features of a new batch: parsed, imputed with the fitted forests, scaled and one-hot encoded.

        Updates ``coercion_counts_`` and ``unseen_levels_`` with this batch's counts.
        """
        self._check_fitted()
        self._check_frame(frame)
        return self._encode(self.imputer_.transform(self._matrix(frame)), frame.index)

    def _check_fitted(self) -> None:
        if not hasattr(self, "imputer_"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet: call fit() first")

    def _check_frame(self, frame: pd.DataFrame) -> None:
        if not isinstance(frame, pd.DataFrame):
            raise TypeError(f"expected a pandas DataFrame, got {type(frame).__name__}")
        absent = [name for name in self.continuous + self.categorical if name not in frame.columns]
        if absent:
            raise ValueError(f"column(s) {absent} are not in the frame")
        repeated = [name for name in self.continuous + self.categorical if isinstance(frame[name], pd.DataFrame)]
        if repeated:
            raise ValueError(f"column(s) {repeated} appear more than once in the frame")

    def _matrix(self, frame: pd.DataFrame) -> np.ndarray:
        """The imputer's input: continuous tags as floats, categorical tags as level codes, NaN missing."""
        matrix = np.empty((len(frame), len(self.continuous) + len(self.categorical)), dtype=np.float64)
        for j, name in enumerate(self.continuous):
            values, n_coerced = _continuous_values(frame[name], self.continuous_kinds_[name])
            matrix[:, j] = values
            self.coercion_counts_[name] += n_coerced
        for k, name in enumerate(self.categorical):
            index = {level: float(code) for code, level in enumerate(self.levels_[name])}
            codes, forms = _map_distinct(frame[name], _level)
            distinct = np.array([np.nan if form is None else index.get(form, np.nan) for form in forms] + [np.nan])
            unseen = np.array([form is not None and form not in index for form in forms] + [False])
            matrix[:, len(self.continuous) + k] = distinct[codes]
            self.unseen_levels_[name] += int(unseen[codes].sum())
        return matrix

    def _encode(self, imputed: np.ndarray, index: pd.Index) -> pd.DataFrame:
        n_continuous = len(self.continuous)
        features = np.zeros((imputed.shape[0], len(self.feature_names_)), dtype=np.float32)
        span = self.data_max_ - self.data_min_
        constant = span <= 0
        scaled = (imputed[:, :n_continuous] - self.data_min_) / np.where(constant, 1.0, span)
        scaled[:, constant] = 0.0
        features[:, :n_continuous] = np.clip(scaled, 0.0, 1.0)
        offset = n_continuous
        rows = np.arange(imputed.shape[0])
        for k, name in enumerate(self.categorical):
            codes = imputed[:, n_continuous + k].astype(np.intp)  # imputed codes are always fitted levels
            features[rows, offset + codes] = 1.0
            offset += len(self.levels_[name])
        return pd.DataFrame(features, index=index, columns=list(self.feature_names_))

    # -- persistence ------------------------------------------------------------------------

    def save(self, path: str | os.PathLike, *, compress: int = 3) -> Path:
        """Write the fitted table to one joblib file (``path``, or ``path/tag_features.joblib`` for a folder).

        The file records :data:`FORMAT_VERSION` and the scikit-learn version; it is written to a
        temporary name and renamed, so a reader never sees half of it. Returns the file's path.
        """
        self._check_fitted()
        path = Path(path)
        if path.is_dir():
            path = path / DEFAULT_FILENAME
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "format": _FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "sklearn_version": sklearn.__version__,
            "table": self,
        }
        return write_atomic(path, lambda tmp: joblib.dump(payload, tmp, compress=compress))

    @classmethod
    def load(cls, path: str | os.PathLike) -> TagFeatureTable:
        """Read a table written by :meth:`save` (a trusted file: it is a pickle).

        Raises:
            ValueError: the file is not a saved TagFeatureTable, or was written in a format
                version this radtl does not read.
            TypeError: the file holds another class than ``cls``.
        """
        path = Path(path)
        if path.is_dir():
            path = path / DEFAULT_FILENAME
        payload = joblib.load(path)
        check_saved_format(payload, path, "TagFeatureTable", _FORMAT_NAME, FORMAT_VERSION,
                           ": refit the table, or load it with the radtl that wrote it")
        table = payload["table"]
        if not isinstance(table, cls):
            raise TypeError(f"{path} holds a {type(table).__name__}, not a {cls.__name__}")
        return table


def _continuous_kind(values: pd.Series) -> str:
    """``"age"`` for a string column most of whose non-empty values are DICOM Age Strings, else ``"number"``."""
    if pd.api.types.is_bool_dtype(values.dtype) or pd.api.types.is_numeric_dtype(values.dtype):
        return "number"
    codes, uniques = _factorize(values)
    counts = np.bincount(codes[codes >= 0], minlength=len(uniques))
    present = np.array([not _is_missing(value) for value in uniques], dtype=bool)
    ages = np.array([not math.isnan(parse_age_string(value)) for value in uniques], dtype=bool)
    n_ages = int(counts[ages].sum()) if len(uniques) else 0
    n_present = int(counts[present].sum()) if len(uniques) else 0
    return "age" if n_ages and 2 * n_ages > n_present else "number"


def _continuous_values(values: pd.Series, kind: str) -> tuple[np.ndarray, int]:
    """A continuous tag column as float64 (NaN missing) and how many present values were dropped."""
    if kind == "number" and (pd.api.types.is_bool_dtype(values.dtype) or pd.api.types.is_numeric_dtype(values.dtype)):
        numbers_ = values.to_numpy(dtype=np.float64, na_value=np.nan, copy=True)
        infinite = np.isinf(numbers_)
        numbers_[infinite] = np.nan
        return numbers_, int(infinite.sum())
    codes, parsed = _map_distinct(values, _age if kind == "age" else _number)
    distinct = np.array([value for value, _ in parsed] + [np.nan], dtype=np.float64)
    dropped = np.array([bad for _, bad in parsed] + [False], dtype=bool)
    return distinct[codes], int(dropped[codes].sum())


#: MissForest settings for an archive sample: forests small enough to save and re-apply
#: (a full-depth forest per tag on 10^5 rows runs to gigabytes).
ARCHIVE_IMPUTER_PARAMS = {"n_estimators": 30, "max_depth": 10, "min_samples_leaf": 2}


def tag_features_from_index(
    db: str | os.PathLike,
    out: str | os.PathLike,
    continuous: Sequence[str] | None = None,
    categorical: Sequence[str] | None = None,
    fitted: str | os.PathLike | None = None,
    sample: int = 20_000,
    batch_rows: int = 50_000,
    seed: int = 0,
    imputer_params: dict | None = None,
) -> Path:
    """The tag feature table of a whole index: fit on a sample, save, transform every file batch by batch.

    Writes ``OUT/tag_features.parquet`` (``path`` and the float32 features of every file read
    without error), ``OUT/tag_features.joblib`` (the fitted :class:`TagFeatureTable`) and
    ``OUT/profile.csv`` (the column profile the selection came from).

    Args:
        db: the index folder (:mod:`radtl.dicom.index`).
        out: the output folder.
        continuous, categorical: the tag columns; by default, those the study's selection
            rules pick (:func:`radtl.dicom.index.profile_columns`).
        fitted: a saved :class:`TagFeatureTable` to apply instead of fitting one (new data,
            preprocessed as the old).
        sample: rows (a reservoir sample of the index) the preprocessing is fitted on.
        batch_rows: rows transformed at a time; the driver never holds more.
        seed: the sample's and the forests' seed.
        imputer_params: :class:`MissForestImputer` settings (default :data:`ARCHIVE_IMPUTER_PARAMS`).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from radtl.dicom.index import connect, profile_columns, selected_columns, sql_identifier

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if fitted is not None:
        table = TagFeatureTable.load(fitted)
    else:
        profile = profile_columns(db)
        profile.to_csv(out / "profile.csv", index=False)
        if continuous is None and categorical is None:
            continuous, categorical = selected_columns(profile)
        table = TagFeatureTable(list(continuous or ()), list(categorical or ()),
                                imputer_params=imputer_params or ARCHIVE_IMPUTER_PARAMS, random_state=seed)
    columns = ", ".join(sql_identifier(c) for c in table.continuous + table.categorical)
    with connect(db) as con:
        if fitted is None:
            frame = con.execute(f"SELECT {columns} FROM dicom WHERE status = 'ok' "
                                f"USING SAMPLE reservoir({int(sample)} ROWS) REPEATABLE ({int(seed)})").df()
            table.fit(frame)
            table.save(out / DEFAULT_FILENAME)
        relation = con.sql(f"SELECT path, {columns} FROM dicom WHERE status = 'ok' ORDER BY path")
        # DuckDB 2 named it to_arrow_reader; DuckDB 1 fetch_arrow_reader
        reader = (getattr(relation, "to_arrow_reader", None) or relation.fetch_arrow_reader)(batch_rows)
        target, writer = out / "tag_features.parquet", None
        with atomic_path(target) as temporary:
            try:
                for batch in reader:
                    frame = batch.to_pandas()
                    features = table.transform(frame.drop(columns="path"))
                    features.insert(0, "path", frame["path"].to_numpy())
                    arrow = pa.Table.from_pandas(features, preserve_index=False)
                    writer = writer or pq.ParquetWriter(temporary, arrow.schema, compression="zstd")
                    writer.write_table(arrow)
            finally:
                if writer is not None:
                    writer.close()
            if writer is None:
                raise ValueError(f"{db} has no file read without error: nothing to build features from")
    return target
