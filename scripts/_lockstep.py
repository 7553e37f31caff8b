"""Two benchmark workers timed in lock-step, one turn each: what scripts/bench_revisions.py
(rlkit at two git revisions) and ``scripts/bench_core.py --lockstep`` (rlkit against PyTorch)
compare.

On the shared 2-core machines the speed drifts by 20-50% within minutes, so two timings
minutes apart compare the drift as much as the code. Here each side is one long-lived worker
process that builds bench_core's cases once (scripts/_bench_core_worker.py: the same program
for rlkit and PyTorch). The parent then gives the two sides a turn each, the first side
alternating from pair to pair:
- a turn is untimed calls of the case (``WARM_CALLS`` of them, and ``WARM_MIN_S`` of time),
  then timed calls, as many as make ``TIMED_MIN_S`` on the reference side (the same count for
  both sides; a single call of a 1 ms case moved 10% between runs);
- between turns the parent pauses ``PAUSE_S``, so that the side that just ran has its thread
  pools asleep (OpenBLAS's and OpenMP's threads spin for a while after a call and would take
  the cores from the other side).

A slow spell of the machine then hits both sides of a pair, seconds apart, and the median of
the paired ratios is the estimate.

    python scripts/_lockstep.py {rlkit|torch} --cases a,b --threads 2

is a worker; the parents start them.
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from _bench_core_worker import CASES, SIDES

# the package's light part only: a PyTorch worker must not load the engine (its malloc
# settings, rlkit/memory.py, would change PyTorch's allocations too)
from rlkit.backend import thread_limited_env

# untimed calls before the timed ones, at least WARM_CALLS lasting at least WARM_MIN_S
# together: the turn's first calls after the pause wake the thread pools and refill the caches,
# which a training loop's steady state does not pay. And after 0.15 s asleep the process ran
# slowly for about 45 ms (cause not measured): with rlkit's kernels on two threads
# (rlkit/threads.py) the LSTM case's calls after such a pause took 6.8, 6.4, 6.0, 6.0, 6.0,
# 6.0, 6.1 ms and only then 3.6-4.9, against 4.2 and then 3.6-3.8 after 10 ms asleep (2-core
# Xeon, medians of 10 pauses, ad hoc); a training loop, whose updates come every few
# milliseconds, never sleeps that long
WARM_CALLS = 2
WARM_MIN_S = 0.1
# seconds between turns, longer than OpenBLAS's spin before its idle threads sleep (2^28
# cycles by default, about 0.1 s)
PAUSE_S = 0.15
# the least time a turn's timed calls take together on the reference side
TIMED_MIN_S = 0.02


def turn_settings() -> dict:
    """The settings of a turn, for a report's JSON: what its timings were taken under."""
    return {"warm_calls": WARM_CALLS, "warm_min_s": WARM_MIN_S, "timed_min_s": TIMED_MIN_S,
            "pause_s": PAUSE_S}


def serve(framework: str, cases: list, threads: int) -> None:
    """Worker: build ``cases`` for ``framework``, print one JSON line saying what it runs (the
    rlkit checkout it imported, the versions), then for each line ``case calls`` read on stdin
    run one turn and print the seconds per timed call."""
    side = SIDES[framework](threads)
    side.module.manual_seed(0)  # the same initial weights in every worker of a framework
    steps = {case: CASES[case](side, np.random.default_rng(0)) for case in cases}
    ready = {"framework": framework, "versions": side.info()}
    if framework == "rlkit":  # which checkout's engine this is (bench_revisions checks it)
        ready["rlkit"] = str(Path(side.module.__file__).resolve().parents[1])
    print(json.dumps(ready), flush=True)
    for line in sys.stdin:
        case, calls = line.split()
        step = steps[case]
        warm_until, warm_calls = time.perf_counter() + WARM_MIN_S, 0
        while warm_calls < WARM_CALLS or time.perf_counter() < warm_until:
            step()
            warm_calls += 1
        start = time.perf_counter()
        for _ in range(int(calls)):
            step()
        print((time.perf_counter() - start) / int(calls), flush=True)


def start(framework: str, cases: list, threads: int, pythonpath: Path | None = None):
    """(worker process, its ready line as a dict) for ``framework``, every thread pool limited
    to ``threads``; with ``pythonpath``, that checkout's rlkit comes first on its path."""
    env = thread_limited_env(threads)
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    child = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), framework, "--cases", ",".join(cases),
         "--threads", str(threads)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    ready = child.stdout.readline()
    if not ready:
        child.wait()
        raise SystemExit(f"lock-step: the {framework} worker failed (exit {child.returncode})")
    return child, json.loads(ready)


def timed_turn(child: subprocess.Popen, case: str, calls: int = 1) -> float:
    """Milliseconds per timed call of one turn of ``case`` with ``calls`` timed calls."""
    child.stdin.write(f"{case} {calls}\n")
    child.stdin.flush()
    return float(child.stdout.readline()) * 1e3


def paired_turns(sides: dict, reference: str, cases: list, samples: int) -> dict:
    """``sides``: {label: worker} for two labels. Returns {case: {"<label>_ms": median ms per
    call of each side, "ratio": median over pairs of other / ``reference``, "pairs",
    "timed_calls"}} from ``samples`` pairs of turns, printing a line per case."""
    (other,) = [label for label in sides if label != reference]
    results = {}
    for case in cases:
        calls = max(1, math.ceil(TIMED_MIN_S * 1e3 / timed_turn(sides[reference], case)))
        times = {label: [] for label in sides}
        for sample in range(samples):
            order = (reference, other) if sample % 2 == 0 else (other, reference)
            for label in order:
                time.sleep(PAUSE_S)
                times[label].append(timed_turn(sides[label], case, calls))
        ratios = [mine / theirs for mine, theirs in zip(times[other], times[reference])]
        results[case] = {f"{reference}_ms": statistics.median(times[reference]),
                         f"{other}_ms": statistics.median(times[other]),
                         "ratio": statistics.median(ratios), "pairs": samples, "timed_calls": calls}
        row = results[case]
        print(f"{case:22s} {reference} {row[f'{reference}_ms']:9.3f} ms   {other} "
              f"{row[f'{other}_ms']:9.3f} ms   {other}/{reference} {row['ratio']:.3f}", flush=True)
    return results


def stop(workers) -> None:
    """End the worker processes (their stdin closes, they exit)."""
    for child in workers:
        child.stdin.close()
        child.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("framework", choices=sorted(SIDES))
    parser.add_argument("--cases", required=True)
    parser.add_argument("--threads", type=int, required=True)
    args = parser.parse_args()
    serve(args.framework, args.cases.split(","), args.threads)
