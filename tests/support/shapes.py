"""Synthetic shape images for the pretraining tests: a pseudo-label set and a related downstream task.

Each image is one shape (disk, square, cross or ring) at a random place and size on noise
(:func:`radtl.dicom.synthetic.phantoms.shape_image`). The pretraining set labels the shapes as
pseudo-labels would; the downstream set draws the same shapes darker and noisier into the Brain
Tumor MRI layout (``Training/<class>/``, ``Testing/<class>/``), so the ``btmr`` fine-tuning bundle
reads it as it reads the real dataset.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from radtl.data import BTMR_CLASSES
from radtl.dicom.synthetic.phantoms import SHAPES, shape_image


def write_pseudolabel_set(root: Path, per_class: int = 60, validation: int = 10, size: int = 32, seed: int = 0) -> Path:
    """PNGs and a ``radtl pseudolabel``-style datalist (labels = shapes, modality CT); returns the datalist."""
    rng = np.random.default_rng(seed)
    datalist = {"task": {"name": "radtl_pseudolabels", "kind": "multiclass"},
                "labels": {str(i): f"cluster {i}: CT {name}" for i, name in enumerate(SHAPES)},
                "training": [], "validation": [], "test": []}
    (root / "images").mkdir(parents=True)
    for label, kind in enumerate(SHAPES):
        for index in range(per_class + validation):
            name = f"images/{kind}_{index:03d}.png"
            Image.fromarray(shape_image(kind, size, rng)).save(root / name)
            split = "training" if index < per_class else "validation"
            datalist[split].append({"image": name, "label": label, "cluster": label, "modality": "CT"})
    path = root / "datalist.json"
    path.write_text(json.dumps(datalist))
    return path


def write_downstream_set(root: Path, training: int = 80, testing: int = 30, size: int = 32, seed: int = 1) -> Path:
    """The related task in the Brain Tumor MRI layout, one class folder per shape; returns ``root``."""
    rng = np.random.default_rng(seed)
    for split, count in (("Training", training), ("Testing", testing)):
        for name, kind in zip(BTMR_CLASSES, SHAPES):
            folder = root / split / name
            folder.mkdir(parents=True)
            for index in range(count):
                Image.fromarray(shape_image(kind, size, rng, contrast=0.6, noise=0.15)).save(folder / f"{index:03d}.png")
    return root
