"""rlkit: a reinforcement-learning toolkit on its own NumPy/CuPy autograd engine.

The engine's public surface mirrors PyTorch's where it can, so habits carry over::

    from rlkit import Tensor, no_grad, nn, optim

The engine loads on first use of one of these names (PEP 562's module ``__getattr__``):
``import rlkit.runs`` or ``rlkit.plotting`` (run folders, CSVs, figures) does not compile or
load numba and the kernels.
"""
from __future__ import annotations

import importlib

# public name -> the module that defines it (a submodule is its own entry)
_EXPORTS = {
    "functions": "rlkit.functions", "nn": "rlkit.nn", "optim": "rlkit.optim",
    "DeviceUnavailableError": "rlkit.backend", "cuda_available": "rlkit.backend",
    "resolve_device": "rlkit.backend",
    "gradcheck": "rlkit.gradcheck", "gradcheck_module": "rlkit.gradcheck",
    "manual_seed": "rlkit.random",
    **{name: "rlkit.tensor" for name in ("Function", "Tensor", "cat", "is_grad_enabled", "maximum",
                                         "no_grad", "ones", "stack", "where", "zeros")},
}
__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'rlkit' has no attribute {name!r}")
    module = importlib.import_module(_EXPORTS[name])
    value = module if module.__name__ == f"rlkit.{name}" else getattr(module, name)
    globals()[name] = value  # found once; later look-ups do not come here
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
