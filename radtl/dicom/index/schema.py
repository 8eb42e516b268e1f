"""The parts of the index's layout that need no DICOM reader, so that querying an index imports no pydicom.

- :data:`BOOKKEEPING_TYPES`: radtl's own columns (where a row comes from, what happened reading it) and their
  Arrow types by name (:func:`pyarrow.type_for_alias`); :mod:`~radtl.dicom.index.header` builds the Arrow schema
  from them and :mod:`~radtl.dicom.index.store` the DuckDB view.
- :class:`HeaderOptions`: what goes into a row.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["BOOKKEEPING_TYPES", "HeaderOptions"]

#: radtl's own columns: where the row comes from and what happened reading it, with their Arrow type names.
BOOKKEEPING_TYPES: dict[str, str] = {
    "path": "string",
    "file_size": "int64",
    "mtime_ns": "int64",
    "index_part": "string",
    "status": "string",
    "reason": "string",
    "warnings": "string",
    "invalid_values": "string",
}


@dataclass(frozen=True)
class HeaderOptions:
    """What goes into a row.

    Args:
        include_private: index private attributes as ``Private_GGGG_EEEE`` text columns.
        exclude_phi: leave out the attributes the Basic Application Level Confidentiality
            Profile removes or blanks (PS3.15 E.1-1); the UIDs it replaces are replaced by
            ``2.25`` UIDs hashed from the original, so studies and series still group.
            Private attributes are never indexed with it.
        max_split: how many ``Name0, Name1, ...`` columns a multi-valued attribute gets.
        max_text_length: characters kept of one text value (longer ones are cut and noted).
    """

    include_private: bool = False
    exclude_phi: bool = False
    max_split: int = 16
    max_text_length: int = 10_000
