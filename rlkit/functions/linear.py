"""Fully connected layer as one fused op: y = x @ W.T + b."""
import numpy as np

from rlkit.backend import get_array_module
from rlkit.functions._util import column_sums
from rlkit.tensor import Function

# OpenBLAS computes x @ W.T for a few rows of x and a large W at half speed: it repacks all of W
# for the few rows. (W @ x.T).T does the same products with W as the left operand. Measured on
# the 2-core Xeon, ms, x @ W.T -> (W @ x.T).T made contiguous: 8 x 3136 -> 512 (PPO acting)
# 0.86 -> 0.43, 32 x 2592 -> 256 (the dueling streams) 0.66 -> 0.41, 32 x 3136 -> 512 1.48 ->
# 0.93; equal at 80 rows, slower at 256 (6.1 vs 5.6) and for small weights
WEIGHT_FIRST_MAX_ROWS = 32
WEIGHT_FIRST_MIN_SIZE = 2**15


class Linear(Function):
    """``x`` (..., in), ``weight`` (out, in), optional ``bias`` (out,) -> (..., out)."""

    def forward(self, x, weight, bias=None):
        self.x, self.weight = x, weight
        rows = x.size // x.shape[-1] if x.shape[-1] else 0
        # cheapest test first: small layers (an MLP's) never reach the others
        if (weight.size >= WEIGHT_FIRST_MIN_SIZE and 1 < rows <= WEIGHT_FIRST_MAX_ROWS
                and get_array_module(x) is np):
            product = weight @ x.reshape(rows, -1).T                          # (out, rows)
            out = np.ascontiguousarray(product.T).reshape(*x.shape[:-1], weight.shape[0])
        else:
            out = x @ weight.T
        if bias is not None:
            out += bias
        return out

    def backward(self, g):
        x, weight = self.x, self.weight
        g2 = g.reshape(-1, g.shape[-1])
        need_x, need_w = self.needs_input_grad[:2]
        gx = (g @ weight) if need_x else None
        gw = None
        if need_w:
            x2 = x.reshape(-1, x.shape[-1])
            xp = get_array_module(g2)
            gw = xp.matmul(g2.T, x2, out=self.gradient_buffer(1, xp.result_type(g2, x2)))
        if len(self.needs_input_grad) == 3:
            return gx, gw, (column_sums(g2) if self.needs_input_grad[2] else None)
        return gx, gw
