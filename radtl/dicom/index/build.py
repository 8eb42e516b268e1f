"""``radtl index``: every DICOM header of an archive into a Parquet dataset, resumably, on Dask.

A run:

1. lists SRC (path, size, modification time) into temporary Parquet files, streaming;
2. compares that listing with the index in DuckDB, out of core: files new since the last
   run, or whose size or time changed, are to do; rows of changed, vanished (and, with
   ``retry_errors``, failed) files are listed as superseded first;
3. hands the files to do, in path order and in chunks, to tasks (in this process or on
   Dask workers, :func:`radtl.parallel.map_chunks`); each task reads the headers of its
   chunk (no pixel data) and writes one part, under a temporary name renamed when whole.

Nothing holds all rows, or all paths, in the driver: the listing and the comparison live in
Parquet and DuckDB (which spills to disk), chunks stream to the workers, and results coming
back are counts. A run killed at any point loses only its chunks in flight; the next run
finds their files missing from the index and indexes them, and nothing twice.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
import warnings
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm.auto import tqdm

from radtl.atomic import atomic_path, folder_lock
from radtl.dicom.convert import find_sources
from radtl.dicom.errors import NotDicomError, TruncatedFileError, failure_reason
from radtl.dicom.index.header import BOOKKEEPING_COLUMNS, HeaderOptions, arrow_schema, header_row
from radtl.dicom.index.sql import sql_literal
from radtl.dicom.index.store import DicomIndex, connect
from radtl.dicom.io import DEFAULT_MAX_PIXEL_BYTES, empty_instance_uids, read_file, sop_class_uid
from radtl.logs import show_progress
from radtl.parallel import chunked, map_chunks

__all__ = ["IndexSummary", "IndexTask", "build_index", "index_file", "index_files"]

_LISTING_CHUNK = 100_000


@dataclass(frozen=True)
class IndexTask:
    """One unit of work: the files of one part."""

    part_id: str
    paths: tuple[str, ...]


def index_file(path: str, options: HeaderOptions, max_pixel_bytes: int = DEFAULT_MAX_PIXEL_BYTES) -> tuple[dict, dict]:
    """One file's row and its columns' types. Never raises for bad input: ``status`` and ``reason`` say why.

    A file cut short inside its header is indexed with what it holds, and its ``warnings``
    say where it ends. A deflated file (PS3.5 A.5) is inflated up to ``max_pixel_bytes``.
    """
    row: dict = {"path": path, "status": "ok"}
    types: dict = {}
    notes: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            stat = os.stat(path)
            row.update(file_size=stat.st_size, mtime_ns=stat.st_mtime_ns)
            read = read_file(path, stop_before_pixels=True, max_pixel_bytes=max_pixel_bytes)
            ds, has_pixel_data = read.dataset, read.pixel_data_follows
            if read.cut_short:
                notes.append(f"cut short: the file ends inside {read.cut_short}")
            if not len(ds) and read.cut_short:
                raise TruncatedFileError(f"the file ends inside {read.cut_short}")
            if not len(ds):
                raise NotDicomError("no data set after the File Meta Information (the file is cut short)")
            if not has_pixel_data and "Image Storage" in sop_class_uid(ds).name:
                notes.append("an image object without Pixel Data: stripped, or the file is cut short")
            values, types, invalid = header_row(ds, has_pixel_data, options)
            if empty := empty_instance_uids(ds):
                notes.append(f"empty {', '.join(empty)} (Type 1, PS3.3 C.12.1): null here, never filled in; "
                             "the row is keyed by its path")
            row.update(values)
            if invalid:
                row["invalid_values"] = "; ".join(invalid)[:2000]
            if getattr(ds, "preamble", b"") is None:
                notes.append("no preamble or DICM prefix (PS3.10 7.1): read as a raw dataset")
        except BaseException as error:  # noqa: BLE001 - one file never stops the archive; see failure_reason
            row.update(status="error", reason=failure_reason(error))
    notes += [str(w.message).splitlines()[0] for w in caught]
    if notes:
        row["warnings"] = "; ".join(dict.fromkeys(notes))[:1000]
    return row, types


def index_files(task: IndexTask, parts_dir: str, options: HeaderOptions,
                max_pixel_bytes: int = DEFAULT_MAX_PIXEL_BYTES) -> Counter:
    """Index a chunk and write its part (the Dask task). Returns the count of rows by ``(status, reason code)``."""
    rows, types = [], dict(BOOKKEEPING_COLUMNS)
    for path in task.paths:
        row, row_types = index_file(path, options, max_pixel_bytes)
        rows.append(row | {"index_part": task.part_id})
        types.update(row_types)
    write_part(rows, types, Path(parts_dir), task.part_id)
    return Counter((row["status"], (row.get("reason") or "").split(":", 1)[0]) for row in rows)


def write_part(rows: Sequence[dict], types: dict, parts_dir: Path, part_id: str) -> Path:
    """Write rows as ``part-<id>.parquet``: a temporary file renamed when complete."""
    names = {name for row in rows for name in row}
    table = pa.Table.from_pylist(list(rows), schema=arrow_schema(names, types))
    final = parts_dir / f"part-{part_id}.parquet"
    with atomic_path(final) as temporary:
        pq.write_table(table, temporary, compression="zstd")
    return final


@dataclass
class IndexSummary:
    """What a run did."""

    indexed: int = 0
    unchanged: int = 0
    changed: int = 0
    removed: int = 0
    retried: int = 0
    parts: int = 0
    outcomes: Counter = field(default_factory=Counter)

    @property
    def found_dicom(self) -> bool:
        """False when this run read files and none was DICOM, and the index held nothing before."""
        return not self.indexed or bool(self.unchanged) or any(s == "ok" for (s, _), n in self.outcomes.items() if n)

    def __str__(self) -> str:
        lines = [f"{self.indexed} file(s) indexed into {self.parts} part(s); {self.unchanged} unchanged since the last run",
                 f"  superseded: {self.changed} changed, {self.removed} removed, {self.retried} retried"]
        for status in ("ok", "error"):
            lines.append(f"  {status:<6} {sum(n for (s, _), n in self.outcomes.items() if s == status):>8} file(s)")
        lines += [f"  {status:<6} {count:>8}    {code}" for (status, code), count in sorted(self.outcomes.items()) if code]
        if not self.found_dicom:
            lines.append(f"no DICOM file found: none of the {self.indexed} file(s) read is DICOM (see their reasons above)")
        return "\n".join(lines)


def _write_listing(src: Path, exclude: Path, scan_dir: Path) -> int:
    """List SRC's files with size and modification time into Parquet files of at most 100,000 rows."""
    schema = pa.schema([("path", pa.string()), ("file_size", pa.int64()), ("mtime_ns", pa.int64())])
    count = 0
    for number, paths in enumerate(chunked(find_sources(src, exclude=exclude), _LISTING_CHUNK)):
        entries = []
        for path in paths:
            try:
                stat = path.stat()
            except OSError:
                stat = None  # vanished or unreadable since listed: indexed anyway, its row says why
            entries.append((str(path), stat.st_size if stat else None, stat.st_mtime_ns if stat else None))
        columns = list(zip(*entries, strict=True))
        pq.write_table(pa.table(columns, schema=schema), scan_dir / f"listing-{number:06d}.parquet")
        count += len(entries)
    return count


def _supersede(con: duckdb.DuckDBPyConnection, index: DicomIndex, run_id: str, retry_errors: bool) -> tuple[int, int, int]:
    """List as superseded the rows of files changed, removed, or (``retry_errors``) failed. Returns the three counts."""
    retry = "OR c.status = 'error'" if retry_errors else ""
    con.execute(f"""
        CREATE TEMP TABLE stale AS
        SELECT c.path, c.index_part,
               CASE WHEN l.path IS NULL THEN 'removed'
                    WHEN l.file_size IS DISTINCT FROM c.file_size OR l.mtime_ns IS DISTINCT FROM c.mtime_ns THEN 'changed'
                    ELSE 'retried' END AS why
        FROM dicom_current AS c LEFT JOIN listing AS l USING (path)
        WHERE l.path IS NULL OR l.file_size IS DISTINCT FROM c.file_size OR l.mtime_ns IS DISTINCT FROM c.mtime_ns {retry}
    """)
    counts = dict(con.execute("SELECT why, count(*) FROM stale GROUP BY why").fetchall())
    if counts:
        final = index.superseded_dir / f"superseded-{run_id}.parquet"
        with atomic_path(final) as temporary:
            con.execute(f"COPY (SELECT path, index_part FROM stale) TO {sql_literal(temporary)} (FORMAT parquet)")
    return counts.get("changed", 0), counts.get("removed", 0), counts.get("retried", 0)


def _tasks(con: duckdb.DuckDBPyConnection, run_id: str, chunk_size: int) -> Iterator[IndexTask]:
    """The files to index, in path order, as tasks; streamed from DuckDB a chunk at a time."""
    result = con.execute("SELECT path FROM listing ANTI JOIN dicom_current USING (path) ORDER BY path")
    number = 0
    while batch := result.fetchmany(chunk_size):
        yield IndexTask(f"{run_id}-{number:06d}", tuple(row[0] for row in batch))
        number += 1


def build_index(
    src: str | os.PathLike,
    db: str | os.PathLike,
    workers: int = 1,
    scheduler: str | None = None,
    include_private: bool = False,
    exclude_phi: bool = False,
    retry_errors: bool = False,
    chunk_size: int = 1000,
    progress: bool | None = None,
    memory_limit: str = "2GB",
    max_pixel_bytes: int = DEFAULT_MAX_PIXEL_BYTES,
) -> IndexSummary:
    """Index every file under ``src`` into the folder ``db``, or bring an existing index up to date.

    Args:
        src: the archive: a folder searched recursively (any file names) or one file.
        db: the index folder (created; a re-run on it indexes only new and changed files).
        workers: 1 indexes in this process; N > 1 on a local Dask cluster of N processes.
        scheduler: address of a running Dask scheduler (``tcp://host:port``) whose workers see
            ``src`` and ``db`` at the same paths; overrides ``workers``.
        include_private: index private attributes as ``Private_GGGG_EEEE`` text columns.
        exclude_phi: leave out the Basic Application Level Confidentiality Profile's attributes
            (PS3.15 E.1-1), replacing its UIDs by hashed ones.
        retry_errors: index again the files whose earlier row is an error.
        chunk_size: files per task and per part.
        progress: show a progress bar (default: on a terminal).
        memory_limit: DuckDB's memory for comparing the listing with the index (it spills beyond).
        max_pixel_bytes: the most a deflated file's data set (PS3.5 A.5) may inflate to; a file
            beyond gets a ``too-large`` row (headers are read without their pixels otherwise).
    """
    src, index = Path(src).resolve(), DicomIndex(db)
    if not src.exists():
        raise FileNotFoundError(f"no such file or folder: {src}")
    options = HeaderOptions(include_private=include_private, exclude_phi=exclude_phi)
    index.path.mkdir(parents=True, exist_ok=True)
    with folder_lock(index.path / ".lock", "`radtl index`"):
        index.create_or_check(src, options)
        for leftover in [*index.parts_dir.glob("part-*.tmp"), *index.parts_dir.glob(".part-*.tmp")]:
            leftover.unlink()  # a part a killed run did not finish (older radtl: ".part-*"): its files are still to do
        scan_dir = index.path / ".scan"
        shutil.rmtree(scan_dir, ignore_errors=True)
        scan_dir.mkdir()
        try:
            return _run(src, index, options, scan_dir, workers, scheduler, retry_errors, chunk_size, progress,
                        memory_limit, max_pixel_bytes)
        finally:
            shutil.rmtree(scan_dir, ignore_errors=True)


def _run(src, index, options, scan_dir, workers, scheduler, retry_errors, chunk_size, progress, memory_limit,
         max_pixel_bytes) -> IndexSummary:
    listed = _write_listing(src, index.path.resolve(), scan_dir)
    run_id = f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"  # unique: parts are never overwritten
    summary = IndexSummary()
    with connect(index) as con:
        con.execute(f"SET memory_limit = {sql_literal(memory_limit)}")
        con.execute(f"SET temp_directory = {sql_literal(scan_dir / 'spill')}")
        if listed:
            con.execute(f"CREATE TEMP VIEW listing AS SELECT * FROM read_parquet({sql_literal(scan_dir / '*.parquet')})")
        else:
            con.execute("CREATE TEMP TABLE listing (path VARCHAR, file_size BIGINT, mtime_ns BIGINT)")
        summary.changed, summary.removed, summary.retried = _supersede(con, index, run_id, retry_errors)
        connect(index, connection=con)  # the views again, now without the superseded rows
        todo = con.execute("SELECT count(*) FROM listing ANTI JOIN dicom_current USING (path)").fetchone()[0]
        summary.unchanged = listed - todo
        bar = tqdm(total=todo, unit="file", desc="index", disable=not show_progress(progress))

        def record(task: IndexTask, outcomes: Counter) -> None:
            summary.indexed += len(task.paths)
            summary.parts += 1
            summary.outcomes.update(outcomes)
            bar.update(len(task.paths))

        def record_failure(task: IndexTask, error: BaseException) -> None:
            reason = f"internal-error: worker task failed ({type(error).__name__}: {error})"
            rows = [{"path": p, "status": "error", "reason": reason, "index_part": task.part_id} for p in task.paths]
            write_part(rows, dict(BOOKKEEPING_COLUMNS), index.parts_dir, task.part_id)
            record(task, Counter({("error", "internal-error"): len(rows)}))

        try:
            map_chunks(index_files, _tasks(con, run_id, chunk_size), str(index.parts_dir), options, max_pixel_bytes,
                       on_result=record, on_failure=record_failure, workers=workers, scheduler=scheduler)
        finally:
            bar.close()
    return summary
