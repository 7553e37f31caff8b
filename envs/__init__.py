"""Gymnasium environments of the seed book: RoomExit, Gridworld, Pong and every other Atari game.

Importing this package registers `rlkit/RoomExit-v0` and `rlkit/Gridworld-v0` with Gymnasium
(and ale-py's `ALE/*` ids). `make(name)` / `make_vec(name, n)` accept the short names
"RoomExit", "Gridworld", "Pong", any of ale-py's Atari games by name in any case ("Breakout",
"breakout", "SpaceInvaders", "space_invaders") and any Gymnasium id. Every Atari game, named
either way or by its id ("ALE/Breakout-v5"), is built by `make_atari`: DQN preprocessing,
(4, 84, 84) uint8 frames, the `AtariSettings` as keyword arguments; `is_atari(name)` says
whether a name is one, and `evaluation_kwargs(name, kwargs)` gives the settings of an env that
scores whole games. Pong alone also has the seed book's policy-gradient input
(`preprocess="pg"`) and UP/DOWN actions (`actions="updown"`).
"""
from envs.atari import (ATARI_GAMES, AtariSettings, atari_game, make_atari, make_atari_vec, make_pong,
                        make_pong_vec, pg_preprocess)
from envs.gridworld import CLASSIC_4X3, GridworldEnv, parse_grid
from envs.registry import (GRIDWORLD_ID, ROOM_EXIT_ID, SHORT_NAMES, evaluation_kwargs, is_atari, make,
                           make_vec, register)
from envs.room_exit import RoomExitEnv

register()

__all__ = [
    "ATARI_GAMES",
    "AtariSettings",
    "CLASSIC_4X3",
    "GRIDWORLD_ID",
    "GridworldEnv",
    "ROOM_EXIT_ID",
    "RoomExitEnv",
    "SHORT_NAMES",
    "atari_game",
    "evaluation_kwargs",
    "is_atari",
    "make",
    "make_atari",
    "make_atari_vec",
    "make_pong",
    "make_pong_vec",
    "make_vec",
    "parse_grid",
    "pg_preprocess",
    "register",
]
