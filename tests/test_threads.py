"""rlkit/threads.py: OpenBLAS's shortened spin, the split of work into parts, the runner of
parts on the engine's threads, and the threaded kernels' results against one thread."""
from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import threading

import numpy as np
import pytest
from threadpoolctl import threadpool_info

import rlkit.tensor  # noqa: F401  (loading the engine quietens OpenBLAS)
from rlkit import Tensor, optim, threads
from rlkit.functions.recurrent import LSTMSequence, _row_blocks
from rlkit.kernels import direct_conv, lstm_recurrence, simd

OPENBLAS_PTHREADS = any(lib["internal_api"] == "openblas" and lib.get("threading_layer") == "pthreads"
                        for lib in threadpool_info())


def _engine_state(code: str = "", **environment) -> list:
    """[OPENBLAS_THREAD_TIMEOUT, kernel_threads()] as a fresh process with ``environment``
    added sees them after loading the engine (and running ``code``)."""
    code = ("import os, json, rlkit.tensor; from rlkit import threads; " + code +
            "print(json.dumps([os.environ.get('OPENBLAS_THREAD_TIMEOUT'), threads.kernel_threads()]))")
    env = {k: v for k, v in os.environ.items() if k not in ("RLKIT_BLAS_SPIN", "OPENBLAS_THREAD_TIMEOUT")}
    out = subprocess.run([sys.executable, "-c", code], env={**env, **environment},
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.splitlines()[-1])


@pytest.mark.skipif(not OPENBLAS_PTHREADS, reason="NumPy's BLAS here is not OpenBLAS on pthreads")
@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2 if hasattr(os, "sched_getaffinity") else True,
                    reason="OpenBLAS takes at most the CPUs it may run on: two are needed")
def test_loading_the_engine_shortens_openblas_spin_unless_told_not_to():
    # the variable is unset again once OpenBLAS has read it: a child process starts as its
    # parent did and quietens its own OpenBLAS
    assert _engine_state(OPENBLAS_NUM_THREADS="2") == [None, 2]
    parent = ("import subprocess, sys\n"
              "import rlkit.tensor\n"
              "child = subprocess.run([sys.executable, '-c', 'import rlkit.tensor; "
              "from rlkit import threads; print(threads.kernel_threads())'], "
              "capture_output=True, text=True, check=True)\n"
              "print(child.stdout.strip())\n")
    env = {k: v for k, v in os.environ.items() if k not in ("RLKIT_BLAS_SPIN", "OPENBLAS_THREAD_TIMEOUT")}
    output = subprocess.run([sys.executable, "-c", parent], env={**env, "OPENBLAS_NUM_THREADS": "2"},
                            capture_output=True, text=True, check=True).stdout.split()
    assert output == ["2"]
    # one BLAS thread: the engine's kernels follow it
    assert _engine_state(OPENBLAS_NUM_THREADS="1") == [None, 1]
    # the opt-out and a user's own setting leave OpenBLAS alone, and the kernels on one thread
    assert _engine_state(OPENBLAS_NUM_THREADS="2", RLKIT_BLAS_SPIN="default") == [None, 1]
    assert _engine_state(OPENBLAS_NUM_THREADS="2", OPENBLAS_THREAD_TIMEOUT="25") == ["25", 1]


def test_kernel_threads_follow_set_num_threads():
    from threadpoolctl import threadpool_limits
    if not threads._blas_pools:
        assert threads.kernel_threads() == 1
        return
    with threadpool_limits(limits=1):
        assert threads.kernel_threads() == 1
        assert threads.split(10) == [slice(0, 10)]
    with threadpool_limits(limits=2):
        assert threads.kernel_threads() == 2


@pytest.mark.parametrize("n, minimum, align, count, expected", [
    (32, 1, 1, 2, [slice(0, 16), slice(16, 32)]),
    (24, 8, 4, 2, [slice(0, 12), slice(12, 24)]),  # near-equal, at multiples of 4
    (17, 8, 4, 2, [slice(0, 8), slice(8, 17)]),
    (15, 8, 1, 2, [slice(0, 15)]),                 # not two parts of 8: one
    (0, 1, 1, 2, [slice(0, 0)]),
    (7, 1, 1, 3, [slice(0, 2), slice(2, 5), slice(5, 7)]),
    (2, 1, 1, 3, [slice(0, 1), slice(1, 2)]),      # never an empty part
    (9, 1, 1, 1, [slice(0, 9)]),
    (10, 1, 8, 2, [slice(0, 8), slice(8, 10)]),
])
def test_split_covers_the_range_in_aligned_parts(monkeypatch, n, minimum, align, count, expected):
    monkeypatch.setattr(threads, "kernel_threads", lambda: count)
    assert threads.split(n, minimum, align) == expected


def test_run_calls_every_task_once_on_two_threads():
    seen, barrier = [], threading.Barrier(2, timeout=10)

    def task(i):
        def call():
            barrier.wait()  # both parts run at once, or this times out
            seen.append((i, threading.get_ident()))
        return call
    threads.run([task(0), task(1)])
    assert sorted(i for i, _ in seen) == [0, 1]
    assert len({ident for _, ident in seen}) == 2
    assert dict(seen)[0] == threading.get_ident()  # the first part runs on the caller


def test_run_raises_a_tasks_error_after_all_finished_and_stays_usable():
    finished = []

    def fails():
        raise ValueError("part failed")

    def slow():
        threading.Event().wait(0.05)
        finished.append(True)
    for tasks in ([slow, fails], [fails, slow]):
        finished.clear()
        with pytest.raises(ValueError, match="part failed"):
            threads.run(tasks)
        assert finished == [True]
    results = []
    threads.run([lambda: results.append(1), lambda: results.append(2)])
    assert sorted(results) == [1, 2]


def test_nested_run_falls_back_to_one_thread():
    inner = []

    def outer():
        threads.run([lambda: inner.append(threading.get_ident()),
                     lambda: inner.append(threading.get_ident())])
    threads.run([outer, lambda: None])
    assert inner == [threading.get_ident()] * 2


def _child_runs(queue):
    out = []
    threads.run([lambda: out.append(1), lambda: out.append(2)])
    queue.put(sorted(out))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_a_forked_child_starts_its_own_workers():
    threads.run([lambda: None, lambda: None])  # the parent's workers exist
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_child_runs, args=(queue,))
    child.start()
    assert queue.get(timeout=60) == [1, 2]
    child.join(timeout=60)
    assert child.exitcode == 0


# ---------------------------------------------------------------- threaded kernels = one thread
fast_vectors = pytest.mark.skipif(not simd.FAST_ON_THIS_CPU, reason="the vector kernels need AVX-512 or AVX2+FMA")


_run = threads.run


def _on_threads(monkeypatch, count, call):
    """(``call()`` with the engine's kernels on ``count`` threads, the most parts one
    ``threads.run`` got): a kernel that stopped splitting would pass the value checks alone."""
    monkeypatch.setattr(threads, "kernel_threads", lambda: count)
    parts = [0]

    def counting_run(tasks):
        tasks = list(tasks)
        parts.append(len(tasks))
        _run(tasks)
    monkeypatch.setattr(threads, "run", counting_run)
    return call(), max(parts)


@fast_vectors
@pytest.mark.parametrize("filters, dtype, batch, parts", [(32, np.uint8, 5, 2), (16, np.float32, 6, 3),
                                                   (32, np.float32, 1, 1)])
def test_direct_conv_on_threads_matches_one_thread(monkeypatch, filters, dtype, batch, parts):
    rng = np.random.default_rng(0)
    x = (rng.random((batch, 4, 36, 36)) * 255).astype(dtype)
    weight_columns = rng.standard_normal((8 * 8 * 4, filters)).astype(np.float32)
    bias = rng.standard_normal(filters).astype(np.float32)
    scale = 1 / 255 if dtype == np.uint8 else 1.0

    def forward():
        return direct_conv.forward(x, weight_columns, bias, (8, 8), (4, 4), scale, (8, 8))

    def weight_gradient():
        g = np.random.default_rng(1).standard_normal((batch * 64, filters)).astype(np.float32)
        return direct_conv.weight_gradient(x, g, (8, 8), (4, 4), scale)
    # rows of the output are independent: the same numbers exactly; the weight gradient adds
    # the parts' sums at the end, a different order of the same additions
    (threaded, threaded_parts), (single, _) = (_on_threads(monkeypatch, 3, forward),
                                               _on_threads(monkeypatch, 1, forward))
    assert threaded_parts == parts  # samples in parts of at least 2
    np.testing.assert_array_equal(threaded, single)
    (threaded, threaded_parts), (single, _) = (_on_threads(monkeypatch, 3, weight_gradient),
                                               _on_threads(monkeypatch, 1, weight_gradient))
    assert threaded_parts == parts
    np.testing.assert_allclose(threaded, single, rtol=1e-5, atol=1e-6 * np.abs(single).max())


@fast_vectors
def test_lstm_on_threads_matches_one_thread(monkeypatch):
    rng = np.random.default_rng(0)
    n, steps, n_in, hidden = 24, 8, 5, 32
    monkeypatch.setattr(threads, "kernel_threads", lambda: 2)
    assert _row_blocks(n, steps) == [slice(0, 12), slice(12, 24)]  # 3 tiles of 4 and 3
    arrays = [rng.standard_normal(shape).astype(np.float32) * 0.5 for shape in
              [(n, steps, n_in), (n, hidden), (n, hidden), (4 * hidden, n_in),
               (4 * hidden, hidden), (4 * hidden,), (4 * hidden,)]]
    assert lstm_recurrence.applies(hidden, np.float32)

    def forward_backward():
        tensors = [Tensor(a.copy(), requires_grad=True) for a in arrays]
        output, h, c = LSTMSequence.apply(*tensors)
        ((output * output).sum() + h.sum() + (c * c).sum()).backward()
        return [output.data, h.data, c.data] + [t.grad for t in tensors]
    (threaded, parts), (single, _) = (_on_threads(monkeypatch, 2, forward_backward),
                                      _on_threads(monkeypatch, 1, forward_backward))
    assert parts == 2
    for a, b in zip(threaded, single):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("make", [lambda p: optim.Adam(p, lr=1e-2, weight_decay=0.1),
                                  lambda p: optim.RMSProp(p, lr=1e-2)])
def test_optimiser_updates_on_threads_match_one_thread(monkeypatch, make):
    monkeypatch.setattr(optim, "MIN_VALUES_PER_THREAD", 1000)  # 2 parts of the 2,500 values

    def three_steps():
        rng = np.random.default_rng(0)
        params = [Tensor(rng.standard_normal(shape).astype(np.float32), requires_grad=True)
                  for shape in [(40, 50), (500,)]]
        opt = make(params)
        for _ in range(3):
            opt.zero_grad()
            sum(((p * p * p).sum() for p in params), Tensor(np.float32(0))).backward()
            opt.step()
        return [p.data.copy() for p in params]
    (threaded, parts), (single, _) = (_on_threads(monkeypatch, 3, three_steps),
                                      _on_threads(monkeypatch, 1, three_steps))
    assert parts == 2
    for a, b in zip(threaded, single):
        np.testing.assert_array_equal(a, b)
