"""``radtl export``: a de-identified copy of the files an index query selects, with its provenance (issue 25).

The files a DuckDB query over the index's ``dicom`` view selects (its ``path`` column) are each read, checked
and de-identified by :class:`radtl.dicom.deidentifier.Deidentifier` under the Basic Application Level
Confidentiality Profile (PS3.15 E.1) and the options named, and written to::

    OUT/<Study Instance UID>/<Series Instance UID>/<SOP Instance UID>.dcm   (the new UIDs, PS3.15 E.1.1 "U")
    OUT/export_manifest.csv      source, path, status, reason: one row per selected file
    OUT/provenance.json          the query, the index, the profile and options, counts, each file's SHA-256

The keys (the secret salt the new UIDs, pseudonyms and date offsets derive from, and ``pseudonyms.csv``) live in
a folder outside OUT, ``OUT.keys`` unless ``keys`` names another; a folder inside OUT is refused, so the cohort
never carries what would re-identify it. A source path that holds one of its file's identifying values (a
patient's name, ID, accession number or birth date, as some archives name their folders) is ``withheld`` in the
manifest and recorded in the keys folder's ``sources.csv`` only.

A file is left out, with a row saying why, when it is larger than ``max_file_bytes`` (checked before it is
read), unreadable (:func:`radtl.dicom.errors.failure_reason`), refused by the de-identifier, or when its pixels
may carry identifying text (:func:`radtl.dicom.deidentifier.burned_in_reason`: Burned In Annotation YES,
secondary captures, ultrasound) unless ``allow_burned_in``, which exports it flagged ``ok-burned-in``.

A run is idempotent and resumable: the same keys give the same names and bytes, a file already on disk with the
same bytes is not written again (``ok``, "already exported"), and a run killed half-way is completed by running
it again. A later export of more files into the same OUT with the same keys joins the earlier cohort (the same
new Study and Series Instance UIDs); OUT refuses other options or other keys than it was exported with.
"""

from __future__ import annotations

import csv
import datetime
import enum
import hashlib
import io
import itertools
import json
import os
import re
import warnings
from collections import Counter, deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
from pydicom import dcmwrite
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from tqdm.auto import tqdm

import radtl
from radtl.atomic import atomic_path, folder_lock, remove_stale_temporaries, write_bytes_atomic, write_json_atomic
from radtl.dicom.deidentifier import (
    DeidentificationError,
    DeidentificationKeys,
    DeidentificationSettings,
    Deidentifier,
    burned_in_reason,
)
from radtl.dicom.errors import failure_reason
from radtl.dicom.index.store import DicomIndex, connect
from radtl.dicom.io import is_uid, read_dataset
from radtl.errors import RadtlError, UsageError
from radtl.logs import show_progress

__all__ = [
    "DEFAULT_MAX_FILE_BYTES",
    "EXPORT_MANIFEST_COLUMNS",
    "PROFILES",
    "ExportError",
    "ExportStatus",
    "ExportSummary",
    "SelectedFile",
    "cohort_path",
    "default_keys_folder",
    "export_cohort",
    "identifying_values",
    "query_identifies",
    "select_files",
]

EXPORT_MANIFEST_COLUMNS = ("source", "path", "status", "reason")
SOURCES_COLUMNS = ("cohort", *EXPORT_MANIFEST_COLUMNS)
QUERIES_COLUMNS = ("cohort", "exported", "query")
MANIFEST_FILE = "export_manifest.csv"
PROVENANCE_FILE = "provenance.json"
#: In the keys folder: the rows whose source path is withheld from the manifest, with the real path.
SOURCES_FILE = "sources.csv"
#: In the keys folder: each query that named an identifying value, withheld from provenance.json.
QUERIES_FILE = "queries.csv"
WITHHELD = "withheld"
DEFAULT_MAX_FILE_BYTES = 2 * 1024**3
#: The confidentiality profiles radtl applies: PS3.15 E.1's Basic Profile (its Options are ``options``).
PROFILES = ("basic",)
#: The index columns and data set keywords whose values identify a patient in a path or a query.
IDENTIFYING_KEYWORDS = ("PatientName", "PatientID", "OtherPatientIDs", "AccessionNumber", "PatientBirthDate")
#: A fixed UID whose replacement tells two keys folders apart without saying anything about the salt.
_KEYS_PROBE_UID = "2.25.0"


class ExportError(RadtlError, ValueError):
    """A query, an OUT or a keys folder ``radtl export`` cannot work with."""


class ExportStatus(str, enum.Enum):
    """A manifest row's outcome.

    ``ok``: written (or already there, the same bytes); ``ok-burned-in``: written although its pixels may carry
    identifying text (``allow_burned_in``), the reason says why it is flagged; ``burned-in``: left out for that
    reason; ``error``: left out, unreadable, too large or refused by the de-identifier.
    """

    OK = "ok"
    OK_BURNED_IN = "ok-burned-in"
    BURNED_IN = "burned-in"
    ERROR = "error"


EXPORTED = (ExportStatus.OK.value, ExportStatus.OK_BURNED_IN.value)


@dataclass(frozen=True)
class SelectedFile:
    """A file the query selected, with the identifying values its index row holds (none for an index built with
    ``exclude_phi``; the file's own are added when it is read).

    Args:
        path: the file, as the index holds it.
        identifiers: :data:`IDENTIFYING_KEYWORDS` values from the index row.
    """

    path: Path
    identifiers: frozenset[str] = frozenset()


@dataclass
class _Row:
    """One source's manifest row, and what the run learnt about it."""

    source: str
    path: str = ""
    status: str = ExportStatus.ERROR.value
    reason: str = ""
    withheld: bool = False
    sha256: str = ""
    written: bool = False

    def manifest_row(self) -> dict:
        return {"source": WITHHELD if self.withheld else self.source, "path": self.path, "status": self.status,
                "reason": self.reason}


@dataclass
class ExportSummary:
    """What a run did: files written now, files already exported (the same bytes on disk), rows by status."""

    out: Path
    written: int = 0
    already_exported: int = 0
    statuses: Counter = field(default_factory=Counter)

    def add(self, row: _Row) -> None:
        self.statuses[row.status] += 1
        if row.status in EXPORTED:
            self.written += row.written
            self.already_exported += not row.written

    def __str__(self) -> str:
        counts = ", ".join(f"{status.value} {self.statuses.get(status.value, 0)}" for status in ExportStatus)
        if self.written == 0 and self.already_exported:
            done = f"nothing new written, {self.already_exported} file(s) already exported"
        else:
            done = f"{self.written} file(s) written, {self.already_exported} already exported"
        return f"export: {done}; {counts} ({self.out / MANIFEST_FILE})"


def default_keys_folder(out: str | os.PathLike) -> Path:
    """The keys folder when none is given: ``OUT.keys``, beside OUT and never inside it."""
    out = Path(out).absolute()
    return out.with_name(f"{out.name}.keys")


def _values(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (list, tuple, MultiValue)):
        return [str(v) for v in value if v is not None]
    return [str(value)]


def _identifying_texts(keyword: str, value: object) -> set[str]:
    """A value as the texts that would give it away in a path: a person name's components too (PS3.5 6.2 PN),
    a date in ``YYYYMMDD`` and ``YYYY-MM-DD``."""
    texts = set()
    for text in _values(value):
        text = text.strip()
        if not text:
            continue
        texts.add(text)
        if keyword == "PatientName":
            texts |= {part for part in text.replace("=", "^").replace(" ", "^").split("^") if len(part.strip()) >= 2}
        if keyword == "PatientBirthDate" and len(text) == 8 and text.isdigit():
            texts.add(f"{text[:4]}-{text[4:6]}-{text[6:]}")
    return {text.strip() for text in texts if text.strip()}


def identifying_values(ds: Dataset | dict) -> frozenset[str]:
    """The texts of a data set (or an index row) that identify its patient in a path or a query.

    Args:
        ds: a data set, or a mapping of :data:`IDENTIFYING_KEYWORDS` to values.
    """
    texts: set[str] = set()
    for keyword in IDENTIFYING_KEYWORDS:
        texts |= _identifying_texts(keyword, ds.get(keyword))
    return frozenset(texts)


def _names_any(text: str, identifiers: Iterable[str]) -> bool:
    """Whether ``text`` holds one of ``identifiers``, ignoring case (archives write names in either)."""
    lowered = text.lower()
    return any(identifier.lower() in lowered for identifier in identifiers)


def select_files(db: str | os.PathLike | DicomIndex, sql: str) -> list[SelectedFile]:
    """The files a query over the index selects: its ``path`` column, each file once, in path order.

    The query runs inside ``SELECT ... FROM (query)``, so only a query can run (a statement that writes, such as
    ``COPY`` or ``CREATE``, is a syntax error there).

    Args:
        db: the index folder.
        sql: a DuckDB query over the view ``dicom`` that returns a ``path`` column.

    Raises:
        ExportError: the query fails, or returns no ``path`` column.
    """
    sql = sql.strip().rstrip(";").strip()
    with connect(db) as con:
        try:
            columns = [column[0] for column in con.execute(f"SELECT * FROM ({sql}) AS selection LIMIT 0").description]
        except duckdb.Error as error:
            raise ExportError(f"the query failed: {str(error).splitlines()[0]}",
                              hint='give one SELECT over the view dicom, e.g. "SELECT path FROM dicom WHERE '
                                   "Modality = 'CT'\"") from None
        if "path" not in columns:
            raise ExportError(f"the query returns no path column (it returns {', '.join(columns) or 'none'})",
                              hint='select the files\' paths: "SELECT path FROM dicom WHERE ..."')
        available = {row[0] for row in con.execute("DESCRIBE dicom").fetchall()}
        keywords = [k for k in IDENTIFYING_KEYWORDS if k in available]
        selected = ", ".join(f"d.{k}" for k in keywords)
        rows = con.execute(
            f"SELECT s.path{', ' + selected if selected else ''} FROM "
            f"(SELECT DISTINCT path FROM ({sql}) AS selection WHERE path IS NOT NULL) AS s "
            "LEFT JOIN dicom AS d USING (path) ORDER BY s.path").fetchall()
    return [SelectedFile(Path(row[0]), identifying_values(dict(zip(keywords, row[1:], strict=True)))) for row in rows]


def query_identifies(db: str | os.PathLike | DicomIndex, sql: str) -> bool:
    """Whether a query's text may identify a patient, so that provenance.json must not hold it.

    It may when it names one of :data:`IDENTIFYING_KEYWORDS` (``WHERE PatientID = ...``), or when one of its
    string literals, or a word of one, is a name component, patient ID, accession number or birth date of any
    file of the index (``path NOT LIKE '%Smith_John%'``), compared without case. The selected files' own values
    are checked anywhere in the text by :func:`export_cohort`.

    Args:
        db: the index folder.
        sql: the query.
    """
    if any(re.search(rf"\b{keyword}\b", sql, re.IGNORECASE) for keyword in IDENTIFYING_KEYWORDS):
        return True
    literals = [literal.replace("''", "'") for literal in re.findall(r"'((?:[^']|'')*)'", sql)]
    words = {word.lower() for literal in literals for word in re.split(r"[^0-9A-Za-z]+", literal) if word}
    words |= {literal.strip("%_ ").lower() for literal in literals if literal.strip("%_ ")}
    if not words:
        return False
    with connect(db) as con:
        available = {row[0] for row in con.execute("DESCRIBE dicom").fetchall()}
        for keyword in (k for k in IDENTIFYING_KEYWORDS if k in available):
            values = con.execute(f"SELECT DISTINCT {keyword} FROM dicom WHERE {keyword} IS NOT NULL").fetchall()
            for (value,) in values:
                texts = _identifying_texts(keyword, value)
                if words & {text.lower() for text in texts}:
                    return True
    return False


def cohort_path(ds: Dataset) -> Path:
    """Where a de-identified instance goes in the cohort: ``<Study>/<Series>/<SOP Instance UID>.dcm``.

    Each UID is checked to be one (PS3.5 9.1, :func:`radtl.dicom.io.is_uid`) before it names a folder or a file,
    so a name can neither climb out of OUT nor carry anything but digits and dots.

    Raises:
        DeidentificationError: a UID is missing or is not a UID.
    """
    parts = []
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"):
        value = ds.get(keyword)
        if not is_uid(value):
            raise DeidentificationError(f"invalid-uid: the de-identified {keyword} is missing or not a UID")
        parts.append(str(value))
    return Path(parts[0], parts[1], f"{parts[2]}.dcm")


def _scrubbed(reason: str, texts: Iterable[str]) -> str:
    """A manifest reason without the source's path or identifying values (an ``OSError`` names its file, a
    decoder may quote a value): each becomes ``[withheld]``, whatever its case, where it stands as a whole word or
    number (a patient ID ``1`` is withheld from ``ID 1`` but leaves ``(0028,0301)`` alone)."""
    for text in sorted(texts, key=len, reverse=True):
        pattern = rf"(?<![A-Za-z0-9]){re.escape(text)}(?![A-Za-z0-9])"
        reason = re.sub(pattern, f"[{WITHHELD}]", reason, flags=re.IGNORECASE)
    return reason


def _encode(ds: Dataset) -> bytes:
    """The Part 10 bytes of a data set (PS3.10 7.1: preamble, File Meta, data set)."""
    buffer = io.BytesIO()
    dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()


def _same_bytes(path: Path, data: bytes) -> bool:
    try:
        return path.stat().st_size == len(data) and path.read_bytes() == data
    except FileNotFoundError:
        return False


def _relative_source(path: Path, source_root: Path) -> str:
    """The source as the manifest names it: relative to the folder the index was built from."""
    try:
        return path.relative_to(source_root).as_posix()
    except ValueError:
        return path.as_posix()


@dataclass
class _Prepared:
    """One selected file read and de-identified, not yet written: what a worker hands back to the main process."""

    row: _Row
    identifiers: set[str]
    relative: str = ""  # the new file under OUT, when the file was de-identified
    data: bytes = b""
    burned_in: str | None = None
    patient_key: str = ""
    warnings: int = 0


@dataclass(frozen=True)
class _Preparation:
    """What de-identifying one file needs; picklable, so that worker processes can build their own."""

    settings: DeidentificationSettings
    keys_folder: Path
    source_root: Path
    allow_burned_in: bool
    max_file_bytes: int

    def deidentifier(self, keys: DeidentificationKeys | None = None) -> Deidentifier:
        """The engine, with ``keys`` or (in a worker) the keys folder opened again, recording no mapping."""
        return Deidentifier(self.settings, keys or DeidentificationKeys.open(self.keys_folder, keep_mapping=False))


def _prepare(selected: SelectedFile, preparation: _Preparation, deidentifier: Deidentifier) -> _Prepared:
    """Read, check and de-identify one file; never raises for a bad file (the row says why)."""
    prepared = _Prepared(_Row(_relative_source(selected.path, preparation.source_root)), set(selected.identifiers))
    try:
        # pydicom's warnings about values not valid for their VR may quote the value (a name): counted, not shown
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            _deidentify_file(selected.path, prepared, preparation, deidentifier)
        prepared.warnings = len(caught)
    except DeidentificationError as error:
        prepared.row.status, prepared.row.reason = ExportStatus.ERROR.value, str(error)
    except BaseException as error:  # noqa: BLE001 - one file never stops the export; failure_reason re-raises ^C
        prepared.row.status, prepared.row.reason = ExportStatus.ERROR.value, failure_reason(error)
    return prepared


def _deidentify_file(path: Path, prepared: _Prepared, preparation: _Preparation, deidentifier: Deidentifier) -> None:
    row = prepared.row
    size = path.stat().st_size
    if size > preparation.max_file_bytes:
        row.reason = f"too-large: {size} bytes, over --max-file-bytes {preparation.max_file_bytes}"
        return
    ds = read_dataset(path)
    prepared.identifiers |= identifying_values(ds)
    prepared.burned_in = burned_in_reason(ds)
    if prepared.burned_in and not preparation.allow_burned_in:
        row.status, row.reason = ExportStatus.BURNED_IN.value, prepared.burned_in
        return
    new = deidentifier.deidentify(ds)
    prepared.relative = cohort_path(new).as_posix()
    prepared.patient_key = Deidentifier.patient_key(ds)
    prepared.data = _encode(new)


# ---- worker processes (--workers N): each builds its engine once, from the keys folder ----

_WORKER: tuple[_Preparation, Deidentifier] | None = None


def _start_worker(preparation: _Preparation) -> None:
    global _WORKER
    _WORKER = (preparation, preparation.deidentifier())


def _prepare_in_worker(selected: SelectedFile) -> _Prepared:
    assert _WORKER is not None, "the worker was not started by _start_worker"
    return _prepare(selected, *_WORKER)


def _prepared_files(selected: Sequence[SelectedFile], preparation: _Preparation, deidentifier: Deidentifier,
                    workers: int) -> Iterator[_Prepared]:
    """Each selected file prepared, in order: in this process, or in ``workers`` processes with at most two files
    per worker in flight (a file's bytes travel back to be written here, so memory stays bounded)."""
    if workers <= 1:
        yield from (_prepare(file, preparation, deidentifier) for file in selected)
        return
    files = iter(selected)
    pool = ProcessPoolExecutor(workers, initializer=_start_worker, initargs=(preparation,))
    try:
        pending = deque(pool.submit(_prepare_in_worker, file) for file in itertools.islice(files, 2 * workers))
        while pending:
            prepared = pending.popleft().result()
            following = next(files, None)
            if following is not None:
                pending.append(pool.submit(_prepare_in_worker, following))
            yield prepared
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


class _Exporter:
    """Writes what :func:`_prepare` made of each file, in the main process: two sources never write one file,
    nothing is rewritten that is already there, and the reason is scrubbed of the source's identifying values."""

    def __init__(self, out: Path, keys: DeidentificationKeys, owners: dict[str, str]) -> None:
        self.out = out
        self.keys = keys
        self.owners = owners  # each exported file's path -> its source: two sources never write one file
        self.identifiers: set[str] = set()  # every identifying value seen, for the check of the query

    def __call__(self, prepared: _Prepared, selected: SelectedFile) -> _Row:
        row = prepared.row
        if prepared.relative:
            try:
                self._write(prepared)
            except BaseException as error:  # noqa: BLE001 - one file never stops the export; failure_reason re-raises ^C
                row.status, row.reason, row.path = ExportStatus.ERROR.value, failure_reason(error), ""
        if prepared.warnings and row.status in EXPORTED:
            note = f"{prepared.warnings} reader warning(s) (values not valid for their VR)"
            row.reason = "; ".join(filter(None, [row.reason, note]))
        row.reason = _scrubbed(row.reason, [str(selected.path), *prepared.identifiers])
        row.withheld = _names_any(row.source, prepared.identifiers)
        self.identifiers |= prepared.identifiers
        return row

    def _write(self, prepared: _Prepared) -> None:
        row = prepared.row
        if self.owners.setdefault(prepared.relative, row.source) != row.source:
            row.reason = "duplicate-instance: another selected file has the same SOP Instance UID"
            return
        target = self.out / prepared.relative
        row.written = not _same_bytes(target, prepared.data)
        if row.written:
            target.parent.mkdir(parents=True, exist_ok=True)
            write_bytes_atomic(target, prepared.data)
        self.keys.pseudonym(prepared.patient_key)  # recorded in the mapping, whichever process de-identified it
        row.path = prepared.relative
        row.sha256 = hashlib.sha256(prepared.data).hexdigest()
        row.status = ExportStatus.OK_BURNED_IN.value if prepared.burned_in else ExportStatus.OK.value
        notes = [prepared.burned_in] if prepared.burned_in else []
        row.reason = "; ".join(notes + ([] if row.written else ["already exported"]))


class _Manifest:
    """``OUT/export_manifest.csv`` and the keys folder's ``sources.csv``, keyed by source, rewritten whole.

    A withheld row is in both: in the manifest with ``withheld`` for its source, in ``sources.csv`` with the real
    one and the cohort it belongs to (one keys folder may serve several cohorts); reading them back joins the two.
    The manifest's withheld rows are kept as they are when ``sources.csv`` does not know them (another keys folder).
    """

    def __init__(self, out: Path, keys_folder: Path) -> None:
        self.path = out / MANIFEST_FILE
        self.cohort = str(out)
        self.sources_path = keys_folder / SOURCES_FILE
        self.rows: dict[str, _Row] = {}
        self.unmatched: list[dict] = []
        known = _read_csv(self.sources_path, SOURCES_COLUMNS)
        self.other_cohorts = [row for row in known if row["cohort"] != self.cohort]
        withheld = [row for row in known if row["cohort"] == self.cohort]
        for row in _read_csv(self.path, EXPORT_MANIFEST_COLUMNS):
            if row["source"] != WITHHELD:
                self.rows[row["source"]] = _Row(**row)
            elif not withheld:
                self.unmatched.append(row)
        for row in withheld:
            self.rows[row["source"]] = _Row(**{k: row[k] for k in EXPORT_MANIFEST_COLUMNS}, withheld=True)

    def add(self, row: _Row) -> None:
        self.rows.pop(row.source, None)
        self.rows[row.source] = row

    def owners(self) -> dict[str, str]:
        """Each exported file's path -> its source."""
        return {row.path: row.source for row in self.rows.values() if row.path and row.status in EXPORTED}

    def save(self) -> None:
        rows = list(self.rows.values())
        _write_csv(self.path, [row.manifest_row() for row in rows] + self.unmatched, EXPORT_MANIFEST_COLUMNS)
        withheld = [dict(row.manifest_row(), source=row.source, cohort=self.cohort) for row in rows if row.withheld]
        if withheld or self.sources_path.exists():
            _write_csv(self.sources_path, self.other_cohorts + withheld, SOURCES_COLUMNS)


def _read_csv(path: Path, columns: Sequence[str]) -> list[dict]:
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames and tuple(reader.fieldnames) != tuple(columns):
            raise ExportError(f"{path} has columns {reader.fieldnames}, expected {list(columns)}",
                              hint="it was not written by radtl export: export into another OUT, or give other --keys")
        return list(reader)


def _write_csv(path: Path, rows: Sequence[dict], columns: Sequence[str]) -> None:
    with atomic_path(path) as temporary, open(temporary, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def _index_record(index: DicomIndex) -> dict:
    """What provenance.json says of the index: where it is, its format and options, and a hash of its parts (which
    change whenever a run of ``radtl index`` adds or supersedes rows). Not its source folder: a path may identify."""
    metadata = index.metadata()
    parts = "\n".join(p.name for p in index.part_files() + index.superseded_files())
    return {"path": str(index.path.resolve()), "format": metadata.format, "include_private": metadata.include_private,
            "exclude_phi": metadata.exclude_phi, "parts_sha256": hashlib.sha256(parts.encode()).hexdigest()}


def _read_provenance(out: Path) -> dict:
    path = out / PROVENANCE_FILE
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ExportError(f"{path} is damaged ({error})", hint="export into another OUT") from error


def _check_same_settings(out: Path, earlier: dict, settings_record: dict, keys_probe: str) -> None:
    """Refuse to add files de-identified otherwise, or with other keys, to an existing cohort."""
    if not earlier:
        return
    if earlier.get("keys_probe") not in (None, keys_probe):
        raise ExportError(f"{out} was exported with other keys: its new UIDs would not join this run's",
                          hint="give the keys folder it was exported with (--keys), or export into another OUT")
    differences = [f"{name} {earlier.get(name)!r} (now {value!r})" for name, value in settings_record.items()
                   if name in earlier and earlier[name] != value]
    if differences:
        raise ExportError(f"{out} was exported with {', '.join(differences)}",
                          hint="export into another OUT, or re-run with the same profile and options")


def _file_hashes(out: Path, manifest: _Manifest, earlier: dict) -> dict[str, str]:
    """Each exported file's SHA-256: this run's, an earlier run's record, or read from disk."""
    known = earlier.get("files", {})
    hashes = {}
    for row in manifest.rows.values():
        if row.status in EXPORTED and row.path:
            hashes[row.path] = (row.sha256 or known.get(row.path)
                                or hashlib.sha256((out / row.path).read_bytes()).hexdigest())
    return dict(sorted(hashes.items()))


def _record_query(sql: str, keys_folder: Path, out: Path, when: str) -> None:
    """Keep a query that names an identifying value in the keys folder, not in provenance.json."""
    path = keys_folder / QUERIES_FILE
    rows = _read_csv(path, QUERIES_COLUMNS) + [{"cohort": str(out), "exported": when, "query": sql}]
    _write_csv(path, rows, QUERIES_COLUMNS)


def export_cohort(
    db: str | os.PathLike,
    sql: str,
    out: str | os.PathLike,
    profile: str = "basic",
    options: str | Iterable[str] | None = None,
    keys: str | os.PathLike | None = None,
    withhold_mapping: bool = False,
    allow_burned_in: bool = False,
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
    workers: int = 1,
    progress: bool | None = None,
) -> ExportSummary:
    """De-identify the files an index query selects into ``out``, with its manifest and provenance.

    Implements PS3.15 E.1 (Basic Application Level Confidentiality Profile) and the Options named, through
    :class:`radtl.dicom.deidentifier.Deidentifier`; see the module's description for the layout of OUT.

    Args:
        db: the index folder (``radtl index``).
        sql: a DuckDB query over the view ``dicom`` returning a ``path`` column (``SELECT path FROM dicom WHERE
            Modality = 'CT'``).
        out: the cohort folder (created; a later run into it adds files and rewrites nothing already there).
        profile: the confidentiality profile: ``basic`` (PS3.15 E.1).
        options: the profile's Options, comma-separated or a list (``retain-longitudinal-dates``, ...).
        keys: the keys folder (salt, pseudonyms.csv, sources.csv); default ``OUT.keys`` beside OUT. Never inside
            OUT.
        withhold_mapping: write no pseudonyms.csv (the pseudonyms cannot be traced back to patient IDs).
        allow_burned_in: export files whose pixels may carry identifying text, flagged ``ok-burned-in``.
        max_file_bytes: the largest file read; a larger one gets an ``error`` row (``too-large``).
        workers: processes that read and de-identify files (the main process writes them, in order).
        progress: show a progress bar (default: on a terminal).

    Raises:
        ExportError: the query fails or selects no ``path``; OUT was exported with other options or keys.
        UsageError: an unknown profile or option.
        DeidentificationError: a keys folder inside OUT, or a damaged salt.
    """
    if profile not in PROFILES:
        raise UsageError(f"unknown profile {profile!r}", hint=f"radtl applies {', '.join(PROFILES)} (PS3.15 E.1)")
    if max_file_bytes <= 0:
        raise UsageError(f"--max-file-bytes must be positive, got {max_file_bytes}")
    if workers < 1:
        raise UsageError(f"--workers must be at least 1, got {workers}")
    settings = DeidentificationSettings.from_text(options, allow_burned_in=allow_burned_in)
    out = Path(out).absolute()
    keys_folder = Path(keys).absolute() if keys is not None else default_keys_folder(out)
    index = DicomIndex(db)
    index_record = _index_record(index)
    selected = select_files(index, sql)
    query_names_identifier = query_identifies(index, sql)
    earlier = _read_provenance(out)
    settings_record = {"profile": profile, "options": sorted(settings.options)}
    # refuses a keys folder inside OUT: the cohort would carry its own keys
    key_store = DeidentificationKeys.open(keys_folder, cohort=out, keep_mapping=not withhold_mapping)
    keys_probe = key_store.uid(_KEYS_PROBE_UID)
    _check_same_settings(out, earlier, settings_record, keys_probe)
    out.mkdir(parents=True, exist_ok=True)

    with folder_lock(out, "`radtl export`"):  # two runs into one OUT would overwrite each other's manifest rows
        remove_stale_temporaries(out)  # the half-written files of a run that was killed
        manifest = _Manifest(out, keys_folder)
        preparation = _Preparation(settings, keys_folder, Path(index.metadata().source).resolve(), allow_burned_in,
                                   max_file_bytes)
        export_one = _Exporter(out, key_store, manifest.owners())
        summary = ExportSummary(out)
        started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        bar = tqdm(total=len(selected), unit="file", desc="export", disable=not show_progress(progress))
        prepared_files = _prepared_files(selected, preparation, preparation.deidentifier(key_store), workers)
        try:
            for file, prepared in zip(selected, prepared_files):
                row = export_one(prepared, file)
                manifest.add(row)
                summary.add(row)
                bar.update(1)
        finally:
            prepared_files.close()  # stops the worker processes at once when the run is interrupted
            bar.close()
            manifest.save()
            key_store.save()
            query_withheld = query_names_identifier or _names_any(sql, export_one.identifiers)
            if query_withheld:
                _record_query(sql, keys_folder, out, started)
            provenance = {
                "radtl_version": radtl.__version__,
                "exported": started,
                "query": WITHHELD if query_withheld else sql,
                "index": index_record,
                **settings_record,
                "allow_burned_in": allow_burned_in,
                "method": settings.method_description(),
                "method_codes": [{"code_value": value, "coding_scheme_designator": scheme, "code_meaning": meaning}
                                 for value, scheme, meaning in settings.method_codes()],
                "mapping_withheld": withhold_mapping,
                "keys_probe": keys_probe,
                "counts": dict(sorted(Counter(row.status for row in manifest.rows.values()).items())),
                "this_run": {"selected": len(selected), "written": summary.written,
                             "already_exported": summary.already_exported,
                             "counts": dict(sorted(summary.statuses.items()))},
                "earlier_exports": earlier.get("earlier_exports", []) + ([_run_record(earlier)] if earlier else []),
                "files": _file_hashes(out, manifest, earlier),
            }
            write_json_atomic(out / PROVENANCE_FILE, provenance)
        return summary


def _run_record(provenance: dict) -> dict:
    """An earlier run, as a later provenance.json lists it."""
    return {name: provenance.get(name) for name in ("exported", "radtl_version", "query", "index", "allow_burned_in",
                                                    "this_run")}
