"""Shared pytest setup: headless SDL/matplotlib, so no test ever needs a display."""
import importlib
import os
from pathlib import Path

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
os.environ.setdefault("MPLBACKEND", "Agg")

import numpy as np
import pytest

from rlkit.backend import cuda_available

ROOT = Path(__file__).resolve().parents[1]


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


@pytest.fixture
def assert_same_training():
    """Assert two policy-gradient agents ended in the same place: steps, episodes and updates,
    then every network parameter and optimiser state entry, bit for bit (a resumed run
    against an uninterrupted one)."""
    def check(straight, resumed):
        assert (resumed.steps, resumed.episodes, resumed.updates) == \
            (straight.steps, straight.episodes, straight.updates)
        for (name, a), b in zip(straight.net.state_dict().items(), resumed.net.state_dict().values()):
            np.testing.assert_array_equal(a, b, err_msg=name)
        for name, value in straight.optimizer.state_dict().items():
            np.testing.assert_array_equal(value, resumed.optimizer.state_dict()[name], err_msg=name)
    return check


@pytest.fixture
def script(monkeypatch):
    """Import a script module by name (its folder on sys.path, as when run) to call main(argv)."""
    monkeypatch.syspath_prepend(str(ROOT / "scripts"))
    return importlib.import_module
