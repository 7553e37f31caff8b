"""Weight initialisers of the book's initialisation chapter (Xavier/Glorot and He/Kaiming).

``fan_in`` is the number of inputs feeding one output (in_features, or C * KH * KW for a conv),
``fan_out`` the number of outputs one input feeds. All functions fill in place and return the
tensor; ``rng`` is a numpy Generator (default: rlkit's global one, see :func:`rlkit.manual_seed`).
"""
from __future__ import annotations

import math

import numpy as np

from rlkit import random
from rlkit.backend import get_array_module


def fans(shape: tuple) -> tuple:
    """(fan_in, fan_out) for a Linear (out, in) or Conv (out, in, kh, kw) weight shape."""
    receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return shape[1] * receptive, shape[0] * receptive


def _fill(tensor, values):
    xp = get_array_module(tensor.data)
    tensor.data[...] = xp.asarray(values, dtype=tensor.data.dtype)
    return tensor


def _rng(rng):
    return rng if rng is not None else random.generator()


def xavier_normal_(tensor, gain: float = 1.0, rng=None):
    """N(0, gain^2 * 2 / (fan_in + fan_out)) (Glorot & Bengio)."""
    fan_in, fan_out = fans(tensor.shape)
    std = gain * math.sqrt(2.0 / (fan_in + fan_out))
    return _fill(tensor, _rng(rng).normal(0.0, std, tensor.shape))


def xavier_uniform_(tensor, gain: float = 1.0, rng=None):
    """U(-a, a), a = gain * sqrt(6 / (fan_in + fan_out))."""
    fan_in, fan_out = fans(tensor.shape)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return _fill(tensor, _rng(rng).uniform(-bound, bound, tensor.shape))


def he_normal_(tensor, rng=None):
    """N(0, 2 / fan_in): keeps ReLU activations' variance constant (He et al.)."""
    fan_in, _ = fans(tensor.shape)
    return _fill(tensor, _rng(rng).normal(0.0, math.sqrt(2.0 / fan_in), tensor.shape))


def he_uniform_(tensor, rng=None):
    """U(-a, a), a = sqrt(6 / fan_in)."""
    fan_in, _ = fans(tensor.shape)
    bound = math.sqrt(6.0 / fan_in)
    return _fill(tensor, _rng(rng).uniform(-bound, bound, tensor.shape))


def uniform_fan_in_(tensor, fan_in: int, rng=None):
    """U(-1/sqrt(fan_in), 1/sqrt(fan_in)): PyTorch's default for Linear/Conv weights and biases."""
    bound = 1.0 / math.sqrt(fan_in)
    return _fill(tensor, _rng(rng).uniform(-bound, bound, tensor.shape))


def orthogonal_(tensor, gain: float = 1.0, rng=None):
    """A (semi-)orthogonal matrix times ``gain`` (Saxe et al. 2014; PPO's initialisation).

    The weight is viewed as (rows, cols) = (out, in * kh * kw); its rows are orthonormal when
    rows <= cols (W W^T = gain^2 I), else its columns are (W^T W = gain^2 I). Drawn as the Q of
    the QR decomposition of a standard normal matrix, with the signs fixed by R's diagonal so
    that Q is uniform over the orthogonal matrices.
    """
    if len(tensor.shape) < 2:
        raise ValueError(f"orthogonal_ needs a weight of at least 2 dimensions, got {tensor.shape}")
    rows = tensor.shape[0]
    cols = int(np.prod(tensor.shape[1:]))
    a = _rng(rng).standard_normal((max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(a)
    q *= np.sign(np.diag(r))
    if rows < cols:
        q = q.T
    return _fill(tensor, (gain * q).reshape(tensor.shape))


def zeros_(tensor):
    tensor.data[...] = 0
    return tensor


def ones_(tensor):
    tensor.data[...] = 1
    return tensor
