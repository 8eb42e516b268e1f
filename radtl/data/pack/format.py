"""The radtl pack format, as :mod:`~radtl.data.pack.writer` writes it and :mod:`~radtl.data.pack.reader` reads it.

A pack holds the images of a MONAI datalist already converted to what the bundles feed the network:
one grey channel, the longest side resized to ``size`` and zero padded to ``size x size``
(:func:`radtl.dicom.image.resize_longest_pad` on
:func:`radtl.data.images.read_radiograph`'s image, the bundles' ``LoadRadiographd`` +
``ResizeLongestPadd``), rounded to 8 bits. Reading one is an ``np.load(mmap_mode="r")`` slice: no
decoding, random access, shared page cache.

Layout of a pack folder::

    pack.json                      format, version, size, counts per shard and split, task, labels
    errors.csv                     split, image, reason: every item left out, and why
    shards/shard-00000.npy         (m, size, size) uint8, the shard's images in datalist order
    shards/shard-00000.parquet     its index: split, row, image, label (JSON), height, width, other keys

Items are taken split by split in datalist order and cut into consecutive shards of
``shard_size`` items, so which shard an item lands in depends only on the datalist. A shard's
``.parquet`` is written last and records, under :data:`METADATA_KEY` in its schema metadata, a key
(hash of the shard's items and the settings), the image count, the images per split and the items
left out; so a re-run skips every shard already written and a killed run loses only the shards in
flight. ``pack.json`` is written at the very end: a folder without it is an incomplete pack.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pyarrow as pa

from radtl.errors import RadtlError

__all__ = [
    "ARROW_TYPES",
    "ERROR_COLUMNS",
    "FORMAT",
    "FORMAT_VERSION",
    "INDEX_COLUMNS",
    "MANIFEST",
    "METADATA_KEY",
    "RESERVED_KEYS",
    "SHARDS",
    "SHARD_FILE",
    "SHARD_NAME",
    "NotInPackError",
    "PackError",
    "shard_paths",
]

#: ``pack.json``'s ``format`` and ``version``: what :class:`~radtl.data.PackedImages` opens.
FORMAT = "radtl-pack"
FORMAT_VERSION = 1

#: The manifest, written last: a folder without it holds an incomplete pack.
MANIFEST = "pack.json"
#: The folder of the shards, and a shard's file stem (``.npy`` images, ``.parquet`` index).
SHARDS = "shards"
SHARD_NAME = "shard-{:05d}"
SHARD_FILE = re.compile(r"shard-\d{5}\.(npy|parquet)")
#: The key of a shard index's schema metadata that records what the shard was made from.
METADATA_KEY = b"radtl-pack"
#: ``errors.csv``'s columns.
ERROR_COLUMNS = ("split", "image", "reason")
#: Index columns every pack has; an item key with one of these names cannot be packed.
INDEX_COLUMNS = ("position", "shard", "row", "split", "image", "label", "height", "width")
RESERVED_KEYS = frozenset(INDEX_COLUMNS) | {"pack_position"}
#: The Arrow type of an extra index column, by the type name the writer decides for it.
ARROW_TYPES = {"bool": pa.bool_(), "int": pa.int64(), "float": pa.float64(), "str": pa.string()}


class PackError(RadtlError, ValueError):
    """A pack cannot be written as asked, or a folder is not a complete radtl pack; the message names it."""


class NotInPackError(RadtlError, KeyError):
    """An image asked of a pack by its path is not in it."""

    def __str__(self) -> str:  # KeyError's str() is the repr of its argument; the message reads better plain
        return str(self.args[0]) if self.args else ""


def shard_paths(shards_dir: str | os.PathLike, number: int) -> tuple[Path, Path]:
    """Shard ``number``'s ``.npy`` images and ``.parquet`` index in ``shards_dir``."""
    stem = Path(shards_dir) / SHARD_NAME.format(number)
    return stem.with_suffix(".npy"), stem.with_suffix(".parquet")
