"""A synthetic archive with a known structure, for tests and benchmarks of archive-scale steps.

:func:`write_archive` writes patients -> studies -> series -> instances the way a hospital
PACS export looks: folders per study and series, several modalities (CT, MR, CR, DX) and
body parts, the header attributes RadiologyNET indexed (acquisition parameters, windows
with several values, manufacturer, sizes), and the mess the study met: BodyPartExamined
missing in part of the files while ProtocolName and StudyDescription name the body part in
Croatian, English or Latin, with abbreviations and typos. :class:`ArchiveFile` records what
each file truly is, so a test can check what the index, the imputation or a clustering
recovered.

For pseudo-labelling, ``pixels="phantom"`` draws each body part as a shape of its own (a skull
ring, two lungs, five fingers, ...) under that modality's window instead of noise, and
:func:`write_reports` writes a narrative report per study, in Croatian, naming the body part
in the words a radiologist would use, with some studies unreported as in any real archive.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from radtl.dicom.synthetic.modules import add_window, set_pixels
from radtl.dicom.synthetic.phantoms import phantom

__all__ = ["EXAMINATIONS", "REPORT_PHRASES", "ArchiveFile", "Examination", "write_archive", "write_reports"]

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
    accession_number: str = ""


def _stored_window(ds: Dataset) -> tuple[float, float]:
    """The stored values the first window of ``ds`` maps to black and white (PS3.3 C.11.1 then C.11.2)."""
    center = float(ds.WindowCenter[0] if ds["WindowCenter"].VM > 1 else ds.WindowCenter)
    width = float(ds.WindowWidth[0] if ds["WindowWidth"].VM > 1 else ds.WindowWidth)
    slope, intercept = float(ds.get("RescaleSlope", 1)), float(ds.get("RescaleIntercept", 0))
    return (center - width / 2 - intercept) / slope, (center + width / 2 - intercept) / slope


def _image_attributes(ds: Dataset, modality: str, rng: np.random.Generator, size: int) -> None:
    """Image Pixel (12-bit noise) and the modality's acquisition attributes and windows, drawn from ``rng``."""
    photometric = "MONOCHROME1" if modality == "CR" and rng.random() < 0.3 else "MONOCHROME2"
    set_pixels(ds, rng.integers(0, 4096, (size, size), dtype=np.uint16), bits_stored=12, photometric=photometric)
    if modality == "CT":
        ds.RescaleIntercept, ds.RescaleSlope = "-1024", "1"
        add_window(ds, [40, -600], [400, 1500])
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
        add_window(ds, [rng.integers(300, 900)], [rng.integers(600, 1800)])
        ds.PixelSpacing = [f"{v:.4f}" for v in [rng.uniform(0.4, 1.0)] * 2]
    else:
        ds.KVP = str(rng.choice([50, 55, 60, 125]))
        ds.ExposureTime = str(rng.integers(5, 40))
        ds.ImagerPixelSpacing = ["0.1", "0.1"]
        add_window(ds, [2048], [4096])


def write_archive(
    root: str | os.PathLike,
    studies: int = 20,
    series_per_study: int = 2,
    instances_per_series: int = 3,
    body_part_missing: float = 0.5,
    image_size: int = 16,
    seed: int = 0,
    pixels: str = "noise",
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
        pixels: ``"noise"`` (uniform 12-bit noise) or ``"phantom"`` (:func:`phantom` of the true
            body part, spanning the file's first window, so the converted image shows it).
    """
    if pixels not in ("noise", "phantom"):
        raise ValueError(f"pixels must be 'noise' or 'phantom', not {pixels!r}")
    root = Path(root)
    rng = np.random.default_rng(seed)
    written: list[ArchiveFile] = []
    for study_number in range(studies):
        exam = EXAMINATIONS[study_number % len(EXAMINATIONS)]
        patient_id = f"P{study_number // 2:05d}"
        study_uid = generate_uid(entropy_srcs=[str(seed), "study", str(study_number)])
        recorded = rng.random() >= body_part_missing
        description = str(rng.choice(exam.descriptions))
        accession = f"A{seed:03d}{study_number:06d}"
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
                ds.AccessionNumber = accession
                ds.StudyDate = f"20{10 + study_number % 12:02d}0{1 + study_number % 9}15"
                ds.Modality, ds.Manufacturer = exam.modality, manufacturer
                ds.StudyDescription, ds.ProtocolName = description, protocol
                ds.SeriesNumber, ds.InstanceNumber = series_number + 1, instance + 1
                ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL" if exam.modality in ("CT", "MR") else "OTHER"]
                if recorded:
                    ds.BodyPartExamined = exam.body_part
                _image_attributes(ds, exam.modality, rng, image_size)
                if pixels == "phantom":
                    low, high = _stored_window(ds)
                    picture = phantom(exam.body_part, image_size, rng)
                    if ds.PhotometricInterpretation == "MONOCHROME1":
                        picture = 1.0 - picture
                    stored = np.clip(np.rint(low + picture * (high - low)), 0, 4095).astype(np.uint16)
                    ds.PixelData = stored.tobytes()
                path = root / patient_id / f"study{study_number:04d}" / f"series{series_number:02d}" / f"{instance:04d}.dcm"
                path.parent.mkdir(parents=True, exist_ok=True)
                ds.save_as(path, enforce_file_format=True)
                written.append(ArchiveFile(path, exam.modality, exam.body_part, recorded, patient_id, study_uid, accession))
    return written


#: What a report says about each body part, in the words of a Croatian radiology report.
REPORT_PHRASES: dict[str, tuple[str, ...]] = {
    "HEAD": ("CT glave bez kontrasta", "intrakranijski bez krvarenja", "moždane komore uredne širine", "kalvarija intaktna"),
    "CHEST": ("pluća bez infiltrata", "srce uredne veličine", "medijastinum nije proširen", "bez pleuralnog izljeva"),
    "ABDOMEN": ("jetra uredne veličine", "slezena i gušterača uredne", "bubrezi bez kamenaca", "bez slobodne tekućine u abdomenu"),
    "BRAIN": ("mozak uredne morfologije", "bijela tvar bez lezija", "moždane komore simetrične", "supratentorijski bez promjena"),
    "LSPINE": ("lumbalna kralježnica", "protruzija diska L4-L5", "spinalni kanal nije sužen", "kralješci uredne visine"),
    "KNEE": ("koljeno", "medijalni menisk uredan", "prednji križni ligament intaktan", "patela u uobičajenom položaju"),
    "HAND": ("šaka", "falange prstiju bez prijeloma", "metakarpalne kosti uredne", "zglobovi šake uredni"),
    "WRIST": ("ručni zglob", "distalni radius bez prijeloma", "ulna uredna", "karpalne kosti u uobičajenom odnosu"),
}
_REPORT_FILLERS = ("Bez znakova koštane destrukcije.", "Kontrola nakon mjesec dana.", "Uredan nalaz.",
                   "Nema svježih traumatskih promjena.", "Preporuča se klinička korelacija.")


def write_reports(
    files: Sequence[ArchiveFile],
    path: str | os.PathLike,
    missing: float = 0.1,
    short: float = 0.05,
    seed: int = 0,
) -> Path:
    """Write ``path``, a CSV of one narrative report per study: ``AccessionNumber,text``.

    Each report names the study's body part in two to three of its :data:`REPORT_PHRASES`
    and adds a sentence that names none, as real reports do. A fraction of the studies has
    no report, and another a report too short to use ("ok."), so that a pipeline reading
    them meets both.

    Args:
        files: what :func:`write_archive` returned.
        path: the CSV file to write.
        missing: fraction of studies without a report row.
        short: fraction of studies whose report is too short to carry meaning.
        seed: the random generator's seed.
    """
    rng = np.random.default_rng(seed)
    studies = {file.accession_number: file for file in files}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["AccessionNumber", "text"])
        for accession, file in studies.items():
            draw = rng.random()
            if draw < missing:
                continue
            if draw < missing + short:
                writer.writerow([accession, "ok."])
                continue
            phrases = rng.choice(REPORT_PHRASES[file.body_part], size=int(rng.integers(2, 4)), replace=False)
            sentences = [f"{str(p).capitalize()}." for p in phrases] + [str(rng.choice(_REPORT_FILLERS))]
            rng.shuffle(sentences)
            writer.writerow([accession, " ".join(sentences)])
    return path
