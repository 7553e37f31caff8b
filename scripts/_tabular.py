"""Shared by the tabular scripts: env flags, the run folder, and text tables.

Not an entry point; ``scripts/train_q.py`` and ``scripts/solve_mdp.py`` import it (Python puts
the script's own folder first on ``sys.path``).
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np

import envs
from rlkit.runs import DiskFullError, RunDir

# What a user's wrong --env or env flag raises: gymnasium's NameNotFound & co, envs.make's
# ValueError/KeyError, or TypeError for a keyword the env's constructor does not take.
_ENV_ERRORS = (ValueError, KeyError, TypeError, gym.error.Error)


def fail(message, status: int = 2) -> None:
    """Exit with one clear line on stderr (status 2, as argparse does for bad flags)."""
    print(f"error: {message}", file=sys.stderr)
    sys.exit(status)


class ArgumentParser(argparse.ArgumentParser):
    """argparse's parser, except that a bad flag ends like every other refusal of these
    scripts: one ``error:`` line on stderr and status 2 (no usage block)."""

    def error(self, message: str) -> None:
        fail(f"{message} (see --help)")


def json_object(text: str) -> dict:
    """The type of ``--env-kwargs``: a JSON object (keyword arguments), else a clear error."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise argparse.ArgumentTypeError(f"not valid JSON ({e}): {text!r}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(
            f'must be a JSON object such as \'{{"max_episode_steps": 500}}\', got {text!r}')
    return value


def add_common_flags(parser: argparse.ArgumentParser, default_env: str) -> None:
    """--env, the Gridworld model flags, --seed, --run-dir and --overwrite."""
    parser.add_argument("--env", default=default_env,
                        help="RoomExit, Gridworld, or any Gymnasium id with a discrete model P")
    parser.add_argument("--living-reward", type=float, default=None,
                        help="Gridworld: reward of entering a non-exit cell (env default if unset)")
    parser.add_argument("--slip", type=float, default=None,
                        help="Gridworld: probability of sliding sideways (env default if unset)")
    parser.add_argument("--seed", type=int, default=0, help="seeds the agent and the env")
    parser.add_argument("--run-dir", default=None,
                        help="run folder (default: runs/<script>-<env>-<timestamp>); a new run "
                             "needs it missing or empty")
    parser.add_argument("--overwrite", action="store_true",
                        help="a new run may replace the earlier run in --run-dir (its files are "
                             "deleted)")


def make_env(args: argparse.Namespace, evaluation: bool = False):
    """``envs.make(args.env, **given model flags and --env-kwargs)``; exits with one line if that
    fails. ``evaluation``: an env that scores whole games (``envs.evaluation_kwargs``: an Atari
    game's life-loss ends and reward clipping, which shape learning only, turned off)."""
    kwargs = {name: value for name, value in (("living_reward", args.living_reward),
                                               ("slip", args.slip)) if value is not None}
    kwargs.update(getattr(args, "env_kwargs", None) or {})
    if evaluation:
        kwargs = envs.evaluation_kwargs(args.env, kwargs)
    try:
        return envs.make(args.env, **kwargs)
    except _ENV_ERRORS as e:
        fail(f"cannot make env {args.env!r}"
             f"{' with ' + str(kwargs) if kwargs else ''}: {e}")


def open_run(args: argparse.Namespace, script: str, hyperparams: dict) -> RunDir:
    """The folder of a new run (``--run-dir`` or a fresh one); ``config.json`` records every
    flag as given and, under "hyperparams", the agent's resolved values (defaults filled in).

    Exits with one line when ``--run-dir`` is a file, or a non-empty folder without
    ``--overwrite`` (two runs in one folder would mix their logs and checkpoints), and when the
    disk is too full for config.json (status 1; a folder made for the run is removed again)."""
    name = f"{script}-{args.env}".replace("/", "_")
    made = args.run_dir is None or not Path(args.run_dir).exists()
    try:
        if args.run_dir is None:
            run = RunDir(name=name)
        else:
            run = RunDir.new(args.run_dir, overwrite=args.overwrite)
    except FileExistsError as e:
        if args.overwrite:
            fail(e)  # not a run folder: nothing of rlkit's to replace
        resume = f"continue that run with --resume {args.run_dir}, or " if hasattr(args, "resume") else ""
        fail(f"{e}: {resume}start afresh there with --overwrite (which deletes it)")
    except OSError as e:
        fail(f"cannot use {args.run_dir} as the run folder: {e}")
    try:
        run.write_config({"script": script, **vars(args), "hyperparams": hyperparams})
    except DiskFullError as e:
        if made:  # an empty folder would only be mistaken for a run
            shutil.rmtree(run.path, ignore_errors=True)
        fail(e, status=1)
    return run


def format_table(values: np.ndarray) -> str:
    """A (states, actions) array as aligned text: one numbered row per state."""
    columns = [str(a) for a in range(values.shape[1])]
    cells = [[f"{v:.6g}" for v in row] for row in values]
    width = max([len(c) for row in cells for c in row] + [len(c) for c in columns])
    head = f"{'state':>6} | " + " ".join(f"{c:>{width}}" for c in columns)
    lines = [head, "-" * len(head)]
    lines += [f"{i:>6} | " + " ".join(f"{c:>{width}}" for c in row) for i, row in enumerate(cells)]
    return "\n".join(lines)


# ---- grid worlds: values and arrows drawn on the map --------------------------------------

ARROWS = {"up": "↑", "right": "→", "down": "↓", "left": "←"}
# FrozenLake publishes no action names; this is its documented order.
GYM_ACTION_NAMES = {"FrozenLakeEnv": ("left", "down", "right", "up")}


def grid_of(env) -> np.ndarray | None:
    """(rows, cols) map characters of a grid world with state = row * cols + col, else None.

    Read from ``grid`` (rlkit's Gridworld) or ``desc`` (FrozenLake); a map whose cell count is
    not the number of states (Taxi's ``desc`` is a picture, not its state space) is not used.
    """
    u = env.unwrapped
    for attr in ("grid", "desc"):
        cells = getattr(u, attr, None)
        if cells is not None:
            cells = np.asarray(cells)
            cells = np.char.decode(cells) if cells.dtype.kind == "S" else cells.astype(str)
            if cells.ndim == 2 and cells.size == env.observation_space.n:
                return cells
    return None


def action_names(env) -> list[str]:
    """A name per action: the env's ``action_names``, a known Gymnasium order, or the index."""
    u = env.unwrapped
    names = getattr(u, "action_names", None) or GYM_ACTION_NAMES.get(type(u).__name__)
    return list(names) if names else [str(a) for a in range(env.action_space.n)]


def _cell_label(env, ch: str) -> str:
    """What a cell where no decision is made shows: an exit's reward, else its map character."""
    rewards = getattr(env.unwrapped, "exit_rewards", {})
    return f"{rewards[ch]:+g}" if ch in rewards else ch


def grid_maps(env, V: np.ndarray, policy: np.ndarray, terminal: np.ndarray) -> str:
    """Values and arrows on the map. V, policy, terminal: (S,); terminal cells show labels."""
    grid = grid_of(env)
    names = action_names(env)
    rows, cols = grid.shape
    value_rows, arrow_rows = [], []
    for r in range(rows):
        values, arrows = [], []
        for c in range(cols):
            s = r * cols + c
            if terminal[s]:
                label = _cell_label(env, grid[r, c])
                values.append(f"{label:>7}")
                arrows.append(f"{label:>3}")
            else:
                values.append(f"{V[s]:7.3f}")
                arrows.append(f"{ARROWS.get(names[policy[s]], names[policy[s]]):>3}")
        value_rows.append(" ".join(values))
        arrow_rows.append(" ".join(arrows))
    return "Values:\n" + "\n".join(value_rows) + "\n\nPolicy:\n" + "\n".join(arrow_rows)


def state_listing(env, V: np.ndarray, policy: np.ndarray, terminal: np.ndarray) -> str:
    """One line per state: value and planned action (named when the env names its actions);
    terminal states (episodes end on entering them) show no action."""
    names = action_names(env)
    lines = [f"{'state':>6} | {'value':>10} | action"]
    for s, (v, a) in enumerate(zip(V, policy)):
        if terminal[s]:
            lines.append(f"{s:>6} | {v:10.4f} | - (terminal)")
            continue
        name = f" ({names[a]})" if names[a] != str(a) else ""
        lines.append(f"{s:>6} | {v:10.4f} | {a}{name}")
    return "\n".join(lines)
