"""Names: Gymnasium registration of rlkit's worlds, and `make` / `make_vec` for short names and ids."""
from __future__ import annotations

import difflib
import numbers

import gymnasium as gym

from envs.action_check import ActionCheck
from envs.atari import ATARI_GAMES, LEARNING_ONLY_SETTINGS, PONG_ID, atari_game, make_atari, make_atari_vec

ROOM_EXIT_ID = "rlkit/RoomExit-v0"
GRIDWORLD_ID = "rlkit/Gridworld-v0"
# Step limits (TimeLimit truncation) so an agent that wanders never loops forever.
ROOM_EXIT_MAX_STEPS = 100
GRIDWORLD_MAX_STEPS = 100

# short name -> Gymnasium id. Every other ALE game is a short name too (`envs.atari.ATARI_GAMES`);
# all Atari names and ids are built by `envs.atari.make_atari`, with its preprocessing.
SHORT_NAMES = {"RoomExit": ROOM_EXIT_ID, "Gridworld": GRIDWORLD_ID, "Pong": PONG_ID}


def register() -> None:
    """Register rlkit's tabular worlds with Gymnasium (idempotent)."""
    if ROOM_EXIT_ID not in gym.registry:
        gym.register(ROOM_EXIT_ID, entry_point="envs.room_exit:RoomExitEnv",
                     max_episode_steps=ROOM_EXIT_MAX_STEPS)
    if GRIDWORLD_ID not in gym.registry:
        gym.register(GRIDWORLD_ID, entry_point="envs.gridworld:GridworldEnv",
                     max_episode_steps=GRIDWORLD_MAX_STEPS)


def is_atari(name: str) -> bool:
    """Whether `make(name)` builds a preprocessed Atari game (`envs.atari.make_atari`): a game's
    name in any case ("Pong", "breakout", "space_invaders") or its id ("ALE/Breakout-v5").

    False for every other name, unknown ones included (`make` is what reports those), and for
    Gymnasium's legacy ids such as "BreakoutNoFrameskip-v4", which `make` builds raw.
    """
    return atari_game(name) is not None


def evaluation_kwargs(name: str, kwargs: dict) -> dict:
    """`make(name, **kwargs)`'s keyword arguments for an env that scores whole games: for an
    Atari game the settings that only shape learning (`terminal_on_life_loss`, `clip_rewards`)
    turned off, other envs' as given. Training scripts build their evaluation envs so."""
    return {**kwargs, **LEARNING_ONLY_SETTINGS} if is_atari(name) else dict(kwargs)


def _resolve(name: str) -> str:
    """The Gymnasium id a non-Atari `name` stands for.

    Raises ValueError for a name that is neither a short name, an Atari game nor a Gymnasium id.
    """
    for short, env_id in SHORT_NAMES.items():
        if name.lower() == short.lower():
            return env_id
    # "module:Env-v0" makes Gymnasium import the module that registers the id
    if name in gym.registry or ":" in name:
        return name
    games = [gym.registry[env_id].name for env_id in ATARI_GAMES.values()]
    close = difflib.get_close_matches(name, list(SHORT_NAMES) + games + list(gym.registry), n=3)
    hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
    raise ValueError(
        f"unknown environment {name!r}: use a short name ({', '.join(SHORT_NAMES)}), any of "
        f"ale-py's {len(ATARI_GAMES)} Atari games by name ('Breakout', 'space_invaders'; listed "
        f"in envs.atari.ATARI_GAMES) or a registered Gymnasium id such as 'CartPole-v1', "
        f"'FrozenLake-v1' or 'ALE/Breakout-v5' (list them with gymnasium.pprint_registry()).{hint}"
    )


def make(name: str, **kwargs) -> gym.Env:
    """Build one environment from a short name or a Gymnasium id.

    "RoomExit", "Gridworld": `gymnasium.make` of the registered rlkit ids (kwargs go to the
    env class, plus Gymnasium's own such as `max_episode_steps`, `render_mode`).
    Atari: any ALE game by name ("Pong", "Breakout", "space_invaders", ...) or by its id
    ("ALE/Breakout-v5") is `envs.atari.make_atari(game, **kwargs)`: DQN preprocessing,
    (4, 84, 84) uint8 frames, the `AtariSettings` as keyword arguments (Pong also takes the
    book's preprocess="pg" and actions="updown"). Gymnasium's legacy "Breakout-v4" /
    "BreakoutNoFrameskip-v4" ids stay raw. Any other name: `gymnasium.make(name, **kwargs)`
    wrapped so an out-of-range action raises a ValueError naming the valid range.
    Short names are case-insensitive. Unknown names raise ValueError listing the short names.
    """
    game = atari_game(name)
    if game is not None:
        return make_atari(game, **kwargs)
    env_id = _resolve(name)
    env = gym.make(env_id, **kwargs)
    # rlkit's own worlds validate actions themselves
    return env if env_id in (ROOM_EXIT_ID, GRIDWORLD_ID) else ActionCheck(env)


def make_vec(name: str, num_envs: int, *, vectorization_mode: str | None = None,
             **kwargs) -> gym.vector.VectorEnv:
    """`num_envs` copies of `make(name, **kwargs)` as one Gymnasium vector env.

    Atari names and ids: `envs.atari.make_atari_vec` (ale-py's native vector env where it fits).
    Anything else: `gymnasium.make_vec` with `vectorization_mode` "sync" (default) or "async",
    or "vector_entry_point" for ids that have a native vector env.
    """
    if isinstance(num_envs, bool) or not isinstance(num_envs, numbers.Integral) or num_envs < 1:
        raise ValueError(f"num_envs must be an integer >= 1, got {num_envs!r}")
    game = atari_game(name)
    if game is not None:
        return make_atari_vec(game, num_envs, vectorization_mode=vectorization_mode, **kwargs)
    env_id = _resolve(name)
    mode = vectorization_mode or "sync"
    wrappers = None if mode == "vector_entry_point" or env_id in (ROOM_EXIT_ID, GRIDWORLD_ID) else [ActionCheck]
    return gym.make_vec(env_id, num_envs, vectorization_mode=mode, wrappers=wrappers, **kwargs)
