"""Reductions over axes: sum, mean, max (keepdims supported)."""
from rlkit.backend import get_array_module
from rlkit.functions._util import element_count, mean, normalize_axes
from rlkit.tensor import Function


def _expand_reduced(g, shape, axes, keepdims):
    """Reshape a reduced gradient so it broadcasts against the input of ``shape``."""
    if keepdims:
        return g
    return g.reshape(tuple(1 if i in axes else n for i, n in enumerate(shape)))


class Sum(Function):
    def __init__(self, axis=None, keepdims=False):
        self.axis, self.keepdims = axis, keepdims

    def forward(self, a):
        self.shape = a.shape
        return a.sum(axis=self.axis, keepdims=self.keepdims)

    def backward(self, g):
        axes = normalize_axes(self.axis, len(self.shape))
        g = _expand_reduced(g, self.shape, axes, self.keepdims)
        return (get_array_module(g).broadcast_to(g, self.shape),)


class Mean(Sum):
    """The sum's gradient, shared equally by the elements each output averaged."""

    def forward(self, a):
        self.shape = a.shape
        return mean(a, self.axis, self.keepdims)

    def backward(self, g):
        return super().backward(g / element_count(self.shape, self.axis))


class Max(Function):
    """Maximum over axes; the gradient goes to one element per slice: the first maximum."""

    def __init__(self, axis=None, keepdims=False):
        self.axis, self.keepdims = axis, keepdims

    def forward(self, a):
        xp = get_array_module(a)
        axes = normalize_axes(self.axis, a.ndim)
        kept = tuple(i for i in range(a.ndim) if i not in axes)
        # bring the reduced axes last and flatten them, so one argmax picks one winner per slice
        moved = a.transpose(kept + axes)
        flat = moved.reshape(moved.shape[:len(kept)] + (-1,))
        winner = flat.argmax(axis=-1)[..., None]
        self.geometry = a.shape, axes, kept, moved.shape, flat.shape, winner
        out = xp.take_along_axis(flat, winner, axis=-1)[..., 0]
        return _expand_reduced(out, a.shape, axes, False) if self.keepdims else out

    def backward(self, g):
        xp = get_array_module(g)
        shape, axes, kept, moved_shape, flat_shape, winner = self.geometry
        g = g.reshape(flat_shape[:-1] + (1,))
        flat = xp.zeros(flat_shape, dtype=g.dtype)
        xp.put_along_axis(flat, winner, g, axis=-1)
        inverse = [0] * len(shape)
        for position, axis in enumerate(kept + axes):
            inverse[axis] = position
        return (flat.reshape(moved_shape).transpose(inverse),)
