"""The engine's own threads (opt-in): each large op split into parts that run at once, BLAS on
one thread.

By default BLAS threads each GEMM on its own (OpenBLAS on all cores) and everything between
the GEMMs (im2col and col2im copies, ReLU, the optimiser: numba and NumPy passes) runs on one
core. A second pool beside OpenBLAS's cannot help: its idle workers spin for about 0.1 s
after each product (``OPENBLAS_THREAD_TIMEOUT``, read only when NumPy loads) and hold the other
core (splitting the im2col copy of the Nature CNN's second layer over two Python threads
between OpenBLAS's GEMMs made it 1.4-1.6x slower, 2-core Xeon).

``RLKIT_OWN_THREADS=1`` in the environment (or :func:`set_threads`) turns this module on: BLAS
goes to one thread, and the engine splits the work of each large op itself. One part of a
convolution's batch gets its im2col, GEMM and bias on one thread while the other part runs on
the other; products split along their longer side (:func:`matmul`); ReLU and the optimisers
split their arrays. It runs as many threads as BLAS had when it was turned on (the cores, or
``OPENBLAS_NUM_THREADS`` and its kin). Off, :func:`threads` is 1 and every split is one call on
the calling thread.

Where it stands (2-core Xeon, ``bench_revisions.py`` against the default, README, twelfth
session): the DQN, PPO and A2C updates 0.91-0.96 of their time, the MLP step 1.08-1.32 (per-call
overhead), the batch-1 forward (acting) 1.2-1.6x slower: its small products gain nothing from
two threads of Python hand-offs, which OpenBLAS's own threads do cheaply. In the real DQN loop
(``bench_dqn.py``) it gained nothing. Hence opt-in, for the machines whose updates scale worst
on OpenBLAS's threads (the AVX2 Zen 3) to measure.

Each part but the last goes to a worker thread that sleeps on a queue; the last runs on the
calling thread, and :func:`run` returns when all are done. The parts' calls must release the
GIL to run at once: NumPy's matrix products, copies and ufuncs and the ``nogil`` numba kernels
do, but not ``np.matmul``'s matrix-vector products (see :func:`matmul`).
"""
from __future__ import annotations

import os
import queue
import threading

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from rlkit.backend import get_array_module

# multiply-adds below which a product is not split: about 40 us of one core's GEMM. Handing a
# part to a worker and waiting for it took 10-16 us (2-core Xeon), and splitting the Nature
# CNN's batch-1 convolutions (1.8-3.6 M multiply-adds) made them about 1.5x slower
MIN_SPLIT_MACS = 2**21
# a matrix-vector product reads each value of its matrix once, at memory speed: about 8 times
# the time per multiply-add of a matrix product
VECTOR_PRODUCT_COST = 8
# elements below which an element-wise pass (ReLU, the optimisers) is not split: about 30 us
MIN_SPLIT_ELEMENTS = 2**16

_threads = 1
_own = False               # set_threads was called: BLAS on one thread, the engine splits
_workers: list = []        # _Worker threads, started when first needed
_workers_lock = threading.Lock()
_local = threading.local()  # .busy: this thread runs a part of a run() (no nested splits)


def threads() -> int:
    """How many threads the engine splits its large ops over (1: none split)."""
    return _threads


def enabled() -> bool:
    """Whether the engine runs its own threads (BLAS on one), since ``RLKIT_OWN_THREADS=1`` or
    a :func:`set_threads` call."""
    return _own


def set_threads(n: int) -> None:
    """Split the engine's large ops over ``n`` threads from now on, BLAS running on one (n = 1:
    no splits, BLAS on one thread)."""
    global _threads, _own
    if n < 1:
        raise ValueError(f"thread count must be >= 1, got {n}")
    _threads, _own = n, True
    threadpool_limits(limits=1, user_api="blas")


def parts(n: int, min_size: int = 1) -> list:
    """``range(n)`` as up to :func:`threads` contiguous slices of nearly equal length, none
    shorter than ``min_size`` (one slice when ``n`` is too small to split)."""
    count = max(1, min(_threads, n // max(1, min_size)))
    bounds = [n * i // count for i in range(count + 1)]
    return [slice(bounds[i], bounds[i + 1]) for i in range(count)]


def run(task, slices) -> None:
    """``task(s)`` for every slice of ``slices`` at once, the last on this thread; returns when
    all have returned, and raises the first exception any of them raised. Inside a part (on any
    thread) the slices run one after the other: a split op within a split op does not split."""
    if len(slices) == 1 or getattr(_local, "busy", False):
        for part in slices:
            task(part)
        return
    _start_workers(len(slices) - 1)
    done = queue.SimpleQueue()
    for worker, part in zip(_workers, slices[:-1]):
        worker.put((task, part, done))
    failures = []
    _local.busy = True
    try:
        task(slices[-1])
    except BaseException as exc:  # noqa: B036 (re-raised below, once the workers are done)
        failures.append(exc)
    finally:
        _local.busy = False
    for _ in slices[:-1]:
        error = done.get()
        if error is not None:
            failures.append(error)
    if failures:
        raise failures[0]


def elementwise(kernel, arrays, *constants) -> None:
    """``kernel(*[a[s] for a in arrays], *constants)`` for parts ``s`` of the 1-D ``arrays``
    (all of one length), at once: for a numba kernel that works element by element with the
    GIL released (``nogil=True``)."""
    size = arrays[0].size
    if _threads == 1 or size < 2 * MIN_SPLIT_ELEMENTS:
        kernel(*arrays, *constants)
        return

    def part(s):
        kernel(*[a[s] for a in arrays], *constants)
    run(part, parts(size, MIN_SPLIT_ELEMENTS))


def matmul(a, b, out=None):
    """``a @ b`` for 2-D NumPy arrays ``a`` (M, K) and ``b`` (K, N), into ``out`` (M, N),
    C-contiguous, when given; split over the threads along the longer of M and N, so that each
    thread reads all of the smaller operand and its part of the larger. Products of less work
    than ``MIN_SPLIT_MACS`` per thread, and CuPy arrays, take one call.

    A matrix-vector product (M or N is 1) goes through ``np.dot``: ``np.matmul`` holds the GIL
    there (NumPy 2.4), and two threads' products ran one after the other. Others go through
    ``np.matmul``, which releases it and reads column slices of a transposed operand in place,
    where ``np.dot`` copied them (5x slower for half the columns of an im2col matrix)."""
    if _threads > 1 and type(a) is np.ndarray and not getattr(_local, "busy", False):
        m, n = a.shape[0], b.shape[1]
        vector = m == 1 or n == 1
        work = m * n * a.shape[1] * (VECTOR_PRODUCT_COST if vector else 1)
        if work >= 2 * MIN_SPLIT_MACS:
            return _split_product(a, b, out, np.dot if vector else np.matmul, work)
    if out is None:
        return a @ b
    return get_array_module(a).matmul(a, b, out=out)


def _split_product(a, b, out, product, work: int):
    """:func:`matmul`'s split: ``product`` (np.dot or np.matmul) of row blocks of ``a`` or
    column blocks of ``b``, whichever side is longer."""
    m, n = a.shape[0], b.shape[1]
    if out is None:
        out = np.empty((m, n), np.result_type(a.dtype, b.dtype))
    result = out
    if m == 1:  # a row times a matrix as the matrix's rows times a column: out^T = b^T a^T
        a, b, out, m, n = b.T, a.T, out.T, n, m
    if m >= n:
        def rows(s):
            product(a[s], b, out=out[s])
        run(rows, parts(m, -(-MIN_SPLIT_MACS * m // work)))
    else:
        def columns(s):
            out[:, s] = product(a, b[:, s])
        run(columns, parts(n, -(-MIN_SPLIT_MACS * n // work)))
    return result


class _Worker:
    """A thread that runs the parts :func:`run` hands it, one after the other."""

    def __init__(self, name: str):
        self._jobs = queue.SimpleQueue()
        threading.Thread(target=self._loop, daemon=True, name=name).start()

    def put(self, job) -> None:
        self._jobs.put(job)

    def _loop(self) -> None:
        _local.busy = True
        while True:
            task, part, done = self._jobs.get()
            try:
                task(part)
            except BaseException as exc:  # noqa: B036 (handed to the caller of run)
                done.put(exc)
            else:
                done.put(None)


def _start_workers(count: int) -> None:
    with _workers_lock:
        while len(_workers) < count:
            _workers.append(_Worker(f"rlkit-worker-{len(_workers)}"))


def _forget_workers() -> None:
    """A forked child has none of its parent's threads: it starts its own when it needs them."""
    global _workers_lock
    _workers.clear()
    _workers_lock = threading.Lock()


def _blas_threads() -> int:
    """The most threads any loaded BLAS library is set to use."""
    counts = [lib["num_threads"] for lib in threadpool_info() if lib.get("user_api") == "blas"]
    return max(counts, default=1)


os.register_at_fork(after_in_child=_forget_workers)
if os.environ.get("RLKIT_OWN_THREADS", "") not in ("", "0"):
    set_threads(_blas_threads())
