"""Adapters from the public datasets' published layouts to MONAI datalists with the study's splits.

Each adapter reads a download as its users have it and returns a datalist
(:mod:`radtl.data.datalist`); :func:`prepare_datalist` adds the training fraction and writes it.
Images may be the dataset's own files (JPEG, 8- or 16-bit PNG) or DICOM files in the same places
(``<id>.dcm`` instead of ``<id>.png``), which :class:`radtl.transforms.LoadRadiographd` reads
through radtl's windowing.

===================== ================================================== ==========================
layout                folders and files read                             splits
===================== ================================================== ==========================
``btmr``              ``Training/<class>/*``, ``Testing/<class>/*``       Training 75/25 train/val,
                      (glioma, meningioma, notumor, pituitary)            Testing as test
``rsna_bone_age``     ``boneage-training-dataset.csv`` (id, boneage,      stratified by age quartile,
                      male), ``boneage-training-dataset/<id>.png``         75 / 12.5 / 12.5
``grazpedwri_dx``     ``dataset.csv`` (filestem, osteopenia),             undersampled to balance,
                      ``images_part*/<filestem>.png``                     75 / 12.5 / 12.5
``covid19_radiography`` ``COVID/images/*``, ``Normal/images/*``           undersampled to balance,
                                                                          75 / 12.5 / 12.5
``class_folders``     ``<class>/**/*`` (DICOM without suffix too)         75 / 12.5 / 12.5
``luna16``            ``subset*/<seriesuid>.mhd`` (+ ``.raw``),           every 10th series is
                      ``annotations.csv`` (world centres, diameters)      validation, no test
``ct_series``         ``<case>/`` one DICOM series each, and             every 10th folder is
                      ``annotations.csv`` keyed by Series Instance UID    validation, no test
                      or ``masks/<case>.nii.gz``
===================== ================================================== ==========================
"""

from __future__ import annotations

import csv
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from radtl.data.datalist import (
    STUDY_SEED,
    DatasetLayoutError,
    Item,
    age_strata,
    stratified_split,
    take_fraction,
    undersample,
    write_datalist,
)
from radtl.dicom.series import read_series_headers

__all__ = [
    "ADAPTERS",
    "BTMR_CLASSES",
    "IMAGE_SUFFIXES",
    "btmr",
    "class_folders",
    "covid19_radiography",
    "ct_series",
    "grazpedwri_dx",
    "is_image_file",
    "list_images",
    "luna16",
    "prepare_datalist",
    "rsna_bone_age",
]

#: File suffixes the public datasets use, plus DICOM's.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".dcm", ".dicom")
#: The Kaggle Brain Tumor MRI folders, in label order.
BTMR_CLASSES = ("glioma", "meningioma", "notumor", "pituitary")

logger = logging.getLogger(__name__)

Adapter = Callable[[Path, int], dict]
ADAPTERS: dict[str, Adapter] = {}


def _adapter(name: str) -> Callable[[Adapter], Adapter]:
    def register(func: Adapter) -> Adapter:
        ADAPTERS[name] = func
        return func

    return register


def _has_dicom_preamble(path: Path) -> bool:
    """PS3.10 7.1: a DICOM file has a 128-byte preamble followed by ``DICM``."""
    try:
        with open(path, "rb") as f:
            return f.read(132)[128:] == b"DICM"
    except OSError:
        return False


def is_image_file(path: Path) -> bool:
    """An image a dataset may hold: a known suffix, or a DICOM file without one (PS3.10 preamble)."""
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return True
    return suffix in ("", ".ima") and _has_dicom_preamble(path)


def list_images(root: str | os.PathLike) -> list[Path]:
    """Every image file under ``root`` (or ``root`` itself), sorted; hidden files left out."""
    root = Path(root)
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise DatasetLayoutError(f"{root}: no such file or folder")
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found.extend(Path(folder, f) for f in sorted(files) if not f.startswith(".") and is_image_file(Path(folder, f)))
    return found


def _require_dir(path: Path, what: str) -> Path:
    if not path.is_dir():
        raise DatasetLayoutError(f"{path}: missing folder ({what})")
    return path


def _images_in(folder: Path, what: str) -> list[Path]:
    images = list_images(_require_dir(folder, what))
    if not images:
        raise DatasetLayoutError(f"{folder}: no images ({what}; looked for {', '.join(IMAGE_SUFFIXES)} and DICOM)")
    return images


def _read_csv(path: Path, columns: tuple[str, ...]) -> list[dict]:
    if not path.is_file():
        raise DatasetLayoutError(f"{path}: missing file")
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        header = [c.strip() for c in reader.fieldnames or []]
        missing = [c for c in columns if c not in header]
        if missing:
            raise DatasetLayoutError(f"{path}: missing column(s) {missing}; the header is {header}")
        return [{k.strip(): (v or "").strip() for k, v in row.items() if k} for row in reader]


def _images_by_stem(root: Path) -> dict[str, Path]:
    return {p.stem: p for p in list_images(root)}


def _match_images(rows: list[dict], key: str, images: dict[str, Path], csv_path: Path) -> Iterator[tuple[dict, Path]]:
    missing = [row[key] for row in rows if row[key] not in images]
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise DatasetLayoutError(f"{csv_path}: no image file for {key} {shown}")
    for row in rows:
        yield row, images[row[key]]


def _classification(name: str, labels: tuple[str, ...], splits: list[list[Item]]) -> dict:
    kind = "binary" if len(labels) == 2 else "multiclass"
    datalist = {"task": {"name": name, "kind": kind}, "labels": {str(i): n for i, n in enumerate(labels)}}
    datalist.update(zip(("training", "validation", "test"), splits))
    return datalist


def _item(path: Path, label, **extra) -> Item:
    return {"image": str(path.resolve()), "label": label, **extra}


@_adapter("btmr")
def btmr(root: Path, seed: int = STUDY_SEED) -> dict:
    """Brain Tumor MRI (Kaggle, Nickparvar): ``Training/`` split 75/25 into train/val, ``Testing/`` as test."""
    parts = {}
    for split in ("Training", "Testing"):
        _require_dir(root / split, f"the Kaggle {split}/ split")
        parts[split] = [
            _item(path, label)
            for label, name in enumerate(BTMR_CLASSES)
            for path in _images_in(root / split / name, f"class {name!r} of {split}/")
        ]
    training, validation = stratified_split(parts["Training"], (0.75, 0.25), seed=seed)
    return _classification("btmr", BTMR_CLASSES, [training, validation, parts["Testing"]])


@_adapter("rsna_bone_age")
def rsna_bone_age(root: Path, seed: int = STUDY_SEED) -> dict:
    """RSNA Pediatric Bone Age: ``boneage-training-dataset.csv`` (id, boneage, male) and its images.

    Labels are months (not normalised, as the study); ``sex`` is 1.0 for male, 0.0 for female.
    The training CSV is split 75 / 12.5 / 12.5, stratified by age quartile.
    """
    csv_path = root / "boneage-training-dataset.csv"
    rows = _read_csv(csv_path, ("id", "boneage", "male"))
    images = _images_by_stem(_require_dir(root / "boneage-training-dataset", "the training images"))
    items = []
    for row, path in _match_images(rows, "id", images, csv_path):
        male = row["male"].lower()
        if male not in ("true", "false", "1", "0"):
            raise DatasetLayoutError(f"{csv_path}: id {row['id']}: male must be True or False, got {row['male']!r}")
        items.append(_item(path, float(row["boneage"]), sex=1.0 if male in ("true", "1") else 0.0))
    splits = stratified_split(items, stratum=age_strata(items), seed=seed)
    datalist = {"task": {"name": "rsna_bone_age", "kind": "regression", "unit": "months"}}
    datalist.update(zip(("training", "validation", "test"), splits))
    return datalist


@_adapter("grazpedwri_dx")
def grazpedwri_dx(root: Path, seed: int = STUDY_SEED) -> dict:
    """GRAZPEDWRI-DX: ``dataset.csv``'s ``osteopenia`` column (1 or empty) over ``images_part*/``.

    Balanced by undersampling the negatives, then 75 / 12.5 / 12.5, as the study.
    """
    csv_path = root / "dataset.csv"
    rows = _read_csv(csv_path, ("filestem", "osteopenia"))
    images = _images_by_stem(root)
    items = []
    for row, path in _match_images(rows, "filestem", images, csv_path):
        value = row["osteopenia"]
        if value not in ("", "0", "1", "0.0", "1.0"):
            raise DatasetLayoutError(f"{csv_path}: {row['filestem']}: osteopenia must be 1 or empty, got {value!r}")
        items.append(_item(path, int(float(value or 0))))
    splits = stratified_split(undersample(items, seed=seed), seed=seed)
    return _classification("grazpedwri_dx", ("no osteopenia", "osteopenia"), splits)


@_adapter("covid19_radiography")
def covid19_radiography(root: Path, seed: int = STUDY_SEED) -> dict:
    """COVID-19 Radiography Database: ``COVID/images`` against ``Normal/images``, undersampled, 75/12.5/12.5.

    ``root`` may be the download or its ``COVID-19_Radiography_Dataset/`` folder; the other
    classes (Lung_Opacity, Viral Pneumonia) are not part of the task.
    """
    if not (root / "COVID").is_dir() and (root / "COVID-19_Radiography_Dataset").is_dir():
        root = root / "COVID-19_Radiography_Dataset"
    items = [
        _item(path, label)
        for label, name in enumerate(("Normal", "COVID"))
        for path in _images_in(root / name / "images", f"the {name} class")
    ]
    splits = stratified_split(undersample(items, seed=seed), seed=seed)
    return _classification("covid19_radiography", ("normal", "covid"), splits)


@_adapter("class_folders")
def class_folders(root: Path, seed: int = STUDY_SEED) -> dict:
    """One folder per class (``<class>/**/*``, DICOM files without suffix included), 75 / 12.5 / 12.5."""
    names = tuple(sorted(d.name for d in _require_dir(root, "the dataset").iterdir() if d.is_dir() and not d.name.startswith(".")))
    if len(names) < 2:
        raise DatasetLayoutError(f"{root}: class_folders needs a folder per class, found {list(names)}")
    items = [_item(path, label) for label, name in enumerate(names) for path in _images_in(root / name, f"class {name!r}")]
    return _classification(root.name, names, stratified_split(items, seed=seed))


#: LUNA16's annotation columns: the nodule centre in patient coordinates (mm, LPS) and its diameter.
NODULE_COLUMNS = ("seriesuid", "coordX", "coordY", "coordZ", "diameter_mm")
#: The study (after the LUNA16 pipelines it follows) validates on every 10th series.
VALIDATION_STRIDE = 10


def _nodules_by_series(csv_path: Path) -> dict[str, list[list[float]]]:
    nodules: dict[str, list[list[float]]] = {}
    for number, row in enumerate(_read_csv(csv_path, NODULE_COLUMNS), start=2):
        try:
            values = [float(row[c]) for c in NODULE_COLUMNS[1:]]
        except ValueError as error:
            raise DatasetLayoutError(f"{csv_path}: line {number}: {error}") from error
        if values[3] <= 0:
            raise DatasetLayoutError(f"{csv_path}: line {number}: diameter_mm must be > 0, got {values[3]}")
        nodules.setdefault(row["seriesuid"], []).append(values)
    return nodules


def _segmentation(
    name: str, cases: list[tuple[str, Item]], annotated: dict[str, list], found: set[str], csv_path: Path
) -> dict:
    """Every ``VALIDATION_STRIDE``-th case (sorted by name, from the first) to validation, the rest to training."""
    unknown = sorted(set(annotated) - found)
    if unknown:
        logger.warning("%s: %d annotated series not in the dataset folder (e.g. %s); their nodules are not used",
                       csv_path, len(unknown), unknown[0])
    items = [item for _, item in sorted(cases, key=lambda case: case[0])]
    validation = items[::VALIDATION_STRIDE]
    training = [item for index, item in enumerate(items) if index % VALIDATION_STRIDE]
    return {"task": {"name": name, "kind": "segmentation"}, "labels": {"1": "nodule"},
            "training": training, "validation": validation, "test": []}


@_adapter("luna16")
def luna16(root: Path, seed: int = STUDY_SEED) -> dict:
    """LUNA16 as published: ``subset*/<seriesuid>.mhd`` (+ ``.raw``) and ``annotations.csv``.

    Items are ``{"image": mhd, "nodules": [[x, y, z, diameter_mm], ...]}``: masks are drawn as
    spheres by :class:`radtl.transforms.NoduleMaskd`. Series without annotations are negatives.
    """
    csv_path = root / "annotations.csv"
    annotated = _nodules_by_series(csv_path)
    volumes = sorted(root.glob("subset*/*.mhd"))
    if not volumes:
        raise DatasetLayoutError(f"{root}: no subset*/*.mhd volumes (LUNA16's subset0 ... subset9 folders)")
    cases = [(p.stem, {"image": str(p.resolve()), "nodules": annotated.get(p.stem, [])}) for p in volumes]
    return _segmentation("luna16", cases, annotated, {p.stem for p in volumes}, csv_path)


@_adapter("ct_series")
def ct_series(root: Path, seed: int = STUDY_SEED) -> dict:
    """One DICOM CT series per folder, labelled by ``annotations.csv`` (LUNA16's columns, ``seriesuid`` the
    Series Instance UID) or by provided masks ``masks/<folder>.nii.gz`` on the series' grid."""
    folders = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith(".") and d.name != "masks")
    if not folders:
        raise DatasetLayoutError(f"{root}: no series folders")
    csv_path = root / "annotations.csv"
    annotated = _nodules_by_series(csv_path) if csv_path.is_file() else {}
    cases, found = [], set()
    for folder in folders:
        uid = str(read_series_headers(folder).series_instance_uid)  # also checks the folder is one series
        found.add(uid)
        mask = root / "masks" / f"{folder.name}.nii.gz"
        if mask.is_file():
            cases.append((folder.name, {"image": str(folder.resolve()), "label": str(mask.resolve())}))
        elif csv_path.is_file():
            cases.append((folder.name, {"image": str(folder.resolve()), "nodules": annotated.get(uid, [])}))
        else:
            raise DatasetLayoutError(f"{folder}: no mask {mask} and no {csv_path}")
    return _segmentation("ct_series", cases, annotated, found, csv_path)


def prepare_datalist(
    layout: str,
    dataset_dir: str | os.PathLike,
    output_path: str | os.PathLike | None = None,
    train_fraction: float = 1.0,
    seed: int = STUDY_SEED,
) -> dict:
    """Read ``dataset_dir`` in ``layout``, keep ``train_fraction`` of its training split, write the JSON.

    Args:
        layout: a key of :data:`ADAPTERS` (``btmr``, ``rsna_bone_age``, ``grazpedwri_dx``,
            ``covid19_radiography``, ``class_folders``, ``luna16``, ``ct_series``).
        dataset_dir: the dataset's folder, as downloaded.
        output_path: where to write the datalist JSON (not written when None).
        train_fraction: the study's resource-limited experiment: 0.05, 0.25, 0.5 of the
            training split with class ratios (age quartiles for bone age, series with and
            without nodules for segmentation) kept.
        seed: the split seed; fixed (the study's 1221), so every run sees the same split.

    Returns:
        The datalist: ``training``, ``validation``, ``test`` lists of ``{"image", "label", ...}``,
        ``task`` (name, kind), ``labels`` (class names by index, for classification),
        ``dataset_dir`` and ``train_fraction``.
    """
    if layout not in ADAPTERS:
        raise ValueError(f"unknown dataset layout {layout!r}; radtl reads: {', '.join(sorted(ADAPTERS))}")
    root = Path(dataset_dir).expanduser()
    _require_dir(root, f"the {layout} dataset")
    datalist = ADAPTERS[layout](root, seed)
    training = datalist["training"]
    stratum = {
        "regression": age_strata(training) if datalist["task"]["kind"] == "regression" else None,
        "segmentation": lambda it: bool(it.get("nodules")) or "label" in it,
    }.get(datalist["task"]["kind"]) or (lambda it: it["label"])
    datalist["training"] = take_fraction(training, float(train_fraction), stratum=stratum, seed=seed)
    datalist.update(dataset_dir=str(root.resolve()), train_fraction=float(train_fraction))
    if output_path is not None:
        write_datalist(datalist, output_path)
    return datalist
