"""rlkit at two git revisions, bench_core's cases timed in lock-step: what an engine change gains.

    python scripts/bench_revisions.py --base REV [--cases dqn_agent_update,...] [--samples 40]
                                      [--threads 2] [--out results/bench/revisions.json]

bench_core.py's rounds are whole processes, a minute or more apart. On the shared 2-core
machines the speed drifts by 20-50% within minutes, so two such runs of two engines compare
the drift as much as the engines. Here each engine gets one worker process that builds every
case once: the base, the revision ``--base`` checked out into a temporary git worktree; the
head, this checkout as it is, uncommitted changes included. Each is first on its child's
PYTHONPATH (the child checks which rlkit it imported). The parent then gives the two a turn
each, the first side alternating: a turn is ``WARM_CALLS`` untimed calls of the case, then
timed calls, as many as make ``TIMED_MIN_S`` on the base (the same count for both sides; a
single call of a 1 ms case moved 10% between runs). Between turns it pauses ``PAUSE_S``, so
that the side that just ran has its OpenBLAS threads asleep (they spin for a while after a
call and would take the cores from the other side). A slow spell of the machine then hits
both sides of a pair, seconds apart.

Reported per case: each side's median milliseconds per call and the median of the paired
ratios head / base (below 1: the head is faster). Two A/A runs on the 2-core Xeon (``--base
HEAD`` on a clean checkout: the same code on both sides, 30 pairs,
``results/bench/revisions-xeon-aa-{1,2}.json``) gave 0.94 and 0.99 for the batch-1 forward and
1.01 for the recipe update: each process keeps a bias of a few percent of its own (where its
arrays landed in memory, say), so an effect below 5% needs several runs to be believed. The
cases are bench_core's (scripts/_bench_core_worker.py, the head's definitions for both
sides). Writes JSON with the CPU model and both revisions.
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _bench_core_worker import CASES, RlkitSide
from bench_core import cpu_line, cpu_model, write_report

from rlkit.backend import thread_limited_env

SCRIPTS = Path(__file__).resolve().parent
REPO = SCRIPTS.parent
# untimed calls before the timed ones: the turn's first call after the pause wakes the thread
# pools and refills the caches, which a training loop's steady state does not pay
WARM_CALLS = 2
# seconds between turns, longer than OpenBLAS's spin before its idle threads sleep (2^28
# cycles by default, about 0.1 s)
PAUSE_S = 0.15
# the least time a turn's timed calls take together on the base
TIMED_MIN_S = 0.02


def worker(cases: list, threads: int) -> None:
    """Child: build ``cases``, say which rlkit it runs, then for each line ``case calls`` read
    on stdin run one turn and print the seconds per timed call."""
    import numpy as np

    import rlkit
    side = RlkitSide(threads)
    steps = {case: CASES[case](side, np.random.default_rng(0)) for case in cases}
    print(json.dumps({"rlkit": str(Path(rlkit.__file__).resolve().parents[1])}), flush=True)
    for line in sys.stdin:
        case, calls = line.split()
        step = steps[case]
        for _ in range(WARM_CALLS):
            step()
        start = time.perf_counter()
        for _ in range(int(calls)):
            step()
        print((time.perf_counter() - start) / int(calls), flush=True)


def start_worker(root: Path, cases: list, threads: int) -> subprocess.Popen:
    """A worker child running the engine checked out at ``root``."""
    env = thread_limited_env(threads)
    env["PYTHONPATH"] = str(root)
    child = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "--worker", "--cases", ",".join(cases),
         "--threads", str(threads)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    ready = child.stdout.readline()
    if not ready:
        child.wait()
        raise SystemExit(f"bench_revisions: the worker for {root} failed (exit {child.returncode})")
    imported = Path(json.loads(ready)["rlkit"])
    if imported != root.resolve():
        child.kill()
        raise SystemExit(f"bench_revisions: the worker for {root} imported rlkit from {imported}")
    return child


def timed_turn(child: subprocess.Popen, case: str, calls: int = 1) -> float:
    """Milliseconds per timed call of one turn of ``case`` with ``calls`` timed calls."""
    child.stdin.write(f"{case} {calls}\n")
    child.stdin.flush()
    return float(child.stdout.readline()) * 1e3


def compare(sides: dict, cases: list, samples: int) -> dict:
    """{case: {"base_ms", "head_ms", "ratio", "pairs", "timed_calls"}} from ``samples`` pairs of
    turns."""
    results = {}
    for case in cases:
        calls = max(1, math.ceil(TIMED_MIN_S * 1e3 / timed_turn(sides["base"], case)))
        times = {label: [] for label in sides}
        for sample in range(samples):
            order = ("base", "head") if sample % 2 == 0 else ("head", "base")
            for label in order:
                time.sleep(PAUSE_S)
                times[label].append(timed_turn(sides[label], case, calls))
        ratios = [head / base for head, base in zip(times["head"], times["base"])]
        results[case] = {"base_ms": statistics.median(times["base"]),
                         "head_ms": statistics.median(times["head"]),
                         "ratio": statistics.median(ratios), "pairs": samples, "timed_calls": calls}
        row = results[case]
        print(f"{case:22s} base {row['base_ms']:9.3f} ms   head {row['head_ms']:9.3f} ms   "
              f"head/base {row['ratio']:.3f}", flush=True)
    return results


def git(*arguments) -> str:
    return subprocess.run(["git", "-C", str(REPO), *arguments], check=True, capture_output=True,
                          text=True).stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", help="the git revision to compare this checkout with")
    parser.add_argument("--cases",
                        default="dqn_agent_update,dqn_recipe_update,dqn_train_step,cnn_forward_b1",
                        help="comma-separated subset of " + ", ".join(CASES))
    parser.add_argument("--samples", type=int, default=40, help="pairs of timed turns per case")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="results/bench/revisions.json")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    cases = args.cases.split(",")
    unknown = sorted(set(cases) - set(CASES))
    if unknown:
        parser.error(f"unknown case(s) {unknown}: expected some of {list(CASES)}")
    if args.worker:
        worker(cases, args.threads)
        return
    if not args.base:
        parser.error("--base is required")
    base_commit = git("rev-parse", "--verify", args.base + "^{commit}")
    head = git("describe", "--always", "--dirty")
    with tempfile.TemporaryDirectory(prefix="rlkit-base-") as folder:
        checkout = Path(folder) / "rlkit"
        git("worktree", "add", "--detach", str(checkout), base_commit)
        try:
            sides = {"base": start_worker(checkout, cases, args.threads),
                     "head": start_worker(REPO, cases, args.threads)}
            print(cpu_line(cpu_model()))
            print(f"base {base_commit[:10]}, head {head}; {args.samples} pairs per case, "
                  f"{args.threads} threads")
            results = compare(sides, cases, args.samples)
            for child in sides.values():
                child.stdin.close()
                child.wait()
        finally:
            git("worktree", "remove", "--force", str(checkout))
    write_report(args.out, {"base": base_commit, "head": head, "warm_calls": WARM_CALLS,
                            "timed_min_s": TIMED_MIN_S, "pause_s": PAUSE_S,
                            "ratio": "median over pairs of head ms / base ms", "cases": results},
                 args.threads)


if __name__ == "__main__":
    main()
