"""De-identifying one DICOM data set under the PS3.15 Basic Application Level Confidentiality Profile.

DICOM PS3.15 E.1.1 lists what a de-identifier must do; :class:`Deidentifier` does it for one data set at a
time, driven by PS3.15 Table E.1-1 as :mod:`radtl.dicom.deidentification` holds it (the Basic Profile's column
and the Options' columns, :func:`~radtl.dicom.deidentification.profile_action`):

- every Attribute, in sequences and their nested items too, gets its action: ``D`` (a dummy value for its VR,
  :data:`DUMMY_VALUES`), ``Z`` (empty), ``X`` (removed), ``U`` (a replacement UID), ``K`` (kept) or ``C``
  (cleaned: dates shifted, descriptions checked), :meth:`Deidentifier.deidentify` says how compound codes are
  resolved;
- every UID that is not one the standard defines is replaced consistently (:meth:`DeidentificationKeys.uid`),
  so studies, series, frames of reference and references between instances still hold;
- Patient ID and Patient's Name become one pseudonym per patient, recorded in a mapping kept apart from the
  cohort (:class:`DeidentificationKeys`), which can be withheld;
- Private Attributes are removed, unless the Retain Safe Private Option (PS3.15 E.3.10) keeps them;
- Patient Identity Removed, De-identification Method and its code sequence say what was done (PS3.15 E.1.1
  requirement 7; PS3.3 C.7.1.1).

What it does not do: text burned into the pixels is not removed; such data sets are refused unless the caller
allows them (:func:`burned_in_reason`). No original value is ever logged.
"""

from __future__ import annotations

import base64
import csv
import datetime
import fcntl
import hashlib
import hmac
import io
import logging
import os
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pydicom
from pydicom._uid_dict import UID_dictionary
from pydicom.datadict import keyword_for_tag
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag, Tag
from pydicom.uid import PYDICOM_ROOT_UID, UID, ExplicitVRLittleEndian, generate_uid

import radtl
from radtl.atomic import atomic_path, temporary_path
from radtl.dicom.deidentification import BASIC_PROFILE_CODE, OPTIONS, is_safe_private, profile_action
from radtl.dicom.errors import ELEMENT_VALUE_ERRORS
from radtl.dicom.io import is_uid
from radtl.errors import RadtlError, UsageError, closest

__all__ = [
    "DUMMY_VALUES",
    "IMPLEMENTATION_CLASS_UID",
    "IMPLEMENTATION_VERSION_NAME",
    "MAX_ELEMENTS",
    "MAX_SEQUENCE_DEPTH",
    "DeidentificationError",
    "DeidentificationKeys",
    "DeidentificationSettings",
    "Deidentifier",
    "burned_in_reason",
]

logger = logging.getLogger(__name__)

#: radtl's Implementation Class UID (PS3.7 D.3.3.2), under pydicom's root, fixed for every radtl release.
IMPLEMENTATION_CLASS_UID = generate_uid(prefix=PYDICOM_ROOT_UID, entropy_srcs=["radtl", "implementation class"])
#: Implementation Version Name (SH, at most 16 characters) of the files radtl writes.
IMPLEMENTATION_VERSION_NAME = f"RADTL_{radtl.__version__}"[:16]

#: A data set nested deeper than this many sequence levels is refused (real objects nest a handful).
MAX_SEQUENCE_DEPTH = 16
#: A data set with more elements than this, all items counted, is refused (a large enhanced multi-frame holds
#: some tens of thousands).
MAX_ELEMENTS = 1_000_000

#: The dummy value of action ``D`` for each VR (PS3.5 6.2): valid for the VR, non-empty, and recognisable as
#: a dummy. Numbers become 0; UIDs are replaced (:meth:`DeidentificationKeys.uid`) rather than dummied;
#: sequences keep their items with every text value dummied (:meth:`Deidentifier.deidentify`).
DUMMY_VALUES: dict[str, object] = {
    "AE": "ANONYMOUS",
    "AS": "000D",
    "CS": "ANONYMIZED",
    "DA": "19000101",
    "DT": "19000101000000",
    "LO": "ANONYMIZED",
    "LT": "ANONYMIZED",
    "PN": "ANONYMOUS",
    "SH": "ANONYMIZED",
    "ST": "ANONYMIZED",
    "TM": "000000",
    "UC": "ANONYMIZED",
    "UR": "urn:radtl:anonymized",
    "UT": "ANONYMIZED",
    "DS": "0",
    "IS": "0",
    "FL": 0.0,
    "FD": 0.0,
    "SL": 0,
    "SS": 0,
    "SV": 0,
    "UL": 0,
    "US": 0,
    "UV": 0,
    "AT": 0,
    "OB": b"\x00\x00",
    "OD": b"\x00" * 8,
    "OF": b"\x00" * 4,
    "OL": b"\x00" * 4,
    "OV": b"\x00" * 8,
    "OW": b"\x00\x00",
    "UN": b"\x00\x00",
}

#: The VRs of free text: dummied inside a sequence whose action is ``D``, checked by Clean Descriptors.
_TEXT_VRS = frozenset({"SH", "LO", "ST", "LT", "UT", "UC", "PN"})
_DATE_VRS = frozenset({"DA", "DT", "TM"})

#: DICOM's own root (PS3.5 9.1): UIDs under it are defined by the standard (classes, syntaxes, contexts), never
#: an instance's.
_DICOM_ROOT = "1.2.840.10008."

_PATIENT_ID = 0x00100020
_PATIENT_NAME = 0x00100010
_PATIENT_KEY_FALLBACK = "StudyInstanceUID"

#: The Secondary Capture Image Storage SOP Classes (PS3.4 B.5): captured screens, scanned documents.
_SECONDARY_CAPTURE_CLASSES = frozenset(f"1.2.840.10008.5.1.4.1.1.7{suffix}" for suffix in ("", ".1", ".2", ".3", ".4"))
#: The ultrasound Image Storage SOP Classes (PS3.4 B.5, retired ones included): ultrasound screens carry text.
_ULTRASOUND_CLASSES = frozenset(
    f"1.2.840.10008.5.1.4.1.1.{suffix}" for suffix in ("3", "3.1", "6", "6.1", "6.2")
)


class DeidentificationError(RadtlError, ValueError):
    """A data set that cannot be de-identified safely; ``str()`` is the reason a manifest records."""

    hint = "the file is left out of the export; its reason is in the manifest"


@dataclass(frozen=True)
class DeidentificationSettings:
    """What to de-identify beyond the Basic Profile: the Options of PS3.15 E.3 and whether burned-in pixels pass.

    Args:
        options: names from :data:`radtl.dicom.deidentification.OPTIONS` (``"retain-longitudinal-dates"``, ...).
        allow_burned_in: de-identify data sets whose pixels may carry identifying text (:func:`burned_in_reason`)
            instead of refusing them.
    """

    options: frozenset[str] = frozenset()
    allow_burned_in: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "options", frozenset(self.options))
        for name in self.options:
            _check_option(name)

    @classmethod
    def from_text(
        cls, options: str | Iterable[str] | None = None, allow_burned_in: bool = False
    ) -> DeidentificationSettings:
        """Settings from the command line's ``--options a,b`` (or a list of names), validated.

        Args:
            options: comma-separated option names, or an iterable of them; None or ``""`` for the Basic Profile
                alone.
            allow_burned_in: as in the class.

        Raises :class:`~radtl.errors.UsageError` for an unknown name, naming the closest supported one.
        """
        if options is None:
            names: list[str] = []
        elif isinstance(options, str):
            names = [name.strip() for name in options.split(",")]
        else:
            names = [str(name).strip() for name in options]
        return cls(frozenset(name for name in names if name), allow_burned_in)

    def _ordered_options(self) -> list[str]:
        return sorted(self.options, key=lambda name: OPTIONS[name].code[0])

    def method_codes(self) -> list[tuple[str, str, str]]:
        """The De-identification Method Code Sequence's codes (CID 7050): the Basic Profile, then each option."""
        return [BASIC_PROFILE_CODE, *(OPTIONS[name].code for name in self._ordered_options())]

    def method_description(self) -> str:
        """The De-identification Method (0012,0063) text, at most 64 characters (LO, PS3.5 6.2).

        The profile, the options by their PS3.15 section, and radtl's version, e.g. ``"PS3.15 E.1 Basic Profile;
        options E.3.5,E.3.6; radtl 0.1.0"``; when that is too long, the number of options only (their codes
        are in the De-identification Method Code Sequence, :meth:`method_codes`).
        """
        version = f"radtl {radtl.__version__}"
        sections = ",".join(OPTIONS[name].section for name in self._ordered_options())
        full = "; ".join(["PS3.15 E.1 Basic Profile", *([f"options {sections}"] if sections else []), version])
        if len(full) <= 64:
            return full
        return f"PS3.15 E.1 Basic Profile + {len(self.options)} options (0012,0064); {version}"[:64]


def _check_option(name: str) -> None:
    if name in OPTIONS:
        return
    supported = sorted(OPTIONS)
    guess = closest(name, supported)
    raise UsageError(
        f"unknown de-identification option {name!r}" + (f"; did you mean {guess!r}?" if guess else ""),
        hint=f"the supported options are {', '.join(supported)}",
    )


class DeidentificationKeys:
    """The secret salt and the pseudonym mapping, in a folder kept outside the cohort.

    The folder holds ``salt`` (32 random bytes, mode 0600), from which every replacement UID, pseudonym and date
    offset derives by HMAC-SHA256 (RFC 2104): the same original gives the same replacement in every file and
    every run with this folder, and nobody without the salt can recompute one from a guessed original (an
    unkeyed hash of a UID or a Patient ID can be reversed by trying candidates). ``pseudonyms.csv`` maps each
    Patient ID to its pseudonym and date offset (:meth:`save`); with ``keep_mapping=False`` it is never written,
    and only the salt (with the original values) can link a pseudonym back to a patient.

    Use :meth:`open`, not the constructor.

    Args:
        folder: the keys folder.
        salt: the secret.
        keep_mapping: write ``pseudonyms.csv`` on :meth:`save`.
    """

    SALT_BYTES = 32
    SALT_NAME = "salt"
    MAPPING_NAME = "pseudonyms.csv"
    LOCK_NAME = "pseudonyms.lock"
    #: Date offsets lie in ``-MAX_DATE_OFFSET_DAYS`` to ``-1`` days: dates only move into the past.
    MAX_DATE_OFFSET_DAYS = 3650
    _MAPPING_FIELDS = ("patient_id", "pseudonym", "date_offset_days")

    def __init__(self, folder: Path, salt: bytes, keep_mapping: bool = True) -> None:
        self.folder = folder
        self._salt = salt
        self.keep_mapping = keep_mapping
        self._patients: dict[str, tuple[str, int]] = {}

    @classmethod
    def open(
        cls,
        folder: str | os.PathLike,
        *,
        cohort: str | os.PathLike | None = None,
        keep_mapping: bool = True,
    ) -> DeidentificationKeys:
        """Open the keys folder, creating it (mode 0700) and its salt when absent.

        Args:
            folder: the keys folder.
            cohort: the de-identified cohort's folder: a keys folder inside it (or equal to it) is refused, as
                the cohort is what gets shared.
            keep_mapping: as in the class.

        Raises :class:`DeidentificationError` for a folder inside the cohort, and for a salt file that other
        users can read or that is not :attr:`SALT_BYTES` long.
        """
        folder = Path(folder).expanduser().resolve()
        if cohort is not None:
            cohort_folder = Path(cohort).expanduser().resolve()
            if folder == cohort_folder or cohort_folder in folder.parents:
                raise DeidentificationError(
                    f"the de-identification keys folder {folder} is inside the cohort {cohort_folder}",
                    hint="keep the keys (salt and pseudonym mapping) in a folder outside the cohort that is shared",
                )
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        return cls(folder, _read_or_create_salt(folder / cls.SALT_NAME, cls.SALT_BYTES), keep_mapping)

    def _digest(self, purpose: bytes, value: str) -> bytes:
        return hmac.new(self._salt, purpose + value.encode("utf-8", "surrogateescape"), hashlib.sha256).digest()

    def uid(self, original: str) -> str:
        """The replacement of UID ``original``: ``2.25.`` and 128 bits of its HMAC (PS3.5 B.2), at most 44 characters.

        Args:
            original: the UID to replace.
        """
        return f"2.25.{int.from_bytes(self._digest(b'uid:', original)[:16], 'big')}"

    def _patient(self, patient_id: str) -> tuple[str, int]:
        known = self._patients.get(patient_id)
        if known is None:
            code = base64.b32encode(self._digest(b"patient:", patient_id)).decode("ascii")[:12]
            days = int.from_bytes(self._digest(b"date:", patient_id)[:8], "big") % self.MAX_DATE_OFFSET_DAYS + 1
            known = self._patients[patient_id] = (f"RADTL{code}", -days)
        return known

    def pseudonym(self, patient_id: str) -> str:
        """The patient's pseudonym: ``RADTL`` and 12 base32 characters (60 bits) of the HMAC of ``patient_id``.

        Valid as Patient ID (LO) and Patient's Name (PN); recorded for :meth:`save`.

        Args:
            patient_id: the original Patient ID (or the key that stands for it, :meth:`Deidentifier.patient_key`).
        """
        return self._patient(patient_id)[0]

    def date_offset(self, patient_id: str) -> datetime.timedelta:
        """The patient's date shift: whole days, between -:attr:`MAX_DATE_OFFSET_DAYS` and -1, from the HMAC.

        Args:
            patient_id: as for :meth:`pseudonym`.
        """
        return datetime.timedelta(days=self._patient(patient_id)[1])

    def save(self) -> None:
        """Write ``pseudonyms.csv`` (mode 0600, atomically), merged with the one already there.

        Processes that save into one keys folder at once take turns (an exclusive ``flock`` on
        ``pseudonyms.lock``). Nothing is written with ``keep_mapping=False``.
        """
        if not self.keep_mapping:
            return
        path = self.folder / self.MAPPING_NAME
        lock = os.open(self.folder / self.LOCK_NAME, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)  # several exporting processes merge in turn, none loses the other's rows
            rows: dict[str, tuple[str, str]] = {}
            if path.exists():
                with path.open(newline="", encoding="utf-8") as handle:
                    for row in csv.DictReader(handle):
                        rows[row["patient_id"]] = (row["pseudonym"], row["date_offset_days"])
            rows.update({patient: (pseudonym, str(days)) for patient, (pseudonym, days) in self._patients.items()})
            text = io.StringIO()
            writer = csv.writer(text, lineterminator="\n")
            writer.writerow(self._MAPPING_FIELDS)
            writer.writerows((patient, *rows[patient]) for patient in sorted(rows))
            with atomic_path(path) as temporary:
                _write_private(temporary, text.getvalue().encode("utf-8"))
        finally:
            os.close(lock)


def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to a new file readable by its owner only (mode 0600 from its creation, whatever the umask)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)


def _read_or_create_salt(path: Path, size: int) -> bytes:
    """The salt at ``path``, created (``size`` bytes from :mod:`secrets`) when absent.

    Created under a temporary name and linked into place, so two processes starting together agree on one salt
    (the second's link fails and it reads the first's).
    """
    if not path.exists():
        temporary = temporary_path(path)
        try:
            _write_private(temporary, secrets.token_bytes(size))
            os.link(temporary, path)
        except FileExistsError:
            pass
        finally:
            temporary.unlink(missing_ok=True)
    mode = path.stat().st_mode
    if mode & 0o077:
        raise DeidentificationError(
            f"the de-identification salt {path} can be read by other users (mode {mode & 0o777:o})",
            hint=f"chmod 600 {path}, and consider the salt exposed: start a new keys folder if others read it",
        )
    salt = path.read_bytes()
    if len(salt) != size:
        raise DeidentificationError(
            f"the de-identification salt {path} holds {len(salt)} bytes, not {size}",
            hint="restore the salt from its backup; a new salt gives every UID and pseudonym a new replacement",
        )
    return salt


def burned_in_reason(ds: Dataset) -> str | None:
    """Why the pixels of ``ds`` may carry identifying text, or None when nothing says so.

    De-identification does not touch pixels (radtl offers neither Clean Pixel Data, PS3.15 E.3.1, nor Clean
    Recognizable Visual Features, E.3.2), so these are refused unless allowed:

    - Burned In Annotation (0028,0301) ``YES`` (PS3.3 C.7.6.1.1.12);
    - Recognizable Visual Features (0028,0302) ``YES`` (a face, for instance);
    - a Secondary Capture SOP Class (PS3.4 B.5): screens and scans, text included;
    - Conversion Type (0008,0064, SC Equipment module, PS3.3 C.8.6.1) present: a workstation capture (``WSD``),
      a scanned document (``SD``) or image, a digitised film or video;
    - an ultrasound image (Modality ``US`` or an ultrasound SOP Class): its screen annotates the patient;
    - Image Type (0008,0008) with ``SCREEN SAVE``.

    Args:
        ds: the data set (only its header is read).
    """
    if str(ds.get("BurnedInAnnotation", "")).strip().upper() == "YES":
        return "Burned In Annotation (0028,0301) is YES: the pixels carry text"
    if str(ds.get("RecognizableVisualFeatures", "")).strip().upper() == "YES":
        return ("Recognizable Visual Features (0028,0302) is YES; Clean Recognizable Visual Features "
                "(PS3.15 E.3.2) is not offered")
    sop_class = str(ds.get("SOPClassUID", "")).strip()
    if sop_class in _SECONDARY_CAPTURE_CLASSES:
        return f"a Secondary Capture ({UID(sop_class).name}): screens and scans may show identifying text"
    conversion = str(ds.get("ConversionType", "")).strip().upper()
    if conversion:
        return f"Conversion Type (0008,0064) {conversion}: a captured or scanned image may show identifying text"
    if str(ds.get("Modality", "")).strip().upper() in ("US", "IVUS") or sop_class in _ULTRASOUND_CLASSES:
        return "an ultrasound image: its screen may show the patient's name and dates"
    image_type = ds.get("ImageType") or []
    values = [image_type] if isinstance(image_type, str) else list(image_type)
    if any("SCREEN SAVE" in str(value).upper() for value in values):
        return "Image Type (0008,0008) SCREEN SAVE: a screenshot may show identifying text"
    return None


def _is_standard_uid(value: str) -> bool:
    """Whether ``value`` is a UID the standard defines (PS3.6 Annex A: classes, syntaxes, coding schemes, frames of
    reference...), which identifies nothing and must stay for the object to be read."""
    return value.startswith(_DICOM_ROOT) or value in UID_dictionary


def _is_class_uid_attribute(tag: int) -> bool:
    """Attributes whose UID names a kind of object or encoding (SOP Class UIDs, vendors' private ones included)."""
    keyword = keyword_for_tag(tag)
    return keyword.endswith("ClassUID") or keyword == "TransferSyntaxUID"


@dataclass
class _Context:
    """What the walk over one data set needs: its patient, its identifying values and a count of elements."""

    settings: DeidentificationSettings
    keys: DeidentificationKeys
    patient_key: str
    identifying: list[tuple[str, str]] = field(default_factory=list)
    elements: int = 0

    def option(self, name: str) -> bool:
        return name in self.settings.options


class Deidentifier:
    """De-identifies data sets under the Basic Profile with ``settings``' options, with ``keys``' replacements.

    Args:
        settings: the options, and whether burned-in pixels are allowed.
        keys: the salt and the pseudonym mapping (:meth:`DeidentificationKeys.open`).
    """

    def __init__(self, settings: DeidentificationSettings, keys: DeidentificationKeys) -> None:
        self.settings = settings
        self.keys = keys

    @staticmethod
    def patient_key(ds: Dataset) -> str:
        """The value that stands for the patient: Patient ID, or, when it is empty or missing, ``"StudyInstanceUID="``
        and the study's UID (so a study without a Patient ID is one pseudonymous patient).

        Raises :class:`DeidentificationError` when both are missing.
        """
        patient_id = "\\".join(_values(ds, "PatientID"))
        if patient_id:
            return patient_id
        study = "\\".join(_values(ds, _PATIENT_KEY_FALLBACK))
        if study:
            return f"{_PATIENT_KEY_FALLBACK}={study}"
        raise DeidentificationError("neither Patient ID nor Study Instance UID: no patient to give a pseudonym to")

    def deidentify(self, ds: pydicom.FileDataset) -> pydicom.FileDataset:
        """A de-identified copy of ``ds`` (PS3.15 E.1.1), which is left unchanged.

        Each Attribute, at every sequence level, gets the action :func:`profile_action` gives its tag under
        the settings' options:

        - ``D``: the dummy of :data:`DUMMY_VALUES` for its VR; a UID gets its replacement; a sequence keeps its
          items, de-identified, with every free-text value (SH, LO, ST, LT, UT, UC, PN) dummied;
        - ``Z``: an empty value (an empty sequence); ``X``: removed; ``U``: the replacement UID;
        - ``K``: kept (a UID too: the option that keeps it means it; a sequence's items are still de-identified,
          as E.1.1 says);
        - ``C``: cleaned: under Retain Longitudinal Temporal Information with Modified Dates (PS3.15 E.3.6)
          dates (DA) and the date part of date-times (DT) are shifted by the patient's offset, times (TM) kept,
          and Longitudinal Temporal Information Modified (0028,0303) is set to ``MODIFIED`` (PS3.3 C.7.6.1);
          under Clean Descriptors (E.3.5) a text is kept only when it holds none of the data set's identifying
          values (the patient's, physicians' and operators' names and their parts, patient IDs, accession
          number, birth date in common written forms, institution, department, station, device serial number),
          and emptied otherwise (the debug log names which kind of value, never the value); any other ``C``
          (a binary value, a name) falls back to the Basic Profile's code.
        - Compound codes depend on the Attribute's Type in the IOD, which radtl does not hold; each is resolved to
          the alternative conformant whatever the Type that keeps no original value: ``X/Z`` -> ``Z``,
          ``X/D``, ``Z/D``, ``X/Z/D`` -> ``D``, ``X/Z/U*`` -> the sequence kept with its UIDs replaced.

        Besides the table: Patient ID and Patient's Name both become the patient's pseudonym
        (:meth:`patient_key`, :meth:`DeidentificationKeys.pseudonym`); every UID the table does not list (Frame
        of Reference, Referenced SOP Instance UID, ...) is replaced like a ``U``, unless the standard defines it
        or it names a class or transfer syntax; a Person Name the table does not list becomes a dummy; Private
        Attributes and their Private Creators are removed unless Retain Safe Private (E.3.10) keeps them
        (:func:`is_safe_private`). Group lengths are dropped. Patient Identity Removed (0012,0062) ``YES``,
        De-identification Method (0012,0063) and its Code Sequence (0012,0064) are set (E.1.1 requirement 7,
        PS3.3 C.7.1.1); Burned In Annotation stays as it was. The File Meta Information is rebuilt (PS3.10 7.1)
        with the new SOP Instance UID and radtl's implementation, in the same transfer syntax; Pixel Data is the
        same bytes.

        Args:
            ds: the data set as read, with its File Meta Information.

        Raises :class:`DeidentificationError` for pixels that may show identifying text when the settings do
        not allow them (:func:`burned_in_reason`), for a data set nested deeper than
        :data:`MAX_SEQUENCE_DEPTH` or with more than :data:`MAX_ELEMENTS` elements, for an unreadable value
        that would have to be changed, for a data set with neither Patient ID nor Study Instance UID, and for one
        without a valid SOP Class or SOP Instance UID (the new file is named by the latter).
        """
        for keyword in ("SOPClassUID", "SOPInstanceUID"):
            if not is_uid(str(ds.get(keyword) or "")):
                raise DeidentificationError(f"no valid {keyword}: the de-identified instance could not be named",
                                            hint="left out; the source file is not a complete DICOM instance")
        if not self.settings.allow_burned_in:
            reason = burned_in_reason(ds)
            if reason:
                raise DeidentificationError(f"pixels may show identifying text: {reason}",
                                            hint="left out; --allow-burned-in includes such files, flagged")
        context = _Context(self.settings, self.keys, self.patient_key(ds), _identifying_values(ds))
        result = _deidentify_items(ds, context, depth=0, dummy_text=False)
        if "PatientSpeciesDescription" in ds or "PatientSpeciesCodeSequence" in ds:
            # an animal: Responsible Person and Organization are Type 2C (PS3.3 C.7.1.1), so the table's X would
            # break the IOD; E.1.1 keeps the IOD conformant, with the value emptied (Z)
            for keyword in ("ResponsiblePerson", "ResponsibleOrganization"):
                if keyword in ds:
                    setattr(result, keyword, "")
        pseudonym = self.keys.pseudonym(context.patient_key)
        result.PatientID = pseudonym
        result.PatientName = pseudonym
        if context.option("retain-longitudinal-dates"):
            result.LongitudinalTemporalInformationModified = "MODIFIED"
        result.PatientIdentityRemoved = "YES"
        result.DeidentificationMethod = self.settings.method_description()
        result.DeidentificationMethodCodeSequence = Sequence(
            [_code_item(*code) for code in self.settings.method_codes()]
        )
        return _with_file_meta(ds, result)


def _code_item(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = scheme
    item.CodeMeaning = meaning
    return item


def _with_file_meta(source: FileDataset, result: Dataset) -> FileDataset:
    """``result`` as a Part 10 data set (PS3.10 7.1): File Meta rebuilt for the new SOP Instance, same syntax."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = result.get("SOPClassUID", "")
    meta.MediaStorageSOPInstanceUID = result.get("SOPInstanceUID", "")
    source_meta = getattr(source, "file_meta", None) or FileMetaDataset()
    meta.TransferSyntaxUID = source_meta.get("TransferSyntaxUID", ExplicitVRLittleEndian)
    meta.ImplementationClassUID = IMPLEMENTATION_CLASS_UID
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION_NAME
    out = FileDataset("", result, file_meta=meta, preamble=b"\x00" * 128)
    syntax = UID(meta.TransferSyntaxUID)
    if syntax.is_transfer_syntax:
        out.set_original_encoding(syntax.is_implicit_VR, syntax.is_little_endian, result.get("SpecificCharacterSet"))
    return out


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple, MultiValue)):
        return "\\".join(_text(item) for item in value)
    return str(value).strip()


# Dates as people write them: the birth date searched for in descriptions in each of these forms.
_DATE_FORMATS = ("%Y%m%d", "%Y-%m-%d", "%Y/%m/%d", "%Y.%m.%d", "%d.%m.%Y", "%d/%m/%Y", "%m/%d/%Y", "%d-%m-%Y",
                 "%d.%m.%y", "%d/%m/%y", "%m/%d/%y")
_NAME_KEYWORDS = ("PatientName", "OtherPatientNames", "PatientBirthName", "PatientMotherBirthName",
                  "ReferringPhysicianName", "PerformingPhysicianName", "OperatorsName", "NameOfPhysiciansReadingStudy",
                  "PhysiciansOfRecord", "RequestingPhysician", "ConsultingPhysicianName")
_VALUE_KEYWORDS = ("PatientID", "OtherPatientIDs", "AccessionNumber", "InstitutionName", "InstitutionAddress",
                   "InstitutionalDepartmentName", "StationName", "DeviceSerialNumber")
#: A name component shorter than this (an initial) is not searched for: it would match most texts.
_MIN_NAME_PART = 2


def _identifying_values(ds: Dataset) -> list[tuple[str, str]]:
    """The values of ``ds`` that identify the patient or staff, as (what it is, value lowercased), for Clean
    Descriptors (PS3.15 E.3.5): names and their components, IDs, accession number, institution, station, and the
    birth date in the common written forms."""
    values: list[tuple[str, str]] = []
    for keyword in _NAME_KEYWORDS:
        for name in _values(ds, keyword):
            values.append((keyword, name.lower()))
            values.extend((keyword, part.lower()) for part in re.split(r"[\^=\s,]+", name)
                          if len(part) >= _MIN_NAME_PART)
    for keyword in _VALUE_KEYWORDS:
        values.extend((keyword, value.lower()) for value in _values(ds, keyword))
    for item in ds.get("OtherPatientIDsSequence") or []:
        values.extend(("OtherPatientIDsSequence", value.lower()) for value in _values(item, "PatientID"))
    for birth_date in _values(ds, "PatientBirthDate"):
        try:
            parsed = datetime.datetime.strptime(birth_date[:8], "%Y%m%d")
        except ValueError:
            values.append(("PatientBirthDate", birth_date.lower()))
            continue
        values.extend(("PatientBirthDate", parsed.strftime(form).lower()) for form in _DATE_FORMATS)
    return [(what, value) for what, value in values if value]


def _values(ds: Dataset, keyword: str) -> list[str]:
    try:
        value = ds.get(keyword)
    except ELEMENT_VALUE_ERRORS:
        return []
    if value is None or isinstance(value, Sequence):
        return []
    items = list(value) if isinstance(value, (list, tuple, MultiValue)) else [value]
    return [str(item).strip() for item in items if str(item).strip()]


def _resolve_compound(action: str) -> str:
    """The alternative of a compound code conformant whatever the Attribute's Type (see ``deidentify``)."""
    if "/" not in action:
        return action
    if action.endswith("U*"):
        return "U*"
    return "Z" if action == "X/Z" else "D"


def _deidentify_items(ds: Dataset, context: _Context, depth: int, dummy_text: bool) -> Dataset:
    """A new data set with each element of ``ds`` de-identified (one level; sequences recurse)."""
    if depth > MAX_SEQUENCE_DEPTH:
        raise DeidentificationError(f"sequences nested deeper than {MAX_SEQUENCE_DEPTH} levels")
    result = Dataset()
    kept_creators = _kept_private_creators(ds, context)
    for tag in list(ds.keys()):
        context.elements += 1
        if context.elements > MAX_ELEMENTS:
            raise DeidentificationError(f"more than {MAX_ELEMENTS} elements")
        tag = Tag(tag)
        if tag.element == 0 or tag.group == 0x0002:
            continue  # group lengths (retired, PS3.5 7.2) and stray file meta: rebuilt or not needed
        if tag.is_private:
            if tag in kept_creators or (tag.element > 0xFF and Tag(tag.group, tag.element >> 8) in kept_creators
                                         and _safe_private(ds, tag, context)):
                result.add(_copy(_element(ds, tag)))
            continue
        action = profile_action(tag, context.settings.options)
        if action == "X":
            continue
        element = _element(ds, tag)
        new = _deidentified_element(element, action, context, depth, dummy_text)
        if new is not None:
            result.add(new)
    return result


def _element(ds: Dataset, tag: BaseTag) -> DataElement:
    try:
        return ds[tag]
    except ELEMENT_VALUE_ERRORS as error:
        raise DeidentificationError(
            f"the value of {tag} {keyword_for_tag(tag) or '(unknown)'} cannot be read ({type(error).__name__})"
        ) from error


def _kept_private_creators(ds: Dataset, context: _Context) -> set[BaseTag]:
    """The Private Creator elements (gggg,0010-00FF) of ``ds`` whose block keeps at least one element."""
    if not context.option("retain-safe-private"):
        return set()
    kept = set()
    for tag in ds.keys():
        tag = Tag(tag)
        if tag.is_private and tag.element > 0xFF and _safe_private(ds, tag, context):
            kept.add(Tag(tag.group, tag.element >> 8))
    return kept


def _safe_private(ds: Dataset, tag: BaseTag, context: _Context) -> bool:
    """Whether the Retain Safe Private Option (PS3.15 E.3.10, Table E.3.10-1) keeps private ``tag`` of ``ds``."""
    if not context.option("retain-safe-private"):
        return False
    creator_tag = Tag(tag.group, tag.element >> 8)
    if creator_tag not in ds:
        return False
    creator = _text(_element(ds, creator_tag).value)
    # the VR as pydicom resolves it (its private dictionary, by creator, for an implicit VR file)
    return bool(creator) and is_safe_private(creator, int(tag), _element(ds, tag).VR)


def _deidentified_element(
    element: DataElement, action: str | None, context: _Context, depth: int, dummy_text: bool
) -> DataElement | None:
    """The de-identified twin of ``element`` under ``action`` (already not ``X``), or None to remove it."""
    tag, vr = element.tag, element.VR
    if tag == _PATIENT_ID or tag == _PATIENT_NAME:
        return DataElement(tag, vr, context.keys.pseudonym(context.patient_key))
    if action is not None:
        action = _resolve_compound(action)
    if action == "C":
        action = _clean_action(element, context)
        if action == "C":
            return _cleaned(element, context, depth, dummy_text)
    if vr == "SQ":
        return _deidentified_sequence(element, action, context, depth, dummy_text)
    if action == "Z":
        return DataElement(tag, vr, None)
    if vr == "UI" and action in ("U", "D", "U*", None):
        if action is None and _is_class_uid_attribute(tag):
            return _copy(element)
        return DataElement(tag, vr, _replaced_uids(element.value, context))
    if action in ("U", "U*") and vr != "UI":
        action = "D"  # a UID action on a UID stored under another VR: nothing of it kept
    if action == "D" or (action is None and vr == "PN") or (dummy_text and vr in _TEXT_VRS and action != "K"):
        return DataElement(tag, vr, DUMMY_VALUES.get(vr, b"\x00\x00"))
    return _copy(element)


def _copy(element: DataElement) -> DataElement:
    """A new element with ``element``'s value (a multi-value copied, so the result never shares one with the
    source), encapsulated Pixel Data keeping its undefined length (PS3.5 A.4)."""
    value = element.value
    if isinstance(value, MultiValue):
        value = list(value)
    return DataElement(element.tag, element.VR, value, is_undefined_length=element.is_undefined_length)


def _clean_action(element: DataElement, context: _Context) -> str:
    """``C`` when radtl cleans this element under the settings' options, else the Basic Profile's code for it."""
    if element.VR in _DATE_VRS and context.option("retain-longitudinal-dates"):
        return "C"
    if (element.VR in _TEXT_VRS - {"PN"} and context.option("clean-descriptions")) or element.VR == "SQ":
        return "C"
    return _resolve_compound(profile_action(element.tag) or "K")


def _cleaned(element: DataElement, context: _Context, depth: int, dummy_text: bool) -> DataElement | None:
    """Action ``C``: dates shifted (PS3.15 E.3.6), descriptions checked (E.3.5), a sequence's items cleaned."""
    tag, vr = element.tag, element.VR
    if vr == "SQ":
        return _deidentified_sequence(element, "K", context, depth, dummy_text)
    if vr in _DATE_VRS:
        return DataElement(tag, vr, _shifted_dates(element, context))
    reason = _identifying_in(_text(element.value).lower(), context)
    if reason:
        logger.debug("Clean Descriptors emptied %s %s: it holds the %s", tag, keyword_for_tag(tag), reason)
        return DataElement(tag, vr, None)
    return _copy(element)


def _identifying_in(text: str, context: _Context) -> str | None:
    for what, value in context.identifying:
        if value in text:
            return what
    return None


def _shifted_dates(element: DataElement, context: _Context) -> object:
    """The value of a DA, DT or TM element with its dates moved by the patient's offset (PS3.15 E.3.6).

    Times are kept (a shift by whole days leaves them). A range (``20200101-20201231``), or a value that is not
    a date, is emptied, with the reason in the debug log.
    """
    if element.VR == "TM" or element.value in (None, ""):
        return element.value
    offset = context.keys.date_offset(context.patient_key)
    values = list(element.value) if isinstance(element.value, (list, tuple, MultiValue)) else [element.value]
    shifted = []
    for value in values:
        moved = _shift_one(str(value).strip(), element.VR, offset)
        if moved is None:
            logger.debug("emptied %s %s: not a single %s value, cannot shift it", element.tag,
                         keyword_for_tag(element.tag), element.VR)
            return None
        shifted.append(moved)
    return shifted if len(shifted) > 1 else shifted[0]


#: The values a shift can move (PS3.5 6.2): a whole date (DA), or a date-time (DT) with at least its date.
_SHIFTABLE = {
    "DA": re.compile(r"\d{8}"),
    "DT": re.compile(r"\d{8}(\d{2}(\d{2}(\d{2}(\.\d{1,6})?)?)?)?([+-]\d{4})?"),
}


def _shift_one(value: str, vr: str, offset: datetime.timedelta) -> str | None:
    """``value`` (DA, or DT) with its date part moved by ``offset``, the rest kept; None if it is not one date."""
    if not _SHIFTABLE[vr].fullmatch(value):
        return None
    try:
        day = datetime.datetime.strptime(value[:8], "%Y%m%d").date() + offset
    except (ValueError, OverflowError):
        return None
    return day.strftime("%Y%m%d") + value[8:]


def _replaced_uids(value: object, context: _Context) -> object:
    """``value`` (one UID or several) with each UID the standard does not define replaced consistently."""
    if isinstance(value, (list, tuple, MultiValue)):
        return [_replaced_uid(str(item), context) for item in value]
    return _replaced_uid(str(value or ""), context)


def _replaced_uid(value: str, context: _Context) -> str:
    value = value.strip("\x00 ")
    if not value or _is_standard_uid(value):
        return value
    return context.keys.uid(value)


def _deidentified_sequence(
    element: DataElement, action: str | None, context: _Context, depth: int, dummy_text: bool
) -> DataElement:
    """A sequence under ``action``: ``Z`` empties it, ``D`` dummies the text of its items, anything else keeps its
    items; the items are always de-identified themselves."""
    if action == "Z":
        return DataElement(element.tag, "SQ", Sequence())
    dummy_items = dummy_text or action == "D"
    items = [_deidentify_items(item, context, depth + 1, dummy_items) for item in element.value or []]
    return DataElement(element.tag, "SQ", Sequence(items))
