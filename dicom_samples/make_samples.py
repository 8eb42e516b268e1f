#!/usr/bin/env python
"""Deterministic generator of small synthetic DICOM sample files for radtl.

Every file written here is *synthetic*: pixel data are geometric phantoms
(ellipses, capsules, smooth noise) and all patient data are invented.  The
output is byte-for-byte reproducible: fixed dates/times, UIDs derived from
fixed strings (``pydicom.uid.generate_uid(entropy_srcs=...)``), fixed random
seeds and a fixed Implementation Class UID / Version Name in the File Meta.

Usage::

    python dicom_samples/make_samples.py --out dicom_samples      # all sets
    python dicom_samples/make_samples.py --out /tmp/x --only ct   # one set
    python dicom_samples/make_samples.py --list                   # list sets

Programmatic use::

    from make_samples import make_samples, sample_set, SAMPLE_SETS
    paths = make_samples(out_dir, only=["cr", "dx"])

Adding a new set is a small function::

    @sample_set("brain_mr_4class")
    def _brain_mr_4class(out_dir: Path) -> list[Path]:
        study = Study("brain4", patient_id="RADTL-MR-0100", ...)
        ...
        return [write(ds, out_dir / "brain_mr_4class" / "glioma" / "x.dcm")]

The fine-tuning sets (``btmr``, ``bone_age``, ``grazpedwri_dx``,
``covid19_radiography``) write labelled 64x64 images into ``tasks/<name>/``,
laid out as the public datasets they stand in for.

Only pydicom (3.x) and numpy are used.
"""

from __future__ import annotations

import argparse
import csv
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import (
    MPEG2MPML,
    UID,
    ExplicitVRLittleEndian,
    RLELossless,
    generate_uid,
)

# ---------------------------------------------------------------------------
# Constants
# ---------------------------------------------------------------------------

#: UID root (the pydicom root, which is registered for this kind of use).
UID_ROOT = "1.2.826.0.1.3680043.8.498."
#: Extra entropy source so our UIDs never collide with other pydicom users.
UID_NAMESPACE = "radtl-samples-v1"

DATE = "20240101"
TIME = "120000"
MANUFACTURER = "RADTL Synthetic Phantoms"
MODEL = "make_samples.py"
SOFTWARE_VERSION = "radtl-samples 1"
INSTITUTION = "RADTL Test Institution"

# SOP Class UIDs
CR_IMAGE = UID("1.2.840.10008.5.1.4.1.1.1")
DX_IMAGE_PRESENTATION = UID("1.2.840.10008.5.1.4.1.1.1.1")
CT_IMAGE = UID("1.2.840.10008.5.1.4.1.1.2")
ENHANCED_CT_IMAGE = UID("1.2.840.10008.5.1.4.1.1.2.1")
MR_IMAGE = UID("1.2.840.10008.5.1.4.1.1.4")
ENHANCED_MR_IMAGE = UID("1.2.840.10008.5.1.4.1.1.4.1")
SECONDARY_CAPTURE_IMAGE = UID("1.2.840.10008.5.1.4.1.1.7")
MULTIFRAME_GRAYSCALE_BYTE_SC = UID("1.2.840.10008.5.1.4.1.1.7.2")
BASIC_TEXT_SR = UID("1.2.840.10008.5.1.4.1.1.88.11")

AXIAL = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]


def uid(*parts: object) -> UID:
    """Deterministic UID derived from ``parts``."""
    return generate_uid(prefix=UID_ROOT, entropy_srcs=[UID_NAMESPACE, *map(str, parts)])


# ---------------------------------------------------------------------------
# Registry
# ---------------------------------------------------------------------------

SampleBuilder = Callable[[Path], list[Path]]
#: name -> builder.  Builders write into ``out_dir / <their subfolder>``.
SAMPLE_SETS: dict[str, SampleBuilder] = {}


def sample_set(name: str) -> Callable[[SampleBuilder], SampleBuilder]:
    """Decorator registering ``func(out_dir: Path) -> list[Path]`` as set ``name``."""

    def register(func: SampleBuilder) -> SampleBuilder:
        if name in SAMPLE_SETS:
            raise ValueError(f"sample set {name!r} registered twice")
        SAMPLE_SETS[name] = func
        return func

    return register


def make_samples(out_dir: str | Path, only: Iterable[str] | None = None) -> list[Path]:
    """Generate the registered sample sets (all, or those named in ``only``).

    Returns the sorted list of written files.
    """
    out = Path(out_dir)
    names = list(SAMPLE_SETS) if only is None else list(only)
    unknown = [n for n in names if n not in SAMPLE_SETS]
    if unknown:
        raise KeyError(f"unknown sample set(s) {unknown}; known: {sorted(SAMPLE_SETS)}")
    written: list[Path] = []
    for name in names:
        written.extend(SAMPLE_SETS[name](out))
    return sorted(written)


# ---------------------------------------------------------------------------
# Phantom / image helpers (pure numpy)
# ---------------------------------------------------------------------------


def _grid(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    y, x = np.mgrid[0 : shape[0], 0 : shape[1]]
    return y.astype(np.float64), x.astype(np.float64)


def ellipse(
    shape: tuple[int, int],
    center: tuple[float, float],
    radii: tuple[float, float],
    angle_deg: float = 0.0,
    profile: str = "mask",
) -> np.ndarray:
    """Ellipse with centre (row, col) and radii (row, col) in pixels.

    ``profile="mask"`` gives an anti-aliased 0..1 mask; ``"thickness"`` gives
    the normalised chord length sqrt(1 - r^2) (projection of an ellipsoid),
    which is what a radiograph of a rounded body looks like.
    """
    y, x = _grid(shape)
    a = math.radians(angle_deg)
    dy, dx = y - center[0], x - center[1]
    ry_ = dy * math.cos(a) - dx * math.sin(a)
    rx_ = dy * math.sin(a) + dx * math.cos(a)
    r = np.sqrt((ry_ / radii[0]) ** 2 + (rx_ / radii[1]) ** 2)
    if profile == "thickness":
        return np.sqrt(np.clip(1.0 - r**2, 0.0, 1.0))
    signed_px = (r - 1.0) * min(radii)
    return np.clip(0.5 - signed_px, 0.0, 1.0)


def capsule(
    shape: tuple[int, int],
    p0: tuple[float, float],
    p1: tuple[float, float],
    radius: float,
    profile: str = "mask",
) -> np.ndarray:
    """Line segment p0-p1 (row, col) thickened by ``radius`` pixels."""
    y, x = _grid(shape)
    vy, vx = p1[0] - p0[0], p1[1] - p0[1]
    length2 = vy * vy + vx * vx or 1.0
    t = np.clip(((y - p0[0]) * vy + (x - p0[1]) * vx) / length2, 0.0, 1.0)
    d = np.hypot(y - (p0[0] + t * vy), x - (p0[1] + t * vx))
    if profile == "thickness":
        return np.sqrt(np.clip(1.0 - (d / radius) ** 2, 0.0, 1.0))
    return np.clip(radius + 0.5 - d, 0.0, 1.0)


def polyline(shape: tuple[int, int], points: Sequence[tuple[float, float]], radius: float) -> np.ndarray:
    """Union (max) of capsules joining consecutive points (thickness profile)."""
    out = np.zeros(shape)
    for p0, p1 in zip(points[:-1], points[1:], strict=True):
        np.maximum(out, capsule(shape, p0, p1, radius, "thickness"), out=out)
    return out


def gaussian_blur(img: np.ndarray, sigma: float) -> np.ndarray:
    radius = max(1, int(3 * sigma + 0.5))
    k = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    k /= k.sum()
    out = img.astype(np.float64)
    for axis in (0, 1):
        pad = [(0, 0), (0, 0)]
        pad[axis] = (radius, radius)
        p = np.pad(out, pad, mode="reflect")
        acc = np.zeros_like(out)
        n = out.shape[axis]
        for i, w in enumerate(k):
            acc += w * (p[i : i + n] if axis == 0 else p[:, i : i + n])
        out = acc
    return out


def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Zero-mean, unit-std spatially correlated noise."""
    n = gaussian_blur(rng.standard_normal(shape), sigma)
    return (n - n.mean()) / n.std()


# --- concrete phantoms -----------------------------------------------------


def chest_radiograph(rng: np.random.Generator, shape=(256, 224)) -> np.ndarray:
    """PA chest 'attenuation' map (higher = more attenuating), roughly 0..3."""
    rows, cols = shape
    cx = cols / 2
    att = 1.6 * ellipse(shape, (rows * 0.62, cx), (rows * 0.62, cols * 0.47), 0, "thickness")
    att += 0.6 * capsule(shape, (-20, cx), (40, cx), 24, "thickness")  # neck
    # lungs (air: reduce attenuation), heart (patient's left = image right)
    for side in (-1, 1):
        att -= 1.1 * ellipse(
            shape, (rows * 0.50, cx + side * cols * 0.22), (rows * 0.30, cols * 0.17), side * 6, "thickness"
        )
    att += 0.55 * ellipse(shape, (rows * 0.66, cx + cols * 0.06), (rows * 0.14, cols * 0.17), -20, "thickness")
    # bones
    bone = 0.5 * capsule(shape, (-10, cx), (rows + 10, cx), 9, "thickness")  # spine
    for side in (-1, 1):
        clavicle = ((rows * 0.20, cx + side * 10), (rows * 0.15, cx + side * cols * 0.40))
        bone += 0.6 * capsule(shape, *clavicle, 4, "thickness")
        bone += 0.8 * ellipse(shape, (rows * 0.19, cx + side * cols * 0.49), (18, 14), 0, "thickness")  # humeral heads
        for k in range(9):  # ribs: arcs running laterally and downward
            y0 = rows * (0.22 + 0.062 * k)
            pts = [
                (y0 + rows * 0.10 * t**1.5 - 5 * math.sin(math.pi * t), cx + side * (10 + t * cols * 0.38))
                for t in np.linspace(0.0, 1.0, 8)
            ]
            bone += 0.35 * polyline(shape, pts, 2.5)
    att = np.clip(att, 0, None) + bone
    att += 0.05 * smooth_noise(rng, shape, 6.0) * (att > 0.05)
    return att


def hand_radiograph(rng: np.random.Generator, shape=(256, 192), mirror: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """PA hand: returns (soft tissue thickness, bone thickness), fingers up."""
    rows, cols = shape
    soft = np.zeros(shape)
    bone = np.zeros(shape)
    # forearm, palm
    forearm = capsule(shape, (rows * 0.80, cols * 0.52), (rows * 1.2, cols * 0.52), cols * 0.20, "thickness")
    np.maximum(soft, forearm, out=soft)
    np.maximum(soft, ellipse(shape, (rows * 0.60, cols * 0.50), (rows * 0.19, cols * 0.25), 0, "thickness"), out=soft)
    bone += capsule(shape, (rows * 0.80, cols * 0.40), (rows * 1.1, cols * 0.38), 9, "thickness")  # radius
    bone += 0.8 * capsule(shape, (rows * 0.81, cols * 0.64), (rows * 1.1, cols * 0.67), 6, "thickness")  # ulna
    for cy, cx_, r in [
        (0.72, 0.36, 8),
        (0.71, 0.46, 7),
        (0.72, 0.56, 7),
        (0.73, 0.64, 6),
        (0.665, 0.34, 7),
        (0.66, 0.44, 7),
        (0.66, 0.54, 7),
        (0.665, 0.63, 6),
    ]:
        bone += 0.8 * ellipse(shape, (rows * cy, cols * cx_), (r, r * 0.9), 0, "thickness")  # carpals
    # fingers (index..little) and thumb: (base row, base col, angle deg, phalanx lengths)
    fingers = [
        (0.46, 0.33, -12, (30, 20, 14)),
        (0.44, 0.47, -3, (33, 22, 15)),
        (0.45, 0.60, 6, (30, 21, 14)),
        (0.48, 0.72, 15, (24, 16, 12)),
    ]
    for by, bx, ang, lengths in fingers:
        base = (rows * by, cols * bx)
        a = math.radians(ang)
        direction = (-math.cos(a), math.sin(a))
        tip_len = sum(lengths) + 4
        tip = (base[0] + direction[0] * tip_len, base[1] + direction[1] * tip_len)
        np.maximum(soft, capsule(shape, base, tip, 8.5, "thickness"), out=soft)
        # metacarpal from carpus to finger base
        mc0 = (rows * 0.64, cols * (0.42 + 0.5 * (bx - 0.5)))
        bone += _tubular(shape, mc0, (base[0] + 6, base[1]), 4.5)
        pos = base
        for i, length in enumerate(lengths):
            end = (pos[0] + direction[0] * length, pos[1] + direction[1] * length)
            bone += _tubular(shape, (pos[0] - direction[0] * 2, pos[1] - direction[1] * 2), end, 3.8 - 0.5 * i)
            pos = (end[0] + direction[0] * 3, end[1] + direction[1] * 3)  # joint space
    # thumb
    t0, t1, t2, t3 = [(rows * fy, cols * fx) for fy, fx in ((0.66, 0.24), (0.57, 0.14), (0.47, 0.08), (0.40, 0.05))]
    np.maximum(soft, capsule(shape, (rows * 0.66, cols * 0.30), t3, 10, "thickness"), out=soft)
    bone += _tubular(shape, t0, t1, 5.0) + _tubular(shape, (t1[0] - 3, t1[1] - 1.5), t2, 4.2)
    bone += _tubular(shape, (t2[0] - 3, t2[1] - 1), t3, 3.5)
    soft = soft + 0.04 * smooth_noise(rng, shape, 5.0) * (soft > 0.02)
    if mirror:
        soft, bone = soft[:, ::-1].copy(), bone[:, ::-1].copy()
    return np.clip(soft, 0, None), bone


def _tubular(shape, p0, p1, radius) -> np.ndarray:
    """Long bone: dense cortex, lighter medulla."""
    return capsule(shape, p0, p1, radius, "thickness") - 0.55 * capsule(shape, p0, p1, radius * 0.55, "thickness")


def ct_chest_slice(rng: np.random.Generator, z_index: int, shape=(256, 256)) -> np.ndarray:
    """Axial chest CT slice in HU (float)."""
    rows, cols = shape
    s = rows / 256.0
    cy, cx = rows * 0.52, cols / 2
    hu = np.full(shape, -1000.0)
    body = ellipse(shape, (cy, cx), (80 * s, 112 * s))
    inner = ellipse(shape, (cy, cx), (72 * s, 103 * s))
    hu = hu * (1 - body) + (-100.0) * body  # subcutaneous fat
    hu = hu * (1 - inner) + 45.0 * inner  # muscle / mediastinum
    lung_scale = 0.80 + 0.05 * z_index  # lungs grow towards the bases
    lungs = np.zeros(shape)
    for side in (-1, 1):
        lungs = np.maximum(
            lungs,
            ellipse(shape, (cy - 6 * s, cx + side * 50 * s), (56 * s * lung_scale, 38 * s * lung_scale), side * -8),
        )
    heart = ellipse(shape, (cy + 2 * s, cx + 14 * s), (26 * s, 30 * s), 20) * (z_index >= 2)
    lungs = np.clip(lungs - heart, 0, 1)
    lung_hu = -850.0 + 25.0 * smooth_noise(rng, shape, 3.0)
    # pulmonary vessels: small soft-tissue dots inside the lungs
    vessels = np.zeros(shape)
    for _ in range(28):
        vy, vx = rng.uniform(0.25, 0.75) * rows, rng.uniform(0.15, 0.85) * cols
        vessels = np.maximum(vessels, ellipse(shape, (vy, vx), (rng.uniform(1.2, 2.8) * s,) * 2))
    lung_hu = lung_hu * (1 - vessels) + 30.0 * vessels
    hu = hu * (1 - lungs) + lung_hu * lungs
    hu = hu * (1 - heart) + 40.0 * heart
    aorta = ellipse(shape, (cy + 36 * s, cx + 20 * s), (10 * s, 10 * s))  # descending aorta, patient left
    hu = hu * (1 - aorta) + 180.0 * aorta
    # spine: cortical ring, cancellous core, canal, posterior elements
    vb_c = (cy + 50 * s, cx)
    cortex = ellipse(shape, vb_c, (15 * s, 17 * s))
    core = ellipse(shape, vb_c, (12 * s, 14 * s))
    canal = ellipse(shape, (cy + 72 * s, cx), (6 * s, 7 * s))
    post = np.clip(
        capsule(shape, (cy + 68 * s, cx - 12 * s), (cy + 79 * s, cx - 2 * s), 3 * s)
        + capsule(shape, (cy + 68 * s, cx + 12 * s), (cy + 79 * s, cx + 2 * s), 3 * s),
        0,
        1,
    )
    hu = hu * (1 - cortex) + 900.0 * cortex
    hu = hu * (1 - core) + 260.0 * core
    hu = hu * (1 - post) + 750.0 * post
    hu = hu * (1 - canal) + 20.0 * canal
    # ribs around the thoracic wall + sternum
    for ang in np.linspace(-150, 150, 9):
        if abs(ang) < 30:
            continue
        a = math.radians(ang + 90 + 4 * z_index)
        ry, rx = cy + 70 * s * math.sin(a), cx + 98 * s * math.cos(a)
        rib = ellipse(shape, (ry, rx), (4 * s, 7 * s), math.degrees(a) + 90)
        hu = hu * (1 - rib) + 700.0 * rib
    sternum = ellipse(shape, (cy - 68 * s, cx), (5 * s, 12 * s))
    hu = hu * (1 - sternum) + 600.0 * sternum
    hu += 10.0 * rng.standard_normal(shape) + 6.0 * smooth_noise(rng, shape, 1.5)
    return np.clip(hu, -1024, 3071)


def brain_mr_slice(rng: np.random.Generator, z_index: int, shape=(192, 192), scale: float = 1.0) -> np.ndarray:
    """Axial T2-weighted brain slice, signal in 0..4095."""
    rows, cols = shape
    s = rows / 192.0 * scale
    c = (rows * 0.5, cols * 0.5)
    y, x = _grid(shape)
    theta = np.arctan2(y - c[0], x - c[1])
    img = np.zeros(shape)

    def put(mask: np.ndarray, value: float | np.ndarray) -> None:
        nonlocal img
        img = img * (1 - mask) + value * mask

    put(ellipse(shape, c, (86 * s, 70 * s)), 1500.0)  # scalp / fat
    put(ellipse(shape, c, (80 * s, 64 * s)), 60.0)  # skull (dark)
    put(ellipse(shape, c, (75 * s, 59 * s)), 2700.0)  # CSF in sulci
    # cortex with gyral modulation
    rr = np.hypot((y - c[0]) / (72 * s), (x - c[1]) / (56 * s)) * (1 + 0.035 * np.sin(11 * theta))
    put(np.clip(0.5 - (rr - 1) * 56 * s, 0, 1), 1750.0)
    rr = np.hypot((y - c[0]) / (58 * s), (x - c[1]) / (43 * s)) * (1 + 0.06 * np.sin(9 * theta + 0.5))
    put(np.clip(0.5 - (rr - 1) * 43 * s, 0, 1), 1100.0)  # white matter
    vent = 0.6 + 0.25 * math.sin(math.pi * z_index / 4)  # ventricle size varies by slice
    for side in (-1, 1):
        put(ellipse(shape, (c[0] - 4 * s, c[1] + side * 8 * s), (22 * s * vent, 6 * s * vent), side * 14), 2800.0)
    bias = 1.0 + 0.12 * smooth_noise(rng, shape, 30.0)
    img = img * bias
    sigma = 22.0
    img = np.hypot(img + sigma * rng.standard_normal(shape), sigma * rng.standard_normal(shape))  # Rician
    return np.clip(img, 0, 4095)


# ---------------------------------------------------------------------------
# DICOM module helpers
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Study:
    """Patient + study level data shared by all instances of one study."""

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
        return uid("study", self.key)


def code(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = scheme
    item.CodeMeaning = meaning
    return item


def seq(*items: Dataset) -> DicomSequence:
    return DicomSequence(list(items))


def new_instance(sop_class: UID, *key: object) -> Dataset:
    """Dataset with File Meta and SOP Common module; SOP Instance UID from ``key``."""
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


def add_patient_study(ds: Dataset, study: Study) -> None:
    """Patient, General Study and Patient Study modules."""
    ds.PatientName = study.patient_name
    ds.PatientID = study.patient_id
    ds.PatientBirthDate = study.birth_date
    ds.PatientSex = study.sex
    if study.age:
        ds.PatientAge = study.age
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = "Synthetic phantom; never contained real patient data"
    ds.StudyInstanceUID = study.uid
    ds.StudyDate = DATE
    ds.StudyTime = TIME
    ds.ReferringPhysicianName = ""
    ds.StudyID = study.study_id
    ds.AccessionNumber = study.accession
    ds.StudyDescription = study.description


def add_series(
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
    """General Series + General Equipment modules."""
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
    ds.Manufacturer = MANUFACTURER
    ds.InstitutionName = INSTITUTION
    ds.ManufacturerModelName = MODEL
    ds.DeviceSerialNumber = "0001"
    ds.SoftwareVersions = SOFTWARE_VERSION


def add_frame_of_reference(ds: Dataset, study: Study, key: object = 1) -> None:
    ds.FrameOfReferenceUID = uid("for", study.key, key)
    ds.PositionReferenceIndicator = ""


def add_general_image(
    ds: Dataset,
    *,
    number: int,
    image_type: Sequence[str],
    patient_orientation: Sequence[str] | None = None,
) -> None:
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
    ds.PixelSpacing = [_ds(v) for v in spacing]
    ds.ImageOrientationPatient = [_ds(v) for v in orientation]
    ds.ImagePositionPatient = [_ds(v) for v in position]
    ds.SliceThickness = _ds(thickness)
    ds.SliceLocation = _ds(position[2])


def set_pixels(
    ds: Dataset,
    arr: np.ndarray,
    *,
    bits_stored: int,
    photometric: str = "MONOCHROME2",
    multiframe: bool = False,
) -> None:
    """Image Pixel module from a 2-D (or, with ``multiframe``, 3-D) integer array."""
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


def add_window(
    ds: Dataset,
    centers: Sequence[float],
    widths: Sequence[float],
    explanations: Sequence[str] | None = None,
    function: str | None = None,
) -> None:
    ds.WindowCenter = [_ds(c) for c in centers] if len(centers) > 1 else _ds(centers[0])
    ds.WindowWidth = [_ds(w) for w in widths] if len(widths) > 1 else _ds(widths[0])
    if explanations:
        ds.WindowCenterWidthExplanation = list(explanations) if len(explanations) > 1 else explanations[0]
    if function:
        ds.VOILUTFunction = function


def _ds(v: float) -> str:
    """Compact decimal string (<= 16 chars) for DS values."""
    v = round(float(v), 6)
    if v == int(v):
        return str(int(v))
    return f"{v:.6g}"


def write(ds: Dataset, path: Path, transfer_syntax: UID = ExplicitVRLittleEndian) -> Path:
    """Write ``ds`` as a DICOM Part 10 file, compressing if needed."""
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    if transfer_syntax != ExplicitVRLittleEndian:
        if transfer_syntax == RLELossless:
            ds.compress(RLELossless, encoding_plugin="pydicom", generate_instance_uid=False)
        else:
            ds.file_meta.TransferSyntaxUID = transfer_syntax  # caller supplied encapsulated data
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def to_12bit(values: np.ndarray, lo: float, hi: float, out_lo: int = 100, out_hi: int = 3900) -> np.ndarray:
    """Linearly map [lo, hi] to [out_lo, out_hi], clip to 12 bits, round to uint16."""
    scaled = out_lo + (values - lo) * (out_hi - out_lo) / (hi - lo)
    return np.clip(np.rint(scaled), 0, 4095).astype(np.uint16)


def percentile_window(arr: np.ndarray, lo: float = 1, hi: float = 99) -> tuple[int, int]:
    p_lo, p_hi = np.percentile(arr, [lo, hi])
    return int(round((p_lo + p_hi) / 2)), int(round(p_hi - p_lo))


# ---------------------------------------------------------------------------
# Sample sets
# ---------------------------------------------------------------------------

CR_CHEST = Study("cr-chest", "RADTL^CHEST^CR", "RADTL-CR-0001", "19700101", "M", "CR chest", "054Y", "ACC-CR-1")
CR_HAND = Study("cr-hand", "RADTL^HAND^CR", "RADTL-CR-0002", "20140101", "F", "CR hand", "010Y", "ACC-CR-2")


def cr_image(
    study: Study,
    key: str,
    number: int,
    arr: np.ndarray,
    photometric: str,
    body_part: str,
    view: str,
    orientation: Sequence[str],
    spacing: float,
    laterality: str | None = None,
) -> Dataset:
    """CR instance (series ``number``) holding 12-bit ``arr``; add a window yourself."""
    ds = new_instance(CR_IMAGE, study.key, key)
    add_patient_study(ds, study)
    add_series(
        ds,
        study,
        modality="CR",
        number=number,
        description=f"{body_part} {view}",
        body_part=body_part,
        laterality=laterality,
    )
    ds.ViewPosition = view
    add_general_image(ds, number=1, image_type=["ORIGINAL", "PRIMARY"], patient_orientation=orientation)
    ds.ImagerPixelSpacing = [_ds(spacing), _ds(spacing)]
    ds.KVP = "70" if body_part == "HAND" else "120"
    ds.ExposureTime = "10"
    ds.XRayTubeCurrent = "200"
    set_pixels(ds, arr, bits_stored=12, photometric=photometric)
    return ds


@sample_set("cr")
def build_cr(out_dir: Path) -> list[Path]:
    rng = np.random.default_rng(1001)
    chest = to_12bit(chest_radiograph(rng) + 0.01 * rng.standard_normal((256, 224)), 0.0, 3.0, 150, 3700)
    written = []

    ds = cr_image(CR_CHEST, "chest_mono2", 1, chest, "MONOCHROME2", "CHEST", "PA", ["L", "F"], 1.6)
    add_window(ds, *map(lambda v: [v], percentile_window(chest)))
    written.append(write(ds, out_dir / "cr" / "chest_mono2.dcm"))

    # First window is deliberately unusable (centre far above the 12-bit range).
    ds = cr_image(CR_CHEST, "chest_multiwindow", 2, chest, "MONOCHROME2", "CHEST", "PA", ["L", "F"], 1.6)
    c, w = percentile_window(chest)
    add_window(ds, [30000, c], [100, w], ["BOGUS ABOVE RANGE", "DEFAULT"])
    written.append(write(ds, out_dir / "cr" / "chest_multiwindow.dcm"))

    rng = np.random.default_rng(1002)
    soft, bone = hand_radiograph(rng)
    # MONOCHROME1: high stored value = dark.  Direct exposure -> high, bone -> low.
    hand = to_12bit(3.0 - 1.6 * soft - 1.3 * bone + 0.02 * rng.standard_normal(soft.shape), 0.0, 3.0, 200, 3800)
    ds = cr_image(CR_HAND, "hand_mono1", 1, hand, "MONOCHROME1", "HAND", "PA", ["R", "H"], 1.0, laterality="L")
    add_window(ds, *map(lambda v: [v], percentile_window(hand, 0.5, 99.5)))
    written.append(write(ds, out_dir / "cr" / "hand_mono1.dcm"))
    return written


DX_HAND = Study("dx-hand", "RADTL^HAND^DX", "RADTL-DX-0001", "20170101", "M", "DX hand", "007Y", "ACC-DX-1")
DX_CHEST = Study("dx-chest", "RADTL^CHEST^DX", "RADTL-DX-0002", "19800101", "F", "DX chest", "044Y", "ACC-DX-2")


def dx_image(
    study: Study,
    key: str,
    arr: np.ndarray,
    photometric: str,
    anatomy: Dataset,
    body_part: str,
    laterality: str,
    orientation: Sequence[str],
    spacing: float,
    bits_stored: int = 12,
) -> Dataset:
    """DX For-Presentation instance with ``arr`` (12 bits stored unless told); add a window or VOI LUT yourself."""
    ds = new_instance(DX_IMAGE_PRESENTATION, study.key, key)
    add_patient_study(ds, study)
    add_series(ds, study, modality="DX", number=1, description=f"{body_part} PA", body_part=body_part)
    ds.PresentationIntentType = "FOR PRESENTATION"
    add_general_image(ds, number=1, image_type=["ORIGINAL", "PRIMARY"], patient_orientation=orientation)
    ds.ImageLaterality = laterality
    ds.AnatomicRegionSequence = seq(anatomy)
    ds.ViewPosition = "PA"
    ds.ViewCodeSequence = seq(code("399348003", "SCT", "postero-anterior"))
    ds.AcquisitionContextSequence = seq()
    ds.DetectorType = "SCINTILLATOR"
    ds.PositionerType = "COLUMN" if body_part == "CHEST" else "NONE"
    ds.ImagerPixelSpacing = [_ds(spacing), _ds(spacing)]
    ds.KVP = "60" if body_part == "HAND" else "125"
    set_pixels(ds, arr, bits_stored=bits_stored, photometric=photometric)
    ds.PixelIntensityRelationship = "LOG"
    ds.PixelIntensityRelationshipSign = 1
    ds.RescaleIntercept = "0"
    ds.RescaleSlope = "1"
    ds.RescaleType = "US"
    ds.PresentationLUTShape = "INVERSE" if photometric == "MONOCHROME1" else "IDENTITY"
    return ds


@sample_set("dx")
def build_dx(out_dir: Path) -> list[Path]:
    written = []
    rng = np.random.default_rng(2001)
    soft, bone = hand_radiograph(rng, mirror=True)
    hand = to_12bit(3.0 - 1.5 * soft - 1.4 * bone + 0.02 * rng.standard_normal(soft.shape), 0.0, 3.0, 300, 3900)
    ds = dx_image(
        DX_HAND,
        "hand_mono1_inverse",
        hand,
        "MONOCHROME1",
        code("85562004", "SCT", "Hand"),
        "HAND",
        "R",
        ["L", "H"],
        1.0,
    )
    add_window(ds, *map(lambda v: [v], percentile_window(hand, 0.5, 99.5)), ["SIGMOID DEFAULT"], "SIGMOID")
    written.append(write(ds, out_dir / "dx" / "hand_mono1_inverse.dcm"))

    rng = np.random.default_rng(2002)
    chest = to_12bit(chest_radiograph(rng) + 0.01 * rng.standard_normal((256, 224)), 0.0, 3.0, 200, 3600)
    ds = dx_image(
        DX_CHEST, "chest_voilut", chest, "MONOCHROME2", code("51185008", "SCT", "Thorax"), "CHEST", "U", ["L", "F"], 1.6
    )
    # smooth sigmoid VOI LUT, 4096 entries mapping 0..4095 -> 0..4095 (12-bit output)
    c, w = percentile_window(chest)
    x = np.arange(4096, dtype=np.float64)
    curve = 1.0 / (1.0 + np.exp(-4.0 * (x - c) / w))
    curve = (curve - curve[0]) / (curve[-1] - curve[0])
    lut = Dataset()
    lut.LUTDescriptor = [4096, 0, 12]
    lut["LUTDescriptor"].VR = "US"
    lut.LUTExplanation = "SIGMOID SOFT CHEST"
    lut.add_new("LUTData", "US", [int(v) for v in np.rint(curve * 4095)])
    ds.VOILUTSequence = seq(lut)
    written.append(write(ds, out_dir / "dx" / "chest_voilut.dcm"))
    return written


CT_STUDY = Study("ct-chest", "RADTL^CHEST^CT", "RADTL-CT-0001", "19650101", "F", "CT chest", "059Y", "ACC-CT-1")
CT_LUT_STUDY = Study("ct-lut", "RADTL^PHANTOM^CTLUT", "RADTL-CT-0002", "20000101", "O", "CT water phantom")
CT_SLICES = 6
CT_RLE_SLICES = (2, 5)  # 1-based instance numbers stored with RLE Lossless
CT_SPACING = 1.5
CT_STEP = 5.0


def axial_slice(
    sop_class: UID,
    study: Study,
    key: object,
    *,
    number: int,
    shape: tuple[int, int],
    spacing: float,
    z: float,
    thickness: float,
    modality: str,
    description: str,
    body_part: str,
    image_type: Sequence[str],
    series: int = 1,
) -> Dataset:
    """An axial cross-sectional instance (CT, MR, ...) centred on the isocentre, without pixels yet.

    Fills the Patient, Study, Series, Frame of Reference, General Image and Image Plane
    modules; the caller adds the modality's acquisition attributes and the pixels.
    """
    ds = new_instance(sop_class, study.key, key)
    add_patient_study(ds, study)
    add_series(
        ds, study, modality=modality, number=series, description=description, body_part=body_part, patient_position="HFS"
    )
    add_frame_of_reference(ds, study)
    add_general_image(ds, number=number, image_type=list(image_type))
    ds.AcquisitionNumber = 1
    rows, cols = shape
    add_image_plane(
        ds, position=[-cols * spacing / 2, -rows * spacing / 2, z], spacing=[spacing, spacing], thickness=thickness
    )
    return ds


def ct_image(
    study: Study, key: object, number: int, hu: np.ndarray, z: float, series: int = 1,
    spacing: float = CT_SPACING, thickness: float = CT_STEP,
) -> Dataset:
    """Axial CT instance from an HU image (stored int16 = HU + 1024, soft-tissue and lung windows)."""
    ds = axial_slice(
        CT_IMAGE, study, key, number=number, shape=hu.shape, spacing=spacing, z=z, thickness=thickness,
        modality="CT", description="Chest 5mm", body_part="CHEST", image_type=["ORIGINAL", "PRIMARY", "AXIAL"],
        series=series,
    )
    ds.KVP = "120"
    ds.XRayTubeCurrent = 200
    ds.ExposureTime = 500
    ds.ConvolutionKernel = "STANDARD"
    stored = np.rint(hu + 1024).astype(np.int16)
    set_pixels(ds, stored, bits_stored=16)
    ds.RescaleIntercept = "-1024"
    ds.RescaleSlope = "1"
    ds.RescaleType = "HU"
    add_window(ds, [40, -600], [400, 1500], ["SOFT TISSUE", "LUNG"])
    return ds


@sample_set("ct")
def build_ct(out_dir: Path) -> list[Path]:
    written = []
    rng = np.random.default_rng(3001)
    for i in range(CT_SLICES):
        number = i + 1
        z = -100.0 - CT_STEP * i  # feet-ward
        ds = ct_image(CT_STUDY, f"slice{number}", number, ct_chest_slice(rng, i), z)
        ts = RLELossless if number in CT_RLE_SLICES else ExplicitVRLittleEndian
        written.append(write(ds, out_dir / "ct" / "series_001" / f"slice_{number:03d}.dcm", ts))

    # Single image whose stored->HU transform is a Modality LUT Sequence.
    # CT Image IOD mandates Rescale Slope/Intercept, so this is a Secondary
    # Capture instance (Modality CT) where the Modality LUT module is allowed.
    # LUT Data are unsigned, so the output range is 0..3000 HU: the phantom is
    # imaged inside a water tank (no air in the field of view).
    shape = (128, 128)
    rng = np.random.default_rng(3002)
    hu = np.zeros(shape)
    for mask, value in [
        (ellipse(shape, (64, 64), (54, 46)), 1300.0),  # skull-like shell
        (ellipse(shape, (64, 64), (49, 41)), 35.0),  # brain-like interior
        (ellipse(shape, (45, 50), (8, 8)), 80.0),
        (ellipse(shape, (45, 78), (8, 8)), 250.0),
        (ellipse(shape, (80, 50), (8, 8)), 600.0),
        (ellipse(shape, (80, 78), (8, 8)), 2000.0),
    ]:
        hu = hu * (1 - mask) + value * mask
    hu = np.clip(hu + 4.0 * rng.standard_normal(shape), 0, 3000)
    stored_axis = np.arange(4096, dtype=np.float64)
    # piecewise-linear: fine 0.1 HU steps for 0..100 HU, coarse above
    lut_hu = np.where(stored_axis <= 1000, stored_axis * 0.1, 100.0 + (stored_axis - 1000) * 2900.0 / 3095.0)
    lut_values = np.rint(lut_hu).astype(np.uint16)
    stored = np.rint(np.interp(hu, lut_hu, stored_axis)).astype(np.uint16)

    ds = new_instance(SECONDARY_CAPTURE_IMAGE, CT_LUT_STUDY.key, "modality_lut")
    add_patient_study(ds, CT_LUT_STUDY)
    add_series(ds, CT_LUT_STUDY, modality="CT", number=1, description="Modality LUT phantom", body_part="HEAD")
    ds.ConversionType = "WSD"
    ds.DateOfSecondaryCapture = DATE
    ds.TimeOfSecondaryCapture = TIME
    add_general_image(ds, number=1, image_type=["DERIVED", "SECONDARY"], patient_orientation=["L", "P"])
    ds.PixelSpacing = ["1", "1"]
    set_pixels(ds, stored, bits_stored=12)
    item = Dataset()
    item.LUTDescriptor = [4096, 0, 16]
    item["LUTDescriptor"].VR = "US"
    item.ModalityLUTType = "HU"
    item.LUTExplanation = "PIECEWISE LINEAR TO HU"
    item.add_new("LUTData", "US", [int(v) for v in lut_values])
    ds.ModalityLUTSequence = seq(item)
    add_window(ds, [40], [400], ["SOFT TISSUE"])
    written.append(write(ds, out_dir / "ct" / "ct_modality_lut.dcm"))
    return written


MR_STUDY = Study("mr-brain", "RADTL^BRAIN^MR", "RADTL-MR-0001", "19900101", "F", "MR brain", "034Y", "ACC-MR-1")
MR_SLICES = 5


def _add_mr_acquisition(ds: Dataset) -> None:
    ds.ScanningSequence = "SE"
    ds.SequenceVariant = ["SK", "SP"]
    ds.ScanOptions = ""
    ds.MRAcquisitionType = "2D"
    ds.SequenceName = "tse2d1_15"
    ds.AngioFlag = "N"
    ds.RepetitionTime = "4000"
    ds.EchoTime = "100"
    ds.EchoTrainLength = 15
    ds.NumberOfAverages = "1"
    ds.ImagingFrequency = "63.87"
    ds.ImagedNucleus = "1H"
    ds.MagneticFieldStrength = "1.5"
    ds.FlipAngle = "150"
    ds.PixelBandwidth = "200"
    ds.ReceiveCoilName = "HEAD"
    ds.TransmitCoilName = "BODY"


@sample_set("mr")
def build_mr(out_dir: Path) -> list[Path]:
    written = []
    rng = np.random.default_rng(4001)
    spacing, step = 1.2, 6.0
    for i in range(MR_SLICES):
        number = i + 1
        img = np.rint(brain_mr_slice(rng, i, scale=0.86 + 0.04 * min(i, 4 - i))).astype(np.uint16)
        ds = axial_slice(
            MR_IMAGE, MR_STUDY, f"slice{number}", number=number, shape=img.shape, spacing=spacing,
            z=20.0 + step * i, thickness=5.0, modality="MR", description="T2 TSE axial", body_part="HEAD",
            image_type=["ORIGINAL", "PRIMARY", "OTHER"],
        )
        ds.SpacingBetweenSlices = _ds(step)
        _add_mr_acquisition(ds)
        set_pixels(ds, img, bits_stored=12)
        add_window(ds, [1400], [2800])
        written.append(write(ds, out_dir / "mr" / "series_001" / f"slice_{number:03d}.dcm"))
    return written


ENH_MR_STUDY = Study("enh-mr", "RADTL^BRAIN^EMR", "RADTL-EMR-0001", "19850101", "M", "EMR brain", "039Y", "ACC-EMR-1")
ENH_CT_STUDY = Study("enh-ct", "RADTL^CHEST^ECT", "RADTL-ECT-0001", "19750101", "M", "ECT chest", "049Y", "ACC-ECT-1")
#: Per-frame (rescale slope, rescale intercept, window centre, window width, window explanation).
ENH_MR_FRAMES = [
    (1.0, 0.0, 1400, 2800, "FRAME 1"),
    (2.0, 0.0, 1500, 3000, "FRAME 2"),
    (1.0, 0.0, 20, 10, "FRAME 3"),
    (2.0, -100.0, 1300, 2600, "FRAME 4"),
]
ENH_CT_FRAMES = [
    (1.0, -1024.0, 40, 400, "SOFT_TISSUE"),
    (2.0, -2048.0, 40, 400, "SOFT_TISSUE"),
    (0.5, -1024.0, -600, 1500, "LUNG"),
    (1.0, -1024.0, 400, 1800, "BONE"),
]
UNINFORMATIVE_FRAME = 2  # 0-based index of the (almost) constant frame in enhanced_mr.dcm


def _enhanced_common(
    ds: Dataset,
    study: Study,
    modality: str,
    image_type: list[str],
    n_frames: int,
    spacing: float,
    thickness: float,
    positions: list[list[float]],
    anatomy: Dataset,
    frames: list[tuple[float, float, float, float, str]],
    rescale_type: str,
    frame_type_attr: str,
    frame_type_extra: dict[str, str],
) -> None:
    add_patient_study(ds, study)
    add_series(ds, study, modality=modality, number=1, description=f"Enhanced {modality}", patient_position="HFS")
    add_frame_of_reference(ds, study)
    ds.ImageType = image_type
    ds.InstanceNumber = 1
    ds.ContentDate = DATE
    ds.ContentTime = TIME
    ds.AcquisitionDateTime = DATE + TIME
    ds.AcquisitionDuration = 60
    ds.AcquisitionNumber = 1
    ds.ContentQualification = "RESEARCH"
    ds.BurnedInAnnotation = "NO"
    ds.RecognizableVisualFeatures = "NO"
    ds.LossyImageCompression = "00"
    ds.PresentationLUTShape = "IDENTITY"
    ds.AcquisitionContextSequence = seq()
    for k, v in frame_type_extra.items():
        setattr(ds, k, v)
    dim_uid = uid("dimension-organization", study.key)
    ds.DimensionOrganizationType = "3D"
    ds.DimensionOrganizationSequence = seq(Dataset())
    ds.DimensionOrganizationSequence[0].DimensionOrganizationUID = dim_uid
    dims = []
    for pointer, group, label in [
        (0x00209056, 0x00209111, "Stack ID"),
        (0x00209057, 0x00209111, "In-Stack Position Number"),
    ]:
        d = Dataset()
        d.DimensionOrganizationUID = dim_uid
        d.DimensionIndexPointer = pointer
        d.FunctionalGroupPointer = group
        d.DimensionDescriptionLabel = label
        dims.append(d)
    ds.DimensionIndexSequence = seq(*dims)

    shared = Dataset()
    pm = Dataset()
    pm.PixelSpacing = [_ds(spacing), _ds(spacing)]
    pm.SliceThickness = _ds(thickness)
    pm.SpacingBetweenSlices = _ds(thickness)
    shared.PixelMeasuresSequence = seq(pm)
    po = Dataset()
    po.ImageOrientationPatient = [_ds(v) for v in AXIAL]
    shared.PlaneOrientationSequence = seq(po)
    fa = Dataset()
    fa.AnatomicRegionSequence = seq(anatomy)
    fa.FrameLaterality = "U"
    shared.FrameAnatomySequence = seq(fa)
    ft = Dataset()
    ft.FrameType = image_type
    for k, v in frame_type_extra.items():
        setattr(ft, k, v)
    setattr(shared, frame_type_attr, seq(ft))
    if modality == "CT":
        irr = Dataset()
        irr.IrradiationEventUID = uid("irradiation-event", study.key)
        shared.IrradiationEventIdentificationSequence = seq(irr)
    ds.SharedFunctionalGroupsSequence = seq(shared)

    per_frame = []
    for i in range(n_frames):
        item = Dataset()
        fc = Dataset()
        fc.FrameAcquisitionNumber = 1
        fc.FrameReferenceDateTime = DATE + TIME
        fc.FrameAcquisitionDateTime = DATE + TIME
        fc.FrameAcquisitionDuration = 1000
        fc.DimensionIndexValues = [1, i + 1]
        fc.StackID = "1"
        fc.InStackPositionNumber = i + 1
        item.FrameContentSequence = seq(fc)
        pp = Dataset()
        pp.ImagePositionPatient = [_ds(v) for v in positions[i]]
        item.PlanePositionSequence = seq(pp)
        slope, intercept, wc, ww, explanation = frames[i]
        pvt = Dataset()
        pvt.RescaleIntercept = _ds(intercept)
        pvt.RescaleSlope = _ds(slope)
        pvt.RescaleType = rescale_type
        item.PixelValueTransformationSequence = seq(pvt)
        voi = Dataset()
        voi.WindowCenter = _ds(wc)
        voi.WindowWidth = _ds(ww)
        voi.WindowCenterWidthExplanation = explanation
        item.FrameVOILUTSequence = seq(voi)
        per_frame.append(item)
    ds.PerFrameFunctionalGroupsSequence = seq(*per_frame)


@sample_set("enhanced")
def build_enhanced(out_dir: Path) -> list[Path]:
    written = []
    # --- Enhanced MR: 4 frames; frame index 2 is almost constant -------------
    rng = np.random.default_rng(5001)
    shape = (128, 128)
    spacing, step = 1.8, 5.0
    frames = []
    for i, (slope, intercept, *_) in enumerate(ENH_MR_FRAMES):
        if i == UNINFORMATIVE_FRAME:
            stored = np.full(shape, 10, dtype=np.uint16)  # uninformative: 3 distinct values
            stored[60:64, 60:64] = 11
            stored[0, 0] = 12
        else:
            signal = brain_mr_slice(rng, i + 1, shape, scale=0.9)
            stored = np.clip(np.rint((signal - intercept) / slope), 0, 4095).astype(np.uint16)
        frames.append(stored)
    ds = new_instance(ENHANCED_MR_IMAGE, ENH_MR_STUDY.key, "enhanced_mr")
    image_type = ["DERIVED", "PRIMARY", "T2", "NONE"]
    positions = [[-shape[1] * spacing / 2, -shape[0] * spacing / 2, 30.0 + step * i] for i in range(4)]
    _enhanced_common(
        ds,
        ENH_MR_STUDY,
        "MR",
        image_type,
        4,
        spacing,
        step,
        positions,
        code("12738006", "SCT", "Brain"),
        ENH_MR_FRAMES,
        "US",
        "MRImageFrameTypeSequence",
        {
            "PixelPresentation": "MONOCHROME",
            "VolumetricProperties": "VOLUME",
            "VolumeBasedCalculationTechnique": "NONE",
            "ComplexImageComponent": "MAGNITUDE",
            "AcquisitionContrast": "T2",
        },
    )
    ds.ResonantNucleus = "1H"
    ds.KSpaceFiltering = "NONE"
    ds.MagneticFieldStrength = "1.5"
    ds.ApplicableSafetyStandardAgency = "IEC"
    ds.ImageComments = f"Frame index {UNINFORMATIVE_FRAME} (0-based) is almost uniform"
    set_pixels(ds, np.stack(frames), bits_stored=12, multiframe=True)
    written.append(write(ds, out_dir / "enhanced" / "enhanced_mr.dcm"))

    # --- Enhanced CT: 4 frames, per-frame rescale to HU ------------------------
    rng = np.random.default_rng(5002)
    spacing_ct = 3.0
    frames = []
    for i, (slope, intercept, *_) in enumerate(ENH_CT_FRAMES):
        hu = ct_chest_slice(rng, i + 1, shape)
        frames.append(np.clip(np.rint((hu - intercept) / slope), 0, 65535).astype(np.uint16))
    ds = new_instance(ENHANCED_CT_IMAGE, ENH_CT_STUDY.key, "enhanced_ct")
    image_type = ["DERIVED", "PRIMARY", "VOLUME", "NONE"]
    positions = [[-shape[1] * spacing_ct / 2, -shape[0] * spacing_ct / 2, -100.0 - 5.0 * i] for i in range(4)]
    _enhanced_common(
        ds,
        ENH_CT_STUDY,
        "CT",
        image_type,
        4,
        spacing_ct,
        5.0,
        positions,
        code("51185008", "SCT", "Thorax"),
        ENH_CT_FRAMES,
        "HU",
        "CTImageFrameTypeSequence",
        {
            "PixelPresentation": "MONOCHROME",
            "VolumetricProperties": "VOLUME",
            "VolumeBasedCalculationTechnique": "NONE",
        },
    )
    set_pixels(ds, np.stack(frames), bits_stored=16, multiframe=True)
    written.append(write(ds, out_dir / "enhanced" / "enhanced_ct.dcm"))
    return written


BROKEN_STUDY = Study("broken", "RADTL^BROKEN", "RADTL-BAD-0001", "19600101", "O", "Deliberately broken inputs")


@sample_set("broken")
def build_broken(out_dir: Path) -> list[Path]:
    folder = out_dir / "broken"
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    rng = np.random.default_rng(6001)
    hu = ct_chest_slice(rng, 2, (128, 128))

    # 1. valid CT header, Pixel Data shorter than Rows*Columns*2 (even length)
    ds = ct_image(BROKEN_STUDY, "truncated_pixels", 1, hu, -100.0, series=1)
    ds.PixelData = ds.PixelData[: 128 * 64 * 2 + 100]  # about half the expected bytes
    written.append(write(ds, folder / "truncated_pixels.dcm"))

    # 2. not DICOM at all
    p = folder / "not_dicom.dcm"
    p.write_bytes(b"this is not a DICOM file\n")
    written.append(p)

    # 3. Basic Text SR: valid DICOM without Pixel Data
    written.append(write(_basic_text_sr(), folder / "structured_report.dcm"))

    # 4. header claims 65535 x 65535 x 1000 frames, Pixel Data is 16 bytes
    ds = new_instance(MULTIFRAME_GRAYSCALE_BYTE_SC, BROKEN_STUDY.key, "absurd")
    add_patient_study(ds, BROKEN_STUDY)
    add_series(ds, BROKEN_STUDY, modality="OT", number=3, description="Absurd dimensions", body_part="CHEST")
    ds.ConversionType = "WSD"
    add_general_image(ds, number=1, image_type=["DERIVED", "SECONDARY"], patient_orientation=["L", "P"])
    set_pixels(ds, np.arange(16, dtype=np.uint8).reshape(4, 4), bits_stored=8)
    ds.PresentationLUTShape = "IDENTITY"
    ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = "0", "1", "US"
    ds.Rows = ds.Columns = 65535
    ds.NumberOfFrames = 1000
    ds.FrameIncrementPointer = 0x00181063  # Frame Time
    ds.FrameTime = "40"
    written.append(write(ds, folder / "absurd_dimensions.dcm"))

    # 5. MPEG-2 transfer syntax (no Python decoder), junk in the single fragment
    ds = new_instance(SECONDARY_CAPTURE_IMAGE, BROKEN_STUDY.key, "mpeg2")
    add_patient_study(ds, BROKEN_STUDY)
    add_series(ds, BROKEN_STUDY, modality="OT", number=4, description="Unsupported compression", body_part="CHEST")
    ds.ConversionType = "WSD"
    add_general_image(ds, number=1, image_type=["DERIVED", "SECONDARY"], patient_orientation=["L", "P"])
    ds.LossyImageCompression = "01"
    ds.SamplesPerPixel = 3
    ds.PhotometricInterpretation = "YBR_PARTIAL_420"
    ds.PlanarConfiguration = 0
    ds.Rows, ds.Columns = 128, 128
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    junk = b"\x00\x00\x01\xb3" + bytes(range(16, 48))  # MPEG sequence header start code + junk
    ds.PixelData = encapsulate([junk])
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    written.append(write(ds, folder / "unsupported_compression.dcm", MPEG2MPML))

    # 6. valid CT file cut 300 bytes into the main dataset
    full = folder / "truncated_header.dcm"
    write(ct_image(BROKEN_STUDY, "truncated_header", 2, hu, -105.0, series=2), full)
    raw = full.read_bytes()
    meta_len = int.from_bytes(raw[140:144], "little")  # (0002,0000) UL value
    full.write_bytes(raw[: 144 + meta_len + 300])
    written.append(full)

    # 7. zero-byte file
    p = folder / "empty.dcm"
    p.write_bytes(b"")
    written.append(p)
    return written


def _basic_text_sr() -> Dataset:
    ds = new_instance(BASIC_TEXT_SR, BROKEN_STUDY.key, "sr")
    add_patient_study(ds, BROKEN_STUDY)
    add_series(ds, BROKEN_STUDY, modality="SR", number=5, description="Text report")
    ds.ReferencedPerformedProcedureStepSequence = seq()
    ds.InstanceNumber = 1
    ds.CompletionFlag = "COMPLETE"
    ds.VerificationFlag = "UNVERIFIED"
    ds.ContentDate = DATE
    ds.ContentTime = TIME
    ds.PerformedProcedureCodeSequence = seq()
    ds.ValueType = "CONTAINER"
    ds.ConceptNameCodeSequence = seq(code("18748-4", "LN", "Diagnostic Imaging Report"))
    ds.ContinuityOfContent = "SEPARATE"
    finding = Dataset()
    finding.RelationshipType = "CONTAINS"
    finding.ValueType = "TEXT"
    finding.ConceptNameCodeSequence = seq(code("121071", "DCM", "Finding"))
    finding.TextValue = "Synthetic report: no pixel data in this object."
    ds.ContentSequence = seq(finding)
    return ds


# ---------------------------------------------------------------------------
# Fine-tuning task sets: dicom_samples/tasks/<name>/
# ---------------------------------------------------------------------------
#
# Four small labelled sets laid out like public fine-tuning datasets, with a
# DICOM file (64x64, RLE Lossless) wherever the public dataset has a JPEG/PNG.
# The label is drawn into the phantom strongly enough that a small CNN trained
# from scratch learns it in a few epochs; position, size, intensity and noise
# are jittered so that it is not trivial.

TASKS = "tasks"
TASK_SHAPE = (64, 64)


def downsample(img: np.ndarray, factor: int) -> np.ndarray:
    """Block mean by an integer ``factor`` (render at a higher resolution, then anti-alias)."""
    rows, cols = img.shape
    return img.reshape(rows // factor, factor, cols // factor, factor).mean(axis=(1, 3))


def resample(
    img: np.ndarray, out_shape: tuple[int, int], center: tuple[float, float], zoom: float, angle_deg: float = 0.0
) -> np.ndarray:
    """Bilinear resampling: the output grid is centred on ``center`` (row, col) of ``img``,
    ``zoom`` input pixels per output pixel, rotated by ``angle_deg``; ``img`` is blurred first
    (sigma ``zoom / 2``) so that shrinking does not alias."""
    src = gaussian_blur(img, zoom / 2) if zoom > 1.5 else img
    y, x = _grid(out_shape)
    y -= (out_shape[0] - 1) / 2
    x -= (out_shape[1] - 1) / 2
    a = math.radians(angle_deg)
    sy = np.clip(center[0] + zoom * (y * math.cos(a) - x * math.sin(a)), 0, src.shape[0] - 1.001)
    sx = np.clip(center[1] + zoom * (y * math.sin(a) + x * math.cos(a)), 0, src.shape[1] - 1.001)
    y0, x0 = np.floor(sy).astype(int), np.floor(sx).astype(int)
    fy, fx = sy - y0, sx - x0
    return (
        src[y0, x0] * (1 - fy) * (1 - fx)
        + src[y0 + 1, x0] * fy * (1 - fx)
        + src[y0, x0 + 1] * (1 - fy) * fx
        + src[y0 + 1, x0 + 1] * fy * fx
    )


def age_string(months: int) -> str:
    """DICOM Age String: months below two years, years above."""
    return f"{months:03d}M" if months < 24 else f"{months // 12:03d}Y"


def birth_date(age_months: float) -> str:
    """Birth date ``age_months`` before the fixed study date."""
    born = date(int(DATE[:4]), int(DATE[4:6]), int(DATE[6:])) - timedelta(days=round(age_months * 30.4375))
    return born.strftime("%Y%m%d")


def write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[object]]) -> Path:
    """Plain CSV with ``\\n`` line ends (deterministic on every platform)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    return path


class _Frame:
    """Maps a phantom's own (row, col) units to image pixels: origin, scale and rotation."""

    def __init__(self, origin: tuple[float, float], scale: float, angle_deg: float) -> None:
        self.origin, self.scale, self.angle = origin, scale, angle_deg
        a = math.radians(angle_deg)
        self.cos, self.sin = math.cos(a), math.sin(a)

    def __call__(self, r: float, c: float) -> tuple[float, float]:
        return (
            self.origin[0] + self.scale * (r * self.cos - c * self.sin),
            self.origin[1] + self.scale * (r * self.sin + c * self.cos),
        )

    def along(self, p: tuple[float, float], direction: tuple[float, float], length: float) -> tuple[float, float]:
        return p[0] + direction[0] * length, p[1] + direction[1] * length


# --- 1. btmr: Kaggle "Brain Tumor MRI Dataset" layout ------------------------

BTMR_CLASSES = {"glioma": "gl", "meningioma": "me", "notumor": "no", "pituitary": "pi"}
BTMR_SPLITS = {"Training": ("Tr", 24), "Testing": ("Te", 6)}


def brain_tumour_mr(rng: np.random.Generator, tumour: str, shape: tuple[int, int] = TASK_SHAPE) -> np.ndarray:
    """Axial T2 brain slice (0..~1300, background 0) with a glioma, meningioma, pituitary mass or none.

    glioma: irregular bright mass with oedema inside one hemisphere; meningioma: round,
    homogeneous bright mass on the inner skull edge; pituitary: small bright blob on the
    midline below the centre (sella region); notumor: none.
    """
    rows, cols = shape
    scale = rng.uniform(0.86, 1.0)
    img = brain_mr_slice(rng, int(rng.integers(0, 5)), shape, scale)
    s = rows / 192.0 * scale
    c = (rows / 2, cols / 2)
    bright = rng.uniform(3300, 3700)
    texture = 1.0 + 0.06 * smooth_noise(rng, shape, 1.0)
    if tumour == "glioma":
        side = rng.choice([-1, 1])
        cy = c[0] + rng.uniform(-0.35, 0.35) * 58 * s
        cx = c[1] + side * rng.uniform(0.30, 0.55) * 43 * s
        r = rng.uniform(3.5, 5.5)
        mass = ellipse(shape, (cy, cx), (r, r * rng.uniform(0.65, 1.0)), rng.uniform(0, 180))
        for _ in range(3):
            a, d = rng.uniform(0, 2 * math.pi), r * rng.uniform(0.5, 0.9)
            lobe = ellipse(shape, (cy + d * math.sin(a), cx + d * math.cos(a)), (r * rng.uniform(0.35, 0.6),) * 2)
            mass = np.maximum(mass, lobe)
        oedema = np.clip(1.6 * gaussian_blur(mass, 1.8), 0, 1)
        img = img * (1 - oedema) + 2300.0 * oedema
        img = img * (1 - mass) + bright * texture * mass
        if rng.random() < 0.5:  # necrotic core
            core = ellipse(shape, (cy, cx), (r * 0.4, r * 0.4))
            img = img * (1 - core) + 1700.0 * core
    elif tumour == "meningioma":
        a = rng.uniform(0, 2 * math.pi)
        r = rng.uniform(4.0, 5.5)
        cy = c[0] + (75 * s - 0.8 * r) * math.sin(a)
        cx = c[1] + (59 * s - 0.8 * r) * math.cos(a)
        mass = ellipse(shape, (cy, cx), (r, r))
        img = img * (1 - mass) + bright * mass
    elif tumour == "pituitary":
        r = rng.uniform(2.4, 3.4)
        mass = ellipse(shape, (c[0] + rng.uniform(0.40, 0.55) * 72 * s, c[1] + rng.uniform(-1, 1)), (r, r * 1.2))
        img = img * (1 - mass) + bright * mass
    elif tumour != "notumor":
        raise ValueError(tumour)
    sigma = 30.0
    img = np.hypot(img + sigma * rng.standard_normal(shape), sigma * rng.standard_normal(shape))
    img *= ellipse(shape, c, (86 * s + 1, 70 * s + 1)) > 0.5  # black background outside the head
    img *= 0.3 * rng.uniform(0.85, 1.05)  # receiver gain: values up to about 1300 of the 12 bits
    img = np.roll(img, (int(rng.integers(-3, 4)), int(rng.integers(-3, 4))), axis=(0, 1))
    return np.clip(img, 0, 4095)


@sample_set("btmr")
def build_btmr(out_dir: Path) -> list[Path]:
    written = []
    spacing = 3.6  # 64 x 3.6 mm = 230 mm field of view
    for split, (prefix, count) in BTMR_SPLITS.items():
        for label, (name, short) in enumerate(BTMR_CLASSES.items()):
            rng = np.random.default_rng(7001 + 10 * label + (prefix == "Te"))
            for i in range(1, count + 1):
                stem = f"{prefix}-{short}_{i:04d}"
                n = 1000 * (prefix == "Te") + 100 * label + i
                years = int(rng.integers(20, 80))
                study = Study(
                    f"btmr-{stem}", f"RADTL^BTMR^{n}", f"RADTL-BTMR-{n:04d}", birth_date(12 * years + 6),
                    str(rng.choice(["F", "M"])), "MR brain", f"{years:03d}Y", f"ACC-BTMR-{n:04d}",
                )
                img = np.rint(brain_tumour_mr(rng, name)).astype(np.uint16)
                ds = axial_slice(
                    MR_IMAGE, study, "img", number=1, shape=img.shape, spacing=spacing, z=float(rng.uniform(10, 40)),
                    thickness=5.0, modality="MR", description="T2 TSE axial", body_part="HEAD",
                    image_type=["ORIGINAL", "PRIMARY", "OTHER"],
                )
                _add_mr_acquisition(ds)
                set_pixels(ds, img, bits_stored=12)
                center, width = percentile_window(img, 0.5, 99.8)
                add_window(ds, [center], [width])
                written.append(write(ds, out_dir / TASKS / "btmr" / split / name / f"{stem}.dcm", RLELossless))
    return written


# --- 2. bone_age: RSNA Pediatric Bone Age layout ------------------------------

#: Carpal ossification centres: (row, col) in the hand frame, onset in months.
CARPALS = [
    (-3.0, 2.0, 3),  # capitate
    (-3.0, 8.0, 4),  # hamate
    (4.0, 4.0, 30),  # triquetrum
    (4.5, -2.5, 42),  # lunate
    (-3.5, -11.0, 54),  # trapezium
    (-3.5, -4.5, 60),  # trapezoid
    (4.0, -9.0, 66),  # scaphoid
    (2.0, 10.5, 120),  # pisiform
]
#: Rays of a left hand, thumb on the image left: (base row, base col, angle deg, segment lengths).
HAND_RAYS = [
    (-5.0, -13.0, -40, (17.0, 12.0, 9.0)),  # thumb: metacarpal, proximal, distal
    (-7.0, -9.0, -7, (29.0, 21.0, 12.0, 9.0)),  # index
    (-7.0, -3.0, -1, (31.0, 23.0, 14.0, 10.0)),  # middle
    (-7.0, 3.0, 5, (29.0, 21.0, 13.0, 9.0)),  # ring
    (-6.0, 8.5, 12, (26.0, 17.0, 10.0, 8.0)),  # little
]


def growing_hand(
    rng: np.random.Generator, age_months: float, male: bool, shape: tuple[int, int] = (128, 128)
) -> tuple[np.ndarray, np.ndarray]:
    """PA left hand of a child with bone age ``age_months``: (soft tissue, bone) thickness maps.

    With bone age the hand grows, bones get thicker and denser, the phalangeal and
    radial epiphyses widen and fuse (the dark physis closes), and the carpal
    ossification centres appear one by one and grow. Boys' hands are a little larger.
    """
    t = float(np.clip((age_months - 12) / 204, 0, 1))
    size = 0.76 * (0.70 + 0.30 * t + (0.03 if male else 0.0)) * rng.uniform(0.98, 1.02)
    f = _Frame((shape[0] * 0.70 + rng.uniform(-3, 3), shape[1] * 0.52 + rng.uniform(-4, 4)), size, rng.uniform(-8, 8))
    thick = 0.80 + 0.40 * t
    gap = 2.2 * max(0.0, 1 - t / 0.85)  # physis width, closed from bone age ~15.5 y
    epi = float(np.clip((age_months - 10) / 30, 0, 1))  # phalangeal epiphyses ossify in year 1-3
    soft = np.zeros(shape)
    bone = np.zeros(shape)
    np.maximum(soft, capsule(shape, f(6, 0), f(90, 0), 16.5 * size, "thickness"), out=soft)
    np.maximum(soft, ellipse(shape, f(-21, -1), (24 * size, 21 * size), -f.angle, "thickness"), out=soft)

    def epiphysis(p: tuple[float, float], direction: tuple[float, float], width: float, height: float) -> np.ndarray:
        angle = math.degrees(math.atan2(direction[1], -direction[0]))  # ellipse long axis across the bone
        return ellipse(shape, p, (height * size, width * size), -(f.angle + angle), "thickness")

    for k, (br, bc, angle, lengths) in enumerate(HAND_RAYS):
        a = math.radians(angle)
        d = (-math.cos(a), math.sin(a))
        pos = (br, bc)
        radii = (3.4, 2.9, 2.4, 2.0) if k else (3.6, 2.9, 2.3)
        tip = f.along(pos, d, sum(lengths) + 2.5 * len(lengths) + 3)
        skin = f.along(pos, d, 0.6 * lengths[0] if k else 0.0)
        np.maximum(soft, capsule(shape, f(*skin), f(*tip), (5.5 if k else 6.5) * size, "thickness"), out=soft)
        for j, (length, radius) in enumerate(zip(lengths, radii, strict=True)):
            r = radius * thick
            start = pos
            if j > 0 and epi > 0:  # epiphysis at the proximal end of each phalanx
                h = 0.8 + 0.7 * t
                bone += epi * 0.9 * epiphysis(f(*f.along(pos, d, h)), d, r * (0.55 + 0.5 * t), h)
                start = f.along(pos, d, 2 * h + gap)
            end = f.along(pos, d, length)
            bone += _tubular(shape, f(*start), f(*end), r * size)
            pos = f.along(end, d, 2.5)  # joint space
    # forearm: radius (thumb side) and ulna, with their distal epiphyses
    radius_top, ulna_top = (10.0, -8.0), (12.0, 8.0)
    bone += _tubular(shape, f(*radius_top), f(95, -9), 5.5 * thick * size)
    bone += 0.85 * _tubular(shape, f(*ulna_top), f(95, 10), 3.8 * thick * size)
    for top, r, onset in [(radius_top, 5.5, 12), (ulna_top, 3.8, 84)]:
        grow = float(np.clip((age_months - onset) / 48, 0, 1))
        if grow > 0:
            h = 1.0 + 1.2 * t
            p = (top[0] - r * thick * 0.6 - gap - h, top[1])
            bone += grow * epiphysis(f(*p), (-1.0, 0.0), r * thick * (0.45 + 0.6 * t), h)
    for cr, cc, onset in CARPALS:
        grow = float(np.clip((age_months - onset) / 84, 0, 1))
        if grow > 0:
            rad = 3.8 * grow**0.6 + 0.6
            bone += 0.85 * ellipse(shape, f(cr, cc), (rad * size, rad * 0.9 * size), -f.angle, "thickness")
    soft = soft + 0.03 * smooth_noise(rng, shape, 5.0) * (soft > 0.02)
    return np.clip(soft, 0, None), bone * (0.75 + 0.55 * t)


@sample_set("bone_age")
def build_bone_age(out_dir: Path) -> list[Path]:
    folder = out_dir / TASKS / "bone_age"
    rng = np.random.default_rng(7101)
    n = 96
    ids = np.sort(rng.choice(np.arange(1377, 15611), n, replace=False))
    bone_ages = np.rint(12 + 204 * (rng.permutation(n) + rng.uniform(0, 1, n)) / n).astype(int)
    males = rng.random(n) < 0.54
    written, rows = [], []
    for image_id, boneage, male in zip(ids.tolist(), bone_ages.tolist(), males.tolist(), strict=True):
        months = int(np.clip(round(boneage + rng.normal(0, 10)), 6, 228))  # chronological age
        study = Study(
            f"bone-age-{image_id}", f"RADTL^BONEAGE^{image_id}", f"RADTL-BA-{image_id:05d}", birth_date(months),
            "M" if male else "F", "Hand bone age", age_string(months), f"ACC-BA-{image_id:05d}",
        )
        soft, bone = growing_hand(rng, boneage, male)
        val = downsample(3.0 - 1.3 * soft - 1.0 * bone, 2)
        val += 0.015 * rng.standard_normal(val.shape) * (val < 2.98)
        # MONOCHROME1: direct exposure (background) high, bone low
        arr = to_12bit(val, 0.0, 3.0, 200, 3800)
        ds = cr_image(study, "img", 1, arr, "MONOCHROME1", "HAND", "PA", ["R", "H"], 3.0, laterality="L")
        add_window(ds, [2300], [3400])
        written.append(write(ds, folder / "boneage-training-dataset" / f"{image_id}.dcm", RLELossless))
        rows.append((image_id, boneage, "True" if male else "False"))
    written.append(write_csv(folder / "boneage-training-dataset.csv", ("id", "boneage", "male"), rows))
    return written


# --- 3. grazpedwri_dx: GRAZPEDWRI-DX layout ------------------------------------

GRAZ_COLUMNS = (
    "filestem", "patient_id", "timehash", "gender", "age", "laterality", "projection", "ao_classification", "cast",
    "diagnosis_uncertain", "fracture_visible", "initial_exam", "metal", "osteopenia", "pixel_spacing",
    "device_manufacturer",
)
GRAZ_AO = ["23r-M/2.1", "23r-M/3.1", "23r-E/2.1", "23u-E/7", "23r-M/2.1;23u-E/7"]
GRAZ_SPACING = 1.2


def pediatric_wrist(
    rng: np.random.Generator,
    age_years: float,
    osteopenia: bool,
    fracture: bool,
    metal: bool,
    shape: tuple[int, int] = (128, 128),
) -> np.ndarray:
    """Frontal left wrist of a child, attenuation map (about 0..2.5; metal 3).

    Radius and ulna (tubes: a cortex around a lighter medulla, physis and epiphysis),
    carpal bones and metacarpal bases. Osteopenia: the bone is much less dense and its
    cortex thinner, so bone is darker against the soft tissue.
    """
    t = float(np.clip(age_years / 17, 0, 1))
    size = 0.95 * (0.85 + 0.15 * t) * rng.uniform(0.96, 1.04)
    f = _Frame((shape[0] * 0.47 + rng.uniform(-4, 4), shape[1] * 0.5 + rng.uniform(-4, 4)), size, rng.uniform(-6, 6))
    if osteopenia:
        density, cortex, lucency = rng.uniform(0.55, 0.70), rng.uniform(0.14, 0.22), 0.75
    else:
        density, cortex, lucency = rng.uniform(0.95, 1.10), rng.uniform(0.32, 0.42), 0.45

    def tube(p0: tuple[float, float], p1: tuple[float, float], r: float) -> np.ndarray:
        return capsule(shape, f(*p0), f(*p1), r * size, "thickness") - lucency * capsule(
            shape, f(*p0), f(*p1), r * (1 - cortex) * size, "thickness"
        )

    soft = np.maximum(capsule(shape, f(4, 0), f(130, 0), 23 * size, "thickness"),
                      ellipse(shape, f(-32, 0), (36 * size, 28 * size), -f.angle, "thickness"))
    bone = np.zeros(shape)
    gap = 2.4 * max(0.0, 1 - t / 0.95)
    for top, r, col1, onset in [((12.0, -12.0), 9.0, -13.0, 1.0), ((14.0, 11.0), 6.0, 12.0, 7.0)]:
        bone += tube(top, (135.0, col1), r)  # radius, then ulna
        grow = float(np.clip((age_years - onset) / 5, 0, 1))
        if grow > 0:
            h = 1.5 + 1.5 * t
            p = f(top[0] - 0.7 * r - gap - h, top[1])
            epiphysis = ellipse(shape, p, (h * size, r * (0.5 + 0.5 * t) * size), -f.angle, "thickness")
            bone += grow * (1 - 0.5 * lucency) * epiphysis
    for cr, cc, onset in CARPALS:  # reuse the hand's carpal layout, a bit larger
        grow = float(np.clip((age_years * 12 - onset) / 84, 0, 1))
        if grow > 0:
            rad = 5.0 * grow**0.6 + 0.8
            carpal = ellipse(shape, f(1.3 * cr - 4, 1.3 * cc), (rad * size, rad * 0.9 * size), -f.angle, "thickness")
            bone += (1 - 0.5 * lucency) * carpal
    for k, (col0, col1) in enumerate([(-19.0, -30.0), (-11.0, -13.0), (-3.0, -3.0), (5.0, 7.0), (12.0, 16.0)]):
        bone += tube((-14.0 + 4 * (k == 0), col0), (-70.0 + 20 * (k == 0), col1), 4.6 - 0.3 * (k == 4))
    if fracture:  # thin lucent line across the distal radius metaphysis, slightly oblique
        row = rng.uniform(20, 32)
        tilt = rng.uniform(-5, 5)
        line = capsule(shape, f(row - tilt, -24), f(row + tilt, 0), 0.9 * size)
        bone *= 1 - 0.8 * line
    att = 0.55 * soft + density * bone
    if metal:  # plate with screws on the radius shaft
        plate = capsule(shape, f(35, -23), f(80, -24), 2.2 * size)
        for row in (42, 56, 70):
            plate = np.maximum(plate, capsule(shape, f(row, -26), f(row + 1, -2), 1.3 * size))
        att = att * (1 - plate) + 3.0 * plate
    return att + 0.02 * smooth_noise(rng, shape, 4.0) * (soft > 0.02)


@sample_set("grazpedwri_dx")
def build_grazpedwri_dx(out_dir: Path) -> list[Path]:
    folder = out_dir / TASKS / "grazpedwri_dx"
    rng = np.random.default_rng(7201)
    # 80 patients, 16 of them with a follow-up image: 40 osteopenia images (33 patients), 56 without (47)
    labels = [True] * 33 + [False] * 47
    follow_up = set(rng.choice(np.flatnonzero(labels), 7, replace=False).tolist())
    follow_up |= set(rng.choice(np.flatnonzero(np.logical_not(labels)), 9, replace=False).tolist())
    patient_ids = rng.choice(np.arange(1, 6092), len(labels), replace=False)
    images = []  # (filestem, row, image parameters)
    for k, (osteopenia, pid) in enumerate(zip(labels, patient_ids.tolist(), strict=True)):
        gender = "M" if rng.random() < 0.6 else "F"
        age = round(float(rng.uniform(2.0, 17.5)), 1)
        side = "L" if rng.random() < 0.5 else "R"
        timehash = int(rng.integers(100_000_000, 1_300_000_000))
        for visit in range(1 + (k in follow_up)):
            fracture = rng.random() < (0.6 if visit == 0 else 0.3)
            metal = rng.random() < 0.05
            stem = f"{pid:04d}_{timehash:010d}_{visit + 1:02d}_WRI-{side}1_{gender}{int(age):03d}"
            row = (
                stem, pid, timehash, gender, age, side, 1, str(rng.choice(GRAZ_AO)) if fracture else "", "", "",
                1 if fracture else "", 1 if visit == 0 else "", 1 if metal else "", 1 if osteopenia else "",
                GRAZ_SPACING, MANUFACTURER,
            )
            images.append((stem, row, (pid, age, gender, side, osteopenia, fracture, metal)))
            timehash += int(rng.integers(600_000, 6_000_000))
            age = round(age + float(rng.uniform(0.05, 0.4)), 1)
    images.sort(key=lambda item: item[0])
    written = []
    for index, (stem, _, (pid, age, gender, side, osteopenia, fracture, metal)) in enumerate(images):
        study = Study(
            f"graz-{stem}", f"RADTL^GRAZ^{pid}", f"RADTL-GW-{pid:04d}", birth_date(age * 12), gender, "Wrist",
            age_string(int(age * 12)), f"ACC-GW-{index + 1:04d}",
        )
        att = pediatric_wrist(rng, age, osteopenia, fracture, metal)
        att = downsample(att, 2) * rng.uniform(0.96, 1.04)
        if side == "R":
            att = att[:, ::-1]
        arr = np.clip(np.rint(3000 + 16000 * att + 150 * rng.standard_normal(att.shape) * (att > 0.02)), 0, 65535)
        ds = dx_image(
            study, "img", arr.astype(np.uint16), "MONOCHROME2", code("8205005", "SCT", "Wrist"), "WRIST", side,
            ["R", "H"] if side == "L" else ["L", "H"], GRAZ_SPACING, bits_stored=16,
        )
        ds.KVP = "55"
        add_window(ds, [21000], [36000])
        part = "images_part1" if index < len(images) // 2 else "images_part2"
        written.append(write(ds, folder / part / f"{stem}.dcm", RLELossless))
    written.append(write_csv(folder / "dataset.csv", GRAZ_COLUMNS, [row for _, row, _ in images]))
    return written


# --- 4. covid19_radiography: COVID-19 Radiography Database layout -------------

COVID_CLASSES = {"COVID": 40, "Normal": 56, "Lung_Opacity": 4}


def covid_chest(rng: np.random.Generator, finding: str, shape: tuple[int, int] = TASK_SHAPE) -> np.ndarray:
    """PA chest attenuation (about 0..3) at ``shape``.

    COVID: hazy opacities in the periphery of both lower zones; Lung_Opacity: one dense
    lobar consolidation in one upper/mid zone; Normal: clear lungs.
    """
    rows, cols = 256, 224
    cx = cols / 2
    att = chest_radiograph(rng, (rows, cols))
    big = (rows, rows)  # square film: air on both sides
    pad = (rows - cols) // 2
    att = np.pad(att, [(0, 0), (pad, pad)])
    cx += pad
    lungs = np.zeros(big)
    for side in (-1, 1):
        lungs += ellipse(big, (rows * 0.50, cx + side * cols * 0.22), (rows * 0.30, cols * 0.17), side * 6)
    lungs = gaussian_blur(np.clip(lungs, 0, 1), 4.0)
    opacity = np.zeros(big)
    if finding == "COVID":
        for side in (-1, 1):
            amp = rng.uniform(0.40, 0.60)
            for _ in range(int(rng.integers(2, 4))):
                centre = (rows * rng.uniform(0.60, 0.74), cx + side * cols * rng.uniform(0.27, 0.33))
                blob = ellipse(big, centre, (rng.uniform(22, 36), rng.uniform(14, 22)), rng.uniform(-30, 30))
                opacity += amp * rng.uniform(0.7, 1.0) * gaussian_blur(blob, 10.0)
        opacity *= np.clip(1 + 0.3 * smooth_noise(rng, big, 5.0), 0.5, 1.4)  # patchy ground glass
    elif finding == "Lung_Opacity":
        side = rng.choice([-1, 1])
        centre = (rows * rng.uniform(0.36, 0.50), cx + side * cols * 0.21)
        opacity = 0.9 * gaussian_blur(ellipse(big, centre, (38, 28), rng.uniform(-20, 20)), 3.0)
    elif finding != "Normal":
        raise ValueError(finding)
    att = att + np.clip(opacity, 0, None) * lungs
    centre = (rows / 2 + rng.uniform(-8, 8), cx + rng.uniform(-8, 8))
    att = resample(att, shape, centre, rows / shape[0] * rng.uniform(0.94, 1.06), rng.uniform(-4, 4))
    att *= rng.uniform(0.93, 1.07)
    return att + 0.015 * rng.standard_normal(shape) * (att > 0.05)


@sample_set("covid19_radiography")
def build_covid19_radiography(out_dir: Path) -> list[Path]:
    written = []
    for label, (finding, count) in enumerate(COVID_CLASSES.items()):
        rng = np.random.default_rng(7301 + label)
        for i in range(1, count + 1):
            n = 1000 * label + i
            years = int(rng.integers(18, 90))
            study = Study(
                f"covid-{finding}-{i}", f"RADTL^COVID^{n}", f"RADTL-COV-{n:04d}", birth_date(12 * years + 6),
                str(rng.choice(["F", "M"])), "Chest PA", f"{years:03d}Y", f"ACC-COV-{n:04d}",
            )
            arr = to_12bit(covid_chest(rng, finding), 0.0, 3.0, 100, 1100)
            ds = dx_image(
                study, "img", arr, "MONOCHROME2", code("51185008", "SCT", "Thorax"), "CHEST", "U", ["L", "F"], 6.0
            )
            center, width = percentile_window(arr, 1, 99)
            add_window(ds, [center], [width])
            path = out_dir / TASKS / "covid19_radiography" / finding / "images" / f"{finding}-{i}.dcm"
            written.append(write(ds, path, RLELossless))
    return written


# Lung nodule segmentation: tasks/luna_nodule/
#
# Chest CT series laid out as radtl's ``ct_series`` layout: one folder of DICOM
# slices per series and a LUNA16-style ``annotations.csv`` (seriesuid = Series
# Instance UID, nodule centre in patient coordinates (mm, LPS), diameter in mm).
# Nodules are soft-tissue spheres inside the lungs; their masks are the spheres
# of the annotation, so the CSV is the ground truth.

LUNA_SERIES = 20
LUNA_SLICES = 12
LUNA_SPACING = 5.0  # mm, in-plane and between slices: a 320 mm field of view at 64x64


def lung_nodule_series(rng: np.random.Generator, shape=TASK_SHAPE) -> tuple[list[np.ndarray], list[tuple[float, float, float, float]]]:
    """HU slices of one chest and its nodules as (column, row, slice, diameter in mm) in voxel units."""
    slices = [ct_chest_slice(rng, min(z // 3, 4), shape) for z in range(LUNA_SLICES)]
    rows, cols = shape
    y, x = _grid(shape)
    nodules = []
    for _ in range(int(rng.integers(1, 3))):
        diameter = float(rng.uniform(15.0, 30.0))
        side = rng.choice([-1, 1])
        centre = (
            cols / 2 + side * rng.uniform(8.0, 14.0) * cols / 64,
            rows * 0.50 + rng.uniform(-8.0, 6.0) * rows / 64,
            float(rng.uniform(3.0, LUNA_SLICES - 4.0)),
        )
        radius = diameter / 2 / LUNA_SPACING
        for z, hu in enumerate(slices):
            r2 = radius**2 - (z - centre[2]) ** 2
            if r2 <= 0:
                continue
            inside = np.clip(math.sqrt(r2) + 0.5 - np.hypot(x - centre[0], y - centre[1]), 0, 1)
            hu[:] = hu * (1 - inside) + (35.0 + 15.0 * rng.standard_normal(shape)) * inside
        nodules.append((*centre, diameter))
    return slices, nodules


@sample_set("luna_nodule")
def build_luna_nodule(out_dir: Path) -> list[Path]:
    written = []
    rng = np.random.default_rng(8101)
    rows = ["seriesuid,coordX,coordY,coordZ,diameter_mm"]
    for case in range(1, LUNA_SERIES + 1):
        years = int(rng.integers(45, 80))
        study = Study(
            f"luna-{case}", f"RADTL^LUNG^{case:03d}", f"RADTL-LUNG-{case:04d}", birth_date(12 * years + 6),
            str(rng.choice(["F", "M"])), "CT chest low dose", f"{years:03d}Y", f"ACC-LUNG-{case:04d}",
        )
        slices, nodules = lung_nodule_series(rng)
        folder = out_dir / TASKS / "luna_nodule" / f"case{case:03d}"
        origin = [-TASK_SHAPE[1] * LUNA_SPACING / 2, -TASK_SHAPE[0] * LUNA_SPACING / 2, 0.0]
        for z, hu in enumerate(slices):
            ds = ct_image(study, ("slice", z), z + 1, hu, z * LUNA_SPACING, spacing=LUNA_SPACING, thickness=LUNA_SPACING)
            written.append(write(ds, folder / f"slice{z + 1:03d}.dcm", RLELossless))
        for col, row, z, diameter in nodules:
            world = (origin[0] + col * LUNA_SPACING, origin[1] + row * LUNA_SPACING, z * LUNA_SPACING)
            rows.append(f"{uid('series', study.key, 1)},{world[0]:.2f},{world[1]:.2f},{world[2]:.2f},{diameter:.2f}")
    csv_path = out_dir / TASKS / "luna_nodule" / "annotations.csv"
    csv_path.write_text("\n".join(rows) + "\n")
    written.append(csv_path)
    return written


# ---------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(__file__).resolve().parent,
        help="output folder (default: the folder containing this script)",
    )
    parser.add_argument(
        "--only",
        action="append",
        metavar="NAME",
        choices=sorted(SAMPLE_SETS),
        help="generate only this set (repeatable)",
    )
    parser.add_argument("--list", action="store_true", help="list the registered sets and exit")
    args = parser.parse_args(argv)
    if args.list:
        print("\n".join(SAMPLE_SETS))
        return 0
    paths = make_samples(args.out, args.only)
    total = sum(p.stat().st_size for p in paths)
    for p in paths:
        print(f"{p.stat().st_size:>9}  {p}")
    print(f"{total:>9}  total ({len(paths)} files, pydicom {pydicom.__version__})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
