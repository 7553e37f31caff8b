"""Keep freed array memory in the process, so a training step's large arrays cost no page faults.

glibc's malloc serves every block above its mmap threshold with a fresh ``mmap`` and returns it
to the kernel on ``free``. The threshold adapts upwards to the blocks a program frees, but never
past 32 MiB (its ``DEFAULT_MMAP_THRESHOLD_MAX`` on 64-bit Linux). Batch-256 convolutions make
larger arrays on every step (the Nature CNN's second-layer im2col matrix is 42 MB, the first
layer's block product 58 MB), and each new one is page-faulted in 4 KiB at a time, the kernel
zeroing every page. Measured on the 2-core Zen 5 (`/tmp` script around scripts/
_bench_core_worker.py's ppo_atari_minibatch): 10,400 minor faults and 54 ms of system time per
208 ms minibatch step; with :func:`keep_freed_memory`, 0.25 faults and 156 ms. PyTorch pays the
same on its large tensors.

The engine calls :func:`keep_freed_memory` when it loads (rlkit/tensor.py). It changes malloc
for the whole process: the heap keeps what it has freed (up to ``TRIM_THRESHOLD`` at its top)
for the next allocation instead of unmapping it, so the resident size stays near the peak.
Set ``RLKIT_SYSTEM_MALLOC=1`` to leave malloc as it is. Arrays of gigabytes that live long
(replay memories, rlkit/replay.py) take their own mapping instead (:func:`mapped_zeros`), so
they are committed only as they are written and go back to the kernel when freed.
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
# 128 KiB): larger than any step's working set, so the steps reuse it, while a freed replay
# memory of gigabytes is still returned
TRIM_THRESHOLD = 1 << 30


def keep_freed_memory() -> bool:
    """Make glibc's malloc serve every block from its heap (no per-block ``mmap``) and keep up
    to ``TRIM_THRESHOLD`` bytes of freed memory for reuse. Returns True when applied; False on
    a C library other than glibc, or when ``RLKIT_SYSTEM_MALLOC`` is set.

    A heap that cannot grow still falls back to ``mmap`` inside glibc, so allocations do not
    fail because of this.
    """
    if os.environ.get("RLKIT_SYSTEM_MALLOC"):
        return False
    try:
        glibc = os.confstr("CS_GNU_LIBC_VERSION")  # None or an error where the C library is another
        libc = ctypes.CDLL("libc.so.6") if glibc else None
    except (ValueError, OSError, AttributeError):
        libc = None
    if libc is None:
        return False
    return bool(libc.mallopt(M_MMAP_MAX, 0)) and bool(libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))


def mapped_zeros(shape, dtype) -> np.ndarray:
    """``np.zeros(shape, dtype)`` in a private anonymous mapping of its own, outside malloc:
    its pages are committed only when first written and return to the kernel when the array is
    freed, whatever :func:`keep_freed_memory` did to malloc. For replay memories of gigabytes
    and their snapshots. Where the platform has no private mappings, plain ``np.zeros``."""
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if nbytes == 0 or not hasattr(mmap, "MAP_PRIVATE"):
        return np.zeros(shape, dtype)
    mapping = mmap.mmap(-1, nbytes, flags=mmap.MAP_PRIVATE)
    return np.frombuffer(mapping, dtype).reshape(shape)


def mapped_copy(array: np.ndarray) -> np.ndarray:
    """A copy of ``array`` in a mapping of its own (:func:`mapped_zeros`)."""
    copy = mapped_zeros(array.shape, array.dtype)
    np.copyto(copy, array)
    return copy
