"""Tensor and reverse-mode automatic differentiation.

A :class:`Tensor` wraps one NumPy or CuPy array. Every differentiable op is a
:class:`Function` subclass that owns its math both ways: ``forward`` maps raw arrays to raw
arrays, ``backward`` maps the gradient of each output to the gradient of each input. When
gradients are being recorded, a Function instance remembers its inputs, which makes the graph;
``Tensor.backward`` walks it once in reverse topological order and accumulates into ``.grad``
of the leaves (tensors created by the user with ``requires_grad=True``).
"""
from __future__ import annotations

import contextlib
import threading

import numpy as np

from rlkit.backend import device_of, get_array_module, to_device, to_numpy
from rlkit.memory import keep_freed_memory
from rlkit.threads import quiet_blas_workers

# large arrays reuse freed heap memory instead of page-faulting fresh mmaps: a change to malloc
# for the whole process that loads the engine (rlkit/memory.py)
keep_freed_memory()
# OpenBLAS's idle workers stop spinning soon enough for the engine's own kernels to take the
# other cores (rlkit/threads.py)
quiet_blas_workers()


class _GradMode(threading.local):
    """Whether ops record the graph, per thread: a no_grad forward on one thread (DQN's
    targets) must not stop the graph that another thread is recording at the same time."""

    enabled = True


_grad_mode = _GradMode()


class no_grad(contextlib.ContextDecorator):
    """Context manager (and decorator) that stops recording the graph on this thread: for
    acting and targets."""

    def __enter__(self):
        self._previous, _grad_mode.enabled = _grad_mode.enabled, False
        return self

    def __exit__(self, *exc):
        _grad_mode.enabled = self._previous
        return False

    def _recreate_cm(self):
        # a decorated function gets a fresh instance per call: one shared instance would keep
        # one _previous for nested (recursive) or concurrent calls, and leave recording off
        return type(self)()


def is_grad_enabled() -> bool:
    """Whether ops on this thread are currently recording the graph."""
    return _grad_mode.enabled


class Function:
    """One differentiable op.

    Subclasses take their non-tensor parameters (axis, stride, ...) in ``__init__`` and implement
    ``forward(*arrays) -> array`` (or a tuple of arrays when ``n_outputs > 1``) and
    ``backward(*output_grads) -> tuple`` with one gradient (or None) per input. In ``forward``,
    ``self.needs_input_grad`` tells which input gradients will be asked for, so work for the
    others can be skipped. Calling the instance on Tensors runs it and records the graph.
    """

    n_outputs = 1
    inputs: tuple | None = None
    needs_input_grad: tuple = ()
    # set by Tensor.backward before it calls backward(): True when the graph is kept
    # (retain_graph) and may be walked again, so a backward that overwrites what its forward
    # saved (to spare memory) must work on a copy
    graph_retained = False

    def forward(self, *arrays):
        raise NotImplementedError

    def backward(self, *grads):
        raise NotImplementedError

    def __call__(self, *inputs: "Tensor"):
        # plain loops: this runs for every op, and generator expressions cost more here
        record = False
        if _grad_mode.enabled:
            for t in inputs:
                if t.requires_grad:
                    record = True
                    break
        if record:
            self.needs_input_grad = tuple([t.requires_grad for t in inputs])
        raw = self.forward(*[t.data for t in inputs])
        if self.n_outputs == 1:
            out = Tensor._wrap(raw, record)
            if record:
                self.inputs = inputs
                out._creator = self
            return out
        outs = tuple(Tensor._wrap(r, record) for r in raw)
        if record:
            self.inputs = inputs
            self.output_templates = tuple((r.shape, r.dtype) for r in raw)
            for index, out in enumerate(outs):
                out._creator, out._index = self, index
        return outs

    def gradient_buffer(self, index: int, dtype):
        """Where ``backward`` may write input ``index``'s gradient itself, or None: that input's
        ``.grad`` array while it holds zeros not yet written (a parameter after its optimiser's
        ``zero_grad``, ``Tensor._zero_grad_into``), if it is of ``dtype`` and the input appears
        once among this op's inputs. A backward that writes it returns that same array as the
        gradient, and the engine copies nothing (a fully connected weight's gradient: 6.4 MB
        for the Nature CNN's)."""
        tensor = self.inputs[index] if self.inputs else None
        if tensor is None or not tensor._grad_stale or tensor._grad.dtype != dtype:
            return None
        if sum(t is tensor for t in self.inputs) > 1:  # its other gradient would overwrite it
            return None
        return tensor._grad

    @classmethod
    def apply(cls, *inputs: "Tensor", **params):
        """Build the op with ``params`` and run it on ``inputs`` (Tensors)."""
        return cls(**params)(*inputs)


def as_tensor(value, like: "Tensor | None" = None) -> "Tensor":
    """Return ``value`` as a Tensor; a Python number takes ``like``'s dtype and device."""
    if isinstance(value, Tensor):
        return value
    if like is not None and not hasattr(value, "shape"):
        xp = get_array_module(like.data)
        return Tensor._wrap(xp.asarray(value, dtype=like.data.dtype), False)
    return Tensor(value)


class Tensor:
    """An n-dimensional array with an optional gradient.

    ``Tensor(data, requires_grad=False, dtype=None)``: ``data`` is a NumPy/CuPy array (kept
    as is, dtype included, unless ``dtype`` is given), another Tensor, or Python numbers/lists
    (which become float32 when they are floating point). ``.grad`` has the shape and array type
    of ``.data`` once ``backward`` has reached this tensor.
    """

    __slots__ = ("data", "_grad", "_grad_stale", "requires_grad", "_creator", "_index",
                 "__weakref__")
    __array_priority__ = 1000  # ndarray (op) Tensor defers to Tensor's reflected operator

    def __init__(self, data, requires_grad: bool = False, dtype=None):
        if isinstance(data, Tensor):
            data = data.data
        xp = get_array_module(data)
        if dtype is not None:
            data = xp.asarray(data, dtype=dtype)
        elif not hasattr(data, "dtype") or not hasattr(data, "shape"):
            data = np.asarray(data)
            if data.dtype == np.float64:
                data = data.astype(np.float32)  # Python floats: the engine's default precision
        if requires_grad and data.dtype.kind != "f":
            raise TypeError(f"only floating point tensors can require gradients, got {data.dtype}")
        self.data = data
        self._grad, self._grad_stale = None, False
        self.requires_grad = bool(requires_grad)
        self._creator = None
        self._index = 0

    @classmethod
    def _wrap(cls, data, requires_grad: bool) -> "Tensor":
        """Fast constructor for op outputs (no conversion or checks)."""
        t = object.__new__(cls)
        t.data, t._grad, t._grad_stale, t.requires_grad, t._creator, t._index = (
            data, None, False, requires_grad, None, 0)
        return t

    # ----------------------------------------------------------------- gradient
    @property
    def grad(self):
        """The gradient accumulated by ``backward`` (an array of ``data``'s shape), or None."""
        if self._grad_stale:
            self._grad.fill(0)
            self._grad_stale = False
        return self._grad

    @grad.setter
    def grad(self, value) -> None:
        self._grad, self._grad_stale = value, False

    def _zero_grad_into(self, buffer) -> None:
        """Make ``buffer`` (of ``data``'s shape) the gradient, as zeros, without writing them
        yet: the next backward overwrites it with the first gradient it brings, where a fill
        and an add would take two passes (an optimiser's flat gradient buffer, rlkit/optim.py);
        reading ``grad`` before that writes the zeros."""
        self._grad, self._grad_stale = buffer, True

    # ----------------------------------------------------------------- properties
    @property
    def shape(self) -> tuple:
        return self.data.shape

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def size(self) -> int:
        return self.data.size

    @property
    def device(self) -> str:
        return device_of(self.data)

    @property
    def is_leaf(self) -> bool:
        return self._creator is None

    def __len__(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        grad = ", requires_grad=True" if self.requires_grad else ""
        return f"Tensor({to_numpy(self.data)!r}{grad})"

    # ----------------------------------------------------------------- conversion
    def numpy(self) -> np.ndarray:
        """A host NumPy array of the data (a copy when the tensor lives on the GPU)."""
        return to_numpy(self.data)

    def item(self) -> float:
        """The single value of a one-element tensor as a Python number."""
        return self.data.item()

    def detach(self) -> "Tensor":
        """A tensor sharing the data but cut from the graph (never requires grad)."""
        return Tensor._wrap(self.data, False)

    def to(self, device: str) -> "Tensor":
        """A copy on ``device`` ("cpu" or "cuda"); a leaf keeps requires_grad."""
        return Tensor(to_device(self.data, device), requires_grad=self.requires_grad and self.is_leaf)

    def astype(self, dtype) -> "Tensor":
        """A differentiable cast to ``dtype``."""
        return F.Cast.apply(self, dtype=dtype)

    # ----------------------------------------------------------------- autograd
    def backward(self, grad=None, retain_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) into ``leaf.grad`` for every leaf that requires grad.

        ``grad`` defaults to 1 for a one-element tensor (a loss). The graph is freed afterwards
        unless ``retain_graph`` is True.
        """
        if not self.requires_grad:
            raise RuntimeError("backward() on a tensor that does not require grad "
                               "(no input requires grad, or it was computed under no_grad)")
        xp = get_array_module(self.data)
        if grad is None:
            if self.data.size != 1:
                raise RuntimeError(f"backward() without a gradient needs a one-element tensor, "
                                   f"got shape {self.shape}")
            grad = xp.ones_like(self.data)
        elif isinstance(grad, Tensor):
            grad = grad.data
        if self._creator is None:
            _accumulate_leaf(self, grad)
            return
        grads = {(id(self._creator), self._index): grad}
        for fn in reversed(_topological_order(self._creator)):
            if fn.inputs is None:
                raise RuntimeError("backward() through a graph that was already freed; "
                                   "pass retain_graph=True to the first backward()")
            out_grads = [grads.pop((id(fn), i), None) for i in range(fn.n_outputs)]
            fn.graph_retained = retain_graph
            if fn.n_outputs == 1:
                in_grads = fn.backward(out_grads[0])
            else:
                out_grads = [g if g is not None else xp.zeros(shape, dtype)
                             for g, (shape, dtype) in zip(out_grads, fn.output_templates)]
                in_grads = fn.backward(*out_grads)
            for tensor, g, needed in zip(fn.inputs, in_grads, fn.needs_input_grad):
                if not needed or g is None:
                    continue
                if tensor._creator is None:
                    _accumulate_leaf(tensor, g)
                else:
                    key = (id(tensor._creator), tensor._index)
                    previous = grads.get(key)
                    grads[key] = g if previous is None else previous + g
            if not retain_graph:
                fn.inputs = None

    # ----------------------------------------------------------------- operators
    def __add__(self, other): return F.Add.apply(self, as_tensor(other, self))
    def __radd__(self, other): return F.Add.apply(as_tensor(other, self), self)
    def __sub__(self, other): return F.Sub.apply(self, as_tensor(other, self))
    def __rsub__(self, other): return F.Sub.apply(as_tensor(other, self), self)
    def __mul__(self, other): return F.Mul.apply(self, as_tensor(other, self))
    def __rmul__(self, other): return F.Mul.apply(as_tensor(other, self), self)
    def __truediv__(self, other): return F.Div.apply(self, as_tensor(other, self))
    def __rtruediv__(self, other): return F.Div.apply(as_tensor(other, self), self)
    def __neg__(self): return F.Neg.apply(self)
    def __pow__(self, exponent): return F.Pow.apply(self, exponent=exponent)
    def __matmul__(self, other): return F.MatMul.apply(self, as_tensor(other, self))
    def __rmatmul__(self, other): return F.MatMul.apply(as_tensor(other, self), self)
    def __getitem__(self, index): return F.GetItem.apply(self, index=_unwrap_index(index))

    # comparisons give plain boolean arrays: they have no gradient
    def __gt__(self, other): return self.data > _data(other)
    def __ge__(self, other): return self.data >= _data(other)
    def __lt__(self, other): return self.data < _data(other)
    def __le__(self, other): return self.data <= _data(other)

    # ----------------------------------------------------------------- elementwise
    def exp(self): return F.Exp.apply(self)
    def log(self): return F.Log.apply(self)
    def sqrt(self): return F.Sqrt.apply(self)
    def tanh(self): return F.Tanh.apply(self)
    def sigmoid(self): return F.Sigmoid.apply(self)
    def relu(self): return F.ReLU.apply(self)
    def abs(self): return F.Abs.apply(self)

    def clip(self, min=None, max=None):
        """Values limited to [min, max]; the gradient passes only where x was inside."""
        return F.Clip.apply(self, low=min, high=max)

    def softmax(self, axis: int = -1): return F.Softmax.apply(self, axis=axis)
    def log_softmax(self, axis: int = -1): return F.LogSoftmax.apply(self, axis=axis)

    # ----------------------------------------------------------------- reductions
    def sum(self, axis=None, keepdims: bool = False):
        return F.Sum.apply(self, axis=axis, keepdims=keepdims)

    def mean(self, axis=None, keepdims: bool = False):
        return F.Mean.apply(self, axis=axis, keepdims=keepdims)

    def max(self, axis=None, keepdims: bool = False):
        """Maximum over ``axis``; the gradient goes to the first maximum of each slice."""
        return F.Max.apply(self, axis=axis, keepdims=keepdims)

    def argmax(self, axis=None):
        """Index of the first maximum (a plain array, no gradient)."""
        return self.data.argmax(axis=axis)

    # ----------------------------------------------------------------- shape
    def reshape(self, *shape):
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return F.Reshape.apply(self, shape=shape)

    def view(self, *shape):
        return self.reshape(*shape)

    def transpose(self, *axes):
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        return F.Transpose.apply(self, axes=axes or None)

    @property
    def T(self):
        return self.transpose()

    def flatten(self, start_dim: int = 0):
        """Merge dimensions ``start_dim..`` into one (``start_dim=1`` keeps the batch)."""
        return self.reshape(*self.shape[:start_dim], -1)

    def gather(self, dim: int, index):
        """``out[i][j] = self[i][index[i][j]]`` along ``dim`` (torch.gather), e.g. Q(s, a)."""
        return F.Gather.apply(self, axis=dim, index=_data(index))


def _data(value):
    return value.data if isinstance(value, Tensor) else value


def _unwrap_index(index):
    if isinstance(index, tuple):
        return tuple(_data(i) for i in index)
    return _data(index)


def _accumulate_leaf(tensor: Tensor, grad) -> None:
    if tensor._grad_stale:  # zeros not written yet (Tensor._zero_grad_into): overwrite them,
        if grad is not tensor._grad:  # unless the op wrote there (Function.gradient_buffer)
            tensor._grad[...] = grad
        tensor._grad_stale = False
    elif tensor._grad is None:
        # an op may hand the same array to several inputs: own a copy before adding into it
        # (in the gradient's memory layout: a convolution's weight gradient is (KH, KW, C, O)
        # in memory, as the weight is)
        tensor._grad = grad.copy(order="K")
    else:
        tensor._grad += grad


def _topological_order(root: Function) -> list:
    """Functions reachable from ``root``, each after every function that feeds it.

    Iterative depth-first post-order (no recursion limit on long graphs). A function is marked
    when it is expanded, not when it is pushed: marking at push time could emit a function
    before one of its own inputs' creators when two paths reach it.
    """
    order, expanded, stack = [], set(), [(root, False)]
    while stack:
        fn, done = stack.pop()
        if done:
            order.append(fn)
            continue
        if id(fn) in expanded:
            continue
        expanded.add(id(fn))
        stack.append((fn, True))
        for tensor in fn.inputs or ():
            parent = tensor._creator
            if parent is not None and id(parent) not in expanded:
                stack.append((parent, False))
    return order


# ----------------------------------------------------------------- free functions
def cat(tensors, axis: int = 0) -> Tensor:
    """Concatenate tensors along an existing ``axis``."""
    return F.Concat.apply(*[as_tensor(t) for t in tensors], axis=axis)


def stack(tensors, axis: int = 0) -> Tensor:
    """Stack same-shaped tensors along a new ``axis``."""
    return F.Stack.apply(*[as_tensor(t) for t in tensors], axis=axis)


def maximum(a, b) -> Tensor:
    """Elementwise maximum; where a == b the gradient goes to ``a``."""
    a = as_tensor(a, b if isinstance(b, Tensor) else None)
    return F.Maximum.apply(a, as_tensor(b, a))


def where(condition, a, b) -> Tensor:
    """``a`` where ``condition`` (a boolean array, no gradient) holds, else ``b``."""
    a = as_tensor(a, b if isinstance(b, Tensor) else None)
    return F.Where.apply(a, as_tensor(b, a), condition=_data(condition))


def zeros(*shape, dtype=np.float32, requires_grad: bool = False) -> Tensor:
    return Tensor(np.zeros(shape, dtype), requires_grad=requires_grad)


def ones(*shape, dtype=np.float32, requires_grad: bool = False) -> Tensor:
    return Tensor(np.ones(shape, dtype), requires_grad=requires_grad)


from rlkit import functions as F  # noqa: E402  (the op implementations need Tensor defined first)
