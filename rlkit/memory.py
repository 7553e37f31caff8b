"""Keep freed array memory in the process, so a training step's large arrays cost no page faults.

glibc's malloc serves every block above its mmap threshold with a fresh ``mmap`` and returns it
to the kernel on ``free``. The threshold adapts upwards to the blocks a program frees, but never
past 32 MiB (its ``DEFAULT_MMAP_THRESHOLD_MAX`` on 64-bit Linux). Batch-256 convolutions made
larger arrays on every step (the Nature CNN's second-layer im2col matrix is 42 MB, the first
layer's block product was 58 MB), and each new one was page-faulted in, the kernel zeroing
every page. Measured on the 2-core Zen 5 with ``resource.getrusage`` around 20 steps of
scripts/_bench_core_worker.py's ppo_atari_minibatch: 10,400 minor faults and 54 ms of system
time per 208 ms step; with :func:`keep_freed_memory`, 0.25 faults and 156 ms. PyTorch pays the
same on its large tensors.

The engine calls :func:`keep_freed_memory` when it loads (rlkit/tensor.py): a change to malloc
for the whole process that imports it. The heap keeps what it has freed for the next
allocation instead of unmapping it (free memory at its top up to ``TRIM_THRESHOLD``, and freed
blocks below the top until :func:`release_freed_memory`), so the resident size stays near the
peak. Set ``RLKIT_SYSTEM_MALLOC=1`` to leave malloc as it is. Arrays of gigabytes that live
long (replay memories and their snapshots, rlkit/replay.py) take their own mapping instead
(:func:`mapped_zeros`): committed only as they are written, returned to the kernel when freed.
"""
from __future__ import annotations

import ctypes
import mmap
import os

import numpy as np

# mallopt parameter numbers from glibc's <malloc.h>
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
# free memory at the top of the heap beyond this goes back to the kernel (glibc's default is
# 128 KiB): larger than any step's working set, so the steps reuse it
TRIM_THRESHOLD = 1 << 30


def _glibc():
    """The C library as a ctypes handle when it is glibc, else None (musl, macOS, Windows)."""
    try:
        if not os.confstr("CS_GNU_LIBC_VERSION"):
            return None
        return ctypes.CDLL(None)  # the process's own symbols, libc's among them
    except (ValueError, OSError, AttributeError):
        return None


def keep_freed_memory() -> bool:
    """Make glibc's malloc serve every block from its heap (no per-block ``mmap``) and keep up
    to ``TRIM_THRESHOLD`` bytes of freed memory at its top for reuse. Returns True when
    applied; False on a C library other than glibc, or when ``RLKIT_SYSTEM_MALLOC`` is set to
    anything but "" or "0".

    A heap that cannot grow still falls back to ``mmap`` inside glibc, so allocations do not
    fail because of this.
    """
    if os.environ.get("RLKIT_SYSTEM_MALLOC", "") not in ("", "0"):
        return False
    libc = _glibc()
    if libc is None:
        return False
    return bool(libc.mallopt(M_MMAP_MAX, 0)) and bool(libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))


def release_freed_memory() -> None:
    """Return the heap's free memory to the kernel (glibc's ``malloc_trim``): for after a
    one-off burst of large temporaries, such as loading a replay memory from disk. Does
    nothing where the C library is not glibc."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)


def mapped_zeros(shape, dtype) -> np.ndarray:
    """``np.zeros(shape, dtype)`` in a private anonymous mapping of its own, outside malloc:
    its pages are committed only when first written and return to the kernel when the array is
    freed, whatever :func:`keep_freed_memory` did to malloc; transparent huge pages are asked
    for, as NumPy does for its large arrays. For replay memories of gigabytes and their
    snapshots. Where the platform has no private mappings, plain ``np.zeros``. MemoryError
    when the address space cannot take it."""
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if nbytes == 0 or not hasattr(mmap, "MAP_PRIVATE"):
        return np.zeros(shape, dtype)
    try:
        mapping = mmap.mmap(-1, nbytes, flags=mmap.MAP_PRIVATE)
    except OSError as exc:
        raise MemoryError(f"cannot map {nbytes} bytes for an array of shape {tuple(shape)}: "
                          f"{exc}") from exc
    if hasattr(mmap, "MADV_HUGEPAGE"):
        mapping.madvise(mmap.MADV_HUGEPAGE)
    return np.frombuffer(mapping, dtype).reshape(shape)


def mapped_copy(array: np.ndarray) -> np.ndarray:
    """A copy of ``array`` in a mapping of its own (:func:`mapped_zeros`)."""
    copy = mapped_zeros(array.shape, array.dtype)
    np.copyto(copy, array)
    return copy
