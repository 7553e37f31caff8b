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
        cols = im2col(x, self.kernel, self.stride, self.padding)
        self.cols, self.weight, self.x_shape = cols, weight, x.shape
        out = cols @ weight.reshape(o, -1).T          # (N*OH*OW, O)
        if bias is not None:
            out += bias
        return xp.ascontiguousarray(out.reshape(n, oh, ow, o).transpose(0, 3, 1, 2))

    def backward(self, g):
        o = g.shape[1]
        g2 = g.transpose(0, 2, 3, 1).reshape(-1, o)   # rows in im2col order
        need_x, need_w = self.needs_input_grad[:2]
        gx = gw = None
        if need_w:
            gw = (g2.T @ self.cols).reshape(self.weight.shape)
        if need_x:
            dcols = g2 @ self.weight.reshape(o, -1)
            gx = col2im(dcols, self.x_shape, self.kernel, self.stride, self.padding)
        if len(self.needs_input_grad) == 3:
            return gx, gw, (g2.sum(axis=0) if self.needs_input_grad[2] else None)
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
                      fill=-xp.inf)
        self.winner = cols.argmax(axis=1)
        self.rows, self.x_shape = cols.shape, x.shape
        out = cols[xp.arange(cols.shape[0]), self.winner]
        return out.reshape(n, c, oh, ow)

    def backward(self, g):
        xp = get_array_module(g)
        n, c, h, w = self.x_shape
        dcols = xp.zeros(self.rows, dtype=g.dtype)
        dcols[xp.arange(self.rows[0]), self.winner] = g.reshape(-1)
        gx = col2im(dcols, (n * c, 1, h, w), self.kernel, self.stride, self.padding)
        return (gx.reshape(self.x_shape),)
