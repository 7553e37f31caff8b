"""Replay memory benchmark: add and sample times, memory per transition.

    python scripts/bench_replay.py [--capacity 100000] [--iters 2000] [--out results/bench/replay.json]

Fills a FrameReplayBuffer of (84, 84) frames through `add` with full (4, 84, 84) stacks, as a
DQN loop does, then times `sample(32)`. It also times three ways to gather the frames of the
same sampled transitions, which is why `sample` uses the first: one NumPy fancy-index gather of
the stack + 1 frames obs and next_obs share; two separate (B, 4) gathers; a numba loop.
A ReplayBuffer with CartPole-sized observations is timed too. Times are wall-clock
microseconds per call (median, mean, 90th percentile) on whatever else the machine is running.
"""
import argparse
import json
import os
import platform
import time
from pathlib import Path

import numba
import numpy as np

from rlkit.replay import FrameReplayBuffer, ReplayBuffer


def stats_us(seconds):
    """Median, mean and 90th percentile of per-call times, in microseconds."""
    us = np.asarray(seconds) * 1e6
    return {"median_us": round(float(np.median(us)), 1), "mean_us": round(float(us.mean()), 1),
            "p90_us": round(float(np.percentile(us, 90)), 1), "calls": len(us)}


def time_calls(fn, iters):
    """Per-call wall times of `fn()` over `iters` calls, after 10 warm-up calls."""
    for _ in range(10):
        fn()
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


@numba.njit(nogil=True)
def numba_gather(frames, window, out):
    """out[b, k] = frames[window[b, k]]; frames (C, H*W), window (B, K), out (B, K, H*W)."""
    for b in range(window.shape[0]):
        for k in range(window.shape[1]):
            out[b, k, :] = frames[window[b, k], :]
    return out


def fill_frames(buf, rng, episode_len):
    """Add `buf.capacity` transitions of random frames, episodes of `episode_len` steps.

    Returns the wall time of each `add` call in seconds.
    """
    pool = rng.integers(0, 256, (4096, *buf.frame_shape), np.uint8)
    times = []
    stack = None
    for n in range(buf.capacity):
        if stack is None:  # episode start: the reset frame repeated, as FrameStackObservation
            stack = np.repeat(pool[n % len(pool)][None], buf.stack, axis=0)
        next_stack = np.concatenate([stack[1:], pool[(n + 1) % len(pool)][None]])
        end = (n + 1) % episode_len == 0
        t0 = time.perf_counter()
        buf.add(stack, n % 6, 0.0, next_stack, end, False)
        times.append(time.perf_counter() - t0)
        stack = None if end else next_stack
    return times


def bench_frames(args):
    rng = np.random.default_rng(args.seed)
    buf = FrameReplayBuffer(args.capacity, seed=args.seed)
    add_times = fill_frames(buf, rng, args.episode_len)
    frames = buf._store["frames"]  # the comparisons below gather from the buffer's own storage
    flat = frames.reshape(len(frames), -1)

    def window():
        """(B, stack + 1) slots: a transition's stack and its next frame (a 1-step window)."""
        slots = buf._sample_slots(args.batch_size)
        return np.concatenate([buf._stack_slots(slots), ((slots + 1) % buf.capacity)[:, None]], axis=1)

    out = np.empty((args.batch_size, buf.stack + 1, flat.shape[1]), np.uint8)
    result = {
        "capacity": buf.capacity, "frame_shape": list(buf.frame_shape), "stack": buf.stack,
        "batch_size": args.batch_size, "episode_len": args.episode_len,
        "nbytes": buf.nbytes, "bytes_per_transition": buf.bytes_per_transition,
        "gb_per_million_transitions": round(buf.bytes_per_transition * 1e6 / 1e9, 3),
        "add": stats_us(add_times),
        "sample": stats_us(time_calls(lambda: buf.sample(args.batch_size), args.iters)),
        "indices_only": stats_us(time_calls(window, args.iters)),
    }
    gathers = {
        "numpy_window_gather": lambda w: frames[w],
        "numpy_two_stack_gathers": lambda w: (frames[w[:, :-1]], frames[w[:, 1:]]),
        "numba_window_gather": lambda w: numba_gather(flat, w, out),
    }
    numba_gather(flat, window(), out)  # compile before timing
    result["gather_including_indices"] = {
        name: stats_us(time_calls(lambda g=g: g(window()), args.iters))
        for name, g in gathers.items()}
    return result


def bench_vector(args):
    rng = np.random.default_rng(args.seed)
    buf = ReplayBuffer(args.capacity, (4,), seed=args.seed)
    obs = rng.normal(size=(args.capacity + 1, 4)).astype(np.float32)
    add_times = []
    for n in range(args.capacity):
        t0 = time.perf_counter()
        buf.add(obs[n], n % 2, 1.0, obs[n + 1], False, False)
        add_times.append(time.perf_counter() - t0)
    n_envs = 8
    batch = (obs[:n_envs], np.zeros(n_envs, np.int64), np.ones(n_envs), obs[1:n_envs + 1],
             np.zeros(n_envs, bool), np.zeros(n_envs, bool))
    return {
        "capacity": buf.capacity, "obs_shape": [4], "batch_size": args.batch_size,
        "bytes_per_transition": buf.bytes_per_transition,
        "add": stats_us(add_times),
        f"add_batch_{n_envs}_envs": stats_us(time_calls(lambda: buf.add_batch(*batch), args.iters)),
        "sample": stats_us(time_calls(lambda: buf.sample(args.batch_size), args.iters)),
    }


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--capacity", type=int, default=100_000, help="slots in each buffer")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--iters", type=int, default=2000, help="timed calls per measurement")
    p.add_argument("--episode-len", type=int, default=850,
                   help="steps per synthetic episode (a Pong game lasts roughly 800-900 agent steps)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="results/bench/replay.json")
    args = p.parse_args()

    load_before = os.getloadavg()
    result = {
        "command": "python scripts/bench_replay.py " + " ".join(
            f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items()),
        "machine": {"cpu_count": os.cpu_count(), "processor": platform.processor(),
                    "python": platform.python_version(), "numpy": np.__version__,
                    "numba": numba.__version__,
                    "note": "shared machine: other work may run concurrently"},
        "frame_buffer": bench_frames(args),
        "vector_buffer": bench_vector(args),
    }
    result["machine"]["loadavg_1min_before_after"] = [load_before[0], os.getloadavg()[0]]
    print(json.dumps(result, indent=2))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
