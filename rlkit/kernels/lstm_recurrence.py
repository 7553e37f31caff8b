"""An LSTM layer's whole recurrence, forward or backward, in one numba call.

For float32 on a CPU with AVX-512, or AVX2 and FMA, and a hidden size that is a multiple of 16
(rlkit's ``LSTMSequence`` checks :func:`applies`). The step-by-step path (rlkit/kernels/lstm.py)
calls BLAS and NumPy several times per step; here each step's product (the input's and the
recurrent one together, in the forward) is rlkit/kernels/row_gemm.py's and the gates'
activations are computed on 16-lane vectors (rlkit/kernels/simd.py) in the same pass, tanh by
its rational approximation (error below 4e-7, where NumPy's float32 tanh is within about 2
ulp). The backward's element-wise arithmetic is the step kernel's, operation for
operation.

Each call runs on one thread; the rows of an LSTM never mix, so ``LSTMSequence`` hands blocks
of the batch to threads of their own (rlkit/threads.py), each with its rows' part of every
array. That lost while OpenBLAS's idle workers spun for 0.1 s after each product and held the
other core (inside the layer the threaded version ran at 0.82-0.86 of the step loop's time, the
single thread at 0.61-0.67; bench_revisions.py, lock-step, 2-core Xeon); with their spin
shortened and the input projection inside the forward kernel (no product right before the
threads start), the layer's forward and backward took 3.5-3.6 ms on two threads against 4.2-4.5
on one (ad hoc, rlkit/threads.py). For the small batches of acting (8 rows, one step) the
hand-off made the call 1.1-1.8x slower (ad hoc): ``LSTMSequence`` splits only batches with
enough rows times steps per thread.

Gate order i, f, o, g; the forward's weights come with the sigmoid gates' rows halved, so each
step's product gives those gates' pre-activations halved (sigmoid(x) = (1 + tanh(x / 2)) / 2),
as for the step kernels.
"""
from __future__ import annotations

import numba
import numpy as np

from rlkit.kernels import simd
from rlkit.kernels.row_gemm import matmul_rows
from rlkit.kernels.simd import fma, load, splat, store


def applies(hidden: int, *dtypes) -> bool:
    """True when these kernels run, on this CPU, an LSTM of this hidden size whose arrays have
    ``dtypes``: all float32 (an input and a weight of different dtypes take the step loop,
    which promotes)."""
    return (simd.FAST_ON_THIS_CPU and hidden % simd.LANES == 0
            and all(dtype == np.float32 for dtype in dtypes))


@numba.njit(cache=True, nogil=True, boundscheck=False)
def forward(steps_in, gates, cs, tanh_c, w_steps_panels):
    """Run the recurrence over all T steps, in place. All arrays float32.

    ``steps_in`` (T + 1, N, I + 1 + H): row t of step t is [x_t, 1, h_(t-1)] on entry
    (``steps_in[0]`` holds h0 in its last H columns), and h after step t is written into the
    last H columns of ``steps_in[t + 1]`` (rows may have any stride, the last axis contiguous).
    ``w_steps_panels``: [w_ih | b_ih + b_hh | w_hh] (4H, I + 1 + H), transposed, the sigmoid
    gates' rows halved, packed by rlkit/kernels/row_gemm.py's ``pack_panels``. Written:
    ``gates`` (T, N, 4H), each step's activated gates; ``cs`` (T + 1, N, H) after ``cs[0]``
    (c0) and ``tanh_c`` (T, N, H), tanh of ``cs[1:]``.
    """
    hidden = cs.shape[2]
    first_h = steps_in.shape[2] - hidden
    half = splat(0.5)
    for t in range(gates.shape[0]):
        z, c_prev, c, tanh_c_t = gates[t], cs[t], cs[t + 1], tanh_c[t]
        h = steps_in[t + 1, :, first_h:]
        matmul_rows(steps_in[t], w_steps_panels, z, False)
        for r in range(z.shape[0]):
            for k in range(0, 3 * hidden, 16):  # the sigmoid gates, from tanh of their half
                store(z, r, k, fma(half, simd.tanh(load(z, r, k)), half))
            for k in range(3 * hidden, 4 * hidden, 16):
                store(z, r, k, simd.tanh(load(z, r, k)))
            for k in range(0, hidden, 16):
                c_new = fma(load(z, r, hidden + k), load(c_prev, r, k),
                            load(z, r, k) * load(z, r, 3 * hidden + k))
                tanh_c_new = simd.tanh(c_new)
                store(c, r, k, c_new)
                store(tanh_c_t, r, k, tanh_c_new)
                store(h, r, k, load(z, r, 2 * hidden + k) * tanh_c_new)


@numba.njit(cache=True, nogil=True, boundscheck=False)
def backward(dh, g_output, dc, gates, cs, tanh_c, w_hh_panels):
    """Back-propagate through all T steps, in place; all arrays float32.

    ``dh``, ``dc`` (N, H): the gradients of the last h and c on entry, of h0 and c0 on return.
    ``g_output`` (T, N, H): the gradient of each step's h from the layer's output. ``gates``
    (T, N, 4H): the forward's activated gates on entry, the gradients of the pre-activations
    (unhalved) on return. ``cs`` (T + 1, N, H) and ``tanh_c`` (T, N, H) as the forward left
    them; ``w_hh_panels`` the recurrent weight (4H, H) as ``pack_panels`` packs it.
    """
    hidden = dc.shape[1]
    one = splat(1.0)
    for t in range(gates.shape[0] - 1, -1, -1):
        act, c_prev, tanh_c_t, g_out = gates[t], cs[t], tanh_c[t], g_output[t]
        for r in range(act.shape[0]):
            for k in range(0, hidden, 16):
                i, f = load(act, r, k), load(act, r, hidden + k)
                o, g = load(act, r, 2 * hidden + k), load(act, r, 3 * hidden + k)
                tc = load(tanh_c_t, r, k)
                d_h = load(dh, r, k) + load(g_out, r, k)
                d_c = load(dc, r, k) + d_h * o * (one - tc * tc)
                store(act, r, k, d_c * g * i * (one - i))
                store(act, r, hidden + k, d_c * load(c_prev, r, k) * f * (one - f))
                store(act, r, 2 * hidden + k, d_h * tc * o * (one - o))
                store(act, r, 3 * hidden + k, d_c * i * (one - g * g))
                store(dc, r, k, d_c * f)
        matmul_rows(act, w_hh_panels, dh, False)
