"""Shared by the scripts that load a trained agent (``watch.py``, ``evaluate.py``): find the
checkpoint a run folder, results folder or file names, read its header, load the agent, and
rebuild the env the run trained on from its ``config.json``.

Not an entry point; the scripts import it (Python puts the script's own folder first on
``sys.path``).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from _tabular import fail, make_env

import envs
from agents.actor_critic import ActorCritic
from agents.base import read_header
from agents.dqn import DQN
from agents.planning import PolicyIteration, ValueIteration
from agents.policy_gradient import PolicyGradient
from agents.ppo import PPO
from agents.q_learning import QLearning
from rlkit.runs import read_json

AGENT_CLASSES = {cls.__name__: cls for cls in (QLearning, ValueIteration, PolicyIteration, DQN,
                                                PolicyGradient, ActorCritic, PPO)}
# Where a run directory keeps the agent, in order of preference.
CHECKPOINTS = ("checkpoints/best.npz", "checkpoints/latest.npz", "agent.npz")
# Where a results folder (config.json, CSVs, figures and the network; no checkpoints/) keeps
# it: a DQN's weights-only file, or a policy-gradient agent's checkpoint; failing both, the one
# agent .npz at the folder's top level.
NETWORK_FILES = ("q_network.npz", "policy.npz")
ENV_FLAGS = ("living_reward", "slip", "env_kwargs")  # what a run's config.json may say of its env


def is_agent_file(path: Path) -> bool:
    """Whether `path` is an .npz with an rlkit checkpoint header (reads the header only)."""
    try:
        read_header(path)
    except (OSError, ValueError):
        return False
    return True


def locate(source: str) -> tuple[Path, dict]:
    """The checkpoint a source names, and the config.json of its run ({} if none is found).

    A folder: a run's checkpoint (`CHECKPOINTS`), else a results folder's network file
    (`NETWORK_FILES`, else its one agent .npz); neither is one error line.
    """
    path = Path(source)
    if path.is_dir():
        found = [path / name for name in CHECKPOINTS + NETWORK_FILES if (path / name).is_file()]
        if not found:
            found = sorted(p for p in path.glob("*.npz") if is_agent_file(p))
            if len(found) > 1:
                fail(f"{path} holds several agent files ({', '.join(p.name for p in found)}): "
                     f"pass the one to use")
        if not found:
            fail(f"{path} holds no agent: expected a run's checkpoint ({', '.join(CHECKPOINTS)}) "
                 f"or a results folder's network file ({', '.join(NETWORK_FILES)} or another "
                 f"agent .npz)")
        checkpoint, folders = found[0], [path]
    elif path.is_file():
        checkpoint, folders = path, [path.parent, path.parent.parent]  # run/agent.npz, run/checkpoints/x.npz
    else:
        fail(f"{path}: no such run directory or checkpoint")
    for folder in folders:
        if (folder / "config.json").is_file():
            try:
                return checkpoint, read_json(folder / "config.json")
            except ValueError as e:
                fail(e)
    return checkpoint, {}


def checkpoint_header(path: Path) -> dict:
    """The JSON header of an rlkit checkpoint (``agents.base.read_header``); a file that is
    not one ends the script with its one-line error."""
    try:
        return read_header(path)
    except (OSError, ValueError) as e:
        fail(e)


def load_agent(checkpoint: Path, header: dict, env):
    """The agent in `checkpoint`, of the class its header names, checked against `env`."""
    name = header.get("agent")
    cls = AGENT_CLASSES.get(name)
    if cls is None:
        fail(f"{checkpoint} holds a {name} agent; expected one of {', '.join(AGENT_CLASSES)}")
    try:
        return cls.load(checkpoint, env=env)
    except ValueError as e:
        fail(e)
    except KeyError as e:  # the arrays do not fit the network the header describes
        fail(f"{checkpoint}: {e.args[0] if e.args else e}")


def env_name(source: str | None, env: str | None, config: dict, header: dict) -> str:
    """The env to play: ``env`` (a flag), else the run's, else the one the checkpoint recorded."""
    name = env or config.get("env") or header.get("env", {}).get("id")
    if not name:
        fail(f"{source}: no config.json and no env in the checkpoint; give --env")
    return name


def run_env(name: str, config: dict, env_kwargs: dict | None = None):
    """``envs.make(name, ...)`` with the run's env settings when ``name`` is the run's env
    (Gridworld's living reward and slip, the run's --env-kwargs; train_pg.py's input for the
    policy kind) made those of an env that scores whole games (``envs.evaluation_kwargs``), as
    the run's evaluations were scored, then ``env_kwargs`` on top (they override the run's)."""
    # the run's env settings apply to its own env only
    flags = {k: config.get(k) if name == config.get("env") else None for k in ENV_FLAGS}
    if name == config.get("env") and str(config.get("script", "")).startswith("pg-"):
        # train_pg.py chose the env's input from the policy kind (Pong: the book's or frames)
        from train_pg import env_kwargs as pg_env_kwargs  # here: it imports matplotlib
        run_flags = {"living_reward": None, "slip": None, "policy": None, "algo": "reinforce",
                     "env_kwargs": None, **config}
        flags = {"living_reward": None, "slip": None,
                 "env_kwargs": pg_env_kwargs(argparse.Namespace(**run_flags))}
    flags["env_kwargs"] = {**envs.evaluation_kwargs(name, flags["env_kwargs"] or {}), **(env_kwargs or {})}
    return make_env(argparse.Namespace(env=name, **flags))
