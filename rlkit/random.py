"""rlkit's global random generator: weight initialisation and dropout masks draw from it."""
from __future__ import annotations

import json

import numpy as np

_generator = np.random.default_rng()


def manual_seed(seed: int | None) -> np.random.Generator:
    """Reseed the global generator, making initialisation and dropout reproducible."""
    global _generator
    _generator = np.random.default_rng(seed)
    return _generator


def generator() -> np.random.Generator:
    """The global NumPy Generator."""
    return _generator


def generator_state(generator: np.random.Generator) -> str:
    """A NumPy Generator's exact state as a JSON string (for a checkpoint's header); the global
    generator's is ``generator_state(rlkit.random.generator())``."""
    return json.dumps(generator.bit_generator.state)


def restore_generator(generator: np.random.Generator, state: str) -> None:
    """Put ``generator`` back into a state from :func:`generator_state`."""
    generator.bit_generator.state = json.loads(state)
