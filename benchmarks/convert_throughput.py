#!/usr/bin/env python
"""DICOM-to-PNG conversion throughput: radtl's ``convert_tree`` against a RadiologyNET-style loop.

The script

1. writes a deterministic corpus of synthetic DICOM files (CT 512x512 int16 with two
   windows, CR ~1024x1024 12-bit with some MONOCHROME1, MR 256x256 uint16; Explicit VR
   Little Endian, uncompressed; phantoms with noise);
2. converts it with a *baseline*: a plain per-file loop written the way the RadiologyNET
   export code worked (``dcmread``, ``pixel_array.astype(float)``, rescale, ``numpy.piecewise``
   window with the study's formula and the first window whose output is not a single
   colour, MONOCHROME1 inverted, ``np.rint`` to uint8, PIL bilinear aspect-preserving resize
   with centred zero padding, ``Image.save(..., "PNG")`` at PIL's default compression);
3. converts it with ``radtl.dicom.convert.convert_tree`` (formula ``paper``) for each worker
   count in ``--workers-list``, each into a fresh folder. For N > 1 the Dask LocalCluster
   start-up and shut-down are part of that run; a second run against a cluster started
   beforehand gives the steady-state rate, and a third (a diagnostic, not radtl's default)
   starts the workers without Dask's ``MALLOC_TRIM_THRESHOLD_=65536``. A pure-Python job in
   1 and N processes measures how much parallel CPU the machine really gives;
4. repeats all of that ``--repeat`` times, interleaved, and keeps the best run of each;
5. checks that baseline and radtl PNGs hold the same pixels (max |difference| and the
   fraction of pixels that differ, every file), profiles the stages of both pipelines
   (radtl's also per modality), and prints markdown tables for ``docs/performance.md``.

Usage::

    python benchmarks/convert_throughput.py                    # 300 files, 256 px, workers 1,2, 3 repeats
    python benchmarks/convert_throughput.py --files 60 --workers-list 1
    python benchmarks/convert_throughput.py --keep /tmp/bench  # keep corpus and outputs

The default run takes about 75 s on a 2-core VM. Figures depend on the machine and its
load; compare the ratios within one run.
"""

from __future__ import annotations

import argparse
import csv
import importlib
import logging
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import PIL
import pydicom
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from radtl.dicom.convert import ExportSettings, convert_tree
from radtl.dicom.frames import ConversionOptions, display_frames
from radtl.dicom.image import resize_longest_pad_uint8, uninformative_reason
from radtl.dicom.io import decode_frames, read_dataset

from machine import cpu_model  # benchmarks/machine.py, beside this script
from radiologynet_baseline import baseline_convert  # beside this script too
from radtl.png import encode_png

CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
CR_IMAGE = "1.2.840.10008.5.1.4.1.1.1"
MR_IMAGE = "1.2.840.10008.5.1.4.1.1.4"
UID_ROOT = "1.2.826.0.1.3680043.8.498."
MIX = (("CT", 0.45), ("CR", 0.20), ("MR", 0.35))


# ---------------------------------------------------------------------------
# Synthetic corpus
# ---------------------------------------------------------------------------


def _ellipse(yy: np.ndarray, xx: np.ndarray, cy: float, cx: float, ry: float, rx: float) -> np.ndarray:
    """Boolean mask of an axis-aligned ellipse (centre and radii in pixels)."""
    return ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0


def _ct_phantom(rng: np.random.Generator, index: int) -> np.ndarray:
    """Axial chest-like slice in HU: body, lungs, spine, heart, table, -2000 padding outside the FOV."""
    n = 512
    yy, xx = np.ogrid[0:n, 0:n]
    z = index % 40 / 40.0  # slice position changes the anatomy a little
    hu = np.full((n, n), -1000.0, dtype=np.float32)
    hu[_ellipse(yy, xx, 262, 256, 170 + 10 * z, 225)] = 30.0  # soft tissue
    hu[_ellipse(yy, xx, 262, 256, 150 + 10 * z, 205)] = -90.0  # fat layer inside
    hu[_ellipse(yy, xx, 262, 256, 140 + 10 * z, 195)] = 40.0  # muscle / organs
    for cx in (175.0, 337.0):  # lungs
        hu[_ellipse(yy, xx, 245, cx, 95 + 20 * z, 62)] = -850.0
    hu[_ellipse(yy, xx, 280, 280, 45 - 10 * z, 55)] = 55.0  # heart
    hu[_ellipse(yy, xx, 380, 256, 24, 22)] = 700.0  # vertebral body
    hu[_ellipse(yy, xx, 380, 256, 13, 12)] = 250.0  # cancellous bone
    hu[_ellipse(yy, xx, 200 + 30 * z, 256, 14, 13)] = -990.0  # trachea / airway
    hu[440:452, 40:472] = 300.0  # table
    hu += rng.standard_normal((n, n), dtype=np.float32) * 14.0
    hu[~_ellipse(yy, xx, 256, 256, 255.5, 255.5)] = -2000.0  # outside the reconstruction circle
    return np.rint(hu).astype(np.int16)  # HU; stored = HU - intercept


def _cr_phantom(rng: np.random.Generator, index: int, rows: int, cols: int) -> np.ndarray:
    """Chest radiograph-like 12-bit image: dark background and lungs, brighter body, ribs, heart; noise."""
    yy, xx = np.ogrid[0:rows, 0:cols]
    y = yy / rows
    x = xx / cols
    body = np.clip(1.0 - ((x - 0.5) / 0.42) ** 2, 0.0, 1.0) ** 0.5 * (y > 0.05)
    img = 3600.0 - 2200.0 * body  # attenuation lowers the exposure
    for cx in (0.32, 0.68):
        lung = _ellipse(yy, xx, rows * 0.45, cols * cx, rows * 0.3, cols * 0.13)
        img = img + 900.0 * lung
    ribs = (np.sin(yy * (0.045 + 0.002 * (index % 5))) > 0.6) * (body > 0.2)
    img = img - 250.0 * ribs
    img = img - 600.0 * _ellipse(yy, xx, rows * 0.55, cols * 0.47, rows * 0.16, cols * 0.12)  # heart
    img = img + rng.standard_normal((rows, cols), dtype=np.float32) * 35.0
    return 4095 - np.clip(np.rint(img), 0, 4095).astype(np.uint16)  # high = attenuating, as MONOCHROME2 shows it


def _mr_phantom(rng: np.random.Generator, index: int) -> np.ndarray:
    """Axial head-like MR slice: skull ring, brain, ventricles, lesion; Rician-like noise."""
    n = 256
    yy, xx = np.ogrid[0:n, 0:n]
    z = index % 30 / 30.0
    img = np.zeros((n, n), dtype=np.float32)
    img[_ellipse(yy, xx, 128, 128, 110, 90)] = 350.0  # scalp / fat
    img[_ellipse(yy, xx, 128, 128, 102, 82)] = 80.0  # skull
    img[_ellipse(yy, xx, 128, 128, 96, 76)] = 620.0  # grey matter
    img[_ellipse(yy, xx, 128, 128, 80 - 15 * z, 60)] = 480.0  # white matter
    for cx in (113.0, 143.0):
        img[_ellipse(yy, xx, 120, cx, 22 - 8 * z, 8)] = 1400.0  # ventricles (T2 bright)
    img[_ellipse(yy, xx, 80 + 40 * z, 170, 9, 11)] = 1100.0  # lesion
    real = img + rng.standard_normal((n, n), dtype=np.float32) * 18.0
    imag = rng.standard_normal((n, n), dtype=np.float32) * 18.0
    return np.rint(np.hypot(real, imag)).astype(np.uint16)


def _dataset(modality: str, sop_class: str, index: int, pixels: np.ndarray) -> Dataset:
    def uid(*parts: str) -> str:
        return generate_uid(prefix=UID_ROOT, entropy_srcs=["radtl-bench-v1", modality, str(index), *parts])

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = uid("sop")
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = uid("study")
    ds.SeriesInstanceUID = uid("series")
    ds.Modality = modality
    ds.PatientName = f"Bench^{modality}{index:04d}"
    ds.PatientID = f"RADTL-BENCH-{modality}-{index:04d}"
    ds.StudyDate = "20240101"
    ds.InstanceNumber = index + 1
    ds.SamplesPerPixel = 1
    ds.Rows, ds.Columns = pixels.shape
    ds.BitsAllocated = 16
    ds.PixelRepresentation = 1 if pixels.dtype == np.int16 else 0
    ds.PixelData = pixels.tobytes()
    return ds


def make_corpus(root: Path, count: int, seed: int = 20261124) -> list[Path]:
    """Write ``count`` DICOM files under ``root/{ct,cr,mr}``: ~45% CT, 20% CR, 35% MR."""
    rng = np.random.default_rng(seed)
    counts = {m: int(round(count * f)) for m, f in MIX}
    counts["MR"] = count - counts["CT"] - counts["CR"]
    paths: list[Path] = []
    for index in range(counts["CT"]):
        hu = _ct_phantom(rng, index)
        ds = _dataset("CT", CT_IMAGE, index, (hu.astype(np.int32) + 1024).astype(np.int16))
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsStored, ds.HighBit = 16, 15
        ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = -1024, 1, "HU"
        ds.WindowCenter, ds.WindowWidth = [40, -600], [400, 1500]
        ds.WindowCenterWidthExplanation = ["MEDIASTINUM", "LUNG"]
        ds.PixelPaddingValue = -2000 + 1024
        paths.append(_write(ds, root / "ct" / f"series{index // 45:02d}" / f"ct_{index:04d}.dcm"))
    for index in range(counts["CR"]):
        rows, cols = (1024, 1024) if index % 3 else (1024, 864)  # some portrait plates: padded on output
        stored = _cr_phantom(rng, index, rows, cols)
        monochrome1 = index % 5 in (1, 3)
        ds = _dataset("CR", CR_IMAGE, index, 4095 - stored if monochrome1 else stored)
        ds.PhotometricInterpretation = "MONOCHROME1" if monochrome1 else "MONOCHROME2"
        ds.BitsStored, ds.HighBit = 12, 11
        ds.RescaleIntercept, ds.RescaleSlope = 0, 1
        center = 2300 if monochrome1 else 1795  # the same window on the inverted values
        if index % 4 == 0:  # a first window outside the data: single colour, the second one is used
            ds.WindowCenter, ds.WindowWidth = [9000, center], [200, 3600]
        else:
            ds.WindowCenter, ds.WindowWidth = center, 3600
        paths.append(_write(ds, root / "cr" / f"cr_{index:04d}.dcm"))
    for index in range(counts["MR"]):
        ds = _dataset("MR", MR_IMAGE, index, _mr_phantom(rng, index))
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsStored, ds.HighBit = 16, 15
        ds.WindowCenter, ds.WindowWidth = 700, 1500
        paths.append(_write(ds, root / "mr" / f"series{index // 35:02d}" / f"mr_{index:04d}.dcm"))
    return sorted(paths)


def _write(ds: Dataset, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


# ---------------------------------------------------------------------------
# radtl: stage profile (the functions convert_tree calls, timed one by one)
# ---------------------------------------------------------------------------


def radtl_profile(paths: list[Path], root: Path, out: Path, settings: ExportSettings) -> tuple[int, dict, dict]:
    """Time radtl's stages file by file.

    Returns (frames, {stage: seconds}, {modality: [frames, {stage: seconds}]}). The stages are
    the functions ``convert_file`` calls, in its order; the PNG is saved as ``_write_png`` does
    it, minus the temporary name and rename.
    """
    stages: dict[str, float] = defaultdict(float)
    by_modality: dict[str, list] = defaultdict(lambda: [0, defaultdict(float)])
    frames = 0
    clock = time.perf_counter
    out.mkdir(parents=True, exist_ok=True)
    for number, path in enumerate(paths):
        modality = by_modality[path.relative_to(root).parts[0].upper()]
        timings: dict[str, float] = defaultdict(float)
        t0 = clock()
        ds = read_dataset(path)
        decode_frames(ds, settings.conversion.max_pixel_bytes)  # display_frames decodes again (cheap when native)
        t1 = clock()
        rendered = list(display_frames(ds, settings.conversion))
        t2 = clock()
        timings["read+decode"] += t1 - t0
        timings["rescale+window+invert+uint8"] += t2 - t1
        for frame in rendered:
            t3 = clock()
            reason = uninformative_reason(frame.image, settings.min_value_fraction, settings.min_aspect)
            t4 = clock()
            timings["frame policy"] += t4 - t3
            if reason:
                continue
            image = resize_longest_pad_uint8(frame.image, settings.size)
            t5 = clock()
            target = out / f"{number:05d}_{frame.index}.png"
            target.write_bytes(encode_png(image, settings.compress_level))
            t6 = clock()
            frames += 1
            modality[0] += 1
            timings["resize+pad"] += t5 - t4
            timings["PNG encode+write"] += t6 - t5
        for name, seconds in timings.items():
            stages[name] += seconds
            modality[1][name] += seconds
    return frames, stages, dict(by_modality)


def parallel_capacity(processes: int, loops: int = 6_000_000) -> float:
    """How many times one process's pure-Python CPU work ``processes`` processes get done at once.

    2.0 on two free cores; about 1.0 where the 'cores' are time-shared (a busy or capped VM).
    """
    import multiprocessing

    with multiprocessing.Pool(processes) as pool:
        pool.map(_spin, [1000] * processes)  # start-up
        t0 = time.perf_counter()
        pool.map(_spin, [loops])
        one = time.perf_counter() - t0
        t0 = time.perf_counter()
        pool.map(_spin, [loops] * processes, chunksize=1)
        many = time.perf_counter() - t0
    return processes * one / many


def _spin(loops: int) -> int:
    total = 0
    for value in range(loops):
        total += value
    return total


# ---------------------------------------------------------------------------
# Comparison
# ---------------------------------------------------------------------------


def radtl_outputs(out: Path) -> dict[str, Path]:
    """source path -> PNG path for the ``ok`` rows of OUT/manifest.csv."""
    with open(out / "manifest.csv", newline="", encoding="utf-8") as handle:
        return {row["source"]: out / row["output"] for row in csv.DictReader(handle) if row["status"] == "ok"}


@dataclass
class Comparison:
    files: int = 0
    missing: int = 0
    shape_mismatch: int = 0
    pixels: int = 0
    differing: int = 0
    max_diff: int = 0
    histogram: Counter = field(default_factory=Counter)
    files_differing: int = 0


def compare(paths: list[Path], root: Path, baseline_out: Path, radtl_out: Path) -> Comparison:
    result = Comparison()
    produced = radtl_outputs(radtl_out)
    for path in paths:
        result.files += 1
        mine = produced.get(str(path.resolve()))
        reference = baseline_out / path.relative_to(root).with_suffix(".png")
        if mine is None or not mine.exists() or not reference.exists():
            result.missing += 1
            continue
        a = np.asarray(Image.open(reference), dtype=np.int16)
        b = np.asarray(Image.open(mine), dtype=np.int16)
        if a.shape != b.shape:
            result.shape_mismatch += 1
            continue
        diff = np.abs(a - b)
        result.pixels += diff.size
        nonzero = int(np.count_nonzero(diff))
        result.differing += nonzero
        result.files_differing += nonzero > 0
        result.max_diff = max(result.max_diff, int(diff.max()))
        result.histogram.update({int(k): int(v) for k, v in enumerate(np.bincount(diff.ravel())) if v and k})
    return result


def same_images(first: Path, second: Path) -> tuple[int, int]:
    """(files compared, files whose pixels differ) between two radtl output folders."""
    a, b = radtl_outputs(first), radtl_outputs(second)
    differ = sum(
        not np.array_equal(np.asarray(Image.open(a[s])), np.asarray(Image.open(b[s]))) for s in a if s in b
    ) + len(set(a) ^ set(b))
    return len(set(a) | set(b)), differ


# ---------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------


def _fresh(path: Path) -> Path:
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def _ms(seconds: float, frames: int) -> str:
    return f"{1000.0 * seconds / max(frames, 1):.2f}"


def _stats(times: list[float]) -> str:
    runs = ", ".join(f"{t:.2f}" for t in times)
    return f"best {min(times):.2f} s, median {statistics.median(times):.2f} s, runs {runs}"


def _getenv(name: str) -> str | None:
    """os.environ.get run in a worker (a bound method of os.environ would carry this process's copy)."""
    return os.environ.get(name)


def _run_cluster(workers: int, corpus: Path, out: Path, settings: ExportSettings, malloc_trim: bool = True) -> dict:
    """One steady-state run: start a LocalCluster, import radtl in its workers, time convert_tree alone.

    ``malloc_trim=False`` is a diagnostic: Dask's nannies start workers with
    ``MALLOC_TRIM_THRESHOLD_=65536`` (``distributed.nanny.pre-spawn-environ``), which turns off
    glibc's adaptive mmap threshold, so every large numpy temporary is mmap'ed and page-faulted
    afresh. Dropping it shows what that costs. (The nanny also writes the variable into this
    process's environment, which later spawns would inherit, so it is removed here for the
    start and put back afterwards.)
    """
    import dask
    from distributed import Client, LocalCluster

    saved = os.environ.get("MALLOC_TRIM_THRESHOLD_")
    overrides = {} if malloc_trim else {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}
    t0 = time.perf_counter()
    try:
        if not malloc_trim:
            os.environ.pop("MALLOC_TRIM_THRESHOLD_", None)
        with dask.config.set(overrides):
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                   dashboard_address=None, silence_logs=logging.CRITICAL)
    finally:
        if saved is not None:
            os.environ["MALLOC_TRIM_THRESHOLD_"] = saved
    startup = time.perf_counter() - t0
    try:
        t0 = time.perf_counter()
        with Client(cluster) as client:  # worker imports (radtl, pydicom, PIL), not part of the steady state
            client.run(importlib.import_module, "radtl.dicom.convert")
            environ = set(client.run(_getenv, "MALLOC_TRIM_THRESHOLD_").values())
        warmup = time.perf_counter() - t0
        out = _fresh(out)
        t0 = time.perf_counter()
        summary = convert_tree(corpus, out, settings, scheduler=cluster.scheduler_address, progress=False)
        seconds = time.perf_counter() - t0
    finally:
        t0 = time.perf_counter()
        cluster.close()
        shutdown = time.perf_counter() - t0
    return dict(seconds=seconds, startup=startup, warmup=warmup, shutdown=shutdown, environ=environ,
                frames=summary.statuses.get("ok", 0), statuses=dict(summary.statuses), out=out)


def _label(key: str) -> str:
    workers = _workers(key)
    label = f"radtl `convert_tree`, workers={workers}"
    if key.endswith("-steady"):
        return label + " (cluster already running)"
    if key.endswith("-notrim"):
        return label + " (cluster already running; diagnostic: workers without Dask's `MALLOC_TRIM_THRESHOLD_=65536`)"
    return label + (" (incl. LocalCluster start/stop)" if workers > 1 else "")


def _workers(key: str) -> int:
    return int(key[1:].split("-")[0])


@dataclass
class Results:
    """Everything the timed runs measured (times in seconds; the best run of each counts)."""

    base_times: list[float] = field(default_factory=list)
    base_frames: int = 0
    base_stages: dict[str, float] = field(default_factory=dict)
    times: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    frames: dict[str, int] = field(default_factory=dict)
    outs: dict[str, Path] = field(default_factory=dict)
    clusters: dict[int, list[dict]] = field(default_factory=lambda: defaultdict(list))
    capacity: dict[int, list[float]] = field(default_factory=lambda: defaultdict(list))
    profile_frames: int = 0
    profile_stages: dict[str, float] = field(default_factory=dict)
    per_modality: dict[str, list] = field(default_factory=dict)

    def rate(self, key: str) -> float:
        return self.frames[key] / min(self.times[key])

    @property
    def base_rate(self) -> float:
        return self.base_frames / min(self.base_times)


def timed_runs(paths: list[Path], corpus: Path, work: Path, settings: ExportSettings, workers_list: list[int],
               repeat: int, profile: bool) -> Results:
    """Baseline, radtl stage profile and radtl per worker count, ``repeat`` times, interleaved.

    Interleaving spreads changes in the machine's load over every configuration alike.
    """
    res = Results()
    baseline_out = res.outs["baseline"] = work / "out-baseline"
    print(f"\ntimed runs ({repeat} of each, interleaved):")
    for rep in range(1, repeat + 1):
        _fresh(baseline_out)
        t0 = time.perf_counter()
        frames, stages = baseline_convert(paths, corpus, baseline_out, settings.size)
        elapsed = time.perf_counter() - t0
        if not res.base_times or elapsed < min(res.base_times):
            res.base_frames, res.base_stages = frames, stages
        res.base_times.append(elapsed)
        print(f"  [{rep}] baseline: {frames} frames in {elapsed:.2f} s = {frames / elapsed:.1f} frames/s")
        if profile:  # the pass with the smallest sum of stages is kept
            count, stages, per_modality = radtl_profile(paths, corpus, _fresh(work / "out-profile"), settings)
            total = sum(stages.values()) / max(count, 1)
            print(f"  [{rep}] radtl stage profile: sum of stages {1000 * total:.2f} ms/frame")
            if not res.profile_frames or total < sum(res.profile_stages.values()) / res.profile_frames:
                res.profile_frames, res.profile_stages, res.per_modality = count, stages, per_modality
        for workers in workers_list:
            if workers > 1:
                res.capacity[workers].append(parallel_capacity(workers))
                print(f"  [{rep}] machine: {workers} processes of pure-Python work run "
                      f"{res.capacity[workers][-1]:.2f}x one")
            key = f"w{workers}"
            out = res.outs[key] = _fresh(work / f"out-radtl-{key}")
            t0 = time.perf_counter()
            summary = convert_tree(corpus, out, settings, workers=workers, progress=False)
            elapsed = time.perf_counter() - t0
            res.times[key].append(elapsed)
            res.frames[key] = summary.statuses.get("ok", 0)
            print(f"  [{rep}] radtl workers={workers}: {res.frames[key]} frames in {elapsed:.2f} s = "
                  f"{res.frames[key] / elapsed:.1f} frames/s (rows by status {dict(summary.statuses)})")
            if workers == 1:
                continue
            for key, trim in ((f"w{workers}-steady", True), (f"w{workers}-notrim", False)):
                run = _run_cluster(workers, corpus, work / f"out-radtl-{key}", settings, malloc_trim=trim)
                res.outs[key] = run["out"]
                res.times[key].append(run["seconds"])
                res.frames[key] = run["frames"]
                if trim:
                    res.clusters[workers].append(run)
                trim_values = "/".join(map(str, sorted(run["environ"], key=str)))
                print(f"  [{rep}] radtl workers={workers}, cluster already running, workers' MALLOC_TRIM_THRESHOLD_="
                      f"{trim_values}: {run['frames']} frames in {run['seconds']:.2f} s = "
                      f"{run['frames'] / run['seconds']:.1f} frames/s (rows by status {run['statuses']}); "
                      f"LocalCluster start {run['startup']:.2f} s, worker imports {run['warmup']:.2f} s, "
                      f"close {run['shutdown']:.2f} s")
    return res


def report(res: Results, comparison: Comparison, paths: list[Path], by_modality: Counter, megabytes: float,
           size: int, repeat: int) -> None:
    """Plain-text summary, then the markdown tables for docs/performance.md."""
    base_rate, one_rate = res.base_rate, res.rate("w1")
    ratio = one_rate / base_rate
    fraction = comparison.differing / max(comparison.pixels, 1)
    capacity = {n: statistics.median(c) for n, c in res.capacity.items()}
    print(f"\nbaseline: {base_rate:.1f} frames/s ({_stats(res.base_times)})")
    for key, times in res.times.items():
        print(f"radtl {key}: {res.rate(key):.1f} frames/s ({_stats(times)})")
    print(f"\nradtl (1 worker) / baseline: {ratio:.2f}x  (target >= 3x per core) -> "
          f"{'MET' if ratio >= 3 else 'NOT MET'}")
    for key in res.times:
        if key != "w1":
            scaling = res.rate(key) / one_rate
            print(f"radtl {key}: {res.rate(key):.1f} frames/s, scaling vs 1 worker {scaling:.2f}x "
                  f"({scaling / _workers(key):.0%} of linear)")
    for workers, factor in capacity.items():
        print(f"machine: {workers} processes of pure-Python CPU work run {factor:.2f}x as fast as one "
              f"(median of {repeat}; the ceiling for {workers}-worker scaling here)")

    print("\n## markdown\n")
    modalities = ", ".join(f"{n} {m}" for m, n in sorted(by_modality.items()))
    print(f"Corpus: {len(paths)} single-frame files ({modalities}; {megabytes:.0f} MiB), output {size}x{size} PNG. "
          f"Best of {repeat} interleaved runs (median wall time in brackets).\n")
    print("| run | wall time (s) | frames/s | vs baseline | vs radtl 1 worker |")
    print("|---|---:|---:|---:|---:|")
    print(f"| baseline loop (1 process; float `np.piecewise` window, PIL PNG default level 6) | "
          f"{min(res.base_times):.2f} ({statistics.median(res.base_times):.2f}) | {base_rate:.1f} | 1.00x | |")
    for key, times in res.times.items():
        rate = res.rate(key)
        print(f"| {_label(key)} | {min(times):.2f} ({statistics.median(times):.2f}) | {rate:.1f} | "
              f"{rate / base_rate:.2f}x | {rate / one_rate:.2f}x |")
    for workers, runs in res.clusters.items():
        print(f"\nDask LocalCluster({workers} processes), median of {len(runs)}: start "
              f"{statistics.median(r['startup'] for r in runs):.2f} s, worker imports "
              f"{statistics.median(r['warmup'] for r in runs):.2f} s, close "
              f"{statistics.median(r['shutdown'] for r in runs):.2f} s.")
    for workers, factor in capacity.items():
        print(f"\nParallel capacity of the machine (median of {repeat}): {workers} processes of pure-Python CPU work "
              f"get {factor:.2f}x the work of one done ({workers}.00x on {workers} free cores); that is the ceiling "
              f"for the scaling column.")
    print(f"\nSame pixels (baseline vs radtl, every file): max |difference| {comparison.max_diff} grey level, "
          f"{100 * fraction:.4f}% of pixels differ ({comparison.differing} of {comparison.pixels}, "
          f"in {comparison.files_differing} of {comparison.files} files); {comparison.missing} missing, "
          f"{comparison.shape_mismatch} shape mismatches.")
    if not res.profile_frames:
        return
    names = ["read+decode", "rescale+window+invert+uint8", "frame policy", "resize+pad", "PNG encode+write"]
    base_frames, frames = res.base_frames, res.profile_frames
    base_total, total = sum(res.base_stages.values()), sum(res.profile_stages.values())
    whole = min(res.times["w1"]) / res.frames["w1"]
    print("\n| stage (ms per frame) | baseline | radtl | speedup |")
    print("|---|---:|---:|---:|")
    for name in names:
        b, r = res.base_stages.get(name), res.profile_stages.get(name, 0.0)
        speed = f"{(b / base_frames) / (r / frames):.1f}x" if b and r else ""
        print(f"| {name} | {_ms(b, base_frames) if b is not None else '(not done)'} | {_ms(r, frames)} | {speed} |")
    print(f"| **sum of stages** | {_ms(base_total, base_frames)} | {_ms(total, frames)} | "
          f"{(base_total / base_frames) / (total / frames):.1f}x |")
    print(f"| rest of the run (whole run - sum of stages; radtl: a different pass, noisy) | "
          f"{_ms(min(res.base_times) - base_total, base_frames)} | {1000 * (whole - total / frames):.2f} | |")
    print(f"| **whole run** (wall / frames) | {_ms(min(res.base_times), base_frames)} | {1000 * whole:.2f} | "
          f"{ratio:.1f}x |")
    modalities = sorted(res.per_modality)
    header = " | ".join(f"{m} ({res.per_modality[m][0]})" for m in modalities)
    print(f"\n| radtl stage (ms per frame) | {header} |")
    print("|---|" + "---:|" * len(modalities))
    for name in names + ["sum"]:
        cells = []
        for m in modalities:
            count, seconds = res.per_modality[m]
            cells.append(_ms(sum(seconds.values()) if name == "sum" else seconds.get(name, 0.0), count))
        print(f"| {name} | " + " | ".join(cells) + " |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=300, help="corpus size (default 300)")
    parser.add_argument("--size", type=int, default=256, help="output side in pixels (default 256)")
    parser.add_argument("--keep", type=Path, default=None, help="folder for corpus and outputs, kept afterwards")
    parser.add_argument("--workers-list", default="1,2", help="radtl worker counts to run (default 1,2)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="timed runs of each configuration, interleaved; the best counts (default 3)")
    parser.add_argument("--no-profile", action="store_true", help="skip the per-stage profile of radtl")
    parser.add_argument("--seed", type=int, default=20261124, help="corpus random seed")
    args = parser.parse_args(argv)
    workers_list = sorted({int(w) for w in args.workers_list.split(",") if w.strip()} | {1})
    repeat = max(1, args.repeat)

    started = time.perf_counter()
    work = args.keep.resolve() if args.keep else Path(tempfile.mkdtemp(prefix="radtl-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"# radtl convert throughput  ({time.strftime('%Y-%m-%d %H:%M')})")
    print(f"python {platform.python_version()}, pydicom {pydicom.__version__}, numpy {np.__version__}, "
          f"pillow {PIL.__version__}; {os.cpu_count()} CPU(s): {cpu_model()}")
    print(f"work folder: {work}{'' if args.keep else ' (temporary)'}")
    try:
        corpus = _fresh(work / "corpus")
        t0 = time.perf_counter()
        paths = make_corpus(corpus, args.files, args.seed)
        by_modality = Counter(p.relative_to(corpus).parts[0].upper() for p in paths)
        megabytes = sum(p.stat().st_size for p in paths) / 2**20
        print(f"corpus: {len(paths)} files ({', '.join(f'{m} {n}' for m, n in sorted(by_modality.items()))}), "
              f"{megabytes:.0f} MiB, written in {time.perf_counter() - t0:.1f} s")

        settings = ExportSettings(size=args.size, conversion=ConversionOptions(formula="paper"))
        # warm-up (imports, pydicom decoder look-up, PIL plugins, page cache), not timed
        warm = _fresh(work / "warmup")
        sample = [next(p for p in paths if p.relative_to(corpus).parts[0] == m) for m in ("ct", "cr", "mr")
                  if m.upper() in by_modality]
        baseline_convert(sample, corpus, warm / "baseline", args.size)
        for path in sample:
            convert_tree(path, warm / "radtl", settings, workers=1, progress=False)

        res = timed_runs(paths, corpus, work, settings, workers_list, repeat, profile=not args.no_profile)

        comparison = compare(paths, corpus, res.outs["baseline"], res.outs["w1"])
        print(f"\nsame pixels, baseline vs radtl (workers=1): {comparison.files} files, "
              f"{comparison.missing} missing, {comparison.shape_mismatch} shape mismatches; "
              f"max |diff| = {comparison.max_diff} grey level(s); {comparison.differing} of {comparison.pixels} "
              f"pixels differ in {comparison.files_differing} file(s); "
              f"histogram of |diff| {dict(sorted(comparison.histogram.items()))}")
        for key, out in res.outs.items():
            if key not in ("baseline", "w1"):
                total, differ = same_images(res.outs["w1"], out)
                print(f"radtl {key} vs workers=1: {differ} of {total} images differ")

        report(res, comparison, paths, by_modality, megabytes, args.size, repeat)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(f"\ntotal benchmark time {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
