"""LSTM layers. Gate order i, f, o, g (the book's): rows [0:H] input gate, [H:2H] forget gate,
[2H:3H] output gate, [3H:4H] candidate. (PyTorch orders i, f, g, o: permute rows to exchange
weights.)"""
from __future__ import annotations

import numpy as np

from rlkit import functions as F
from rlkit.backend import get_array_module
from rlkit.nn import init
from rlkit.nn.module import Module, Parameter
from rlkit.tensor import Tensor, as_tensor


class LSTM(Module):
    """One LSTM layer over a batch-first sequence.

    ``forward(x, state=None)``: ``x`` (N, T, input_size), ``state`` = (h0, c0) each
    (N, hidden_size) or None for zeros. Returns ``(output, (h, c))`` with ``output``
    (N, T, hidden_size) the hidden state of every step and ``h``, ``c`` (N, hidden_size) the last.
    (PyTorch's h/c carry a leading layer axis; rlkit has one layer, so it is dropped.)
    Weights start from U(-1/sqrt(H), 1/sqrt(H)) like PyTorch.
    """

    def __init__(self, input_size: int, hidden_size: int, batch_first: bool = True):
        super().__init__()
        if not batch_first:
            raise ValueError("rlkit's LSTM is batch first: pass x as (N, T, features)")
        self.input_size, self.hidden_size = input_size, hidden_size
        self.weight_ih = Parameter(np.empty((4 * hidden_size, input_size), np.float32))
        self.weight_hh = Parameter(np.empty((4 * hidden_size, hidden_size), np.float32))
        self.bias_ih = Parameter(np.empty(4 * hidden_size, np.float32))
        self.bias_hh = Parameter(np.empty(4 * hidden_size, np.float32))
        for p in self.parameters():
            init.uniform_fan_in_(p, hidden_size)

    def forward(self, x: Tensor, state=None):
        x = as_tensor(x)
        if x.ndim != 3 or x.shape[2] != self.input_size:
            raise ValueError(f"{self!r} expects input (N, T, {self.input_size}), got {tuple(x.shape)}")
        h0, c0 = self._initial_state(x, state)
        output, h, c = F.LSTMSequence()(x, h0, c0, self.weight_ih, self.weight_hh,
                                        self.bias_ih, self.bias_hh)
        return output, (h, c)

    def _initial_state(self, x: Tensor, state):
        if state is None:
            xp = get_array_module(x.data)
            zeros = Tensor._wrap(xp.zeros((x.shape[0], self.hidden_size), x.dtype), False)
            return zeros, zeros
        h0, c0 = (as_tensor(s) for s in state)
        expected = (x.shape[0], self.hidden_size)
        if h0.shape != expected or c0.shape != expected:
            raise ValueError(f"{self!r}: h0 and c0 must be {expected}, got {h0.shape} and {c0.shape}")
        return h0, c0

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, batch_first=True"


class LSTMCell(LSTM):
    """One LSTM step: ``forward(x, state=None)`` with ``x`` (N, input_size) returns ``(h, c)``.

    The same parameters and math as :class:`LSTM` (a one-step sequence), for acting one
    observation at a time with the hidden state carried by the caller.
    """

    def forward(self, x: Tensor, state=None):
        x = as_tensor(x)
        if x.ndim != 2:
            raise ValueError(f"{self!r} expects input (N, {self.input_size}), got {tuple(x.shape)}")
        _, (h, c) = super().forward(x.reshape(x.shape[0], 1, x.shape[1]), state)
        return h, c
