"""rlkit/memory.py: with the engine loaded, a large array made on every step reuses freed memory
instead of page-faulting a fresh mapping (glibc only), while a replay-sized array in a mapping of
its own is committed as it is written and returned to the kernel when freed."""
import os
import subprocess
import sys

import numpy as np
import pytest

# allocate and free a 64 MiB array (above glibc's 32 MiB mmap-threshold cap) ten times after
# two warm-up rounds and print the minor page faults those ten cost
COUNT_FAULTS = """
import resource
import numpy as np
import rlkit.tensor  # loading the engine applies rlkit.memory.keep_freed_memory
def step():
    np.ones(16 * 2**20, dtype=np.float32).sum()
step(); step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    step()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""
# the fewest faults that bring in one array: one per 2 MiB where NumPy's madvise gets huge pages
FAULTS_PER_ARRAY = 64 * 2**20 // 2**21


def minor_faults(**env) -> int:
    base = {key: value for key, value in os.environ.items() if key != "RLKIT_SYSTEM_MALLOC"}
    done = subprocess.run([sys.executable, "-c", COUNT_FAULTS], env={**base, **env},
                          capture_output=True, text=True, check=True)
    return int(done.stdout.strip().splitlines()[-1])


def on_glibc() -> bool:
    from rlkit.memory import _glibc
    return _glibc() is not None


@pytest.mark.skipif(not on_glibc(), reason="keep_freed_memory tunes glibc's malloc; other C "
                                            "libraries are left alone")
def test_large_arrays_reuse_freed_memory_once_the_engine_is_loaded():
    kept = minor_faults()
    system = minor_faults(RLKIT_SYSTEM_MALLOC="1")
    assert kept < FAULTS_PER_ARRAY, kept                # no array is faulted in again
    assert system >= 10 * FAULTS_PER_ARRAY, system      # each one is, with malloc left as it is


# a 256 MiB replay-sized array in its own mapping: resident size (MiB) after making it, after
# writing all of it and after freeing it
MAPPED_LIFETIME = """
import numpy as np
import rlkit.tensor
from rlkit.memory import mapped_zeros
import os
def resident():
    pages = int(open("/proc/self/statm").read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
start = resident()
store = mapped_zeros((256, 2**20), np.uint8)
made = resident()
store[:] = 1
written = resident()
del store
print(made - start, written - start, resident() - start)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm")
def test_mapped_arrays_are_committed_as_written_and_returned_when_freed():
    done = subprocess.run([sys.executable, "-c", MAPPED_LIFETIME], capture_output=True, text=True,
                          check=True)
    made, written, freed = (float(v) for v in done.stdout.split())
    assert made < 8 and written > 250 and freed < 8, (made, written, freed)


def test_mapped_zeros_and_copy_are_ordinary_writable_arrays():
    from rlkit.memory import mapped_copy, mapped_zeros
    zeros = mapped_zeros((3, 4), np.float32)
    assert zeros.shape == (3, 4) and zeros.dtype == np.float32 and not zeros.any()
    zeros[1, 2] = 5.0
    copy = mapped_copy(zeros)
    zeros[1, 2] = 0.0
    assert copy[1, 2] == 5.0 and copy.flags.writeable
    assert mapped_zeros((0, 4), np.uint8).shape == (0, 4)


# a 256 MiB replay memory saved to disk and loaded back: resident size (MiB) gained by the load
REPLAY_RELOAD = """
import os, sys
import numpy as np
import rlkit.tensor
from rlkit.replay import ReplayBuffer
def resident():
    pages = int(open("/proc/self/statm").read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
replay = ReplayBuffer(1024, (128, 256), obs_dtype=np.float32, seed=0)  # obs and next_obs
for name, store in replay._store.items():
    store.fill(1)
path = sys.argv[1]
np.savez(path, **replay.state_dict())
before = resident()
with np.load(path) as state:
    replay.load_state_dict(state)
print(resident() - before)
"""


@pytest.mark.skipif(not on_glibc(), reason="malloc_trim is glibc's")
def test_loading_a_replay_memory_leaves_no_heap_copy_resident(tmp_path):
    done = subprocess.run([sys.executable, "-c", REPLAY_RELOAD, str(tmp_path / "replay.npz")],
                          capture_output=True, text=True, check=True)
    assert float(done.stdout.strip().splitlines()[-1]) < 32  # the 256 MiB read from disk is gone
