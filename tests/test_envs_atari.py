"""Atari through ale-py: any game with DQN preprocessing; Pong's policy-gradient input, action sets, vector envs."""
import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

import envs
from envs.atari import (ATARI_GAMES, UPDOWN_ACTIONS, _NativeStackFix, make_atari, make_atari_vec, make_pong,
                        make_pong_vec, pg_preprocess)

PLAYER_GREEN = np.array([92, 186, 92], dtype=np.uint8)  # rlkit's (right-hand) paddle


def paddle_row(env) -> float:
    """Mean screen row of the player's paddle, read from the raw ALE screen."""
    screen = env.unwrapped.ale.getScreenRGB()
    rows, _ = np.nonzero(np.all(screen[34:194] == PLAYER_GREEN, axis=-1))
    return float(rows.mean()) + 34


# --- single env, DQN preprocessing -------------------------------------------------------
def test_dqn_observation_shape_dtype_and_space():
    env = envs.make("Pong")
    obs, info = env.reset(seed=0)
    assert obs.shape == (4, 84, 84) and obs.dtype == np.uint8
    assert env.observation_space.contains(obs)
    assert env.action_space == spaces.Discrete(6)
    obs, reward, terminated, truncated, info = env.step(0)
    assert env.observation_space.contains(obs) and reward in (-1.0, 0.0, 1.0)
    env.close()


def test_frame_stack_repeats_first_frame_then_rolls_newest_last():
    env = make_pong(repeat_action_probability=0.0)
    obs, _ = env.reset(seed=1)
    assert all(np.array_equal(obs[k], obs[0]) for k in range(4)) and obs[0].any()
    changed = False
    for t in range(40):
        nxt, *_ = env.step(2 if t % 10 < 5 else 3)
        np.testing.assert_array_equal(nxt[:3], obs[1:])  # shifted by one, newest appended last
        changed |= not np.array_equal(nxt[3], nxt[2])
        obs = nxt
    assert changed  # the paddle moved, so the stack is not just one frame repeated
    env.close()


def test_action_sets():
    assert make_pong(actions="full").action_space == spaces.Discrete(18)
    assert make_pong(actions="updown").action_space == spaces.Discrete(2)
    with pytest.raises(ValueError, match="actions must be one of"):
        make_pong(actions="left")
    with pytest.raises(ValueError, match=r"preprocess must be one of \['dqn', 'pg'\]"):
        envs.make("Pong", preprocess="karpathy")
    with pytest.raises(TypeError, match="sticky"):
        envs.make_vec("Pong", 2, sticky=0.0)


def test_updown_actions_move_the_paddle_up_then_down():
    # The book's 2 and 5 index Pong's minimal action set: RIGHT (up) and LEFTFIRE (down).
    assert UPDOWN_ACTIONS == (2, 5)
    env = make_pong(actions="updown", repeat_action_probability=0.0, noop_max=0)
    env.reset(seed=0)
    rows = []
    for action in (1, 1, 1, 0, 0, 0, 1, 1, 1):  # the paddle appears after the first frames
        env.step(action)
        rows.append(paddle_row(env))
    after_down, after_up, after_down_again = rows[2], rows[5], rows[8]
    assert after_up < after_down - 10 and after_down_again > after_up + 10, rows
    env.close()


def test_episode_statistics_and_truncation():
    env = make_pong(noop_max=0, max_num_frames_per_episode=100)
    env.reset(seed=0)
    for t in range(1, 26):
        _, _, terminated, truncated, info = env.step(0)
        assert truncated == (t == 25) and not terminated  # 25 agent steps x 4 frames
    assert info["episode"]["l"] == 25
    env.close()


@pytest.mark.parametrize("kwargs,valid", [({}, "from 0 to 5"), ({"actions": "full"}, "from 0 to 17"),
                                          ({"preprocess": "pg", "actions": "updown"}, "from 0 to 1")])
def test_out_of_range_action_names_valid_range(kwargs, valid):
    env = envs.make("Pong", **kwargs)
    env.reset(seed=0)
    bad = env.action_space.n
    with pytest.raises(ValueError, match=rf"action {bad} is outside the action space .* of Pong: expected an integer {valid}"):
        env.step(bad)
    env.close()


@pytest.mark.parametrize("vector", [False, True])
def test_seeded_rollouts_are_reproducible(vector):
    # sticky actions and no-op starts are random: the seed must fix both
    def rollout(seed):
        env = make_pong_vec(2) if vector else make_pong()
        frames = [env.reset(seed=seed)[0]]
        for t in range(30):
            a = np.array([t % 6, (t + 3) % 6]) if vector else t % 6
            frames.append(env.step(a)[0])
        env.close()
        return np.stack(frames)

    np.testing.assert_array_equal(rollout(5), rollout(5))
    assert not np.array_equal(rollout(5), rollout(6))


# --- policy-gradient preprocessing -------------------------------------------------------
def test_pg_preprocess_blank_and_background_frames_are_zero():
    assert not pg_preprocess(np.zeros((210, 160, 3), np.uint8)).any()
    background = np.empty((210, 160, 3), np.uint8)
    background[:] = (144, 72, 17)
    out = pg_preprocess(background)
    assert out.shape == (6400,) and out.dtype == np.float32 and not out.any()


def test_pg_preprocess_crops_downsamples_and_binarises():
    frame = np.zeros((210, 160, 3), np.uint8)
    frame[:] = (144, 72, 17)
    frame[35 + 2 * 10, 2 * 7] = (236, 236, 236)   # kept: row 10, col 7 of the 80x80 grid
    frame[35 + 2 * 10 + 1, 2 * 9] = (236, 236, 236)  # dropped by the stride-2 downsampling
    frame[20, 50] = (236, 236, 236)                  # in the score bar, cropped away
    out = pg_preprocess(frame)
    assert np.flatnonzero(out).tolist() == [10 * 80 + 7] and out.max() == 1.0


def test_pg_env_first_difference_is_zero_then_frame_differences():
    env = envs.make("Pong", preprocess="pg", actions="updown", repeat_action_probability=0.0)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (6400,) and obs.dtype == np.float32 and not obs.any()
    assert env.observation_space.contains(obs)
    seen_motion = False
    for _ in range(30):
        obs, *_ = env.step(0)
        assert env.observation_space.contains(obs)
        assert set(np.unique(obs)) <= {-1.0, 0.0, 1.0}
        seen_motion |= bool(obs.any())
    assert seen_motion
    env.close()


def test_pg_input_is_the_difference_of_the_newest_screens_with_the_paddle_moving():
    # no max over two frames: it erased the paddle (darker than the background in the red
    # channel the input reads) wherever the paddle had just moved
    env = envs.make("Pong", preprocess="pg", actions="updown", repeat_action_probability=0.0)
    env.reset(seed=0)
    ale = env.unwrapped.ale
    previous = pg_preprocess(ale.getScreenRGB())
    for t in range(60):
        obs, *_ = env.step(0 if (t // 6) % 2 == 0 else 1)  # UP for 6 steps, then DOWN
        newest = pg_preprocess(ale.getScreenRGB())
        np.testing.assert_array_equal(obs, newest - previous)
        previous = newest
    env.close()


def first_episode_lives_left(env, seed: int = 0, max_steps: int = 5_000) -> int:
    """Lives left in ALE when the first episode of ``env`` ends, under random actions; closes
    ``env``."""
    rng = np.random.default_rng(seed)
    env.reset(seed=seed)
    try:
        for _ in range(max_steps):
            _, _, terminated, truncated, _ = env.step(int(rng.integers(env.action_space.n)))
            if terminated or truncated:
                return env.unwrapped.ale.lives()
        raise AssertionError(f"no episode end in {max_steps} steps")
    finally:
        env.close()


def test_an_evaluation_env_plays_the_whole_game_whatever_the_training_settings():
    training = {"terminal_on_life_loss": True, "clip_rewards": True, "repeat_action_probability": 0.0}
    evaluation = envs.evaluation_kwargs("Breakout", training)
    assert evaluation == {**training, "terminal_on_life_loss": False, "clip_rewards": False}
    assert first_episode_lives_left(envs.make("Breakout", **training)) == 4  # one of 5 lost
    assert first_episode_lives_left(envs.make("Breakout", **evaluation)) == 0
    assert envs.evaluation_kwargs("CartPole-v1", {"max_episode_steps": 9}) == {"max_episode_steps": 9}


@pytest.mark.parametrize("kwargs", [{}, {"preprocess": "pg", "actions": "updown"}, {"vectorization_mode": "sync"}])
def test_vector_envs_carry_the_games_spec(kwargs):
    venv = envs.make_vec("Pong", 2, **kwargs)
    assert venv.spec.id == "ALE/Pong-v5"
    venv.close()


def test_pg_rejects_dqn_only_options():
    with pytest.raises(ValueError, match="apply to preprocess='dqn' only"):
        make_pong("pg", frame_stack=4)


# --- vector envs -------------------------------------------------------------------------
class _ZeroPaddedStacks(gym.vector.VectorEnv):
    """Stand-in for ale-py's vector env: stacks of labelled 1x1 frames, zero-padded at an
    episode start, NEXT_STEP autoreset; env i's episodes last `lengths[i]` steps."""

    def __init__(self, lengths, stack=4):
        self.num_envs, self.stack, self.lengths = len(lengths), stack, lengths
        self.single_action_space = spaces.Discrete(6)
        self.action_space = gym.vector.utils.batch_space(self.single_action_space, self.num_envs)
        self.single_observation_space = spaces.Box(0, 255, (stack, 1, 1), np.uint8)
        self.observation_space = gym.vector.utils.batch_space(self.single_observation_space, self.num_envs)
        self.label = 0
        self.episodes = [[] for _ in lengths]  # true frames of each env's current episode
        self.ended = np.zeros(self.num_envs, bool)

    def _new_frame(self, i):
        self.label += 1
        self.episodes[i].append(self.label)

    def _obs(self):
        obs = np.zeros((self.num_envs, self.stack, 1, 1), np.uint8)
        for i, ep in enumerate(self.episodes):
            recent = ep[-self.stack:]
            obs[i, self.stack - len(recent):, 0, 0] = recent
        return obs

    def reset(self, *, seed=None, options=None):
        for i in range(self.num_envs):
            self.episodes[i] = []
            self._new_frame(i)
        self.ended[:] = False
        return self._obs(), {}

    def step(self, actions):
        terminated = np.zeros(self.num_envs, bool)
        for i in range(self.num_envs):
            if self.ended[i]:
                self.episodes[i] = []
            self._new_frame(i)
            terminated[i] = len(self.episodes[i]) > self.lengths[i]
        self.ended = terminated
        return self._obs(), np.zeros(self.num_envs), terminated, np.zeros(self.num_envs, bool), {}


def test_native_stack_fix_repeats_first_frame_like_frame_stack_observation():
    fake = _ZeroPaddedStacks(lengths=[2, 6])
    env = _NativeStackFix(fake, stack=4)

    def expected():  # FrameStackObservation's "reset" padding of each env's true frames
        return np.array([[(ep[:1] * 4 + ep)[-4:]] for ep in fake.episodes]).reshape(2, 4, 1, 1)

    obs, _ = env.reset()
    np.testing.assert_array_equal(obs, expected())
    for _ in range(15):  # several episode ends for env 0, two for env 1
        obs, *_ = env.step(np.zeros(2, np.int64))
        np.testing.assert_array_equal(obs, expected())


def test_make_vec_uses_native_vector_env_with_documented_shapes():
    venv = envs.make_vec("Pong", 2)
    assert isinstance(venv.unwrapped, __import__("ale_py").vector_env.AtariVectorEnv)
    obs, _ = venv.reset(seed=0)
    assert obs.shape == (2, 4, 84, 84) and obs.dtype == np.uint8
    assert all(np.array_equal(obs[i, k], obs[i, 3]) for i in range(2) for k in range(3))
    obs, rewards, terminated, truncated, _ = venv.step(np.array([2, 3]))
    assert obs.shape == (2, 4, 84, 84) and rewards.shape == (2,)
    venv.close()


def test_native_vector_matches_single_env_and_never_shows_zero_padding():
    kwargs = dict(repeat_action_probability=0.0, noop_max=0, max_num_frames_per_episode=40)
    single, _ = make_pong(**kwargs).reset(seed=0)
    venv = make_pong_vec(2, **kwargs)
    obs, _ = venv.reset(seed=0)
    np.testing.assert_array_equal(obs[0], single)
    resets = 0
    for _ in range(25):  # 40-frame episodes: two autoresets per sub-env
        obs, _, terminated, truncated, info = venv.step(np.array([2, 3]))
        assert obs.reshape(2, 4, -1).any(axis=-1).all()  # no all-zero padding frame
        resets += int(truncated.sum())
    assert resets >= 4
    venv.close()


def test_vector_out_of_range_or_misshapen_actions_raise():
    venv = envs.make_vec("Pong", 2)
    venv.reset(seed=0)
    with pytest.raises(ValueError, match="action 6 for sub-environment 1 .* from 0 to 5"):
        venv.step(np.array([0, 6]))
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        venv.step(np.array([0, 1, 2]))
    venv.close()


def test_make_vec_falls_back_to_gymnasium_vector_api():
    venv = envs.make_vec("Pong", 2, preprocess="pg", actions="updown")
    assert isinstance(venv, gym.vector.SyncVectorEnv)
    obs, _ = venv.reset(seed=0)
    assert obs.shape == (2, 6400) and obs.dtype == np.float32 and not obs.any()
    with pytest.raises(ValueError, match="from 0 to 1"):
        venv.step(np.array([0, 2]))
    venv.close()
    sync = envs.make_vec("Pong", 2, vectorization_mode="sync")
    assert isinstance(sync, gym.vector.SyncVectorEnv) and sync.reset(seed=0)[0].shape == (2, 4, 84, 84)
    sync.close()
    with pytest.raises(ValueError, match="native ale-py vector env supports"):
        envs.make_vec("Pong", 2, preprocess="pg", vectorization_mode="vector_entry_point")


# --- any Atari game ----------------------------------------------------------------------
GAMES = [("Pong", "ALE/Pong-v5", 6), ("Breakout", "ALE/Breakout-v5", 4),
         ("SpaceInvaders", "ALE/SpaceInvaders-v5", 6)]


def test_games_come_from_ale_py():
    import ale_py.roms
    assert len(ATARI_GAMES) >= 100
    assert set(ATARI_GAMES) <= set(ale_py.roms.get_all_rom_ids())
    assert ATARI_GAMES["space_invaders"] == "ALE/SpaceInvaders-v5" and ATARI_GAMES["pong"] == envs.atari.PONG_ID
    assert all(env_id in gym.registry for env_id in ATARI_GAMES.values())


@pytest.mark.parametrize("game,env_id,n_actions", GAMES)
def test_make_atari_gives_every_game_dqn_preprocessing(game, env_id, n_actions):
    env = make_atari(game, repeat_action_probability=0.0)
    assert env.spec.id == env_id
    assert env.observation_space == spaces.Box(0, 255, (4, 84, 84), np.uint8)
    assert env.action_space == spaces.Discrete(n_actions)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (4, 84, 84) and obs.dtype == np.uint8 and obs.any()
    assert all(np.array_equal(obs[k], obs[0]) for k in range(4))  # "reset" padding
    for t in range(8):
        obs, reward, terminated, truncated, _ = env.step(t % n_actions)
        assert env.observation_space.contains(obs) and not terminated
    with pytest.raises(ValueError, match=rf"action {n_actions} is outside .* of {game}: expected an "
                                         rf"integer from 0 to {n_actions - 1}"):
        env.step(n_actions)
    env.close()


@pytest.mark.parametrize("names", [["Breakout", "breakout", "BREAKOUT", "ALE/Breakout-v5"],
                                   ["SpaceInvaders", "space_invaders", "spaceinvaders", "ALE/SpaceInvaders-v5"]])
def test_short_names_in_any_case_and_the_ale_id_build_the_same_env(names):
    built = [envs.make(name) for name in names]
    assert len({env.spec.id for env in built}) == 1
    assert all(env.observation_space == spaces.Box(0, 255, (4, 84, 84), np.uint8) for env in built)
    assert all(env.action_space == built[0].action_space for env in built)
    first = [env.reset(seed=3)[0] for env in built]
    assert all(np.array_equal(obs, first[0]) for obs in first)  # same preprocessing, same seed
    for env in built:
        env.close()


def test_full_action_set_and_clipping_apply_to_any_game():
    assert make_atari("Breakout", actions="full").action_space == spaces.Discrete(18)
    env = make_atari("space_invaders", clip_rewards=True, repeat_action_probability=0.0, noop_max=0)
    env.reset(seed=0)
    rewards = [env.step(1)[1] for _ in range(150)]  # FIRE: invaders get shot (5-30 points each)
    assert max(rewards) == 1.0 and set(rewards) <= {0.0, 1.0}
    env.close()


@pytest.mark.parametrize("kwargs,what", [({"preprocess": "pg"}, "preprocess='pg'"),
                                         ({"actions": "updown"}, "actions='updown'")])
def test_pongs_extras_on_another_game_are_a_clear_error(kwargs, what):
    message = rf"{what} is for Pong only .* not Breakout"
    with pytest.raises(ValueError, match=message):
        envs.make("Breakout", **kwargs)
    with pytest.raises(ValueError, match=message):
        envs.make_vec("ALE/Breakout-v5", 2, **kwargs)
    with pytest.raises(ValueError, match=message):
        make_atari("breakout", **kwargs)


def test_unknown_game_and_setting_are_clear_errors():
    with pytest.raises(ValueError, match=r"unknown Atari game 'Breakot'.* Did you mean 'Breakout'"):
        make_atari("Breakot")
    with pytest.raises(TypeError, match="frameskip.*the Atari settings are actions, repeat_action_probability"):
        envs.make("Breakout", frameskip=2)


@pytest.mark.parametrize("name,n_actions", [("Breakout", 4), ("space_invaders", 6)])
def test_make_vec_of_any_game_uses_the_native_vector_env(name, n_actions):
    venv = envs.make_vec(name, 2)
    assert isinstance(venv.unwrapped, __import__("ale_py").vector_env.AtariVectorEnv)
    assert venv.single_action_space == spaces.Discrete(n_actions)
    obs, _ = venv.reset(seed=0)
    assert obs.shape == (2, 4, 84, 84) and obs.dtype == np.uint8
    assert all(np.array_equal(obs[i, k], obs[i, 3]) for i in range(2) for k in range(3))
    with pytest.raises(ValueError, match=rf"action {n_actions} for sub-environment 0 .* from 0 to {n_actions - 1}"):
        venv.step(np.array([n_actions, 0]))
    venv.close()
    sync = make_atari_vec(name, 2, vectorization_mode="sync")
    assert isinstance(sync, gym.vector.SyncVectorEnv) and sync.reset(seed=0)[0].shape == (2, 4, 84, 84)
    sync.close()
