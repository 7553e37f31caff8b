"""2-D convolution (cross-correlation, as PyTorch) and max-pooling, through channels-last
im2col + GEMM (and space-to-depth blocks for large few-channel convolutions whose input needs
no gradient: a first layer on frames).

A convolution's output (and its input gradient) is an (N, C, H, W) array whose memory is
channels last, (N, H, W, C): a transposed view of what the GEMM wrote. The next convolution,
which works channels last, then reads it without a copy, and element-wise layers in between
keep the layout (NumPy's ``empty_like`` and ufuncs follow their input's memory order; the
ReLU kernels run on such arrays as they are). Each NCHW <-> NHWC copy so saved cost 0.25-0.32
ms for the Nature CNN's first feature map at batch 32 and 3.6-5 ms at batch 256 (2-core Xeon).
Only what needs NCHW memory pays a copy (Flatten before a fully connected layer: its features
keep PyTorch's (C, H, W) order).
"""
import numpy as np

from rlkit.backend import get_array_module
from rlkit.functions._util import column_sums
from rlkit.kernels import blocks, direct_conv
from rlkit.kernels.im2col import col2im, im2col, output_size
from rlkit.tensor import Function

# input channels up to which a forward whose input needs no gradient takes the block path (at
# any batch size: with the kernels compiled per stride the blocks beat the channels-last im2col
# from a single frame on, measured on the 2-core Xeon under no_grad, ms, im2col -> blocks: the
# Nature first layer at batch 1 0.21 -> 0.16, 4 0.69 -> 0.37, 8 0.63 -> 0.64; the 2013 one at
# batch 1 0.18 -> 0.10); with more, each channels-last im2col row is made of long
# runs (kw * C values) and beats the blocks' four shifted sums (measured on the Zen 5, 4x4/2
# layers without a graph, batch 32: 16 channels 0.68 -> 0.53 ms, 32 channels 1.75 -> 1.6 ms),
# while a frame stack's 4 channels keep the blocks (8x8/4, batch 32: 2.2 vs 3.2 ms)
BLOCKS_MAX_CHANNELS = 8
# bytes of a chunk's intermediate where a pass over the batch goes a chunk at a time (block
# products, input-gradient columns): small enough for the caches of the 2-core machines
CHUNK_BYTES = 4 * 2**20
# the same for the im2col rows of a forward without a graph, which go straight into a GEMM:
# alternating with the whole batch's rows (2-core Xeon, ad hoc), 1 MiB chunks took 0.95 of its
# time for the Nature CNN's 4x4/2 layer at batch 32, 0.92 for its 3x3/1 layer and 0.66 for the
# 4x4/2 layer at batch 256 (whose 42 MB of rows went to memory and back); 512 KiB and 2 MiB
# were a little slower
FORWARD_CHUNK_BYTES = 2**20


class Conv2d(Function):
    """``x`` (N, C, H, W), ``weight`` (O, C, KH, KW), optional ``bias`` (O,) -> (N, O, OH, OW).

    No kernel flip: ``out[n, o, i, j] = sum_{c,a,b} w[o, c, a, b] * s * x_pad[n, c, i*sh + a,
    j*sw + b]`` with ``s = input_scale``. ``stride`` and ``padding`` are (height, width) pairs.
    ``x`` may be of an integer dtype (uint8 frames, with ``input_scale=1/255``): it is converted
    to the weight's dtype and scaled on the way in, inside the block copy when the blocks apply
    (no float copy of the batch is made), else in one pass before im2col.

    Through im2col and one GEMM; a convolution of a few input channels with an unpadded kernel
    one or two strides wide (the DQN networks' 8x8/4 first layers) runs on space-to-depth
    blocks instead (rlkit/kernels/blocks.py) when it records no graph, or records one that
    needs no input gradient (a network's first layer on data): its backward then computes the
    weight gradient in the block layout, and no input gradient. Such a layer of 16 or 32
    filters takes the direct kernels on vectors instead (rlkit/kernels/direct_conv.py) where
    their tiles fit: the forward, and for a recorded graph the weight gradient from the input.
    """

    def __init__(self, stride=(1, 1), padding=(0, 0), input_scale: float = 1.0):
        self.stride, self.padding, self.input_scale = stride, padding, input_scale

    def forward(self, x, weight, bias=None):
        n, _, h, w = x.shape
        self.kernel = weight.shape[2:]
        self.x_shape = x.shape
        out_size = (output_size(h, self.kernel[0], self.stride[0], self.padding[0]),
                    output_size(w, self.kernel[1], self.stride[1], self.padding[1]))
        # set by Function.__call__ only when it records
        needs_x_grad = bool(self.needs_input_grad) and self.needs_input_grad[0]
        factors = None
        self.block_layout = self.direct_input = None
        if not needs_x_grad and x.shape[1] <= BLOCKS_MAX_CHANNELS:
            # the direct kernel: without a graph (acting, a target network), or recording one
            # whose weight gradient its second kernel computes from the input kept here
            recording = bool(self.needs_input_grad)
            takes = direct_conv.weight_gradient_applies if recording else direct_conv.applies
            if takes(x, weight, bias, self.padding, out_size):
                if recording:
                    self.direct_input = x
                return direct_conv.forward(x, _weight_columns(weight), bias, self.kernel,
                                           self.stride, self.input_scale,
                                           out_size).transpose(0, 3, 1, 2)
            factors = blocks.block_factors(self.kernel, self.stride, self.padding)
        if factors:
            out = self._forward_blocks(x, weight, bias, out_size, factors)
        else:
            out = self._forward_im2col(self._scaled(x, weight.dtype), weight, bias, out_size)
        return out.transpose(0, 3, 1, 2)

    def backward(self, g):
        if self.direct_input is not None:
            return self._backward_direct(g)
        if self.block_layout is not None:
            return self._backward_blocks(g)
        xp = get_array_module(g)
        cols, w_columns = self.saved
        n, o = g.shape[:2]
        g_rows = _to_channels_last(g).reshape(-1, o)                           # (N*OH*OW, O)
        need_x, need_w = self.needs_input_grad[:2]
        gw = None
        if need_w:
            # as cols^T @ g, not g^T @ cols: OpenBLAS ran the Nature CNN's layers' products 5-7%
            # faster this way at batch 32, 12-13% at 256 (2-core Xeon, ad hoc A/B); and it comes
            # out in the layer's weight layout, so it adds into the optimiser's gradient as it is
            gw = self._weight_gradient(xp.result_type(cols, g_rows),
                                       lambda out: xp.matmul(cols.T, g_rows, out=out))
        gx = None
        if need_x:
            # dcols is kh*kw / (sh*sw) times the size of the input: made and folded a chunk at
            # a time, it never leaves the caches
            _, c, h, w = self.x_shape
            gx = xp.empty((n, h, w, c), dtype=g.dtype)
            pixels = g.shape[2] * g.shape[3]
            for part in _batch_chunks(xp, n, cols.shape[1] * cols.itemsize * pixels):
                dcols = g_rows[part.start * pixels:part.stop * pixels] @ w_columns.T  # (rows, K)
                folded = gx[part]                                              # (n, H, W, C)
                col2im(dcols, folded.shape, self.kernel, self.stride, self.padding, out=folded)
            if self.input_scale != 1:
                gx *= self.input_scale
            gx = gx.transpose(0, 3, 1, 2)
        return self._with_bias_gradient(gx, gw, g_rows)

    def _scaled(self, x, weight_dtype):
        """``x`` as the floating-point input of the GEMMs: times ``input_scale``, in the dtype
        NumPy promotes x and the weight to (float32 for uint8 frames); ``x`` itself when there
        is nothing to do."""
        xp = get_array_module(x)
        if self.input_scale == 1 and x.dtype.kind == "f":
            return x
        dtype = xp.result_type(x.dtype, weight_dtype)
        scaled = x.astype(dtype)
        if self.input_scale != 1:
            scaled *= dtype.type(self.input_scale)
        return scaled

    def _forward_im2col(self, x, weight, bias, out_size):
        """Channels last inside (rlkit/kernels/im2col.py): the output pixels' rows of im2col
        times the weight's (KH*KW*C, O) matrix give the (N, OH, OW, O) output, to which the
        bias is added. A recording forward keeps all the rows for the weight gradient; without
        a graph they are made and multiplied a chunk of the batch at a time (about
        FORWARD_CHUNK_BYTES of them), so the GEMM reads them from the cache."""
        xp = get_array_module(x)
        o, n = weight.shape[0], x.shape[0]
        x = _to_channels_last(x)
        w_columns = _weight_columns(weight)                                    # (KH*KW*C, O)
        if self.needs_input_grad:
            cols = im2col(x, self.kernel, self.stride, self.padding)
            self.saved = cols, w_columns
            out = cols @ w_columns                                             # (N*OH*OW, O)
        else:
            pixels = out_size[0] * out_size[1]
            out = xp.empty((n * pixels, o), dtype=xp.result_type(x.dtype, w_columns.dtype))
            row_bytes = max(1, pixels * w_columns.shape[0] * x.itemsize)  # 0 for an empty image
            for part in _batch_chunks(xp, n, row_bytes, FORWARD_CHUNK_BYTES):
                cols = im2col(x[part], self.kernel, self.stride, self.padding)
                xp.matmul(cols, w_columns, out=out[part.start * pixels:part.stop * pixels])
        if bias is not None:
            out += bias
        return out.reshape(n, *out_size, o)

    def _forward_blocks(self, x, weight, bias, out_size, factors):
        """The block product Y is mh*mw times the size of the output: made and summed (with
        the bias) a chunk of the batch at a time, it never leaves the caches. Returns the
        (N, OH, OW, O) output."""
        xp = get_array_module(x)
        o, n = weight.shape[0], x.shape[0]
        counts = blocks.block_counts(out_size, factors)
        w_blocks = blocks.block_weight(weight, self.stride, factors)           # (mh*mw*O, C*sh*sw)
        dtype = xp.result_type(x.dtype, weight.dtype)                         # as the GEMM's
        out = xp.empty((n,) + tuple(out_size) + (o,), dtype=dtype)
        parts = _batch_chunks(xp, n, w_blocks.shape[0] * counts[0] * counts[1] * dtype.itemsize)
        recording = bool(self.needs_input_grad)  # then for the weight (and bias) gradient only
        x_blocks = []
        for part in parts:
            x_part = blocks.to_blocks(x[part], self.stride, counts,            # (C*sh*sw, n*bh*bw)
                                      self.input_scale, dtype)
            y = (x_part.T @ w_blocks.T).reshape(part.stop - part.start, *counts, *factors, o)
            blocks.shift_add(y, out[part], bias)
            if recording:
                x_blocks.append(x_part)
        if recording:
            self.block_layout = parts, x_blocks, weight.shape, factors, counts
        return out

    def _backward_blocks(self, g):
        """Weight and bias gradients of a block-path forward (its input needs none):
        dW_blocks^T = X_blocks @ dY, dY being the output gradient scattered to the blocks, summed
        over the forward's chunks (as dY^T @ X_blocks^T, on two transposed operands, the GEMM
        took 1.63 ms against 1.20 for a batch of 32 through a 16-filter layer, 2-core Xeon, ad
        hoc)."""
        parts, x_blocks, weight_shape, factors, counts = self.block_layout
        g = _to_channels_last(g)                                               # (N, OH, OW, O)
        gw = None
        if self.needs_input_grad[1]:
            o, c = weight_shape[:2]
            gw_blocks_t = get_array_module(g).zeros(                           # (C*sh*sw, mh*mw*O)
                (c * self.stride[0] * self.stride[1], factors[0] * factors[1] * o), g.dtype)
            for part, x_part in zip(parts, x_blocks):
                dy = blocks.shift_scatter(g[part], factors, counts)            # (n*bh*bw, mh*mw*O)
                gw_blocks_t += x_part @ dy
            gw = blocks.unblock_weight(gw_blocks_t.T, weight_shape, self.stride, factors)
        return self._with_bias_gradient(None, gw, g.reshape(-1, g.shape[-1]))

    def _backward_direct(self, g):
        """Weight and bias gradients of a forward on the direct kernel (its input needs none),
        the weight's by rlkit/kernels/direct_conv.py's second kernel, in place in the
        optimiser's buffer when it offers it (Function.gradient_buffer)."""
        g_rows = _to_channels_last(g).reshape(-1, g.shape[1])                  # (N*OH*OW, O)
        gw = None
        if self.needs_input_grad[1]:
            gw = self._weight_gradient(np.float32, lambda out: direct_conv.weight_gradient(
                self.direct_input, g_rows, self.kernel, self.stride, self.input_scale, out=out))
        return self._with_bias_gradient(None, gw, g_rows)

    def _weight_gradient(self, dtype, columns_into):
        """The (O, C, KH, KW) weight gradient that ``columns_into(out)`` computes as (KH*KW*C, O)
        columns, into ``out`` (a new array when ``out`` is None) which it returns: ``out`` is the
        optimiser's buffer seen as those columns when it offers one (Function.gradient_buffer)."""
        buffer = self.gradient_buffer(1, dtype)
        columns = None if buffer is None else _columns_view(buffer)
        product = columns_into(columns)
        return buffer if columns is not None else _weight_of_columns(product, self.kernel)

    def _with_bias_gradient(self, gx, gw, g_rows):
        """(gx, gw), and the bias's gradient (the column sums of ``g_rows``, the (N*OH*OW, O)
        output gradient) when the op was given a bias."""
        if len(self.needs_input_grad) == 3:
            return gx, gw, (column_sums(g_rows) if self.needs_input_grad[2] else None)
        return gx, gw


def _batch_chunks(xp, n: int, bytes_per_sample: int, chunk_bytes: int | None = None) -> list:
    """Slices of the batch (0..n) for a pass whose intermediate takes ``bytes_per_sample``:
    about ``chunk_bytes`` (default CHUNK_BYTES) each on the CPU, so the intermediate stays in
    the caches between the two steps that make and use it; the whole batch on CUDA."""
    chunk_bytes = CHUNK_BYTES if chunk_bytes is None else chunk_bytes
    size = max(1, n) if xp is not np else max(1, chunk_bytes // bytes_per_sample)
    return [slice(i, min(n, i + size)) for i in range(0, n, size)]


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
        # each channel as an image of one channel, where NCHW and NHWC are the same array
        cols = im2col(x.reshape(n * c, h, w, 1), self.kernel, self.stride, self.padding,
                      fill=-xp.inf)                                # (N*C*OH*OW, KH*KW)
        self.winner = cols.argmax(axis=1)
        self.cols_shape, self.x_shape = cols.shape, x.shape
        out = cols[xp.arange(cols.shape[0]), self.winner]
        return out.reshape(n, c, oh, ow)

    def backward(self, g):
        xp = get_array_module(g)
        n, c, h, w = self.x_shape
        dcols = xp.zeros(self.cols_shape, dtype=g.dtype)
        dcols[xp.arange(self.cols_shape[0]), self.winner] = g.reshape(-1)
        gx = col2im(dcols, (n * c, h, w, 1), self.kernel, self.stride, self.padding)
        return (gx.reshape(self.x_shape),)


def _weight_columns(weight):
    """(O, C, KH, KW) weight -> the (KH*KW*C, O) matrix that im2col's rows multiply: a view of
    a Conv2d layer's weight, whose memory is (KH, KW, C, O) (rlkit/nn/layers.py), else a copy."""
    o = weight.shape[0]
    return get_array_module(weight).ascontiguousarray(weight.transpose(2, 3, 1, 0)).reshape(-1, o)


def _columns_view(weight):
    """The (KH*KW*C, O) matrix of an (O, C, KH, KW) array as a view, when its memory is laid out
    (KH, KW, C, O) as a Conv2d layer's weight (and its gradient) is; else None."""
    stored = weight.transpose(2, 3, 1, 0)
    return stored.reshape(-1, weight.shape[0]) if stored.flags.c_contiguous else None


def _weight_of_columns(columns, kernel):
    """The inverse of :func:`_weight_columns`: (KH*KW*C, O) -> the (O, C, KH, KW) view of it."""
    k, o = columns.shape
    return columns.reshape(*kernel, k // (kernel[0] * kernel[1]), o).transpose(3, 2, 0, 1)


def _to_channels_last(array):
    """(N, C, H, W) -> (N, H, W, C), contiguous: a view of an array whose memory is channels
    last (a convolution's output), else a copy."""
    return get_array_module(array).ascontiguousarray(array.transpose(0, 2, 3, 1))
