"""Fully connected layer as one fused op: y = x @ W.T + b."""
from rlkit.tensor import Function


class Linear(Function):
    """``x`` (..., in), ``weight`` (out, in), optional ``bias`` (out,) -> (..., out)."""

    def forward(self, x, weight, bias=None):
        self.x, self.weight = x, weight
        out = x @ weight.T
        if bias is not None:
            out += bias
        return out

    def backward(self, g):
        x, weight = self.x, self.weight
        g2 = g.reshape(-1, g.shape[-1])
        need_x, need_w = self.needs_input_grad[:2]
        gx = (g @ weight) if need_x else None
        gw = (g2.T @ x.reshape(-1, x.shape[-1])) if need_w else None
        if len(self.needs_input_grad) == 3:
            return gx, gw, (g2.sum(axis=0) if self.needs_input_grad[2] else None)
        return gx, gw
