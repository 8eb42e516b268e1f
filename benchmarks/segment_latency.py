"""Seconds from a CT series on disk to a written DICOM-SEG, by stage, with the segmentation bundle's own parts.

A synthetic chest CT series (default 128 slices of 512x512, int16, uncompressed, as a scanner
exports it) is written to a temporary folder; then the pieces of ``bundles/luna_nodule_seg``'s
``inference.json`` (parsed with MONAI's ``ConfigParser``) run one after the other, each timed:

1. ``load``: :class:`radtl.transforms.LoadCTVolumed` (read, check and sort the series, HU) plus the
   bundle's scaling and network-input transforms;
2. ``infer``: the bundle's network under its ``SliceInferer`` (whole slices, ``sw_batch_size``
   slices per forward pass), ``torch.inference_mode``, the bundle's AMP setting;
3. ``post``: sigmoid, threshold, small-component removal (the bundle's post-processing);
4. ``write``: :class:`radtl.transforms.SaveDicomSegd` (highdicom, referencing every slice).

The network is the bundle's with its initial weights: latency does not depend on what it learned.
The SEG of an untrained network is empty and keeps every frame, the largest file it can write.

Usage::

    python benchmarks/segment_latency.py                       # 128 x 512 x 512, CPU
    python benchmarks/segment_latency.py --device cuda --json latency.json
    python benchmarks/segment_latency.py --slices 32 --size 256 --set backbone=unet_vgg16
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import cpu_model

REPO = Path(__file__).resolve().parents[1]
BUNDLE = REPO / "bundles" / "luna_nodule_seg" / "configs"


def write_ct_series(folder: Path, slices: int, size: int, spacing: float = 0.7, thickness: float = 2.5) -> None:
    """A chest-like phantom: body ellipse, two lungs, a nodule; int16 stored HU + 1024."""
    study, series, frame = generate_uid(), generate_uid(), generate_uid()
    y, x = np.mgrid[:size, :size] / size
    body = ((x - 0.5) / 0.45) ** 2 + ((y - 0.5) / 0.35) ** 2 < 1
    lungs = (((x - 0.3) / 0.15) ** 2 + ((y - 0.45) / 0.22) ** 2 < 1) | (((x - 0.7) / 0.15) ** 2 + ((y - 0.45) / 0.22) ** 2 < 1)
    rng = np.random.default_rng(0)
    for index in range(slices):
        hu = np.where(body, 40.0, -1000.0)
        hu[lungs] = -850.0
        if abs(index - slices // 2) < 4:
            hu[((x - 0.3) ** 2 + (y - 0.45) ** 2) < 0.0004] = 30.0
        hu += rng.normal(0, 10, hu.shape)
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = "BENCH^CT", "BENCH", "", "O"
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
        ds.StudyDate, ds.StudyTime, ds.StudyID, ds.AccessionNumber, ds.ReferringPhysicianName = "20260101", "120000", "1", "", ""
        ds.Modality, ds.SeriesNumber, ds.InstanceNumber, ds.Manufacturer = "CT", 1, index + 1, "radtl benchmark"
        ds.PositionReferenceIndicator = ""
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.ImagePositionPatient = [-size * spacing / 2, -size * spacing / 2, index * thickness]
        ds.PixelSpacing = [spacing, spacing]
        ds.SliceThickness = thickness
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.Rows = ds.Columns = size
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = -1024, 1, "HU"
        ds.KVP = 120
        ds.PixelData = np.clip(np.rint(hu + 1024), -32768, 32767).astype("<i2").tobytes()
        ds.save_as(folder / f"{index:04d}.dcm", enforce_file_format=True)


def _value(text: str):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=128)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=1, help="timed runs; the best is reported")
    parser.add_argument("--no-warmup", dest="warmup", action="store_false", help="skip the untimed first run")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="bundle setting override")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)

    from monai.bundle import ConfigParser
    from monai.data import decollate_batch, list_data_collate
    from monai.transforms import Compose

    with tempfile.TemporaryDirectory(prefix="radtl-latency-") as scratch:
        series_dir, seg_dir = Path(scratch) / "series", Path(scratch) / "seg"
        series_dir.mkdir()
        started = time.perf_counter()
        write_ct_series(series_dir, args.slices, args.size)
        print(f"wrote a {args.slices} x {args.size} x {args.size} series in {time.perf_counter() - started:.1f} s")

        config = ConfigParser()
        config.read_config([str(BUNDLE / "train.json"), str(BUNDLE / "inference.json")])
        overrides = {key: _value(value) for key, value in (item.split("=", 1) for item in args.set)}
        settings = {"device": f"$torch.device('{args.device}')", "seg_output": str(seg_dir) + "/", **overrides}
        for key, value in settings.items():
            config[key] = value
        device = torch.device(args.device)
        network = config.get_parsed_content("network").eval()
        inferer = config.get_parsed_content("inferer")
        amp = bool(config.get_parsed_content("amp"))
        prepare = Compose(config.get_parsed_content("inference_transforms") + config.get_parsed_content("network_input"))
        post = config.get_parsed_content("infer#postprocessing").transforms
        to_mask, save = Compose(post[:-1]), post[-1]

        def sync() -> None:
            if device.type == "cuda":
                torch.cuda.synchronize()

        runs = []
        for repeat in range(0 if args.warmup else 1, args.repeats + 1):
            times = {}
            t0 = time.perf_counter()
            item = prepare({"image": str(series_dir)})
            times["load"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            batch = list_data_collate([item])
            with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                batch["pred"] = inferer(batch["image"].to(device), network)
            sync()
            times["infer"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            result = to_mask(decollate_batch(batch)[0])
            result["pred"] = result["pred"].float().cpu()
            times["post"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            save(result)
            times["write"] = time.perf_counter() - t0
            times["total"] = sum(times.values())
            label = "warm-up" if repeat == 0 else f"run {repeat}"
            print(f"{label:8s} " + "  ".join(f"{k} {v:6.2f} s" for k, v in times.items()))
            if repeat:
                runs.append(times)
        best = min(runs, key=lambda t: t["total"])
        seg_file = next(seg_dir.iterdir())
        figures = {
            "series": f"{args.slices} x {args.size} x {args.size}",
            "device": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_model(),
            "torch_threads": torch.get_num_threads(),
            "backbone": config.get_parsed_content("backbone"),
            "seconds": {k: round(v, 3) for k, v in best.items()},
            "share": {k: round(v / best["total"], 3) for k, v in best.items() if k != "total"},
            "slices_per_second_infer": round(args.slices / best["infer"], 2),
            "seg_bytes": seg_file.stat().st_size,
        }
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return figures


if __name__ == "__main__":
    main()
