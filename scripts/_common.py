"""Shared by the deep-agent training scripts: hyper-parameter flags generated from an agent's
config dataclass, ``--resume`` handling, and the reward curve of a run directory.

Not an entry point; ``scripts/train_dqn.py`` and ``scripts/train_pg.py`` import it (Python
puts the script's own folder first on ``sys.path``).
"""
from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import json
from pathlib import Path

from _tabular import fail, json_object

from agents.training_run import MAX_EVAL_STEPS, TrainingRun, check_schedule
from rlkit.plotting import reward_curve
from rlkit.runs import DiskFullError, RunDir, read_csv

# Atari games train without sticky actions (ALE v5's default is 0.25), as the DQN paper, CleanRL's
# ppo_atari (NoFrameskip-v4) and the PyTorch reference run of README "The Atari recipe" did:
# fewer steps to learn Pong, which the 2-core budget needs; the final networks are evaluated
# both with and without them. --env-kwargs '{"repeat_action_probability": 0.25}' trains with them.
ATARI_TRAINING_ENV_KWARGS = {"repeat_action_probability": 0.0}


def field_docs(cls) -> dict:
    """The docstring under each field of a dataclass and of its dataclass bases (flag help)."""
    docs = {}
    for klass in reversed([k for k in cls.__mro__ if dataclasses.is_dataclass(k)]):
        body = ast.parse(inspect.getsource(klass)).body[0].body
        for node, after in zip(body, body[1:]):
            if isinstance(node, ast.AnnAssign) and isinstance(after, ast.Expr):
                docs[node.target.id] = after.value.value
    return docs


def add_config_flags(group, config_cls, skip=(), aliases=None, presets=None) -> list[str]:
    """One flag per field of ``config_cls`` (``--learning-rate`` for ``learning_rate``), all
    defaulting to None ("the agent's preset"); booleans get ``--x/--no-x``, tuples take several
    ints. ``aliases`` maps a field to extra flag names. ``presets`` ({label: {field: value}})
    puts the value each preset gives an unset flag into its help (:func:`unset_help`).
    Returns the field names added."""
    docs, aliases, added = field_docs(config_cls), aliases or {}, []
    for field in dataclasses.fields(config_cls):
        if field.name in skip:
            continue
        flags = ["--" + field.name.replace("_", "-"), *aliases.get(field.name, ())]
        text = docs.get(field.name, "") + unset_help(field.name, field.default, presets or {})
        kwargs = dict(dest=field.name, default=None, help=text.replace("%", "%%"))
        kind = str(field.type).split(" ")[0]
        if kind == "bool":
            group.add_argument(*flags, action=argparse.BooleanOptionalAction, **kwargs)
        elif kind == "tuple":
            group.add_argument(*flags, type=int, nargs="*", **kwargs)
        else:
            group.add_argument(*flags, type={"int": int, "float": float}.get(kind, str), **kwargs)
        added.append(field.name)
    return added


def unset_help(name: str, default, presets: dict) -> str:
    """What a flag left unset becomes, for its help: " (unset: image 0.0001, vector 0.001,
    else 32)", each preset's value and the config's own default for the others."""
    values = [f"{label} {_shown(p[name])}" for label, p in presets.items() if name in p]
    rest = len(values) < len(presets) or not presets
    if rest and default is not dataclasses.MISSING:
        values.append(f"{'else ' if values else ''}{_shown(default)}")
    return f" (unset: {', '.join(values)})" if values else ""


def _shown(value) -> str:
    """A config value as it would be typed on the command line (tuples as space-separated)."""
    if isinstance(value, (tuple, list)):
        return " ".join(str(v) for v in value) or "none"
    return "unset" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def add_run_flags(parser: argparse.ArgumentParser, presets: dict) -> None:
    """The flags of a training run's length, schedule and resume (both deep-agent scripts);
    ``presets`` ({label: {flag: value}}) gives each schedule flag's value when unset."""
    def unset(name):
        return unset_help(name, dataclasses.MISSING, presets)

    parser.add_argument("--steps", type=int, help="total environment steps" + unset("steps"))
    parser.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR")
    parser.add_argument("--eval-every", type=int,
                        help="steps between evaluations (0: only the final one)" + unset("eval_every"))
    parser.add_argument("--eval-episodes", type=int,
                        help="episodes per evaluation (at least 1)" + unset("eval_episodes"))
    parser.add_argument("--max-eval-steps", type=int, default=MAX_EVAL_STEPS,
                        help="an evaluation episode is cut after this many steps (eval.csv counts "
                             "them under 'truncated'); default %(default)s")
    parser.add_argument("--checkpoint-every", type=int,
                        help="steps between 'latest' checkpoints" + unset("checkpoint_every"))
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--no-tensorboard", action="store_true",
                        help="write no TensorBoard events (default: <run>/tb/, beside the CSVs)")
    parser.add_argument("--env-kwargs", type=json_object, default=None, metavar="JSON",
                        help="extra keyword arguments for envs.make, e.g. "
                             '\'{"max_num_frames_per_episode": 20000}\'')


def check_run_flags(args: argparse.Namespace) -> None:
    """Exit with one line when the run's schedule flags are out of range (before any folder is
    made); the ranges are TrainingRun's own (``check_schedule``)."""
    try:
        check_schedule(args.steps, args.eval_every, args.eval_episodes, args.checkpoint_every,
                       args.max_eval_steps)
    except ValueError as e:
        fail(e)


def given_values(args: argparse.Namespace, names) -> dict:
    """The entries of ``args`` among ``names`` that the user set (not None)."""
    return {k: getattr(args, k) for k in names if getattr(args, k, None) is not None}


# What a run is: a resume that types one of these with another value is refused.
RUN_IDENTITY = ("env", "env_kwargs", "living_reward", "slip")


def typed_flags(parser: argparse.ArgumentParser, argv, args: argparse.Namespace) -> set[str]:
    """The names of the flags typed in ``argv`` (None: the command line), as opposed to those
    left at their defaults; ``args`` is what ``parser`` made of ``argv``."""
    unset = object()
    # argparse fills in a default only where the namespace lacks the attribute
    probe = parser.parse_args(argv, argparse.Namespace(**{name: unset for name in vars(args)}))
    return {name for name, value in vars(probe).items() if value is not unset}


def resumed_args(parser: argparse.ArgumentParser, args: argparse.Namespace, argv,
                 identity=RUN_IDENTITY) -> tuple:
    """For ``--resume RUN_DIR``: (RunDir, the flags saved in its config.json with those typed
    now laid over them, e.g. a larger ``--steps``, and the names of the flags typed now).

    Exits with one line when RUN_DIR is no run folder, its config.json cannot be read, or a
    flag of ``identity`` (what the run is: its env, its algorithm) is typed with a value other
    than the run's. Hyper-parameters typed now are the agent's to apply or refuse (its load)."""
    if args.overwrite:
        fail("--overwrite starts a new run; --resume continues one: give one of them")
    config = Path(args.resume) / RunDir.CONFIG
    if not config.is_file():
        fail(f"--resume {args.resume}: not a run folder (no {config})")
    run = RunDir(args.resume)
    try:
        saved = run.read_config()
    except (OSError, ValueError) as e:
        fail(f"--resume {args.resume}: cannot read its config: {e}")
    if not isinstance(saved, dict):
        fail(f"--resume {args.resume}: {config} does not hold a JSON object")
    typed = typed_flags(parser, argv, args) - {"resume"}
    if "run_dir" in typed and Path(args.run_dir).resolve() != Path(args.resume).resolve():
        fail(f"--run-dir {args.run_dir}: a resume continues in its own folder, {args.resume}; "
             "give --resume alone")
    for name in identity:
        if name in typed and name in saved:
            if not _same_as_saved(getattr(args, name), saved[name]):
                fail(f"--{name.replace('_', '-')} {getattr(args, name)}: {args.resume} was made with "
                     f"{saved[name]}, and a resume cannot change it (start a new run for that)")
            typed.discard(name)  # the run's own value stays, with what the script added to it
    flags = {k: v for k, v in saved.items() if k in vars(args)}
    return run, argparse.Namespace(**{**vars(args), **flags,
                                      **{k: getattr(args, k) for k in typed}}), typed


def _same_as_saved(typed, saved) -> bool:
    """Whether a flag of what a run is, typed again with ``--resume``, names the run's own value:
    the same, or for ``--env-kwargs`` entries all among the run's (which also holds what the
    script added, e.g. train_dqn.py's Atari training settings)."""
    if isinstance(typed, dict) and isinstance(saved, dict):
        return all(key in saved and saved[key] == value for key, value in typed.items())
    return typed == saved


def record_resume(run: RunDir, args: argparse.Namespace, typed: set, agent) -> None:
    """Write into config.json what this resume changed: the flags typed now, the agent's
    hyper-parameters as they now are, and under "resumes" the step and [old, new] of each
    hyper-parameter that changed, which one line also says. Exits with one line (status 1)
    when the disk has no room for it."""
    if not typed:
        return
    config = run.read_config()
    before = config.get("hyperparams", {})
    now = json.loads(json.dumps(dataclasses.asdict(agent.config)))  # tuples as JSON's lists
    changed = {k: [before.get(k), now[k]] for k in sorted(typed)
               if k in now and before.get(k) != now[k]}
    config.update({k: getattr(args, k) for k in typed}, hyperparams=now)
    if changed:
        config.setdefault("resumes", []).append({"step": agent.steps, "changed": changed})
        print(f"resuming at step {agent.steps:,} with "
              f"{', '.join(f'{k} {old!r} -> {new!r}' for k, (old, new) in changed.items())} "
              "(recorded in config.json)")
    try:
        run.write_config(config)
    except DiskFullError as e:
        fail(e, status=1)


def plot_run(run: RunDir, title: str) -> None:
    """``reward_curve.png`` from progress.csv and eval.csv (when there is anything to draw)."""
    progress = read_csv(run / "progress.csv") if (run / "progress.csv").is_file() else []
    if not progress:
        return
    evals = read_csv(run / "eval.csv") if (run / "eval.csv").is_file() else []
    reward_curve([int(r["step"]) for r in progress], [float(r["return"]) for r in progress],
                 run / "reward_curve.png", title=title,
                 eval_steps=[int(r["step"]) for r in evals],
                 eval_returns=[float(r["mean_return"]) for r in evals])


def train_in_run(agent, run: RunDir, args: argparse.Namespace, eval_env, title: str,
                 save_replay: bool = False) -> TrainingRun:
    """Train ``agent`` to ``args.steps`` in ``run`` (evaluation and checkpoint schedules from
    ``args``), draw the reward curve and print where it stopped. Returns the TrainingRun.
    Exits with one line (status 1) when the disk fills up."""
    print(f"run directory: {run.path}  ({title}, {agent.steps:,} of {args.steps:,} steps done)")
    try:
        training = TrainingRun(run, args.steps, eval_env=eval_env, eval_every=args.eval_every,
                               eval_episodes=args.eval_episodes, checkpoint_every=args.checkpoint_every,
                               max_eval_steps=args.max_eval_steps, seed=args.seed,
                               save_replay=save_replay, progress=not args.no_progress,
                               stop_on_collapse=getattr(args, "stop_on_collapse", False),
                               tensorboard=not getattr(args, "no_tensorboard", False))
    except ImportError as e:  # tensorboardX missing
        fail(e)
    try:
        agent.learn(args.steps, run=training)
    except KeyboardInterrupt:  # a second Ctrl+C while the first one's checkpoint was written
        fail(f"interrupted twice: stopped without saving; {run.checkpoints} keeps the last "
             "complete checkpoint", status=130)
    except DiskFullError as e:  # the checkpoint being written is dropped; the previous one stays
        fail(f"{e}; {run.checkpoints} keeps the last complete checkpoint", status=1)
    plot_run(run, title)
    # a run stopped before its first evaluation has none (best_eval stays -inf)
    best = f"{training.best_eval:.2f}" if training.best_eval > float("-inf") else "none yet"
    print(f"stopped at step {agent.steps:,} after {agent.episodes:,} episodes; "
          f"best evaluation {best}; checkpoints in {run.checkpoints}")
    return training


def fill_defaults(args: argparse.Namespace, defaults: dict) -> None:
    """Set each flag of ``defaults`` that the user (or the resumed config) left as None."""
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)


def latest_checkpoint(run: RunDir):
    """``<run>/checkpoints/latest.npz``; exits with one line when there is nothing to resume."""
    latest = run.checkpoints / "latest.npz"
    if not latest.is_file():
        fail(f"{latest} does not exist: nothing to resume")
    return latest
