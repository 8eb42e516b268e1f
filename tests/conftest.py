"""Shared fixtures: small datasets built in memory, the sample folder, the real-file corpora."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.support.paths import SAMPLES


@pytest.fixture
def ramp() -> np.ndarray:
    """A 16x16 int16 ramp from -1000 to 1000 HU-like values."""
    return np.linspace(-1000, 1000, 256).round().astype(np.int16).reshape(16, 16)


@pytest.fixture(scope="session")
def samples() -> Path:
    return SAMPLES


@pytest.fixture(scope="module")
def one_thread():
    """Torch on one thread for a module: tiny models run fastest so, and stay fast on a busy machine."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
