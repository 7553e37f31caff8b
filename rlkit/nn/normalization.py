"""Batch normalisation layers with running statistics for evaluation."""
from __future__ import annotations

import numpy as np

from rlkit import functions as F
from rlkit.backend import get_array_module
from rlkit.nn.module import Module, Parameter
from rlkit.tensor import Tensor, as_tensor


class _BatchNorm(Module):
    """Shared logic of BatchNorm1d/2d.

    Training: normalise with the batch's mean and biased variance, then
    ``running = momentum * running + (1 - momentum) * batch`` (the book's convention,
    momentum 0.9 keeps 90% of the old value; PyTorch's momentum=0.1 is the same update).
    The running variance is updated with the biased batch variance, as in the book, and starts
    at ones so evaluating an untrained layer is the identity (see ERRATA.md).
    Evaluation: normalise with the running statistics.
    """

    expected_ndim: int = 2

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.9):
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.weight = Parameter(np.ones(num_features, np.float32))
        self.bias = Parameter(np.zeros(num_features, np.float32))
        self.register_buffer("running_mean", np.zeros(num_features, np.float32))
        self.register_buffer("running_var", np.ones(num_features, np.float32))

    def forward(self, x: Tensor) -> Tensor:
        x = as_tensor(x)
        if x.ndim != self.expected_ndim or x.shape[1] != self.num_features:
            layout = "(N, C)" if self.expected_ndim == 2 else "(N, C, H, W)"
            raise ValueError(f"{self!r} expects input {layout} with C = {self.num_features}, "
                             f"got shape {tuple(x.shape)}")
        if self.training:
            fn = F.BatchNorm(eps=self.eps)
            out = fn(x, self.weight, self.bias)
            m = self.momentum
            self.running_mean[...] = m * self.running_mean + (1 - m) * fn.batch_mean
            self.running_var[...] = m * self.running_var + (1 - m) * fn.batch_var
            return out
        xp = get_array_module(x.data)
        shape = (1, -1) + (1,) * (x.ndim - 2)
        scale = (self.weight / Tensor._wrap(xp.sqrt(self.running_var + self.eps), False)).reshape(shape)
        shift = self.bias.reshape(shape) - scale * Tensor._wrap(self.running_mean.reshape(shape), False)
        return x * scale + shift

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"


class BatchNorm1d(_BatchNorm):
    """Batch norm over (N, C) features."""

    expected_ndim = 2


class BatchNorm2d(_BatchNorm):
    """Batch norm per channel over (N, C, H, W) maps (statistics over N, H and W)."""

    expected_ndim = 4
