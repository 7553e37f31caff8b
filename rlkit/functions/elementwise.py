"""Elementwise maths and activations: exp, log, sqrt, tanh, sigmoid, relu, abs, clip, maximum, where."""
from rlkit.backend import get_array_module
from rlkit.functions._util import unbroadcast
from rlkit.kernels import relu
from rlkit.tensor import Function


class Exp(Function):
    def forward(self, a):
        self.out = get_array_module(a).exp(a)
        return self.out

    def backward(self, g):
        return (g * self.out,)


class Log(Function):
    def forward(self, a):
        self.a = a
        return get_array_module(a).log(a)

    def backward(self, g):
        return (g / self.a,)


class Sqrt(Function):
    def forward(self, a):
        self.out = get_array_module(a).sqrt(a)
        return self.out

    def backward(self, g):
        return (g / (2 * self.out),)


class Tanh(Function):
    def forward(self, a):
        self.out = get_array_module(a).tanh(a)
        return self.out

    def backward(self, g):
        return (g * (1 - self.out * self.out),)


def stable_sigmoid(xp, a):
    """1 / (1 + exp(-a)) without overflow for large |a|, to full relative precision on both
    sides: exp(a) / (1 + exp(a)) for a < 0. (The tanh form 0.5 (tanh(a / 2) + 1) cancels
    there: 6e-8 for sigmoid(-17) against 4.1e-8, and 0 below -17.3 in float32, which made
    log(sigmoid(-20)) -inf.)"""
    e = xp.exp(-xp.abs(a))
    r = 1 / (1 + e)
    return xp.where(a >= 0, r, e * r)


class Sigmoid(Function):
    def forward(self, a):
        self.out = stable_sigmoid(get_array_module(a), a)
        return self.out

    def backward(self, g):
        return (g * self.out * (1 - self.out),)


class ReLU(Function):
    """max(0, x). One mask serves both passes (the book's forward/backward masks differ at 0);
    each pass is one numba loop on the CPU (rlkit/kernels/relu.py)."""

    def forward(self, a):
        # the mask only when recording (needs_input_grad is set then): a no_grad pass (acting,
        # a target network) skips writing it
        out, self.mask = relu.relu_forward(a, with_mask=bool(self.needs_input_grad))
        return out

    def backward(self, g):
        return (relu.relu_backward(g, self.mask),)


class Abs(Function):
    def forward(self, a):
        self.sign = get_array_module(a).sign(a)
        return abs(a)

    def backward(self, g):
        return (g * self.sign,)


class Clip(Function):
    """Clamp to [low, high] (either may be None); gradient 1 inside (bounds included), else 0."""

    def __init__(self, low=None, high=None):
        self.low, self.high = low, high

    def forward(self, a):
        xp = get_array_module(a)
        inside = xp.ones(a.shape, dtype=bool)
        if self.low is not None:
            inside &= a >= self.low
        if self.high is not None:
            inside &= a <= self.high
        self.inside = inside
        return xp.clip(a, self.low, self.high)

    def backward(self, g):
        return (g * self.inside,)


class Maximum(Function):
    """Elementwise max of two tensors; ties send the gradient to the first."""

    def forward(self, a, b):
        self.shapes = a.shape, b.shape
        self.a_wins = a >= b
        return get_array_module(a).maximum(a, b)

    def backward(self, g):
        return (unbroadcast(g * self.a_wins, self.shapes[0]),
                unbroadcast(g * ~self.a_wins, self.shapes[1]))


class Where(Function):
    """``a`` where ``condition`` else ``b``; ``condition`` is a constant boolean array."""

    def __init__(self, condition):
        self.condition = condition

    def forward(self, a, b):
        self.shapes = a.shape, b.shape
        return get_array_module(a).where(self.condition, a, b)

    def backward(self, g):
        return (unbroadcast(g * self.condition, self.shapes[0]),
                unbroadcast(g * ~self.condition, self.shapes[1]))
