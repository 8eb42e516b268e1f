"""What the values of a label map are, as the Segment Description Macro codes them (PS3.3 C.8.20.2).

A label map's values mean nothing by themselves (nnU-Net's 1 may be a tumour, TotalSegmentator's 1 is the
spleen), so the meaning comes from a **labels file**, a CSV table with one row per value::

    value,label,structure,category,type,type_modifier,region,region_modifier,colour
    1,Spleen,spleen,,,,,,
    5,,liver,,,,,,
    9,Tumour,,SCT:49755003:Morphologically Abnormal Structure,SCT:108369006:Neoplasm,,SCT:10200004:Liver,,255 0 0

Only ``value`` is required, and either ``structure`` (a name in radtl's table of codes, which fills in the
codes) or ``category`` and ``type`` (codes written ``SCHEME:VALUE:Meaning``, Segmented Property Category
CID 7150 and Type CID 7151; ``region``: Anatomic Region, CID 4; the modifiers: laterality, CID 244;
``colour``: the recommended display colour, ``R G B`` in 0..255, by default the structure's).
``label`` (Segment Label) defaults to the structure's name, or ``label <value>``. Lines starting with ``#``
are comments. A value the table does not name becomes a generic segment, "label <value>" coded as SNOMED CT
Tissue (:data:`GENERIC_CODE`, as 3D Slicer and dcmqi code an unnamed segment): a SEG can always be written,
and it says honestly that its producer did not know what the segment is.

radtl ships two tables as package data: ``segment_codes.csv``, the codes of common anatomy (the 117
classes of TotalSegmentator's ``total`` task, its SNOMED CT mapping, Apache-2.0) and findings (lung
nodule, tumour, lesion, mass; pydicom's ``codes.SCT``, PS3.16); and ``labels_totalsegmentator.csv``, the
value of each class in TotalSegmentator's label maps, which ``--labels totalsegmentator`` selects.
"""

from __future__ import annotations

import csv
import functools
import io
import os
from importlib.resources import files
from pathlib import Path

from pydicom.sr.coding import Code

from radtl.dicom.seg import Segment
from radtl.errors import RadtlError, closest

__all__ = [
    "GENERIC_CODE",
    "LABEL_TABLES",
    "LabelsFileError",
    "generic_segment",
    "parse_code",
    "parse_colour",
    "read_labels",
    "structures",
]

#: SNOMED CT Tissue (85756007), Segmented Property Category and Type of a value no labels file names.
GENERIC_CODE = Code("85756007", "SCT", "Tissue")
#: Tables radtl ships, by the name ``--labels`` takes: ``totalsegmentator`` for its ``total`` task.
LABEL_TABLES = {"totalsegmentator": "labels_totalsegmentator.csv"}
#: The columns a labels file may have.
LABEL_COLUMNS = (
    "value", "label", "structure", "category", "type", "type_modifier", "region", "region_modifier", "colour",
)


class LabelsFileError(RadtlError, ValueError):
    """A labels file (or radtl's own table of codes) that cannot be read as one."""


def parse_code(text: str, where: str = "") -> Code:
    """A code written ``SCHEME:VALUE:Meaning`` (e.g. ``SCT:10200004:Liver``) as a pydicom Code.

    Raises:
        LabelsFileError: text that is not three parts separated by colons.
    """
    parts = [part.strip() for part in text.split(":", 2)]
    if len(parts) != 3 or not all(parts):
        raise LabelsFileError(f"{where}{text!r} is not a code; write it SCHEME:VALUE:Meaning, e.g. SCT:10200004:Liver")
    scheme, value, meaning = parts
    return Code(value, scheme, meaning)


def _rows(text: str) -> list[tuple[int, dict[str, str]]]:
    """The rows of a CSV table by the first line that is not a comment, each with its line number in the file."""
    numbered = [(number, line) for number, line in enumerate(text.splitlines(), start=1)
                if line.strip() and not line.lstrip().startswith("#")]
    if not numbered:
        return []
    parsed = list(csv.reader(io.StringIO("\n".join(line for _, line in numbered))))
    header = [name.strip() for name in parsed[0]]
    return [
        (number, {key: value.strip() for key, value in zip(header, fields) if key})
        for (number, _), fields in zip(numbered[1:], parsed[1:])
    ]


def _optional_code(row: dict[str, str], column: str, where: str) -> Code | None:
    return parse_code(row[column], where) if row.get(column) else None


def parse_colour(text: str, where: str = "") -> tuple[int, int, int] | None:
    """A colour written ``R G B`` (or ``R,G,B``), each 0..255, as a tuple; None for an empty text.

    Raises:
        LabelsFileError: not three whole numbers in 0..255.
    """
    if not text.strip():
        return None
    parts = text.replace(",", " ").split()
    if len(parts) != 3 or not all(part.isdigit() and int(part) <= 255 for part in parts):
        raise LabelsFileError(f"{where}colour {text!r} is not R G B, three whole numbers in 0..255")
    return int(parts[0]), int(parts[1]), int(parts[2])


def _segment(row: dict[str, str], label: str, where: str) -> Segment:
    return Segment(
        label=label,
        category=parse_code(row["category"], where),
        property_type=parse_code(row["type"], where),
        anatomic_region=_optional_code(row, "region", where),
        property_type_modifier=_optional_code(row, "type_modifier", where),
        anatomic_region_modifier=_optional_code(row, "region_modifier", where),
        colour=parse_colour(row.get("colour", ""), where),
    )


@functools.cache
def structures() -> dict[str, Segment]:
    """radtl's table of codes (``segment_codes.csv``): each structure's name to its :class:`Segment`."""
    text = files("radtl.dicom").joinpath("segment_codes.csv").read_text(encoding="utf-8")
    return {row["name"]: _segment(row, row["name"], f"segment_codes.csv {row['name']}: ") for _, row in _rows(text)}


def generic_segment(value: int) -> Segment:
    """The segment of a value no labels file names: "label <value>", SNOMED CT Tissue (:data:`GENERIC_CODE`)."""
    return Segment(f"label {value}", GENERIC_CODE, GENERIC_CODE)


def read_labels(labels: str | os.PathLike) -> dict[int, Segment]:
    """A labels file (see the module's docstring), or the name of a table radtl ships, as value -> Segment.

    Args:
        labels: a CSV file, or a name in :data:`LABEL_TABLES` (``totalsegmentator``).

    Raises:
        LabelsFileError: an unknown column, a value that is not a positive whole number or appears twice,
            a structure radtl does not know, a row without codes, or a code not written SCHEME:VALUE:Meaning.
        FileNotFoundError: no such file.
    """
    name = os.fspath(labels)
    if name in LABEL_TABLES:
        text, source = files("radtl.dicom").joinpath(LABEL_TABLES[name]).read_text(encoding="utf-8"), name
    else:
        path = Path(name)
        if not path.is_file():
            raise FileNotFoundError(2, "no such labels file", str(path))
        text, source = path.read_text(encoding="utf-8-sig"), str(path)
    rows = _rows(text)
    columns = set().union(*(row.keys() for _, row in rows)) if rows else set()
    unknown = sorted(columns - set(LABEL_COLUMNS))
    names = ", ".join(LABEL_COLUMNS)
    if unknown:
        near = closest(unknown[0], list(LABEL_COLUMNS))
        raise LabelsFileError(f"{source}: unknown column(s) {', '.join(unknown)}; "
                              + (f"did you mean {near}? " if near else "") + f"the columns are {names}")
    if rows and "value" not in columns:
        raise LabelsFileError(f"{source}: no value column; the first line names the columns: {names}")
    known = structures()
    table: dict[int, Segment] = {}
    for line, row in rows:
        where = f"{source} line {line}: "
        try:
            value = int(row.get("value", ""))
        except ValueError:
            raise LabelsFileError(f"{where}value {row.get('value')!r} is not a whole number") from None
        if value <= 0:
            raise LabelsFileError(f"{where}value {value} is not a segment (0 is the background)")
        if value in table:
            raise LabelsFileError(f"{where}value {value} appears twice; give each value one row")
        structure = row.get("structure", "")
        label = row.get("label") or structure or f"label {value}"
        if row.get("category") or row.get("type"):
            if not (row.get("category") and row.get("type")):
                raise LabelsFileError(f"{where}give both category and type (or a structure) for value {value}")
            table[value] = _segment(row, label, where)
        elif structure:
            if structure not in known:
                raise LabelsFileError(
                    f"{where}unknown structure {structure!r}; use a name in radtl/dicom/segment_codes.csv "
                    "or give category and type codes"
                )
            colour = parse_colour(row.get("colour", ""), where) or known[structure].colour
            table[value] = Segment(label, *_codes(known[structure]), colour=colour)
        else:
            raise LabelsFileError(f"{where}value {value} has neither a structure nor category and type codes")
    return table


def _codes(segment: Segment) -> tuple:
    return (segment.category, segment.property_type, segment.anatomic_region, segment.property_type_modifier,
            segment.anatomic_region_modifier)
