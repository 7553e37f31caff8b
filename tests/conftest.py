"""Shared pytest setup: headless SDL/matplotlib, so no test ever needs a display."""
import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
os.environ.setdefault("MPLBACKEND", "Agg")

import numpy as np
import pytest

from rlkit.backend import cuda_available


def pytest_collection_modifyitems(config, items):
    """CUDA cases run only where a GPU answers; elsewhere they are skipped and say why."""
    if cuda_available():
        return
    skip = pytest.mark.skip(reason="no usable CUDA GPU (CuPy missing or no device): CPU only")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def rng():
    """A fixed-seed NumPy generator, so every test sees the same data."""
    return np.random.default_rng(1234)
