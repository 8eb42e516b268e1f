#!/usr/bin/env python
"""The RadiologyNET-style DICOM-to-PNG loop that radtl's conversion is measured against, importing no radtl.

A plain per-file loop written the way the RadiologyNET export code worked: ``dcmread``,
``pixel_array.astype(float)``, rescale, ``numpy.piecewise`` window with the study's formula and the first window
whose output is not a single colour, MONOCHROME1 inverted, ``np.rint`` to uint8, PIL bilinear aspect-preserving
resize with centred zero padding, ``Image.save(..., "PNG")`` at PIL's default compression.

``benchmarks/convert_throughput.py`` times the loop inside its own process; ``benchmarks/cli_startup.py`` runs this
file as a whole process (``python benchmarks/radiologynet_baseline.py CORPUS OUT``), start-up included, against
``radtl convert``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import pydicom
from PIL import Image


def _multi(value) -> list[float]:
    if value is None or value == "":
        return []
    if isinstance(value, (list, tuple, pydicom.multival.MultiValue)):
        return [float(v) for v in value]
    return [float(value)]


def _paper_window(x: np.ndarray, center: float, width: float) -> np.ndarray:
    """The study's window: (x - (c - w/2)) / w * 255 inside the window, 0 below, 255 above."""
    low, high = center - width / 2.0, center + width / 2.0
    return np.piecewise(x, [x <= low, x > high], [0.0, 255.0, lambda v: (v - low) / width * 255.0])


def _baseline_resize(image: np.ndarray, size: int) -> np.ndarray:
    """Longer side to ``size`` with PIL bilinear, centred on a zero ``size x size`` canvas."""
    height, width = image.shape
    scale = size / max(height, width)
    new_h, new_w = max(1, round(height * scale)), max(1, round(width * scale))
    resized = np.asarray(Image.fromarray(image).resize((new_w, new_h), Image.Resampling.BILINEAR))
    canvas = np.zeros((size, size), dtype=np.uint8)
    top, left = (size - new_h) // 2, (size - new_w) // 2
    canvas[top : top + new_h, left : left + new_w] = resized
    return canvas


def baseline_convert(paths: list[Path], root: Path, out: Path, size: int) -> tuple[int, dict[str, float]]:
    """Convert ``paths`` one by one; return (frames written, seconds per stage)."""
    stages: dict[str, float] = defaultdict(float)
    frames = 0
    clock = time.perf_counter
    for path in paths:
        t0 = clock()
        ds = pydicom.dcmread(path)
        x = ds.pixel_array.astype(float)
        t1 = clock()
        x = x * float(ds.get("RescaleSlope", 1) or 1) + float(ds.get("RescaleIntercept", 0) or 0)
        invert = ds.get("PhotometricInterpretation", "") == "MONOCHROME1"
        image = None
        for center, width in zip(_multi(ds.get("WindowCenter")), _multi(ds.get("WindowWidth"))):
            y = _paper_window(x, center, width)
            if invert:
                y = 255.0 - y
            candidate = np.rint(y).astype(np.uint8)
            if candidate.min() != candidate.max():  # first window whose output is not a single colour
                image = candidate
                break
        if image is None:  # no usable window: the frame's own range (not reached by this corpus)
            y = (x - x.min()) / max(float(x.max() - x.min()), 1e-12) * 255.0
            image = np.rint(255.0 - y if invert else y).astype(np.uint8)
        t2 = clock()
        image = _baseline_resize(image, size)
        t3 = clock()
        target = out / path.relative_to(root).with_suffix(".png")
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(target, "PNG")
        t4 = clock()
        frames += 1
        stages["read+decode"] += t1 - t0
        stages["rescale+window+invert+uint8"] += t2 - t1
        stages["resize+pad"] += t3 - t2
        stages["PNG encode+write"] += t4 - t3
    return frames, stages


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("corpus", type=Path, help="folder of DICOM files (searched recursively)")
    parser.add_argument("out", type=Path, help="folder for the PNGs")
    parser.add_argument("--size", type=int, default=256, help="output side in pixels (default 256)")
    args = parser.parse_args(argv)
    paths = sorted(p for p in args.corpus.rglob("*") if p.is_file())
    frames, _ = baseline_convert(paths, args.corpus, args.out, args.size)
    print(f"{frames} frame(s) written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
