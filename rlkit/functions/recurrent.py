"""A whole LSTM layer over a sequence as one op, with back-propagation through time inside.

Gate order i, f, o, g (the book's): the first 3H rows of the weights feed sigmoid gates, the
last H the tanh candidate. c' = f * c + i * g, h' = o * tanh(c'). The input projection of all
time steps is one GEMM, and so are the weight gradients, so the Python loop holds only the
recurrent GEMM and the element-wise step kernels (rlkit/kernels/lstm.py).
"""
from rlkit.backend import get_array_module
from rlkit.kernels import lstm as kernels
from rlkit.tensor import Function


class LSTMSequence(Function):
    """``x`` (N, T, I), ``h0``/``c0`` (N, H), ``w_ih`` (4H, I), ``w_hh`` (4H, H), ``b_ih``/``b_hh`` (4H,)
    -> ``output`` (N, T, H) (h of every step), ``h_T`` (N, H), ``c_T`` (N, H)."""

    n_outputs = 3

    def forward(self, x, h0, c0, w_ih, w_hh, b_ih, b_hh):
        xp = get_array_module(x)
        n, steps, _ = x.shape
        hidden = h0.shape[1]
        # time-major projections, so each step reads one contiguous (N, 4H) block
        projected = (x.transpose(1, 0, 2).reshape(steps * n, -1) @ w_ih.T + (b_ih + b_hh))
        projected = projected.reshape(steps, n, 4 * hidden)
        # halve the sigmoid gates' pre-activations once here, not every step: the step kernel
        # then gets all four gates from one tanh (sigmoid(x) = (1 + tanh(x / 2)) / 2)
        projected[:, :, :3 * hidden] *= 0.5
        hs = xp.empty((steps + 1, n, hidden), dtype=x.dtype)
        cs = xp.empty((steps + 1, n, hidden), dtype=x.dtype)
        gates = xp.empty((steps, n, 4 * hidden), dtype=x.dtype)  # activated i, f, o, g
        tanh_c = xp.empty((steps, n, hidden), dtype=x.dtype)
        hs[0], cs[0] = h0, c0
        w_hh_t = xp.ascontiguousarray(w_hh.T)  # a GEMM on a transposed view was 40% slower here
        w_hh_t[:, :3 * hidden] *= 0.5
        for t in range(steps):
            z = projected[t]
            z += hs[t] @ w_hh_t
            kernels.step_forward(z, cs[t], gates[t], cs[t + 1], tanh_c[t], hs[t + 1])
        self.saved = x, w_ih, w_hh, hs, cs, gates, tanh_c
        output = xp.ascontiguousarray(hs[1:].transpose(1, 0, 2))
        return output, hs[-1].copy(), cs[-1].copy()

    def backward(self, g_output, g_h, g_c):
        x, w_ih, w_hh, hs, cs, gates, tanh_c = self.saved
        xp = get_array_module(x)
        n, steps, _ = x.shape
        hidden = hs.shape[2]
        g_output = xp.ascontiguousarray(g_output.transpose(1, 0, 2))  # time-major
        dz = xp.empty_like(gates)
        dh, dc = g_h.copy(), g_c.copy()
        for t in reversed(range(steps)):
            dh += g_output[t]
            kernels.step_backward(dh, dc, gates[t], cs[t], tanh_c[t], dz[t])
            dh = dz[t] @ w_hh
        dz_flat = dz.reshape(steps * n, 4 * hidden)                    # rows in (t, n) order
        x_flat = x.transpose(1, 0, 2).reshape(steps * n, -1)
        gx = None
        if self.needs_input_grad[0]:  # often nothing asks for the data's gradient: skip a GEMM
            gx = (dz_flat @ w_ih).reshape(steps, n, -1).transpose(1, 0, 2)
        g_w_ih = dz_flat.T @ x_flat
        g_w_hh = dz_flat.T @ hs[:-1].reshape(steps * n, hidden)
        g_b = dz_flat.sum(axis=0)
        return gx, dh, dc, g_w_ih, g_w_hh, g_b, g_b
