"""Arithmetic with broadcasting: add, sub, mul, div, neg, pow, matmul."""
from rlkit.backend import get_array_module
from rlkit.functions._util import unbroadcast
from rlkit.tensor import Function


class Add(Function):
    def forward(self, a, b):
        self.shapes = a.shape, b.shape
        return a + b

    def backward(self, g):
        return unbroadcast(g, self.shapes[0]), unbroadcast(g, self.shapes[1])


class Sub(Function):
    def forward(self, a, b):
        self.shapes = a.shape, b.shape
        return a - b

    def backward(self, g):
        return unbroadcast(g, self.shapes[0]), unbroadcast(-g, self.shapes[1])


class Mul(Function):
    def forward(self, a, b):
        self.a, self.b = a, b
        return a * b

    def backward(self, g):
        need_a, need_b = self.needs_input_grad
        return (unbroadcast(g * self.b, self.a.shape) if need_a else None,
                unbroadcast(g * self.a, self.b.shape) if need_b else None)


class Div(Function):
    def forward(self, a, b):
        self.a, self.b = a, b
        return a / b

    def backward(self, g):
        need_a, need_b = self.needs_input_grad
        ga = unbroadcast(g / self.b, self.a.shape) if need_a else None
        gb = unbroadcast(-g * self.a / (self.b * self.b), self.b.shape) if need_b else None
        return ga, gb


class Neg(Function):
    def forward(self, a):
        return -a

    def backward(self, g):
        return (-g,)


class Pow(Function):
    """``a ** exponent`` for a constant (Python number) exponent."""

    def __init__(self, exponent):
        self.exponent = exponent

    def forward(self, a):
        self.a = a
        return a ** self.exponent

    def backward(self, g):
        p = self.exponent
        if p == 0:  # a constant: without this, 0 ** -1 = inf times 0 gives NaN at a = 0
            return (get_array_module(g).zeros_like(g),)
        return (g * p * self.a ** (p - 1),)


class MatMul(Function):
    """``a @ b`` for 1-D, 2-D and batched (broadcast) operands."""

    def forward(self, a, b):
        self.a, self.b = a, b
        return a @ b

    def backward(self, g):
        xp = get_array_module(g)
        a, b = self.a, self.b
        a2 = a[None, :] if a.ndim == 1 else a      # promote vectors as NumPy does
        b2 = b[:, None] if b.ndim == 1 else b
        # the output gradient in the promoted shapes' product (a dot product's is 0-d: (1, 1))
        if b.ndim == 1:
            g = xp.expand_dims(g, -1)
        if a.ndim == 1:
            g = xp.expand_dims(g, -2)
        need_a, need_b = self.needs_input_grad
        ga = gb = None
        if need_a:
            ga = unbroadcast(g @ xp.swapaxes(b2, -1, -2), a2.shape).reshape(a.shape)
        if need_b:
            gb = unbroadcast(xp.swapaxes(a2, -1, -2) @ g, b2.shape).reshape(b.shape)
        return ga, gb


class Cast(Function):
    def __init__(self, dtype):
        self.dtype = dtype

    def forward(self, a):
        self.source_dtype = a.dtype
        return a.astype(self.dtype)

    def backward(self, g):
        return (g.astype(self.source_dtype),)
