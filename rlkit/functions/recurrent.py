"""A whole LSTM layer over a sequence as one op, with back-propagation through time inside.

Gate order i, f, o, g (the book's): the first 3H rows of the weights feed sigmoid gates, the
last H the tanh candidate. c' = f * c + i * g, h' = o * tanh(c'). All the weight gradients are
one GEMM, the bias's included. In float32 on a CPU with AVX-512 (or AVX2 and FMA) and a hidden
size that is a multiple of 16, the whole recurrence is one numba call per block of rows, the
blocks on the engine's threads (rlkit/kernels/lstm_recurrence.py, rlkit/threads.py), each step's
input and recurrent products one product inside it; otherwise (float64, CuPy, other sizes) the
input projection of all time steps is one GEMM with the bias in it and a Python loop calls the
recurrent GEMM and the element-wise step kernels (rlkit/kernels/lstm.py).
"""
import functools

import numpy as np

from rlkit import threads
from rlkit.backend import get_array_module
from rlkit.kernels import lstm as kernels
from rlkit.kernels import lstm_recurrence
from rlkit.kernels.row_gemm import TILE_ROWS, pack_panels
from rlkit.tensor import Function

# rows times steps below which a block of rows is not worth a thread of its own: the hand-off
# costs tens of microseconds, a row-step of a 128-unit layer about two
MIN_ROW_STEPS_PER_THREAD = 64


class LSTMSequence(Function):
    """``x`` (N, T, I), ``h0``/``c0`` (N, H), ``w_ih`` (4H, I), ``w_hh`` (4H, H), ``b_ih``/``b_hh`` (4H,)
    -> ``output`` (N, T, H) (h of every step), ``h_T`` (N, H), ``c_T`` (N, H)."""

    n_outputs = 3

    def forward(self, x, h0, c0, w_ih, w_hh, b_ih, b_hh):
        xp = get_array_module(x)
        n, steps, n_in = x.shape
        hidden = h0.shape[1]
        # Row t of `steps_in` is [x_t, 1, h_(t-1)], time-major: the ones put the bias into the
        # projection GEMM, and one GEMM over all of it gives every weight gradient, the bias's
        # included, instead of two GEMMs and two passes over (T, N, 4H).
        steps_in = xp.empty((steps + 1, n, n_in + 1 + hidden), dtype=x.dtype)
        steps_in[:steps, :, :n_in] = x.transpose(1, 0, 2)
        steps_in[:steps, :, n_in] = 1
        hs = steps_in[:, :, n_in + 1:]  # hs[t] is h_(t-1); hs[steps] the last state
        hs[0] = h0
        bias = (b_ih + b_hh)[:, None]
        gates = xp.empty((steps, n, 4 * hidden), dtype=x.dtype)
        cs = xp.empty((steps + 1, n, hidden), dtype=x.dtype)
        tanh_c = xp.empty((steps, n, hidden), dtype=x.dtype)
        cs[0] = c0
        self.whole_recurrence = (xp is np and
                                 lstm_recurrence.applies(hidden, x.dtype, w_ih.dtype, w_hh.dtype))
        if self.whole_recurrence:
            # each step's whole product, [x_t, 1, h_(t-1)] @ [w_ih | bias | w_hh]^T, inside the
            # kernel: no BLAS product right before the threads start (rlkit/threads.py), and
            # blocks of rows, which never mix, run on threads of their own
            w_steps = xp.concatenate([w_ih, bias, w_hh], axis=1)
            # The sigmoid gates' rows are halved here, in the small weights, so that the step
            # kernel gets all four gates from one tanh (sigmoid(x) = (1 + tanh(x / 2)) / 2).
            w_steps[:3 * hidden] *= 0.5
            panels = pack_panels(w_steps.T)
            threads.run(functools.partial(lstm_recurrence.forward, steps_in[:, rows],
                                          gates[:, rows], cs[:, rows], tanh_c[:, rows], panels)
                        for rows in _row_blocks(n, steps))
        else:
            w_in = xp.concatenate([w_ih, bias], axis=1)
            w_in[:3 * hidden] *= 0.5  # as above
            # the projections go straight into the gates' array, which each step then activates
            xp.matmul(steps_in[:steps].reshape(steps * n, -1)[:, :n_in + 1], w_in.T,
                      out=gates.reshape(steps * n, 4 * hidden))
            w_hh_t = xp.ascontiguousarray(w_hh.T)  # a GEMM on a transposed view was 40% slower
            w_hh_t[:, :3 * hidden] *= 0.5
            for t in range(steps):
                gates[t] += hs[t] @ w_hh_t
                kernels.step_forward(gates[t], cs[t], gates[t], cs[t + 1], tanh_c[t], hs[t + 1])
        self.saved = steps_in, w_ih, w_hh, cs, gates, tanh_c
        output = xp.ascontiguousarray(hs[1:].transpose(1, 0, 2))
        return output, hs[-1].copy(), cs[-1].copy()

    def backward(self, g_output, g_h, g_c):
        steps_in, w_ih, w_hh, cs, gates, tanh_c = self.saved
        xp = get_array_module(gates)
        steps, n, hidden = tanh_c.shape
        n_in = w_ih.shape[1]
        g_output = xp.ascontiguousarray(g_output.transpose(1, 0, 2),       # time-major
                                        dtype=gates.dtype)
        # each step's gate gradients overwrite its activations, read for the last time (on a
        # copy when the graph is kept for another backward)
        dz = gates.copy() if self.graph_retained else gates
        dc = g_c.astype(gates.dtype, order="C")  # a copy, updated in place, rows contiguous
        if self.whole_recurrence:
            dh = g_h.astype(gates.dtype, order="C")  # a copy: the kernel writes it
            panels = pack_panels(w_hh)
            threads.run(functools.partial(lstm_recurrence.backward, dh[rows], g_output[:, rows],
                                          dc[rows], dz[:, rows], cs[:, rows], tanh_c[:, rows],
                                          panels)
                        for rows in _row_blocks(n, steps))
        else:
            dh = g_h
            for t in reversed(range(steps)):
                kernels.step_backward(dh, g_output[t], dc, dz[t], cs[t], tanh_c[t], dz[t])
                dh = dz[t] @ w_hh
        dz_flat = dz.reshape(steps * n, 4 * hidden)                    # rows in (t, n) order
        gx = None
        if self.needs_input_grad[0]:  # often nothing asks for the data's gradient: skip a GEMM
            gx = (dz_flat @ w_ih).reshape(steps, n, n_in).transpose(1, 0, 2)
        # (4H, I + 1 + H): columns [w_ih | bias | w_hh]
        g_w = dz_flat.T @ steps_in[:steps].reshape(steps * n, -1)
        g_b = g_w[:, n_in]
        return gx, dh, dc, g_w[:, :n_in], g_w[:, n_in + 1:], g_b, g_b


def _row_blocks(n: int, steps: int) -> list:
    """The batch's rows (0..n) in blocks for the engine's threads: at least
    MIN_ROW_STEPS_PER_THREAD rows times steps each, split at whole tiles of the row kernel
    (rlkit/kernels/row_gemm.py)."""
    return threads.split(n, -(-MIN_ROW_STEPS_PER_THREAD // max(steps, 1)), TILE_ROWS)
