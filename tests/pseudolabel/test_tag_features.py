"""Specification of radtl.pseudolabel.tag_features: MissForest and the DICOM-tag feature table (thesis 2.3.2)."""

from __future__ import annotations

import copy
import math

import joblib
import numpy as np
import pandas as pd
import pytest

from radtl.pseudolabel import MissForestImputer, TagFeatureTable, parse_age_string, parse_age_strings

FAST = {"n_estimators": 15, "random_state": 0}


def linked_matrix(n: int = 300, seed: int = 0) -> np.ndarray:
    """Columns: x0 ~ U(0, 10), x1 = 2 x0 + 1, noise, a 4-level category given by x0's quarter."""
    rng = np.random.default_rng(seed)
    x0 = rng.uniform(0, 10, n)
    category = np.digitize(x0, [2.5, 5.0, 7.5]).astype(float)
    return np.column_stack([x0, 2 * x0 + 1, rng.normal(size=n), category])


def masked(truth: np.ndarray, column: int, fraction: float = 0.2, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    mask = np.zeros(truth.shape, dtype=bool)
    mask[:, column] = rng.random(truth.shape[0]) < fraction
    return np.where(mask, np.nan, truth), mask


# -- MissForestImputer ---------------------------------------------------------------------------


def test_missforest_recovers_a_continuous_value_determined_by_another_column_far_better_than_the_mean():
    truth = linked_matrix()
    X, mask = masked(truth, column=1)
    imputed = MissForestImputer(categorical=[3], **FAST).fit_transform(X)
    forest_rmse = np.sqrt(np.mean((imputed[mask] - truth[mask]) ** 2))
    mean_rmse = np.sqrt(np.mean((np.nanmean(X[:, 1]) - truth[mask]) ** 2))
    assert forest_rmse < 0.2 * mean_rmse


def test_missforest_recovers_categories_determined_by_a_continuous_column():
    truth = linked_matrix()
    X, mask = masked(truth, column=3)
    imputed = MissForestImputer(categorical=[3], **FAST).fit_transform(X)
    assert np.mean(imputed[mask] == truth[mask]) > 0.9
    assert set(np.unique(imputed[:, 3])) <= {0.0, 1.0, 2.0, 3.0}


def test_missforest_never_changes_observed_entries():
    truth = linked_matrix()
    rng = np.random.default_rng(2)
    mask = rng.random(truth.shape) < 0.15
    X = np.where(mask, np.nan, truth)
    imputer = MissForestImputer(categorical=[3], **FAST)
    imputed = imputer.fit_transform(X)
    assert not np.isnan(imputed).any()
    np.testing.assert_array_equal(imputed[~mask], truth[~mask])
    np.testing.assert_array_equal(imputer.transform(X)[~mask], truth[~mask])


def test_missforest_stops_when_the_difference_increases_and_records_the_deltas():
    truth = linked_matrix()
    rng = np.random.default_rng(3)
    X = np.where(rng.random(truth.shape) < 0.1, np.nan, truth)
    imputer = MissForestImputer(categorical=[3], max_iter=10, **FAST).fit(X)
    assert 1 <= imputer.n_iter_ < 10
    deltas = imputer.deltas_
    assert deltas.shape == (imputer.n_iter_ + 1, 2)  # the iteration that increased the criterion is recorded
    assert np.all(deltas[-1] >= deltas[-2])  # neither Delta_N nor Delta_F decreased: stop
    assert np.all((np.diff(deltas[:-1], axis=0) < 0).any(axis=1))  # before that, one of them decreased each time


def test_missforest_fit_transform_returns_the_matrix_of_the_chosen_iteration_not_a_transform():
    truth = linked_matrix()
    X, mask = masked(truth, column=1)
    imputer = MissForestImputer(categorical=[3], transform_passes=0, **FAST)
    imputed = imputer.fit_transform(X)
    assert not np.allclose(imputed[mask], imputer.initial_fill_[1])
    np.testing.assert_array_equal(imputer.transform(X)[mask], imputer.initial_fill_[1])


def test_missforest_transform_fills_only_missing_entries_of_new_rows_with_the_fitted_forests():
    truth = linked_matrix()
    X, _ = masked(truth, column=1)
    imputer = MissForestImputer(categorical=[3], transform_passes=1, **FAST).fit(X)
    new_truth = linked_matrix(n=50, seed=7)
    new, new_mask = masked(new_truth, column=1, fraction=0.4, seed=8)
    filled = imputer.transform(new)
    np.testing.assert_array_equal(filled[~new_mask], new_truth[~new_mask])
    rows = new_mask[:, 1]
    expected = imputer.forests_[1].predict(np.delete(new[rows], 1, axis=1))
    np.testing.assert_allclose(filled[rows, 1], expected)


def test_missforest_keeps_every_columns_forest_and_imputes_a_column_complete_at_fit_time():
    truth = linked_matrix()
    X, _ = masked(truth, column=1)  # x0 (column 0) is complete here
    imputer = MissForestImputer(categorical=[3], **FAST).fit(X)
    assert set(imputer.forests_) == {0, 1, 2, 3}
    new_truth = linked_matrix(n=60, seed=9)
    new, new_mask = masked(new_truth, column=0, fraction=0.5, seed=10)
    filled = imputer.transform(new)
    error = np.abs(filled[new_mask] - new_truth[new_mask]).mean()
    mean_error = np.abs(imputer.initial_fill_[0] - new_truth[new_mask]).mean()
    assert error < 0.3 * mean_error


def test_missforest_refuses_a_column_with_no_observed_value_and_names_it():
    X = linked_matrix(n=40)
    X[:, 2] = np.nan
    with pytest.raises(ValueError, match=r"\[2\]"):
        MissForestImputer(categorical=[3], **FAST).fit(X)


def test_missforest_refuses_categorical_codes_that_are_not_integers():
    X = linked_matrix(n=40)
    X[0, 3] = 1.5
    with pytest.raises(ValueError, match="categorical column 3"):
        MissForestImputer(categorical=[3], **FAST).fit(X)


@pytest.mark.parametrize("categorical", [[4], [-1]])
def test_missforest_refuses_categorical_indices_out_of_range(categorical):
    with pytest.raises(ValueError, match="out of range"):
        MissForestImputer(categorical=categorical, **FAST).fit(linked_matrix(n=40))


def test_missforest_refuses_input_that_is_not_2d():
    with pytest.raises(ValueError, match="2D"):
        MissForestImputer(**FAST).fit(np.arange(5.0))


def test_missforest_visits_columns_in_increasing_missingness():
    X = linked_matrix(n=100)
    X[:30, 0] = np.nan
    X[:10, 2] = np.nan
    imputer = MissForestImputer(categorical=[3], max_iter=1, **FAST).fit(X)
    assert imputer.missing_order_.tolist() == [1, 3, 2, 0]
    assert imputer.n_missing_.tolist() == [30, 0, 10, 0]


# -- Age Strings ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "years"),
    [("045Y", 45.0), ("018M", 1.5), ("026W", 26 * 7 / 365.25), ("010D", 10 / 365.25), ("045Y ", 45.0)],
)
def test_parse_age_string_converts_dicom_age_strings_to_years(value, years):
    assert parse_age_string(value) == pytest.approx(years)


@pytest.mark.parametrize("value", ["", "abc", "45", "45Y", "045y", "0450Y", None, 45, float("nan")])
def test_parse_age_string_gives_nan_for_empty_or_invalid_values(value):
    assert math.isnan(parse_age_string(value))


def test_parse_age_strings_works_on_a_series_and_keeps_its_index():
    series = pd.Series(["045Y", None, "018M", "junk", "045Y"], index=[10, 11, 12, 13, 14])
    years = parse_age_strings(series)
    assert years.index.tolist() == [10, 11, 12, 13, 14]
    np.testing.assert_allclose(years.to_numpy(), [45.0, np.nan, 1.5, np.nan, 45.0])


# -- TagFeatureTable -----------------------------------------------------------------------------

CONTINUOUS = ["SliceThickness", "PatientAge", "KVP"]
CATEGORICAL = ["Modality", "BodyPartExamined", "ContrastUsed"]
TABLE_PARAMS = {"n_estimators": 10, "max_iter": 4}


def tag_frame(n: int = 200, seed: int = 0) -> pd.DataFrame:
    """Tags as an archive index holds them: floats with gaps, Age Strings, strings, None, bools."""
    rng = np.random.default_rng(seed)
    modality = rng.choice(["CT", "MR", "CR"], n).astype(object)
    thickness = np.where(modality == "CT", 1.25, np.where(modality == "MR", 5.0, 0.5)) + rng.normal(0, 0.1, n)
    thickness[rng.random(n) < 0.15] = np.nan
    ages = np.array([f"{age:03d}Y" for age in rng.integers(1, 90, n)], dtype=object)
    ages[rng.random(n) < 0.1] = None
    ages[0] = "018M"
    kvp = np.where(modality == "CT", 120.0, np.where(modality == "CR", 80.0, np.nan))
    body_part = rng.choice(["HEAD", "CHEST", "KNEE"], n).astype(object)
    body_part[rng.random(n) < 0.2] = None
    body_part[1] = ""
    modality[rng.random(n) < 0.05] = None
    return pd.DataFrame(
        {
            "SliceThickness": thickness,
            "PatientAge": ages,
            "KVP": kvp,
            "Modality": modality,
            "BodyPartExamined": body_part,
            "ContrastUsed": rng.random(n) < 0.3,
            "StudyDescription": "not a feature",
        },
        index=pd.RangeIndex(1000, 1000 + n),
    )


@pytest.fixture(scope="module")
def fitted() -> tuple[TagFeatureTable, pd.DataFrame]:
    table = TagFeatureTable(CONTINUOUS, CATEGORICAL, imputer_params=TABLE_PARAMS)
    return table, table.fit_transform(tag_frame())


def test_tag_table_names_continuous_features_then_one_per_categorical_level(fitted):
    table, features = fitted
    assert table.feature_names_ == [
        "SliceThickness",
        "PatientAge",
        "KVP",
        "Modality=CR",
        "Modality=CT",
        "Modality=MR",
        "BodyPartExamined=CHEST",
        "BodyPartExamined=HEAD",
        "BodyPartExamined=KNEE",
        "ContrastUsed=False",
        "ContrastUsed=True",
    ]
    assert features.columns.tolist() == table.feature_names_


def test_tag_table_outputs_float32_in_the_unit_interval_with_the_input_index(fitted):
    table, features = fitted
    frame = tag_frame(n=30, seed=5)
    for output in (features, table.transform(frame)):
        assert (output.dtypes == np.float32).all()
        assert not output.isna().any().any()
        assert output.min().min() >= 0.0 and output.max().max() <= 1.0
    assert table.transform(frame).index.equals(frame.index)
    assert features.index.equals(tag_frame().index)


def test_tag_table_one_hot_rows_sum_to_one_for_each_categorical_tag(fitted):
    table, features = fitted
    for name in CATEGORICAL:
        block = features[[f"{name}={level}" for level in table.levels_[name]]]
        np.testing.assert_array_equal(block.sum(axis=1).to_numpy(), 1.0)


def test_tag_table_scales_continuous_tags_by_the_fitted_minimum_and_maximum(fitted):
    table, features = fitted
    frame = tag_frame()
    assert features["SliceThickness"].min() == 0.0 and features["SliceThickness"].max() == 1.0
    observed = frame["SliceThickness"].notna()
    low, high = table.data_min_[0], table.data_max_[0]
    expected = (frame.loc[observed, "SliceThickness"] - low) / (high - low)
    np.testing.assert_allclose(features.loc[observed, "SliceThickness"], expected, rtol=1e-5, atol=1e-6)


def test_tag_table_parses_age_strings_to_years(fitted):
    table, features = fitted
    assert table.continuous_kinds_ == {"SliceThickness": "number", "PatientAge": "age", "KVP": "number"}
    low, high = table.data_min_[1], table.data_max_[1]
    assert low <= 1.5 < high
    assert features.loc[1000, "PatientAge"] == pytest.approx((1.5 - low) / (high - low), abs=1e-6)


def test_tag_table_clips_new_continuous_values_outside_the_fitted_range(fitted):
    table, _ = fitted
    frame = tag_frame(n=3, seed=6)
    frame["SliceThickness"] = [-100.0, 100.0, np.nan]
    features = table.transform(frame)
    assert features["SliceThickness"].tolist()[:2] == [0.0, 1.0]


def test_tag_table_treats_unseen_levels_as_missing_and_counts_them(fitted):
    table = copy.deepcopy(fitted[0])
    frame = tag_frame(n=20, seed=4)
    frame.loc[frame.index[:3], "Modality"] = "PT"
    features = table.transform(frame)
    assert table.unseen_levels_ == {"Modality": 3, "BodyPartExamined": 0, "ContrastUsed": 0}
    assert "Modality=PT" not in features.columns
    modality = features[["Modality=CR", "Modality=CT", "Modality=MR"]].iloc[:3]
    np.testing.assert_array_equal(modality.sum(axis=1).to_numpy(), 1.0)
    table.transform(frame)
    assert table.unseen_levels_["Modality"] == 6  # accumulated over batches


def test_tag_table_coerces_and_counts_junk_in_a_continuous_column():
    frame = tag_frame(n=80)
    thickness = frame["SliceThickness"].astype(object)
    thickness.iloc[:4] = ["n/a", "thin", "2.5", ""]
    frame["SliceThickness"] = thickness
    table = TagFeatureTable(CONTINUOUS, CATEGORICAL, imputer_params=TABLE_PARAMS)
    features = table.fit_transform(frame)
    assert table.coercion_counts_ == {"SliceThickness": 2, "PatientAge": 0, "KVP": 0}  # "" is missing, not junk
    assert not features.isna().any().any()
    later = tag_frame(n=10, seed=3)
    later["KVP"] = later["KVP"].astype(object)
    later.loc[later.index[0], "KVP"] = "high"
    table.transform(later)
    assert table.coercion_counts_["KVP"] == 1


def test_tag_table_reads_integral_floats_and_integers_as_the_same_level():
    frame = tag_frame(n=60)
    frame["EchoNumbers"] = pd.Series([1, 2] * 30, index=frame.index, dtype=object)
    table = TagFeatureTable(CONTINUOUS, [*CATEGORICAL, "EchoNumbers"], imputer_params=TABLE_PARAMS).fit(frame)
    assert table.levels_["EchoNumbers"] == ["1", "2"]
    later = tag_frame(n=5, seed=2)
    later["EchoNumbers"] = [1.0, 2.0, np.nan, 1.0, 2.0]
    table.transform(later)
    assert table.unseen_levels_["EchoNumbers"] == 0


def test_tag_table_refuses_a_categorical_column_with_too_many_levels():
    table = TagFeatureTable(CONTINUOUS, CATEGORICAL, max_levels=2, imputer_params=TABLE_PARAMS)
    with pytest.raises(ValueError, match=r"'Modality' has 3 levels"):
        table.fit(tag_frame(n=50))


def test_tag_table_refuses_listed_columns_absent_from_the_frame():
    table = TagFeatureTable([*CONTINUOUS, "EchoTime"], [*CATEGORICAL, "Manufacturer"], imputer_params=TABLE_PARAMS)
    with pytest.raises(ValueError, match=r"\['EchoTime', 'Manufacturer'\]"):
        table.fit(tag_frame(n=50))


def test_tag_table_refuses_a_column_with_no_value_and_names_it():
    frame = tag_frame(n=50)
    frame["KVP"] = np.nan
    with pytest.raises(ValueError, match="KVP"):
        TagFeatureTable(CONTINUOUS, CATEGORICAL, imputer_params=TABLE_PARAMS).fit(frame)


def test_tag_table_save_and_load_round_trip_gives_identical_features(fitted, tmp_path):
    table, _ = fitted
    path = table.save(tmp_path)
    assert path == tmp_path / "tag_features.joblib"
    loaded = TagFeatureTable.load(path)
    frame = tag_frame(n=40, seed=11)
    pd.testing.assert_frame_equal(loaded.transform(frame), copy.deepcopy(table).transform(frame))


def test_tag_table_load_refuses_an_unknown_format_version(fitted, tmp_path):
    path = fitted[0].save(tmp_path / "table.joblib")
    payload = joblib.load(path)
    payload["format_version"] = 99
    joblib.dump(payload, path)
    with pytest.raises(ValueError, match="format version 99"):
        TagFeatureTable.load(path)
