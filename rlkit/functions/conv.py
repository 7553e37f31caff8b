"""2-D convolution (cross-correlation, as PyTorch) and max-pooling, through im2col + GEMM
(and space-to-depth blocks for large no-graph convolutions)."""
from rlkit.backend import get_array_module
from rlkit.kernels import blocks
from rlkit.kernels.im2col import col2im, im2col, output_size
from rlkit.tensor import Function

# output pixels (N * OH * OW) from which a no-graph forward takes the block path: a batch of 32
# Nature-CNN first layers (12,800) gains, a single frame (400) loses (rlkit/kernels/blocks.py)
BLOCKS_MIN_OUTPUTS = 2048


class Conv2d(Function):
    """``x`` (N, C, H, W), ``weight`` (O, C, KH, KW), optional ``bias`` (O,) -> (N, O, OH, OW).

    No kernel flip: ``out[n, o, i, j] = sum_{c,a,b} w[o, c, a, b] * x_pad[n, c, i*sh + a, j*sw + b]``.
    ``stride`` and ``padding`` are (height, width) pairs. Through im2col and one GEMM; a large
    convolution with an unpadded kernel one or two strides wide (the DQN networks' 8x8/4 and
    4x4/2) runs on space-to-depth blocks instead (rlkit/kernels/blocks.py) when it records no
    graph, or records one that needs no input gradient (a network's first layer on data): its
    backward then computes the weight gradient in the block layout, and no input gradient.
    """

    def __init__(self, stride=(1, 1), padding=(0, 0)):
        self.stride, self.padding = stride, padding

    def forward(self, x, weight, bias=None):
        n, _, h, w = x.shape
        self.kernel = weight.shape[2:]
        self.x_shape = x.shape
        out_size = (output_size(h, self.kernel[0], self.stride[0], self.padding[0]),
                    output_size(w, self.kernel[1], self.stride[1], self.padding[1]))
        # set by Function.__call__ only when it records
        needs_x_grad = bool(self.needs_input_grad) and self.needs_input_grad[0]
        factors = None
        if not needs_x_grad and n * out_size[0] * out_size[1] >= BLOCKS_MIN_OUTPUTS:
            factors = blocks.block_factors(self.kernel, self.stride, self.padding)
        self.block_layout = None
        if factors:
            out = self._forward_blocks(x, weight, out_size, factors)
        else:
            out = self._forward_im2col(x, weight, out_size)
        if bias is not None:
            out += bias[:, None, None]
        return out

    def backward(self, g):
        if self.block_layout is not None:
            return self._backward_blocks(g)
        xp = get_array_module(g)
        cols, weight = self.saved
        o = g.shape[1]
        g2 = xp.ascontiguousarray(g.transpose(1, 0, 2, 3)).reshape(o, -1)  # columns in im2col order
        need_x, need_w = self.needs_input_grad[:2]
        gw = (g2 @ cols.T).reshape(weight.shape) if need_w else None
        gx = None
        if need_x:
            dcols = weight.reshape(o, -1).T @ g2
            gx = col2im(dcols, self.x_shape, self.kernel, self.stride, self.padding)
        if len(self.needs_input_grad) == 3:
            return gx, gw, (g2.sum(axis=1) if self.needs_input_grad[2] else None)
        return gx, gw

    def _forward_im2col(self, x, weight, out_size):
        xp = get_array_module(x)
        o, n = weight.shape[0], x.shape[0]
        cols = im2col(x, self.kernel, self.stride, self.padding)   # (C*KH*KW, N*OH*OW)
        self.saved = cols, weight
        out = weight.reshape(o, -1) @ cols                         # (O, N*OH*OW)
        return xp.ascontiguousarray(out.reshape(o, n, *out_size).transpose(1, 0, 2, 3))

    def _forward_blocks(self, x, weight, out_size, factors):
        o, n = weight.shape[0], x.shape[0]
        counts = blocks.block_counts(out_size, factors)
        x_blocks = blocks.to_blocks(x, self.stride, counts)                    # (C*sh*sw, N*bh*bw)
        w_blocks = blocks.block_weight(weight, self.stride, factors)           # (mh*mw*O, C*sh*sw)
        y = (w_blocks @ x_blocks).reshape(*factors, o, n, *counts)
        if self.needs_input_grad:  # recording, for the weight (and bias) gradient only
            self.block_layout = x_blocks, weight.shape, factors, counts
        return blocks.shift_add(y, (n, o) + tuple(out_size))

    def _backward_blocks(self, g):
        """Weight and bias gradients of a block-path forward (its input needs none):
        dW_blocks = dY @ X_blocks^T, dY being the output gradient scattered to the blocks."""
        x_blocks, weight_shape, factors, counts = self.block_layout
        gw = None
        if self.needs_input_grad[1]:
            dy = blocks.shift_scatter(g, factors, counts)                      # (mh*mw*O, N*bh*bw)
            gw = blocks.unblock_weight(dy @ x_blocks.T, weight_shape, self.stride, factors)
        if len(self.needs_input_grad) == 3:
            return None, gw, (g.sum(axis=(0, 2, 3)) if self.needs_input_grad[2] else None)
        return None, gw


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
