"""Solve a world with a known model by value iteration or policy iteration.

    python scripts/solve_mdp.py --env Gridworld --living-reward -0.04 --gamma 1 --method value
    python scripts/solve_mdp.py --env FrozenLake-v1 --gamma 0.99 --method policy

Prints the value of every state and the policy: drawn on the map for grid worlds (rlkit's
Gridworld, FrozenLake), one line per state otherwise. Writes the run folder: config.json,
progress.csv (one row per sweep / improvement step), solution.txt (what was printed) and
agent.npz (``ValueIteration.load`` / ``PolicyIteration.load``).
Every planner flag maps to a constructor argument; unset ones take the planner's defaults.
"""
from __future__ import annotations

import argparse

from _tabular import (ArgumentParser, add_common_flags, fail, grid_maps, grid_of, make_env, open_run,
                      state_listing)
from agents.planning import PolicyIteration, ValueIteration
from rlkit.runs import atomic_open

METHODS = {"value": ValueIteration, "policy": PolicyIteration}
PRINT_MAX_STATES = 64  # bigger worlds that are not grids are saved, not listed


def parse_args(argv=None) -> argparse.Namespace:
    p = ArgumentParser(description=__doc__.split("\n")[0])
    add_common_flags(p, default_env="Gridworld")
    p.add_argument("--method", choices=METHODS, default="value")
    p.add_argument("--gamma", type=float, default=None, help="discount (1 allowed if episodes end)")
    p.add_argument("--tol", type=float, default=None,
                   help="value: stop when max |change of V| < tol; policy: the margin a new "
                        "action must win by")
    return p.parse_args(argv)


def describe(env) -> str:
    """The env's model settings worth printing next to its name (Gridworld's)."""
    u = env.unwrapped
    parts = [f"{name.replace('_', ' ')} {getattr(u, name):g}"
             for name in ("living_reward", "slip") if hasattr(u, name)]
    return f" ({', '.join(parts)})" if parts else ""


def main(argv=None):
    args = parse_args(argv)
    env = make_env(args)
    hyper = {k: getattr(args, k) for k in ("gamma", "tol") if getattr(args, k) is not None}
    rows = []  # written once the planner has converged: a failed run leaves no folder behind
    try:
        planner = METHODS[args.method](env, **hyper)
        planner.learn(callback=rows.append)
    except (ValueError, RuntimeError) as e:
        fail(e)
    run = open_run(args, f"solve-{args.method}", planner.hyperparams())
    with run.logger() as log:
        for row in rows:
            log.write(row)
    planner.save(run / "agent.npz")

    steps = (f"{len(planner.history)} sweeps, last change {planner.history[-1]:.2g}"
             if args.method == "value" else
             f"{len(planner.history)} improvement steps, actions changed: {planner.history}")
    lines = [f"{type(planner).__name__} on {args.env}{describe(env)}, gamma {planner.gamma:g}: "
             f"{steps}", ""]
    n_states = len(planner.V)
    if grid_of(env) is not None:
        lines.append(grid_maps(env, planner.V, planner.policy, planner.model.terminal))
    elif n_states <= PRINT_MAX_STATES:
        lines.append(state_listing(env, planner.V, planner.policy, planner.model.terminal))
    else:
        lines.append(f"({n_states} states: values and policy saved in agent.npz, not printed)")
    text = "\n".join(lines)
    with atomic_open(run / "solution.txt") as f:
        f.write(text + "\n")
    print(text)
    print(f"\nrun folder: {run.path}")
    return planner


if __name__ == "__main__":
    main()
