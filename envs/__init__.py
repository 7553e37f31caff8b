"""Gymnasium environments of the seed book: RoomExit, Gridworld and Atari Pong.

Importing this package registers `rlkit/RoomExit-v0` and `rlkit/Gridworld-v0` with Gymnasium
(and ale-py's `ALE/*` ids). `make(name)` / `make_vec(name, n)` accept the short names
"RoomExit", "Gridworld", "Pong" and any Gymnasium id.
"""
from envs.atari import PongSettings, make_pong, make_pong_vec, pg_preprocess
from envs.gridworld import CLASSIC_4X3, GridworldEnv, parse_grid
from envs.registry import GRIDWORLD_ID, ROOM_EXIT_ID, SHORT_NAMES, make, make_vec, register
from envs.room_exit import RoomExitEnv

register()

__all__ = [
    "CLASSIC_4X3",
    "GRIDWORLD_ID",
    "GridworldEnv",
    "PongSettings",
    "ROOM_EXIT_ID",
    "RoomExitEnv",
    "SHORT_NAMES",
    "make",
    "make_pong",
    "make_pong_vec",
    "make_vec",
    "parse_grid",
    "pg_preprocess",
    "register",
]
