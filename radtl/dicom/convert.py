"""``radtl convert``: a file or a whole archive to 8-bit PNGs and a resumable manifest.

Each source file gets its rows in ``OUT/manifest.csv`` (one per frame, or one for a file
that failed) only after all its images are on disk, each image written under a temporary
name and renamed. A crash therefore loses at most the file in flight, and a re-run skips
every source the manifest already lists, so nothing is done or listed twice.

``OUT/settings.json`` records the options that shape the images (size, formula, VOI
preference, colour, the frame policies); a re-run with other ones is refused, naming the
difference, since skipping the sources already listed would leave images of the old options.
``--workers``, ``--scheduler``, ``--retry_errors``, ``--compress_level`` (lossless) and
``--max_pixel_bytes`` (the per-file budget) may change from run to run.

Parallelism is Dask's: ``workers > 1`` starts a local cluster of processes, ``scheduler``
connects to an existing one (``tcp://host:port``) whose workers see the same SRC and OUT
paths (a shared filesystem) and have radtl installed.
"""

from __future__ import annotations

import csv
import enum
import io
import json
import os
import time
import warnings
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from radtl.atomic import atomic_path, write_json_atomic
from radtl.dicom.errors import failure_reason
from radtl.dicom.frames import ConversionOptions, display_frames
from radtl.dicom.image import resize_longest_pad_uint8, uninformative_reason
from radtl.dicom.io import empty_instance_uids, read_dataset
from radtl.errors import RadtlError
from radtl.lazy import moved_names
from radtl.logs import show_progress
from radtl.parallel import chunked, map_chunks
from radtl.png import encode_png

__all__ = [
    "Status",
    "ExportSettings",
    "ExportSettingsError",
    "check_or_record_settings",
    "MANIFEST_COLUMNS",
    "Manifest",
    "ConversionSummary",
    "convert_file",
    "convert_files",
    "convert_tree",
    "find_sources",
    "output_stem",
]

MANIFEST_COLUMNS = ("source", "frame", "output", "status", "reason", "modality", "sop_class", "rows", "columns", "voi", "inverted", "warnings")
DICOM_SUFFIXES = {".dcm", ".dicom", ".dic", ".ima"}


class Status(str, enum.Enum):
    """A manifest row's outcome: an image written, a frame dropped by policy, or a failure."""

    OK = "ok"
    SKIPPED = "skipped"
    ERROR = "error"


@dataclass(frozen=True)
class ExportSettings:
    """How frames become files.

    Args:
        size: output side in pixels (aspect kept, zero padded); 0 keeps the native size.
        conversion: the DICOM-to-display choices (formula, VOI preference, colour).
        compress_level: PNG zlib level 0-9; 1 is lossless like every level, and fast.
        min_value_fraction: value policy threshold (distinct levels / 256), 0 disables it.
        min_aspect: shape policy threshold (short side / long side), 0 disables it.
    """

    size: int = 256
    conversion: ConversionOptions = field(default_factory=ConversionOptions)
    compress_level: int = 1
    min_value_fraction: float = 0.1
    min_aspect: float = 0.1

    def __post_init__(self) -> None:
        if self.size < 0:
            raise ValueError(f"size must be >= 0 (0 keeps the native size), got {self.size}")
        if not 0 <= self.compress_level <= 9:
            raise ValueError(f"compress_level must be 0..9, got {self.compress_level}")


class ExportSettingsError(RadtlError, ValueError):
    """An OUT converted with other options than this run's (``OUT/settings.json``), or whose record is damaged."""


SETTINGS_FILE = "settings.json"


def _settings_record(settings: ExportSettings) -> dict:
    """The options that shape the images, named as ``radtl convert`` names them."""
    conversion = settings.conversion
    return {"size": settings.size, "formula": conversion.formula.value, "voi": conversion.voi_preference.value,
            "color": conversion.color.value, "min_value_fraction": settings.min_value_fraction,
            "min_aspect": settings.min_aspect}


def check_or_record_settings(out: Path, settings: ExportSettings) -> None:
    """Record ``settings`` in ``OUT/settings.json``, or check that they are those OUT was converted with.

    An OUT made by an older radtl (a manifest, no ``settings.json``) is accepted, and this run's
    settings are recorded then: what it was made with cannot be known, and from now on it is kept.
    Raises :class:`ExportSettingsError` naming every difference.
    """
    path = Path(out) / SETTINGS_FILE
    wanted = _settings_record(settings)
    if not path.is_file():
        write_json_atomic(path, wanted, indent=2)
        return
    try:
        recorded = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ExportSettingsError(f"{path} is damaged ({error}); convert into another OUT") from error
    differences = [f"--{name} {recorded.get(name)!r} (now {value!r})" for name, value in wanted.items()
                   if recorded.get(name) != value]
    if differences:
        raise ExportSettingsError(f"{out} was converted with {', '.join(differences)}; convert into another OUT, "
                                  "or re-run with the same options")


def output_stem(source: Path, root: Path) -> Path:
    """Where a source's images go, relative to OUT: its path under SRC without a DICOM suffix."""
    relative = Path(source.name) if source == root else source.relative_to(root)
    return relative.with_suffix("") if relative.suffix.lower() in DICOM_SUFFIXES else relative


def _write_png(image, path: Path, compress_level: int) -> None:
    """Write under a temporary name, then rename (:func:`radtl.atomic.atomic_path`): a reader never sees half an
    image. The folder is made only when the first image into it finds none (one system call less per image)."""
    data = encode_png(image, compress_level)
    with atomic_path(path) as temporary:
        try:
            handle = open(temporary, "wb")
        except FileNotFoundError:
            path.parent.mkdir(parents=True, exist_ok=True)
            handle = open(temporary, "wb")
        with handle:
            handle.write(data)


def convert_file(source: Path, root: Path, out_dir: Path, settings: ExportSettings) -> list[dict]:
    """Convert one file; return its manifest rows. Never raises for bad input: the row says why.

    Warnings the readers and decoders raise about the file (odd VRs, excess padding, ...)
    are recorded in the rows' ``warnings`` column instead of flooding the terminal.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rows = _convert_file(source, root, out_dir, settings)
    notes = "; ".join(dict.fromkeys(str(w.message).splitlines()[0] for w in caught))
    return [dict(row, warnings=notes[:500]) for row in rows]


def _convert_file(source: Path, root: Path, out_dir: Path, settings: ExportSettings) -> list[dict]:
    base = dict.fromkeys(MANIFEST_COLUMNS, "") | {"source": str(source)}
    rows: list[dict] = []
    try:
        ds = read_dataset(source, max_pixel_bytes=settings.conversion.max_pixel_bytes)
        base.update(modality=str(ds.get("Modality", "") or ""), sop_class=str(ds.get("SOPClassUID", "") or ""))
        if empty := empty_instance_uids(ds):  # the images are named after the path anyway: nothing is filled in
            warnings.warn(f"empty {', '.join(empty)} (Type 1, PS3.3 C.12.1): left empty, images named after the path")
        frames = list(display_frames(ds, settings.conversion))
        stem = output_stem(source, root)
        for frame in frames:
            height, width = frame.image.shape[:2]
            row = dict(base, frame=frame.index, rows=height, columns=width, voi=frame.voi, inverted=int(frame.inverted))
            reason = uninformative_reason(frame.image, settings.min_value_fraction, settings.min_aspect)
            if reason:
                rows.append(dict(row, status=Status.SKIPPED.value, reason=reason))
                continue
            name = f"{stem}.png" if len(frames) == 1 else f"{stem}_frame{frame.index:04d}.png"
            _write_png(resize_longest_pad_uint8(frame.image, settings.size), out_dir / name, settings.compress_level)
            rows.append(dict(row, status=Status.OK.value, output=Path(name).as_posix()))
    except BaseException as error:  # noqa: BLE001 - one file never stops the batch (decoders panic); failure_reason
        rows = [dict(base, status=Status.ERROR.value, reason=failure_reason(error))]
    return rows


def convert_files(sources: Sequence[Path], root: Path, out_dir: Path, settings: ExportSettings) -> list[dict]:
    """Convert a chunk of files (the unit of work a Dask task carries)."""
    return [row for source in sources for row in convert_file(Path(source), root, out_dir, settings)]


class Manifest:
    """``OUT/manifest.csv``: append-only, one write per source file, readable after any crash.

    Each append is flushed to the OS at once (a killed process loses nothing written) and
    fsync'ed to disk at most every ``sync_seconds`` and on :meth:`close` (a power cut loses
    at most those seconds, which the next run redoes).
    """

    def __init__(self, path: Path, sync_seconds: float = 2.0) -> None:
        self.path = Path(path)
        self.done: set[str] = set()
        self.previous: list[dict] = []
        self.sync_seconds = sync_seconds
        self._handle = None
        self._synced = time.monotonic()
        if self.path.exists():
            self._load()

    def _load(self) -> None:
        with open(self.path, "rb+") as handle:
            data = handle.read()
            if data and not data.endswith(b"\n"):  # a write cut short by a crash: drop the partial line
                handle.truncate(data.rfind(b"\n") + 1)
        with open(self.path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            if reader.fieldnames and tuple(reader.fieldnames) != MANIFEST_COLUMNS:
                raise ValueError(f"{self.path} has columns {reader.fieldnames}, expected {list(MANIFEST_COLUMNS)}; use another OUT")
            self.previous = list(reader)
        self.done = {row["source"] for row in self.previous}

    def forget_errors(self) -> int:
        """Drop the rows of failed sources (rewriting the file atomically) so they are tried again."""
        failed = {row["source"] for row in self.previous if row["status"] == Status.ERROR.value}
        if failed:
            self.previous = [row for row in self.previous if row["source"] not in failed]
            with atomic_path(self.path) as temporary, open(temporary, "w", newline="", encoding="utf-8") as handle:
                handle.write(self._format(self.previous, header=True))
            self.done -= failed
        return len(failed)

    @staticmethod
    def _format(rows: Iterable[dict], header: bool = False) -> str:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=MANIFEST_COLUMNS, lineterminator="\n")
        if header:
            writer.writeheader()
        writer.writerows(rows)
        return buffer.getvalue()

    def append(self, rows: Sequence[dict]) -> None:
        """Append one source's rows in a single write, so a source is listed whole or not at all."""
        if self._handle is None:
            header = not self.path.exists() or self.path.stat().st_size == 0
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = open(self.path, "a", newline="", encoding="utf-8")
            if header:
                self._handle.write(self._format((), header=True))
        self._handle.write(self._format(rows))
        self._handle.flush()
        if time.monotonic() - self._synced > self.sync_seconds:
            os.fsync(self._handle.fileno())
            self._synced = time.monotonic()
        self.done.update(row["source"] for row in rows)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.flush()
            os.fsync(self._handle.fileno())
            self._handle.close()
            self._handle = None


@dataclass
class ConversionSummary:
    """What a run did: files converted now, files already done, rows by status and by reason code."""

    files: int = 0
    already_done: int = 0
    statuses: Counter = field(default_factory=Counter)
    reasons: Counter = field(default_factory=Counter)

    def add(self, rows: Iterable[dict]) -> None:
        for row in rows:
            self.statuses[row["status"]] += 1
            if row["reason"]:
                self.reasons[(row["status"], row["reason"].split(":", 1)[0])] += 1

    def __str__(self) -> str:
        lines = [f"{self.files} file(s) converted, {self.already_done} already in the manifest"]
        lines += [f"  {status.value:<8} {self.statuses.get(status.value, 0):>6} row(s)" for status in Status]
        lines += [f"  {status:<8} {count:>6}    {code}" for (status, code), count in sorted(self.reasons.items())]
        return "\n".join(lines)


def find_sources(src: Path, exclude: Path | None = None) -> Iterator[Path]:
    """Every regular file under ``src`` (or ``src`` itself), sorted, skipping ``exclude`` and hidden files."""
    src = Path(src)
    if src.is_file():
        yield src.resolve()
        return
    if not src.is_dir():
        raise FileNotFoundError(f"no such file or folder: {src}")
    exclude = exclude.resolve() if exclude else None
    for folder, subfolders, files in os.walk(src.resolve()):
        subfolders[:] = sorted(d for d in subfolders if not d.startswith(".") and Path(folder, d) != exclude)
        yield from (Path(folder, name) for name in sorted(files) if not name.startswith("."))


def convert_tree(
    src: str | os.PathLike,
    out: str | os.PathLike,
    settings: ExportSettings = ExportSettings(),
    workers: int = 1,
    scheduler: str | None = None,
    retry_errors: bool = False,
    progress: bool | None = None,
) -> ConversionSummary:
    """Convert every file under ``src`` into ``out``, resuming from ``out/manifest.csv``.

    Args:
        src: a DICOM file or a folder searched recursively (any file name; non-DICOM files
            get an ``error`` row saying so).
        out: output folder; images mirror the folder structure under ``src``.
        settings: sizes, formula, colour and policies; those that shape the images must be the
            ones ``out`` was converted with (:func:`check_or_record_settings`).
        workers: 1 converts in this process; N > 1 starts a local Dask cluster of N processes.
        scheduler: address of a running Dask scheduler; overrides ``workers``.
        retry_errors: try again the sources whose previous attempt ended in ``error``.
        progress: show a progress bar (default: when writing to a terminal).
    """
    src, out = Path(src), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    check_or_record_settings(out, settings)
    manifest = Manifest(out / "manifest.csv")
    if retry_errors:
        manifest.forget_errors()
    root = src.resolve() if src.is_dir() else src.resolve().parent
    sources = list(find_sources(src, exclude=out))
    todo = [s for s in sources if str(s) not in manifest.done]
    summary = ConversionSummary(already_done=len(sources) - len(todo))
    bar = tqdm(total=len(todo), unit="file", desc="convert", disable=not show_progress(progress))

    def record(rows: list[dict], files: int) -> None:
        for _, group in _group_by_source(rows):
            manifest.append(group)
        summary.files += files
        summary.add(rows)
        bar.update(files)

    try:
        chunk = 1 if scheduler is None and workers <= 1 else max(1, min(32, len(todo) // (max(workers, 1) * 8) or 1))
        map_chunks(convert_files, chunked(todo, chunk), root, out, settings,
                   on_result=lambda part, rows: record(rows, len(part)),
                   on_failure=lambda part, error: record(_failed_task_rows(part, error), len(part)),
                   workers=workers, scheduler=scheduler)
    finally:
        bar.close()
        manifest.close()
    return summary


def _group_by_source(rows: list[dict]) -> Iterator[tuple[str, list[dict]]]:
    groups: dict[str, list[dict]] = {}
    for row in rows:
        groups.setdefault(row["source"], []).append(row)
    return iter(groups.items())


def _failed_task_rows(sources: Sequence[Path], error: BaseException) -> list[dict]:
    """One error row per source of a chunk whose worker task failed (a lost worker, e.g. a decoder crash)."""
    reason = f"internal-error: worker task failed ({type(error).__name__}: {error})"
    return [dict.fromkeys(MANIFEST_COLUMNS, "") | {"source": str(s), "status": Status.ERROR.value, "reason": reason}
            for s in sources]


#: Names ``radtl.dicom.convert`` held before issue 23 (the display frames, now :mod:`radtl.dicom.frames`).
_FRAMES_NAMES = ("ColorMode", "DisplayFrame", "read_display_frames")


__getattr__ = moved_names(__name__, dict.fromkeys(_FRAMES_NAMES, "radtl.dicom.frames"))
