"""Tiny trees in the public datasets' published layouts, for adapter and bundle tests.

Images are 32x32 PNG/JPEG files whose brightness encodes the label, so a layout test can also
check that each file got its own label.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from PIL import Image

from radtl.data import BTMR_CLASSES


def write_image(path: Path, value: float, bits: int = 8) -> Path:
    """A flat image of grey ``value`` in [0, 1] with a little noise; 16-bit PNG when ``bits`` is 16."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(abs(hash(path.name)) % 2**32)
    pixels = np.clip(value + rng.normal(0, 0.02, (32, 32)), 0, 1)
    if bits == 16:
        Image.fromarray((pixels * 65535).astype(np.uint16)).save(path)
    else:
        Image.fromarray((pixels * 255).astype(np.uint8)).save(path)
    return path


def btmr_tree(root: Path, train_per_class: int = 8, test_per_class: int = 2) -> Path:
    """``Training/<class>/Tr-xx_NNNN.jpg`` and ``Testing/<class>/Te-xx_NNNN.jpg``."""
    for split, prefix, n in (("Training", "Tr", train_per_class), ("Testing", "Te", test_per_class)):
        for label, name in enumerate(BTMR_CLASSES):
            for i in range(n):
                write_image(root / split / name / f"{prefix}-{name[:2]}_{i:04d}.jpg", 0.2 + 0.2 * label)
    return root


def bone_age_tree(root: Path, n: int = 16, suffix: str = ".png") -> Path:
    """``boneage-training-dataset.csv`` (id, boneage, male) and ``boneage-training-dataset/<id>.png``."""
    rows = []
    for i in range(n):
        months = 12 + 12 * i
        rows.append({"id": 1377 + i, "boneage": months, "male": "True" if i % 2 else "False"})
        write_image(root / "boneage-training-dataset" / f"{1377 + i}{suffix}", months / 240)
    with open(root / "boneage-training-dataset.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["id", "boneage", "male"])
        writer.writeheader()
        writer.writerows(rows)
    return root


def grazpedwri_tree(root: Path, positives: int = 8, negatives: int = 12) -> Path:
    """``dataset.csv`` (``osteopenia`` 1 or empty) and 16-bit ``images_part{1,2}/<filestem>.png``."""
    rows = []
    for i in range(positives + negatives):
        stem = f"{i:04d}_{1297860395 + i}_01_WRI-L1_M014"
        osteopenia = i < positives
        rows.append({"filestem": stem, "patient_id": 1000 + i, "gender": "M", "age": 12.5, "osteopenia": "1" if osteopenia else ""})
        write_image(root / f"images_part{1 + i % 2}" / f"{stem}.png", 0.3 if osteopenia else 0.7, bits=16)
    with open(root / "dataset.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return root


def covid_tree(root: Path, covid: int = 8, normal: int = 12) -> Path:
    """``COVID/images/COVID-n.png``, ``Normal/images/Normal-n.png`` and an ignored ``Lung_Opacity/``."""
    for name, n, value in (("COVID", covid, 0.7), ("Normal", normal, 0.3), ("Lung_Opacity", 2, 0.5)):
        for i in range(1, n + 1):
            write_image(root / name / "images" / f"{name}-{i}.png", value)
    return root
