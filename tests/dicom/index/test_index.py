"""The metadata index: one row per file, typed columns, bad files recorded, resumable, the same on a cluster."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from distributed import LocalCluster
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from radtl.cli import main as cli
from radtl.dicom.index import DicomIndex, IndexStoreError, build_index, query
from radtl.dicom.synthetic import write_archive
from tests.support.datasets import image_dataset

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def files_of(db) -> pd.DataFrame:
    return query(db, "SELECT * FROM dicom ORDER BY path")


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> tuple[Path, list]:
    root = tmp_path_factory.mktemp("archive")
    return root, write_archive(root, studies=10, series_per_study=2, instances_per_series=2)


@pytest.fixture(scope="module")
def indexed(archive, tmp_path_factory) -> Path:
    db = tmp_path_factory.mktemp("index") / "db"
    build_index(archive[0], db, chunk_size=7, progress=False)
    return db


def test_every_file_gets_one_row(archive, indexed):
    table = files_of(indexed)
    assert sorted(table["path"]) == sorted(str(f.path) for f in archive[1])
    assert (table["status"] == "ok").all()


def test_attributes_are_columns_named_by_keyword_with_dictionary_types(indexed):
    row = query(indexed, "SELECT Modality, Rows, SliceThickness, StudyInstanceUID FROM dicom WHERE Modality = 'CT'").iloc[0]
    assert row["Rows"] == 16 and isinstance(row["SliceThickness"], float)
    assert query(indexed, "SELECT typeof(Rows) AS t FROM dicom LIMIT 1")["t"][0] == "BIGINT"


def test_multi_valued_attributes_are_lists_and_split_columns(indexed):
    row = query(indexed, "SELECT WindowCenter, WindowCenter0, WindowCenter1 FROM dicom WHERE Modality = 'CT'").iloc[0]
    assert list(row["WindowCenter"]) == [40.0, -600.0]
    assert (row["WindowCenter0"], row["WindowCenter1"]) == (40.0, -600.0)


def test_derived_columns_describe_the_pixel_data(indexed):
    row = query(indexed, "SELECT HasPixelData, PixelDataShape, IsRGB, NumberOfFrames FROM dicom LIMIT 1").iloc[0]
    assert row["HasPixelData"] and list(row["PixelDataShape"]) == [16, 16]
    assert not row["IsRGB"] and row["NumberOfFrames"] == 1


def test_bookkeeping_columns_record_where_a_row_comes_from(archive, indexed):
    row = query(indexed, "SELECT path, file_size, mtime_ns, index_part FROM dicom ORDER BY path LIMIT 1").iloc[0]
    assert row["file_size"] == os.path.getsize(row["path"]) and row["mtime_ns"] == os.stat(row["path"]).st_mtime_ns
    assert (indexed / "parts" / f"part-{row['index_part']}.parquet").is_file()


def test_documented_queries_answer(indexed):
    modalities = query(indexed, "SELECT Modality, count(*) AS files FROM dicom GROUP BY ALL ORDER BY Modality")
    assert set(modalities["Modality"]) == {"CT", "MR", "CR", "DX"} and modalities["files"].sum() == 40
    per_study = query(indexed, "SELECT StudyInstanceUID, count(*) AS files FROM dicom GROUP BY ALL")
    assert (per_study["files"] == 4).all() and len(per_study) == 10


# --- bad input ----------------------------------------------------------------------------------------


def write(ds: Dataset, path: Path, **kwargs) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, **kwargs)
    return path


@pytest.fixture(scope="module")
def messy(tmp_path_factory) -> Path:
    """An archive with every kind of bad input the issue names, and a good file beside them."""
    root = tmp_path_factory.mktemp("messy")
    good = image_dataset(np.zeros((4, 4)), Modality="CT", SliceThickness="2.5")
    write(good, root / "good.dcm", enforce_file_format=True)
    text_thickness = image_dataset(np.zeros((4, 4)), Modality="CT")
    text_thickness.add_new(0x00180050, "LO", "thin")  # a string where the dictionary has a number (DS)
    write(text_thickness, root / "string_for_number.dcm", enforce_file_format=True)
    (root / "notes.txt").write_text("not DICOM at all\n")
    (root / "empty.dcm").write_bytes(b"")
    whole = (root / "good.dcm").read_bytes()
    (root / "truncated.dcm").write_bytes(whole[:200])  # cut inside the File Meta Information
    (root / "cut_before_pixels.dcm").write_bytes(whole[:420])  # cut after two attributes of the data set
    raw = image_dataset(np.zeros((4, 4)), Modality="MR")
    write(raw, root / "no_preamble.dcm", enforce_file_format=False)  # raw dataset: no preamble, no File Meta
    huge = image_dataset(np.zeros((4, 4)), Modality="CT")
    huge.private_block(0x0029, "RADTL TEST", create=True).add_new(0x10, "SQ", Sequence(
        [Dataset() for _ in range(20_000)]))
    for item in huge[0x00291010].value:
        item.add_new(0x00291011, "LO", "x" * 40)
    write(huge, root / "huge_private_sequence.dcm", enforce_file_format=True)
    return root


@pytest.fixture(scope="module")
def messy_rows(messy, tmp_path_factory) -> dict[str, pd.Series]:
    db = tmp_path_factory.mktemp("messy_index") / "db"
    build_index(messy, db, chunk_size=2, progress=False)
    return {Path(p).name: row for p, row in files_of(db).set_index("path").iterrows()}


@pytest.mark.parametrize("name, code", [("notes.txt", "not-dicom"), ("empty.dcm", "not-dicom"),
                                        ("truncated.dcm", "not-dicom")])
def test_unreadable_files_get_an_error_row_with_a_reason(messy_rows, name, code):
    assert messy_rows[name]["status"] == "error" and messy_rows[name]["reason"].startswith(f"{code}:")


def test_a_file_without_preamble_is_indexed_and_the_row_says_so(messy_rows):
    row = messy_rows["no_preamble.dcm"]
    assert row["status"] == "ok" and row["Modality"] == "MR" and "no preamble" in row["warnings"]


def test_an_image_cut_short_before_its_pixels_is_indexed_with_a_warning(messy_rows):
    row = messy_rows["cut_before_pixels.dcm"]
    assert row["status"] == "ok" and not row["HasPixelData"] and "cut short" in row["warnings"]


def indexed_alone(name: str, tmp_path: Path):
    """The index row of pydicom's test file ``name``, indexed alone."""
    src = tmp_path / "src"
    src.mkdir()
    (src / name).write_bytes(Path(get_testdata_file(name)).read_bytes())
    build_index(src, tmp_path / "db", progress=False)
    (row,) = files_of(tmp_path / "db").itertuples()
    return row


def test_a_file_cut_inside_an_element_of_its_header_is_indexed_with_a_warning_saying_where(tmp_path):
    row = indexed_alone("rtplan_truncated.dcm", tmp_path)
    assert row.status == "ok" and "cut short" in row.warnings and "(300A,00B0) BeamSequence" in row.warnings


def test_a_deflated_file_is_inflated_and_indexed_with_its_pixel_data(tmp_path):
    row = indexed_alone("image_dfl.dcm", tmp_path)
    assert row.status == "ok" and row.HasPixelData and row.TransferSyntaxUID == "1.2.840.10008.1.2.1.99"


def test_a_huge_private_sequence_does_not_stop_the_file(messy_rows):
    row = messy_rows["huge_private_sequence.dcm"]
    assert row["status"] == "ok" and row["Modality"] == "CT" and row["HasPixelData"]


def test_a_value_of_the_wrong_type_is_left_out_and_recorded(messy_rows):
    row, good = messy_rows["string_for_number.dcm"], messy_rows["good.dcm"]
    assert pd.isna(row["SliceThickness"]) and "SliceThickness" in row["invalid_values"]
    assert good["SliceThickness"] == 2.5 and row["status"] == "ok"


def test_every_part_reads_as_one_table_whatever_its_columns(messy, tmp_path):
    build_index(messy, tmp_path / "db", chunk_size=1, progress=False)  # one file per part: every schema differs
    assert len(query(tmp_path / "db", "SELECT * FROM dicom")) == 8


# --- resumption -----------------------------------------------------------------------------------------


def test_a_rerun_indexes_only_new_and_changed_files_and_forgets_removed_ones(tmp_path):
    root, db = tmp_path / "archive", tmp_path / "db"
    files = write_archive(root, studies=3, series_per_study=1, instances_per_series=2)
    build_index(root, db, progress=False)
    changed, removed = files[0].path, files[1].path
    ds = image_dataset(np.zeros((8, 8)), Modality="CT", SeriesDescription="rewritten")
    write(ds, changed, enforce_file_format=True)
    removed.unlink()
    write(image_dataset(np.zeros((4, 4)), Modality="MR"), root / "late" / "new.dcm", enforce_file_format=True)
    summary = build_index(root, db, progress=False)
    assert (summary.indexed, summary.changed, summary.removed, summary.unchanged) == (2, 1, 1, 4)
    table = files_of(db)
    assert len(table) == 6 and table["path"].is_unique and str(removed) not in set(table["path"])
    assert table.set_index("path").loc[str(changed), "SeriesDescription"] == "rewritten"


def test_a_rerun_on_an_unchanged_archive_reads_nothing(archive, indexed):
    summary = build_index(archive[0], indexed, progress=False)
    assert summary.indexed == 0 and summary.unchanged == 40


def test_retry_errors_reads_failed_files_again(tmp_path):
    root = tmp_path / "archive"
    write(image_dataset(np.zeros((4, 4)), Modality="CT"), root / "a.dcm", enforce_file_format=True)
    (root / "b.dcm").write_bytes(b"")
    build_index(root, tmp_path / "db", progress=False)
    summary = build_index(root, tmp_path / "db", retry_errors=True, progress=False)
    assert (summary.indexed, summary.retried) == (1, 1)
    assert len(files_of(tmp_path / "db")) == 2


KILL_AFTER_TWO_PARTS = textwrap.dedent("""
    import os, signal, sys
    import radtl.dicom.index.build as build
    written = []
    original = build.write_part
    def write_part_then_die(*args, **kwargs):
        path = original(*args, **kwargs)
        written.append(path)
        if len(written) == 2:
            os.kill(os.getpid(), signal.SIGKILL)  # as an OOM kill or a power cut would, mid-run
        return path
    build.write_part = write_part_then_die
    build.build_index(sys.argv[1], sys.argv[2], chunk_size=5, progress=False)
""")


def test_a_killed_run_resumes_without_losing_or_repeating_a_file(archive, indexed, tmp_path):
    db = tmp_path / "db"
    killed = subprocess.run([sys.executable, "-c", KILL_AFTER_TWO_PARTS, str(archive[0]), str(db)], check=False)
    assert killed.returncode == -9 and len(DicomIndex(db).part_files()) == 2
    summary = build_index(archive[0], db, chunk_size=5, progress=False)
    assert (summary.unchanged, summary.indexed) == (10, 30)
    resumed, complete = files_of(db), files_of(indexed)
    assert resumed["path"].is_unique
    pd.testing.assert_frame_equal(resumed.drop(columns="index_part"), complete.drop(columns="index_part"))


# --- options ----------------------------------------------------------------------------------------------


def test_an_index_refuses_other_options_than_it_was_built_with(archive, indexed):
    with pytest.raises(IndexStoreError, match="include_private"):
        build_index(archive[0], indexed, include_private=True, progress=False)


def test_private_attributes_are_indexed_on_request(tmp_path):
    folder = Path(get_testdata_file("MR-SIEMENS-DICOM-WithOverlays.dcm")).parent
    source = tmp_path / "src"
    source.mkdir()
    (source / "mr.dcm").write_bytes((folder / "MR-SIEMENS-DICOM-WithOverlays.dcm").read_bytes())
    build_index(source, tmp_path / "db", include_private=True, progress=False)
    row = files_of(tmp_path / "db").iloc[0]
    assert row["Private_0029_0010"] == "SIEMENS MEDCOM HEADER"  # the private creator of block (0029,10xx)


def test_exclude_phi_drops_identifying_attributes_and_hashes_uids_consistently(archive, tmp_path):
    build_index(archive[0], tmp_path / "db", exclude_phi=True, progress=False)
    table = files_of(tmp_path / "db")
    assert not {"PatientName", "PatientID", "StudyDate", "StudyDescription"} & set(table.columns)
    assert table["StudyInstanceUID"].str.startswith("2.25.").all()
    assert table["StudyInstanceUID"].nunique() == 10 and not set(table["StudyInstanceUID"]) & {f.study_uid for f in archive[1]}
    assert {"Modality", "Rows", "WindowCenter"} <= set(table.columns)


def test_exclude_phi_keeps_the_item_count_of_sequences_whose_references_the_profile_replaces(tmp_path):
    ds = image_dataset(np.zeros((4, 4)), Modality="CT")
    ds.ReferencedImageSequence = Sequence([Dataset(), Dataset()])  # X/Z/U*: its UIDs are replaced, not its length
    write(ds, tmp_path / "src" / "ct.dcm", enforce_file_format=True)
    build_index(tmp_path / "src", tmp_path / "db", exclude_phi=True, progress=False)
    row = files_of(tmp_path / "db").iloc[0]
    assert row["status"] == "ok" and row["ReferencedImageSequence"] == 2


# --- engines ----------------------------------------------------------------------------------------------


def test_a_dask_local_cluster_gives_the_same_table_as_the_local_default(archive, indexed, tmp_path):
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        summary = build_index(archive[0], tmp_path / "db", scheduler=cluster.scheduler_address, chunk_size=7,
                              progress=False)
    assert summary.indexed == 40
    cluster, local = files_of(tmp_path / "db"), files_of(indexed)
    pd.testing.assert_frame_equal(cluster.drop(columns="index_part"), local.drop(columns="index_part"))


# --- command line -----------------------------------------------------------------------------------------


def test_radtl_query_prints_csv(indexed, capsys):
    cli(["query", str(indexed), "SELECT Modality, count(*) AS files FROM dicom GROUP BY ALL ORDER BY Modality"])
    assert capsys.readouterr().out.splitlines() == ["Modality,files", "CR,8", "CT,12", "DX,8", "MR,12"]


def test_radtl_query_writes_parquet(indexed, tmp_path):
    cli(["query", str(indexed), "SELECT path, WindowCenter FROM dicom", "--out", str(tmp_path / "q.parquet")])
    assert len(pd.read_parquet(tmp_path / "q.parquet")) == 40


def test_radtl_query_writes_csv_with_multiple_values_as_dicom_encodes_them(indexed, tmp_path, capsys):
    sql = "SELECT WindowCenter FROM dicom WHERE Modality = 'CT' LIMIT 1"
    cli(["query", str(indexed), sql, "--out", str(tmp_path / "q.csv")])
    assert (tmp_path / "q.csv").read_text().splitlines() == ["WindowCenter", "40.0\\-600.0"]
    capsys.readouterr()
    cli(["query", str(indexed), sql])
    assert capsys.readouterr().out == (tmp_path / "q.csv").read_text()


def test_radtl_query_on_a_folder_that_is_not_an_index_fails_clearly(tmp_path, capsys):
    with pytest.raises(SystemExit):
        cli(["query", str(tmp_path), "SELECT 1"])
    assert "not a radtl index" in capsys.readouterr().err


def test_radtl_index_prints_a_summary(archive, tmp_path, capsys):
    cli(["index", str(archive[0]), str(tmp_path / "db"), "--progress", "False"])
    assert "40 file(s) indexed" in capsys.readouterr().out
