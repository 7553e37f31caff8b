"""Tabular Q-learning on a world with Discrete states and actions.

    python scripts/train_q.py --env RoomExit --gamma 0.8 --rule book --episodes 1000

Prints the learned table raw and normalised (100 * Q / max Q, as the seed book shows it) and
the greedy path from every state, then writes the run folder: config.json, progress.csv (one
row per episode: return, length, epsilon), q_table.npy and agent.npz (QLearning.load).
Every agent flag maps to a QLearning argument; unset ones take QLearning's defaults.
"""
from __future__ import annotations

import argparse

import numpy as np

from _tabular import ArgumentParser, add_common_flags, fail, format_table, make_env, open_run
from agents.mdp import TabularModel
from agents.q_learning import RULES, QLearning
from rlkit.checks import check, integer
from rlkit.runs import atomic_open

# Printing a table or every path is useful up to here; bigger worlds are only saved.
PRINT_MAX_STATES = 64


def parse_args(argv=None) -> argparse.Namespace:
    p = ArgumentParser(description=__doc__.split("\n")[0])
    add_common_flags(p, default_env="RoomExit")
    p.add_argument("--episodes", type=int, default=1000, help="episodes to learn from")
    p.add_argument("--rule", choices=RULES, default=None, help="update rule (QLearning: td)")
    p.add_argument("--gamma", type=float, default=None, help="discount")
    p.add_argument("--alpha", type=float, default=None, help="step size (td; book is 1)")
    p.add_argument("--epsilon", type=float, default=None, help="td: first episode's epsilon")
    p.add_argument("--epsilon-min", type=float, default=None, help="td: epsilon floor")
    p.add_argument("--epsilon-decay", type=float, default=None, help="td: epsilon factor/episode")
    return p.parse_args(argv)


def main(argv=None) -> QLearning:
    args = parse_args(argv)
    env = make_env(args)
    hyper = {k: getattr(args, k) for k in ("rule", "gamma", "alpha", "epsilon", "epsilon_min",
                                           "epsilon_decay") if getattr(args, k) is not None}
    try:
        check("episodes", args.episodes, integer(0))  # before the run folder is made
        model = TabularModel.from_env(env)  # greedy paths (and the book's rule) read P
        agent = QLearning(env, seed=args.seed, **hyper)
    except ValueError as e:
        fail(e)
    run = open_run(args, "q", agent.hyperparams())
    with run.logger() as log:
        agent.learn(args.episodes, callback=log.write)
    with atomic_open(run / "q_table.npy", "wb") as f:
        np.save(f, agent.q_table)
    agent.save(run / "agent.npz")

    n_states = agent.q_table.shape[0]
    print(f"Q-learning ({agent.rule} rule, gamma {agent.gamma:g}, alpha {agent.alpha:g}) "
          f"on {args.env}, {agent.episodes_done} episodes")
    if n_states <= PRINT_MAX_STATES:
        print("\nLearned table (raw):")
        print(format_table(agent.q_table))
        print("\nNormalised (100 * Q / max Q):")
        print(format_table(agent.normalised_table()))
        print("\nGreedy path from every state (first action on ties):")
        for s in np.flatnonzero(~model.terminal):
            print(f"  {s}: " + " -> ".join(map(str, agent.greedy_path(s))))
    else:
        print(f"({n_states} states: table saved, not printed)")
    print(f"\nrun folder: {run.path}")
    return agent


if __name__ == "__main__":
    main()
