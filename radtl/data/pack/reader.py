"""Reading a pack (:mod:`radtl.data.pack.format`): :class:`PackedImages` opens one (images by global position,
the index as a DataFrame), :class:`PackedDataset` is a ``torch`` dataset over one split, items like the datalist's;
``radtl.transforms.LoadPackedd`` reads a datalist's images from a pack in a MONAI pipeline."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from radtl.data.pack.format import FORMAT, FORMAT_VERSION, MANIFEST, RESERVED_KEYS, SHARDS, NotInPackError, PackError

__all__ = ["PackedDataset", "PackedImages", "modality_filter"]


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
    item |= {key: value for key, value in row.items() if key not in RESERVED_KEYS and value is not None}
    item["pack_position"] = row["position"]
    return item


def _read_manifest(path: Path) -> dict:
    manifest_path = path / MANIFEST
    if not path.is_dir():
        raise PackError(f"{path}: no such folder, not a radtl pack")
    if not manifest_path.is_file():
        if (path / SHARDS).is_dir():
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
