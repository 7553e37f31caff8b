"""Convolution on space-to-depth blocks, for kernels one or two strides wide and no padding.

When each kernel side is m = 1 or 2 strides (kh = mh * sh, kw = mw * sw), cut the input into
sh x sw blocks: ``X[(c, q, r), (n, I, J)] = x[n, c, I * sh + q, J * sw + r]``. Window (i, j)
covers blocks (i + p, j + pp) for p < mh, pp < mw, so with the weight split the same way,
``W[(p, pp, o), (c, q, r)] = w[o, c, p * sh + q, pp * sw + r]``, one GEMM ``Y = X^T @ W^T``
gives every block's contribution, channels last, and the output (channels last too, as the
convolutions in rlkit/functions/conv.py keep their outputs) is a sum of mh * mw shifted
slices of Y: ``out[n, i, j, o] = sum_{p, pp} Y[n, i + p, j + pp, p, pp, o]``.

Why: im2col copies every input pixel (kh / sh) * (kw / sw) times; the blocks are one
transposing copy of the input. Measured on a 2-core machine for the Nature CNN under no_grad,
against the channels-first im2col of that time: batch 32 forward 8.2 -> 7.0 ms (the 8x8/4
first layer 3.4 -> 2.5 ms), but batch 1 0.39 -> 0.48 ms (more small calls). With a gradient
for the input the backward through blocks (a shifted scatter of the input gradient too) cost
more than the forward saved. Since im2col went channels last (rows of kw * C adjacent values),
it is as fast or faster for inputs of many channels, so Conv2d uses blocks only for forwards
of few input channels (``BLOCKS_MAX_CHANNELS``: frame stacks) whose input needs no gradient
(target networks, evaluation, a first layer on data: only the weight gradient,
``shift_scatter`` of the output gradient then one GEMM), a batch chunk at a time
(``CHUNK_BYTES``: Y is mh * mw times the output), and im2col otherwise. Since the kernels
below are compiled per stride, the blocks win from a single frame on (the Nature first layer
at batch 1: 0.21 ms on im2col, 0.16 ms on blocks, 2-core Xeon).

``to_blocks``, ``shift_add`` and ``shift_scatter`` are numba loops on the CPU (serial, like
col2im, for the same reason) and array ops on CuPy.
"""
from __future__ import annotations

import functools

import numba
import numpy as np

from rlkit.backend import get_array_module


def block_factors(kernel, stride, padding):
    """(mh, mw) kernel sides in strides when the block path applies (no padding, each side
    1 or 2 strides), else None."""
    if tuple(padding) != (0, 0):
        return None
    factors = []
    for k, s in zip(kernel, stride):
        if k % s or k // s > 2:
            return None
        factors.append(k // s)
    return tuple(factors)


def block_counts(out_size, factors):
    """Blocks per axis the output needs: (OH + mh - 1, OW + mw - 1)."""
    return tuple(o + m - 1 for o, m in zip(out_size, factors))


@functools.lru_cache(maxsize=None)
def _to_blocks_kernel(sh: int, sw: int):
    """The numba ``to_blocks`` loop for stride (sh, sw), compiled with the stride as a constant
    so that LLVM vectorises the strided reads: 0.55 -> 0.26 ms for a batch of 32 uint8 frame
    stacks at stride 4 (2-core Xeon)."""
    @numba.njit(cache=True, nogil=True, boundscheck=False)
    def kernel(x, scale, out):
        channels, _, _, n_batch, bh, bw = out.shape
        for c in range(channels):
            for q in range(sh):
                for r in range(sw):
                    for n in range(n_batch):
                        for i in range(bh):
                            row = x[n, c, i * sh + q]
                            for j in range(bw):
                                out[c, q, r, n, i, j] = row[j * sw + r] * scale
    return kernel


def to_blocks(x, stride, blocks, scale=1.0, dtype=None):
    """``x`` (N, C, H, W) of any real dtype -> X (C * sh * sw, N * bh * bw) of ``dtype`` (x's
    by default), each value times ``scale``; pixels past bh * sh rows or bw * sw columns (which
    no window reaches) are dropped.

    On the CPU one serial numba pass converts, scales and moves each value (uint8 frames are
    read as they are: no float copy of the batch first). Measured on the 2-core Xeon, batch 32 of
    (4, 84, 84) frames at stride 4: 1.1 ms for NumPy's transposing copy of a float32 batch
    after 0.5 ms for its conversion, 0.26 ms for the kernel on the uint8 batch. CuPy: one
    transposing copy with the conversion, then the scale.
    """
    xp = get_array_module(x)
    dtype = np.dtype(x.dtype if dtype is None else dtype)
    n, c = x.shape[:2]
    (sh, sw), (bh, bw) = stride, blocks
    if xp is np:
        out = np.empty((c, sh, sw, n, bh, bw), dtype)
        _to_blocks_kernel(sh, sw)(x, dtype.type(scale), out)
    else:
        view = x[:, :, :bh * sh, :bw * sw].reshape(n, c, bh, sh, bw, sw).transpose(1, 3, 5, 0, 2, 4)
        out = xp.ascontiguousarray(view, dtype=dtype)
        if scale != 1:
            out *= dtype.type(scale)
    return out.reshape(c * sh * sw, n * bh * bw)


@functools.lru_cache(maxsize=None)
def _block_weight_kernel(sh: int, sw: int, mh: int, mw: int):
    """The numba ``block_weight`` loop for stride (sh, sw) and factors (mh, mw), compiled with
    them as constants: 5 us for the Nature first layer's weight, where NumPy's six-axis
    transposing copy took 24 us (2-core Xeon, ad hoc; a batch-1 forward is about 850 us)."""
    @numba.njit(cache=True, nogil=True, boundscheck=False)
    def kernel(weight, out):
        n_out, channels = weight.shape[0], weight.shape[1]
        for p in range(mh):
            for pp in range(mw):
                for o in range(n_out):
                    row = out[(p * mw + pp) * n_out + o]
                    for c in range(channels):
                        for q in range(sh):
                            for r in range(sw):
                                row[(c * sh + q) * sw + r] = weight[o, c, p * sh + q, pp * sw + r]
    return kernel


def block_weight_arrays(weight, stride, factors):
    """Array-op twin of the ``block_weight`` kernel (NumPy or CuPy): one transposing copy."""
    o, c = weight.shape[:2]
    (sh, sw), (mh, mw) = stride, factors
    split = weight.reshape(o, c, mh, sh, mw, sw).transpose(2, 4, 0, 1, 3, 5)
    return get_array_module(weight).ascontiguousarray(split).reshape(mh * mw * o, c * sh * sw)


def block_weight(weight, stride, factors):
    """``weight`` (O, C, KH, KW) -> (mh * mw * O, C * sh * sw), rows in (p, pp, o) order."""
    if get_array_module(weight) is not np:
        return block_weight_arrays(weight, stride, factors)
    o, c = weight.shape[:2]
    (sh, sw), (mh, mw) = stride, factors
    out = np.empty((mh * mw * o, c * sh * sw), dtype=weight.dtype)
    _block_weight_kernel(sh, sw, mh, mw)(weight, out)
    return out


@functools.lru_cache(maxsize=None)
def _shift_add_kernel(mh: int, mw: int):
    """The numba ``shift_add`` loop for factors (mh, mw), compiled with them as constants; the
    innermost loop runs along the channels, contiguous in Y and in the output, each output summed
    in a register (one pass per shifted slice instead took 0.69 ms against 0.54 for a batch of
    80 through a 16-filter first layer, 2-core Xeon, ad hoc)."""
    @numba.njit(cache=True, nogil=True, boundscheck=False)
    def kernel(y, bias, out):
        n_batch, oh, ow, channels = out.shape
        for n in range(n_batch):
            for i in range(oh):
                for j in range(ow):
                    pixel = out[n, i, j]
                    for o in range(channels):
                        total = bias[o]
                        for p in range(mh):
                            for q in range(mw):
                                total += y[n, i + p, j + q, p, q, o]
                        pixel[o] = total
    return kernel


def shift_add_arrays(y, out_shape):
    """Array-op ``shift_add`` (NumPy or CuPy), without bias."""
    _, oh, ow, _ = out_shape
    mh, mw = y.shape[3:5]
    return sum(y[:, p:p + oh, q:q + ow, p, q] for p in range(mh) for q in range(mw))


def shift_add(y, out, bias=None):
    """Y (N, bh, bw, mh, mw, O) -> ``out`` (N, OH, OW, O), a contiguous array it overwrites and
    returns: ``out[n, i, j, o] = sum_{p, pp} Y[n, i + p, j + pp, p, pp, o] + bias[o]`` (no bias
    term when ``bias`` is None)."""
    xp = get_array_module(y)
    if xp is not np:
        out[...] = shift_add_arrays(y, out.shape)
        if bias is not None:
            out += bias
        return out
    if bias is None:
        bias = np.zeros(y.shape[-1], out.dtype)
    _shift_add_kernel(*y.shape[3:5])(y, bias, out)
    return out


@functools.lru_cache(maxsize=None)
def _shift_scatter_kernel(mh: int, mw: int):
    """The numba ``shift_scatter`` loop for factors (mh, mw): each run of dY's channels written
    once, with zeros where no output reads the block."""
    @numba.njit(cache=True, nogil=True, boundscheck=False)
    def kernel(g, dy):
        n_batch, oh, ow, channels = g.shape
        bh, bw = dy.shape[1], dy.shape[2]
        for n in range(n_batch):
            for i in range(bh):
                for j in range(bw):
                    for p in range(mh):
                        for q in range(mw):
                            run = dy[n, i, j, p, q]
                            if i < p or i - p >= oh or j < q or j - q >= ow:
                                for o in range(channels):
                                    run[o] = 0
                            else:
                                source = g[n, i - p, j - q]
                                for o in range(channels):
                                    run[o] = source[o]
    return kernel


def shift_scatter_arrays(g, factors, blocks):
    """Array-op ``shift_scatter`` (NumPy or CuPy)."""
    xp = get_array_module(g)
    n, oh, ow, o = g.shape
    (mh, mw), (bh, bw) = factors, blocks
    dy = xp.zeros((n, bh, bw, mh, mw, o), dtype=g.dtype)
    for p in range(mh):
        for q in range(mw):
            dy[:, p:p + oh, q:q + ow, p, q] = g
    return dy.reshape(n * bh * bw, mh * mw * o)


def shift_scatter(g, factors, blocks):
    """The adjoint of ``shift_add``: g (N, OH, OW, O) -> dY (N * bh * bw, mh * mw * O) with
    ``dY[(n, i + p, j + pp), (p, pp, o)] = g[n, i, j, o]`` (zero where no output reads a
    block)."""
    if get_array_module(g) is not np:
        return shift_scatter_arrays(g, factors, blocks)
    n, _, _, o = g.shape
    (mh, mw), (bh, bw) = factors, blocks
    dy = np.empty((n, bh, bw, mh, mw, o), g.dtype)
    _shift_scatter_kernel(mh, mw)(np.ascontiguousarray(g), dy)
    return dy.reshape(n * bh * bw, mh * mw * o)


def unblock_weight(w_blocks, weight_shape, stride, factors):
    """The inverse of ``block_weight``: (mh * mw * O, C * sh * sw) -> (O, C, KH, KW), its
    memory (KH, KW, C, O), as Conv2d layers store their weights."""
    o, c, kh, kw = weight_shape
    (sh, sw), (mh, mw) = stride, factors
    split = w_blocks.reshape(mh, mw, o, c, sh, sw).transpose(0, 4, 1, 5, 3, 2)
    memory = get_array_module(w_blocks).ascontiguousarray(split).reshape(kh, kw, c, o)
    return memory.transpose(3, 2, 0, 1)
