"""One DICOM file's header as one row of the metadata index.

RadiologyNET parsed every header of its archive into a table, one row per file and one
column per attribute, with multi-valued attributes split (``WindowCenter`` "[1134, 423]" into
``WindowCenter0``, ``WindowCenter1``) and derived ``PixelDataShape`` and ``IsRGB`` columns
(thesis 2.2 and 2.3.2). This module makes that row.

A column's type comes from the DICOM data dictionary (PS3.6), never from the values one
file happens to hold, so every file, partition and run agrees on it:

- integer VRs (IS, US, SS, UL, SL, SV, UV) are ``int64``; DS, FL, FD are ``float64``;
- text VRs (CS, LO, SH, PN, DA, TM, DT, UI, AS, ...) are strings, as encoded;
- a sequence (SQ) is its number of items (its content is not flattened);
- binary values (OB, OW, OF, OD, OL, OV, UN) are not indexed;
- an attribute the dictionary allows several values (VM other than 1) is a list, and also
  split into ``Name0, Name1, ...`` (the first :attr:`HeaderOptions.max_split`).

A value that does not fit its column (``SliceThickness`` "abc", a second value of a VM 1
attribute) does not fail the file: it is left out, or the first value kept, and the
``invalid_values`` column says what was found. Repeating-group attributes (overlays,
PS3.5 7.6) get their group in the name (``OverlayRows_6000``); private attributes are
``Private_GGGG_EEEE`` text columns, indexed on request.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from pydicom.datadict import dictionary_VM, dictionary_VR, keyword_for_tag, tag_for_keyword
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag, Tag

from radtl.dicom.deidentification import basic_profile_action, is_uid_replacement
from radtl.dicom.errors import ELEMENT_VALUE_ERRORS
from radtl.dicom.index.schema import BOOKKEEPING_TYPES, HeaderOptions

__all__ = [
    "BOOKKEEPING_COLUMNS",
    "DERIVED_COLUMNS",
    "ColumnKind",
    "HeaderOptions",
    "arrow_schema",
    "column_attribute",
    "header_row",
    "split_base",
]

#: radtl's own columns: where the row comes from and what happened reading it.
BOOKKEEPING_COLUMNS: dict[str, pa.DataType] = {name: pa.type_for_alias(kind) for name, kind in BOOKKEEPING_TYPES.items()}

#: Columns computed from the header, as the study added them (``NumberOfFrames`` is 1 for a single-frame image).
DERIVED_COLUMNS: dict[str, pa.DataType] = {
    "HasPixelData": pa.bool_(),
    "PixelDataShape": pa.list_(pa.int64()),
    "IsRGB": pa.bool_(),
    "NumberOfFrames": pa.int64(),
}

_INTEGER_VRS = {"IS", "US", "SS", "UL", "SL", "SV", "UV"}
_FLOAT_VRS = {"DS", "FL", "FD"}
_BINARY_VRS = {"OB", "OW", "OF", "OD", "OL", "OV", "UN"}
_PIXEL_DATA_TAGS = {0x7FE00008, 0x7FE00009, 0x7FE00010}
_INT64 = (-(2**63), 2**63 - 1)
_REPEATING_GROUPS = (0x5000, 0x6000)  # curves and overlays: 50xx, 60xx (PS3.5 7.6)


class ColumnKind:
    """How a column's values are stored: the arrow types of the index."""

    INTEGER = "integer"
    FLOAT = "float"
    TEXT = "text"
    SEQUENCE = "sequence"


_ARROW = {ColumnKind.INTEGER: pa.int64(), ColumnKind.FLOAT: pa.float64(), ColumnKind.TEXT: pa.string(),
          ColumnKind.SEQUENCE: pa.int64()}


@dataclass(frozen=True)
class _Column:
    name: str
    kind: str
    multi: bool


@functools.lru_cache(maxsize=8192)
def _column_for_public_tag(tag: int) -> _Column | None:
    """The column of a public attribute from the data dictionary; None when it is not indexed."""
    group = tag >> 16
    if tag & 0xFFFF == 0 or tag in _PIXEL_DATA_TAGS or group == 0xFFFE:
        return None  # group lengths, pixel data, item delimiters
    try:
        vr, vm, keyword = dictionary_VR(tag), dictionary_VM(tag), keyword_for_tag(tag)
    except KeyError:
        return _Column(f"Tag_{group:04X}_{tag & 0xFFFF:04X}", ColumnKind.TEXT, False)
    candidates = [v.strip() for v in vr.split(" or ")]
    if any(v in _BINARY_VRS for v in candidates):
        return None
    first = candidates[0]
    kind = (ColumnKind.INTEGER if first in _INTEGER_VRS else ColumnKind.FLOAT if first in _FLOAT_VRS
            else ColumnKind.SEQUENCE if first == "SQ" else ColumnKind.TEXT)
    name = keyword or f"Tag_{group:04X}_{tag & 0xFFFF:04X}"
    if group & 0xFF00 in _REPEATING_GROUPS:
        name = f"{name}_{group:04X}"
    return _Column(name, kind, vm != "1" and kind != ColumnKind.SEQUENCE)


def column_attribute(name: str) -> tuple[str | None, str | None]:
    """``(keyword, dictionary VR)`` of the attribute behind an index column, or ``(None, None)``.

    Split columns (``WindowCenter1``) answer for their attribute (``WindowCenter``); radtl's
    own columns, private and unknown attributes have none.
    """
    keyword = split_base(name) or name
    tag = tag_for_keyword(keyword)
    return (keyword, dictionary_VR(tag)) if tag is not None else (None, None)


_SPLIT = re.compile(r"^([A-Za-z]+?)(\d+)$")


@functools.lru_cache(maxsize=8192)
def split_base(name: str) -> str | None:
    """The attribute a split column belongs to (``WindowCenter1`` -> ``WindowCenter``), else None."""
    match = _SPLIT.match(name)
    if not match or tag_for_keyword(name) is not None:
        return None
    tag = tag_for_keyword(match.group(1))
    return match.group(1) if tag is not None and dictionary_VM(tag) != "1" else None


def _as_list(value: Any) -> list:
    if value is None or value == "" or value == b"":
        return []
    if isinstance(value, (MultiValue, list, tuple)):
        return [v for v in value if v is not None and v != ""]
    return [value]


def _to_text(value: Any) -> str:
    if isinstance(value, bytes):
        text = value.rstrip(b"\x00 ").decode("ascii")  # UnicodeDecodeError: a binary value, noted by the caller
        if not text.isprintable():
            raise ValueError("binary value")
        return text
    return str(value)


def _is_text(value: Any) -> bool:
    """Whether a binary (UN, OB) value is in fact printable ASCII text, as private text in implicit VR files is."""
    try:
        _to_text(value)
    except (ValueError, UnicodeDecodeError):
        return False
    return True


def _convert(values: list, kind: str) -> list:
    if kind == ColumnKind.INTEGER:
        converted = [int(v) if not isinstance(v, str) else int(v.strip()) for v in values]
        if any(not _INT64[0] <= v <= _INT64[1] for v in converted):
            raise OverflowError("outside the 64-bit integer range")
        return converted
    if kind == ColumnKind.FLOAT:
        return [float(v) for v in values]
    return [_to_text(v) for v in values]


def _uid_replacement(value: str) -> str:
    """A ``2.25`` UID (PS3.5 B.2) from 128 bits of the SHA-256 of ``value``: one original, one replacement (PS3.15 E.1, action U)."""
    return f"2.25.{int(hashlib.sha256(value.encode()).hexdigest()[:32], 16)}"


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _element_columns(ds: Dataset, tag: BaseTag, options: HeaderOptions, row: dict, types: dict, notes: list) -> None:
    if tag.is_private:
        if not options.include_private or options.exclude_phi or tag.element < 0x10:
            return
        column = _Column(f"Private_{tag.group:04X}_{tag.element:04X}", ColumnKind.TEXT, False)
    else:
        column = _column_for_public_tag(int(tag))
        if column is None:
            return
    action = basic_profile_action(tag) if options.exclude_phi else None
    if action and not is_uid_replacement(action):
        return
    if column.name in row:
        return  # a group 0002 attribute repeated in the dataset: the File Meta Information's value stands
    try:
        element = ds[tag]
        value = element.value
        if element.VR == "SQ" or isinstance(value, Sequence):
            if column.kind != ColumnKind.SEQUENCE:
                raise TypeError("a sequence where the dictionary has a value")
            values = [len(value)]
        elif column.kind == ColumnKind.SEQUENCE:
            raise TypeError(f"a {element.VR} value where the dictionary has a sequence")
        elif tag.is_private and (element.VR in _BINARY_VRS and not _is_text(value)):
            return  # binary, not indexed (as public binary attributes)
        else:
            values = _convert(_as_list(value), column.kind)
    except (*ELEMENT_VALUE_ERRORS, KeyError, IndexError, EOFError) as error:
        notes.append(f"{column.name}: {type(error).__name__} ({_short(error)})")
        return
    if tag.is_private and len(values) > 1:
        values = ["\\".join(values)]  # the private dictionary's VM is unknown: the values as DICOM encodes them
    if not values:
        return
    if action and column.kind == ColumnKind.TEXT:  # a UID the profile replaces (a sequence keeps its item count)
        values = [_uid_replacement(v) for v in values]
    if column.kind == ColumnKind.TEXT:
        cut = [v[: options.max_text_length] for v in values]
        if cut != values:
            notes.append(f"{column.name}: text cut to {options.max_text_length} characters")
        values = cut
    arrow = _ARROW[column.kind]
    if column.multi:
        row[column.name], types[column.name] = values, pa.list_(arrow)
        for index, value in enumerate(values[: options.max_split]):
            row[f"{column.name}{index}"], types[f"{column.name}{index}"] = value, arrow
        return
    if len(values) > 1:
        notes.append(f"{column.name}: {len(values)} values where the dictionary allows 1 (the first is kept)")
    row[column.name], types[column.name] = values[0], arrow


def _positive(ds: Dataset, keyword: str, default: int | None = None) -> int | None:
    try:
        value = int(ds.get(keyword))
    except ELEMENT_VALUE_ERRORS:  # a value whose bytes do not fit its VR is noted by _element_columns
        return default
    return value if value > 0 else default


def _derived(ds: Dataset, has_pixel_data: bool) -> dict[str, Any]:
    """``HasPixelData``, and for images ``NumberOfFrames``, ``IsRGB`` and ``PixelDataShape`` (pydicom's array shape)."""
    derived: dict[str, Any] = {"HasPixelData": has_pixel_data}
    if not has_pixel_data:
        return derived
    frames = _positive(ds, "NumberOfFrames", default=1)
    samples = _positive(ds, "SamplesPerPixel", default=1)
    rows, columns = _positive(ds, "Rows"), _positive(ds, "Columns")
    photometric = str(ds.get("PhotometricInterpretation", "")).upper()
    derived["NumberOfFrames"] = frames
    derived["IsRGB"] = samples == 3 or photometric.startswith(("RGB", "YBR")) or photometric == "PALETTE COLOR"
    if rows and columns:
        derived["PixelDataShape"] = ([frames] if frames > 1 else []) + [rows, columns] + ([samples] if samples > 1 else [])
    return derived


def header_row(ds: Dataset, has_pixel_data: bool, options: HeaderOptions = HeaderOptions()) -> tuple[dict, dict, list[str]]:
    """The index columns of one dataset: ``(values, arrow types, notes on values that did not fit)``.

    Args:
        ds: the dataset as read (header only is enough); its File Meta Information is included.
        has_pixel_data: whether the file holds Pixel Data (the header read stops before it).
        options: private attributes, the PHI guard, splitting and text limits.
    """
    row: dict[str, Any] = {}
    types: dict[str, pa.DataType] = {}
    notes: list[str] = []
    for source in (getattr(ds, "file_meta", None) or Dataset(), ds):
        for tag in list(source.keys()):
            _element_columns(source, Tag(tag), options, row, types, notes)
    for name, value in _derived(ds, has_pixel_data).items():
        row[name], types[name] = value, DERIVED_COLUMNS[name]
    return row, types, notes


def arrow_schema(names: Iterable[str], types: dict[str, pa.DataType]) -> pa.Schema:
    """The schema of a part: radtl's columns first, then the attributes by name."""
    attributes = sorted(n for n in names if n not in BOOKKEEPING_COLUMNS)
    return pa.schema([pa.field(n, t) for n, t in BOOKKEEPING_COLUMNS.items()] + [pa.field(n, types[n]) for n in attributes])
