"""An LSTM layer's whole recurrence, forward or backward, in one numba call.

For float32 on a CPU with AVX-512, or AVX2 and FMA, and a hidden size that is a multiple of 16
(rlkit's ``LSTMSequence`` checks :func:`applies`). The step-by-step path (rlkit/kernels/lstm.py)
calls BLAS and NumPy several times per step; here the recurrent product is rlkit/kernels/row_gemm.py's
and the gates' activations are computed on 16-lane vectors (rlkit/kernels/simd.py) in the same
pass, tanh by its rational approximation (error below 4e-7, where NumPy's float32 tanh is within
about 2 ulp). The backward's element-wise arithmetic is the step kernel's, operation for
operation.

One thread. The rows of an LSTM never mix, so blocks of the batch could run on threads of their
own, and did (Python threads, GIL released). Alone, two blocks took 1.5 ms against 2.0-2.8 for
the 32 x 32 x 128 forward recurrence; inside the layer the threaded version ran at 0.82-0.86 of
the step loop's time, the single thread at 0.61-0.67 (bench_revisions.py, lock-step, 2-core
Xeon). OpenBLAS's idle workers spin for about 0.1 s after each product (its
``OPENBLAS_THREAD_TIMEOUT``, read when NumPy loads) and held the other core; and for the small
batches of acting (8 rows, one step) the hand-off made the call 1.1-1.8x slower (ad hoc).

Gate order i, f, o, g; the forward's pre-activations come with the sigmoid gates' columns
halved (sigmoid(x) = (1 + tanh(x / 2)) / 2), as for the step kernels.
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
def forward(gates, hs, cs, tanh_c, w_hh_t_panels):
    """Run the recurrence over all T steps, in place.

    All arrays float32. ``gates`` (T, N, 4H): each step's input projection (bias included) on
    entry, its activated gates on return. ``hs`` (T + 1, N, H): ``hs[0]`` is h0 on entry,
    ``hs[t + 1]`` becomes h after step t (rows may have any stride, the last axis contiguous).
    ``cs`` (T + 1, N, H):
    ``cs[0]`` is c0, the rest is written, as is ``tanh_c`` (T, N, H), tanh of ``cs[1:]``.
    ``w_hh_t_panels`` is the recurrent weight transposed, (H, 4H), the sigmoid gates' columns
    halved, packed by rlkit/kernels/row_gemm.py's ``pack_panels``.
    """
    hidden = cs.shape[2]
    half = splat(0.5)
    for t in range(gates.shape[0]):
        z, c_prev, c, tanh_c_t, h = gates[t], cs[t], cs[t + 1], tanh_c[t], hs[t + 1]
        matmul_rows(hs[t], w_hh_t_panels, z, True)
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
