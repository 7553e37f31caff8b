"""The engine's own kernels on every core OpenBLAS uses, without the two pools fighting.

NumPy's OpenBLAS runs a product on its worker threads, which then wait for the next one by
spinning (``sched_yield`` in a loop) for 2^28 TSC cycles, about 0.1 s, before they sleep. A
training step calls a product every millisecond or so, so OpenBLAS's workers never sleep: they
hold every core but the caller's, and a numba kernel of the engine run on a second thread got
a fraction of its core. Measured on the 2-core Xeon (ad hoc, ms): the Nature CNN's first layer
(direct kernel, rlkit/kernels/direct_conv.py) at batch 32 took 1.63 on one thread and 1.16 on
two alone, but right after a product 1.71 on one and 1.92 on two; an LSTM layer forward and
backward (rows split between two threads) 4.2-4.4 on one thread, 4.4 on two.

So when the engine loads, :func:`quiet_blas_workers` shortens that spin to 2^20 cycles (about
0.4 ms; OpenBLAS's ``OPENBLAS_THREAD_TIMEOUT=20``, which a user who set it keeps) and restarts
OpenBLAS's pool, which reads the setting only when it starts (the variable is unset again
after, so that child processes quieten their own OpenBLAS). The products of one layer or of a
batch-1 forward follow each other closely enough to find the workers awake; after a pause
they sleep (a condition variable) and the next product wakes them. The exponent was chosen on
the 2-core Xeon (ad hoc: three alternating processes per setting, medians of 9 samples, ms),
with the kernels below on two threads, against OpenBLAS's default and one thread: at 2^18
(0.1 ms) the LSTM layer took 3.6 against 4.2-4.5 and the DQN train step 21.6-22.2 against
22.7-24.3, but a batch-1 Nature CNN forward 0.50-0.52 against 0.39-0.40 (a wake-up for each
of its small products); at 2^20 the forward took 0.39-0.44, the train step 21.2-21.7, the
Nature DQN agent update 26.5-27.1 against 28.8-29.2, the A2C Pong update 14.1-14.6 against
16.2-16.8 and the LSTM layer 3.5-3.6 (once its input projection had moved into the threaded
kernel: after a product the workers still spin for a while, and an LSTM started right after
its projection took 3.7-6.9). With no spin at all (2^4 cycles) the one-thread train step took
26 ms. Set ``RLKIT_BLAS_SPIN=default`` to leave OpenBLAS as it is.

:func:`run` then runs a kernel's independent parts (blocks of a batch, of an LSTM's rows) on
the calling thread and persistent workers of the engine's own, as many threads as OpenBLAS uses
(so ``rlkit.backend.set_num_threads(1)`` makes the engine single-threaded too), and only when
the spin could be shortened: where NumPy's BLAS is another (MKL's or OpenMP's workers spin as
long), the kernels stay on one thread.
"""
from __future__ import annotations

import os
import threading

# OpenBLAS's idle workers spin 2^SPIN_EXPONENT TSC cycles before they sleep (its default: 28)
SPIN_EXPONENT = 20
TIMEOUT_VARIABLE = "OPENBLAS_THREAD_TIMEOUT"  # OpenBLAS's name for that exponent

_blas_pools: list = []  # threadpoolctl controllers of the OpenBLAS libraries quietened


def quiet_blas_workers() -> bool:
    """Make the loaded OpenBLAS libraries (pthreads builds) spin 2^SPIN_EXPONENT cycles
    instead of 2^28 after each call: set ``OPENBLAS_THREAD_TIMEOUT``, have each library read
    it (``openblas_read_env``), stop its pool and start it again (``blas_thread_shutdown_``,
    ``blas_thread_init``), then unset the variable, so that child processes start as this one
    did and quieten their own. Returns True when done for at least one library. Does nothing,
    and returns False, when ``RLKIT_BLAS_SPIN`` is "default", when the user set
    ``OPENBLAS_THREAD_TIMEOUT``, or when no such OpenBLAS is loaded or it lacks those
    functions.

    Call it where no other thread is inside a BLAS call: the engine calls it once, when it
    loads (a product running on another thread at that moment would lose its workers)."""
    if os.environ.get("RLKIT_BLAS_SPIN", "") == "default" or _blas_pools:
        return bool(_blas_pools)
    if TIMEOUT_VARIABLE in os.environ:
        return False
    import numpy  # noqa: F401  (its BLAS must be loaded to be found)
    from threadpoolctl import ThreadpoolController
    candidates = [pool for pool in ThreadpoolController().lib_controllers
                  if pool.internal_api == "openblas" and pool.threading_layer == "pthreads"]
    os.environ[TIMEOUT_VARIABLE] = str(SPIN_EXPONENT)
    try:
        for pool in candidates:
            functions = [getattr(pool.dynlib, name, None) for name in
                         ("openblas_read_env", "blas_thread_shutdown_", "blas_thread_init")]
            if None in functions:
                continue
            read_env, shutdown, start = functions
            read_env()  # builds that cache the variables when they load read them again
            shutdown()
            start()     # reads the timeout as it starts the workers
            _blas_pools.append(pool)
    finally:
        del os.environ[TIMEOUT_VARIABLE]
    return bool(_blas_pools)


def kernel_threads() -> int:
    """How many threads :func:`run` uses: as many as the quietened OpenBLAS (its current
    setting, so ``set_num_threads`` applies to both), or 1 when none was quietened."""
    if not _blas_pools:
        return 1
    return max(1, min(pool.num_threads for pool in _blas_pools))


def split(n: int, minimum: int = 1, align: int = 1) -> list[slice]:
    """``range(n)`` as contiguous slices for :func:`run`: up to :func:`kernel_threads` of them,
    of near-equal length and about ``minimum`` long or longer, their bounds multiples of
    ``align`` (but the last, n); one slice (empty when n is 0) when n is below twice
    ``minimum``."""
    if n < 2 * minimum:  # before kernel_threads(): the common case of small arrays, cheaply
        return [slice(0, n)]
    parts = min(kernel_threads(), n // minimum)
    bounds = [0] + [round(n * i / parts / align) * align for i in range(1, parts)] + [n]
    return [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]


class _Worker(threading.Thread):
    """A daemon thread that runs one task at a time, handed over through two semaphores."""

    def __init__(self):
        super().__init__(daemon=True, name="rlkit-kernel-worker")
        self.task = self.error = None
        self.ready, self.done = threading.Semaphore(0), threading.Semaphore(0)
        self.start()

    def run(self):
        while True:
            self.ready.acquire()
            try:
                self.task()
            except BaseException as error:  # handed to the caller of run(), which raises it
                self.error = error
            self.task = None
            self.done.release()


_workers: list[_Worker] = []
_dispatch = threading.Lock()  # one run() at a time owns the workers; others run serially


def _reset_after_fork() -> None:
    """A forked child has none of the parent's threads: it starts its own when it needs them."""
    global _dispatch
    _workers.clear()
    _dispatch = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


def run(tasks) -> None:
    """Call every zero-argument callable in ``tasks``, the first on this thread and the others
    at the same time on the engine's workers, and return when all are done; the first
    exception raised by any is raised here (after all finished). The tasks must not depend on
    each other (each a numba kernel that releases the GIL, on its own part of the arrays).
    Nested or concurrent calls, which find the workers busy, run their tasks one by one here."""
    tasks = list(tasks)
    if len(tasks) < 2 or not _dispatch.acquire(blocking=False):
        for task in tasks:
            task()
        return
    try:
        while len(_workers) < len(tasks) - 1:
            _workers.append(_Worker())
        helpers = _workers[:len(tasks) - 1]
        for worker, task in zip(helpers, tasks[1:]):
            worker.task = task
            worker.ready.release()
        first_error = None
        try:
            tasks[0]()
        except BaseException as error:
            first_error = error
        for worker in helpers:
            # wait for every helper even through an interrupt (Ctrl+C): one left running
            # would still be writing its part, and its late signal would end a later wait early
            while True:
                try:
                    worker.done.acquire()
                    break
                except BaseException as error:
                    first_error = first_error if first_error is not None else error
            if first_error is None:
                first_error = worker.error
            worker.error = None
        if first_error is not None:
            raise first_error
    finally:
        _dispatch.release()
