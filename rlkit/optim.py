"""Optimisers (SGD, RMSProp, Adam), gradient clipping and learning-rate schedules.

Each optimiser gathers its parameters into one contiguous buffer (the parameters' ``.data``
become views into it, and so do their ``.grad``), so an update is a handful of vector
operations however many layers the network has. The update formulas are PyTorch's, so the
same hyper-parameters mean the same thing. One difference: state that decays below the
smallest normal value of its dtype (the moments of a weight whose gradient stays 0) is stored
as 0 rather than as a subnormal float, which Intel CPUs compute on many times slower (see
``_flush_subnormal``).
"""
from __future__ import annotations

import functools
import math

import numba
import numpy as np

from rlkit import threads
from rlkit.backend import get_array_module, memory_axes, to_device, to_numpy
from rlkit.checks import check, number


class Optimizer:
    """Base class: owns the flat parameter/gradient buffers; subclasses implement ``_update``."""

    def __init__(self, params, lr: float):
        self.params = list(params)
        if not self.params:
            raise ValueError(f"{type(self).__name__} got an empty parameter list")
        if len({id(p) for p in self.params}) != len(self.params):
            raise ValueError(f"{type(self).__name__}: a parameter appears twice in the list")
        dtypes = {p.data.dtype for p in self.params}
        if len(dtypes) != 1:
            raise ValueError(f"{type(self).__name__}: parameters have mixed dtypes {dtypes}")
        if lr < 0:
            raise ValueError(f"learning rate must be >= 0, got {lr}")
        self.lr = lr
        self.steps = 0
        xp = get_array_module(self.params[0].data)
        self._offsets = np.cumsum([0] + [p.data.size for p in self.params])
        # each parameter keeps its memory layout inside the buffer (a convolution's weight is
        # stored (KH, KW, C, O), the layout its GEMM reads: rlkit/nn/layers.py)
        self._axes = [memory_axes(p.data) or tuple(range(p.data.ndim)) for p in self.params]
        self.flat = xp.concatenate([self._in_memory_order(p.data, i) for i, p in enumerate(self.params)])
        # gradients already computed before the optimiser was built are kept
        self.flat_grad = xp.concatenate([self._in_memory_order(p.grad, i) if p.grad is not None
                                         else xp.zeros(p.data.size, p.data.dtype)
                                         for i, p in enumerate(self.params)])
        self._data_views = [self._view(self.flat, i) for i in range(len(self.params))]
        self._grad_views = [self._view(self.flat_grad, i) for i in range(len(self.params))]
        for p, data, grad in zip(self.params, self._data_views, self._grad_views):
            p.data, p.grad = data, grad

    def _in_memory_order(self, array, i):
        """Parameter ``i``'s ``array`` (its data or gradient) as 1-D, in the data's memory order."""
        return array.transpose(self._axes[i]).ravel()

    def _view(self, buffer, i):
        """Parameter ``i``'s slice of ``buffer``, of the parameter's shape and memory layout."""
        axes = self._axes[i]
        shape = self.params[i].data.shape
        stored = buffer[self._offsets[i]:self._offsets[i + 1]].reshape([shape[a] for a in axes])
        return stored.transpose(tuple(int(a) for a in np.argsort(axes)))

    def to_parameter_order(self, buffer) -> np.ndarray:
        """A host copy of ``buffer`` (the flat parameters, gradients or an optimiser slot) with
        each parameter's values in the C order of its shape, one parameter after another: the
        layout checkpoints keep, whatever layout the parameters have in memory."""
        xp = get_array_module(buffer)
        return to_numpy(xp.concatenate([self._view(buffer, i).ravel() for i in range(len(self.params))]))

    def load_parameter_order(self, buffer, values) -> None:
        """Write ``values`` (laid out as :meth:`to_parameter_order` gives) into ``buffer``."""
        if np.shape(values) != buffer.shape:
            raise ValueError(f"{type(self).__name__}: {np.shape(values)} values for a buffer of "
                             f"shape {buffer.shape}")
        values = to_device(np.asarray(values), _device(buffer))
        for i, p in enumerate(self.params):
            part = values[self._offsets[i]:self._offsets[i + 1]]
            self._view(buffer, i)[...] = part.reshape(p.data.shape)

    def sync(self) -> None:
        """Re-attach parameters whose data or grad was replaced outside the optimiser, and write
        zeros for those without a gradient: afterwards ``flat`` and ``flat_grad`` hold what the
        parameters hold (step and clipping call it; read ``flat_grad`` only after it)."""
        for p, data, grad in zip(self.params, self._data_views, self._grad_views):
            if p.data is not data:
                data[...] = p.data
                p.data = data
            if p.grad is not grad:
                if p.grad is None:
                    grad.fill(0)
                else:
                    grad[...] = p.grad
                p.grad = grad

    def zero_grad(self) -> None:
        """Set every gradient to zero: each ``.grad`` a view of the flat buffer again, its zeros
        written only if it is read before the next backward overwrites it
        (``Tensor._zero_grad_into``): a fill and an add were two passes over the buffer."""
        for p, grad in zip(self.params, self._grad_views):
            p._zero_grad_into(grad)

    def clip_grad_norm(self, max_norm: float) -> float:
        """:func:`clip_grad_norm_` over this optimiser's parameters, on the flat buffer: one dot
        product and one scale instead of a pass per parameter. Returns the norm before clipping."""
        self.sync()
        xp = get_array_module(self.flat_grad)
        total = math.sqrt(float(xp.dot(self.flat_grad, self.flat_grad)))
        if total > max_norm:
            self.flat_grad *= max_norm / (total + 1e-6)
        return total

    def step(self) -> None:
        """Apply one update from the current gradients."""
        self.sync()
        self.steps += 1
        self._update(self.flat, self.flat_grad)

    def _update(self, param, grad) -> None:
        raise NotImplementedError

    # ------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict:
        """Hyper-parameters and slot buffers as host NumPy arrays (savable to .npz)."""
        state = {"lr": np.asarray(self.lr), "steps": np.asarray(self.steps)}
        for name in self._slots:
            state[name] = self.to_parameter_order(getattr(self, name))
        return state

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict` output; slot shapes must match this optimiser's buffer."""
        for name in self._slots:
            if np.shape(state[name]) != self.flat.shape:
                raise ValueError(f"{type(self).__name__} state '{name}' has shape "
                                 f"{np.shape(state[name])}, expected {self.flat.shape}")
            self.load_parameter_order(getattr(self, name), state[name])
        self.lr = float(state["lr"])
        self.steps = int(state["steps"])

    _slots: tuple = ()


def _device(array) -> str:
    return "cpu" if get_array_module(array) is np else "cuda"


class SGD(Optimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum and L2 weight decay.

    g <- g + weight_decay * p;  v <- momentum * v + g;
    p <- p - lr * (g + momentum * v) with Nesterov, else p <- p - lr * v.
    """

    def __init__(self, params, lr: float = 0.01, momentum: float = 0.0, nesterov: bool = False,
                 weight_decay: float = 0.0):
        super().__init__(params, lr)
        check("momentum", momentum, number(0))
        check("weight_decay", weight_decay, number(0))
        if nesterov and momentum <= 0:
            raise ValueError("Nesterov momentum needs momentum > 0")
        self.momentum, self.nesterov, self.weight_decay = momentum, nesterov, weight_decay
        if momentum:
            self.velocity = get_array_module(self.flat).zeros_like(self.flat)
            self._slots = ("velocity",)

    def _update(self, param, grad):
        if self.weight_decay:
            grad = grad + self.weight_decay * param
        if self.momentum:
            self.velocity *= self.momentum
            self.velocity += grad
            grad = grad + self.momentum * self.velocity if self.nesterov else self.velocity
        param -= self.lr * grad
        if self.momentum:
            _flush_subnormal(self.velocity)


class RMSProp(Optimizer):
    """RMSProp: s <- alpha * s + (1 - alpha) * g^2;  p <- p - lr * g / (sqrt(s) + eps).

    ``alpha`` is the decay rate (the book's Pong source uses 0.99).
    """

    _slots = ("square_avg",)

    def __init__(self, params, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0):
        super().__init__(params, lr)
        check("alpha", alpha, number(0, 1, high_open=True))
        check("eps", eps, number(0))
        check("weight_decay", weight_decay, number(0))
        self.alpha, self.eps, self.weight_decay = alpha, eps, weight_decay
        self.square_avg = get_array_module(self.flat).zeros_like(self.flat)

    def _update(self, param, grad):
        xp = get_array_module(param)
        if self.weight_decay:
            grad = grad + self.weight_decay * param
        if xp is np:
            scalar = param.dtype.type
            _on_threads(_rmsprop_numba, (param, grad, self.square_avg), scalar(self.alpha),
                        scalar(1 - self.alpha), scalar(self.lr), scalar(self.eps),
                        scalar(np.finfo(param.dtype).tiny))
            return
        self.square_avg *= self.alpha
        self.square_avg += (1 - self.alpha) * grad * grad
        param -= self.lr * grad / (xp.sqrt(self.square_avg) + self.eps)
        _flush_subnormal(self.square_avg)


class Adam(Optimizer):
    """Adam (Kingma & Ba) with bias correction and optional L2 weight decay (added to g)."""

    _slots = ("exp_avg", "exp_avg_sq")

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0):
        super().__init__(params, lr)
        self.beta1, self.beta2 = betas
        for i, beta in enumerate(betas):
            check(f"betas[{i}]", beta, number(0, 1, high_open=True))
        check("eps", eps, number(0))
        check("weight_decay", weight_decay, number(0))
        self.eps, self.weight_decay = eps, weight_decay
        xp = get_array_module(self.flat)
        self.exp_avg = xp.zeros_like(self.flat)
        self.exp_avg_sq = xp.zeros_like(self.flat)

    def _update(self, param, grad):
        xp = get_array_module(param)
        if self.weight_decay:
            grad = grad + self.weight_decay * param
        step_size = self.lr / (1 - self.beta1 ** self.steps)
        inv_bias2 = 1.0 / math.sqrt(1 - self.beta2 ** self.steps)
        if xp is np:
            scalar = param.dtype.type  # constants of the parameters' dtype keep the loop in it
            _on_threads(_adam_numba, (param, grad, self.exp_avg, self.exp_avg_sq),
                        scalar(self.beta1), scalar(1 - self.beta1), scalar(self.beta2),
                        scalar(1 - self.beta2), scalar(step_size), scalar(inv_bias2),
                        scalar(self.eps), scalar(np.finfo(param.dtype).tiny))
            return
        b1, b2, m, v = self.beta1, self.beta2, self.exp_avg, self.exp_avg_sq
        m *= b1
        m += (1 - b1) * grad
        v *= b2
        v += (1 - b2) * grad * grad
        param -= step_size * m / (xp.sqrt(v) * inv_bias2 + self.eps)
        _flush_subnormal(m)
        _flush_subnormal(v)


# Subnormal state. A moment whose gradient stays 0 (the weights of a unit that never fires)
# decays geometrically towards 0 and ends a subnormal float for good: near the bottom of that
# range b * x rounds back to x (float32 Adam: v stops at 7e-43 for beta2 = 0.999, m at 6e-45
# for beta1 = 0.9; an ad hoc 200,000-step check). On Intel CPUs every operation on a
# subnormal takes a microcode assist: Adam over the Nature CNN's 1.7 M parameters took 30 ms
# with a tenth of its moments subnormal and 50 ms with half, against 1.7 ms with none (2-core
# Xeon, ad hoc), and an MLP step trained on one batch spent 37 of its 170 us in Adam where 4.6
# would do. So a moment that falls below the smallest normal value of its dtype
# (``finfo.tiny``) is stored as 0: each value pays the assist at most once. The step that
# makes it is taken from the exact value. Later steps change by no more than the first
# moment's lost value over eps (about lr * 1e-30 for eps = 1e-8) and a relative sqrt(tiny) /
# eps in the denominator (1e-11). PyTorch keeps subnormals unless told
# ``torch.set_flush_denormal(True)``, which changes the whole process.
def _flush_subnormal(buffer) -> None:
    """Store the values of ``buffer`` whose magnitude is below the smallest normal value of its
    dtype as 0, in place (the array-op form of the kernels' flush; NumPy or CuPy)."""
    xp = get_array_module(buffer)
    buffer *= xp.abs(buffer) >= np.finfo(buffer.dtype).tiny  # NumPy's finfo: CuPy's dtypes are NumPy's


# values of the flat buffers below which a part is not worth a thread of its own (rlkit/threads.py):
# Adam passes over about a million float32 values a millisecond, a hand-off costs tens of us
MIN_VALUES_PER_THREAD = 2**16


def _on_threads(kernel, arrays, *constants) -> None:
    """``kernel(*arrays, *constants)`` over parts of the flat ``arrays`` (all of one length),
    on the engine's threads: the update of each value depends on that value alone."""
    parts = threads.split(arrays[0].size, MIN_VALUES_PER_THREAD)
    if len(parts) == 1:  # a small network's buffers: no hand-off to build (4 of an MLP's 10 us)
        kernel(*arrays, *constants)
        return
    threads.run(functools.partial(kernel, *(array[part] for array in arrays), *constants)
                for part in parts)


# error_model="numpy": no Python ZeroDivisionError check per element, which lets the loops
# vectorise (6.4 ms -> 1.5 ms for the 1.7M-parameter Nature CNN). Every constant comes in as a
# scalar of the parameters' dtype, 1 - beta included: a Python int in the loop (``1 - b1``)
# made numba compute in float64 and halved the vector width (Adam on 1.4M float32 parameters,
# 2-core Xeon: 2.68 -> 1.02 ms, now the same float32 arithmetic as NumPy's and PyTorch's).
@numba.njit(cache=True, nogil=True, boundscheck=False, error_model="numpy")
def _adam_numba(param, grad, m, v, b1, one_minus_b1, b2, one_minus_b2, step_size, inv_bias2, eps,
                smallest):
    """Adam's update in one pass over memory (the array-op form makes about ten); moments
    below ``smallest`` (the dtype's smallest normal value) are stored as 0."""
    zero = smallest - smallest  # a 0 of the dtype: a Python 0 would make the loop float64
    for k in range(param.size):
        g = grad[k]
        m_k = b1 * m[k] + one_minus_b1 * g
        v_k = b2 * v[k] + one_minus_b2 * g * g
        param[k] -= step_size * m_k / (math.sqrt(v_k) * inv_bias2 + eps)
        # written as "below the threshold" so that a NaN stays NaN, as PyTorch keeps it
        m[k] = zero if abs(m_k) < smallest else m_k
        v[k] = zero if v_k < smallest else v_k


@numba.njit(cache=True, nogil=True, boundscheck=False, error_model="numpy")
def _rmsprop_numba(param, grad, square_avg, alpha, one_minus_alpha, lr, eps, smallest):
    """RMSProp's update in one pass over memory (the array-op form makes six); averages below
    ``smallest`` (the dtype's smallest normal value) are stored as 0."""
    zero = smallest - smallest
    for k in range(param.size):
        g = grad[k]
        s_k = alpha * square_avg[k] + one_minus_alpha * g * g
        param[k] -= lr * g / (math.sqrt(s_k) + eps)
        square_avg[k] = zero if s_k < smallest else s_k  # a NaN stays NaN


def clip_grad_norm_(parameters, max_norm: float) -> float:
    """Scale all gradients together so their global L2 norm is at most ``max_norm``.

    Returns the norm before clipping (useful to log).
    """
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return 0.0
    total = math.sqrt(sum(float((g * g).sum()) for g in grads))
    if total > max_norm:
        scale = max_norm / (total + 1e-6)
        for g in grads:
            g *= scale
    return total


class LRSchedule:
    """Sets ``optimizer.lr`` from the number of ``step()`` calls so far: ``lr = base * factor(t)``."""

    def __init__(self, optimizer: Optimizer):
        self.optimizer, self.base_lr, self.t = optimizer, optimizer.lr, 0

    def factor(self, t: int) -> float:
        raise NotImplementedError

    def step(self) -> float:
        """Advance one step and return the new learning rate."""
        self.t += 1
        self.optimizer.lr = self.base_lr * self.factor(self.t)
        return self.optimizer.lr


class StepDecay(LRSchedule):
    """Multiply the rate by ``gamma`` every ``step_size`` steps."""

    def __init__(self, optimizer, step_size: int, gamma: float = 0.1):
        super().__init__(optimizer)
        self.step_size, self.gamma = step_size, gamma

    def factor(self, t):
        return self.gamma ** (t // self.step_size)


class ExponentialDecay(LRSchedule):
    """lr = base * gamma^t."""

    def __init__(self, optimizer, gamma: float):
        super().__init__(optimizer)
        self.gamma = gamma

    def factor(self, t):
        return self.gamma ** t


class InverseTimeDecay(LRSchedule):
    """lr = base / (1 + decay * t) (the book's 1/t decay)."""

    def __init__(self, optimizer, decay: float):
        super().__init__(optimizer)
        self.decay = decay

    def factor(self, t):
        return 1.0 / (1.0 + self.decay * t)


class LinearDecay(LRSchedule):
    """Linear from the base rate to ``end_lr`` over ``total_steps``, then constant."""

    def __init__(self, optimizer, end_lr: float, total_steps: int):
        super().__init__(optimizer)
        self.end_lr, self.total_steps = end_lr, total_steps

    def factor(self, t):
        fraction = min(t / self.total_steps, 1.0)
        return 1.0 + fraction * (self.end_lr / self.base_lr - 1.0)
