"""Mining the index as the study did: column profiles and tag selection, BodyPartExamined imputation,
the tag feature table, and real vendor files indexed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from radtl.cli import main as cli
from radtl.dicom.index import body_part_report, build_index, profile_columns, query
from radtl.dicom.synthetic import write_archive
from radtl.pseudolabel import TagFeatureTable, tag_features_from_index
from tests.support.datasets import real_corpus_folders

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    root = tmp_path_factory.mktemp("archive")
    files = write_archive(root, studies=40, series_per_study=1, instances_per_series=3, body_part_missing=0.6)
    db = tmp_path_factory.mktemp("index") / "db"
    build_index(root, db, progress=False)
    return db, files


@pytest.fixture(scope="module")
def profile(archive) -> pd.DataFrame:
    return profile_columns(archive[0]).set_index("column")


# --- profiling ----------------------------------------------------------------------------------------


def test_profile_reports_fill_rate_and_distinct_values(archive, profile):
    files = archive[1]
    mr = sum(f.modality == "MR" for f in files) / len(files)
    assert profile.loc["Modality", "fill_rate"] == 1.0 and profile.loc["Modality", "distinct"] == 4
    assert profile.loc["MagneticFieldStrength", "fill_rate"] == pytest.approx(mr)


def test_the_study_rules_select_filled_varying_numbers_and_few_level_categories(profile):
    assert profile.loc["KVP", "role"] == "continuous" and profile.loc["WindowCenter0", "role"] == "continuous"
    assert profile.loc["Modality", "role"] == "categorical" and profile.loc["Manufacturer", "role"] == "categorical"
    assert profile.loc["PatientAge", "role"] == "continuous"


@pytest.mark.parametrize("column, reason", [
    ("StudyInstanceUID", "a UID"),
    ("StudyDate", "a date or time"),
    ("PatientName", "identifying"),
    ("StudyDescription", "identifying"),
    ("WindowCenter", "multi-valued"),
    ("MagneticFieldStrength", "fill rate"),
    ("BitsAllocated", "distinct value"),
])
def test_the_study_rules_set_aside_uids_dates_text_lists_sparse_and_constant_tags(profile, column, reason):
    assert not profile.loc[column, "selected"] and reason in profile.loc[column, "reason"]


def test_a_categorical_tag_with_more_levels_than_allowed_is_not_selected(archive):
    strict = profile_columns(archive[0], max_levels=3).set_index("column")
    assert "4 levels > 3" in strict.loc["Modality", "reason"]


def test_radtl_profile_prints_the_selection_and_writes_the_profile(archive, tmp_path, capsys):
    cli(["profile", str(archive[0]), "--out", str(tmp_path / "profile.csv")])
    printed = capsys.readouterr().out
    assert "columns selected" in printed and "KVP" in printed
    assert "fill_rate" in pd.read_csv(tmp_path / "profile.csv").columns


# --- BodyPartExamined -----------------------------------------------------------------------------------


def test_missing_body_parts_are_imputed_from_the_protocol_and_descriptions(archive):
    db, files = archive
    truth = {str(f.path): f.body_part for f in files}
    table = query(db, "SELECT path, BodyPartExamined, BodyPartExaminedImputed, BodyPartExaminedRule FROM dicom")
    imputed = table[table["BodyPartExamined"].isna()]
    assert len(imputed) > 0 and imputed["BodyPartExaminedRule"].notna().all()
    assert (imputed["BodyPartExaminedImputed"] == imputed["path"].map(truth)).mean() >= 0.95


def test_recorded_body_parts_are_kept_and_tagged_as_recorded(archive):
    recorded = query(archive[0], "SELECT * FROM dicom WHERE BodyPartExamined IS NOT NULL")
    assert (recorded["BodyPartExaminedImputed"] == recorded["BodyPartExamined"]).all()
    assert (recorded["BodyPartExaminedSource"] == "BodyPartExamined").all() and recorded["BodyPartExaminedRule"].isna().all()


def test_the_imputation_report_gives_fill_rate_before_and_after(archive):
    db, files = archive
    report = body_part_report(db)
    assert report.fill_rate_before == pytest.approx(sum(f.body_part_recorded for f in files) / len(files))
    assert report.fill_rate_after == 1.0 and report.by_rule["files"].sum() == report.imputed


def test_users_extend_the_rules_with_their_own_file(archive, tmp_path, capsys):
    rules = tmp_path / "rules.yaml"
    rules.write_text("sources: [ProtocolName]\nrules:\n  - name: only-knees\n    body_part: KNEE\n    pattern: 'koljen|knee'\n")
    report = body_part_report(archive[0], rules)
    assert set(report.by_rule["rule"]) == {"only-knees"} and report.fill_rate_after < 1.0
    assert len(report.unmatched) > 0
    cli(["impute-body-part", str(archive[0]), "--rules", str(rules)])
    assert "after" in capsys.readouterr().out


# --- the tag feature table --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def features(archive, tmp_path_factory):
    out = tmp_path_factory.mktemp("features")
    tag_features_from_index(archive[0], out, sample=60, batch_rows=50)
    return out


def test_the_feature_table_has_one_row_per_readable_file_scaled_to_the_unit_range(archive, features):
    table = pd.read_parquet(features / "tag_features.parquet")
    assert len(table) == len(archive[1]) and table["path"].is_unique
    values = table.drop(columns="path").to_numpy()
    assert values.dtype == np.float32 and values.min() >= 0.0 and values.max() <= 1.0 and not np.isnan(values).any()


def test_the_feature_table_one_hot_encodes_categorical_tags(features):
    table = pd.read_parquet(features / "tag_features.parquet")
    modality = table[[c for c in table.columns if c.startswith("Modality=")]]
    assert sorted(modality.columns) == ["Modality=CR", "Modality=CT", "Modality=DX", "Modality=MR"]
    assert (modality.sum(axis=1) == 1).all()


def test_the_saved_preprocessing_is_reapplied_to_a_new_archive(features, tmp_path):
    root = tmp_path / "new"
    write_archive(root, studies=10, series_per_study=1, instances_per_series=1, seed=7)
    build_index(root, tmp_path / "db", progress=False)
    again = tag_features_from_index(tmp_path / "db", tmp_path / "out", fitted=features / "tag_features.joblib")
    new = pd.read_parquet(again)
    assert list(new.columns) == ["path", *TagFeatureTable.load(features / "tag_features.joblib").feature_names_]
    assert len(new) == 10


def test_radtl_tag_features_with_chosen_columns(archive, tmp_path, capsys):
    cli(["tag-features", str(archive[0]), str(tmp_path), "--continuous", "KVP,SliceThickness",
         "--categorical", "Modality", "--sample", "60"])
    table = pd.read_parquet(tmp_path / "tag_features.parquet")
    assert list(table.columns) == ["path", "KVP", "SliceThickness", "Modality=CR", "Modality=CT", "Modality=DX", "Modality=MR"]
    assert "features:" in capsys.readouterr().out


# --- real vendor files ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real(tmp_path_factory) -> dict[str, pd.DataFrame]:
    tables = {}
    for name, folder in real_corpus_folders().items():
        db = tmp_path_factory.mktemp(name) / "db"
        build_index(folder, db, include_private=True, progress=False)
        tables[name] = query(db, "SELECT * FROM dicom ORDER BY path")
    return tables


@pytest.mark.parametrize("name", ["pydicom", "pydicom-data"])
def test_every_real_file_gets_a_row_and_every_error_a_reason(real, name):
    folder, table = real_corpus_folders()[name], real[name]
    files = sorted(str(p.resolve()) for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
    assert sorted(table["path"]) == files
    errors = table[table["status"] == "error"]
    assert errors["reason"].str.match(r"^(not-dicom|unreadable): ").all()
    assert (table["status"] == "ok").mean() > 0.8


@pytest.mark.parametrize("file, column, expected", [
    ("CT_small.dcm", "Modality", "CT"),
    ("CT_small.dcm", "PixelDataShape", [128, 128]),
    ("MR_small_RLE.dcm", "TransferSyntaxUID", "1.2.840.10008.1.2.5"),
    ("emri_small_big_endian.dcm", "PixelDataShape", [10, 64, 64]),
    ("SC_rgb.dcm", "IsRGB", True),
    ("rtplan.dcm", "HasPixelData", False),
    ("image_dfl.dcm", "HasPixelData", True),
    ("RG1_UNCR.dcm", "Modality", "CR"),
])
def test_real_files_are_indexed_with_their_values(real, file, column, expected):
    rows = pd.concat(real.values())
    row = rows[rows["path"].str.endswith("/" + file)].iloc[0]
    value = row[column]
    assert (list(value) if isinstance(expected, list) else value) == expected


def test_real_files_profile_without_errors(real, tmp_path):
    folder = real_corpus_folders()["pydicom"]
    db = tmp_path / "db"
    build_index(folder, db, progress=False)
    profile = profile_columns(db)
    assert profile["column"].is_unique and profile["selected"].any()
