"""Centred-difference gradient checking in float64, for any function of Tensors."""
from __future__ import annotations

import numpy as np

from rlkit.tensor import Tensor


def numerical_gradient(fn, inputs, eps: float = 1e-6, weights=None) -> list:
    """d(sum(weights * fn(*inputs)))/d(input) for each input, by centred differences.

    ``inputs`` are float64 Tensors; ``weights`` (same shape as fn's output, default ones) turns a
    non-scalar output into a scalar with a non-trivial gradient.
    """
    def scalar():
        out = fn(*inputs)
        data = out.data if weights is None else out.data * weights
        return float(data.sum())

    grads = []
    for t in inputs:
        grad = np.zeros_like(t.data)
        flat, flat_grad = t.data.reshape(-1), grad.reshape(-1)
        for k in range(flat.size):
            original = flat[k]
            flat[k] = original + eps
            plus = scalar()
            flat[k] = original - eps
            minus = scalar()
            flat[k] = original
            flat_grad[k] = (plus - minus) / (2 * eps)
        grads.append(grad)
    return grads


def gradcheck(fn, *arrays, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-4,
              seed: int = 0, raise_on_failure: bool = True) -> bool:
    """Compare autograd with centred differences for ``fn(*tensors) -> Tensor``.

    ``arrays`` are converted to float64 leaf Tensors. The output is contracted with fixed random
    weights (so every output element matters). Returns True, or raises AssertionError naming the
    input and the worst element when they differ (``raise_on_failure=False`` returns False instead).
    """
    inputs = [Tensor(np.array(a, dtype=np.float64), requires_grad=True) for a in arrays]
    out = fn(*inputs)
    weights = np.random.default_rng(seed).standard_normal(out.shape)
    (out * Tensor(weights)).sum().backward()
    analytic = [t.grad if t.grad is not None else np.zeros_like(t.data) for t in inputs]
    for t in inputs:
        t.grad = None
    numeric = numerical_gradient(fn, inputs, eps, weights)
    for index, (a, n) in enumerate(zip(analytic, numeric)):
        if not np.allclose(a, n, atol=atol, rtol=rtol):
            worst = np.unravel_index(np.argmax(np.abs(a - n)), a.shape)
            if raise_on_failure:
                raise AssertionError(f"gradient of input {index} differs at {worst}: "
                                     f"autograd {a[worst]!r}, numerical {n[worst]!r}")
            return False
    return True
