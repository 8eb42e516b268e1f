"""A packed image format for pretraining data: ``radtl pack``.

PNG folders decoded by PIL in DataLoader workers cannot keep a GPU busy. A pack holds the
images of a MONAI datalist already converted to what the bundles feed the network: one grey
channel, resized so the longest side is ``size`` and zero padded to ``size x size``
(MONAI's ``Resize(size_mode="longest", anti_aliasing=True)`` then ``SpatialPad``, on
:class:`~radtl.transforms.LoadRadiograph`'s image), rounded to 8 bits. Reading one is an
``np.load(mmap_mode="r")`` slice: no decoding, random access, shared page cache.

Layout of a pack folder::

    pack.json                      format, version, size, counts per shard and split, task, labels
    errors.csv                     split, image, reason: every item left out, and why
    shards/shard-00000.npy         (m, size, size) uint8, the shard's images in datalist order
    shards/shard-00000.parquet     its index: split, row, image, label (JSON), height, width, other keys

Items are taken split by split in datalist order and cut into consecutive shards of
``shard_size`` items, so which shard an item lands in depends only on the datalist. A shard's
``.parquet`` is written last and records a key (hash of the shard's items and the settings),
so a re-run skips every shard already written and a killed run loses only the shards in flight.
``pack.json`` is written at the very end: a folder without it is an incomplete pack.

- :func:`write_pack` writes a pack (in this process or on a Dask cluster, :mod:`radtl.parallel`).
- :class:`PackedImages` opens one: images by global position, the index as a DataFrame.
- :class:`PackedDataset` is a ``torch`` dataset over one split, items like the datalist's.
- ``radtl.transforms.LoadPackedd`` reads a datalist's images from a pack in a MONAI pipeline.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import os
import re
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ignite.distributed as idist
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from monai.transforms import Resize, SpatialPad
from tqdm.auto import tqdm

from radtl.atomic import write_atomic, write_text_atomic
from radtl.data.datalist import SPLITS
from radtl.errors import RadtlError
from radtl.logs import show_progress
from radtl.parallel import chunked, map_chunks

__all__ = ["FORMAT", "FORMAT_VERSION", "NotInPackError", "PackError", "PackResult", "PackedDataset", "PackedImages",
           "ensure_pack", "modality_filter", "write_pack"]

logger = logging.getLogger(__name__)

#: ``pack.json``'s ``format`` and ``version``: what :class:`PackedImages` opens.
FORMAT = "radtl-pack"
FORMAT_VERSION = 1

_SHARDS = "shards"
_SHARD_NAME = "shard-{:05d}"
_SHARD_FILE = re.compile(r"shard-\d{5}\.(npy|parquet)")
_METADATA_KEY = b"radtl-pack"
_ERROR_COLUMNS = ("split", "image", "reason")
#: Index columns every pack has; an item key with one of these names cannot be packed.
_INDEX_COLUMNS = ("position", "shard", "row", "split", "image", "label", "height", "width")
_RESERVED_KEYS = frozenset(_INDEX_COLUMNS) | {"pack_position"}
_ARROW_TYPES = {"bool": pa.bool_(), "int": pa.int64(), "float": pa.float64(), "str": pa.string()}


class PackError(RadtlError, ValueError):
    """A pack cannot be written as asked, or a folder is not a complete radtl pack; the message names it."""


class NotInPackError(RadtlError, KeyError):
    """An image asked of a pack by its path is not in it."""

    def __str__(self) -> str:  # KeyError's str() is the repr of its argument; the message reads better plain
        return str(self.args[0]) if self.args else ""


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
    shards_dir = out / _SHARDS
    shards_dir.mkdir(parents=True, exist_ok=True)
    (out / "pack.json").unlink(missing_ok=True)  # the pack is incomplete until this run writes it again
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
    writer = csv.DictWriter(buffer, fieldnames=_ERROR_COLUMNS, lineterminator="\n")
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
        "shards": [{"file": f"{_SHARDS}/{_SHARD_NAME.format(o.number)}.npy", "count": o.count} for o in done],
        "splits": per_split,
    }
    manifest |= {key: content[key] for key in ("task", "labels") if key in content}
    manifest["errors"] = len(errors)
    write_text_atomic(out / "pack.json", json.dumps(manifest, indent=1) + "\n")
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
                if key in _RESERVED_KEYS:
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
    """A hash of everything a shard's files are made from: the items, the columns' types, the size, the format."""
    payload = {"format": FORMAT, "version": FORMAT_VERSION, "size": size, "columns": list(columns),
               "items": [[e.split, e.image, e.label, list(e.extras)] for e in entries]}
    return hashlib.sha256(json.dumps(payload, default=str).encode()).hexdigest()


def _shard_paths(shards_dir: str | os.PathLike, number: int) -> tuple[Path, Path]:
    stem = Path(shards_dir) / _SHARD_NAME.format(number)
    return stem.with_suffix(".npy"), stem.with_suffix(".parquet")


def _remove_stale_files(shards_dir: Path, shards: int) -> None:
    """Remove temporary files of killed runs and shards beyond this datalist's last one (an earlier, longer one's)."""
    for path in shards_dir.iterdir():
        stale_shard = _SHARD_FILE.fullmatch(path.name) and int(path.name[6:11]) >= shards
        if stale_shard or (path.name.startswith("shard-") and path.name.endswith(".tmp")):
            path.unlink()


def _reusable(shard: _ShardWork, shards_dir: Path, size: int) -> _ShardOutcome | None:
    """The outcome recorded by an earlier run that wrote this very shard, or None if it must be (re)written."""
    npy, parquet = _shard_paths(shards_dir, shard.number)
    if not (npy.is_file() and parquet.is_file()):
        return None
    try:
        metadata = pq.read_schema(parquet).metadata or {}
        record = json.loads(metadata[_METADATA_KEY])
        shape = np.load(npy, mmap_mode="r").shape
    except (OSError, ValueError, KeyError, pa.ArrowException) as error:
        logger.info("shard %d is repacked: its files cannot be read back (%s)", shard.number, error)
        return None
    if record.get("key") != shard.key or shape != (record.get("count"), size, size):
        return None
    return _ShardOutcome(shard.number, record["count"], record["splits"], record["errors"])


def _square_image_loader(size: int) -> Callable[[str], tuple[np.ndarray, tuple[int, int]]]:
    """``path -> (image, (H, W))``: the bundles' LoadRadiograph, Resize (longest side) and SpatialPad, to uint8."""
    from radtl.transforms.io.array import LoadRadiograph  # imported here: radtl.transforms.io imports radtl.data

    load = LoadRadiograph()
    resize = Resize(spatial_size=size, size_mode="longest", anti_aliasing=True)
    pad = SpatialPad(spatial_size=[size, size])

    def load_square(path: str) -> tuple[np.ndarray, tuple[int, int]]:
        image = load(path)
        height, width = (int(s) for s in image.shape[1:])
        square = torch.as_tensor(pad(resize(image)))[0]
        return torch.round(square * 255).clamp_(0, 255).to(torch.uint8).numpy(), (height, width)

    return load_square


def _pack_shard(shard: _ShardWork, shards_dir: str, size: int) -> _ShardOutcome:
    """Write one shard's ``.npy`` and then its ``.parquet`` index; a Dask task (module-level, picklable).

    An image that fails to load is left out and recorded with the exception's type and message.
    """
    npy, parquet = _shard_paths(shards_dir, shard.number)
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
    table = table.replace_schema_metadata({_METADATA_KEY: json.dumps(record).encode()})
    write_atomic(parquet, lambda tmp: pq.write_table(table, tmp))
    return outcome


def _keep_first_rows(path: Path, rows: int) -> None:
    """Shrink the ``.npy`` file at ``path`` to its first ``rows`` images (after some failed to load)."""
    source = np.load(path, mmap_mode="r")
    compact_path = path.with_name(f"{path.name}.compact.tmp")
    compact = np.lib.format.open_memmap(compact_path, mode="w+", dtype=source.dtype, shape=(rows, *source.shape[1:]))
    compact[:] = source[:rows]
    compact.flush()
    del compact, source
    os.replace(compact_path, path)


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
        data[key] = pa.array(values, _ARROW_TYPES[kind])
    return pa.table(data)


class PackedImages:
    """An opened pack: its images by global position, and its index.

    Positions number the images 0..n-1 in shard order (datalist order, unreadable images left
    out). The shards are memory-mapped on first use in each process (the map is opened again
    after a fork), so an instance can be handed to DataLoader workers.

    Args:
        path: the pack folder (the ``out`` of :func:`write_pack`).

    Attributes:
        size: side S of the (S, S) images.
        index: one row per image: ``position``, ``shard``, ``row``, ``split``, ``image`` (the
            resolved source path), ``label`` (JSON text), ``height``, ``width`` (original size)
            and the datalist items' other scalar keys.
        labels: the datalist's ``"labels"`` (None when it had none).
        task: the datalist's ``"task"`` (None when it had none).

    Raises:
        PackError: the folder is missing, is not a radtl pack, or holds an incomplete one.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        manifest = _read_manifest(self.path)
        self.size = int(manifest["size"])
        self.labels = manifest.get("labels")
        self.task = manifest.get("task")
        self.splits: dict[str, int] = dict(manifest["splits"])
        self._files = [self.path / shard["file"] for shard in manifest["shards"]]
        self._counts = np.asarray([int(shard["count"]) for shard in manifest["shards"]], dtype=np.int64)
        self._offsets = np.concatenate([[0], np.cumsum(self._counts)]).astype(np.int64)
        self._table = self._read_index()
        self.index: pd.DataFrame = self._table.to_pandas()
        self._maps: dict[int, np.ndarray] = {}
        self._maps_pid = os.getpid()
        self._positions_by_image: dict[str, int] | None = None

    def _read_index(self) -> pa.Table:
        parts = []
        for number, (npy, count) in enumerate(zip(self._files, self._counts)):
            parquet = npy.with_suffix(".parquet")
            try:
                part = pq.read_table(parquet)
            except (OSError, pa.ArrowException) as error:
                raise PackError(f"{self.path}: incomplete pack, the index {parquet.name} cannot be read ({error})") from error
            if part.num_rows != count:
                raise PackError(f"{self.path}: incomplete pack, {parquet.name} has {part.num_rows} rows, "
                                f"pack.json says {count}")
            part = part.replace_schema_metadata(None)
            part = part.add_column(0, "shard", pa.array(np.full(part.num_rows, number, dtype=np.int64)))
            parts.append(part)
        table = pa.concat_tables(parts, promote_options="default") if parts else pa.table({})
        positions = pa.array(np.arange(table.num_rows, dtype=np.int64))
        return table.add_column(0, "position", positions) if parts else table

    def __len__(self) -> int:
        return int(self._offsets[-1])

    def __getitem__(self, position: int) -> np.ndarray:
        """The (S, S) uint8 image at global ``position`` (a copy, safe to hand to ``torch.from_numpy``)."""
        position = int(position)
        if not 0 <= position < len(self):
            raise IndexError(f"position {position} is out of range for a pack of {len(self)} images ({self.path})")
        shard = int(np.searchsorted(self._offsets, position, side="right")) - 1
        return np.array(self._shard_map(shard)[position - self._offsets[shard]])

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_maps"] = {}  # a pickled memmap would carry the whole shard's bytes
        return state

    def _shard_map(self, shard: int) -> np.ndarray:
        if self._maps_pid != os.getpid():
            self._maps, self._maps_pid = {}, os.getpid()
        images = self._maps.get(shard)
        if images is None:
            images = np.load(self._files[shard], mmap_mode="r")
            expected = (int(self._counts[shard]), self.size, self.size)
            if images.shape != expected or images.dtype != np.uint8:
                raise PackError(f"{self.path}: {self._files[shard].name} holds {images.dtype} {images.shape}, "
                                f"pack.json says uint8 {expected}")
            self._maps[shard] = images
        return images

    def locate(self, image: str | os.PathLike) -> int:
        """The global position of the image packed from source path ``image`` (its first, if packed twice).

        A relative ``image`` is taken from the current directory.

        Raises:
            NotInPackError: the image is not in the pack.
        """
        if self._positions_by_image is None:
            images = self._table.column("image").to_pylist() if len(self) else []
            self._positions_by_image = {}
            for position, path in enumerate(images):
                self._positions_by_image.setdefault(path, position)
        resolved = os.path.abspath(Path(image).expanduser())
        try:
            return self._positions_by_image[resolved]
        except KeyError:
            raise NotInPackError(f"{resolved} is not in the pack {self.path} ({len(self)} images): pack it, "
                                 f"or check errors.csv for why it was left out") from None

    def positions(self, split: str) -> np.ndarray:
        """The global positions of ``split``'s images, in datalist order.

        Raises:
            PackError: ``split`` was not packed.
        """
        if split not in self.splits:
            raise PackError(f"{self.path}: no split {split!r} in the pack (it has {', '.join(self.splits)})")
        if not len(self):
            return np.zeros(0, dtype=np.int64)
        return np.flatnonzero(self._table.column("split").to_numpy() == split).astype(np.int64)

    def items(self, split: str) -> list[dict]:
        """``split``'s datalist items rebuilt from the index, with ``"pack_position"`` added.

        ``image`` is the resolved source path, ``label`` the decoded label; keys an item did not
        have (null in the index) are left out.
        """
        rows = self._table.take(pa.array(self.positions(split))).to_pylist()
        return [_as_item(row) for row in rows]

    def item(self, position: int) -> dict:
        """The datalist item of the image at global ``position`` (as :meth:`items` builds it)."""
        return _as_item(self._table.slice(int(position), 1).to_pylist()[0])

    def shard_positions(self) -> list[np.ndarray]:
        """The global positions of each shard's images, so a distributed sampler can give each rank whole shards."""
        return [np.arange(start, stop, dtype=np.int64) for start, stop in zip(self._offsets[:-1], self._offsets[1:])]

    def __repr__(self) -> str:
        return f"PackedImages({str(self.path)!r}: {len(self)} images of {self.size}x{self.size} in {len(self._files)} shards)"


def _as_item(row: Mapping[str, Any]) -> dict:
    item = {"image": row["image"], "label": json.loads(row["label"])}
    item |= {key: value for key, value in row.items() if key not in _RESERVED_KEYS and value is not None}
    item["pack_position"] = row["position"]
    return item


def _read_manifest(path: Path) -> dict:
    manifest_path = path / "pack.json"
    if not path.is_dir():
        raise PackError(f"{path}: no such folder, not a radtl pack")
    if not manifest_path.is_file():
        if (path / _SHARDS).is_dir():
            raise PackError(f"{path}: incomplete pack (no pack.json: a radtl pack run did not finish; run it again)")
        raise PackError(f"{path}: not a radtl pack (no pack.json)")
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise PackError(f"{path}: pack.json cannot be read ({error})") from error
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise PackError(f"{path}: not a radtl pack (pack.json's format is not {FORMAT!r})")
    if manifest.get("version") != FORMAT_VERSION:
        raise PackError(f"{path}: pack version {manifest.get('version')!r}; this radtl reads version {FORMAT_VERSION}")
    missing = [shard["file"] for shard in manifest["shards"] if not (path / shard["file"]).is_file()]
    if missing:
        raise PackError(f"{path}: incomplete pack, missing {', '.join(missing)}")
    return manifest


class PackedDataset(torch.utils.data.Dataset):
    """One split of a pack as a ``torch`` dataset of datalist-like dicts.

    Item ``i`` is ``{"image": uint8 tensor (1, S, S), "label": the decoded label, ...the item's
    other keys..., "pack_position": its global position}``, passed through ``transform`` when
    given (e.g. MONAI dictionary transforms; scale to [0, 1] with ``ScaleIntensityRanged`` or
    ``/ 255`` on the GPU, :func:`radtl.transforms.to_unit_float`).

    Args:
        pack: a pack folder or an opened :class:`PackedImages`.
        split: which split.
        transform: a callable on the item dict.
        select: keep only items whose index column has one of the given values, compared as
            case-insensitive text: ``{"modality": ["CT"]}`` (see :func:`modality_filter`).
        keys: the item keys besides ``image`` to return (``("label",)`` for pretraining, which
            reads nothing else and so skips building the whole item); None returns all.

    Raises:
        PackError: an unknown ``select`` column, or a selection that leaves no item.
    """

    def __init__(self, pack: str | os.PathLike | PackedImages, split: str = "training",
                 transform: Callable[[dict], Any] | None = None,
                 select: Mapping[str, str | Sequence[str]] | None = None,
                 keys: Sequence[str] | None = None) -> None:
        self.pack = pack if isinstance(pack, PackedImages) else PackedImages(pack)
        self.split = split
        self.transform = transform
        self.keys = None if keys is None else tuple(keys)
        self.positions = self._select(self.pack.positions(split), select or {})
        self._labels: list | None = None

    def _select(self, positions: np.ndarray, select: Mapping[str, str | Sequence[str]]) -> np.ndarray:
        for column, wanted in select.items():
            if column not in self.pack.index.columns:
                raise PackError(f"{self.pack.path}: cannot select on {column!r}, the index has no such column "
                                f"(it has {', '.join(map(str, self.pack.index.columns))})")
            wanted = {str(v).casefold() for v in ([wanted] if isinstance(wanted, str) else wanted)}
            values = self.pack.index[column].astype(str).str.casefold().to_numpy()[positions]
            kept = positions[np.isin(values, list(wanted))]
            if not len(kept):
                present = sorted(set(self.pack.index[column].astype(str).to_numpy()[positions]))
                raise PackError(f"{self.pack.path}: no {self.split} item has {column} in {sorted(wanted)} "
                                f"(present: {', '.join(present)})")
            positions = kept
        return positions

    def __len__(self) -> int:
        return len(self.positions)

    def __getitem__(self, index: int) -> Any:
        position = int(self.positions[index])
        if self.keys is None:
            item = self.pack.item(position)
        else:
            item = {key: self._column(key)[index] for key in self.keys}
        item["image"] = torch.from_numpy(self.pack[position])[np.newaxis]
        return self.transform(item) if self.transform is not None else item

    def _column(self, key: str) -> Sequence:
        if key == "label":
            return self.targets
        return self.pack.index[key].to_numpy()[self.positions]

    @property
    def targets(self) -> list:
        """The decoded labels, item by item (what class-balanced samplers weigh)."""
        if self._labels is None:
            self._labels = [json.loads(label) for label in self.pack.index["label"].to_numpy()[self.positions]]
        return self._labels

    def shard_indices(self) -> list[np.ndarray]:
        """This dataset's indices grouped by the shard their images are in (shards it has no item in left out),
        for :class:`radtl.data.PretrainingSampler` to give each process whole shards."""
        shards = self.pack.index["shard"].to_numpy()[self.positions]
        return [np.flatnonzero(shards == shard) for shard in np.unique(shards)]


def modality_filter(modality: str | Sequence[str] | None) -> dict | None:
    """The ``select`` of a single-modality (or few-modality) subset, as the study's CT-only,
    MR-only and CR-only pretraining: ``"CT"``, ``"CR,DX"`` or a list; empty or None selects all."""
    if not modality:
        return None
    names = modality.split(",") if isinstance(modality, str) else list(modality)
    return {"modality": [name.strip().upper() for name in names if name.strip()]}


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
