"""Layers: Linear, Conv2d, MaxPool2d, Flatten, activations, Dropout.

Shape checks live here, where the layer's name and configuration are known, so a wrong input
fails with one clear ValueError instead of a NumPy error from deep inside an op.
"""
from __future__ import annotations

from rlkit import functions as F
from rlkit import random
from rlkit.backend import get_array_module
from rlkit.nn import init
from rlkit.nn.module import Module, Parameter
from rlkit.tensor import Tensor, as_tensor

import numpy as np


def _pair(value) -> tuple:
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


class Linear(Module):
    """y = x W^T + b for ``x`` (..., in_features) -> (..., out_features).

    ``weight`` (out, in) and ``bias`` (out,) start from U(-1/sqrt(in), 1/sqrt(in)) (PyTorch's
    default); use :mod:`rlkit.nn.init` for Xavier/He.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = Parameter(np.empty((out_features, in_features), np.float32))
        init.uniform_fan_in_(self.weight, in_features)
        self.bias = None
        if bias:
            self.bias = Parameter(np.empty(out_features, np.float32))
            init.uniform_fan_in_(self.bias, in_features)

    def forward(self, x: Tensor) -> Tensor:
        x = as_tensor(x)
        if x.ndim == 0 or x.shape[-1] != self.in_features:
            raise ValueError(f"{self!r} expects input of shape (..., {self.in_features}), "
                             f"got {tuple(x.shape)}")
        if self.bias is None:
            return F.Linear()(x, self.weight)
        return F.Linear()(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Conv2d(Module):
    """2-D cross-correlation (no kernel flip, as PyTorch) over NCHW input.

    ``weight`` (out_channels, in_channels, kh, kw), ``bias`` (out_channels,); output
    (N, out_channels, (H + 2p - kh) // s + 1, (W + 2p - kw) // s + 1). The weight's memory is
    (kh, kw, in_channels, out_channels); optimisers and ``load_state_dict`` keep that layout,
    and a weight given another layout still works (it is rearranged on each call).

    ``input_scale`` multiplies the input on its way in: a first layer with ``input_scale=1/255``
    takes raw uint8 frames and computes what it would on the frames scaled to [0, 1], without
    a float copy of the batch (see :class:`rlkit.functions.Conv2d`).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 bias: bool = True, input_scale: float = 1.0):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.input_scale = float(input_scale)
        self.kernel_size, self.stride, self.padding = _pair(kernel_size), _pair(stride), _pair(padding)
        fan_in = in_channels * self.kernel_size[0] * self.kernel_size[1]
        # (O, C, KH, KW) as PyTorch, stored (KH, KW, C, O): the (KH*KW*C, O) matrix that the
        # convolution's GEMM multiplies im2col's rows by, which it then takes without
        # rearranging the weight on each call (20-30 us a layer, about 6% of a batch-1 forward
        # of the Nature CNN), and as a C-contiguous operand: at batch 1 OpenBLAS ran the Nature
        # CNN's second and third layers' products in 0.71 and 0.85 of the time they took on
        # the transposed view of an (O, KH*KW*C) weight, the same at batch 32 (0.98-0.99)
        memory = np.empty(self.kernel_size + (in_channels, out_channels), np.float32)
        self.weight = Parameter(memory.transpose(3, 2, 0, 1))
        init.uniform_fan_in_(self.weight, fan_in)
        self.bias = None
        if bias:
            self.bias = Parameter(np.empty(out_channels, np.float32))
            init.uniform_fan_in_(self.bias, fan_in)

    def forward(self, x: Tensor) -> Tensor:
        x = as_tensor(x)
        self._check_input(x.shape)
        fn = F.Conv2d(stride=self.stride, padding=self.padding, input_scale=self.input_scale)
        return fn(x, self.weight) if self.bias is None else fn(x, self.weight, self.bias)

    def _check_input(self, shape) -> None:
        if len(shape) != 4:
            raise ValueError(f"{self!r} expects a 4-D NCHW batch (N, {self.in_channels}, H, W), "
                             f"got shape {tuple(shape)}")
        if shape[1] != self.in_channels:
            hint = (" — this looks like NHWC (channels last); transpose to NCHW with "
                    "x.transpose(0, 3, 1, 2)" if shape[3] == self.in_channels else "")
            raise ValueError(f"{self!r} expects {self.in_channels} input channels in NCHW layout "
                             f"(N, {self.in_channels}, H, W), got shape {tuple(shape)}{hint}")
        (kh, kw), (ph, pw) = self.kernel_size, self.padding
        if shape[2] + 2 * ph < kh or shape[3] + 2 * pw < kw:
            raise ValueError(f"{self!r}: input {tuple(shape)} is smaller than the kernel")

    def extra_repr(self) -> str:
        scale = f", input_scale={self.input_scale:g}" if self.input_scale != 1 else ""
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}{scale}")


class MaxPool2d(Module):
    """Max over windows of each channel; ``stride`` defaults to ``kernel_size``; overlap allowed.

    Each window's gradient goes to one element, its first maximum in row-major order.
    """

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size = _pair(kernel_size)
        self.stride = _pair(stride if stride is not None else kernel_size)
        self.padding = _pair(padding)

    def forward(self, x: Tensor) -> Tensor:
        x = as_tensor(x)
        if x.ndim != 4:
            raise ValueError(f"{self!r} expects a 4-D NCHW batch, got shape {tuple(x.shape)}")
        return F.MaxPool2d(self.kernel_size, self.stride, self.padding)(x)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class Flatten(Module):
    """(N, d1, d2, ...) -> (N, d1 * d2 * ...)."""

    def forward(self, x: Tensor) -> Tensor:
        x = as_tensor(x)
        return x.reshape(x.shape[0], -1)


class ReLU(Module):
    def forward(self, x):
        return F.ReLU.apply(as_tensor(x))


class Tanh(Module):
    def forward(self, x):
        return F.Tanh.apply(as_tensor(x))


class Sigmoid(Module):
    def forward(self, x):
        return F.Sigmoid.apply(as_tensor(x))


class Identity(Module):
    def forward(self, x):
        return x


class Dropout(Module):
    """Inverted dropout. ``p`` is the DROP probability (as PyTorch; the book's p is the keep one).

    In training each element is zeroed with probability ``p`` and the survivors are scaled by
    1 / (1 - p), so evaluation (identity) needs no rescaling.
    """

    def __init__(self, p: float = 0.5):
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"Dropout drop probability p must be in [0, 1), got {p}")
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        x = as_tensor(x)
        if not self.training or self.p == 0.0:
            return x
        xp = get_array_module(x.data)
        keep = random.generator().random(x.shape) >= self.p
        mask = xp.asarray(keep, dtype=x.dtype) / (1.0 - self.p)
        return F.Mul.apply(x, Tensor._wrap(mask.astype(x.dtype), False))

    def extra_repr(self) -> str:
        return f"p={self.p} (drop probability)"
