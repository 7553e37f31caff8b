"""rlkit at two git revisions, bench_core's cases timed in lock-step: what an engine change gains.

    python scripts/bench_revisions.py --base REV [--cases dqn_agent_update,...] [--samples 40]
                                      [--threads 2] [--out results/bench/revisions.json]

bench_core.py's rounds are whole processes, a minute or more apart, and the speed of the shared
machines drifts by 20-50% within minutes. Here each engine gets one worker process, and the two
take turns (scripts/_lockstep.py says how): the base, the revision ``--base`` checked out into
a temporary git worktree; the head, this checkout as it is, uncommitted changes included. Each
is first on its worker's PYTHONPATH, and the worker's ready line says which rlkit it imported.

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
import subprocess
import tempfile
from pathlib import Path

from _bench_core_worker import CASES
from _lockstep import paired_turns, start, stop, turn_settings
from bench_core import cpu_line, cpu_model, write_report

REPO = Path(__file__).resolve().parent.parent


def start_rlkit(root: Path, cases: list, threads: int):
    """A worker running the engine checked out at ``root``; exits if it imported another."""
    child, ready = start("rlkit", cases, threads, pythonpath=root)
    if Path(ready["rlkit"]) != root.resolve():
        child.kill()
        raise SystemExit(f"bench_revisions: the worker for {root} imported rlkit from {ready['rlkit']}")
    return child


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
    args = parser.parse_args()
    cases = args.cases.split(",")
    unknown = sorted(set(cases) - set(CASES))
    if unknown:
        parser.error(f"unknown case(s) {unknown}: expected some of {list(CASES)}")
    if not args.base:
        parser.error("--base is required")
    base_commit = git("rev-parse", "--verify", args.base + "^{commit}")
    head = git("describe", "--always", "--dirty")
    with tempfile.TemporaryDirectory(prefix="rlkit-base-") as folder:
        checkout = Path(folder) / "rlkit"
        git("worktree", "add", "--detach", str(checkout), base_commit)
        try:
            sides = {"base": start_rlkit(checkout, cases, args.threads),
                     "head": start_rlkit(REPO, cases, args.threads)}
            print(cpu_line(cpu_model()))
            print(f"base {base_commit[:10]}, head {head}; {args.samples} pairs per case, "
                  f"{args.threads} threads")
            results = paired_turns(sides, "base", cases, args.samples)
            stop(sides.values())
        finally:
            git("worktree", "remove", "--force", str(checkout))
    write_report(args.out, {"base": base_commit, "head": head, **turn_settings(),
                            "ratio": "median over pairs of head ms / base ms", "cases": results},
                 args.threads)


if __name__ == "__main__":
    main()
