"""2-D convolution (cross-correlation, as PyTorch) and max-pooling through im2col + GEMM."""
from rlkit.backend import get_array_module
from rlkit.kernels.im2col import col2im, im2col, output_size
from rlkit.tensor import Function


class Conv2d(Function):
    """``x`` (N, C, H, W), ``weight`` (O, C, KH, KW), optional ``bias`` (O,) -> (N, O, OH, OW).

    No kernel flip: ``out[n, o, i, j] = sum_{c,a,b} w[o, c, a, b] * x_pad[n, c, i*sh + a, j*sw + b]``.
    ``stride`` and ``padding`` are (height, width) pairs.
    """

    def __init__(self, stride=(1, 1), padding=(0, 0)):
        self.stride, self.padding = stride, padding

    def forward(self, x, weight, bias=None):
        xp = get_array_module(x)
        n, _, h, w = x.shape
        o, _, kh, kw = weight.shape
        self.kernel = (kh, kw)
        oh = output_size(h, kh, self.stride[0], self.padding[0])
        ow = output_size(w, kw, self.stride[1], self.padding[1])
        cols = im2col(x, self.kernel, self.stride, self.padding)   # (C*KH*KW, N*OH*OW)
        self.cols, self.weight, self.x_shape = cols, weight, x.shape
        out = weight.reshape(o, -1) @ cols                         # (O, N*OH*OW)
        if bias is not None:
            out += bias[:, None]
        return xp.ascontiguousarray(out.reshape(o, n, oh, ow).transpose(1, 0, 2, 3))

    def backward(self, g):
        xp = get_array_module(g)
        o = g.shape[1]
        g2 = xp.ascontiguousarray(g.transpose(1, 0, 2, 3)).reshape(o, -1)  # columns in im2col order
        need_x, need_w = self.needs_input_grad[:2]
        gx = gw = None
        if need_w:
            gw = (g2 @ self.cols.T).reshape(self.weight.shape)
        if need_x:
            dcols = self.weight.reshape(o, -1).T @ g2
            gx = col2im(dcols, self.x_shape, self.kernel, self.stride, self.padding)
        if len(self.needs_input_grad) == 3:
            return gx, gw, (g2.sum(axis=1) if self.needs_input_grad[2] else None)
        return gx, gw


class MaxPool2d(Function):
    """Max over (KH, KW) windows of each channel; windows may overlap (stride < kernel).

    The gradient of each window goes to one element, its first maximum (row-major in the
    window), and overlapping windows accumulate. Padding reads -inf.
    """

    def __init__(self, kernel, stride, padding=(0, 0)):
        self.kernel, self.stride, self.padding = kernel, stride, padding

    def forward(self, x):
        xp = get_array_module(x)
        n, c, h, w = x.shape
        oh = output_size(h, self.kernel[0], self.stride[0], self.padding[0])
        ow = output_size(w, self.kernel[1], self.stride[1], self.padding[1])
        cols = im2col(x.reshape(n * c, 1, h, w), self.kernel, self.stride, self.padding,
                      fill=-xp.inf)                                # (KH*KW, N*C*OH*OW)
        self.winner = cols.argmax(axis=0)
        self.cols_shape, self.x_shape = cols.shape, x.shape
        out = cols[self.winner, xp.arange(cols.shape[1])]
        return out.reshape(n, c, oh, ow)

    def backward(self, g):
        xp = get_array_module(g)
        n, c, h, w = self.x_shape
        dcols = xp.zeros(self.cols_shape, dtype=g.dtype)
        dcols[self.winner, xp.arange(self.cols_shape[1])] = g.reshape(-1)
        gx = col2im(dcols, (n * c, 1, h, w), self.kernel, self.stride, self.padding)
        return (gx.reshape(self.x_shape),)
