"""Run a numba kernel on blocks of rows, one block per thread.

For kernels that take ``(*args, first, stop)`` and touch only rows ``first:stop`` (an LSTM's
batch rows, which never mix). The kernels are compiled with ``nogil``: the blocks run at once
on Python threads, which wait for work without spinning, so they leave the cores to OpenBLAS's
threads (and those to them) between calls. The thread count starts as numba's
(``NUMBA_NUM_THREADS``, else the CPU count) and follows :func:`rlkit.backend.set_num_threads`.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numba

# a block's rows are a multiple of this (the products' tile height, rlkit/kernels/row_gemm.py)
ROW_MULTIPLE = 4
_threads = numba.config.NUMBA_NUM_THREADS
_pool: ThreadPoolExecutor | None = None


def set_threads(n: int) -> None:
    """Use up to ``n`` threads (``n`` >= 1) from the next call on."""
    global _threads
    _threads = n


def row_blocks(rows: int, threads: int) -> list[tuple[int, int]]:
    """(first, stop) of up to ``threads`` blocks covering ``range(rows)``, all but the last of
    a size that is a multiple of ROW_MULTIPLE."""
    size = -(-rows // threads)
    size = -(-size // ROW_MULTIPLE) * ROW_MULTIPLE
    return [(first, min(rows, first + size)) for first in range(0, rows, size)]


def on_row_blocks(kernel, args: tuple, rows: int) -> None:
    """``kernel(*args, first, stop)`` for each block of ``range(rows)``, the blocks at once."""
    global _pool
    if rows == 0:
        return
    blocks = row_blocks(rows, _threads)
    if len(blocks) > 1 and _pool is None:
        # starts its threads as work needs them, up to one per CPU
        _pool = ThreadPoolExecutor(max_workers=os.cpu_count() or 1, thread_name_prefix="rlkit-rows")
    others = [_pool.submit(kernel, *args, first, stop) for first, stop in blocks[1:]]
    kernel(*args, *blocks[0])
    for other in others:
        other.result()


def _forget_pool() -> None:
    """In a forked child the pool's threads do not exist: make a new pool when one is needed."""
    global _pool
    _pool = None


os.register_at_fork(after_in_child=_forget_pool)
