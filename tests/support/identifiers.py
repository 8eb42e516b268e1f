"""A small archive carrying planted identifying values, for the tests of ``radtl export`` (issue 25).

:data:`PLANTED` names each value and the row of PS3.15 Table E.1-1 (Basic Application Level Confidentiality
Profile) it tests; every value is a distinctive string that no de-identified file, manifest or provenance may
hold, in any encoding. :func:`write_planted_archive` writes the files that carry them: chest CT slices (two
studies of the first patient, one of the second), a Secondary Capture with Burned In Annotation YES and an
ultrasound image, built with :mod:`radtl.dicom.synthetic` as the sample corpus is.

The dates are planted too: a de-identification without "Retain Longitudinal Temporal Information" (PS3.15
E.3.6) must not leave them. :data:`FIRST_PATIENT_STUDY_DATES` are the first patient's two study dates, whose
difference the option keeps.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset
from pydicom.uid import UID

from radtl.dicom.synthetic.iods import ct_image, secondary_capture
from radtl.dicom.synthetic.modules import (
    SECONDARY_CAPTURE_IMAGE,
    Study,
    add_general_image,
    add_patient_and_study,
    add_series,
    code,
    new_instance,
    seq,
    set_pixels,
    write,
)

__all__ = [
    "FIRST_PATIENT_STUDY_DATES",
    "PLANTED",
    "PLANTED_DATES",
    "days_between",
    "identifying_variants",
    "write_planted_archive",
]

US_IMAGE = UID("1.2.840.10008.5.1.4.1.1.6.1")  # Ultrasound Image Storage (PS3.4 B.5)

#: What each planted value is -> the value; the comment names the Table E.1-1 row (tag, Basic Profile action).
PLANTED: dict[str, str] = {
    "patient name": "Zyxwvut^Quimby",  # Patient's Name (0010,0010) Z
    "second patient name": "Vexlarn^Oswiggle",  # Patient's Name (0010,0010) Z, the second patient
    "patient id": "PID-PLANTED-8731",  # Patient ID (0010,0020) Z/D
    "second patient id": "PID-PLANTED-4417",  # Patient ID (0010,0020) Z/D
    "other patient ids": "OPID-PLANTED-2290",  # Other Patient IDs (0010,1000) X
    "other patient ids sequence id": "OPIDSEQ-PLANTED-3301",  # Other Patient IDs Sequence (0010,1002) X
    "issuer of patient id": "Issuerhaven Registry",  # Issuer of Patient ID (0010,0021) X
    "birth date": "19610317",  # Patient's Birth Date (0010,0030) Z
    "second birth date": "19720829",  # Patient's Birth Date (0010,0030) Z
    "patient address": "12 Quimbleton Mews",  # Patient's Address (0010,1040) X
    "patient telephone": "555-PLANTED-7781",  # Patient's Telephone Numbers (0010,2154) X
    "institution name": "Quorvane Memorial Infirmary",  # Institution Name (0008,0080) X/Z/D
    "institution address": "77 Plumtree Lane Brackwater",  # Institution Address (0008,0081) X
    "department": "Xylobranch Imaging Wing",  # Institutional Department Name (0008,1040) X
    "station name": "STATION-QX77",  # Station Name (0008,1010) X/Z/D
    "operator name": "Operatorova^Ilsabet",  # Operators' Name (0008,1070) X/Z/D
    "performing physician": "Performski^Hadrian",  # Performing Physician's Name (0008,1050) X
    "referring physician": "Referwell^Tamsin",  # Referring Physician's Name (0008,0090) Z
    "accession number": "ACC-PLANTED-5521",  # Accession Number (0008,0050) Z
    "second accession number": "ACC-PLANTED-6632",  # Accession Number (0008,0050) Z
    "study id": "SID-PLANTED-7781",  # Study ID (0020,0010) Z
    "device serial number": "SN-PLANTED-4040",  # Device Serial Number (0018,1000) X/Z/D
    "private value": "PRIVATE-PLANTED-9904",  # Private Attributes (gggg,eeee) odd group X
    "nested institution": "Nestingford Radiology Annex",  # Institution Name (0008,0080), in a kept sequence
    "nested operator name": "Nestorova^Brunhild",  # Operators' Name (0008,1070), in a kept sequence
    "nested person id": "NID-PLANTED-6610",  # Operator Identification Sequence (0008,1072) X/D, two levels deep
    "nested person name": "Deepwater^Calloway",  # the same sequence's code meaning, three levels deep
    "study description": "Quimby follow-up chest",  # Study Description (0008,1030) X (names the patient)
}

#: Dates every planted file's date attributes take (Study, Series, Acquisition, Content, Instance Creation Date:
#: Table E.1-1, X/Z/D without the Retain Longitudinal Temporal Information Options).
FIRST_PATIENT_STUDY_DATES = ("20190423", "20190611")
PLANTED_DATES: dict[str, str] = {
    "first study date": FIRST_PATIENT_STUDY_DATES[0],
    "second study date": FIRST_PATIENT_STUDY_DATES[1],
    "second patient's study date": "20180102",
}

_DATE_KEYWORDS = ("StudyDate", "SeriesDate", "AcquisitionDate", "ContentDate", "InstanceCreationDate")
_PRIVATE_GROUP = 0x0029
_PRIVATE_CREATOR = "RADTL PLANTED"  # a Private Creator Data Element (PS3.5 7.8.1): not itself identifying


def identifying_variants(value: str) -> list[bytes]:
    """The byte strings ``value`` could be written as: as it is, with ``^`` as a space, in UTF-16 either way, and
    each name component of six letters or more alone (a person name split into family and given names)."""
    texts = {value, value.replace("^", " ")}
    if "^" in value:  # a person name (PS3.5 6.2 PN): its components alone
        texts |= {part for part in value.split("^") if len(part) >= 6}
    encoded = set()
    for text in texts:
        for encoding in ("ascii", "utf-16-le", "utf-16-be"):
            encoded.add(text.encode(encoding))
    return sorted(encoded)


def _plant_identity(ds: Dataset, study_date: str) -> None:
    """Overwrite the synthetic study's equipment and dates with planted values, mark the file as identified."""
    ds.PatientIdentityRemoved = "NO"
    del ds.DeidentificationMethod
    ds.IssuerOfPatientID = PLANTED["issuer of patient id"]
    ds.OtherPatientIDs = PLANTED["other patient ids"]
    other = Dataset()
    other.PatientID = PLANTED["other patient ids sequence id"]
    other.TypeOfPatientID = "TEXT"
    ds.OtherPatientIDsSequence = seq(other)
    ds.PatientAddress = PLANTED["patient address"]
    ds.PatientTelephoneNumbers = PLANTED["patient telephone"]
    ds.InstitutionName = PLANTED["institution name"]
    ds.InstitutionAddress = PLANTED["institution address"]
    ds.InstitutionalDepartmentName = PLANTED["department"]
    ds.StationName = PLANTED["station name"]
    ds.OperatorsName = PLANTED["operator name"]
    ds.PerformingPhysicianName = PLANTED["performing physician"]
    ds.ReferringPhysicianName = PLANTED["referring physician"]
    ds.DeviceSerialNumber = PLANTED["device serial number"]
    for keyword in _DATE_KEYWORDS:
        setattr(ds, keyword, study_date)
    block = ds.private_block(_PRIVATE_GROUP, _PRIVATE_CREATOR, create=True)
    block.add_new(0x01, "LO", PLANTED["private value"])
    person = Dataset()
    person.PersonIdentificationCodeSequence = seq(code(PLANTED["nested person id"], "L", PLANTED["nested person name"]))
    person.InstitutionName = PLANTED["nested institution"]
    equipment = Dataset()
    equipment.PurposeOfReferenceCodeSequence = seq(code("109101", "DCM", "Acquisition Equipment"))
    equipment.Manufacturer = "RADTL Synthetic Phantoms"
    equipment.InstitutionName = PLANTED["nested institution"]
    equipment.OperatorsName = PLANTED["nested operator name"]
    equipment.OperatorIdentificationSequence = seq(person)
    ds.ContributingEquipmentSequence = seq(equipment)


def _ct(study: Study, key: str, number: int, study_date: str, seed: int) -> Dataset:
    hu = np.random.default_rng(seed).integers(-1000, 1000, size=(16, 16)).astype(float)
    ds = ct_image(study, key, number, hu, z=-100.0 - 5.0 * number)
    _plant_identity(ds, study_date)
    return ds


def _burned_in_secondary_capture(study: Study, study_date: str) -> Dataset:
    ds = secondary_capture(SECONDARY_CAPTURE_IMAGE, study, "screenshot", modality="OT", series=90,
                           description="Screenshot", body_part="CHEST")
    set_pixels(ds, np.full((16, 16), 200, dtype=np.uint8), bits_stored=8)
    ds.BurnedInAnnotation = "YES"
    _plant_identity(ds, study_date)
    return ds


def _ultrasound(study: Study, study_date: str) -> Dataset:
    ds = new_instance(US_IMAGE, study.key, "us")
    add_patient_and_study(ds, study)
    add_series(ds, study, modality="US", number=1, description="Abdomen US")
    add_general_image(ds, number=1, image_type=["ORIGINAL", "PRIMARY", "ABDOMINAL"], patient_orientation=["L", "P"])
    set_pixels(ds, np.full((16, 16), 90, dtype=np.uint8), bits_stored=8)
    _plant_identity(ds, study_date)
    return ds


def write_planted_archive(folder: str | Path, patients: int = 2) -> list[Path]:
    """Write the planted archive under ``folder``; return the files, CT slices first.

    - the first patient (:data:`PLANTED` "patient name", "patient id", "birth date"): a two-slice CT study on
      :data:`FIRST_PATIENT_STUDY_DATES` [0] under a folder named after the patient (``Quimby_Zyxwvut/``, the
      way some archives name folders, so these paths carry the name), and a one-slice CT study on [1];
    - the second patient (with ``patients`` 2): a one-slice CT study, and in the same study a Secondary Capture
      with Burned In Annotation YES (PS3.3 C.7.6.1.1.5) and an ultrasound image (pixels that may carry text).

    Every file carries every other planted value (:func:`_plant_identity`).

    Args:
        folder: where to write (created).
        patients: 1 or 2.
    """
    folder = Path(folder)
    first = Study("planted-1a", PLANTED["patient name"], PLANTED["patient id"], PLANTED["birth date"], "F",
                  PLANTED["study description"], "058Y", PLANTED["accession number"], PLANTED["study id"])
    first_later = Study("planted-1b", PLANTED["patient name"], PLANTED["patient id"], PLANTED["birth date"], "F",
                        "CT chest", "058Y", PLANTED["second accession number"], PLANTED["study id"])
    written = [
        write(_ct(first, "slice1", 1, FIRST_PATIENT_STUDY_DATES[0], 1), folder / "Quimby_Zyxwvut" / "ct_1.dcm"),
        write(_ct(first, "slice2", 2, FIRST_PATIENT_STUDY_DATES[0], 2), folder / "Quimby_Zyxwvut" / "ct_2.dcm"),
        write(_ct(first_later, "slice1", 1, FIRST_PATIENT_STUDY_DATES[1], 3), folder / "study_b" / "ct_1.dcm"),
    ]
    if patients >= 2:
        second = Study("planted-2", PLANTED["second patient name"], PLANTED["second patient id"],
                       PLANTED["second birth date"], "M", "CT chest", "046Y", "ACC-2")
        study_date = PLANTED_DATES["second patient's study date"]
        written += [
            write(_ct(second, "slice1", 1, study_date, 4), folder / "p2" / "ct_1.dcm"),
            write(_burned_in_secondary_capture(second, study_date), folder / "p2" / "screenshot.dcm"),
            write(_ultrasound(second, study_date), folder / "p2" / "us.dcm"),
        ]
    return written


def days_between(first: str, second: str) -> int:
    """Days from one DICOM date (``YYYYMMDD``, PS3.5 6.2 DA) to another."""
    def parse(text: str) -> date:
        return date(int(text[:4]), int(text[4:6]), int(text[6:8]))
    return (parse(second) - parse(first)).days
