"""Names: Gymnasium registration of rlkit's worlds, and `make` / `make_vec` for short names and ids."""
from __future__ import annotations

import difflib

import gymnasium as gym

from envs.action_check import ActionCheck
from envs.atari import make_pong, make_pong_vec

ROOM_EXIT_ID = "rlkit/RoomExit-v0"
GRIDWORLD_ID = "rlkit/Gridworld-v0"
# Step limits (TimeLimit truncation) so an agent that wanders never loops forever.
ROOM_EXIT_MAX_STEPS = 100
GRIDWORLD_MAX_STEPS = 100

# short name -> registered Gymnasium id, or None for the Atari constructor
SHORT_NAMES = {"RoomExit": ROOM_EXIT_ID, "Gridworld": GRIDWORLD_ID, "Pong": None}


def register() -> None:
    """Register rlkit's tabular worlds with Gymnasium (idempotent)."""
    if ROOM_EXIT_ID not in gym.registry:
        gym.register(ROOM_EXIT_ID, entry_point="envs.room_exit:RoomExitEnv",
                     max_episode_steps=ROOM_EXIT_MAX_STEPS)
    if GRIDWORLD_ID not in gym.registry:
        gym.register(GRIDWORLD_ID, entry_point="envs.gridworld:GridworldEnv",
                     max_episode_steps=GRIDWORLD_MAX_STEPS)


def _resolve(name: str) -> str | None:
    """The Gymnasium id `name` stands for, or None for "Pong" (built by `envs.atari`).

    Raises ValueError for a name that is neither a short name nor a Gymnasium id.
    """
    for short, env_id in SHORT_NAMES.items():
        if name.lower() == short.lower():
            return env_id
    # "module:Env-v0" makes Gymnasium import the module that registers the id
    if name in gym.registry or ":" in name:
        return name
    close = difflib.get_close_matches(name, list(SHORT_NAMES) + list(gym.registry), n=3)
    hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
    raise ValueError(
        f"unknown environment {name!r}: use a short name ({', '.join(SHORT_NAMES)}) or a "
        f"registered Gymnasium id such as 'CartPole-v1', 'FrozenLake-v1' or 'ALE/Breakout-v5' "
        f"(list them with gymnasium.pprint_registry()).{hint}"
    )


def make(name: str, **kwargs) -> gym.Env:
    """Build one environment from a short name or a Gymnasium id.

    "RoomExit", "Gridworld": `gymnasium.make` of the registered rlkit ids (kwargs go to the
    env class, plus Gymnasium's own such as `max_episode_steps`, `render_mode`).
    "Pong": `envs.atari.make_pong(**kwargs)`. Any other name: `gymnasium.make(name, **kwargs)`
    wrapped so an out-of-range action raises a ValueError naming the valid range.
    Short names are case-insensitive. Unknown names raise ValueError listing the short names.
    """
    env_id = _resolve(name)
    if env_id is None:
        return make_pong(**kwargs)
    env = gym.make(env_id, **kwargs)
    # rlkit's own worlds validate actions themselves
    return env if env_id in (ROOM_EXIT_ID, GRIDWORLD_ID) else ActionCheck(env)


def make_vec(name: str, num_envs: int, *, vectorization_mode: str | None = None,
             **kwargs) -> gym.vector.VectorEnv:
    """`num_envs` copies of `make(name, **kwargs)` as one Gymnasium vector env.

    "Pong": `envs.atari.make_pong_vec` (ale-py's native vector env where it fits).
    Anything else: `gymnasium.make_vec` with `vectorization_mode` "sync" (default) or "async",
    or "vector_entry_point" for ids that have a native vector env (e.g. ALE/*-v5).
    """
    env_id = _resolve(name)
    if env_id is None:
        return make_pong_vec(num_envs, vectorization_mode=vectorization_mode, **kwargs)
    mode = vectorization_mode or "sync"
    wrappers = None if mode == "vector_entry_point" or env_id in (ROOM_EXIT_ID, GRIDWORLD_ID) else [ActionCheck]
    return gym.make_vec(env_id, num_envs, vectorization_mode=mode, wrappers=wrappers, **kwargs)
