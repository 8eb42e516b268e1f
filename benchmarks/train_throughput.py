"""Training throughput of a fine-tuning bundle's whole pipeline against the model-only ceiling.

The bundle's own ``train.json`` is parsed (MONAI ``ConfigParser``, with ``--set key=value``
overrides) and three rates are measured in images/s on the same network, optimizer and loss:

1. ``data only``: the bundle's training DataLoader iterated alone (the cached deterministic
   part plus random augmentation, collation, worker hand-off): the data pipeline's ceiling;
2. ``pipeline``: a full training step per batch from that DataLoader: load + augment + the
   bundle's ``PrepareBatch`` (device copy, channels_last) + forward, loss, backward, step,
   with the bundle's AMP setting;
3. ``model only``: the same step on one batch already on the device, repeated: the ceiling
   the data pipeline should not pull down.

``pipeline / model only`` near 1 means the data pipeline is not the bottleneck. The
``CacheDataset`` fill (reading and windowing every DICOM once) is timed apart, as ``cache fill``.
Each rate is ``images / elapsed`` over ``--epochs`` passes after one warm-up batch; on CUDA the
clock waits for ``torch.cuda.synchronize()``.

Usage::

    python benchmarks/train_throughput.py                                  # btmr, its defaults
    python benchmarks/train_throughput.py --bundle covid19_cxr --set image_size=224 --set num_workers=2
    python benchmarks/train_throughput.py --device cuda --set batch_size=64 --json tp.json
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import cpu_model

REPO = Path(__file__).resolve().parents[1]


def _value(text: str):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _parser(bundle: str, overrides: dict):
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config(str(REPO / "bundles" / bundle / "configs" / "train.json"))
    parser.update(overrides)
    return parser


def _step(parts: dict, batch: dict) -> None:
    prepared = parts["prepare_batch"](batch, parts["device"], non_blocking=True)
    image, label, args = prepared[0], prepared[1], (prepared[2] if len(prepared) > 2 else ())
    parts["optimizer"].zero_grad(set_to_none=True)
    with torch.autocast(parts["device"].type, dtype=torch.bfloat16, enabled=parts["amp"]):
        loss = parts["loss"](parts["network"](image, *args), label)
    loss.backward()
    parts["optimizer"].step()


def measure(bundle: str, overrides: dict, epochs: int) -> dict:
    parser = _parser(bundle, overrides)
    parser.get_parsed_content("initialize#0")  # the bundle's set_determinism(seed)
    started = time.perf_counter()
    loader = parser.get_parsed_content("train#dataloader")
    cache_fill = time.perf_counter() - started
    parts = {key: parser.get_parsed_content(key) for key in ("network", "optimizer", "loss", "prepare_batch", "device", "amp")}
    parts["network"].train()
    images_per_epoch = len(loader.dataset)

    def timed(run) -> float:
        _sync(parts["device"])
        start = time.perf_counter()
        count = run()
        _sync(parts["device"])
        return count / (time.perf_counter() - start)

    def data_only() -> int:
        return sum(len(batch["image"]) for _ in range(epochs) for batch in loader)

    def pipeline() -> int:
        count = 0
        for _ in range(epochs):
            for batch in loader:
                _step(parts, batch)
                count += len(batch["image"])
        return count

    first = next(iter(loader))
    _step(parts, first)  # warm-up: allocator, cuDNN plans

    def model_only() -> int:
        steps = max(1, epochs * images_per_epoch // len(first["image"]))
        for _ in range(steps):
            _step(parts, first)
        return steps * len(first["image"])

    results = {"data only": timed(data_only), "pipeline": timed(pipeline), "model only": timed(model_only)}
    return {
        "bundle": bundle,
        "backbone": parser["backbone"],
        "image_size": parser["image_size"],
        "batch_size": parser["batch_size"],
        "num_workers": parser["num_workers"],
        "device": str(parts["device"]),
        "amp": bool(parts["amp"]),
        "channels_last": bool(parser.get_parsed_content("channels_last")),
        "images_per_epoch": images_per_epoch,
        "cache_fill_s": round(cache_fill, 2),
        **{k: round(v, 2) for k, v in results.items()},
        "pipeline / model only": round(results["pipeline"] / results["model only"], 3),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", default="btmr")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: the bundle's choice)")
    parser.add_argument("--epochs", type=int, default=2, help="passes over the sample set per measurement")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="bundle setting override")
    parser.add_argument("--json", type=Path, help="also write the result here")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    overrides = {k: _value(v) for k, v in (s.split("=", 1) for s in args.set)}
    if args.device:
        overrides["device"] = f"$torch.device('{args.device}')"
        overrides.setdefault("amp", args.device == "cuda")
        overrides.setdefault("channels_last", args.device == "cuda")
    print(f"# {time.strftime('%Y-%m-%d')}  {cpu_model()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"threads {torch.get_num_threads()}, load {os.getloadavg()[0]:.2f}")
    if torch.cuda.is_available():
        print(f"# GPU: {torch.cuda.get_device_name()}")
    result = measure(args.bundle, overrides, args.epochs)
    width = max(map(len, result))
    for key, value in result.items():
        print(f"{key:<{width}}  {value}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
