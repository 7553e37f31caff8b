"""Array-module selection: NumPy on the CPU, CuPy on CUDA, one code path for both.

Every op is written once against ``xp = get_array_module(x)``. The CUDA backend is only ever
used when asked for by name (``device="cuda"``, ``--device cuda`` or ``RLKIT_DEVICE=cuda``);
asking for it without a usable GPU raises :class:`DeviceUnavailableError` naming the cause,
never a silent CPU run.
"""
from __future__ import annotations

import os

import numpy as np

DEVICES = ("cpu", "cuda")
# the variables from which OpenMP, OpenBLAS, MKL and numba size their thread pools at start-up
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")


class DeviceUnavailableError(RuntimeError):
    """The requested device cannot be used on this machine (e.g. cuda without a GPU)."""


_cupy_module = None


def _import_cupy():
    """Import CuPy and prove a GPU answers; raise DeviceUnavailableError with the cause otherwise."""
    global _cupy_module
    if _cupy_module is not None:
        return _cupy_module
    try:
        import cupy
    except ImportError as exc:
        raise DeviceUnavailableError(
            "device 'cuda' was requested but CuPy is not installed "
            "(install the extra: pip install -e '.[cuda]')") from exc
    try:
        count = cupy.cuda.runtime.getDeviceCount()
        if count < 1:
            raise RuntimeError("no CUDA device found")
        cupy.zeros(1).sum().item()  # a real round trip: the driver and runtime both work
    except Exception as exc:  # CuPy raises several unrelated types for "no GPU"
        raise DeviceUnavailableError(
            f"device 'cuda' was requested but no usable CUDA GPU was found: {exc}") from exc
    _cupy_module = cupy
    return cupy


def cuda_available() -> bool:
    """True when CuPy is installed and a CUDA GPU answers."""
    try:
        _import_cupy()
    except DeviceUnavailableError:
        return False
    return True


def resolve_device(device: str | None = None) -> str:
    """Return a checked device name: the argument, else ``$RLKIT_DEVICE``, else ``"cpu"``.

    Raises ValueError for an unknown name and DeviceUnavailableError when cuda is not usable.
    """
    name = (device or os.environ.get("RLKIT_DEVICE") or "cpu").lower()
    if name.startswith("cuda:"):
        name = "cuda"  # one GPU per process; the index is CuPy's current device
    if name not in DEVICES:
        raise ValueError(f"unknown device {device!r}: expected one of {', '.join(DEVICES)}")
    if name == "cuda":
        _import_cupy()
    return name


def get_array_module(array):
    """Return ``cupy`` for a CuPy array, ``numpy`` for anything else."""
    if _cupy_module is not None and isinstance(array, _cupy_module.ndarray):
        return _cupy_module
    return np


def device_of(array) -> str:
    """``"cuda"`` for a CuPy array, else ``"cpu"``."""
    return "cpu" if get_array_module(array) is np else "cuda"


def array_module_for(device: str):
    """The array module (numpy or cupy) that holds data on ``device``."""
    return _import_cupy() if resolve_device(device) == "cuda" else np


def to_device(array, device: str):
    """Copy ``array`` to ``device`` (no copy when it is already there)."""
    device = resolve_device(device)
    if device == device_of(array):
        return array
    if device == "cuda":
        return _import_cupy().asarray(array)
    return array.get()


def memory_axes(array):
    """``array``'s axes from the slowest-varying in memory to the fastest, when its values fill
    their memory without gaps (then ``array.transpose(axes)`` is C-contiguous: a C-contiguous
    array gives (0, 1, ...), a convolution's (O, C, KH, KW) weight stored (KH, KW, C, O) gives
    (2, 3, 1, 0)); None when they do not (a slice with gaps)."""
    axes = tuple(sorted(range(array.ndim), key=lambda axis: -array.strides[axis]))
    return axes if array.transpose(axes).flags.c_contiguous else None


def to_numpy(array) -> np.ndarray:
    """A host (NumPy) view or copy of ``array``."""
    return array if get_array_module(array) is np else array.get()


def thread_limited_env(threads: int) -> dict:
    """This process's environment with every math library's thread pool limited to
    ``threads``: for a child process (a benchmark worker, a sweep trial), whose libraries read
    these variables when they load."""
    return {**os.environ, **{name: str(threads) for name in THREAD_VARIABLES}}


def set_num_threads(n: int) -> None:
    """Limit the CPU math libraries (OpenBLAS and friends) to ``n`` threads, from now on.

    Small networks (an MLP on CartPole) run much faster on one thread: a multi-threaded GEMM of
    a 64 x 128 matrix pays thread hand-offs that cost more than the work, and when another
    process holds a core it waits a whole scheduler slice (measured here: a DQN CartPole run
    took 22 s on 2 threads with the machine busy, 1.4 s on one).
    """
    from threadpoolctl import threadpool_limits
    if n < 1:
        raise ValueError(f"thread count must be >= 1, got {n}")
    threadpool_limits(limits=n)
