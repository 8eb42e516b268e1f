"""A synthetic archive with a known structure, for tests and benchmarks of archive-scale steps.

:func:`write_archive` writes patients -> studies -> series -> instances the way a hospital
PACS export looks: folders per study and series, several modalities (CT, MR, CR, DX) and
body parts, the header attributes RadiologyNET indexed (acquisition parameters, windows
with several values, manufacturer, sizes), and the mess the study met: BodyPartExamined
missing in part of the files while ProtocolName and StudyDescription name the body part in
Croatian, English or Latin, with abbreviations and typos. :class:`ArchiveFile` records what
each file truly is, so a test can check what the index, the imputation or a clustering
recovered.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

__all__ = ["EXAMINATIONS", "ArchiveFile", "Examination", "write_archive"]

_SOP_CLASSES = {
    "CT": "1.2.840.10008.5.1.4.1.1.2",
    "MR": "1.2.840.10008.5.1.4.1.1.4",
    "CR": "1.2.840.10008.5.1.4.1.1.1",
    "DX": "1.2.840.10008.5.1.4.1.1.1.1",
}


@dataclass(frozen=True)
class Examination:
    """A kind of study: modality, true body part, and the ways its protocol and description are written."""

    modality: str
    body_part: str
    protocols: tuple[str, ...]
    descriptions: tuple[str, ...]


#: What the archive holds: the protocol and description texts a Croatian hospital's archive shows.
EXAMINATIONS: tuple[Examination, ...] = (
    Examination("CT", "HEAD", ("CT glave nativno", "Head routine", "CT_GLAVA"), ("CT glave", "CT HEAD W/O")),
    Examination("CT", "CHEST", ("Thorax 1mm", "CT toraksa", "Toraks HR"), ("CT prsnog koša", "CT THORAX C+")),
    Examination("CT", "ABDOMEN", ("Abdomen 3 faze", "Abdomne venska", "CT trbuha"), ("CT abdomena", "ABDOMEN C+")),
    Examination("MR", "BRAIN", ("t2_tse_tra mozak", "MR mozga", "Brain FLAIR"), ("MR mozga", "MRI BRAIN")),
    Examination("MR", "LSPINE", ("L-S kralj. t2 sag", "lumbalna kraljeznica", "LSPINE T1"), ("MR LS kralježnice",)),
    Examination("MR", "KNEE", ("koljeno pd fs", "Knee PD cor"), ("MR koljena", "MRI KNEE LEFT")),
    Examination("CR", "CHEST", ("Pluća PA", "Thorax pa", "RTG pluca"), ("RTG pluća i srca", "CHEST PA")),
    Examination("CR", "HAND", ("Šaka AP", "Hand 2 dir", "sake obostrano"), ("RTG šake", "HAND AP/OBL")),
    Examination("DX", "WRIST", ("Ručni zglob", "Wrist lat", "rucni zglob lijevo"), ("RTG ručnog zgloba",)),
    Examination("DX", "KNEE", ("Koljeno stojeći", "Knee standing"), ("RTG koljena",)),
)

_MANUFACTURERS = {"CT": ("SIEMENS", "GE MEDICAL SYSTEMS"), "MR": ("SIEMENS", "Philips"),
                  "CR": ("AGFA", "FUJIFILM Corporation"), "DX": ("Carestream Health", "SIEMENS")}


@dataclass(frozen=True)
class ArchiveFile:
    """One written file and the truth about it."""

    path: Path
    modality: str
    body_part: str
    body_part_recorded: bool
    patient_id: str
    study_uid: str


def _image_attributes(ds: Dataset, modality: str, rng: np.random.Generator, size: int) -> None:
    ds.Rows = ds.Columns = size
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME1" if modality == "CR" and rng.random() < 0.3 else "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 12, 11
    ds.PixelRepresentation = 0
    ds.PixelData = rng.integers(0, 4096, (size, size), dtype=np.uint16).tobytes()
    if modality == "CT":
        ds.RescaleIntercept, ds.RescaleSlope = "-1024", "1"
        ds.WindowCenter, ds.WindowWidth = ["40", "-600"], ["400", "1500"]
        ds.KVP = str(rng.choice([100, 120, 140]))
        ds.SliceThickness = str(rng.choice([1.0, 1.25, 2.5, 5.0]))
        ds.ConvolutionKernel = str(rng.choice(["B30f", "STANDARD", "LUNG"]))
        ds.PixelSpacing = [f"{v:.4f}" for v in [rng.uniform(0.5, 0.9)] * 2]
    elif modality == "MR":
        ds.MagneticFieldStrength = str(rng.choice([1.5, 3.0]))
        ds.RepetitionTime = f"{rng.uniform(400, 6000):.1f}"
        ds.EchoTime = f"{rng.uniform(8, 120):.2f}"
        ds.SliceThickness = str(rng.choice([3.0, 4.0, 5.0]))
        ds.ScanningSequence = str(rng.choice(["SE", "GR", "IR"]))
        ds.WindowCenter, ds.WindowWidth = f"{rng.integers(300, 900)}", f"{rng.integers(600, 1800)}"
        ds.PixelSpacing = [f"{v:.4f}" for v in [rng.uniform(0.4, 1.0)] * 2]
    else:
        ds.KVP = str(rng.choice([50, 55, 60, 125]))
        ds.ExposureTime = str(rng.integers(5, 40))
        ds.ImagerPixelSpacing = ["0.1", "0.1"]
        ds.WindowCenter, ds.WindowWidth = "2048", "4096"


def write_archive(
    root: str | os.PathLike,
    studies: int = 20,
    series_per_study: int = 2,
    instances_per_series: int = 3,
    body_part_missing: float = 0.5,
    image_size: int = 16,
    seed: int = 0,
) -> list[ArchiveFile]:
    """Write ``studies`` studies as ``root/<patient>/<study>/<series>/<n>.dcm``; return the truth per file.

    Args:
        root: the archive folder (created).
        studies: number of studies; each is one examination of :data:`EXAMINATIONS`, in turn.
        series_per_study: series per study.
        instances_per_series: files per series.
        body_part_missing: fraction of studies whose files lack BodyPartExamined.
        image_size: rows and columns of the (noise) images.
        seed: the random generator's seed; the same arguments write the same files.
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    written: list[ArchiveFile] = []
    for study_number in range(studies):
        exam = EXAMINATIONS[study_number % len(EXAMINATIONS)]
        patient_id = f"P{study_number // 2:05d}"
        study_uid = generate_uid(entropy_srcs=[str(seed), "study", str(study_number)])
        recorded = rng.random() >= body_part_missing
        description = str(rng.choice(exam.descriptions))
        manufacturer = str(rng.choice(_MANUFACTURERS[exam.modality]))
        for series_number in range(series_per_study):
            series_uid = generate_uid(entropy_srcs=[str(seed), "series", str(study_number), str(series_number)])
            protocol = str(rng.choice(exam.protocols))
            for instance in range(instances_per_series):
                ds = Dataset()
                ds.file_meta = FileMetaDataset()
                ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
                ds.SOPClassUID = _SOP_CLASSES[exam.modality]
                ds.SOPInstanceUID = generate_uid(entropy_srcs=[series_uid, str(instance)])
                ds.file_meta.MediaStorageSOPClassUID, ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPClassUID, ds.SOPInstanceUID
                ds.SpecificCharacterSet = "ISO_IR 101"  # Latin-2: the Croatian letters of the descriptions
                ds.PatientID, ds.PatientName = patient_id, f"Test^Patient{study_number // 2}"
                ds.PatientSex = "F" if study_number % 4 < 2 else "M"
                ds.PatientAge = f"{int(rng.integers(5, 90)):03d}Y"
                ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
                ds.StudyDate = f"20{10 + study_number % 12:02d}0{1 + study_number % 9}15"
                ds.Modality, ds.Manufacturer = exam.modality, manufacturer
                ds.StudyDescription, ds.ProtocolName = description, protocol
                ds.SeriesNumber, ds.InstanceNumber = series_number + 1, instance + 1
                ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL" if exam.modality in ("CT", "MR") else "OTHER"]
                if recorded:
                    ds.BodyPartExamined = exam.body_part
                _image_attributes(ds, exam.modality, rng, image_size)
                path = root / patient_id / f"study{study_number:04d}" / f"series{series_number:02d}" / f"{instance:04d}.dcm"
                path.parent.mkdir(parents=True, exist_ok=True)
                ds.save_as(path, enforce_file_format=True)
                written.append(ArchiveFile(path, exam.modality, exam.body_part, recorded, patient_id, study_uid))
    return written
