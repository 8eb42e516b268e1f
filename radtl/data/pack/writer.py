"""Writing a pack (:mod:`radtl.data.pack.format`): ``radtl pack``.

PNG folders decoded by PIL in DataLoader workers cannot keep a GPU busy; a pack holds the images
already converted to what the bundles feed the network (see :mod:`radtl.data.pack.format`).

- :func:`write_pack` writes a pack (in this process or on a Dask cluster, :mod:`radtl.parallel`),
  shard by shard, resumable.
- :func:`ensure_pack` writes it unless it is complete, then opens it (first process under ``torchrun``).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import os
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ignite.distributed as idist
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm.auto import tqdm

from radtl.atomic import atomic_path, write_atomic, write_json_atomic, write_text_atomic
from radtl.data.datalist import SPLITS
from radtl.data.images import read_radiograph
from radtl.data.pack.format import (
    ARROW_TYPES,
    ERROR_COLUMNS,
    FORMAT,
    FORMAT_VERSION,
    MANIFEST,
    METADATA_KEY,
    RESERVED_KEYS,
    SHARD_FILE,
    SHARD_NAME,
    SHARDS,
    PackError,
    shard_paths,
)
from radtl.data.pack.reader import PackedImages
from radtl.dicom.image import resize_longest_pad, to_uint8
from radtl.logs import show_progress
from radtl.parallel import chunked, map_chunks

__all__ = ["PackResult", "ensure_pack", "write_pack"]

logger = logging.getLogger(__name__)

#: The resize the shards are made with, part of each shard's key: a pack made with another one is rewritten.
_RESIZE = "resize_longest_pad"


@dataclass
class PackResult:
    """What :func:`write_pack` did.

    Args:
        out: the pack folder.
        count: images in the pack.
        splits: images per split.
        errors: items left out (unreadable images, failed cluster tasks); see ``out/errors.csv``.
        seconds: wall time of the run.
        skipped: shards reused from an earlier run.
        shards: shards in the pack.
    """

    out: Path
    count: int
    splits: dict[str, int]
    errors: int
    seconds: float
    skipped: int
    shards: int

    def __str__(self) -> str:
        per_split = ", ".join(f"{split} {count}" for split, count in self.splits.items())
        return (f"{self.count} image(s) packed in {self.shards} shard(s) ({self.skipped} reused) in "
                f"{self.seconds:.1f} s: {per_split}; {self.errors} left out (errors.csv)")


@dataclass(frozen=True)
class _Entry:
    """One datalist item as the packer sees it: ``image`` resolved, ``label`` JSON-encoded."""

    split: str
    image: str
    label: str
    extras: tuple[tuple[str, Any], ...]


@dataclass(frozen=True)
class _ShardWork:
    """One shard to write: its number, its items, the extra columns' types and the key recorded when done."""

    number: int
    entries: tuple[_Entry, ...]
    columns: tuple[tuple[str, str], ...]
    key: str


@dataclass
class _ShardOutcome:
    """A written (or reused) shard: its image count, images per split, and the items left out."""

    number: int
    count: int
    splits: dict[str, int]
    errors: list[dict[str, str]] = field(default_factory=list)
    written: bool = False


def write_pack(
    datalist: str | os.PathLike | Mapping,
    out: str | os.PathLike,
    size: int = 224,
    shard_size: int = 4096,
    splits: str | Sequence[str] = SPLITS,
    workers: int = 1,
    scheduler: str | None = None,
    progress: bool | None = False,
    base_dir: str | os.PathLike | None = None,
) -> PackResult:
    """Pack the images of ``datalist``'s ``splits`` into ``out`` (resumable; see the module docstring).

    Unreadable images do not stop the run: they are left out of their shard and listed with the
    exception's type and message in ``out/errors.csv``.

    Args:
        datalist: a datalist JSON file, or the datalist dict.
        out: the pack folder (a re-run on it reuses the shards already written).
        size: side S of the packed S x S images.
        shard_size: items per shard (the last shard may hold fewer).
        splits: the datalist keys to pack, in this order (a comma-separated string or a sequence).
        workers: 1 packs in this process; N > 1 starts a local Dask cluster of N processes.
        scheduler: address of a running Dask scheduler (``tcp://host:port``); overrides ``workers``.
        progress: show a progress bar (one step per shard); None only on a terminal.
        base_dir: the folder relative image paths are resolved against (default: the datalist
            file's folder; for a dict, the current directory), as MONAI's ``load_decathlon_datalist``.

    Raises:
        PackError: bad settings, a datalist that is not one, an item without ``"image"`` or with
            a key named like an index column, or no items in ``splits``.
    """
    started = time.perf_counter()
    if size < 1 or shard_size < 1:
        raise PackError(f"size and shard_size must be >= 1, got size={size}, shard_size={shard_size}")
    splits = _split_names(splits)
    content, base = _read_datalist(datalist, base_dir)
    entries, columns = _list_entries(content, base, splits, datalist)
    out = Path(out)
    shards_dir = out / SHARDS
    shards_dir.mkdir(parents=True, exist_ok=True)
    (out / MANIFEST).unlink(missing_ok=True)  # the pack is incomplete until this run writes it again
    work = [_ShardWork(n, tuple(part), columns, _shard_key(part, columns, size))
            for n, part in enumerate(chunked(entries, shard_size))]
    _remove_stale_files(shards_dir, len(work))

    outcomes: dict[int, _ShardOutcome] = {}
    failed: list[dict[str, str]] = []
    bar = tqdm(total=len(work), unit="shard", desc="pack", disable=not show_progress(progress))

    def todo():
        for shard in work:
            reused = _reusable(shard, shards_dir, size)
            if reused is None:
                yield shard
            else:
                outcomes[shard.number] = reused
                bar.update(1)

    def record(shard: _ShardWork, outcome: _ShardOutcome) -> None:
        outcomes[shard.number] = outcome
        bar.update(1)

    def record_failure(shard: _ShardWork, error: BaseException) -> None:
        reason = f"worker task failed ({type(error).__name__}: {error})"
        failed.extend({"split": e.split, "image": e.image, "reason": reason} for e in shard.entries)
        bar.update(1)

    try:
        map_chunks(_pack_shard, todo(), str(shards_dir), size, on_result=record, on_failure=record_failure,
                   workers=workers, scheduler=scheduler)
    finally:
        bar.close()
    skipped = sum(1 for outcome in outcomes.values() if not outcome.written)
    return _finish(out, content, splits, size, work, outcomes, failed, skipped, time.perf_counter() - started)


def _finish(out: Path, content: Mapping, splits: Sequence[str], size: int, work: Sequence[_ShardWork],
            outcomes: Mapping[int, _ShardOutcome], failed: list[dict[str, str]], skipped: int,
            seconds: float) -> PackResult:
    """Write ``errors.csv`` and then ``pack.json``, the mark of a complete pack."""
    done = [outcomes[shard.number] for shard in work if shard.number in outcomes]
    errors = [error for outcome in done for error in outcome.errors] + failed
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=ERROR_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(errors)
    write_text_atomic(out / "errors.csv", buffer.getvalue())
    per_split = dict.fromkeys(splits, 0)
    for outcome in done:
        for split, count in outcome.splits.items():
            per_split[split] += count
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "size": size,
        "dtype": "uint8",
        "count": sum(outcome.count for outcome in done),
        "shards": [{"file": f"{SHARDS}/{SHARD_NAME.format(o.number)}.npy", "count": o.count} for o in done],
        "splits": per_split,
    }
    manifest |= {key: content[key] for key in ("task", "labels") if key in content}
    manifest["errors"] = len(errors)
    write_json_atomic(out / MANIFEST, manifest)
    if errors:
        logger.warning("%d item(s) left out of the pack: see %s", len(errors), out / "errors.csv")
    return PackResult(out, manifest["count"], per_split, len(errors), seconds, skipped, len(done))


def _split_names(splits: str | Sequence[str]) -> list[str]:
    names = [s.strip() for s in splits.split(",")] if isinstance(splits, str) else [str(s) for s in splits]
    names = list(dict.fromkeys(name for name in names if name))
    if not names:
        raise PackError("no splits to pack: give at least one datalist key, e.g. 'training'")
    return names


def _read_datalist(datalist: str | os.PathLike | Mapping, base_dir: str | os.PathLike | None) -> tuple[Mapping, Path]:
    if isinstance(datalist, Mapping):
        return datalist, Path(base_dir if base_dir is not None else os.getcwd())
    path = Path(datalist)
    try:
        content = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise PackError(f"{path}: not a JSON datalist ({error})") from error
    if not isinstance(content, Mapping):
        raise PackError(f"{path}: not a datalist (a JSON object with 'training', 'validation', 'test' lists)")
    return content, Path(base_dir) if base_dir is not None else path.resolve().parent


def _resolve(image: str | os.PathLike, base: Path) -> str:
    """The absolute, normalised path (MONAI's ``load_decathlon_datalist`` joins and normalises the same way)."""
    path = Path(image).expanduser()
    return os.path.abspath(path if path.is_absolute() else base / path)


def _scalar(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _type_name(value: Any) -> str | None:
    for name, kind in (("bool", bool), ("int", int), ("float", float), ("str", str)):
        if isinstance(value, kind):
            return name
    return None


def _list_entries(content: Mapping, base: Path, splits: Sequence[str],
                  source: object) -> tuple[list[_Entry], tuple[tuple[str, str], ...]]:
    """The items of ``splits`` in datalist order, and the type of every extra key's column.

    A key's column type is decided over all items, so every shard's index has the same schema:
    ints and floats make a float column; any other mix is stored as text (with a warning).
    Keys whose values are not scalars (lists, dicts) are left out of the index, with a warning.
    """
    where = source if isinstance(source, (str, os.PathLike)) else "the datalist"
    entries: list[_Entry] = []
    kinds: dict[str, set[str]] = {}
    non_scalar: set[str] = set()
    for split in splits:
        items = content.get(split, [])
        if not isinstance(items, list):
            raise PackError(f"{where}: {split!r} is not a list of items")
        for number, item in enumerate(items):
            if not isinstance(item, Mapping) or "image" not in item:
                raise PackError(f"{where}: {split}[{number}] has no 'image'")
            extras = []
            for key, value in item.items():
                if key in ("image", "label"):
                    continue
                if key in RESERVED_KEYS:
                    raise PackError(f"{where}: {split}[{number}] has a key {key!r}, the name of a pack index column")
                value = _scalar(value)
                if value is not None and _type_name(value) is None:
                    non_scalar.add(str(key))
                    continue
                kinds.setdefault(str(key), set()).update([_type_name(value)] if value is not None else [])
                extras.append((str(key), value))
            label = json.dumps(item.get("label"), default=_json_default)
            entries.append(_Entry(split, _resolve(item["image"], base), label, tuple(extras)))
    if not entries:
        raise PackError(f"{where}: no items in {', '.join(splits)}")
    for key in sorted(non_scalar):
        logger.warning("item key %r has non-scalar values: left out of the pack's index", key)
    columns = []
    for key, names in kinds.items():
        kind = next(iter(names)) if len(names) == 1 else "float" if names == {"int", "float"} else "str"
        if len(names) > 1 and kind == "str":
            logger.warning("item key %r mixes %s values: stored as text", key, ", ".join(sorted(names)))
        columns.append((key, kind))
    return entries, tuple(columns)


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    raise TypeError(f"label {value!r} of type {type(value).__name__} is not JSON serialisable")


def _shard_key(entries: Sequence[_Entry], columns: Sequence[tuple[str, str]], size: int) -> str:
    """A hash of everything a shard's files are made from: the items, the columns' types, the size, the format
    and the resize (:data:`_RESIZE`; shards an earlier radtl resized with MONAI's Resize + SpatialPad are repacked)."""
    payload = {"format": FORMAT, "version": FORMAT_VERSION, "size": size, "columns": list(columns),
               "items": [[e.split, e.image, e.label, list(e.extras)] for e in entries], "resize": _RESIZE}
    return hashlib.sha256(json.dumps(payload, default=str).encode()).hexdigest()


def _remove_stale_files(shards_dir: Path, shards: int) -> None:
    """Remove temporary files of killed runs and shards beyond this datalist's last one (an earlier, longer one's)."""
    for path in shards_dir.iterdir():
        stale_shard = SHARD_FILE.fullmatch(path.name) and int(path.name[6:11]) >= shards
        if stale_shard or (path.name.startswith("shard-") and path.name.endswith(".tmp")):
            path.unlink()


def _reusable(shard: _ShardWork, shards_dir: Path, size: int) -> _ShardOutcome | None:
    """The outcome recorded by an earlier run that wrote this very shard, or None if it must be (re)written."""
    npy, parquet = shard_paths(shards_dir, shard.number)
    if not (npy.is_file() and parquet.is_file()):
        return None
    try:
        metadata = pq.read_schema(parquet).metadata or {}
        record = json.loads(metadata[METADATA_KEY])
        shape = np.load(npy, mmap_mode="r").shape
    except (OSError, ValueError, KeyError, pa.ArrowException) as error:
        logger.info("shard %d is repacked: its files cannot be read back (%s)", shard.number, error)
        return None
    if record.get("key") != shard.key or shape != (record.get("count"), size, size):
        return None
    return _ShardOutcome(shard.number, record["count"], record["splits"], record["errors"])


def _square_image_loader(size: int) -> Callable[[str], tuple[np.ndarray, tuple[int, int]]]:
    """``path -> (image, (H, W))``: the bundles' ``LoadRadiographd`` and ``ResizeLongestPadd``, to uint8.

    :func:`~radtl.data.images.read_radiograph` then
    :func:`~radtl.dicom.image.resize_longest_pad`, the functions under those transforms.
    """

    def load_square(path: str) -> tuple[np.ndarray, tuple[int, int]]:
        image, _ = read_radiograph(path)
        return to_uint8(resize_longest_pad(image, size)), image.shape

    return load_square


def _pack_shard(shard: _ShardWork, shards_dir: str, size: int) -> _ShardOutcome:
    """Write one shard's ``.npy`` and then its ``.parquet`` index; a Dask task (module-level, picklable).

    An image that fails to load is left out and recorded with the exception's type and message.
    """
    npy, parquet = shard_paths(shards_dir, shard.number)
    parquet.unlink(missing_ok=True)  # an earlier run's index must not vouch for the .npy rewritten below
    load_square = _square_image_loader(size)
    packed: list[tuple[_Entry, tuple[int, int]]] = []
    errors: list[dict[str, str]] = []

    def write_images(tmp: Path) -> None:
        images = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(len(shard.entries), size, size))
        for entry in shard.entries:
            try:
                pixels, shape = load_square(entry.image)
            except Exception as error:  # noqa: BLE001 - any unreadable image is recorded in errors.csv, not fatal
                errors.append({"split": entry.split, "image": entry.image, "reason": f"{type(error).__name__}: {error}"})
                continue
            images[len(packed)] = pixels
            packed.append((entry, shape))
        images.flush()
        del images
        if len(packed) < len(shard.entries):
            _keep_first_rows(tmp, len(packed))

    write_atomic(npy, write_images)
    outcome = _ShardOutcome(shard.number, len(packed), dict(Counter(entry.split for entry, _ in packed)), errors,
                            written=True)
    table = _index_table(packed, shard.columns)
    record = {"key": shard.key, "count": outcome.count, "splits": outcome.splits, "errors": errors}
    table = table.replace_schema_metadata({METADATA_KEY: json.dumps(record).encode()})
    write_atomic(parquet, lambda tmp: pq.write_table(table, tmp))
    return outcome


def _keep_first_rows(path: Path, rows: int) -> None:
    """Shrink the ``.npy`` file at ``path`` to its first ``rows`` images (after some failed to load)."""
    source = np.load(path, mmap_mode="r")
    with atomic_path(path) as compact_path:
        compact = np.lib.format.open_memmap(compact_path, mode="w+", dtype=source.dtype, shape=(rows, *source.shape[1:]))
        compact[:] = source[:rows]
        compact.flush()
        del compact, source


def _index_table(packed: Sequence[tuple[_Entry, tuple[int, int]]], columns: Sequence[tuple[str, str]]) -> pa.Table:
    """The shard's index: one row per packed image, the extra keys as typed columns."""
    data = {
        "split": pa.array([entry.split for entry, _ in packed], pa.string()),
        "row": pa.array(range(len(packed)), pa.int64()),
        "image": pa.array([entry.image for entry, _ in packed], pa.string()),
        "label": pa.array([entry.label for entry, _ in packed], pa.string()),
        "height": pa.array([shape[0] for _, shape in packed], pa.int64()),
        "width": pa.array([shape[1] for _, shape in packed], pa.int64()),
    }
    extras = [dict(entry.extras) for entry, _ in packed]
    for key, kind in columns:
        values = [item.get(key) for item in extras]
        if kind == "str":
            values = [None if v is None else str(v) for v in values]
        elif kind == "float":
            values = [None if v is None else float(v) for v in values]
        data[key] = pa.array(values, ARROW_TYPES[kind])
    return pa.table(data)


def ensure_pack(datalist: str | os.PathLike | Mapping, out: str | os.PathLike, size: int = 224,
                shard_size: int = 4096, **kwargs: Any) -> PackedImages:
    """The pack of ``datalist`` in ``out``, written (or completed) first unless it is already there.

    :func:`write_pack` reuses every finished shard, so on a complete pack this only checks it.
    Under ``torchrun`` the first process packs while the others wait at a barrier, then all
    open the same files. ``kwargs`` go to :func:`write_pack` (``workers``, ``progress``...).
    """
    if idist.get_rank() == 0:
        write_pack(datalist, out, size=size, shard_size=shard_size, **kwargs)
    idist.barrier()
    return PackedImages(out)
