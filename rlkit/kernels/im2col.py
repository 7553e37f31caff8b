"""im2col / col2im: unfold image patches into a matrix so convolution becomes one GEMM.

Layout (shared by every implementation), channels last: for an NHWC input and a (kh, kw)
window, ``cols[(n * oh + i) * ow + j, (a * kw + b) * c + ch] = x_padded[n, i * sh + a, j * sw + b, ch]``:
one row per output pixel and one column per (window row, window column, channel), which is
``weight.transpose(0, 2, 3, 1).reshape(out, -1)``'s column order. ``col2im`` is the adjoint:
it adds every entry back to the pixel it came from (overlapping windows accumulate).

Why channels last: each row is kh runs of kw * C values that lie next to each other in the
input, so both kernels move contiguous runs. In the channels-first layout (one row per
(channel, window row, window column)) every run was one output row (7 to 20 values) read at
the stride. Measured on the 2-core Zen 5, batch 256 (ms, channels first -> last): the Nature
CNN's 4x4/2 layer im2col 12.3 -> 5.4 and col2im 10.8 -> 2.8, its 3x3/1 layer 6.2 -> 2.1 and
7.2 -> 1.5; the NCHW <-> NHWC transposes around them then cost 0.2-2.3 ms each (gone since
convolutions hand their outputs on channels last: rlkit/functions/conv.py).

How each runs:
- im2col is one strided view plus one copy, on NumPy and CuPy alike.
- col2im is a numba kernel on the CPU (scatter-add) and one strided add per window offset on
  CuPy. The kernel runs on one thread: a numba thread pool beside OpenBLAS's made the pools
  spin against each other (a batch-1 forward went from 0.4 ms to 24 ms), and on the engine's
  own threads (rlkit/threads.py) it lost 2-7% of the DQN train step, because it runs right
  after its product, while OpenBLAS's workers still spin.
"""
from __future__ import annotations

import numba
import numpy as np

from rlkit.backend import get_array_module


def output_size(size: int, kernel: int, stride: int, padding: int) -> int:
    """Number of window positions along one axis (floor mode, like PyTorch)."""
    return (size + 2 * padding - kernel) // stride + 1


def _geometry(x_shape, kernel, stride, padding):
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    n, h, w, c = x_shape
    return n, h, w, c, kh, kw, sh, sw, ph, pw, output_size(h, kh, sh, ph), output_size(w, kw, sw, pw)


def im2col(x, kernel, stride, padding, fill=0.0):
    """Unfold ``x`` (N, H, W, C) into ``cols`` (N * OH * OW, KH * KW * C), NumPy or CuPy.

    ``kernel``, ``stride`` and ``padding`` are (height, width) pairs; padded pixels read ``fill``
    (0 for convolution, -inf for max-pooling).
    """
    xp = get_array_module(x)
    n, _, _, c, kh, kw, sh, sw, ph, pw, oh, ow = _geometry(x.shape, kernel, stride, padding)
    if ph or pw:
        x = xp.pad(x, ((0, 0), (ph, ph), (pw, pw), (0, 0)), mode="constant", constant_values=fill)
    x = xp.ascontiguousarray(x)
    s_n, s_h, s_w, s_c = x.strides
    shape, strides = (n, oh, ow, kh, kw, c), (s_n, s_h * sh, s_w * sw, s_h, s_w, s_c)
    if xp is np:  # the ndarray constructor: 0.5 us, where as_strided's checks took 4 (2-core Xeon)
        windows = np.ndarray(shape, x.dtype, x, 0, strides)
    else:
        windows = xp.lib.stride_tricks.as_strided(x, shape=shape, strides=strides)
    return xp.ascontiguousarray(windows).reshape(n * oh * ow, kh * kw * c)


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _col2im_numba(cols, kh, kw, sh, sw, ph, pw, oh, ow, out):
    n_batch, height, width, channels = out.shape
    for n in range(n_batch):
        for i in range(oh):
            for j in range(ow):
                row = (n * oh + i) * ow + j
                for a in range(kh):
                    y = i * sh + a - ph
                    if y < 0 or y >= height:
                        continue
                    for b in range(kw):
                        xx = j * sw + b - pw
                        if 0 <= xx < width:
                            base = (a * kw + b) * channels
                            for ch in range(channels):
                                out[n, y, xx, ch] += cols[row, base + ch]


def col2im_arrays(cols, x_shape, kernel, stride, padding):
    """Array-op col2im (NumPy or CuPy): one strided add per window offset."""
    xp = get_array_module(cols)
    n, h, w, c, kh, kw, sh, sw, ph, pw, oh, ow = _geometry(x_shape, kernel, stride, padding)
    patches = cols.reshape(n, oh, ow, kh, kw, c)
    padded = xp.zeros((n, h + 2 * ph, w + 2 * pw, c), dtype=cols.dtype)
    for a in range(kh):
        for b in range(kw):
            padded[:, a:a + sh * oh:sh, b:b + sw * ow:sw] += patches[:, :, :, a, b]
    return padded[:, ph:ph + h, pw:pw + w]


def col2im(cols, x_shape, kernel, stride, padding, out=None):
    """Fold ``cols`` (N * OH * OW, KH * KW * C) back into an (N, H, W, C) array, summing
    overlaps: a new one, or ``out`` (contiguous, of shape ``x_shape``), overwritten."""
    if get_array_module(cols) is not np:
        folded = col2im_arrays(cols, x_shape, kernel, stride, padding)
        if out is None:
            return folded
        out[...] = folded
        return out
    n, h, w, c, kh, kw, sh, sw, ph, pw, oh, ow = _geometry(x_shape, kernel, stride, padding)
    if out is None:
        out = np.zeros(x_shape, dtype=cols.dtype)
    else:
        out.fill(0)
    _col2im_numba(np.ascontiguousarray(cols), kh, kw, sh, sw, ph, pw, oh, ow, out)
    return out
