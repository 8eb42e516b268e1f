"""``radtl pull``: a cohort retrieved from the PACS by query, resumable, gentle, with a manifest (issue 25).

A cohort is chosen by matching keys (``--query "Modality=CT StudyDate=20200101-20201231"``, PS3.4 C.2.2.2), by a
list of studies (Study Instance UIDs, Accession Numbers, or Patient ID and Study Date) or by a list of series.
Study-level keys are matched at STUDY level and series-level keys at SERIES level (PS3.4 C.6.2.1), by C-FIND or
QIDO-RS; each series is then retrieved by C-GET, C-MOVE or WADO-RS (:mod:`radtl.dicom.pacs`) into
``OUT/.partial/<SeriesInstanceUID>/`` and renamed to ``OUT/<StudyInstanceUID>/<SeriesInstanceUID>/`` once it
holds every instance the search reported, so a folder in place is always a whole series.

A pull can be killed and run again: a whole series is not asked for again, an instance already in the partial
folder is not fetched again, and every file is written atomically, so the re-run ends with every instance once.
``OUT/pull_manifest.csv`` (one row per series: UIDs, instances expected and received, status, reason) is rewritten
atomically as each series ends and merged with by the next run.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import re
import shlex
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from radtl.atomic import folder_lock, remove_stale_temporaries, write_text_atomic
from radtl.dicom.io import is_uid
from radtl.dicom.pacs import (
    CohortSeries,
    MoveDestination,
    PacsError,
    find_series,
    find_series_instances,
    is_network_failure,
    parse_pacs_url,
    retrieve_instances,
)
from radtl.errors import RadtlError, UsageError, closest

__all__ = [
    "MANIFEST_FIELDS",
    "MATCHING_KEYS",
    "PullIncomplete",
    "PullSummary",
    "RateLimiter",
    "parse_query",
    "pull_cohort",
    "read_series_csv",
    "read_studies_csv",
]

logger = logging.getLogger(__name__)

MANIFEST_NAME = "pull_manifest.csv"
PARTIAL_FOLDER = ".partial"
MANIFEST_FIELDS = ("StudyInstanceUID", "SeriesInstanceUID", "Modality", "expected", "received", "status", "reason")
STATUSES = ("complete", "partial", "failed", "not-found", "refused")

#: The matching keys radtl pull accepts, by the level they are matched at (PS3.4 C.6.2.1.2 Table C.6-5 for the
#: study, C.6.2.1.3 Table C.6-6 for the series, and the series attributes archives commonly index).
MATCHING_KEYS: dict[str, str] = {
    **dict.fromkeys(
        ("StudyInstanceUID", "StudyDate", "StudyTime", "AccessionNumber", "PatientID", "PatientName",
         "PatientBirthDate", "PatientSex", "StudyID", "StudyDescription", "ReferringPhysicianName",
         "ModalitiesInStudy"),
        "STUDY",
    ),
    **dict.fromkeys(
        ("SeriesInstanceUID", "Modality", "SeriesNumber", "SeriesDescription", "BodyPartExamined", "SeriesDate",
         "SeriesTime", "ProtocolName", "Manufacturer", "InstitutionName", "StationName", "Laterality",
         "PerformedProcedureStepStartDate"),
        "SERIES",
    ),
}
_VR = {
    "StudyInstanceUID": "UI", "SeriesInstanceUID": "UI", "StudyDate": "DA", "SeriesDate": "DA",
    "PatientBirthDate": "DA", "PerformedProcedureStepStartDate": "DA", "StudyTime": "TM", "SeriesTime": "TM",
    "AccessionNumber": "SH", "PatientID": "LO", "PatientName": "PN", "PatientSex": "CS", "StudyID": "SH",
    "StudyDescription": "LO", "ReferringPhysicianName": "PN", "ModalitiesInStudy": "CS", "Modality": "CS",
    "SeriesNumber": "IS", "SeriesDescription": "LO", "BodyPartExamined": "CS", "ProtocolName": "LO",
    "Manufacturer": "LO", "InstitutionName": "LO", "StationName": "SH", "Laterality": "CS",
}
#: The longest value of each text VR (PS3.5 Table 6.2-1); PN: 64 characters per component group.
_MAX_LENGTH = {"CS": 16, "SH": 16, "LO": 64, "PN": 64}
_DATE = r"\d{8}"
_TIME = r"\d{2}(\d{2}(\d{2}(\.\d{1,6})?)?)?"


class PullIncomplete(RadtlError):
    """Some series of the pull failed, were refused or are partial; the complete ones are in place and the
    manifest names the others with their reason. :attr:`summary` has the counts."""

    def __init__(self, summary: PullSummary, reason: str):
        self.summary = summary
        super().__init__(f"{summary.line()}; {reason}",
                         hint=f"see {summary.manifest}; run the same command again to fetch only what is missing")


@dataclass
class PullSummary:
    """What a pull did.

    Args:
        out: the cohort folder.
        manifest: ``OUT/pull_manifest.csv``.
        statuses: series by status, over the whole manifest (earlier runs included).
        instances: instances received by this run.
        bytes: their bytes.
    """

    out: Path
    manifest: Path
    statuses: Counter = field(default_factory=Counter)
    instances: int = 0
    bytes: int = 0

    @property
    def complete(self) -> bool:
        return not any(self.statuses[status] for status in ("failed", "refused", "partial"))

    def line(self) -> str:
        counts = ", ".join(f"{self.statuses[status]} {status}" for status in STATUSES if self.statuses[status])
        return (f"pulled {self.instances} instance(s), {self.bytes / 1e6:.1f} MB into {self.out}; "
                f"series: {counts or 'none'}")


# ---- what to pull: matching keys (PS3.4 C.2.2.2) ----


def _check_value(keyword: str, value: str) -> str:
    """``value`` when it is a matching value PS3.4 C.2.2.2 allows for ``keyword``'s VR, else a UsageError.

    DA/TM: a single value or a range ``A-B``, ``-B``, ``A-`` (C.2.2.2.5); UI: a UID or a list of UIDs separated
    by backslashes (C.2.2.2.2); IS: an integer; text VRs: the value, with ``*`` and ``?`` wildcards (C.2.2.2.4),
    at most the VR's length, without backslashes or control characters.
    """
    vr = _VR[keyword]

    def refuse(rule: str) -> UsageError:
        return UsageError(f"{keyword}={value!r}: {rule}")

    if vr in ("DA", "TM"):
        single = _DATE if vr == "DA" else _TIME
        match = re.fullmatch(f"({single})?(-({single})?)?", value)
        if not value or value == "-" or match is None:
            example = "20200101-20201231" if vr == "DA" else "080000-120000"
            raise refuse(f"a {'date YYYYMMDD' if vr == 'DA' else 'time HHMMSS'} or a range like {example}")
        if vr == "DA":
            for date in filter(None, value.split("-")):
                try:
                    datetime.strptime(date, "%Y%m%d")
                except ValueError:
                    raise refuse(f"{date} is not a date") from None
    elif vr == "UI":
        if not all(is_uid(uid) for uid in value.split("\\")):
            raise refuse("a UID (digits and dots, at most 64 characters) or UIDs separated by backslashes")
    elif vr == "IS":
        if re.fullmatch(r"[+-]?\d{1,12}", value) is None:
            raise refuse("an integer")
    else:
        if not value or "\\" in value or any(ord(c) < 32 or ord(c) == 127 for c in value):
            raise refuse("one non-empty value, without backslashes or control characters")
        if len(value) > _MAX_LENGTH[vr]:
            raise refuse(f"at most {_MAX_LENGTH[vr]} characters ({vr})")
        if vr == "CS" and re.fullmatch(r"[A-Z0-9 _*?]+", value) is None:
            raise refuse("capital letters, digits, spaces and underscores (CS), with * and ? wildcards")
    return value


def _check_keyword(keyword: str) -> str:
    if keyword not in MATCHING_KEYS:
        near = closest(keyword, list(MATCHING_KEYS))
        raise UsageError(
            f"{keyword!r} is not a matching key radtl pull knows" + (f" (did you mean {near}?)" if near else ""),
            hint="use a DICOM keyword of the study or series level: " + ", ".join(sorted(MATCHING_KEYS)),
        )
    return keyword


def _split_by_level(keys: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    study = {k: v for k, v in keys.items() if MATCHING_KEYS[k] == "STUDY"}
    series = {k: v for k, v in keys.items() if MATCHING_KEYS[k] == "SERIES"}
    return study, series


def parse_query(text: str) -> tuple[dict[str, str], dict[str, str]]:
    """``"Modality=CT StudyDate=20200101-20201231"`` as (study-level keys, series-level keys).

    Terms are ``Keyword=value`` separated by spaces (quote a value with spaces: ``"SeriesDescription=CT HEAD*"``);
    keywords are those of :data:`MATCHING_KEYS`, values as :func:`_check_value` allows. A value of ``*`` alone is
    universal matching: the term matches everything and is left out (``Modality=*`` selects every series).

    Raises:
        UsageError: an empty query, a term without ``=``, a keyword twice, an unknown keyword (naming the closest)
            or a value its VR does not allow.
    """
    lexer = shlex.shlex(text, posix=True)
    lexer.whitespace_split, lexer.escape = True, ""  # a backslash separates values (UID lists), it escapes nothing
    try:
        terms = list(lexer)
    except ValueError as error:
        raise UsageError(f"--query {text!r}: {error}") from None
    if not terms:
        raise UsageError("--query is empty", hint='e.g. --query "Modality=CT StudyDate=20200101-20201231"')
    keys: dict[str, str] = {}
    universal: set[str] = set()
    for term in terms:
        keyword, equals, value = term.partition("=")
        if not equals:
            raise UsageError(f"--query term {term!r} is not Keyword=value")
        if _check_keyword(keyword) in keys or keyword in universal:
            raise UsageError(f"--query names {keyword} twice")
        if value == "*":  # universal matching (PS3.4 C.2.2.2.3): the key matches every value, so it selects nothing
            universal.add(keyword)
            continue
        keys[keyword] = _check_value(keyword, value)
    return _split_by_level(keys)


@dataclass(frozen=True)
class _Selection:
    """One search of the pull: what it came from (for the manifest) and its keys at each level."""

    description: str
    study_keys: dict[str, str]
    series_keys: dict[str, str]


def _read_csv(path: str | os.PathLike, option: str, column_sets: tuple[tuple[str, ...], ...]) -> list[dict[str, str]]:
    """The rows of a CSV file, each with the first set of ``column_sets`` the header has, values checked."""
    with open(path, newline="", encoding="utf-8-sig") as file:
        reader = csv.DictReader(file)
        header = [name.strip() for name in reader.fieldnames or []]
        columns = next((names for names in column_sets if set(names) <= set(header)), None)
        if columns is None:
            wanted = " or ".join(" + ".join(names) for names in column_sets)
            raise UsageError(f"{option} {path}: needs the column(s) {wanted}; it has {', '.join(header) or 'none'}")
        rows = []
        for number, row in enumerate(reader, start=2):
            row = {(name or "").strip(): (value or "").strip() for name, value in row.items() if name}
            if not any(row.get(name) for name in columns):
                continue  # a blank line
            try:
                rows.append({name: _check_value(name, row.get(name, "")) for name in columns})
            except UsageError as error:
                raise UsageError(f"{option} {path} line {number}: {error}") from None
    return rows


def read_studies_csv(path: str | os.PathLike) -> list[_Selection]:
    """The studies of a CSV file: a column StudyInstanceUID, or AccessionNumber, or PatientID and StudyDate."""
    rows = _read_csv(path, "--studies", (("StudyInstanceUID",), ("AccessionNumber",), ("PatientID", "StudyDate")))
    return [_Selection(" ".join(f"{k}={v}" for k, v in row.items()), row, {}) for row in rows]


def read_series_csv(path: str | os.PathLike) -> list[_Selection]:
    """The series of a CSV file: columns StudyInstanceUID and SeriesInstanceUID."""
    rows = _read_csv(path, "--series", (("StudyInstanceUID", "SeriesInstanceUID"),))
    return [_Selection(f"SeriesInstanceUID={row['SeriesInstanceUID']}",
                       {"StudyInstanceUID": row["StudyInstanceUID"]},
                       {"SeriesInstanceUID": row["SeriesInstanceUID"]}) for row in rows]


# ---- being gentle with the PACS ----


class RateLimiter:
    """At most ``rate`` instances per second over all workers (a token bucket holding one token); 0: no limit.

    Args:
        rate: instances per second.
        clock: the monotonic clock (tests give their own).
        sleep: how to wait.
    """

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        if rate < 0:
            raise UsageError(f"--rate must be 0 (no limit) or more, not {rate}")
        self.interval = 1.0 / rate if rate else 0.0
        self.clock, self.sleep = clock, sleep
        self._next = 0.0
        self._lock = threading.Lock()

    def acquire(self) -> None:
        """Wait until the next instance may be taken."""
        if not self.interval:
            return
        with self._lock:
            now = self.clock()
            start = max(now, self._next)
            self._next = start + self.interval
        if start > now:
            self.sleep(start - now)


# ---- the manifest ----


class _Manifest:
    """``OUT/pull_manifest.csv``: one row per series, merged with the file a previous run left, rewritten
    atomically after each change (a kill keeps what was done)."""

    def __init__(self, path: Path):
        self.path = path
        self.rows: dict[tuple[str, str], dict[str, str]] = {}
        self._lock = threading.Lock()
        if path.exists():
            with path.open(newline="", encoding="utf-8") as file:
                for row in csv.DictReader(file):
                    row = {name: row.get(name) or "" for name in MANIFEST_FIELDS}
                    self.rows[self._key(row)] = row

    @staticmethod
    def _key(row: dict[str, str]) -> tuple[str, str]:
        # a not-found row has no series: its reason (the selection) tells it apart
        return (row["StudyInstanceUID"], row["SeriesInstanceUID"] or row["reason"])

    def record(self, study: str, series: str, modality: str, expected: int | str, received: int | str,
               status: str, reason: str = "") -> None:
        row = dict(zip(MANIFEST_FIELDS, (study, series, modality, str(expected), str(received), status, reason)))
        with self._lock:
            self.rows[self._key(row)] = row
            self._write()

    def forget_selection(self, description: str) -> None:
        """Drop the rows an earlier run wrote for a selection as a whole (not found, or its search refused)."""
        with self._lock:
            stale = [key for key, row in self.rows.items() if not row["SeriesInstanceUID"] and (
                row["reason"] == f"nothing matches {description}" or row["reason"].startswith(f"{description}: "))]
            for key in stale:
                del self.rows[key]
            if stale:
                self._write()

    def _write(self) -> None:
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=MANIFEST_FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(sorted(self.rows.values(), key=lambda r: (r["StudyInstanceUID"], r["SeriesInstanceUID"])))
        write_text_atomic(self.path, text.getvalue())

    def statuses(self) -> Counter:
        with self._lock:
            return Counter(row["status"] for row in self.rows.values())


# ---- the pull ----


def _inside(out: Path, *names: str) -> Path:
    """``out/names...``, after checking each name is a UID (or radtl's own folder) and the path stays in ``out``."""
    path = out.joinpath(*names)
    if not all(is_uid(name) or name == PARTIAL_FOLDER for name in names) or not path.resolve().is_relative_to(
            out.resolve()):
        raise RadtlError(f"refused to write outside {out}: {path}")
    return path


@contextmanager
def _progress_bar(enabled: bool) -> Iterator:
    from tqdm import tqdm

    with tqdm(total=0, unit="instance", desc="pull", disable=not enabled, dynamic_ncols=True) as bar:
        yield bar


class _Pull:
    """The state one :func:`pull_cohort` shares between its workers."""

    def __init__(self, url: str, out: Path, manifest: _Manifest, limiter: RateLimiter, bar, options: dict):
        self.url, self.out, self.manifest, self.limiter, self.bar = url, out, manifest, limiter, bar
        self.options = options
        self.destination: MoveDestination | None = None
        self.instances = self.bytes = 0
        self.studies_total: set[str] = set()
        self.studies_done: set[str] = set()
        self.stopped: str | None = None  # why the PACS is given up (network trouble after retries)
        self._lock = threading.Lock()

    def _retry_options(self) -> dict:
        return {key: self.options[key] for key in ("attempts", "backoff_s", "timeout_s")}

    def received(self, path: Path) -> None:
        size = path.stat().st_size
        with self._lock:
            self.instances += 1
            self.bytes += size
            self.bar.update(1)
            self.bar.set_postfix(studies=f"{len(self.studies_done)}/{len(self.studies_total)}",
                                 MB=f"{self.bytes / 1e6:.1f}", refresh=False)

    def pull_series(self, series: CohortSeries) -> None:
        """Pull one series to its folder, then record it; a PACS error becomes the series' row."""
        study_uid, series_uid = series.study_instance_uid, series.series_instance_uid
        record = self.manifest.record
        final = _inside(self.out, study_uid, series_uid)
        if final.is_dir():
            count = sum(1 for _ in final.glob("*.dcm"))
            previous = self.manifest.rows.get((study_uid, series_uid), {})
            record(study_uid, series_uid, series.modality, previous.get("expected") or count, count, "complete")
            self._study_done(study_uid)
            return
        if self.stopped is not None:
            record(study_uid, series_uid, series.modality, "", "", "failed", f"not attempted: {self.stopped}")
            return
        try:
            self._retrieve(series, final)
        except PacsError as error:
            if is_network_failure(error):
                self.stopped = self.stopped or str(error)
            partial = _inside(self.out, PARTIAL_FOLDER, series_uid)
            received = sum(1 for _ in partial.glob("*.dcm")) if partial.is_dir() else 0
            record(study_uid, series_uid, series.modality, "", received,
                   "failed" if is_network_failure(error) else "refused", str(error))

    def _retrieve(self, series: CohortSeries, final: Path) -> None:
        study_uid, series_uid = series.study_instance_uid, series.series_instance_uid
        expected = find_series_instances(self.url, study_uid, series_uid, **self._retry_options())
        if not expected:
            self.manifest.record(study_uid, series_uid, series.modality, 0, 0, "not-found",
                                 "the series has no instances in the archive")
            return
        partial = _inside(self.out, PARTIAL_FOLDER, series_uid)
        with self._lock:
            self.bar.total += len(expected)
            self.bar.refresh()
        refused = retrieve_instances(
            self.url, study_uid, series_uid, expected, partial, destination=self.destination,
            max_instance_bytes=self.options["max_instance_bytes"], before_each=self.limiter.acquire,
            on_received=self.received, **self._retry_options(),
        )
        present = {path.stem for path in partial.glob("*.dcm")} & set(expected)
        if len(present) == len(expected):
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(partial, final)
            self.manifest.record(study_uid, series_uid, series.modality, len(expected), len(expected), "complete")
            self._study_done(study_uid)
        elif refused:
            first = next(iter(refused.values()))
            self.manifest.record(study_uid, series_uid, series.modality, len(expected), len(present), "refused",
                                 f"{len(refused)} instance(s) refused, e.g. {first}")
        else:
            self.manifest.record(study_uid, series_uid, series.modality, len(expected), len(present), "partial",
                                 f"the PACS sent {len(present)} of the {len(expected)} instances it listed")

    def _study_done(self, study_uid: str) -> None:
        with self._lock:
            self.studies_done.add(study_uid)


def _selections(query: str | None, studies: str | os.PathLike | None,
                series: str | os.PathLike | None) -> list[_Selection]:
    given = [name for name, value in (("--query", query), ("--studies", studies), ("--series", series))
             if value is not None]
    if len(given) != 1:
        raise UsageError(f"give exactly one of --query, --studies and --series ({' and '.join(given) or 'none'} "
                         "given)", hint='e.g. --query "Modality=CT StudyDate=20200101-20201231"')
    if query is not None:
        study_keys, series_keys = parse_query(query)
        return [_Selection(query, study_keys, series_keys)]
    return read_studies_csv(studies) if studies is not None else read_series_csv(series)


def _listen_address(listen: str | None) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6), or 127.0.0.1 and a free port."""
    if listen is None:
        return "127.0.0.1", 0
    host, colon, port = listen.rpartition(":")
    if not colon or not port.isdigit() or not host or int(port) > 65535:
        raise UsageError(f"--listen {listen!r} is not HOST:PORT", hint="e.g. --listen 0.0.0.0:11113")
    return host.strip("[]"), int(port)


def pull_cohort(
    url: str,
    out: str | os.PathLike,
    *,
    query: str | None = None,
    studies: str | os.PathLike | None = None,
    series: str | os.PathLike | None = None,
    retrieve: str = "get",
    listen: str | None = None,
    workers: int = 2,
    rate: float = 0.0,
    attempts: int = 3,
    backoff_s: float = 1.0,
    timeout_s: float = 60.0,
    max_instance_bytes: int = 2 << 30,
    progress: bool | None = None,
) -> PullSummary:
    """Pull the series a query or a list selects from the PACS into ``out``, resumably; see the module docstring.

    Args:
        url: the PACS: ``http(s)://.../dicom-web`` (QIDO-RS, WADO-RS) or ``dicom(s)://AET@host:port`` (C-FIND,
            then C-GET or C-MOVE).
        out: the cohort folder: ``<StudyInstanceUID>/<SeriesInstanceUID>/<SOPInstanceUID>.dcm`` and
            ``pull_manifest.csv``.
        query: matching keys, ``"Modality=CT StudyDate=20200101-20201231 BodyPartExamined=CHEST"``.
        studies: a CSV file with a column StudyInstanceUID, or AccessionNumber, or PatientID and StudyDate.
        series: a CSV file with columns StudyInstanceUID and SeriesInstanceUID.
        retrieve: DIMSE only: ``get`` (C-GET) or ``move`` (C-MOVE to a storage SCP radtl runs for the pull, with
            the calling AE title; the PACS must know that AE title at the ``listen`` address).
        listen: ``HOST:PORT`` of the C-MOVE destination; default 127.0.0.1 and a free port.
        workers: series transferred at the same time.
        rate: at most this many instances per second over all workers; 0: no limit.
        attempts: tries of each PACS operation on network trouble (never on a refusal).
        backoff_s: the first delay between tries, doubled each time.
        timeout_s: per network operation.
        max_instance_bytes: the largest instance accepted; a larger one is refused, with its reason.
        progress: show a progress bar (studies, instances, bytes); None: when standard error is a terminal.

    Returns:
        The :class:`PullSummary`, when every series selected is complete (or not found).

    Raises:
        UsageError: not exactly one of query, studies and series; a bad key, value or option.
        PullIncomplete: some series failed (the PACS stopped answering), were refused or are partial; the
            complete ones are kept and the manifest says why for the others.
        PacsError: the search itself failed.
    """
    selections = _selections(query, studies, series)
    address = parse_pacs_url(url)
    if retrieve not in ("get", "move"):
        raise UsageError(f"--retrieve {retrieve!r}: use get (C-GET) or move (C-MOVE)")
    if retrieve == "move" and address.scheme != "dicom":
        raise UsageError("--retrieve move needs a dicom:// URL", hint="DICOMweb retrieves by WADO-RS; over "
                         "dicoms:// use C-GET (radtl's C-MOVE destination does not serve TLS)")
    if workers < 1 or max_instance_bytes < 1:
        raise UsageError("--workers and --max-instance-bytes must be at least 1")
    limiter, listen_address = RateLimiter(rate), _listen_address(listen)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with folder_lock(out, "`radtl pull`"):  # two pulls into one OUT would fetch the same instances twice
        remove_stale_temporaries(out)  # the half-written files of a pull that was killed
        return _pull_locked(url, out, selections, retrieve, listen_address, workers, limiter, progress,
                            dict(attempts=attempts, backoff_s=backoff_s, timeout_s=timeout_s,
                                 max_instance_bytes=max_instance_bytes))


def _pull_locked(url: str, out: Path, selections: list[_Selection], retrieve: str, listen: tuple[str, int],
                 workers: int, limiter: RateLimiter, progress: bool | None, options: dict) -> PullSummary:
    """:func:`pull_cohort` once its arguments are checked and it holds ``out``."""
    manifest = _Manifest(out / MANIFEST_NAME)
    retry = {key: options[key] for key in ("attempts", "backoff_s", "timeout_s")}
    enabled = sys.stderr.isatty() if progress is None else progress
    with ExitStack() as stack:
        bar = stack.enter_context(_progress_bar(enabled))
        pull = _Pull(url, out, manifest, limiter, bar, options)
        found: dict[tuple[str, str], CohortSeries] = {}
        for selection in selections:
            manifest.forget_selection(selection.description)
            try:
                matches = find_series(url, selection.study_keys, selection.series_keys, **retry)
            except PacsError as error:
                if is_network_failure(error):
                    raise
                manifest.record("", "", "", "", "", "refused", f"{selection.description}: {error}")
                continue
            if not matches:
                manifest.record("", "", "", 0, 0, "not-found", f"nothing matches {selection.description}")
            for match in matches:
                found[(match.study_instance_uid, match.series_instance_uid)] = match
        pull.studies_total = {study for study, _ in found}
        if retrieve == "move":
            host, port = listen
            pull.destination = stack.enter_context(MoveDestination(url, host, port, options["timeout_s"]))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="radtl-pull") as pool:
            futures = [pool.submit(pull.pull_series, item) for item in found.values()]
            try:
                for future in futures:
                    future.result()
            except BaseException:  # Ctrl-C, a full disk: the series not started are not started
                pull.stopped = "the pull was interrupted"
                for future in futures:
                    future.cancel()
                raise
    summary = PullSummary(out, manifest.path, manifest.statuses(), pull.instances, pull.bytes)
    logger.info("%s", summary.line())
    if not summary.complete:
        raise PullIncomplete(summary, pull.stopped or "the manifest gives each series' reason")
    return summary
