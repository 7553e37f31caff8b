"""The product of a few rows by a weight matrix, for a recurrence's per-step products.

An LSTM step multiplies its batch's state rows, (N, K) with N about 32, by the same (K, M)
weight at every step. BLAS re-packs the weight on every call and splits the small product over
its threads; this kernel takes the weight packed by :func:`pack_panels` (once per pass over a
sequence, forward or backward, in rlkit/functions/recurrent.py) and runs on one thread. Measured for 32 x 128 @ 128 x 512 on the 2-core Xeon (ad hoc), before the packing:
OpenBLAS 55-69 us on one thread and 49-67 us on two, this kernel 54-67 us on one thread;
32 x 512 @ 512 x 128, the backward's, 60 us against 68. Packed, the 32 products of an LSTM's
forward took 0.85 of the unpacked kernel's time, those of its backward 0.83-0.86 (alternating,
ad hoc). It is no general GEMM: on the Nature CNN's im2col products (thousands of rows,
K = 512-576) it ran at 41-54 GFLOP/s (unpacked, two threads) and 61 (packed, one thread)
against OpenBLAS's 106-132 on two threads.

The tile is 4 rows by 64 columns: 16 vector sums stay in registers while k runs over the shared
dimension, each step loading 4 vectors of the weight's row k and 4 scalars of ``a``, for 16
fused multiply-adds (rlkit/kernels/simd.py). Tiles at the edges (rows not a multiple of 4,
columns not a multiple of 64) repeat their last row or 16 columns instead of branching: the
repeated lanes compute and store the same values twice.

Why packed panels: the 64 columns a tile reads, for 128 values of k, are 32 KB, and every row
tile of the batch reads them again, so they should stay in the 48 KB L1 cache. Read from the
weight's own rows (2 KB apart for M = 512) they fall into 8 of its 64 sets and evict each other
on every pass; stored as one contiguous (K, 64) panel they fit. The shared dimension is taken
in blocks of 128 for the same reason (the backward's K = 4H = 512).
"""
from __future__ import annotations

import numba
import numpy as np

from rlkit.kernels.simd import fma, load, splat, store

TILE_ROWS, PANEL_COLUMNS, SHARED_BLOCK = 4, 64, 128


def pack_panels(b) -> np.ndarray:
    """``b`` (K, M), any layout and real dtype -> float32 panels (ceil(M / 64), K, 64),
    contiguous: panel p holds columns 64p .. 64p + 63, zeros past M."""
    shared, columns = b.shape
    n_panels = -(-columns // PANEL_COLUMNS)
    padded = np.zeros((shared, n_panels * PANEL_COLUMNS), np.float32)
    padded[:, :columns] = b
    return np.ascontiguousarray(padded.reshape(shared, n_panels, PANEL_COLUMNS).transpose(1, 0, 2))


@numba.njit(cache=True, nogil=True, boundscheck=False)
def matmul_rows(a, panels, out, accumulate):
    """``out (+)= a @ b`` for float32 ``a`` (N, K) with any strides, ``b`` (K, M) given as
    :func:`pack_panels` made it, and ``out`` (N, M), M a multiple of 16, its rows contiguous
    (any row stride). Adds to ``out`` when ``accumulate``, else overwrites it."""
    shared, columns = a.shape[1], out.shape[1]
    if columns < 16 or columns % 16 or out.strides[1] != 4:
        raise ValueError("matmul_rows: out needs a multiple of 16 columns, contiguous in rows")
    if panels.shape[1] != shared or panels.shape[2] != PANEL_COLUMNS or \
            panels.shape[0] * PANEL_COLUMNS < columns:
        raise ValueError("matmul_rows: the panels are not those of a (K, M) weight")
    last_row, last_column = a.shape[0] - 1, columns - 16
    for j in range(0, columns, PANEL_COLUMNS):
        panel = panels[j // PANEL_COLUMNS]
        # the tile's 4 column offsets in the panel, the last ones clamped inside the matrix
        j0, j1, j2, j3 = 0, min(j + 16, last_column) - j, min(j + 32, last_column) - j, \
            min(j + 48, last_column) - j
        for k_start in range(0, max(shared, 1), SHARED_BLOCK):  # K = 0: one pass of zeros
            k_stop = min(k_start + SHARED_BLOCK, shared)
            add = accumulate or k_start > 0
            for i in range(0, a.shape[0], TILE_ROWS):
                i0, i1, i2, i3 = i, min(i + 1, last_row), min(i + 2, last_row), min(i + 3, last_row)
                if add:
                    s00, s01, s02, s03 = load(out, i0, j + j0), load(out, i0, j + j1), load(out, i0, j + j2), load(out, i0, j + j3)
                    s10, s11, s12, s13 = load(out, i1, j + j0), load(out, i1, j + j1), load(out, i1, j + j2), load(out, i1, j + j3)
                    s20, s21, s22, s23 = load(out, i2, j + j0), load(out, i2, j + j1), load(out, i2, j + j2), load(out, i2, j + j3)
                    s30, s31, s32, s33 = load(out, i3, j + j0), load(out, i3, j + j1), load(out, i3, j + j2), load(out, i3, j + j3)
                else:
                    zero = splat(0.0)
                    s00 = s01 = s02 = s03 = s10 = s11 = s12 = s13 = zero
                    s20 = s21 = s22 = s23 = s30 = s31 = s32 = s33 = zero
                for k in range(k_start, k_stop):
                    b0, b1, b2, b3 = load(panel, k, j0), load(panel, k, j1), load(panel, k, j2), load(panel, k, j3)
                    x = splat(a[i0, k])
                    s00, s01, s02, s03 = fma(x, b0, s00), fma(x, b1, s01), fma(x, b2, s02), fma(x, b3, s03)
                    x = splat(a[i1, k])
                    s10, s11, s12, s13 = fma(x, b0, s10), fma(x, b1, s11), fma(x, b2, s12), fma(x, b3, s13)
                    x = splat(a[i2, k])
                    s20, s21, s22, s23 = fma(x, b0, s20), fma(x, b1, s21), fma(x, b2, s22), fma(x, b3, s23)
                    x = splat(a[i3, k])
                    s30, s31, s32, s33 = fma(x, b0, s30), fma(x, b1, s31), fma(x, b2, s32), fma(x, b3, s33)
                store(out, i0, j + j0, s00), store(out, i0, j + j1, s01), store(out, i0, j + j2, s02), store(out, i0, j + j3, s03)
                store(out, i1, j + j0, s10), store(out, i1, j + j1, s11), store(out, i1, j + j2, s12), store(out, i1, j + j3, s13)
                store(out, i2, j + j0, s20), store(out, i2, j + j1, s21), store(out, i2, j + j2, s22), store(out, i2, j + j3, s23)
                store(out, i3, j + j0, s30), store(out, i3, j + j1, s31), store(out, i3, j + j2, s32), store(out, i3, j + j3, s33)
