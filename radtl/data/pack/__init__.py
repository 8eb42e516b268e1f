"""A packed image format for pretraining data, ``radtl pack``: the format, its writer and its reader.

- :mod:`~radtl.data.pack.format`: the folder layout, the index schema, shard naming, the errors.
- :mod:`~radtl.data.pack.writer`: :func:`write_pack` and its shard tasks; :func:`ensure_pack`.
- :mod:`~radtl.data.pack.reader`: :class:`PackedImages`, :class:`PackedDataset`, :func:`modality_filter`.
"""

from radtl.data.pack.format import FORMAT, FORMAT_VERSION, NotInPackError, PackError
from radtl.data.pack.reader import PackedDataset, PackedImages, modality_filter
from radtl.data.pack.writer import PackResult, ensure_pack, write_pack

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "NotInPackError",
    "PackError",
    "PackResult",
    "PackedDataset",
    "PackedImages",
    "ensure_pack",
    "modality_filter",
    "write_pack",
]
