"""Shape and indexing ops: reshape, transpose, getitem, gather, concat, stack."""
from rlkit.backend import get_array_module
from rlkit.functions._util import scatter_add
from rlkit.tensor import Function


class Reshape(Function):
    def __init__(self, shape):
        self.shape = shape

    def forward(self, a):
        self.source_shape = a.shape
        return a.reshape(self.shape)

    def backward(self, g):
        return (g.reshape(self.source_shape),)


class Transpose(Function):
    """Permute axes (``axes=None`` reverses them, like ndarray.T)."""

    def __init__(self, axes=None):
        self.axes = axes

    def forward(self, a):
        self.axes = tuple(reversed(range(a.ndim))) if self.axes is None else self.axes
        return a.transpose(self.axes)

    def backward(self, g):
        inverse = [0] * len(self.axes)
        for position, axis in enumerate(self.axes):
            inverse[axis] = position
        return (g.transpose(inverse),)


def _has_array_index(index) -> bool:
    parts = index if isinstance(index, tuple) else (index,)
    return any(hasattr(p, "shape") or isinstance(p, list) for p in parts)


class GetItem(Function):
    """``a[index]``: slices, integers, and integer/boolean arrays (repeats accumulate)."""

    def __init__(self, index):
        self.index = index

    def forward(self, a):
        self.source = a.shape, a.dtype
        return a[self.index]

    def backward(self, g):
        xp = get_array_module(g)
        shape, dtype = self.source
        full = xp.zeros(shape, dtype=g.dtype)
        if _has_array_index(self.index):
            scatter_add(xp, full, self.index, g)
        else:
            full[self.index] = g  # basic indexing never selects an element twice
        return (full,)


class Gather(Function):
    """torch.gather: ``out[..., j, ...] = a[..., index[..., j, ...], ...]`` along ``axis``."""

    def __init__(self, axis, index):
        self.axis, self.index = axis, index

    def forward(self, a):
        xp = get_array_module(a)
        self.index = xp.asarray(self.index)
        if self.index.ndim != a.ndim:
            raise ValueError(f"gather: index must have as many dimensions as the input "
                             f"({a.ndim}), got shape {self.index.shape}")
        self.source_shape = a.shape
        return xp.take_along_axis(a, self.index, axis=self.axis)

    def backward(self, g):
        xp = get_array_module(g)
        full = xp.zeros(self.source_shape, dtype=g.dtype)
        # full index grids, so repeated indices accumulate instead of overwriting
        ndim = self.index.ndim
        grids = [xp.arange(n).reshape((1,) * i + (n,) + (1,) * (ndim - i - 1))
                 for i, n in enumerate(self.index.shape)]
        grids[self.axis % ndim] = self.index
        scatter_add(xp, full, tuple(grids), g)
        return (full,)


class Concat(Function):
    def __init__(self, axis=0):
        self.axis = axis

    def forward(self, *arrays):
        xp = get_array_module(arrays[0])
        self.sizes = [a.shape[self.axis] for a in arrays]
        return xp.concatenate(arrays, axis=self.axis)

    def backward(self, g):
        xp = get_array_module(g)
        bounds = [sum(self.sizes[:i + 1]) for i in range(len(self.sizes) - 1)]
        return tuple(xp.split(g, bounds, axis=self.axis))


class Stack(Function):
    def __init__(self, axis=0):
        self.axis = axis

    def forward(self, *arrays):
        return get_array_module(arrays[0]).stack(arrays, axis=self.axis)

    def backward(self, g):
        xp = get_array_module(g)
        return tuple(xp.squeeze(part, axis=self.axis)
                     for part in xp.split(g, g.shape[self.axis], axis=self.axis))
