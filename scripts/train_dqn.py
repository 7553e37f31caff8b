"""Train a DQN agent: ``python scripts/train_dqn.py --env Pong`` (or CartPole-v1, RoomExit, ...).

Every hyper-parameter of ``agents.dqn.DQNConfig`` is a flag (``--learning-rate``/``--lr``,
``--buffer-size``, ``--target-update``, ``--no-double-dqn``, ...). A flag left unset takes the
preset for the env's observations (``agents.dqn.PRESETS``: Atari's is the recipe README "The
Atari recipe" explains, chosen for a 2-core CPU). The run directory gets config.json,
progress.csv, eval.csv, health.csv, checkpoints/latest.npz and best.npz, and reward_curve.png.
Ctrl+C or SIGTERM saves ``latest`` and exits; ``--resume RUN_DIR`` continues from it, with
any hyper-parameter typed then applied and recorded in config.json, or refused in one line
when it cannot change (``DQNConfig.FIXED_ON_RESUME``, the env).
A new run needs ``--run-dir`` missing or empty (``--overwrite`` replaces an earlier run there);
evaluation episodes are cut at ``--max-eval-steps``, and a stop is honoured during them too.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from _common import (ATARI_TRAINING_ENV_KWARGS, add_config_flags, add_run_flags, check_run_flags,
                     fill_defaults, given_values, latest_checkpoint, record_resume, resumed_args,
                     train_in_run)
from _tabular import ArgumentParser, add_common_flags, fail, make_env, open_run

import envs
from agents.base import read_header, saved_replay
from agents.dqn import DQN, PRESETS, DQNConfig, preset_for
from rlkit.backend import DeviceUnavailableError

# How long and how often, by observation kind (the agent's own defaults live in agents.dqn).
RUN_PRESETS = {
    "image": dict(steps=1_000_000, eval_every=25_000, eval_episodes=10, checkpoint_every=25_000),
    "vector": dict(steps=50_000, eval_every=5_000, eval_episodes=10, checkpoint_every=10_000),
    "discrete": dict(steps=10_000, eval_every=1_000, eval_episodes=10, checkpoint_every=5_000),
}
CONFIG_FLAGS_SET_ELSEWHERE = {"seed"}  # --seed comes with the common flags
HYPERPARAMETERS = {f.name for f in dataclasses.fields(DQNConfig)}


def build_parser() -> argparse.ArgumentParser:
    """The command line (every DQN hyper-parameter defaults to None: "use the preset")."""
    parser = ArgumentParser(description=__doc__.split("\n")[0])
    add_common_flags(parser, default_env="Pong")
    add_run_flags(parser, RUN_PRESETS)
    parser.add_argument("--save-replay", action="store_true",
                        help="also checkpoint the replay memory (resume then continues exactly)")
    parser.add_argument("--stop-on-collapse", action="store_true",
                        help="stop (checkpoint saved) when the health check finds a dead first "
                             "layer or a Q that no longer depends on the state")
    group = parser.add_argument_group("DQN hyper-parameters (unset: the env kind's preset)")
    add_config_flags(group, DQNConfig, skip=CONFIG_FLAGS_SET_ELSEWHERE,
                     aliases={"learning_rate": ["--lr"]}, presets=PRESETS)
    return parser


def resume_replay(latest: Path) -> Path | None:
    """The replay file to resume with, or None (the memory then refills from empty); says in
    one line when there is none, or when an old run's replay.npz cannot be checked."""
    replay = saved_replay(latest)
    if replay is None or not replay.is_file():
        why = (f"{replay.name} is missing" if replay is not None
               else "it was saved without its replay memory (--save-replay keeps it)")
        print(f"note: {latest}: {why}; the replay memory refills from empty and learning "
              "resumes once it holds learning_starts transitions")
        return None
    if "replay" not in read_header(latest):  # written before headers named their replay
        print(f"note: {replay} predates replay files named by their checkpoint: loaded "
              "without checking that it was saved with latest.npz")
    return replay


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    resume_dir = args.resume
    if resume_dir:
        run, args, typed = resumed_args(parser, args, argv)
    elif envs.is_atari(args.env):
        args.env_kwargs = {**ATARI_TRAINING_ENV_KWARGS, **(args.env_kwargs or {})}
    env = make_env(args)
    eval_env = make_env(args, evaluation=True)
    kind = preset_for(env.observation_space)
    fill_defaults(args, RUN_PRESETS[kind])
    check_run_flags(args)
    try:
        if resume_dir:
            latest = latest_checkpoint(run)
            # the hyper-parameters typed now: DQN.load applies them or refuses those it cannot
            changes = {k: getattr(args, k) for k in typed & HYPERPARAMETERS}
            agent = DQN.load(latest, env, replay_path=resume_replay(latest), **changes)
        else:
            hyper = {**given_values(args, HYPERPARAMETERS), "seed": args.seed}
            agent = DQN(env, **hyper)   # before the run folder: a refused config leaves nothing
            run = open_run(args, "dqn", dataclasses.asdict(agent.config))
    except (ValueError, DeviceUnavailableError) as e:
        fail(e)
    if resume_dir:
        record_resume(run, args, typed, agent)
    train_in_run(agent, run, args, eval_env, f"DQN on {args.env} ({kind} preset)", args.save_replay)
    return 0


if __name__ == "__main__":
    sys.exit(main())
