"""A direct convolution on explicit 16-lane vectors for first layers on frames, and its weight
gradient.

The Nature CNN's 8x8/4 first layer at batch 32 took 4.7 ms on the space-to-depth blocks
(rlkit/kernels/blocks.py: a block copy, a GEMM whose output is four times the layer's, a
shifted sum), 40% of a forward; PyTorch's oneDNN took 1.5-3.0. This kernel reads the input
where it lies and keeps 8 output sums in registers (4 pixels by 32 filters, or 4 pixels of two
rows by 16): per weight row (one kernel offset and channel) it loads the filters' weights once
and multiplies them into the sums by one broadcast input value each (rlkit/kernels/simd.py).
Alternating with the blocks in one process (2-core Xeon, ad hoc), on one thread against the
blocks' two: the Nature layer took 0.68-0.83 of their time at batch 32 and 0.67-0.76 for one
frame stack, the 2013 network's 16-filter layer 0.89 and 0.64; compiled for AVX2 (numba for
``haswell``, OpenBLAS's Haswell kernels) 0.64-0.72.

It runs for layers of 16 or 32 filters without padding whose output rows are a multiple of
4 pixels wide (and, for 16 filters, even in number), on float32 weights, on a CPU where the
vectors are fast (:data:`rlkit.kernels.simd.FAST_ON_THIS_CPU`). A layer that records a graph
(a first layer, whose input needs no gradient) takes it too when its kernel is a multiple of 8
columns wide: :func:`weight_gradient` then computes the weight gradient from the input the
forward kept, with the same tile turned around. Against the block path, whose backward
scatters the output gradient to the blocks and multiplies it by the forward's block copy, a
recorded forward and backward took 0.74 of its time for the Nature layer and 0.85 for the
2013 network's (batch 32, uint8 frames, alternating, ad hoc).

Parts of the batch run on the engine's threads (rlkit/threads.py): the forward's samples are
independent, and the weight gradient sums each part into an array of its own and adds them up
(so its last bits depend on the number of threads: the same sums in another order).
Inside the DQN train step and agent update (batch 32, 2-core Xeon), two threads with OpenBLAS's
spin shortened took 0.92 of the one-thread time (ad hoc, rlkit/threads.py).

The input may be float32 or uint8 frames. Frames that need converting or scaling are
converted and scaled a sample at a time into a float32 buffer that stays in L2, each value as
``float32(x) * scale`` (the product the block copy makes), so a network on uint8 frames gives
exactly what it gives on the same frames scaled beforehand.
"""
from __future__ import annotations

import functools

import numba
import numpy as np

from rlkit import threads
from rlkit.kernels import simd
from rlkit.kernels.im2col import output_size
from rlkit.kernels.simd import fma, load, splat, store

PIXELS = 4  # output pixels of a row whose sums one tile keeps in registers
KERNEL_COLUMNS = 8  # kernel columns whose weight-gradient sums one tile keeps in registers
FILTERS = (16, 32)  # output channels the tiles cover: one or two vectors
# samples below which a part of the batch is not worth a thread of its own (rlkit/threads.py):
# a sample of the Nature CNN's first layer takes about 50 us on one thread, a hand-off tens
MIN_SAMPLES_PER_THREAD = 2


def applies(x, weight, bias, padding, out_size) -> bool:
    """Whether :func:`forward` takes this layer: a NumPy input of float32 or uint8 in C order,
    a float32 weight of 16 or 32 filters (and bias, if any), no padding, an (OH, OW) output
    whose rows are a multiple of ``PIXELS`` wide (and even in number for 16 filters, whose
    tile spans two rows), and fast vectors on this CPU."""
    return (simd.FAST_ON_THIS_CPU and type(x) is np.ndarray and x.dtype in (np.float32, np.uint8)
            and x.flags.c_contiguous and weight.dtype == np.float32
            and (bias is None or bias.dtype == np.float32)
            and weight.shape[0] in FILTERS and tuple(padding) == (0, 0)
            and out_size[1] % PIXELS == 0 and (weight.shape[0] == 32 or out_size[0] % 2 == 0))


def forward(x, weight_columns, bias, kernel, stride, scale: float, out_size):
    """``x`` (N, C, H, W) float32 or uint8, ``weight_columns`` (KH*KW*C, O) float32 with rows
    in (kh, kw, c) order (the layer's weight memory, rlkit/functions/conv.py), ``bias`` (O,) or
    None -> the (N, OH, OW, O) float32 output of ``scale * x`` cross-correlated with the weight,
    plus the bias."""
    n, o = x.shape[0], weight_columns.shape[1]
    oh, ow = out_size
    out = np.empty((n * oh * ow, o), np.float32)
    if bias is None:
        bias = np.zeros(o, np.float32)
    bias_row = np.ascontiguousarray(bias).reshape(1, o)
    convert = x.dtype != np.float32 or scale != 1
    compiled, scale = _kernel(*kernel, *stride, o // simd.LANES, convert), np.float32(scale)
    pixels = oh * ow
    threads.run(functools.partial(compiled, x[part], weight_columns, scale, bias_row, oh, ow,
                                  out[part.start * pixels:part.stop * pixels])
                for part in threads.split(n, MIN_SAMPLES_PER_THREAD))
    return out.reshape(n, oh, ow, o)


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _converted_sample(x, n, scale, frame):
    """Sample ``n`` of ``x`` as ``float32(x[n]) * scale`` in ``frame`` (a (C, H, W) float32
    buffer, L2-sized), which it returns: the product the block copy makes, so that uint8 frames
    give what the same frames scaled beforehand give. The kernels call it by its global name:
    a compiled function in a kernel's closure would change numba's cache key in every process."""
    source = x[n]
    channels, height, width = source.shape
    for c in range(channels):
        for r in range(height):
            for q in range(width):
                frame[c, r, q] = np.float32(source[c, r, q]) * scale
    return frame


@functools.lru_cache(maxsize=None)
def _kernel(kh: int, kw: int, sh: int, sw: int, vectors: int, convert: bool):
    """The kernel for one geometry and filter count, compiled with them as constants (the loops
    over the kernel window unroll, and only the tile for ``vectors`` vectors is built). A tile
    is 4 pixels of a row by 32 filters, or for 16 filters 4 pixels of two rows: 8 sums either
    way, each weight vector loaded once for 4 or 8 of them. For 16 filters one row (4 sums) ran
    at 0.95 of the blocks' time at batch 32 and 0.76 for one frame stack, two rows at 0.89 and
    0.64 (alternating, ad hoc). With ``convert`` (uint8 frames, or a scale) each sample is
    first converted and scaled into a float32 buffer: converting in each broadcast made the
    layer 1.5-1.6x slower than the blocks."""
    rows = 2 if vectors == 1 else 1
    second_lane = simd.LANES if vectors == 2 else 0

    @numba.njit(cache=True, nogil=True, boundscheck=False)
    def kernel(x, w, scale, bias, oh, ow, out):
        n_batch, channels, height, width = x.shape
        frame = np.empty((channels, height, width), np.float32)
        zero = splat(0.0)
        b0 = load(bias, 0, 0)
        b1 = load(bias, 0, second_lane)
        for n in range(n_batch):
            image = _converted_sample(x, n, scale, frame) if convert else x[n]
            for i in range(0, oh, rows):
                for j in range(0, ow, PIXELS):
                    # first sums: pixels j..j+3 of row i, filters 0-15; second sums: the same
                    # pixels' filters 16-31 (32 filters) or row i+1's filters 0-15 (16 filters)
                    p00, p10, p20, p30 = zero, zero, zero, zero
                    p01, p11, p21, p31 = zero, zero, zero, zero
                    # one input row at a time (its window columns read from L1), the weight
                    # rows in the layer's (kh, kw, c) order
                    for c in range(channels):
                        for a in range(kh):
                            row = image[c, i * sh + a]
                            next_row = image[c, (i + 1) * sh + a] if rows == 2 else row
                            for b in range(kw):
                                k = (a * kw + b) * channels + c
                                column = j * sw + b
                                w0 = load(w, k, 0)
                                v0 = splat(row[column])
                                v1 = splat(row[column + sw])
                                v2 = splat(row[column + 2 * sw])
                                v3 = splat(row[column + 3 * sw])
                                p00 = fma(v0, w0, p00)
                                p10 = fma(v1, w0, p10)
                                p20 = fma(v2, w0, p20)
                                p30 = fma(v3, w0, p30)
                                if rows == 2:
                                    v0 = splat(next_row[column])
                                    v1 = splat(next_row[column + sw])
                                    v2 = splat(next_row[column + 2 * sw])
                                    v3 = splat(next_row[column + 3 * sw])
                                    w1 = w0
                                else:
                                    w1 = load(w, k, simd.LANES)
                                p01 = fma(v0, w1, p01)
                                p11 = fma(v1, w1, p11)
                                p21 = fma(v2, w1, p21)
                                p31 = fma(v3, w1, p31)
                    pixel = (n * oh + i) * ow + j
                    second = pixel + ow if rows == 2 else pixel
                    store(out, pixel, 0, p00 + b0)
                    store(out, pixel + 1, 0, p10 + b0)
                    store(out, pixel + 2, 0, p20 + b0)
                    store(out, pixel + 3, 0, p30 + b0)
                    store(out, second, second_lane, p01 + b1)
                    store(out, second + 1, second_lane, p11 + b1)
                    store(out, second + 2, second_lane, p21 + b1)
                    store(out, second + 3, second_lane, p31 + b1)
    return kernel


def weight_gradient_applies(x, weight, bias, padding, out_size) -> bool:
    """Whether a recording forward may take :func:`forward` and leave its weight gradient to
    :func:`weight_gradient`: :func:`applies`, a kernel a multiple of 8 wide (and, for 16
    filters, an even number of rows high, as that tile spans two kernel rows)."""
    kh, kw = weight.shape[2:]
    return (applies(x, weight, bias, padding, out_size) and kw % KERNEL_COLUMNS == 0
            and (weight.shape[0] == 32 or kh % 2 == 0))


def weight_gradient(x, g_rows, kernel, stride, scale: float, out=None):
    """The weight gradient of :func:`forward`: ``x`` (N, C, H, W) float32 or uint8 as it was
    given, ``g_rows`` (N*OH*OW, O) float32, the output's gradient channels last -> the
    (KH*KW*C, O) float32 gradient of the weight columns (rows in (kh, kw, c) order), the input
    taken as ``scale * x`` exactly as the forward took it. Written into ``out`` when given (a
    C-contiguous (KH*KW*C, O) float32 array, overwritten)."""
    n, channels = x.shape[:2]
    o = g_rows.shape[1]
    oh = output_size(x.shape[2], kernel[0], stride[0], 0)
    ow = output_size(x.shape[3], kernel[1], stride[1], 0)
    shape = (kernel[0] * kernel[1] * channels, o)
    if g_rows.shape[0] != n * oh * ow:
        raise ValueError(f"weight_gradient: {g_rows.shape[0]} gradient rows for {n * oh * ow} "
                         "output pixels")
    if out is None:
        out = np.empty(shape, np.float32)
    elif out.shape != shape or out.dtype != np.float32 or not out.flags.c_contiguous:
        raise ValueError(f"weight_gradient: out must be C-contiguous float32 of shape {shape}")
    convert = x.dtype != np.float32 or scale != 1
    compiled = _weight_gradient_kernel(*kernel, *stride, o // simd.LANES, convert)
    scale = np.float32(scale)
    g_rows, pixels = np.ascontiguousarray(g_rows, np.float32), oh * ow
    # each part of the batch sums into an array of its own (the first into out), added up after
    parts = threads.split(n, MIN_SAMPLES_PER_THREAD)
    out.fill(0)
    sums = [out] + [np.zeros(shape, np.float32) for _ in parts[1:]]
    threads.run(functools.partial(compiled, x[part], g_rows[part.start * pixels:part.stop * pixels],
                                  scale, oh, ow, total)
                for part, total in zip(parts, sums))
    for total in sums[1:]:
        out += total
    return out


@functools.lru_cache(maxsize=None)
def _weight_gradient_kernel(kh: int, kw: int, sh: int, sw: int, vectors: int, convert: bool):
    """The forward's tile turned around: 16 sums of the weight gradient stay in registers (8
    kernel columns by 32 filters, or by 16 filters and two kernel rows) while the output pixels
    of a sample go by, each adding its output gradient's vector(s) times 8 (or 16) broadcast
    input values; the sums go back to ``out`` once per sample and tile. With 8 sums (4 kernel
    columns) the Nature layer's gradient took 1.21 times as long (alternating, ad hoc). Frames
    are converted and scaled a sample at a time, as in the forward."""
    rows = 2 if vectors == 1 else 1
    second_lane = simd.LANES if vectors == 2 else 0

    @numba.njit(cache=True, nogil=True, boundscheck=False)
    def kernel(x, g, scale, oh, ow, out):
        n_batch, channels, height, width = x.shape
        frame = np.empty((channels, height, width), np.float32)
        step = channels  # weight rows of neighbouring kernel columns are `channels` apart
        for n in range(n_batch):
            image = _converted_sample(x, n, scale, frame) if convert else x[n]
            first_pixel = n * oh * ow
            for c in range(channels):
                for a in range(0, kh, rows):
                    for b in range(0, kw, KERNEL_COLUMNS):
                        # first sums: weight rows of kernel offsets (a, b..b+7), filters 0-15;
                        # second sums: the same rows' filters 16-31 (32 filters) or the rows
                        # of (a+1, b..b+7) (16 filters)
                        k = (a * kw + b) * channels + c
                        m = ((a + 1) * kw + b) * channels + c if rows == 2 else k
                        p0, p1, p2, p3 = load(out, k, 0), load(out, k + step, 0), load(out, k + 2 * step, 0), load(out, k + 3 * step, 0)
                        p4, p5, p6, p7 = load(out, k + 4 * step, 0), load(out, k + 5 * step, 0), load(out, k + 6 * step, 0), load(out, k + 7 * step, 0)
                        q0, q1, q2, q3 = load(out, m, second_lane), load(out, m + step, second_lane), load(out, m + 2 * step, second_lane), load(out, m + 3 * step, second_lane)
                        q4, q5, q6, q7 = load(out, m + 4 * step, second_lane), load(out, m + 5 * step, second_lane), load(out, m + 6 * step, second_lane), load(out, m + 7 * step, second_lane)
                        for i in range(oh):
                            row = image[c, i * sh + a]
                            second_row = image[c, i * sh + a + 1] if rows == 2 else row
                            pixel = first_pixel + i * ow
                            for j in range(ow):
                                u = j * sw + b
                                g0 = load(g, pixel + j, 0)
                                g1 = g0 if rows == 2 else load(g, pixel + j, simd.LANES)
                                p0, p1 = fma(splat(row[u]), g0, p0), fma(splat(row[u + 1]), g0, p1)
                                p2, p3 = fma(splat(row[u + 2]), g0, p2), fma(splat(row[u + 3]), g0, p3)
                                p4, p5 = fma(splat(row[u + 4]), g0, p4), fma(splat(row[u + 5]), g0, p5)
                                p6, p7 = fma(splat(row[u + 6]), g0, p6), fma(splat(row[u + 7]), g0, p7)
                                q0, q1 = fma(splat(second_row[u]), g1, q0), fma(splat(second_row[u + 1]), g1, q1)
                                q2, q3 = fma(splat(second_row[u + 2]), g1, q2), fma(splat(second_row[u + 3]), g1, q3)
                                q4, q5 = fma(splat(second_row[u + 4]), g1, q4), fma(splat(second_row[u + 5]), g1, q5)
                                q6, q7 = fma(splat(second_row[u + 6]), g1, q6), fma(splat(second_row[u + 7]), g1, q7)
                        store(out, k, 0, p0), store(out, k + step, 0, p1), store(out, k + 2 * step, 0, p2), store(out, k + 3 * step, 0, p3)
                        store(out, k + 4 * step, 0, p4), store(out, k + 5 * step, 0, p5), store(out, k + 6 * step, 0, p6), store(out, k + 7 * step, 0, p7)
                        store(out, m, second_lane, q0), store(out, m + step, second_lane, q1), store(out, m + 2 * step, second_lane, q2), store(out, m + 3 * step, second_lane, q3)
                        store(out, m + 4 * step, second_lane, q4), store(out, m + 5 * step, second_lane, q5), store(out, m + 6 * step, second_lane, q6), store(out, m + 7 * step, second_lane, q7)
    return kernel
