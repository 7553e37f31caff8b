"""Train a DQN agent: ``python scripts/train_dqn.py --env Pong`` (or CartPole-v1, RoomExit, ...).

Every hyper-parameter of ``agents.dqn.DQNConfig`` is a flag (``--learning-rate``/``--lr``,
``--buffer-size``, ``--target-update``, ``--no-double-dqn``, ...). A flag left unset takes the
preset for the env's observations (``agents.dqn.PRESETS``: Pong's come from the DQN paper as
used by CleanRL/RL Zoo, scaled to a CPU budget). The run directory gets config.json,
progress.csv, eval.csv, checkpoints/latest.npz and best.npz, and reward_curve.png.
Ctrl+C or SIGTERM saves ``latest`` and exits; ``--resume RUN_DIR`` continues from it.
"""
from __future__ import annotations

import argparse
import ast
import json
import dataclasses
import inspect
import sys
from pathlib import Path

from _tabular import add_common_flags, fail, make_env, open_run

from agents.dqn import DQN, DQNConfig, preset_for
from agents.training_run import TrainingRun
from rlkit.backend import DeviceUnavailableError
from rlkit.plotting import reward_curve
from rlkit.runs import RunDir, read_csv

# How long and how often, by observation kind (the agent's own defaults live in agents.dqn).
RUN_PRESETS = {
    "image": dict(steps=2_000_000, eval_every=50_000, eval_episodes=3, checkpoint_every=25_000),
    "vector": dict(steps=50_000, eval_every=5_000, eval_episodes=10, checkpoint_every=10_000),
    "discrete": dict(steps=10_000, eval_every=1_000, eval_episodes=10, checkpoint_every=5_000),
}
CONFIG_FLAGS_SET_ELSEWHERE = {"seed"}  # --seed comes with the common flags
RESUME_OVERRIDES = ("device", "threads")  # hyper-parameters a resumed run may change


def field_docs(cls) -> dict:
    """The docstring under each field of a dataclass (used as the flag's help)."""
    body = ast.parse(inspect.getsource(cls)).body[0].body
    docs = {}
    for node, after in zip(body, body[1:]):
        if isinstance(node, ast.AnnAssign) and isinstance(after, ast.Expr):
            docs[node.target.id] = after.value.value
    return docs


def build_parser() -> argparse.ArgumentParser:
    """The command line (every DQN hyper-parameter defaults to None: "use the preset")."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_common_flags(parser, default_env="Pong")
    parser.add_argument("--steps", type=int, help="total environment steps (preset by env kind)")
    parser.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR")
    parser.add_argument("--eval-every", type=int, help="steps between evaluations")
    parser.add_argument("--eval-episodes", type=int, help="episodes per evaluation")
    parser.add_argument("--checkpoint-every", type=int, help="steps between 'latest' checkpoints")
    parser.add_argument("--save-replay", action="store_true",
                        help="also checkpoint the replay memory (resume then continues exactly)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--env-kwargs", type=json.loads, default=None, metavar="JSON",
                        help='extra keyword arguments for envs.make, e.g. \'{"max_num_frames_per_episode": 4000}\'')
    docs = field_docs(DQNConfig)
    group = parser.add_argument_group("DQN hyper-parameters (unset: the env kind's preset)")
    for field in dataclasses.fields(DQNConfig):
        if field.name in CONFIG_FLAGS_SET_ELSEWHERE:
            continue
        flags = ["--" + field.name.replace("_", "-")] + (["--lr"] if field.name == "learning_rate" else [])
        kwargs = dict(dest=field.name, default=None, help=docs.get(field.name, ""))
        if field.type in ("bool", bool):
            group.add_argument(*flags, action=argparse.BooleanOptionalAction, **kwargs)
        elif field.name == "hidden_sizes":
            group.add_argument(*flags, type=int, nargs="+", **kwargs)
        else:
            kind = {"int": int, "float": float}.get(str(field.type).split(" ")[0], str)
            group.add_argument(*flags, type=kind, **kwargs)
    return parser


def hyperparams_from(args: argparse.Namespace) -> dict:
    """The DQN keyword arguments the user set on the command line (seed always)."""
    names = {f.name for f in dataclasses.fields(DQNConfig)}
    given = {k: v for k, v in vars(args).items() if k in names and v is not None}
    return {**given, "seed": args.seed}


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    resume_dir = args.resume
    if resume_dir:
        run = RunDir(resume_dir)
        saved = run.read_config()
        # the saved flags, overridden by those given now with a non-default value (--steps)
        changed = {k: v for k, v in vars(args).items() if v != parser.get_default(k)}
        flags = {k: v for k, v in saved.items() if k in vars(args)}
        args = argparse.Namespace(**{**vars(args), **flags, **changed})
    env = make_env(args)
    eval_env = make_env(args)
    kind = preset_for(env.observation_space)
    for name, value in RUN_PRESETS[kind].items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    try:
        if resume_dir:
            latest = run.checkpoints / "latest.npz"
            if not latest.is_file():
                fail(f"{latest} does not exist: nothing to resume")
            # how to run may change on resume; what was learned (shapes, schedule) may not
            how = {k: getattr(args, k) for k in RESUME_OVERRIDES if getattr(args, k) is not None}
            agent = DQN.load(latest, env, replay_path=run.checkpoints / "replay.npz", **how)
        else:
            hyper = hyperparams_from(args)
            agent = DQN(env, **hyper)   # before the run folder: a refused config leaves nothing
            run = open_run(args, "dqn", dataclasses.asdict(agent.config))
    except (ValueError, DeviceUnavailableError) as e:
        fail(e)
    print(f"run directory: {run.path}  ({kind} preset, {agent.steps:,} of {args.steps:,} steps done)")
    training = TrainingRun(run, args.steps, eval_env=eval_env, eval_every=args.eval_every,
                           eval_episodes=args.eval_episodes, checkpoint_every=args.checkpoint_every,
                           save_replay=args.save_replay, progress=not args.no_progress)
    agent.learn(args.steps, run=training)
    plot(run, args.env)
    print(f"stopped at step {agent.steps:,} after {agent.episodes:,} episodes; "
          f"best evaluation {training.best_eval:.2f}; checkpoints in {run.checkpoints}")
    return 0


def plot(run: RunDir, title: str) -> None:
    """reward_curve.png from progress.csv and eval.csv (when there is anything to draw)."""
    progress = read_csv(run / "progress.csv") if (run / "progress.csv").is_file() else []
    if not progress:
        return
    evals = read_csv(run / "eval.csv") if (run / "eval.csv").is_file() else []
    reward_curve([int(r["step"]) for r in progress], [float(r["return"]) for r in progress],
                 run / "reward_curve.png", title=f"DQN on {title}",
                 eval_steps=[int(r["step"]) for r in evals],
                 eval_returns=[float(r["mean_return"]) for r in evals])


if __name__ == "__main__":
    sys.exit(main())
