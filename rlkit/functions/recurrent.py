"""A whole LSTM layer over a sequence as one op, with back-propagation through time inside.

Gate order i, f, o, g (the book's): the first 3H rows of the weights feed sigmoid gates, the
last H the tanh candidate. c' = f * c + i * g, h' = o * tanh(c'). The input projection of all
time steps is one GEMM, so the Python loop holds only the recurrent part.
"""
from rlkit.backend import get_array_module
from rlkit.functions.elementwise import stable_sigmoid
from rlkit.tensor import Function


class LSTMSequence(Function):
    """``x`` (N, T, I), ``h0``/``c0`` (N, H), ``w_ih`` (4H, I), ``w_hh`` (4H, H), ``b_ih``/``b_hh`` (4H,)
    -> ``output`` (N, T, H) (h of every step), ``h_T`` (N, H), ``c_T`` (N, H)."""

    n_outputs = 3

    def forward(self, x, h0, c0, w_ih, w_hh, b_ih, b_hh):
        xp = get_array_module(x)
        n, steps, _ = x.shape
        hidden = h0.shape[1]
        projected = (x.reshape(n * steps, -1) @ w_ih.T + (b_ih + b_hh)).reshape(n, steps, -1)
        hs = xp.empty((steps + 1, n, hidden), dtype=x.dtype)
        cs = xp.empty((steps + 1, n, hidden), dtype=x.dtype)
        gates = xp.empty((steps, n, 4 * hidden), dtype=x.dtype)  # activated i, f, o, g
        tanh_c = xp.empty((steps, n, hidden), dtype=x.dtype)
        hs[0], cs[0] = h0, c0
        w_hh_t = w_hh.T
        for t in range(steps):
            z = projected[:, t] + hs[t] @ w_hh_t
            act = gates[t]
            act[:, :3 * hidden] = stable_sigmoid(xp, z[:, :3 * hidden])
            act[:, 3 * hidden:] = xp.tanh(z[:, 3 * hidden:])
            i, f, o, g = (act[:, k * hidden:(k + 1) * hidden] for k in range(4))
            cs[t + 1] = f * cs[t] + i * g
            tanh_c[t] = xp.tanh(cs[t + 1])
            hs[t + 1] = o * tanh_c[t]
        self.saved = x, w_ih, w_hh, hs, cs, gates, tanh_c
        output = xp.ascontiguousarray(hs[1:].transpose(1, 0, 2))
        return output, hs[-1].copy(), cs[-1].copy()

    def backward(self, g_output, g_h, g_c):
        x, w_ih, w_hh, hs, cs, gates, tanh_c = self.saved
        xp = get_array_module(x)
        n, steps, _ = x.shape
        hidden = hs.shape[2]
        dz = xp.empty_like(gates)
        dh, dc = g_h.copy(), g_c.copy()
        for t in reversed(range(steps)):
            dh += g_output[:, t]
            act = gates[t]
            i, f, o, g = (act[:, k * hidden:(k + 1) * hidden] for k in range(4))
            dc += dh * o * (1 - tanh_c[t] * tanh_c[t])
            step = dz[t]
            step[:, :hidden] = dc * g * i * (1 - i)
            step[:, hidden:2 * hidden] = dc * cs[t] * f * (1 - f)
            step[:, 2 * hidden:3 * hidden] = dh * tanh_c[t] * o * (1 - o)
            step[:, 3 * hidden:] = dc * i * (1 - g * g)
            dh = step @ w_hh
            dc = dc * f
        dz_flat = dz.transpose(1, 0, 2).reshape(n * steps, 4 * hidden)  # rows in (n, t) order
        gx = (dz_flat @ w_ih).reshape(x.shape)
        g_w_ih = dz_flat.T @ x.reshape(n * steps, -1)
        g_w_hh = dz.reshape(steps * n, -1).T @ hs[:-1].reshape(steps * n, hidden)
        g_b = dz.sum(axis=(0, 1))
        return gx, dh, dc, g_w_ih, g_w_hh, g_b, g_b
