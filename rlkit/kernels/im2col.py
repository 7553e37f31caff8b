"""im2col / col2im: unfold image patches into matrix rows so convolution becomes one GEMM.

Layout (shared by every implementation): for an NCHW input and a (kh, kw) window,
``cols[(n * oh + i) * ow + j, (c * kh + a) * kw + b] = x_padded[n, c, i * sh + a, j * sw + b]``,
i.e. one row per output pixel, one column per (channel, window row, window column), which is
exactly ``weight.reshape(out_channels, -1)``'s column order. ``col2im`` is the adjoint: it adds
every row entry back to the pixel it came from (overlapping windows accumulate).

On NumPy arrays the numba kernels run (parallel over the batch); on CuPy (or when asked, for
tests) the array-op versions loop over the kh * kw window offsets with strided slices.
"""
from __future__ import annotations

import numba
import numpy as np

from rlkit.backend import get_array_module


def output_size(size: int, kernel: int, stride: int, padding: int) -> int:
    """Number of window positions along one axis (floor mode, like PyTorch)."""
    return (size + 2 * padding - kernel) // stride + 1


@numba.njit(parallel=True, cache=True)
def _im2col_numba(x, kh, kw, sh, sw, ph, pw, oh, ow, fill, cols):
    n_batch, channels, height, width = x.shape
    for n in numba.prange(n_batch):
        for i in range(oh):
            for j in range(ow):
                row = (n * oh + i) * ow + j
                col = 0
                for c in range(channels):
                    for a in range(kh):
                        y = i * sh + a - ph
                        for b in range(kw):
                            xx = j * sw + b - pw
                            if 0 <= y < height and 0 <= xx < width:
                                cols[row, col] = x[n, c, y, xx]
                            else:
                                cols[row, col] = fill
                            col += 1


@numba.njit(parallel=True, cache=True)
def _col2im_numba(cols, kh, kw, sh, sw, ph, pw, oh, ow, out):
    n_batch, channels, height, width = out.shape
    for n in numba.prange(n_batch):
        for i in range(oh):
            for j in range(ow):
                row = (n * oh + i) * ow + j
                col = 0
                for c in range(channels):
                    for a in range(kh):
                        y = i * sh + a - ph
                        for b in range(kw):
                            xx = j * sw + b - pw
                            if 0 <= y < height and 0 <= xx < width:
                                out[n, c, y, xx] += cols[row, col]
                            col += 1


def _window_slices(a: int, b: int, oh: int, ow: int, sh: int, sw: int):
    return (slice(None), slice(None), slice(a, a + sh * oh, sh), slice(b, b + sw * ow, sw))


def im2col_arrays(x, kernel, stride, padding, fill=0.0):
    """Array-op im2col (NumPy or CuPy): a loop over the kh * kw window offsets."""
    xp = get_array_module(x)
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    n, c, h, w = x.shape
    oh, ow = output_size(h, kh, sh, ph), output_size(w, kw, sw, pw)
    padded = xp.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), mode="constant", constant_values=fill)
    patches = xp.empty((n, oh, ow, c, kh, kw), dtype=x.dtype)
    for a in range(kh):
        for b in range(kw):
            patches[:, :, :, :, a, b] = padded[_window_slices(a, b, oh, ow, sh, sw)].transpose(0, 2, 3, 1)
    return patches.reshape(n * oh * ow, c * kh * kw)


def col2im_arrays(cols, x_shape, kernel, stride, padding):
    """Array-op col2im (NumPy or CuPy), the adjoint of :func:`im2col_arrays`."""
    xp = get_array_module(cols)
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    n, c, h, w = x_shape
    oh, ow = output_size(h, kh, sh, ph), output_size(w, kw, sw, pw)
    patches = cols.reshape(n, oh, ow, c, kh, kw)
    padded = xp.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=cols.dtype)
    for a in range(kh):
        for b in range(kw):
            padded[_window_slices(a, b, oh, ow, sh, sw)] += patches[:, :, :, :, a, b].transpose(0, 3, 1, 2)
    return padded[:, :, ph:ph + h, pw:pw + w]


def im2col(x, kernel, stride, padding, fill=0.0):
    """Unfold ``x`` (N, C, H, W) into ``cols`` (N * OH * OW, C * KH * KW).

    ``kernel``, ``stride`` and ``padding`` are (height, width) pairs; padded pixels read ``fill``
    (0 for convolution, -inf for max-pooling).
    """
    if get_array_module(x) is not np:
        return im2col_arrays(x, kernel, stride, padding, fill)
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    n, c, h, w = x.shape
    oh, ow = output_size(h, kh, sh, ph), output_size(w, kw, sw, pw)
    cols = np.empty((n * oh * ow, c * kh * kw), dtype=x.dtype)
    _im2col_numba(x, kh, kw, sh, sw, ph, pw, oh, ow, x.dtype.type(fill), cols)
    return cols


def col2im(cols, x_shape, kernel, stride, padding):
    """Fold ``cols`` (N * OH * OW, C * KH * KW) back into an (N, C, H, W) array, summing overlaps."""
    if get_array_module(cols) is not np:
        return col2im_arrays(cols, x_shape, kernel, stride, padding)
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    n, c, h, w = x_shape
    oh, ow = output_size(h, kh, sh, ph), output_size(w, kw, sw, pw)
    out = np.zeros(x_shape, dtype=cols.dtype)
    _col2im_numba(np.ascontiguousarray(cols), kh, kw, sh, sw, ph, pw, oh, ow, out)
    return out
