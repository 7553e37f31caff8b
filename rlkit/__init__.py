"""rlkit: a reinforcement-learning toolkit on its own NumPy/CuPy autograd engine.

The engine's public surface mirrors PyTorch's where it can, so habits carry over::

    from rlkit import Tensor, no_grad, nn, optim
"""
from rlkit import functions, nn, optim
from rlkit.backend import DeviceUnavailableError, cuda_available, resolve_device
from rlkit.gradcheck import gradcheck, gradcheck_module
from rlkit.random import manual_seed
from rlkit.tensor import Function, Tensor, cat, is_grad_enabled, maximum, no_grad, ones, stack, where, zeros

__all__ = [
    "functions", "nn", "optim", "DeviceUnavailableError", "cuda_available", "resolve_device",
    "gradcheck", "gradcheck_module", "manual_seed", "Function", "Tensor", "cat", "is_grad_enabled", "maximum",
    "no_grad", "ones", "stack", "where", "zeros",
]
