"""Inference inputs: datalists of the images or CT series a trained network is run on.

The input normalisation of each initialisation (``INITS``, :func:`~radtl.networks.transfer.input_mean`,
:func:`~radtl.networks.transfer.input_std`) belongs with the weights it matches, in :mod:`radtl.networks.transfer`.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

from radtl.data.adapters import list_images
from radtl.data.datalist import DatasetLayoutError
from radtl.lazy import moved_names

__all__ = ["inference_datalist", "series_datalist"]

#: Names that moved to :mod:`radtl.networks.transfer` in issue 23, importable from here for one release.
_MOVED = ("IMAGENET_MEAN", "IMAGENET_STD", "INITS", "input_mean", "input_std")


__getattr__ = moved_names(__name__, dict.fromkeys(_MOVED, "radtl.networks.transfer"))


def _sex_from_dicom(path: Path) -> float | None:
    import pydicom

    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["PatientSex"])
    except pydicom.errors.InvalidDicomError:
        return None
    return {"M": 1.0, "F": 0.0}.get(str(ds.get("PatientSex", "")).upper())


def _sex_table(path: Path) -> dict[str, float]:
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        key = next((c for c in ("id", "image", "Case ID") if c in (reader.fieldnames or [])), None)
        sex = next((c for c in ("male", "Sex") if c in (reader.fieldnames or [])), None)
        if key is None or sex is None:
            raise DatasetLayoutError(f"{path}: a sex table needs columns id and male (or Case ID and Sex)")
        table = {}
        for row in reader:
            value = row[sex].strip().lower()
            table[Path(row[key].strip()).stem] = 1.0 if value in ("true", "1", "m") else 0.0
        return table


def inference_datalist(
    input_path: str | os.PathLike, with_sex: bool = False, sex_csv: str | os.PathLike | None = None
) -> list[dict]:
    """``[{"image": path}, ...]`` for every image under ``input_path`` (a file or a folder).

    Args:
        input_path: an image (PNG, JPEG, DICOM) or a folder searched recursively.
        with_sex: add ``sex`` (1.0 male, 0.0 female) for the bone-age model: from the DICOM
            Patient's Sex (0010,0040) or from ``sex_csv``.
        sex_csv: a table with columns ``id`` and ``male`` (the RSNA training CSV) or
            ``Case ID`` and ``Sex`` (the RSNA test CSV), keyed by the image's file stem.

    Raises:
        DatasetLayoutError: no images, or an image whose sex is not known when ``with_sex``.
    """
    images = list_images(input_path)
    if not images:
        raise DatasetLayoutError(f"{input_path}: no images (PNG, JPEG or DICOM)")
    items = [{"image": str(path.resolve())} for path in images]
    if with_sex:
        table = _sex_table(Path(sex_csv)) if sex_csv else {}
        unknown = []
        for item, path in zip(items, images):
            sex = table.get(path.stem, _sex_from_dicom(path))
            if sex is None:
                unknown.append(path.name)
            item["sex"] = sex
        if unknown:
            raise DatasetLayoutError(
                f"the patient's sex is not known for {', '.join(unknown[:5])}"
                f"{' and more' if len(unknown) > 5 else ''}: give DICOM files with Patient's Sex (0010,0040) "
                "M or F, or --sex_csv with columns id,male"
            )
    return items


def series_datalist(path: str | os.PathLike | list) -> list[dict]:
    """Inference items for a segmentation bundle: ``[{"image": folder}]`` for each DICOM series folder.

    ``path`` is one series folder (files only), a folder of series folders (any files beside them,
    such as ``annotations.csv``, are not read), a volume file (``.mhd``, ``.nii.gz``), or a list of these.
    """
    if isinstance(path, (list, tuple)):
        return [item for p in path for item in series_datalist(p)]
    root = Path(path)
    if root.is_file():
        return [{"image": str(root.resolve())}]
    if not root.is_dir():
        raise DatasetLayoutError(f"{root}: no such series folder or volume file")
    folders = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith(".") and d.name != "masks")
    if folders:
        return [{"image": str(d.resolve())} for d in folders]
    return [{"image": str(root.resolve())}]
