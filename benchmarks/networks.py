"""Training-step throughput of radtl's backbones: forward + backward + SGD step, in images/s.

For every backbone of ``radtl.networks`` (``--models``) the script

1. builds the model with ``radtl.networks.create(name, in_channels=3, num_classes=1000)``
   (ViTs also get ``img_size`` equal to the input side), puts it on ``--device`` and in
   ``train()`` mode, with ``torch.optim.SGD(lr=1e-3)`` and ``nn.CrossEntropyLoss``;
2. creates one synthetic batch on the device, once: ``torch.randn(batch, 3, size, size)``
   and random labels in ``[0, 1000)``. Every input is 224x224; with ``--study-sizes``
   inception_v3 gets 299x299 and efficientnet_b3 300x300, the sides the RadiologyNET study
   fed them;
3. runs ``--warmup`` training steps, not timed, then ``--iters`` timed ones. A step is
   ``zero_grad``, forward, loss, backward and ``optimizer.step()``. The clock is
   ``time.perf_counter``; on CUDA ``torch.cuda.synchronize()`` runs before the clock starts
   and before it stops. The rate is ``batch * iters / elapsed``;
4. does that for each configuration asked for:

   - ``fp32``: plain float32;
   - ``channels_last``: ``model.to(memory_format=torch.channels_last)`` and a channels-last
     input;
   - ``bf16``: ``torch.autocast(device_type, dtype=torch.bfloat16)`` around forward and loss
     (backward and the optimizer step run outside it, as in a normal autocast loop);
   - ``channels_last+bf16``: both.

   Without ``--matrix`` one configuration runs, the one ``--channels-last`` and ``--bf16``
   pick. With ``--matrix`` all four run on CUDA, and the table gives each one's rate against
   fp32. On CPU, ``--matrix`` runs fp32 only; bf16 autocast on CPU is available through
   ``--bf16`` outside the matrix;
5. frees the model, optimizer and batch after each measurement (``gc.collect()``, and
   ``torch.cuda.empty_cache()`` on CUDA). A measurement that raises ``RuntimeError`` (CUDA
   out of memory included) is recorded as ``failed: <reason>`` and the next one runs;
6. prints the machine (date, CPU model and cores, torch version, device, threads) and a
   markdown table for ``docs/performance.md``; ``--json PATH`` also writes the raw results.

Usage::

    python benchmarks/networks.py                                   # all backbones, GPU if there is one
    python benchmarks/networks.py --device cuda --matrix --json nets.json
    python benchmarks/networks.py --device cuda --study-sizes --models inception_v3,efficientnet_b3
    python benchmarks/networks.py --device cpu --batch 4 --iters 2 --warmup 1 --threads 2

Defaults: batch 8 and 5 timed steps on CPU, batch 64 and 20 on CUDA; 2 warm-up steps.
cuDNN autotuning (``torch.backends.cudnn.benchmark``) and TF32 stay at PyTorch's defaults;
the header prints them. Random weights and data: the rates say nothing about accuracy. On a
2-core VM the last example above takes about a minute. Figures depend on the machine and
its load, so compare ratios within one run. The header and footer print the load average:
on a shared CPU, another busy process slows multi-threaded training steps many times over
(the threads wait for each other), so there ``--threads 1`` gives steadier figures.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from machine import cpu_model  # benchmarks/machine.py, beside this script
from torch import nn

from radtl.networks import STUDY_BACKBONES, create

MODELS = (*STUDY_BACKBONES, "vit_small", "vit_base")
DEFAULT_SIZE = 224
STUDY_SIZES = {"inception_v3": 299, "efficientnet_b3": 300}
NUM_CLASSES = 1000
LEARNING_RATE = 1e-3
# name -> (channels_last, bf16)
CONFIGS = {
    "fp32": (False, False),
    "channels_last": (True, False),
    "bf16": (False, True),
    "channels_last+bf16": (True, True),
}


@dataclass
class Result:
    """One measurement; ``images_per_s`` is None when it failed (``error`` says why)."""

    model: str
    size: int
    batch: int
    config: str
    warmup: int
    iters: int
    images_per_s: float | None = None
    seconds: float | None = None  # timed steps only
    parameters: int | None = None
    peak_memory_mib: float | None = None  # CUDA only: torch.cuda.max_memory_allocated
    error: str | None = None
    ratio_vs_fp32: float | None = None  # --matrix only


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({cpu_model()})"


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _reason(error: BaseException) -> str:
    """First line of the message, short enough for a table cell, without markdown's ``|``."""
    lines = str(error).strip().splitlines()
    text = lines[0] if lines else type(error).__name__
    if isinstance(error, torch.cuda.OutOfMemoryError):
        text = "CUDA out of memory"
    text = text.replace("|", "/")
    return text if len(text) <= 100 else text[:97] + "..."


def input_size(name: str, study_sizes: bool) -> int:
    return STUDY_SIZES.get(name, DEFAULT_SIZE) if study_sizes else DEFAULT_SIZE


def build(name: str, size: int) -> nn.Module:
    kwargs = {"img_size": size} if name.startswith("vit") else {}
    return create(name, in_channels=3, num_classes=NUM_CLASSES, **kwargs)


def measure(result: Result, device: torch.device, channels_last: bool, bf16: bool) -> None:
    """Time ``result.iters`` training steps after ``result.warmup`` untimed ones; fill ``result`` in.

    Everything this function allocates is local: deleted at the end, or released with the
    traceback when it raises.
    """
    torch.manual_seed(0)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    model = build(result.model, result.size).to(device)
    if channels_last:
        model = model.to(memory_format=memory_format)
    model.train()
    result.parameters = sum(p.numel() for p in model.parameters())
    optimizer = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE)
    criterion = nn.CrossEntropyLoss()
    images = torch.randn(result.batch, 3, result.size, result.size, device=device)
    images = images.contiguous(memory_format=memory_format)
    labels = torch.randint(0, NUM_CLASSES, (result.batch,), device=device)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = criterion(model(images), labels)
        loss.backward()
        optimizer.step()

    for _ in range(result.warmup):
        step()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    _synchronize(device)
    start = time.perf_counter()
    for _ in range(result.iters):
        step()
    _synchronize(device)
    elapsed = time.perf_counter() - start
    result.seconds = elapsed
    result.images_per_s = result.batch * result.iters / elapsed
    if device.type == "cuda":
        result.peak_memory_mib = torch.cuda.max_memory_allocated(device) / 2**20


def free_memory(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def run_one(result: Result, device: torch.device, channels_last: bool, bf16: bool) -> Result:
    if bf16 and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        result.error = "bf16 not supported on this GPU"
        return result
    try:
        measure(result, device, channels_last, bf16)
    except (RuntimeError, torch.cuda.OutOfMemoryError) as error:  # OOM, unsupported op, shape error
        result.error = _reason(error)
    # The traceback (and the model, optimizer and batch it holds) is gone once the except
    # block has ended, so this really returns the memory.
    free_memory(device)
    return result


def _fmt_rate(result: Result) -> str:
    if result.error:
        return f"failed: {result.error}"
    rate = result.images_per_s
    return f"{rate:.1f}" if rate >= 100 else f"{rate:.3g}"  # three significant digits for slow CPU rates


def _fmt_ratio(result: Result) -> str:
    return "-" if result.ratio_vs_fp32 is None else f"{result.ratio_vs_fp32:.2f}x"


def print_table(results: list[Result]) -> None:
    print("| model | input | batch | config | images/s | ratio vs fp32 |")
    print("|---|---:|---:|---|---:|---:|")
    for r in results:
        print(f"| {r.model} | {r.size}x{r.size} | {r.batch} | {r.config} | {_fmt_rate(r)} | {_fmt_ratio(r)} |")


def _load_average() -> str:
    """The 1-, 5- and 15-minute load averages: a busy machine slows every rate (unavailable: "n/a")."""
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except (AttributeError, OSError):  # Windows has no getloadavg; elsewhere it can be unobtainable
        return "n/a"


def machine_info(device: torch.device) -> dict[str, object]:
    info: dict[str, object] = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": _device_name(device),
        "load_average_start": _load_average(),
    }
    if device.type == "cuda":
        info["cuda"] = torch.version.cuda
        info["cudnn"] = torch.backends.cudnn.version()
        info["cudnn_benchmark"] = torch.backends.cudnn.benchmark
        info["tf32_matmul"] = torch.backends.cuda.matmul.allow_tf32
        info["tf32_cudnn"] = torch.backends.cudnn.allow_tf32
    return info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--device",
        choices=("cpu", "cuda"),
        default="cuda" if torch.cuda.is_available() else "cpu",
        help="where to train (default cuda if available, else cpu)",
    )
    parser.add_argument("--batch", type=int, default=None, help="batch size (default 8 on CPU, 64 on CUDA)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps before the timed ones (default 2)")
    parser.add_argument("--iters", type=int, default=None, help="timed steps (default 5 on CPU, 20 on CUDA)")
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated backbones (default: all)")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (CPU; default torch's)")
    parser.add_argument("--channels-last", action="store_true", help="channels-last model and input")
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast around forward and loss")
    parser.add_argument(
        "--matrix",
        action="store_true",
        help="CUDA: fp32, channels_last, bf16 and channels_last+bf16 for each model, with the "
        "ratio to fp32; CPU: fp32 only",
    )
    parser.add_argument(
        "--study-sizes",
        action="store_true",
        help="inception_v3 at 299x299 and efficientnet_b3 at 300x300 (default: 224 for all)",
    )
    parser.add_argument("--json", type=Path, default=None, metavar="PATH", help="also write the raw results here")
    args = parser.parse_args(argv)

    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is available")
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    batch = args.batch if args.batch is not None else (64 if cuda else 8)
    iters = args.iters if args.iters is not None else (20 if cuda else 5)
    if batch < 1 or iters < 1 or args.warmup < 0:
        parser.error("--batch and --iters must be >= 1, --warmup >= 0")
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in models if m not in MODELS]
    if unknown or not models:
        parser.error(f"unknown models {unknown}; choose from {', '.join(MODELS)}")
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    if args.matrix:
        configs = list(CONFIGS) if cuda else ["fp32"]
        if args.channels_last or args.bf16:
            print("note: --matrix sets the configurations; --channels-last and --bf16 are ignored")
    else:
        configs = [next(k for k, v in CONFIGS.items() if v == (args.channels_last, args.bf16))]

    started = time.perf_counter()
    info = machine_info(device)
    print(f"# radtl network training throughput  ({info['date']})")
    print(
        f"python {info['python']}, torch {info['torch']}; {info['cpu_count']} CPU(s): {info['cpu']}; "
        f"torch threads {info['torch_threads']}"
    )
    print(f"device: {info['device']}; load average {info['load_average_start']}")
    if cuda:
        print(
            f"CUDA {info['cuda']}, cuDNN {info['cudnn']}; cudnn.benchmark={info['cudnn_benchmark']}, "
            f"TF32 matmul={info['tf32_matmul']}, TF32 cuDNN={info['tf32_cudnn']}"
        )
    print(f"batch {batch}, {args.warmup} warm-up + {iters} timed steps; configurations: {', '.join(configs)}\n")

    results: list[Result] = []
    for name in models:
        size = input_size(name, args.study_sizes)
        fp32_rate = None
        for config in configs:
            channels_last, bf16 = CONFIGS[config]
            result = Result(name, size, batch, config, args.warmup, iters)
            t0 = time.perf_counter()
            run_one(result, device, channels_last, bf16)
            if args.matrix:
                if config == "fp32":
                    fp32_rate = result.images_per_s
                if fp32_rate and result.images_per_s:
                    result.ratio_vs_fp32 = result.images_per_s / fp32_rate
            results.append(result)
            print(
                f"  {name} {size}x{size} {config}: {_fmt_rate(result)} images/s "
                f"({time.perf_counter() - t0:.1f} s with build and warm-up)",
                flush=True,
            )

    info["load_average_end"] = _load_average()
    print(
        f"\nload average at the end {info['load_average_end']} (on a shared machine, another busy process "
        f"slows every rate; --threads 1 suffers least)"
    )
    print("\n## markdown\n")
    print(
        f"Measured {info['date']} on {info['device']}; {info['cpu_count']} CPU(s): {info['cpu']}; "
        f"torch {info['torch']}, {info['torch_threads']} thread(s). Training step (forward, cross-entropy, "
        f"backward, SGD) on synthetic data; {args.warmup} warm-up + {iters} timed steps.\n"
    )
    print_table(results)
    failed = sum(r.error is not None for r in results)
    if failed:
        print(f"\n{failed} of {len(results)} measurement(s) failed.")

    if args.json:
        payload = {
            "machine": info,
            "arguments": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            "batch": batch,
            "iters": iters,
            "results": [asdict(r) for r in results],
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
        print(f"\nraw results: {args.json}")
    print(f"\ntotal benchmark time {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
