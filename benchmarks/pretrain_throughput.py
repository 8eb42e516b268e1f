"""Pretraining throughput: the study's PNG-folder pipeline against radtl's packed one, and the model-only ceiling.

RadiologyNET pretrained on 1,902,414 8-bit PNGs decoded by PIL in DataLoader workers, with the
augmentation run image by image on the CPU: about 7 days per model on 4x RTX A6000. The script
synthesises ``--images`` grey PNGs of 300-600 px sides (:func:`radtl.dicom.synthetic.phantom`)
and a datalist, and measures images/s of two training steps at 224x224 fed three ways:

- ``(a) PNG folder``: ``monai.data.Dataset`` (no caching) over the PNGs with the fine-tuning
  bundles' dict transforms (``bundles/covid19_cxr/configs/train.json``: ``LoadRadiographd``,
  ``ResizeLongestPadd``, ``RandFlipd``, ``RandRotated``,
  ``RandScaleIntensityd``, ``RandAdjustContrastd``, ``RepeatChanneld``; then plain tensors,
  ``EnsureTyped(track_meta=False)``, as the study's) in ``--workers`` DataLoader workers; for
  DINO the crops (:class:`radtl.transforms.MultiCrop` on a batch of one) are made there too,
  from the full-size image, as DINO's per-image PIL pipeline does;
- ``(b) radtl pack``: the same images packed once by :func:`radtl.data.write_pack` (timed apart,
  as ``packing``), read by :class:`radtl.data.PackedDataset` through the same number of
  workers (``pin_memory`` on CUDA); on the device ``to_unit_float``, ``RandBatchAugment`` and
  ``repeat(1, 3, 1, 1)`` (``radiologynet_pretrain``'s ``PrepareBatch``), for DINO ``MultiCrop``
  over the batch;
- ``(c) model only``: the step repeated on one batch already on the device: the ceiling.

The steps: ResNet50 (36 pseudo-labels, cross-entropy, AdamW) and ViT-S/16 DINO (student
``DINOModel(vit_small, DINOHead(384, --prototypes))``, EMA teacher, ``DINOLoss``, AdamW over
``param_groups_for_weight_decay``, ``update_teacher(momentum 0.996)``; 2 global crops of 224,
plus ``--local-crops`` of 96: 0 is OmniRad's variant, 8 DINO's). DINO rates count source
images, not crops. On CUDA the steps run in bf16 autocast with channels_last (``--no-bf16``,
``--no-channels-last`` to turn off).

Each rate is ``batch x --steps / seconds`` after ``--warmup`` untimed steps; on CUDA the clock
waits for ``torch.cuda.synchronize()``. The workers' prefetch queue (``2 x --workers``
batches) is full when the clock starts, so a loader-bound rate reads high by up to that many
batches over ``--steps``: keep ``--steps`` well above it.

Usage::

    python benchmarks/pretrain_throughput.py                       # CPU: 256 images, batch 8, 6 steps
    python benchmarks/pretrain_throughput.py --images 64 --steps 3 --batch-size 4 --warmup 1
    python benchmarks/pretrain_throughput.py --device cuda --workers 8 --estimate-epochs 100 --out tp.json

The default CPU run takes about 5 minutes on 2 cores. Figures depend on the machine and its
load; compare the ratios within one run. On a CPU another process holds, pass ``--threads 1``:
two OpenMP threads on two cores, one of them busy, ran a ResNet50 step 7x slower than one thread.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import cpu_model

#: RadiologyNET's pretraining set (thesis 2.4) and what one model took on 4x RTX A6000.
STUDY_IMAGES = 1_902_414
STUDY_DAYS = 7
#: The study's pseudo-labels: the ResNet50 classifier's outputs.
PSEUDO_LABELS = 36
SIZE = 224
BODY_PARTS = ("HEAD", "CHEST", "ABDOMEN", "BRAIN", "LSPINE", "KNEE", "HAND", "WRIST")


def synthesise(folder: Path, count: int, seed: int = 0) -> dict:
    """``count`` 8-bit grey PNGs of random 300-600 px sides in ``folder``, and their datalist."""
    from radtl.dicom.synthetic import phantom

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    items = []
    for number in range(count):
        height, width = (int(side) for side in rng.integers(300, 601, 2))
        side = max(height, width)
        picture = phantom(str(rng.choice(BODY_PARTS)), side, rng)
        top, left = (side - height) // 2, (side - width) // 2
        pixels = np.rint(picture[top : top + height, left : left + width] * 255).astype(np.uint8)
        path = folder / f"image_{number:06d}.png"
        Image.fromarray(pixels).save(path)
        items.append({"image": str(path), "label": int(rng.integers(PSEUDO_LABELS))})
    return {"training": items}


class PerImageCrops:
    """DINO's crops of one loaded image, made in a DataLoader worker: ``MultiCrop`` on a batch of one.

    The item's ``(1, H, W)`` image becomes ``"global"`` ``(G, 1, S, S)`` and ``"local"``
    ``(L, 1, s, s)``. Each process seeds its own generator on first use (from ``torch.initial_seed()``,
    which the DataLoader sets per worker), so the workers draw different crops.
    """

    def __init__(self, crops) -> None:
        self.crops = crops
        self._pid: int | None = None

    def __call__(self, item: dict) -> dict:
        if self._pid != os.getpid():
            self.crops.set_random_state(torch.initial_seed() % 2**63)
            self._pid = os.getpid()
        image = item["image"]
        image = image.as_tensor() if hasattr(image, "as_tensor") else torch.as_tensor(image)
        global_views, local_views = self.crops(image[None])
        local = (torch.cat(local_views) if local_views
                 else torch.zeros(0, 1, self.crops.local_size, self.crops.local_size))
        return {"global": torch.cat(global_views), "local": local, "label": item["label"]}


def png_dataset(datalist: dict, crops=None):
    """(a): the fine-tuning bundles' per-image transforms over the PNGs; ``crops``: DINO's instead of theirs."""
    from monai.data import Dataset
    from monai.transforms import (
        Compose,
        EnsureTyped,
        RandAdjustContrastd,
        RandFlipd,
        RandRotated,
        RandScaleIntensityd,
        RepeatChanneld,
    )

    from radtl.transforms import LoadRadiographd, ResizeLongestPadd

    if crops is not None:
        return Dataset(datalist["training"], transform=Compose([LoadRadiographd(keys="image"), PerImageCrops(crops)]))
    transforms = [
        LoadRadiographd(keys="image"),
        ResizeLongestPadd(keys="image", size=SIZE),
        RandFlipd(keys="image", prob=0.5, spatial_axis=1),
        RandRotated(keys="image", range_x=0.2618, prob=0.5, padding_mode="zeros"),
        RandScaleIntensityd(keys="image", factors=0.2, prob=0.5),
        RandAdjustContrastd(keys="image", gamma=[0.8, 1.25], prob=0.5),
        RepeatChanneld(keys="image", repeats=3),
        EnsureTyped(keys="image", track_meta=False),  # a plain tensor, as the study's; no MetaTensor dispatch
    ]
    return Dataset(datalist["training"], transform=Compose(transforms))


def cycle(loader) -> Iterator:
    """The loader's batches, epoch after epoch."""
    return itertools.chain.from_iterable(itertools.repeat(loader))


def timed_rate(step: Callable[[], int], warmup: int, steps: int, device: torch.device) -> float:
    """Images/s over ``steps`` calls of ``step`` (each returns its image count) after ``warmup`` untimed ones."""
    for _ in range(warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    images = sum(step() for _ in range(steps))
    if device.type == "cuda":
        torch.cuda.synchronize()
    return images / (time.perf_counter() - start)


class ResNetStep:
    """ResNet50 on the pseudo-labels: forward, cross-entropy, backward, AdamW step."""

    name = "ResNet50"

    def __init__(self, device: torch.device, bf16: bool, channels_last: bool) -> None:
        from radtl.networks import create

        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.network = create("resnet50", num_classes=PSEUDO_LABELS).to(device, memory_format=memory_format).train()
        self.optimizer = torch.optim.AdamW(self.network.parameters(), lr=1e-3, weight_decay=1e-3)
        self.loss = torch.nn.CrossEntropyLoss()
        self.device, self.bf16, self.channels_last = device, bf16, channels_last

    def __call__(self, images: torch.Tensor, labels: torch.Tensor) -> int:
        self.optimizer.zero_grad(set_to_none=True)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            loss = self.loss(self.network(images), labels)
        loss.backward()
        self.optimizer.step()
        return len(images)

    def sources(self, args, datalist: dict, pack: Path) -> dict[str, Callable[[], int]]:
        """The three ways of feeding the step, each a callable doing one step."""
        from monai.data import DataLoader
        from monai.transforms import Compose

        from radtl.data import PackedDataset
        from radtl.engines import PrepareBatch
        from radtl.transforms import BatchRepeatChannel, RandBatchAugment, to_unit_float

        cuda = self.device.type == "cuda"
        plain = PrepareBatch(channels_last=self.channels_last)
        png = DataLoader(png_dataset(datalist), batch_size=args.batch_size, shuffle=True, num_workers=args.workers,
                         persistent_workers=args.workers > 0, drop_last=True)
        on_device = Compose([to_unit_float, RandBatchAugment(seed=0), BatchRepeatChannel(3)])
        packed_prepare = PrepareBatch(channels_last=self.channels_last, batch_transform=on_device)
        packed = torch.utils.data.DataLoader(
            PackedDataset(pack, "training", keys=["label"]), batch_size=args.batch_size, shuffle=True,
            num_workers=args.workers, pin_memory=cuda, persistent_workers=args.workers > 0, drop_last=True)

        def feed(loader, prepare) -> Callable[[], int]:
            batches = cycle(loader)
            return lambda: self(*prepare(next(batches), self.device, non_blocking=cuda))

        def model_only() -> Callable[[], int]:
            images, labels = packed_prepare(next(iter(packed)), self.device)
            return lambda: self(images, labels)

        return {"png": lambda: feed(png, plain), "packed": lambda: feed(packed, packed_prepare), "model": model_only}


class DINOStep:
    """ViT-S/16 DINO: teacher on the global crops, student on all, DINO loss, backward, AdamW, EMA teacher."""

    name = "ViT-S/16 DINO"

    def __init__(self, device: torch.device, bf16: bool, channels_last: bool, prototypes: int,
                 local_crops: int) -> None:
        from radtl.engines import build_teacher, param_groups_for_weight_decay
        from radtl.losses import DINOLoss
        from radtl.networks import DINOHead, DINOModel, create
        from radtl.transforms import MultiCrop

        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        backbone = create("vit_small", num_classes=0, img_size=SIZE, patch_size=16)
        self.student = DINOModel(backbone, DINOHead(384, out_dim=prototypes)).to(device, memory_format=memory_format)
        self.student.train()
        self.teacher = build_teacher(self.student)
        self.optimizer = torch.optim.AdamW(param_groups_for_weight_decay(self.student), lr=5e-4, weight_decay=0.04)
        self.loss = DINOLoss(prototypes, global_crops=2).to(device)
        self.crops = MultiCrop(global_crops=2, global_size=SIZE, local_crops=local_crops, local_size=96, seed=0)
        self.device, self.bf16, self.channels_last = device, bf16, channels_last

    def _network_input(self, crop: torch.Tensor) -> torch.Tensor:
        crop = crop.repeat(1, 3, 1, 1)
        return crop.contiguous(memory_format=torch.channels_last) if self.channels_last else crop

    def __call__(self, global_crops: list[torch.Tensor], local_crops: list[torch.Tensor]) -> int:
        from radtl.engines import update_teacher

        global_crops = [self._network_input(crop) for crop in global_crops]
        local_crops = [self._network_input(crop) for crop in local_crops]
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            with torch.no_grad():
                teacher_logits = self.teacher(global_crops).logits
            student_logits = self.student(global_crops + local_crops).logits
            loss = self.loss(student_logits, teacher_logits)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        update_teacher(self.student, self.teacher, 0.996)
        return len(global_crops[0])

    def sources(self, args, datalist: dict, pack: Path) -> dict[str, Callable[[], int]]:
        """The three ways of feeding the step, each a callable doing one step."""
        from monai.data import DataLoader

        from radtl.data import PackedDataset
        from radtl.engines.dino import prepare_images
        from radtl.transforms import MultiCrop

        cuda = self.device.type == "cuda"
        worker_crops = MultiCrop(global_crops=2, global_size=SIZE, local_crops=args.local_crops, local_size=96)
        png = DataLoader(png_dataset(datalist, crops=worker_crops), batch_size=args.batch_size, shuffle=True,
                         num_workers=args.workers, persistent_workers=args.workers > 0, drop_last=True)
        packed = torch.utils.data.DataLoader(
            PackedDataset(pack, "training", keys=["label"]), batch_size=args.batch_size, shuffle=True,
            num_workers=args.workers, pin_memory=cuda, persistent_workers=args.workers > 0, drop_last=True)

        def from_png() -> Callable[[], int]:
            batches = cycle(png)

            def step() -> int:
                batch = next(batches)
                views = {key: batch[key].to(self.device, non_blocking=cuda) for key in ("global", "local")}
                return self([views["global"][:, k] for k in range(views["global"].shape[1])],
                            [views["local"][:, k] for k in range(views["local"].shape[1])])

            return step

        def from_pack() -> Callable[[], int]:
            batches = cycle(packed)
            return lambda: self(*self.crops(prepare_images(next(batches), self.device, non_blocking=cuda)))

        def model_only() -> Callable[[], int]:
            global_crops, local_crops = self.crops(prepare_images(next(iter(packed)), self.device))
            return lambda: self(global_crops, local_crops)

        return {"png": from_png, "packed": from_pack, "model": model_only}


def measure(model, args, datalist: dict, pack: Path, device: torch.device) -> dict[str, float]:
    """Images/s of ``model``'s step fed from the PNGs, from the pack, and from one batch on the device."""
    rates = {}
    sources = model.sources(args, datalist, pack)
    for key in list(sources):
        step = sources.pop(key)()
        rates[key] = timed_rate(step, args.warmup, args.steps, device)
        del step  # the last reference to the loader: its persistent workers stop
        gc.collect()
        print(f"  {model.name}, {key}: {rates[key]:.2f} images/s", file=sys.stderr, flush=True)
    return rates


def duration(seconds: float) -> str:
    return f"{seconds / 3600:,.1f} h ({seconds / 86400:,.1f} days)"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--images", type=int, default=None,
                        help="PNGs to synthesise (default 256 on CPU, 1024 on CUDA)")
    parser.add_argument("--batch-size", type=int, default=None, help="default 8 on CPU, 128 on CUDA")
    parser.add_argument("--steps", type=int, default=None,
                        help="timed steps per configuration (default 6 on CPU, 50 on CUDA)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps before each timing")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers of (a) and (b)")
    parser.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=None,
                        help="bf16 autocast (default: on CUDA)")
    parser.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                        help="channels_last network and input (default: on CUDA)")
    parser.add_argument("--prototypes", type=int, default=None,
                        help="DINO head out_dim (default 4096 on CPU, 65536 on CUDA)")
    parser.add_argument("--local-crops", "--local_crops", type=int, default=0,
                        help="DINO's 96 px local crops (0: OmniRad's variant; DINO: 8)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads of the training process")
    parser.add_argument("--estimate-epochs", type=int, default=0,
                        help=f"print how long {STUDY_IMAGES:,} images x N epochs take at the (b) rates")
    parser.add_argument("--workdir", type=Path, help="keep the PNGs and the pack here (default: a temporary folder)")
    parser.add_argument("--out", type=Path, help="also write the results here as JSON")
    args = parser.parse_args(argv)
    cuda = args.device == "cuda"
    if cuda and not torch.cuda.is_available():
        parser.error("--device cuda: torch sees no CUDA device")
    for name, cpu_default, cuda_default in (("images", 256, 1024), ("batch_size", 8, 128), ("steps", 6, 50),
                                            ("prototypes", 4096, 65536), ("bf16", False, True),
                                            ("channels_last", False, True)):
        if getattr(args, name) is None:
            setattr(args, name, cuda_default if cuda else cpu_default)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    from radtl.data import write_pack

    print(f"# radtl pretraining throughput, {time.strftime('%Y-%m-%d')}, {cpu_model()}, {os.cpu_count()} cores, "
          f"torch {torch.__version__}, threads {torch.get_num_threads()}, load {os.getloadavg()[0]:.2f}")
    if cuda:
        print(f"# GPU: {torch.cuda.get_device_name()}")
    print(f"# {args.images} PNGs of 300-600 px, {SIZE}x{SIZE}, batch {args.batch_size}, {args.workers} workers, "
          f"{args.steps} steps after {args.warmup} warm-up, bf16 {args.bf16}, channels_last {args.channels_last}, "
          f"DINO: 2 global + {args.local_crops} local crops, {args.prototypes} prototypes")

    work = args.workdir or Path(tempfile.mkdtemp(prefix="radtl-pretrain-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        started = time.perf_counter()
        datalist = synthesise(work / "png", args.images)
        (work / "datalist.json").write_text(json.dumps(datalist, indent=1) + "\n")
        print(f"# synthesised in {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
        shutil.rmtree(work / "pack", ignore_errors=True)  # a left-over pack would be reused, not timed
        packing = write_pack(work / "datalist.json", work / "pack", size=SIZE)
        pack_rate = packing.count / packing.seconds

        torch.manual_seed(0)
        models = [ResNetStep(device, args.bf16, args.channels_last),
                  DINOStep(device, args.bf16, args.channels_last, args.prototypes, args.local_crops)]
        rates = {}
        for model in models:
            rates[model.name] = measure(model, args, datalist, work / "pack", device)
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)

    resnet, dino = rates["ResNet50"], rates["ViT-S/16 DINO"]
    rows = [("png", f"(a) PNG folder, PIL + per-image CPU augmentation in {args.workers} workers"),
            ("packed", "(b) radtl pack, batched augmentation on the device"),
            ("model", "(c) model only (one batch already on the device)")]
    print("\n| pipeline | ResNet50 img/s | vs ceiling | ViT-S/16 DINO img/s | vs ceiling |")
    print("|---|---:|---:|---:|---:|")
    for key, label in rows:
        print(f"| {label} | {resnet[key]:.2f} | {resnet[key] / resnet['model']:.2f} | "
              f"{dino[key]:.2f} | {dino[key] / dino['model']:.2f} |")
    print(f"\npacking: {packing.count} images in {packing.seconds:.1f} s, {pack_rate:.1f} images/s "
          f"(write_pack, one process; {packing.errors} left out)")
    estimate = {}
    if args.estimate_epochs:
        print(f"\n{STUDY_IMAGES:,} images x {args.estimate_epochs} epochs at the (b) rate on this device "
              f"(the study: about {STUDY_DAYS} days per model on 4x RTX A6000):")
        for name, measured in rates.items():
            seconds = STUDY_IMAGES * args.estimate_epochs / measured["packed"]
            estimate[name] = seconds
            print(f"- {name}: {measured['packed']:.2f} images/s, {duration(seconds)}")
    if args.out:
        result = {
            "date": time.strftime("%Y-%m-%d"),
            "machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "torch": torch.__version__,
                        "threads": torch.get_num_threads(), "gpu": torch.cuda.get_device_name() if cuda else None},
            "settings": {key: (str(value) if isinstance(value, Path) else value) for key, value in vars(args).items()},
            "packing": {"images": packing.count, "seconds": round(packing.seconds, 2),
                        "images_per_s": round(pack_rate, 2)},
            "images_per_s": {name: {key: round(value, 3) for key, value in measured.items()}
                             for name, measured in rates.items()},
            "vs_ceiling": {name: {key: round(measured[key] / measured["model"], 3) for key in ("png", "packed")}
                           for name, measured in rates.items()},
            "estimate_seconds": {"epochs": args.estimate_epochs, **estimate} if estimate else None,
        }
        args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
