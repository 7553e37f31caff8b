"""Centred-difference gradient checking in float64, for any function of Tensors or any Module."""
from __future__ import annotations

import numpy as np

from rlkit.tensor import Tensor


def numerical_gradient(scalar_fn, leaves, eps: float = 1e-6) -> list:
    """d(scalar_fn())/d(leaf.data) for each leaf Tensor, by centred differences.

    ``scalar_fn()`` recomputes a Python float from the leaves' current data, which is perturbed
    in place one element at a time and restored.
    """
    grads = []
    for leaf in leaves:
        data, grad = leaf.data, np.zeros(leaf.data.shape, leaf.data.dtype)
        for index in np.ndindex(data.shape):  # by index: the data may be a view of any layout
            original = data[index]
            data[index] = original + eps
            plus = scalar_fn()
            data[index] = original - eps
            minus = scalar_fn()
            data[index] = original
            grad[index] = (plus - minus) / (2 * eps)
        grads.append(grad)
    return grads


def _compare(compute, leaves, names, eps, atol, rtol, seed, raise_on_failure) -> bool:
    """Autograd vs centred differences of sum(W * compute()) with fixed random weights W."""
    out = compute()
    weights = Tensor(np.random.default_rng(seed).standard_normal(out.shape))
    for leaf in leaves:
        leaf.grad = None
    (out * weights).sum().backward()
    analytic = [leaf.grad if leaf.grad is not None else np.zeros_like(leaf.data) for leaf in leaves]
    numeric = numerical_gradient(lambda: float((compute().data * weights.data).sum()), leaves, eps)
    for name, a, n in zip(names, analytic, numeric):
        if not np.allclose(a, n, atol=atol, rtol=rtol):
            if not raise_on_failure:
                return False
            worst = np.unravel_index(np.argmax(np.abs(a - n)), a.shape)
            raise AssertionError(f"gradient of {name} differs at {worst}: "
                                 f"autograd {a[worst]!r}, numerical {n[worst]!r}")
    return True


def gradcheck(fn, *arrays, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-4,
              seed: int = 0, raise_on_failure: bool = True) -> bool:
    """Check autograd against centred differences for ``fn(*tensors) -> Tensor``.

    ``arrays`` become float64 leaf Tensors that require grad. Every output element is weighted
    by a fixed random number, so each one's gradient is tested. Returns True, or raises
    AssertionError naming the input and its worst element (``raise_on_failure=False``: False).
    """
    inputs = [Tensor(np.array(a, dtype=np.float64), requires_grad=True) for a in arrays]
    names = [f"input {i}" for i in range(len(inputs))]
    return _compare(lambda: fn(*inputs), inputs, names, eps, atol, rtol, seed, raise_on_failure)


def gradcheck_module(module, *arrays, output=None, eps: float = 1e-6, atol: float = 1e-5,
                     rtol: float = 1e-4, seed: int = 0, raise_on_failure: bool = True) -> bool:
    """Check a Module's gradients w.r.t. its inputs and every parameter, in float64.

    The module is cast to float64 in place. ``output`` maps the module's return value to one
    Tensor (default: the value itself), e.g. to join an LSTM's ``(output, (h, c))``.
    """
    module.to(dtype=np.float64)
    inputs = [Tensor(np.array(a, dtype=np.float64), requires_grad=True) for a in arrays]
    named = list(module.named_parameters())
    leaves = inputs + [p for _, p in named]
    names = [f"input {i}" for i in range(len(inputs))] + [name for name, _ in named]
    select = output or (lambda value: value)
    return _compare(lambda: select(module(*inputs)), leaves, names, eps, atol, rtol, seed,
                    raise_on_failure)
