"""The Basic Application Level Confidentiality Profile of DICOM PS3.15 Annex E, as data.

DICOM PS3.15 E.1 (Application Level Confidentiality Profile) lists, in Table E.1-1
("Application Level Confidentiality Profile Attributes"), the Attributes that may identify
the patient or other people and organisations, and for each one what a de-identifier does
with it under the Basic Profile (column "Basic Prof.") and under each Option (the other
columns). The table is package data, ``confidentiality_profile.csv``: one line per row that
names a single Data Element, with the tag (``GGGGEEEE``), the Attribute's name, the Basic
Profile's action code exactly as the table writes it, and the codes of ten Options' columns
(:data:`OPTION_COLUMNS`). :data:`BASIC_PROFILE` is its Basic column keyed by the tag as an
``int`` (``0xGGGGEEEE``). The rows that name
a range of tags (Curve Data (50xx,xxxx), Overlay Data (60xx,3000), Overlay Comments
(60xx,4000) and Private Attributes (gggg,eeee) with an odd group) are rules, applied by
:func:`basic_profile_action`. Retired Attributes keep their rows: old objects still carry
them.

The table follows the edition of PS3.15 published as current at dicom.nema.org, 2026c.
Editions after 2024b added rows (Person Names to Use (0010,0011), the Gender Identity and
Sex Parameters for Clinical Use Attributes (0010,0041)-(0010,0047), the diagnosis code
sequences (0008,1301)-(0008,1304), the waveform annotation Attributes of group 0040, ...)
without changing the codes of 2024b's rows. Earlier editions differ in places: Patient
ID (0010,0020), for instance, was ``Z`` and is ``Z/D``.

The Options' columns come from an edition of about 2020 (a stored copy of PS3.15 that names
no edition): 438 of the 652 rows have them; the Basic codes of that edition agree with
2026c's on all rows but three (Patient ID, Treatment Machine Name, Treatment Site).

Action codes (PS3.15 E.1.1):

``D``
    replace with a non-zero length value, which may be a dummy value, consistent with the VR.
``Z``
    replace with a zero length value, or with a non-zero length dummy value consistent
    with the VR.
``X``
    remove.
``K``
    keep (unchanged for non-Sequence Attributes, cleaned for Sequences).
``C``
    clean: replace with values of similar meaning known not to contain identifying
    information, consistent with the VR.
``U``
    replace with a non-zero length UID that is internally consistent within a set of
    Instances (the same original UID always gets the same replacement).

``K`` and ``C`` occur only in the Options' columns; the Basic Profile column uses the
others and these compounds, which depend on the Attribute's Type in the IOD of the object
being de-identified:

``Z/D``
    ``Z`` unless ``D`` is needed to keep the IOD conformant (Type 2 versus Type 1).
``X/Z``
    ``X`` unless ``Z`` is needed (Type 3 versus Type 2).
``X/D``
    ``X`` unless ``D`` is needed (Type 3 versus Type 1).
``X/Z/D``
    ``X`` unless ``Z`` or ``D`` is needed (Type 3 versus Type 2 versus Type 1).
``X/Z/U*``
    ``X`` unless ``Z``, or replacing the UIDs of the Instances the Sequence references
    (``U``), is needed (Type 3 versus Type 2 versus Type 1 Sequences of UID references).

Every code above changes or drops the value, so for an index that must hold no PHI an
Attribute with any action is one to leave out (or, for ``U``, to store only as a
consistent replacement UID: :func:`is_uid_replacement`). An Attribute the table does not
list, such as Modality or Rows, has no action under the Basic Profile and
:func:`basic_profile_action` returns ``None`` for it. The profile also removes every
Private Attribute unless the Retain Safe Private Option keeps it, so an odd group gets
``X``.

Options (PS3.15 E.3) keep or clean what the Basic Profile would remove. Each has a column
in Table E.1-1 whose cells are ``K`` (keep) or ``C`` (clean) for the Attributes it concerns;
:func:`profile_action` gives an Attribute's action under the Basic Profile with the Options
a de-identifier applies, and :data:`OPTIONS` lists the Options radtl offers, with the code
of each in CID 7050 for the De-identification Method Code Sequence (0012,0064). The
Options' columns come from an earlier edition of the table than the Basic column; rows
added since have no Option cells, so the Basic Profile applies to them whatever the
Options, the safe direction.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib.resources import files
from types import MappingProxyType

from pydicom.tag import BaseTag

__all__ = [
    "BASIC_PROFILE",
    "BASIC_PROFILE_CODE",
    "OPTIONS",
    "OPTION_COLUMNS",
    "SAFE_PRIVATE",
    "ProfileOption",
    "SafePrivateAttribute",
    "basic_profile_action",
    "is_safe_private",
    "is_uid_replacement",
    "option_cell",
    "profile_action",
]

#: The package-data file holding Table E.1-1 (single-tag rows): tag, name, basic, then :data:`OPTION_COLUMNS`.
TABLE_FILE = "confidentiality_profile.csv"
#: The package-data file holding Table E.3.10-1, Safe Private Attributes: group, element_byte, private_creator, ...
SAFE_PRIVATE_FILE = "safe_private_attributes.csv"

#: Table E.1-1's Option columns, in the table's order, as named in :data:`TABLE_FILE`.
OPTION_COLUMNS = (
    "safe_private",  # Rtn. Safe Priv. Opt. (E.3.10)
    "uids",  # Rtn. UIDs Opt. (E.3.9)
    "device",  # Rtn. Dev. Id. Opt. (E.3.8)
    "institution",  # Rtn. Inst. Id. Opt. (E.3.11)
    "patient_chars",  # Rtn. Pat. Chars. Opt. (E.3.7)
    "full_dates",  # Rtn. Long. Full Dates Opt. (E.3.6)
    "modified_dates",  # Rtn. Long. Modif. Dates Opt. (E.3.6)
    "clean_desc",  # Clean Desc. Opt. (E.3.5)
    "clean_struct",  # Clean Struct. Cont. Opt. (E.3.4)
    "clean_graph",  # Clean Graph. Opt. (E.3.3)
)


def _read_table() -> tuple[dict[int, str], dict[str, dict[int, str]]]:
    """The Basic column and each Option's column (only its ``K``/``C`` cells) of :data:`TABLE_FILE`."""
    text = files("radtl.dicom").joinpath(TABLE_FILE).read_text(encoding="utf-8")
    basic: dict[int, str] = {}
    options: dict[str, dict[int, str]] = {column: {} for column in OPTION_COLUMNS}
    for row in csv.DictReader(io.StringIO(text)):
        tag = int(row["tag"], 16)
        basic[tag] = row["basic"]
        for column in OPTION_COLUMNS:
            if row[column]:
                options[column][tag] = row[column]
    return basic, options

_BASIC_COLUMN, _OPTION_CELLS = _read_table()

BASIC_PROFILE: Mapping[int, str] = MappingProxyType(_BASIC_COLUMN)
"""Tag (``0xGGGGEEEE``) to the Basic Profile's action code, for each single-tag row of Table E.1-1."""

# The table's rows that name a range of tags rather than one Data Element, as
# (group mask, group, element mask, element, action, name): a tag matches when
# ``tag_group & group_mask == group`` and ``tag_element & element_mask == element``.
# The repeating groups 50xx and 60xx are the even groups 5000-50FE and 6000-60FE;
# their odd groups are private and already removed as such.
_REPEATING_GROUP_ROWS = (
    (0xFF00, 0x5000, 0x0000, 0x0000, "X", "Curve Data (50xx,xxxx) (retired)"),
    (0xFF00, 0x6000, 0xFFFF, 0x3000, "X", "Overlay Data (60xx,3000)"),
    (0xFF00, 0x6000, 0xFFFF, 0x4000, "X", "Overlay Comments (60xx,4000) (retired)"),
)

# Private Attributes (gggg,eeee) where gggg is odd: removed unless the Retain Safe
# Private Option keeps them.
_PRIVATE_ACTION = "X"


def basic_profile_action(tag: int | BaseTag) -> str | None:
    """The Basic Profile's action code for ``tag`` (PS3.15 Table E.1-1), or ``None`` if it keeps it.

    ``tag`` is the tag as ``0xGGGGEEEE`` (a pydicom :class:`~pydicom.tag.BaseTag` is one).
    Besides the rows of :data:`BASIC_PROFILE`, the table's rules for Curve Data
    (50xx,xxxx), Overlay Data (60xx,3000) and Overlay Comments (60xx,4000) apply to every
    group of their range, and a private tag (odd group) gets ``"X"``. ``None`` means the
    table does not list the Attribute, so the profile leaves it as it is.

    Raises :class:`ValueError` for a number outside ``0`` to ``0xFFFFFFFF``.
    """
    tag = int(tag)
    if not 0 <= tag <= 0xFFFFFFFF:
        raise ValueError(f"not a DICOM tag: {tag:#x}")
    action = BASIC_PROFILE.get(tag)
    if action is not None:
        return action
    group, element = tag >> 16, tag & 0xFFFF
    if group % 2:
        return _PRIVATE_ACTION
    for group_mask, group_value, element_mask, element_value, row_action, _name in _REPEATING_GROUP_ROWS:
        if group & group_mask == group_value and element & element_mask == element_value:
            return row_action
    return None


def is_uid_replacement(action: str) -> bool:
    """Whether ``action`` replaces UIDs: ``U``, or a compound ending in ``U`` (``X/Z/U*``).

    For a UID Attribute such an action means the value is replaced consistently across a
    set of Instances rather than dropped; for a Sequence (``X/Z/U*``) it means the
    Instance UIDs the Sequence references are.
    """
    return action.split("/")[-1].rstrip("*") == "U"


# ---- the Options (PS3.15 E.3) ----

#: The Basic Profile's code in CID 7050 (De-identification Method), for (0012,0064): (value, scheme, meaning).
BASIC_PROFILE_CODE = ("113100", "DCM", "Basic Application Confidentiality Profile")


@dataclass(frozen=True)
class ProfileOption:
    """One Option of PS3.15 E.3 that radtl offers.

    Args:
        name: radtl's name for it on the command line, e.g. ``retain-longitudinal-dates``.
        title: the standard's name.
        section: its section of PS3.15 Annex E.
        code: its code in CID 7050 for the De-identification Method Code Sequence (0012,0064):
            (Code Value, Coding Scheme Designator, Code Meaning).
        column: its column of Table E.1-1, one of :data:`OPTION_COLUMNS`.
    """

    name: str
    title: str
    section: str
    code: tuple[str, str, str]
    column: str


def _option(name: str, title: str, section: str, code_value: str, column: str) -> ProfileOption:
    return ProfileOption(name, title, section, (code_value, "DCM", title), column)


#: The Options radtl offers, by radtl's name. The others are not offered: Clean Pixel Data, Clean Recognizable
#: Visual Features, Clean Graphics and Clean Structured Content need a cleaner radtl does not have (files whose
#: pixels may carry text are left out instead, see :func:`radtl.dicom.deidentifier.burned_in_reason`); Retain
#: UIDs and Retain Longitudinal Temporal Information with Full Dates would keep what links a cohort to its source.
OPTIONS: Mapping[str, ProfileOption] = MappingProxyType({
    option.name: option
    for option in (
        _option("retain-safe-private", "Retain Safe Private Option", "E.3.10", "113111", "safe_private"),
        _option("retain-device-identity", "Retain Device Identity Option", "E.3.8", "113109", "device"),
        _option("retain-institution-identity", "Retain Institution Identity Option", "E.3.11", "113112",
                "institution"),
        _option("retain-patient-characteristics", "Retain Patient Characteristics Option", "E.3.7", "113108",
                "patient_chars"),
        _option("retain-longitudinal-dates", "Retain Longitudinal Temporal Information Modified Dates Option",
                "E.3.6", "113107", "modified_dates"),
        _option("clean-descriptions", "Clean Descriptors Option", "E.3.5", "113105", "clean_desc"),
    )
})


def option_cell(tag: int | BaseTag, option: str) -> str | None:
    """``tag``'s cell in ``option``'s column of Table E.1-1: ``"K"``, ``"C"`` or ``None`` (empty).

    Private tags (odd group) have the Retain Safe Private Option's ``C`` (the table's "Private
    Attributes" row): kept when :func:`is_safe_private` says so.
    """
    column = OPTIONS[option].column
    tag = int(tag)
    if tag >> 16 & 1:
        return "C" if column == "safe_private" else None
    return _OPTION_CELLS[column].get(tag)


def profile_action(tag: int | BaseTag, options: Iterable[str] = ()) -> str | None:
    """``tag``'s action under the Basic Profile with ``options`` (names of :data:`OPTIONS`), or ``None``.

    An Option whose column has a cell for the Attribute overrides the Basic code (PS3.15 E.3:
    each Option keeps, ``K``, or cleans, ``C``, what the Basic Profile would remove). When two
    Options given both have a cell, ``C`` wins over ``K``: cleaning keeps less. An Attribute
    no Option names keeps the Basic code of :func:`basic_profile_action`.

    Raises:
        KeyError: an option name that is not in :data:`OPTIONS`.
    """
    basic = basic_profile_action(tag)
    cells = {option_cell(tag, option) for option in options} - {None}
    if basic is None or not cells:
        return basic
    return "C" if "C" in cells else "K"


# ---- the Retain Safe Private Option (PS3.15 E.3.10) ----

#: Value Representations radtl never keeps in a private attribute, listed or not: PS3.15 E.3.10 Note 2 calls OB
#: "particularly unsafe" (whole proprietary headers, names included); UN and SQ can hold anything.
UNSAFE_PRIVATE_VRS = frozenset({"OB", "OW", "UN", "SQ"})


@dataclass(frozen=True)
class SafePrivateAttribute:
    """One row of PS3.15 Table E.3.10-1, Safe Private Attributes: ``(gggg,xxEE)`` of a Private Creator."""

    group: int
    element_byte: int
    private_creator: str
    vr: str
    meaning: str


def _read_safe_private() -> dict[tuple[int, int, str], SafePrivateAttribute]:
    text = files("radtl.dicom").joinpath(SAFE_PRIVATE_FILE).read_text(encoding="utf-8")
    rows = (SafePrivateAttribute(int(row["group"], 16), int(row["element_byte"], 16), row["private_creator"],
                                 row["vr"], row["meaning"]) for row in csv.DictReader(io.StringIO(text)))
    return {(row.group, row.element_byte, row.private_creator): row for row in rows}


SAFE_PRIVATE: Mapping[tuple[int, int, str], SafePrivateAttribute] = MappingProxyType(_read_safe_private())
"""Table E.3.10-1 by (group, element byte, Private Creator), as the edition of the Options' columns lists it."""


def is_safe_private(private_creator: str, tag: int | BaseTag, vr: str | None = None) -> bool:
    """Whether the Retain Safe Private Option keeps the private attribute ``tag`` of block ``private_creator``.

    PS3.15 E.3.10 lets a de-identifier keep the private attributes it knows to be safe, with
    their Private Creator; radtl knows those of Table E.3.10-1 (:data:`SAFE_PRIVATE`), matched
    by group, the element's low byte (``(gggg,xxEE)``) and the Private Creator exactly as
    written (trailing spaces aside). radtl is stricter than the table, after the section's
    Note 2: the attribute's ``vr``, when known, must be the one the table lists (a row that
    lists none is not kept), and none of :data:`UNSAFE_PRIVATE_VRS` is kept even when listed.
    """
    tag = int(tag)
    row = SAFE_PRIVATE.get((tag >> 16, tag & 0xFF, private_creator.rstrip(" \0")))
    if row is None or not tag >> 16 & 1 or tag & 0xFF00 == 0:
        return False
    if row.vr in UNSAFE_PRIVATE_VRS or (vr is not None and vr in UNSAFE_PRIVATE_VRS):
        return False
    return bool(row.vr) and (vr is None or vr == row.vr)  # a row without a VR in the table cannot be checked
