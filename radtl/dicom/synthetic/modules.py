"""DICOM datasets built from scratch, one function per PS3.3 module.

Each ``add_*`` function fills one module of DICOM PS3.3 (the section it implements is named in its
docstring) into a :class:`~pydicom.dataset.Dataset`; an IOD is the sum of its modules
(:mod:`radtl.dicom.synthetic.iods`). Everything is deterministic: dates and times are fixed
(:data:`DATE`, :data:`TIME`), UIDs derive from fixed strings (:func:`uid`), and the File Meta names a
fixed implementation, so the same calls write the same bytes on every machine.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import UID, ExplicitVRLittleEndian, RLELossless, generate_uid

__all__ = [
    "AXIAL",
    "BASIC_TEXT_SR",
    "CR_IMAGE",
    "CT_IMAGE",
    "DATE",
    "DX_IMAGE_PRESENTATION",
    "ENHANCED_CT_IMAGE",
    "ENHANCED_MR_IMAGE",
    "INSTITUTION",
    "MANUFACTURER",
    "MODEL",
    "MR_IMAGE",
    "MULTIFRAME_GRAYSCALE_BYTE_SC",
    "SECONDARY_CAPTURE_IMAGE",
    "SOFTWARE_VERSION",
    "TIME",
    "UID_NAMESPACE",
    "UID_ROOT",
    "Study",
    "add_frame_of_reference",
    "add_general_equipment",
    "add_general_image",
    "add_general_series",
    "add_general_study",
    "add_image_plane",
    "add_modality_lut",
    "add_patient",
    "add_patient_and_study",
    "add_patient_study",
    "add_series",
    "add_voi_lut",
    "add_window",
    "age_string",
    "birth_date",
    "code",
    "decimal_string",
    "new_instance",
    "seq",
    "set_pixels",
    "uid",
    "write",
]

#: UID root (the pydicom root, which is registered for this kind of use).
UID_ROOT = "1.2.826.0.1.3680043.8.498."
#: Extra entropy source so that these UIDs never collide with other pydicom users'.
UID_NAMESPACE = "radtl-samples-v1"

DATE = "20240101"
TIME = "120000"
MANUFACTURER = "RADTL Synthetic Phantoms"
#: Manufacturer's Model Name: the generator's historical name, kept so that the committed samples stay byte-identical.
MODEL = "make_samples.py"
SOFTWARE_VERSION = "radtl-samples 1"
INSTITUTION = "RADTL Test Institution"

# SOP Class UIDs (PS3.4 B.5)
CR_IMAGE = UID("1.2.840.10008.5.1.4.1.1.1")
DX_IMAGE_PRESENTATION = UID("1.2.840.10008.5.1.4.1.1.1.1")
CT_IMAGE = UID("1.2.840.10008.5.1.4.1.1.2")
ENHANCED_CT_IMAGE = UID("1.2.840.10008.5.1.4.1.1.2.1")
MR_IMAGE = UID("1.2.840.10008.5.1.4.1.1.4")
ENHANCED_MR_IMAGE = UID("1.2.840.10008.5.1.4.1.1.4.1")
SECONDARY_CAPTURE_IMAGE = UID("1.2.840.10008.5.1.4.1.1.7")
MULTIFRAME_GRAYSCALE_BYTE_SC = UID("1.2.840.10008.5.1.4.1.1.7.2")
BASIC_TEXT_SR = UID("1.2.840.10008.5.1.4.1.1.88.11")

#: Image Orientation (Patient) of an axial slice: rows along +x, columns along +y (PS3.3 C.7.6.2.1.1).
AXIAL = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]


def uid(*parts: object) -> UID:
    """A deterministic UID derived from ``parts`` under :data:`UID_ROOT`."""
    return generate_uid(prefix=UID_ROOT, entropy_srcs=[UID_NAMESPACE, *map(str, parts)])


def decimal_string(value: float) -> str:
    """A compact Decimal String (DS, at most 16 characters; PS3.5 6.2) for ``value``."""
    value = round(float(value), 6)
    if value == int(value):
        return str(int(value))
    return f"{value:.6g}"


def code(value: str, scheme: str, meaning: str) -> Dataset:
    """A code sequence item (PS3.3 8.8, Table 8.8-1): Code Value, Coding Scheme Designator, Code Meaning."""
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = scheme
    item.CodeMeaning = meaning
    return item


def seq(*items: Dataset) -> DicomSequence:
    """A DICOM sequence of ``items`` (none for an empty sequence)."""
    return DicomSequence(list(items))


def age_string(months: int) -> str:
    """An Age String (AS, PS3.5 6.2): months below two years (``018M``), years above (``010Y``)."""
    return f"{months:03d}M" if months < 24 else f"{months // 12:03d}Y"


def birth_date(age_months: float) -> str:
    """The birth date (``YYYYMMDD``) of a patient ``age_months`` old on the fixed study :data:`DATE`."""
    born = date(int(DATE[:4]), int(DATE[4:6]), int(DATE[6:])) - timedelta(days=round(age_months * 30.4375))
    return born.strftime("%Y%m%d")


@dataclass(frozen=True)
class Study:
    """Patient and study data shared by every instance of one study.

    Args:
        key: the study's fixed name; its UIDs derive from it.
        patient_name: Patient's Name (PN).
        patient_id: Patient ID.
        birth_date: Patient's Birth Date (``YYYYMMDD``).
        sex: Patient's Sex (``M``, ``F`` or ``O``).
        description: Study Description.
        age: Patient's Age as an Age String (``054Y``), or None to leave it out.
        accession: Accession Number.
        study_id: Study ID.
    """

    key: str
    patient_name: str
    patient_id: str
    birth_date: str
    sex: str
    description: str
    age: str | None = None
    accession: str = ""
    study_id: str = "1"

    @property
    def uid(self) -> UID:
        """The Study Instance UID."""
        return uid("study", self.key)


def new_instance(sop_class: UID, *key: object) -> Dataset:
    """A dataset with its File Meta (PS3.10 7.1) and the SOP Common module (PS3.3 C.12.1).

    Args:
        sop_class: the SOP Class UID.
        key: fixed parts the SOP Instance UID derives from.
    """
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.file_meta.ImplementationClassUID = uid("implementation")
    ds.file_meta.ImplementationVersionName = "RADTL_SAMPLES_1"
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = uid("instance", *key)
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.InstanceCreationDate = DATE
    ds.InstanceCreationTime = TIME
    return ds


def add_patient(ds: Dataset, study: Study) -> None:
    """Patient module (PS3.3 C.7.1.1), marked as de-identified: the patient is invented."""
    ds.PatientName = study.patient_name
    ds.PatientID = study.patient_id
    ds.PatientBirthDate = study.birth_date
    ds.PatientSex = study.sex
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = "Synthetic phantom; never contained real patient data"


def add_general_study(ds: Dataset, study: Study) -> None:
    """General Study module (PS3.3 C.7.2.1)."""
    ds.StudyInstanceUID = study.uid
    ds.StudyDate = DATE
    ds.StudyTime = TIME
    ds.ReferringPhysicianName = ""
    ds.StudyID = study.study_id
    ds.AccessionNumber = study.accession
    ds.StudyDescription = study.description


def add_patient_study(ds: Dataset, study: Study) -> None:
    """Patient Study module (PS3.3 C.7.2.2): the patient's age, where the study knows it."""
    if study.age:
        ds.PatientAge = study.age


def add_patient_and_study(ds: Dataset, study: Study) -> None:
    """The study-level modules every instance of ``study`` shares: Patient, General Study, Patient Study."""
    add_patient(ds, study)
    add_general_study(ds, study)
    add_patient_study(ds, study)


def add_general_series(
    ds: Dataset,
    study: Study,
    *,
    modality: str,
    number: int,
    description: str,
    body_part: str | None = None,
    laterality: str | None = None,
    patient_position: str | None = None,
) -> None:
    """General Series module (PS3.3 C.7.3.1); the Series Instance UID derives from the study and ``number``.

    Args:
        ds: the dataset to fill.
        study: the series' study.
        modality: Modality.
        number: Series Number.
        description: Series Description.
        body_part: Body Part Examined, or None to leave it out.
        laterality: Laterality, or None to leave it out.
        patient_position: Patient Position (``HFS``), or None to leave it out.
    """
    ds.Modality = modality
    ds.SeriesInstanceUID = uid("series", study.key, number)
    ds.SeriesNumber = number
    ds.SeriesDate = DATE
    ds.SeriesTime = TIME
    ds.SeriesDescription = description
    if body_part is not None:
        ds.BodyPartExamined = body_part
    if laterality is not None:
        ds.Laterality = laterality
    if patient_position is not None:
        ds.PatientPosition = patient_position


def add_general_equipment(ds: Dataset) -> None:
    """General Equipment module (PS3.3 C.7.5.1): the invented phantom scanner."""
    ds.Manufacturer = MANUFACTURER
    ds.InstitutionName = INSTITUTION
    ds.ManufacturerModelName = MODEL
    ds.DeviceSerialNumber = "0001"
    ds.SoftwareVersions = SOFTWARE_VERSION


def add_series(ds: Dataset, study: Study, **series: object) -> None:
    """General Series (:func:`add_general_series`, keyword arguments as there) and General Equipment."""
    add_general_series(ds, study, **series)
    add_general_equipment(ds)


def add_frame_of_reference(ds: Dataset, study: Study, key: object = 1) -> None:
    """Frame of Reference module (PS3.3 C.7.4.1); the UID derives from the study and ``key``."""
    ds.FrameOfReferenceUID = uid("for", study.key, key)
    ds.PositionReferenceIndicator = ""


def add_general_image(
    ds: Dataset,
    *,
    number: int,
    image_type: Sequence[str],
    patient_orientation: Sequence[str] | None = None,
) -> None:
    """General Image module (PS3.3 C.7.6.1) with the General Acquisition dates (C.7.10.1).

    Args:
        ds: the dataset to fill.
        number: Instance Number.
        image_type: Image Type values.
        patient_orientation: Patient Orientation (``["L", "F"]``), or None to leave it out.
    """
    ds.ImageType = list(image_type)
    ds.InstanceNumber = number
    ds.ContentDate = DATE
    ds.ContentTime = TIME
    ds.AcquisitionDate = DATE
    ds.AcquisitionTime = TIME
    if patient_orientation is not None:
        ds.PatientOrientation = list(patient_orientation)
    ds.BurnedInAnnotation = "NO"
    ds.LossyImageCompression = "00"


def add_image_plane(
    ds: Dataset,
    *,
    position: Sequence[float],
    spacing: Sequence[float],
    thickness: float,
    orientation: Sequence[float] = AXIAL,
) -> None:
    """Image Plane module (PS3.3 C.7.6.2).

    Args:
        ds: the dataset to fill.
        position: Image Position (Patient), mm; its third value is also the Slice Location.
        spacing: Pixel Spacing (row, column), mm.
        thickness: Slice Thickness, mm.
        orientation: Image Orientation (Patient).
    """
    ds.PixelSpacing = [decimal_string(v) for v in spacing]
    ds.ImageOrientationPatient = [decimal_string(v) for v in orientation]
    ds.ImagePositionPatient = [decimal_string(v) for v in position]
    ds.SliceThickness = decimal_string(thickness)
    ds.SliceLocation = decimal_string(position[2])


def set_pixels(
    ds: Dataset,
    arr: np.ndarray,
    *,
    bits_stored: int,
    photometric: str = "MONOCHROME2",
    multiframe: bool = False,
) -> None:
    """Image Pixel module (PS3.3 C.7.6.3) from a grey integer array; signedness comes from its dtype.

    Args:
        ds: the dataset to fill.
        arr: ``(H, W)`` stored values, or ``(F, H, W)`` with ``multiframe``.
        bits_stored: Bits Stored; Bits Allocated is the dtype's size.
        photometric: Photometric Interpretation (``MONOCHROME1`` or ``MONOCHROME2``).
        multiframe: whether ``arr`` holds frames (Number of Frames, PS3.3 C.7.6.6).

    Raises:
        ValueError: a value does not fit ``bits_stored``.
    """
    arr = np.asarray(arr)
    signed = arr.dtype.kind == "i"
    bits_allocated = arr.dtype.itemsize * 8
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    if multiframe:
        ds.NumberOfFrames = arr.shape[0]
    ds.Rows, ds.Columns = arr.shape[-2:]
    ds.BitsAllocated = bits_allocated
    ds.BitsStored = bits_stored
    ds.HighBit = bits_stored - 1
    ds.PixelRepresentation = int(signed)
    lo, hi = (-(2 ** (bits_stored - 1)), 2 ** (bits_stored - 1) - 1) if signed else (0, 2**bits_stored - 1)
    if arr.min() < lo or arr.max() > hi:
        raise ValueError(f"pixel values {arr.min()}..{arr.max()} do not fit {bits_stored} bits")
    ds.PixelData = arr.astype(arr.dtype.newbyteorder("<")).tobytes()
    ds["PixelData"].VR = "OW" if bits_allocated > 8 else "OB"


def _lut_item(values: Sequence[int], bits: int, explanation: str) -> Dataset:
    """A LUT item: LUT Descriptor (entries, first stored value 0, bits per entry), LUT Explanation, LUT Data."""
    item = Dataset()
    item.LUTDescriptor = [len(values), 0, bits]
    item["LUTDescriptor"].VR = "US"
    item.LUTExplanation = explanation
    item.add_new("LUTData", "US", [int(v) for v in values])
    return item


def add_modality_lut(ds: Dataset, values: Sequence[int], *, bits: int, lut_type: str, explanation: str) -> None:
    """Modality LUT module (PS3.3 C.11.1) as a Modality LUT Sequence of one table indexed from stored value 0.

    Args:
        ds: the dataset to fill.
        values: the table's output per stored value.
        bits: bits per LUT entry in the LUT Descriptor (8 or 16, PS3.3 C.11.1.1.1).
        lut_type: Modality LUT Type (``HU``, ``OD``, ...).
        explanation: LUT Explanation.
    """
    item = _lut_item(values, bits, explanation)
    item.ModalityLUTType = lut_type
    ds.ModalityLUTSequence = seq(item)


def add_voi_lut(ds: Dataset, values: Sequence[int], *, bits: int, explanation: str) -> None:
    """VOI LUT module (PS3.3 C.11.2) as a VOI LUT Sequence of one table indexed from stored value 0.

    Args:
        ds: the dataset to fill.
        values: the table's output per stored (or modality) value.
        bits: bits per LUT entry in the LUT Descriptor.
        explanation: LUT Explanation.
    """
    ds.VOILUTSequence = seq(_lut_item(values, bits, explanation))


def add_window(
    ds: Dataset,
    centers: Sequence[float],
    widths: Sequence[float],
    explanations: Sequence[str] | None = None,
    function: str | None = None,
) -> None:
    """VOI LUT module (PS3.3 C.11.2) as windows: Window Center and Width, one value per window.

    Args:
        ds: the dataset to fill.
        centers: Window Center values.
        widths: Window Width values.
        explanations: Window Center & Width Explanation values, or None.
        function: VOI LUT Function (``LINEAR``, ``SIGMOID``, ...), or None for the default.
    """
    ds.WindowCenter = [decimal_string(c) for c in centers] if len(centers) > 1 else decimal_string(centers[0])
    ds.WindowWidth = [decimal_string(w) for w in widths] if len(widths) > 1 else decimal_string(widths[0])
    if explanations:
        ds.WindowCenterWidthExplanation = list(explanations) if len(explanations) > 1 else explanations[0]
    if function:
        ds.VOILUTFunction = function


def write(ds: Dataset, path: Path, transfer_syntax: UID = ExplicitVRLittleEndian) -> Path:
    """Write ``ds`` as a DICOM Part 10 file (PS3.10 7), RLE Lossless compressed if asked for.

    Args:
        ds: the dataset, with File Meta (:func:`new_instance`).
        path: where to write; its folder is created.
        transfer_syntax: Explicit VR Little Endian, RLE Lossless (pydicom's own encoder, so the bytes do not
            depend on the installed plugins), or another one whose encapsulated Pixel Data ``ds`` already holds.
    """
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    if transfer_syntax != ExplicitVRLittleEndian:
        if transfer_syntax == RLELossless:
            ds.compress(RLELossless, encoding_plugin="pydicom", generate_instance_uid=False)
        else:
            ds.file_meta.TransferSyntaxUID = transfer_syntax  # the caller supplied encapsulated data
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path
