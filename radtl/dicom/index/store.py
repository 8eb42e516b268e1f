"""The index on disk, and SQL over it with DuckDB.

An index is a folder::

    DB/index.json              what was indexed (the source folder) and how (options)
    DB/parts/part-*.parquet    the rows, one Parquet file per task, written whole or not at all
    DB/superseded/*.parquet    (path, index_part) of rows replaced by a later run

It is append-only: a run adds parts and never rewrites one. A file that changed (size or
modification time), disappeared, or is retried has its old row listed in ``superseded/``,
and the ``dicom`` table is every row not listed there. Parts written by different runs may
have different columns; DuckDB reads them by name (``union_by_name``), and since a
column's type comes from the DICOM dictionary (:mod:`radtl.dicom.index.header`) they never
disagree on it.

:func:`connect` gives a DuckDB connection (embedded, no server) with these views:

- ``dicom``: the current row of every indexed file, plus ``BodyPartExaminedImputed``,
  ``BodyPartExaminedRule`` and ``BodyPartExaminedSource`` (:mod:`radtl.dicom.index.body_part`);
- ``dicom_history``: every row ever written, superseded ones included.
"""

from __future__ import annotations

import csv
import json
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import duckdb

from radtl.atomic import write_json_atomic
from radtl.dicom.index.body_part import BodyPartRules, body_part_query_sql, load_body_part_rules
from radtl.dicom.index.schema import BOOKKEEPING_TYPES, HeaderOptions
from radtl.dicom.index.sql import sql_identifier, sql_literal
from radtl.errors import RadtlError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["DicomIndex", "IndexStoreError", "connect", "query", "write_query"]

FORMAT_VERSION = 1


class IndexStoreError(RadtlError, ValueError):
    """An index folder that is missing, damaged, or was built from another source or with other options."""


@dataclass(frozen=True)
class IndexMetadata:
    """``DB/index.json``: what an index holds and how it was built."""

    source: str
    include_private: bool = False
    exclude_phi: bool = False
    format: int = FORMAT_VERSION


class DicomIndex:
    """An index folder.

    Args:
        path: the folder (``DB``).
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)

    @property
    def parts_dir(self) -> Path:
        return self.path / "parts"

    @property
    def superseded_dir(self) -> Path:
        return self.path / "superseded"

    @property
    def metadata_path(self) -> Path:
        return self.path / "index.json"

    def exists(self) -> bool:
        return self.metadata_path.is_file()

    def metadata(self) -> IndexMetadata:
        if not self.exists():
            raise IndexStoreError(f"{self.path} is not a radtl index (no index.json); build one with `radtl index SRC {self.path}`")
        try:
            fields = json.loads(self.metadata_path.read_text())
            metadata = IndexMetadata(**fields)
        except (json.JSONDecodeError, TypeError) as error:
            raise IndexStoreError(f"{self.metadata_path} is damaged ({error})") from error
        if metadata.format != FORMAT_VERSION:
            raise IndexStoreError(f"{self.path} has index format {metadata.format}; this radtl reads format {FORMAT_VERSION}")
        return metadata

    def create_or_check(self, source: Path, options: HeaderOptions) -> IndexMetadata:
        """Start an index of ``source``, or check that an existing one indexes it the same way."""
        wanted = IndexMetadata(str(source), options.include_private, options.exclude_phi)
        if not self.exists():
            self.parts_dir.mkdir(parents=True, exist_ok=True)
            self.superseded_dir.mkdir(exist_ok=True)
            write_json_atomic(self.metadata_path, asdict(wanted), indent=2)
            return wanted
        existing = self.metadata()
        if existing != wanted:
            differences = ", ".join(f"{k}={getattr(existing, k)!r} (now {getattr(wanted, k)!r})"
                                    for k in asdict(wanted) if getattr(existing, k) != getattr(wanted, k))
            raise IndexStoreError(f"{self.path} was built with {differences}; index into another folder, or re-run as before")
        return existing

    def part_files(self) -> list[Path]:
        return sorted(self.parts_dir.glob("*.parquet"))

    def superseded_files(self) -> list[Path]:
        return sorted(self.superseded_dir.glob("*.parquet"))

    def current_rows_sql(self, history: bool = False) -> str:
        """A SELECT of the current rows (or, with ``history``, of every row ever written)."""
        if not self.part_files():
            columns = ", ".join(f"NULL::{_duck_type(t)} AS {sql_identifier(n)}" for n, t in BOOKKEEPING_TYPES.items())
            return f"SELECT {columns} WHERE false"
        rows = f"SELECT * FROM read_parquet({sql_literal(self.parts_dir / '*.parquet')}, union_by_name = true)"
        if history or not self.superseded_files():
            return rows
        stale = f"read_parquet({sql_literal(self.superseded_dir / '*.parquet')})"
        return (f"SELECT r.* FROM ({rows}) AS r ANTI JOIN {stale} AS s "
                "ON r.path = s.path AND r.index_part = s.index_part")


def _duck_type(arrow_type) -> str:
    return {"string": "VARCHAR", "int64": "BIGINT", "bool": "BOOLEAN", "double": "DOUBLE"}[str(arrow_type)]


def connect(
    db: str | os.PathLike | DicomIndex,
    body_part_rules: BodyPartRules | str | os.PathLike | None = None,
    connection: duckdb.DuckDBPyConnection | None = None,
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection on the index, with the views ``dicom`` and ``dicom_history``.

    Args:
        db: the index folder.
        body_part_rules: the BodyPartExamined rules for the imputed columns: a rules file, or
            None for ``DB/body_part_rules.yaml`` when the index has one, else radtl's own.
        connection: an existing connection to add the views to (default: a new in-memory one).
    """
    index = db if isinstance(db, DicomIndex) else DicomIndex(db)
    index.metadata()
    con = connection or duckdb.connect()
    for view, history in (("dicom_history", True), ("dicom_current", False)):
        rows = index.current_rows_sql(history=history)
        names = [row[0] for row in con.execute(f"DESCRIBE {rows}").fetchall()]
        ordered = [n for n in BOOKKEEPING_TYPES if n in names] + sorted(n for n in names if n not in BOOKKEEPING_TYPES)
        # parts have the columns of their own files: the same order whichever part comes first
        con.execute(f"CREATE OR REPLACE VIEW {view} AS SELECT {', '.join(map(sql_identifier, ordered))} FROM ({rows})")
    if not isinstance(body_part_rules, BodyPartRules):
        local = index.path / "body_part_rules.yaml"
        body_part_rules = load_body_part_rules(body_part_rules or (local if local.is_file() else None))
    columns = [row[0] for row in con.execute("DESCRIBE dicom_current").fetchall()]
    con.execute(f"CREATE OR REPLACE VIEW dicom AS {body_part_query_sql(body_part_rules, columns, 'dicom_current')}")
    return con


def query(db: str | os.PathLike | DicomIndex, sql: str, **connect_options) -> pd.DataFrame:
    """Run ``sql`` over the index (the table is ``dicom``) and return a pandas DataFrame.

    Example::

        query("db", "SELECT Modality, count(*) AS files FROM dicom GROUP BY ALL ORDER BY files DESC")
    """
    with connect(db, **connect_options) as con:
        return con.execute(sql).df()


def _csv_value(value):
    """A value as CSV text: lists as DICOM writes multiple values (backslash separated, PS3.5 6.4)."""
    if isinstance(value, (list, tuple)):
        return "\\".join("" if v is None else str(v) for v in value)
    return value


def write_query(
    db: str | os.PathLike | DicomIndex,
    sql: str,
    out: str | os.PathLike | None = None,
    stream: TextIO | None = None,
    batch_rows: int = 10_000,
) -> int:
    """Run ``sql`` over the index and write the result, a batch of rows at a time; returns the row count.

    Args:
        db: the index folder.
        sql: a query over the table ``dicom``.
        out: a ``.parquet`` file (written by DuckDB) or a ``.csv`` file, or None for CSV on ``stream``.
        stream: where CSV goes when ``out`` is None (default: standard output).
        batch_rows: rows fetched at a time when streaming CSV.
    """
    if out is not None and Path(out).suffix.lower() not in (".parquet", ".csv"):
        raise ValueError(f"--out must end in .parquet or .csv, got {out}")
    with connect(db) as con:
        if out is not None and Path(out).suffix.lower() == ".parquet":
            Path(out).parent.mkdir(parents=True, exist_ok=True)
            con.execute(f"COPY ({sql}) TO {sql_literal(out)} (FORMAT parquet)")
            return con.execute(f"SELECT count(*) FROM read_parquet({sql_literal(out)})").fetchone()[0]
        result = con.execute(sql)
        if out is None:
            return _write_csv(result, stream or sys.stdout, batch_rows)
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        with open(out, "w", newline="", encoding="utf-8") as handle:
            return _write_csv(result, handle, batch_rows)


def _write_csv(result: duckdb.DuckDBPyConnection, stream: TextIO, batch_rows: int) -> int:
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow([column[0] for column in result.description])
    count = 0
    while batch := result.fetchmany(batch_rows):
        writer.writerows([_csv_value(v) for v in row] for row in batch)
        count += len(batch)
    return count
