"""The product of a few rows by a weight matrix, for a recurrence's per-step products.

An LSTM step multiplies its batch's state rows, (N, K) with N about 32, by the same (K, M)
weight at every step. BLAS re-packs the weight on every call and splits the small product over
its threads; measured for 32 x 128 @ 128 x 512 on the 2-core Xeon (ad hoc): OpenBLAS 55-69 us
on one thread and 49-67 us on two, this kernel 54-67 us on one thread, at the FMA rate
OpenBLAS reaches on large products (78 against 81-83 GFLOP/s); 32 x 512 @ 512 x 128, the
backward's, 60 us against 68. It packs nothing, so it is no general GEMM: on the Nature CNN's
im2col products (thousands of rows, K = 512-576, the weight streamed from L2 for every 4 rows)
it ran at 41-54 GFLOP/s on two threads against OpenBLAS's 118-132.

The tile is 4 rows by 64 columns: 16 vector sums stay in registers while k runs over the shared
dimension, each step loading 4 vectors of the weight's row k and 4 scalars of ``a``, for 16
fused multiply-adds (rlkit/kernels/simd.py). Tiles at the edges (rows not a multiple of 4,
columns not a multiple of 64) repeat their last row or 16 columns instead of branching: the
repeated lanes compute and store the same values twice.
"""
from __future__ import annotations

import numba

from rlkit.kernels.simd import fma, load, splat, store

TILE_ROWS, TILE_COLUMNS = 4, 64


@numba.njit(cache=True, nogil=True, boundscheck=False)
def matmul_rows(a, b, out, accumulate):
    """``out (+)= a @ b`` for float32 ``a`` (N, K), ``b`` (K, M) and
    ``out`` (N, M), M a multiple of 16; ``b`` and ``out`` with contiguous rows (any row
    stride), ``a`` any strides. Adds to ``out`` when ``accumulate``, else overwrites it."""
    shared, columns = a.shape[1], b.shape[1]
    if columns < 16 or columns % 16 or b.strides[1] != 4 or out.strides[1] != 4:
        raise ValueError("matmul_rows: b and out need a multiple of 16 columns, contiguous in rows")
    last_row, last_column = a.shape[0] - 1, columns - 16
    for j in range(0, columns, TILE_COLUMNS):
        # the tile's 4 column offsets, the last ones clamped inside the matrix
        j0, j1, j2, j3 = j, min(j + 16, last_column), min(j + 32, last_column), min(j + 48, last_column)
        for i in range(0, a.shape[0], TILE_ROWS):
            i0, i1, i2, i3 = i, min(i + 1, last_row), min(i + 2, last_row), min(i + 3, last_row)
            if accumulate:
                s00, s01, s02, s03 = load(out, i0, j0), load(out, i0, j1), load(out, i0, j2), load(out, i0, j3)
                s10, s11, s12, s13 = load(out, i1, j0), load(out, i1, j1), load(out, i1, j2), load(out, i1, j3)
                s20, s21, s22, s23 = load(out, i2, j0), load(out, i2, j1), load(out, i2, j2), load(out, i2, j3)
                s30, s31, s32, s33 = load(out, i3, j0), load(out, i3, j1), load(out, i3, j2), load(out, i3, j3)
            else:
                zero = splat(0.0)
                s00 = s01 = s02 = s03 = s10 = s11 = s12 = s13 = zero
                s20 = s21 = s22 = s23 = s30 = s31 = s32 = s33 = zero
            for k in range(shared):
                b0, b1, b2, b3 = load(b, k, j0), load(b, k, j1), load(b, k, j2), load(b, k, j3)
                x = splat(a[i0, k])
                s00, s01, s02, s03 = fma(x, b0, s00), fma(x, b1, s01), fma(x, b2, s02), fma(x, b3, s03)
                x = splat(a[i1, k])
                s10, s11, s12, s13 = fma(x, b0, s10), fma(x, b1, s11), fma(x, b2, s12), fma(x, b3, s13)
                x = splat(a[i2, k])
                s20, s21, s22, s23 = fma(x, b0, s20), fma(x, b1, s21), fma(x, b2, s22), fma(x, b3, s23)
                x = splat(a[i3, k])
                s30, s31, s32, s33 = fma(x, b0, s30), fma(x, b1, s31), fma(x, b2, s32), fma(x, b3, s33)
            store(out, i0, j0, s00), store(out, i0, j1, s01), store(out, i0, j2, s02), store(out, i0, j3, s03)
            store(out, i1, j0, s10), store(out, i1, j1, s11), store(out, i1, j2, s12), store(out, i1, j3, s13)
            store(out, i2, j0, s20), store(out, i2, j1, s21), store(out, i2, j2, s22), store(out, i2, j3, s23)
            store(out, i3, j0, s30), store(out, i3, j1, s31), store(out, i3, j2, s32), store(out, i3, j3, s33)
