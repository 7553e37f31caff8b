"""Any Atari game through ale-py, preprocessed with Gymnasium's own wrappers; Pong's extras.

`make_atari(game)` / `make_atari_vec(game, n)` build any of ale-py's games (`ATARI_GAMES`, read
from the `ALE/*-v5` ids ale-py registers with Gymnasium, 104 in ale-py 0.12). `game` is the
game's name in any case, with or without underscores ("Breakout", "breakout", "SpaceInvaders",
"space_invaders") or its Gymnasium id ("ALE/Breakout-v5"); `atari_game(name)` says which game a
name stands for. `make_pong` / `make_pong_vec` are `make_atari("Pong", ...)`.

Settings (`AtariSettings`; the same for every game, for the single env and the vector env, each
a keyword argument of the constructors):
- sticky actions: `repeat_action_probability=0.25` (Machado et al. 2018 and ale-py's v5
  default; the 2015 DQN paper used 0, pass 0.0 to reproduce it);
- action set: the game's minimal one (`actions="minimal"`: 6 for Pong and SpaceInvaders, 4 for
  Breakout); `actions="full"` gives ALE's 18; Pong only: `actions="updown"` gives the book's two
  moves (see `UPDOWN_ACTIONS`);
- terminal on life loss: off (`terminal_on_life_loss=False`; Machado et al. advise against it);
- no-op starts: a uniform 1..30 no-ops after each reset (`noop_max=30`; with
  `preprocess="pg"` each no-op is an agent step of `frame_skip` frames);
- frame skip 4 (`frame_skip`), max-pooling the last two frames of each skip ("dqn"; "pg"
  takes the newest frame of each skip, see `make_atari`);
- rewards unclipped by default (`clip_rewards=True` clips to [-1, 1], as the DQN paper did for
  games with larger scores; Pong's are already -1/0/+1). `info["episode"]` (Gymnasium's
  RecordEpisodeStatistics) always holds the unclipped return and length of a finished episode.

Preprocessing: `preprocess="dqn"` (every game): uint8 (4, 84, 84) greyscale frames, newest last,
the first frame repeated after a reset. `preprocess="pg"` (Pong only): the seed book's
policy-gradient input (`pg_preprocess`, frame differences). Asking another game for "pg" or
"updown" is a ValueError: both depend on Pong's screen and action set.
"""
from __future__ import annotations

import difflib
import functools
from dataclasses import dataclass

import ale_py
import gymnasium as gym
import numpy as np
from ale_py.vector_env import AtariVectorEnv
from gymnasium import spaces
from gymnasium.vector import VectorWrapper
from gymnasium.wrappers import (
    AtariPreprocessing,
    ClipReward,
    FrameStackObservation,
    RecordEpisodeStatistics,
    TransformAction,
    TransformObservation,
)
from gymnasium.wrappers import vector as vector_wrappers

from envs.action_check import ActionCheck, validate_actions

gym.register_envs(ale_py)

PONG_ID = "ALE/Pong-v5"
# ale-py's games: ROM id ("space_invaders") -> Gymnasium id ("ALE/SpaceInvaders-v5"), read from
# the ids ale-py registered above (a few two-player ROMs have none and are left out).
ATARI_GAMES = dict(sorted(
    (spec.kwargs["game"], spec.id) for spec in gym.registry.values()
    if spec.namespace == "ALE" and spec.version == 5 and spec.entry_point == "ale_py.env:AtariEnv"
))
PREPROCESSINGS = ("dqn", "pg")
ACTION_SETS = ("minimal", "full", "updown")

# The book's "UP=2, DOWN=5" are indices into Pong's *minimal* action set
# (NOOP, FIRE, RIGHT, LEFT, RIGHTFIRE, LEFTFIRE): RIGHT moves the paddle up, LEFTFIRE down.
# In ALE's full set, 2 (UP) and 5 (DOWN) do not move Pong's paddle at all.
UPDOWN_ACTIONS = (2, 5)
UPDOWN_NAMES = ("UP", "DOWN")

PG_SIZE = 80 * 80
# Pong's background in the red channel (two shades), erased by the book's preprocessing.
_PG_BACKGROUND = (144, 109)


def pg_preprocess(frame: np.ndarray) -> np.ndarray:
    """The book's policy-gradient input from one (210, 160, 3) uint8 RGB Pong frame.

    Crops rows 35..194 (score bar and borders), keeps every second row and column of the red
    channel (80 x 80), erases the background and sets everything else to 1.
    Returns float32 of shape (6400,) with values in {0, 1}.
    """
    f = frame[35:195:2, ::2, 0]
    keep = f != 0
    for shade in _PG_BACKGROUND:
        keep &= f != shade
    return keep.astype(np.float32).reshape(-1)


def _frame_difference(stack: np.ndarray) -> np.ndarray:
    """Newest minus previous preprocessed frame, from a (2, 6400) stack."""
    return stack[1] - stack[0]


def _check_choice(name: str, value, choices) -> None:
    """Raise ValueError unless `value` is one of `choices`."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")


def _game_key(name: str) -> str:
    """What game names are compared by: lower case, no underscores ("SpaceInvaders" ==
    "space_invaders" == "spaceinvaders")."""
    return name.lower().replace("_", "")


# every accepted spelling of a game, reduced by _game_key -> its ROM id
_GAME_KEYS = {key: game for game, env_id in ATARI_GAMES.items()
              for key in (_game_key(game), _game_key(gym.registry[env_id].name))}


def atari_game(name: str) -> str | None:
    """The ale-py game (its ROM id, e.g. "space_invaders") that `name` stands for, else None.

    `name` is a game's name in any case, with or without underscores ("Breakout", "breakout",
    "SpaceInvaders", "space_invaders") or its Gymnasium id ("ALE/Breakout-v5"). Anything else
    ("CartPole-v1", Gymnasium's legacy "Breakout-v4" / "BreakoutNoFrameskip-v4" ids) is None.
    """
    if not isinstance(name, str):
        return None
    spec = gym.registry.get(name)
    if spec is not None:
        return spec.kwargs["game"] if spec.id in ATARI_GAMES.values() else None
    return _GAME_KEYS.get(_game_key(name))


def game_name(game: str) -> str:
    """A game's display name, as in its Gymnasium id: "space_invaders" -> "SpaceInvaders"."""
    return gym.registry[ATARI_GAMES[game]].name


def _resolve_game(game: str) -> str:
    """`atari_game(game)`, or a ValueError that suggests close game names."""
    found = atari_game(game)
    if found is None:
        names = [game_name(g) for g in ATARI_GAMES]
        close = difflib.get_close_matches(str(game), names, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise ValueError(f"unknown Atari game {game!r}: use one of ale-py's {len(names)} games by "
                         f"name (e.g. 'Pong', 'Breakout', 'SpaceInvaders'; any case, underscores "
                         f"optional) or id ('ALE/Breakout-v5'); envs.atari.ATARI_GAMES lists them."
                         f"{hint}")
    return found


@dataclass(frozen=True)
class AtariSettings:
    """The Atari settings every game shares, for `make_atari` and `make_atari_vec` alike (why:
    see the module docstring)."""

    actions: str = "minimal"
    """"minimal" (the game's own set: Discrete(6) for Pong, 4 for Breakout), "full"
    (Discrete(18)) or, Pong only, "updown" (Discrete(2): 0 = UP, 1 = DOWN, sent to ALE as
    `UPDOWN_ACTIONS`)."""
    repeat_action_probability: float = 0.25
    """Sticky actions: chance that ALE repeats the previous action on each frame."""
    noop_max: int = 30
    """At most this many NOOPs after each reset (uniform 1..noop_max; 0 turns them off)."""
    frame_skip: int = 4
    """Frames per agent step; the observation is the max over the last two ("dqn") or the
    newest ("pg")."""
    terminal_on_life_loss: bool = False
    """End the episode when a life is lost (Pong has none)."""
    clip_rewards: bool = False
    """Clip rewards to [-1, 1] (after `info["episode"]` recorded the raw ones)."""
    max_num_frames_per_episode: int = 108_000
    """ALE frames before truncation, counted from the reset with the no-op frames (ale-py's
    native vector env counts after them)."""

    def __post_init__(self):
        """Validate the action set name."""
        _check_choice("actions", self.actions, ACTION_SETS)


# the settings that shape learning only, as an env that scores whole games sets them: with
# terminal_on_life_loss Gymnasium's AtariPreprocessing ends the episode at the first life lost
# and its reset starts a new game, so an evaluation would score one life
LEARNING_ONLY_SETTINGS = {"terminal_on_life_loss": False, "clip_rewards": False}


def _settings(game: str, preprocess: str, settings: dict) -> AtariSettings:
    """Check `preprocess` and `settings` for `game` (a ROM id); the settings as AtariSettings.

    Unknown settings are a TypeError (as for any keyword argument); Pong's extras asked of
    another game are a ValueError.
    """
    _check_choice("preprocess", preprocess, PREPROCESSINGS)
    try:
        cfg = AtariSettings(**settings)
    except TypeError as e:
        fields = ", ".join(AtariSettings.__dataclass_fields__)
        raise TypeError(f"{e}; the Atari settings are {fields}") from None
    if game != "pong":
        extra = ("preprocess='pg'" if preprocess == "pg" else
                 "actions='updown'" if cfg.actions == "updown" else None)
        if extra is not None:
            raise ValueError(f"{extra} is for Pong only (the seed book's Pong input and paddle "
                             f"moves), not {game_name(game)}: other games take "
                             f"preprocess='dqn' and actions='minimal' or 'full'")
    return cfg


def make_atari(
    game: str,
    preprocess: str = "dqn",
    *,
    frame_stack: int | None = None,
    screen_size: int | None = None,
    render_mode: str | None = None,
    **settings,
) -> gym.Env:
    """One ALE game with DQN preprocessing (or Pong's "pg"); `settings` are `AtariSettings` fields.

    game: a name in any case, underscores optional ("Breakout", "space_invaders") or a
        Gymnasium id ("ALE/Breakout-v5"); unknown names are a ValueError naming close ones.
    preprocess="dqn": observations uint8 (frame_stack, screen_size, screen_size), default
        (4, 84, 84): greyscale frames, newest last; on reset the first frame is repeated.
    preprocess="pg" (Pong only): the book's input, float32 (6400,): `pg_preprocess` of the
        newest frame minus that of the previous one (zeros right after reset). `frame_stack`
        and `screen_size` do not apply.
    render_mode: None, "rgb_array" or "human" (the raw 210x160 game screen).
    """
    game = _resolve_game(game)
    cfg = _settings(game, preprocess, settings)
    if preprocess == "pg" and (frame_stack is not None or screen_size is not None):
        raise ValueError("frame_stack and screen_size apply to preprocess='dqn' only; 'pg' uses 80x80 differences")
    # "dqn": AtariPreprocessing skips frames and max-pools the last two of each skip. "pg": ALE
    # skips them and the newest frame is read as it is, as the book's Pong-v0 gave it: in the
    # red channel that input reads, Pong's paddle (92) is darker than the background (144), so
    # a max over two frames erased the paddle wherever it had just moved (ad hoc count over 300
    # steps of the paddle going up and down: 6.0 of its input pixels left on average, against
    # 13.4 in the newest frame)
    ale_skips = preprocess == "pg"
    env = gym.make(
        ATARI_GAMES[game],
        frameskip=cfg.frame_skip if ale_skips else 1,
        repeat_action_probability=cfg.repeat_action_probability,
        full_action_space=cfg.actions == "full",
        max_num_frames_per_episode=cfg.max_num_frames_per_episode,
        render_mode=render_mode,
    )
    common = dict(noop_max=cfg.noop_max, frame_skip=1 if ale_skips else cfg.frame_skip,
                  terminal_on_life_loss=cfg.terminal_on_life_loss)
    if preprocess == "dqn":
        env = AtariPreprocessing(env, screen_size=84 if screen_size is None else screen_size, **common)
        env = RecordEpisodeStatistics(env)
        env = FrameStackObservation(env, 4 if frame_stack is None else frame_stack, padding_type="reset")
    else:
        h, w, _ = env.observation_space.shape
        env = AtariPreprocessing(env, screen_size=(w, h), grayscale_obs=False, **common)
        env = TransformObservation(env, pg_preprocess, spaces.Box(0.0, 1.0, (PG_SIZE,), np.float32))
        # "reset" padding repeats the first frame, so the first difference is exactly zero
        env = FrameStackObservation(env, 2, padding_type="reset")
        env = TransformObservation(env, _frame_difference, spaces.Box(-1.0, 1.0, (PG_SIZE,), np.float32))
        env = RecordEpisodeStatistics(env)
    if cfg.clip_rewards:
        env = ClipReward(env, -1.0, 1.0)
    if cfg.actions == "updown":
        env = TransformAction(env, UPDOWN_ACTIONS.__getitem__, spaces.Discrete(2))
    return ActionCheck(env, game_name(game))


def make_pong(preprocess: str = "dqn", **kwargs) -> gym.Env:
    """`make_atari("Pong", preprocess, **kwargs)`: ALE Pong, with the book's "pg" input and
    "updown" actions too."""
    return make_atari("pong", preprocess, **kwargs)


class _NativeStackFix(VectorWrapper):
    """Align ale-py's vector env with `make_atari`: repeat the first frame, validate actions.

    ale-py pads the frame stack of a fresh episode with zero frames; FrameStackObservation
    repeats the first frame instead. This wrapper copies the oldest real frame over the
    padding, for the first `stack - 1` steps of each episode, so agents see the same thing
    from both constructors. It also turns out-of-range actions (on which ale-py's threads
    hang) into a ValueError.
    """

    def __init__(self, env: AtariVectorEnv, stack: int, name: str = "Pong"):
        """Wrap `env`, whose observations are (num_envs, stack, H, W); `name` is the game's."""
        super().__init__(env)
        self._stack = stack
        self._name = f"vectorised {name}"
        self._age = np.ones(self.num_envs, dtype=np.int64)  # frames of this episode in the stack
        self._ended = np.zeros(self.num_envs, dtype=bool)  # autoreset happens on the next step

    def reset(self, *, seed=None, options=None):
        """Reset all (or `options["reset_mask"]`) sub-envs; padding frames are filled."""
        obs, info = self.env.reset(seed=seed, options=options)
        mask = slice(None) if not options or "reset_mask" not in options else options["reset_mask"]
        self._age[mask] = 1
        self._ended[mask] = False
        return self._fill(obs), info

    def step(self, actions):
        """Validate `actions` (shape (num_envs,), integers in range) and step all sub-envs."""
        actions = validate_actions(self.action_space, actions, self._name)
        obs, rewards, terminated, truncated, info = self.env.step(actions)
        self._age = np.where(self._ended, 1, np.minimum(self._age + 1, self._stack))
        self._ended = terminated | truncated
        return self._fill(obs), rewards, terminated, truncated, info

    def _fill(self, obs: np.ndarray) -> np.ndarray:
        """Overwrite the zero padding of young episodes, in place, with their first frame."""
        for i in np.flatnonzero(self._age < self._stack):
            first = self._stack - self._age[i]
            obs[i, :first] = obs[i, first]
        return obs


def make_atari_vec(
    game: str,
    num_envs: int,
    preprocess: str = "dqn",
    *,
    vectorization_mode: str | None = None,
    frame_stack: int | None = None,
    screen_size: int | None = None,
    render_mode: str | None = None,
    **settings,
) -> gym.vector.VectorEnv:
    """`num_envs` copies of one game stepped together, with the same arguments as `make_atari`.

    The native ale-py vector env (C++ threads) is used when it can reproduce `make_atari`:
    preprocess="dqn", actions "minimal"/"full", no render_mode. Otherwise (or with
    vectorization_mode="sync"/"async") Gymnasium's SyncVectorEnv / AsyncVectorEnv runs
    `make_atari` copies. Both reset finished sub-envs on the next step (NEXT_STEP autoreset).
    Observations: (num_envs, *single observation shape); actions: int array (num_envs,).
    """
    game = _resolve_game(game)
    if not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
        raise ValueError(f"num_envs must be a positive integer, got {num_envs!r}")
    _check_choice("vectorization_mode", vectorization_mode, (None, "vector_entry_point", "sync", "async"))
    cfg = _settings(game, preprocess, settings)
    native_fits = preprocess == "dqn" and cfg.actions != "updown" and render_mode is None
    if vectorization_mode == "vector_entry_point" and not native_fits:
        raise ValueError("the native ale-py vector env supports preprocess='dqn' without "
                         "actions='updown' or render_mode; use vectorization_mode='sync' or 'async'")
    if vectorization_mode in ("sync", "async") or not native_fits:
        make_one = functools.partial(make_atari, game, preprocess, frame_stack=frame_stack,
                                     screen_size=screen_size, render_mode=render_mode, **settings)
        cls = gym.vector.AsyncVectorEnv if vectorization_mode == "async" else gym.vector.SyncVectorEnv
        return _with_game_spec(cls([make_one] * num_envs), game)
    stack = 4 if frame_stack is None else frame_stack
    size = 84 if screen_size is None else screen_size
    venv = AtariVectorEnv(
        game,
        num_envs,
        repeat_action_probability=cfg.repeat_action_probability,
        full_action_space=cfg.actions == "full",
        noop_max=cfg.noop_max,
        frameskip=cfg.frame_skip,
        maxpool=True,
        stack_num=stack,
        img_height=size,
        img_width=size,
        grayscale=True,
        episodic_life=cfg.terminal_on_life_loss,
        reward_clipping=False,  # clipped below, after the episode statistics saw the raw reward
        use_fire_reset=False,  # AtariPreprocessing does not press FIRE either
        max_num_frames_per_episode=cfg.max_num_frames_per_episode,
    )
    env = vector_wrappers.RecordEpisodeStatistics(_NativeStackFix(_with_game_spec(venv, game), stack,
                                                                  game_name(game)))
    if cfg.clip_rewards:
        env = vector_wrappers.ClipReward(env, -1.0, 1.0)
    return env


def _with_game_spec(venv: gym.vector.VectorEnv, game: str) -> gym.vector.VectorEnv:
    """``venv`` with the game's Gymnasium spec, as ``gym.make_vec`` gives its vector envs: what
    an agent's checkpoint records as its env's id (without it, the vector env's class name,
    which no script can make again)."""
    venv.spec = gym.spec(ATARI_GAMES[game])
    return venv


def make_pong_vec(num_envs: int, preprocess: str = "dqn", **kwargs) -> gym.vector.VectorEnv:
    """`make_atari_vec("Pong", num_envs, preprocess, **kwargs)`: Pong's "pg" input and "updown"
    actions run as `make_pong` copies in a Gymnasium SyncVectorEnv / AsyncVectorEnv."""
    return make_atari_vec("pong", num_envs, preprocess, **kwargs)
