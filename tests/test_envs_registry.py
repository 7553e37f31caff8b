"""Names and construction: registration, short names, Gymnasium ids, errors, vector envs."""
import gymnasium as gym
import numpy as np
import pytest

import envs
from envs.gridworld import GridworldEnv
from envs.room_exit import RoomExitEnv


def test_import_registers_ids_with_gymnasium():
    assert envs.ROOM_EXIT_ID == "rlkit/RoomExit-v0" and envs.GRIDWORLD_ID == "rlkit/Gridworld-v0"
    room = gym.make("rlkit/RoomExit-v0")
    grid = gym.make("rlkit/Gridworld-v0", slip=0.0)
    assert isinstance(room.unwrapped, RoomExitEnv) and isinstance(grid.unwrapped, GridworldEnv)
    assert room.spec.max_episode_steps == 100 and grid.spec.max_episode_steps == 100
    envs.register()  # idempotent: no "overriding environment" re-registration


@pytest.mark.parametrize("name,cls", [("RoomExit", RoomExitEnv), ("gridworld", GridworldEnv),
                                      ("FrozenLake-v1", None), ("CartPole-v1", None)])
def test_make_accepts_short_names_and_gymnasium_ids(name, cls):
    env = envs.make(name)
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    if cls is not None:
        assert isinstance(env.unwrapped, cls)
    else:
        assert env.spec.id == name


def test_make_passes_kwargs_through():
    env = envs.make("Gridworld", grid=["S.G"], slip=0.0, living_reward=-1.0, max_episode_steps=5)
    assert env.unwrapped.grid.shape == (1, 3) and env.spec.max_episode_steps == 5
    env.reset()
    assert env.step(1)[1] == -1.0


def test_unknown_name_lists_short_names_and_how_to_pass_an_id():
    with pytest.raises(ValueError) as err:
        envs.make("RoomExt")
    message = str(err.value)
    assert "unknown environment 'RoomExt'" in message
    assert "RoomExit, Gridworld, Pong" in message
    assert "Gymnasium id such as 'CartPole-v1'" in message
    assert "Did you mean 'RoomExit'" in message
    with pytest.raises(ValueError, match="unknown environment"):
        envs.make_vec("NoSuchEnv-v9", 2)


@pytest.mark.parametrize("name,kwargs,bad,valid", [
    ("RoomExit", {}, 6, "from 0 to 5"),
    ("RoomExit", {}, -1, "from 0 to 5"),
    ("Gridworld", {}, 4, "from 0 to 3"),
    ("Gridworld", {}, 1.5, "from 0 to 3"),
    ("Pong", {}, 6, "from 0 to 5"),
    ("Pong", {"preprocess": "pg", "actions": "updown"}, 2, "from 0 to 1"),
    ("CartPole-v1", {}, 2, "from 0 to 1"),
    ("FrozenLake-v1", {}, 4, "from 0 to 3"),
])
def test_out_of_range_action_is_a_clear_error_for_every_env(name, kwargs, bad, valid):
    env = envs.make(name, **kwargs)
    env.reset(seed=0)
    with pytest.raises(ValueError, match=rf"action {bad} is outside the action space .*expected an integer {valid}"):
        env.step(bad)
    env.close()


def test_numpy_integer_actions_are_accepted():
    env = envs.make("RoomExit")
    env.reset(seed=0, options={"start_room": 1})
    assert env.step(np.int64(5))[:3] == (5, 100.0, True)
    env.reset(seed=0, options={"start_room": 1})
    assert env.step(np.array(5))[:3] == (5, 100.0, True)


@pytest.mark.parametrize("name", ["RoomExit", "Gridworld", "CartPole-v1"])
def test_make_vec_for_non_atari_names(name):
    venv = envs.make_vec(name, 3)
    assert isinstance(venv, gym.vector.SyncVectorEnv) and venv.num_envs == 3
    obs, _ = venv.reset(seed=0)
    assert venv.observation_space.contains(obs)
    obs, rewards, terminated, truncated, _ = venv.step(np.zeros(3, dtype=np.int64))
    assert rewards.shape == (3,)
    with pytest.raises(ValueError, match="is outside the action space"):
        venv.step(np.array([0, 0, 9]))
    venv.close()


def test_vector_seeding_is_reproducible():
    def first_states(seed):
        venv = envs.make_vec("RoomExit", 4)
        return venv.reset(seed=seed)[0].tolist()

    assert first_states(11) == first_states(11)


@pytest.mark.parametrize("name,expected", [
    ("Pong", True), ("pong", True), ("ALE/Pong-v5", True),
    ("Breakout", True), ("breakout", True), ("BREAKOUT", True), ("ALE/Breakout-v5", True),
    ("SpaceInvaders", True), ("space_invaders", True), ("spaceinvaders", True), ("ALE/SpaceInvaders-v5", True),
    ("RoomExit", False), ("Gridworld", False), ("CartPole-v1", False), ("FrozenLake-v1", False),
    ("BreakoutNoFrameskip-v4", False), ("NoSuchEnv-v9", False), ("envs.room_exit:RoomExitEnv", False),
])
def test_is_atari_for_every_form_of_name(name, expected):
    assert envs.is_atari(name) is expected


def test_ale_ids_get_the_same_preprocessing_as_short_names():
    by_id, by_name = envs.make("ALE/Breakout-v5"), envs.make("breakout")
    for env in (by_id, by_name):
        assert env.spec.id == "ALE/Breakout-v5" and env.action_space == gym.spaces.Discrete(4)
        assert env.reset(seed=0)[0].shape == (4, 84, 84)
    np.testing.assert_array_equal(by_id.reset(seed=1)[0], by_name.reset(seed=1)[0])
    # Gymnasium's legacy ids stay raw ALE
    legacy = envs.make("BreakoutNoFrameskip-v4")
    assert legacy.reset(seed=0)[0].shape == (210, 160, 3)


def test_unknown_name_says_any_atari_game_works():
    with pytest.raises(ValueError) as err:
        envs.make("Breakot")
    message = str(err.value)
    assert "RoomExit, Gridworld, Pong" in message and "Atari games by name" in message
    assert "Did you mean 'Breakout'" in message
