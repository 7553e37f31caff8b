"""Value-iteration benchmark: a generated 200x200 gridworld, vectorised sweeps vs a Python loop.

    python scripts/bench_tabular.py [--size 200] [--slip 0.2] [--gamma 0.99] [--tol 1e-8]
                                    [--loop-sweeps 3] [--out results/bench/tabular.json]

The map (seeded): floor with 10% walls, a +1 exit in the top-right corner, a -1 exit beside
it, the start bottom-left; living reward -0.04. Timed in one run:

- model build: reading the env's P (S * 4 actions * up to 3 outcomes) into the sparse model;
- solve: ``ValueIteration.learn()`` to max |dV| < tol, and its time per sweep;
- loop sweep: the textbook triple loop over states, actions and outcomes of P, run
  ``--loop-sweeps`` times from the same V as the vectorised sweep it is compared with
  (max |difference| reported; both are one synchronous Bellman sweep).

Times are wall-clock on whatever else the machine is running.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import scipy
import scipy.sparse as sp

from agents.mdp import TabularModel
from agents.planning import ValueIteration
import envs
from rlkit.runs import write_json_atomic


def generate_map(size: int, wall_fraction: float = 0.1, seed: int = 0) -> list[str]:
    """A size x size text map: random walls, G top-right, P just below it, S bottom-left."""
    rng = np.random.default_rng(seed)
    cells = np.where(rng.random((size, size)) < wall_fraction, "#", ".")
    cells[0, -1], cells[1, -1], cells[-1, 0] = "G", "P", "S"
    cells[0, -2] = cells[1, -2] = cells[-2, 0] = cells[-1, 1] = "."  # keep exits and start open
    return ["".join(row) for row in cells]


def loop_sweep(P, V: list[float], gamma: float) -> list[float]:
    """One Bellman sweep written as the textbook loop: V'(s) = max_a sum_k p (r + gamma V(s'))."""
    V_new = [0.0] * len(V)
    for s in range(len(V)):
        best = -float("inf")
        for outcomes in P[s].values():
            q = 0.0
            for p, s_next, r, terminated in outcomes:
                q += p * (r if terminated else r + gamma * V[s_next])
            best = max(best, q)
        V_new[s] = best
    return V_new


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--size", type=int, default=200)
    p.add_argument("--slip", type=float, default=0.2)
    p.add_argument("--gamma", type=float, default=0.99)
    p.add_argument("--tol", type=float, default=1e-8)
    p.add_argument("--loop-sweeps", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="results/bench/tabular.json")
    args = p.parse_args(argv)

    env = envs.make("Gridworld", grid=generate_map(args.size, seed=args.seed), slip=args.slip)
    P = env.unwrapped.P

    t0 = time.perf_counter()
    agent = ValueIteration(env, gamma=args.gamma, tol=args.tol)
    build_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    agent.learn()
    solve_s = time.perf_counter() - t0
    sweeps = len(agent.history)
    model: TabularModel = agent.model

    # Compare single sweeps from the same V: a mid-solve V (after 100 sweeps of a fresh solve)
    # so that values differ across states and the comparison is not trivially zero.
    V = np.zeros(model.n_states)
    for _ in range(100):
        V = model.backup(V, args.gamma).max(axis=0)
    loop_times, vec_times, max_diff = [], [], 0.0
    for _ in range(args.loop_sweeps):
        t0 = time.perf_counter()
        V_vec = model.backup(V, args.gamma).max(axis=0)
        vec_times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        V_loop = np.array(loop_sweep(P, V.tolist(), args.gamma))
        loop_times.append(time.perf_counter() - t0)
        max_diff = max(max_diff, float(np.max(np.abs(V_loop - V_vec))))
        V = V_vec
    # Per-sweep time of the vectorised solve itself (the median of standalone sweeps agrees).
    vec_sweep_s = solve_s / sweeps
    loop_sweep_s = float(np.median(loop_times))

    result = {
        "world": {"size": args.size, "states": model.n_states, "actions": model.n_actions,
                  "nonzeros": int(model.T.nnz if sp.issparse(model.T) else np.count_nonzero(model.T)), "slip": args.slip, "gamma": args.gamma,
                  "tol": args.tol, "walls": int(len(env.unwrapped.wall_states))},
        "model_build_s": round(build_s, 4),
        "solve_s": round(solve_s, 4),
        "total_s": round(build_s + solve_s, 4),
        "sweeps": sweeps,
        "vectorised_sweep_ms": round(vec_sweep_s * 1e3, 4),
        "vectorised_sweep_standalone_ms": round(float(np.median(vec_times)) * 1e3, 4),
        "loop_sweep_ms": round(loop_sweep_s * 1e3, 2),
        "loop_sweeps_timed": args.loop_sweeps,
        "speedup_per_sweep": round(loop_sweep_s / vec_sweep_s, 1),
        "max_abs_difference_loop_vs_vectorised": max_diff,
        "targets": {"total_s_under": 2.0, "speedup_at_least": 50},
        "machine": {"python": platform.python_version(), "numpy": np.__version__,
                    "scipy": scipy.__version__, "cpus": os.cpu_count(),
                    "note": "wall-clock on a shared machine; other jobs may be running"},
        "command": " ".join(["python scripts/bench_tabular.py",
                             *(sys.argv[1:] if argv is None else argv)]),
    }
    print(f"{model.n_states} states, {result['world']['nonzeros']} non-zeros; slip {args.slip}, "
          f"gamma {args.gamma}, tol {args.tol:g}")
    print(f"model build   {build_s:8.3f} s")
    print(f"solve         {solve_s:8.3f} s  ({sweeps} sweeps, {vec_sweep_s * 1e3:.3f} ms/sweep)")
    print(f"total         {build_s + solve_s:8.3f} s  (target < 2 s)")
    print(f"loop sweep    {loop_sweep_s * 1e3:8.1f} ms  (median of {args.loop_sweeps})")
    print(f"speedup       {loop_sweep_s / vec_sweep_s:8.1f} x per sweep (target >= 50 x)")
    print(f"max |loop - vectorised| over the compared sweeps: {max_diff:.3g}")
    out = Path(args.out)
    write_json_atomic(out, result)
    print(f"wrote {out}")
    return result


if __name__ == "__main__":
    main()
