"""rlkit: a reinforcement-learning toolkit on its own NumPy/CuPy autograd engine.

The engine's public surface mirrors PyTorch's where it can, so habits carry over::

    from rlkit import Tensor, no_grad, nn, optim

The engine loads on first use of one of these names (PEP 562's module ``__getattr__``):
``import rlkit.runs`` or ``rlkit.plotting`` (run folders, CSVs, figures) does not compile or
load numba and the kernels.
"""
from __future__ import annotations

import importlib

_SUBMODULES = ("functions", "nn", "optim")
# public name -> the module that defines it. No name is also a submodule's (hence
# rlkit.gradient_check): importing a submodule binds its name in the package, which would
# shadow a function of that name
_EXPORTS = {
    **{name: f"rlkit.{name}" for name in _SUBMODULES},
    "DeviceUnavailableError": "rlkit.backend", "cuda_available": "rlkit.backend",
    "resolve_device": "rlkit.backend",
    "gradcheck": "rlkit.gradient_check", "gradcheck_module": "rlkit.gradient_check",
    "manual_seed": "rlkit.random",
    **{name: "rlkit.tensor" for name in ("Function", "Tensor", "cat", "is_grad_enabled", "maximum",
                                         "no_grad", "ones", "stack", "where", "zeros")},
}
__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'rlkit' has no attribute {name!r}")
    module = importlib.import_module(_EXPORTS[name])
    value = module if name in _SUBMODULES else getattr(module, name)
    globals()[name] = value  # found once; later look-ups do not come here
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
