"""Reference layouts and outputs of torchvision's classification models, for radtl's layout tests.

radtl builds every architecture of the RadiologyNET study without torchvision. To prove that a
torchvision checkpoint means the same thing in radtl, this module records, from torchvision
itself, two facts per architecture into ``tests/data/torchvision_reference.json.gz``:

- ``layout``: every state-dict key with its shape, for the ImageNet model (1000 classes).
- ``logits``: the float64 output of the model in eval mode for a seeded 10-class state dict
  (:func:`seeded_state_dict`) and a seeded input (:func:`seeded_input`).

The tests rebuild the same seeded weights in torchvision layout, load them into radtl's models
through :func:`radtl.networks.load_pretrained` and compare outputs.

Regenerate (only needed when torchvision changes an architecture) where torchvision imports::

    python tests/torchvision_reference.py

Where no torchvision build matches the installed torch (CPU-only machines), the model
definitions still import from the wheel's Python files: ``pip download torchvision --no-deps``,
unzip the wheel into a folder, empty ``torchvision/_meta_registrations.py`` there (it registers
kernels of the compiled extension, which the models do not use), and run the script with that
folder on ``PYTHONPATH``. The committed file was made so, from torchvision 0.29.2 on torch 2.13.
"""

from __future__ import annotations

import gzip
import json
import zlib
from pathlib import Path

import torch

from radtl.networks import STUDY_BACKBONES

REFERENCE_FILE = Path(__file__).parent / "data" / "torchvision_reference.json.gz"
REFERENCE_CLASSES = 10
REFERENCE_BATCH = 2
#: Input side per architecture for the reference logits: small, but large enough for every
#: stride-32 stage (InceptionV3's valid convolutions need at least 75 pixels).
REFERENCE_SIZE = {"inception_v3": 96}
DEFAULT_REFERENCE_SIZE = 64

ARCHITECTURES = STUDY_BACKBONES


def seeded_tensor(key: str, shape: tuple[int, ...]) -> torch.Tensor:
    """A float64 tensor determined by ``key`` alone, scaled so a deep network stays finite.

    Convolution and linear weights get He-scaled normal values; batch-norm running variances and
    scales lie in [0.5, 1.5]; means and biases are small. Seeding by the key's CRC-32 makes the
    value independent of the order in which keys are visited.
    """
    generator = torch.Generator().manual_seed(zlib.crc32(key.encode()))
    if len(shape) >= 2:
        fan_in = max(1, int(torch.tensor(shape[1:]).prod()))
        values = torch.randn(shape, generator=generator) * (2.0 / fan_in) ** 0.5
    elif key.endswith(("running_var", "weight")):  # 1-D weights are batch-norm scales here
        values = torch.rand(shape, generator=generator) + 0.5
    else:
        values = torch.randn(shape, generator=generator) * 0.1
    return values.double()


def seeded_state_dict(layout: dict[str, list[int]]) -> dict[str, torch.Tensor]:
    """Seeded tensors for every key of a layout, except the ``num_batches_tracked`` counters."""
    return {
        key: seeded_tensor(key, tuple(shape))
        for key, shape in layout.items()
        if not key.endswith("num_batches_tracked")
    }


def seeded_input(name: str) -> torch.Tensor:
    size = REFERENCE_SIZE.get(name, DEFAULT_REFERENCE_SIZE)
    generator = torch.Generator().manual_seed(1221)
    return torch.randn((REFERENCE_BATCH, 3, size, size), generator=generator).double()


def load_reference() -> dict:
    with gzip.open(REFERENCE_FILE, "rt") as handle:
        return json.load(handle)


def _torchvision_model(name: str, num_classes: int):
    from torchvision import models

    kwargs = {"aux_logits": True, "init_weights": False} if name == "inception_v3" else {}
    return getattr(models, name)(num_classes=num_classes, **kwargs)


def generate() -> dict:
    reference = {}
    for name in ARCHITECTURES:
        imagenet = _torchvision_model(name, 1000)
        layout = {key: list(value.shape) for key, value in imagenet.state_dict().items()}
        model = _torchvision_model(name, REFERENCE_CLASSES).double().eval()
        small_layout = {key: list(value.shape) for key, value in model.state_dict().items()}
        model.load_state_dict(seeded_state_dict(small_layout), strict=False)
        with torch.no_grad():
            logits = model(seeded_input(name))
        reference[name] = {"layout": layout, "logits": logits.tolist()}
    return reference


if __name__ == "__main__":
    import torchvision

    data = {"torchvision": torchvision.__version__, "models": generate()}
    REFERENCE_FILE.parent.mkdir(exist_ok=True)
    with gzip.GzipFile(REFERENCE_FILE, "wb", mtime=0) as handle:
        handle.write(json.dumps(data, sort_keys=True).encode())
    print(f"wrote {REFERENCE_FILE} ({REFERENCE_FILE.stat().st_size} bytes) from torchvision {torchvision.__version__}")
