"""The engine's own threads (rlkit/parallel.py): the splitting helpers, and every op that splits
giving what it gives unsplit.

The thresholds are set to 1 here so that the small arrays of a test split as the large ones
of a training step do."""
import os
import threading

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

import rlkit
from rlkit import Tensor, nn, optim, parallel
from rlkit.backend import set_num_threads

R = np.random.default_rng(11)


def _blas_threads() -> int:
    return max(lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas")


@pytest.fixture
def restore_threads():
    """Leave the process as the test found it: own threads off, BLAS on its threads."""
    blas = _blas_threads()
    yield
    parallel._threads, parallel._own = 1, False
    threadpool_limits(limits=blas, user_api="blas")


@pytest.fixture
def own_threads(monkeypatch, restore_threads):
    """Two own threads, and every op big enough to split."""
    monkeypatch.setattr(parallel, "MIN_SPLIT_MACS", 1)
    monkeypatch.setattr(parallel, "MIN_SPLIT_ELEMENTS", 1)
    parallel.set_threads(2)


def test_parts_cover_the_range_in_order_without_overlap(own_threads):
    for n in (0, 1, 2, 3, 7, 100):
        slices = parallel.parts(n)
        assert [i for s in slices for i in range(s.start, s.stop)] == list(range(n))
        assert len(slices) == min(2, max(n, 1))
    assert parallel.parts(10, min_size=6) == [slice(0, 10)]
    assert parallel.parts(12, min_size=6) == [slice(0, 6), slice(6, 12)]


def test_parts_is_one_slice_when_own_threads_are_off():
    assert not parallel.enabled() and parallel.threads() == 1
    assert parallel.parts(1000) == [slice(0, 1000)]


def test_run_gives_each_part_to_its_own_thread_at_once(own_threads):
    both_started = threading.Barrier(2, timeout=10)  # fails unless the two parts overlap in time
    names = {}

    def task(part):
        both_started.wait()
        names[part.start] = threading.current_thread().name

    parallel.run(task, parallel.parts(2))
    assert names[1] == threading.current_thread().name   # the last part: the caller's thread
    assert names[0].startswith("rlkit-worker")


@pytest.mark.parametrize("failing", [0, 1])
def test_run_raises_what_a_part_raised_after_every_part_is_done(own_threads, failing):
    finished = []

    def task(part):
        if part.start == failing:
            raise KeyError(part.start)
        finished.append(part.start)

    with pytest.raises(KeyError):
        parallel.run(task, parallel.parts(2))
    assert finished == [1 - failing]
    parallel.run(lambda part: finished.append(part.start), parallel.parts(2))  # still works
    assert sorted(finished[1:]) == [0, 1]


def test_a_split_inside_a_part_runs_its_parts_in_turn(own_threads):
    seen = []

    def outer(part):
        parallel.run(lambda inner: seen.append((part.start, inner.start, threading.get_ident())),
                     parallel.parts(2))

    parallel.run(outer, parallel.parts(2))
    assert sorted(s[:2] for s in seen) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    for start in (0, 1):  # each outer part's inner parts ran on that part's thread
        assert len({s[2] for s in seen if s[0] == start}) == 1


PRODUCTS = [  # (M, K, N): tall, wide, a row times a matrix, a matrix times a column
    (37, 11, 5), (5, 11, 37), (1, 23, 19), (19, 23, 1), (2, 3, 2)]


@pytest.mark.parametrize("m,k,n", PRODUCTS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matmul_split_equals_numpy(own_threads, m, k, n, dtype):
    a, b = R.standard_normal((m, k)).astype(dtype), R.standard_normal((k, n)).astype(dtype)
    expected = a.astype(np.float64) @ b
    tolerance = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(parallel.matmul(a, b), expected, rtol=tolerance, atol=tolerance)
    out = np.full((m, n), np.nan, dtype)
    assert parallel.matmul(a, b, out=out) is out
    np.testing.assert_allclose(out, expected, rtol=tolerance, atol=tolerance)
    # transposed views and column slices, as the convolutions' backward passes them
    big = R.standard_normal((k + 3, 2 * m)).astype(dtype)
    view = big[1:k + 1, ::2].T                                                  # (m, k), strided
    np.testing.assert_allclose(parallel.matmul(view, b), view.astype(np.float64) @ b,
                               rtol=tolerance, atol=tolerance)


def test_elementwise_runs_the_kernel_on_parts_of_every_array(own_threads):
    calls = []

    def kernel(x, out, scale):
        calls.append(x.size)
        out[:] = x * scale

    x = np.arange(10.0)
    out = np.zeros(10)
    parallel.elementwise(kernel, (x, out), 3.0)
    np.testing.assert_array_equal(out, 3 * x)
    assert sorted(calls) == [5, 5]


def _train_step(model, loss_of, x, steps: int = 2):
    """Outputs, gradients and the parameters after ``steps`` Adam steps, as NumPy copies."""
    opt = optim.Adam(model.parameters(), lr=1e-2)
    outputs = []
    for _ in range(steps):
        out = model(x)
        outputs.append(np.array((out[0] if isinstance(out, tuple) else out).numpy()))
        opt.zero_grad()
        loss_of(out).backward()
        grads = [np.array(p.grad) for p in model.parameters()]
        opt.step()
    return outputs, grads, [np.array(p.numpy()) for p in model.parameters()]


def _in_both_modes(build, loss_of, x):
    """``_train_step`` of the same model and data on one own thread (nothing splits), then on
    two (every op splits)."""
    results = []
    for threads in (1, 2):
        parallel.set_threads(threads)
        rlkit.manual_seed(3)
        results.append(_train_step(build(), loss_of, x))
    return results


def _assert_same(unsplit, split, rtol=1e-5, atol=1e-6):
    for first, second in zip(unsplit, split):
        for a, b in zip(first, second):
            np.testing.assert_allclose(b, a, rtol=rtol, atol=atol)


MODELS = {
    # im2col convolutions, then ReLU and a fully connected layer (rows: tall products)
    "cnn": (lambda: nn.Sequential(nn.Conv2d(3, 8, 3, stride=2), nn.ReLU(), nn.Conv2d(8, 8, 3),
                                  nn.ReLU(), nn.Flatten(), nn.Linear(8 * 3 * 3, 5)),
            (6, 3, 11, 11)),
    # one sample: a convolution's output lines split, and a row times a matrix
    "cnn, one sample": (lambda: nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(),
                                              nn.Linear(8 * 9 * 9, 4)), (1, 3, 11, 11)),
    # a first layer on space-to-depth blocks (few channels, kernel two strides wide)
    "blocks": (lambda: nn.Sequential(nn.Conv2d(4, 6, 8, stride=4), nn.ReLU(), nn.Flatten(),
                                     nn.Linear(6 * 4 * 4, 3)), (5, 4, 20, 20)),
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_a_network_trains_the_same_split_or_not(own_threads, name):
    build, shape = MODELS[name]
    x = Tensor(R.standard_normal(shape).astype(np.float32))
    _assert_same(*_in_both_modes(build, lambda out: (out * out).sum(), x))


def test_an_lstm_trains_the_same_split_or_not(own_threads):
    class Last(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm, self.head = nn.LSTM(5, 16), nn.Linear(16, 2)

        def forward(self, x):
            output, _ = self.lstm(x)
            return self.head(output[:, -1])

    x = Tensor(R.standard_normal((4, 6, 5)).astype(np.float32), requires_grad=True)
    _assert_same(*_in_both_modes(Last, lambda out: (out * out).sum(), x))


def test_set_num_threads_sizes_the_own_threads_and_keeps_blas_on_one(restore_threads):
    parallel.set_threads(2)
    set_num_threads(3)
    assert parallel.threads() == 3 and _blas_threads() == 1


def test_set_num_threads_without_own_threads_sets_blas(restore_threads):
    set_num_threads(1)
    assert not parallel.enabled() and _blas_threads() == 1


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX")
@pytest.mark.timeout(60)
def test_a_forked_child_starts_its_own_workers(own_threads):
    parallel.run(lambda part: None, parallel.parts(2))  # the parent's worker is running
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its split must not wait on the parent's (absent) worker
        names = []
        parallel.run(lambda part: names.append(threading.current_thread().name), parallel.parts(2))
        os.write(write, b"ok" if len(names) == 2 else b"no")
        os._exit(0)
    os.close(write)
    _, status = os.waitpid(pid, 0)
    assert os.read(read, 2) == b"ok" and status == 0
