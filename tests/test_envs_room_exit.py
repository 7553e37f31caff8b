"""RoomExit: the seed book's reward matrix, its worked Q-learning numbers, and the Gymnasium API."""
import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import envs
from envs.drawing import AGENT
from envs.room_exit import _NODE_XY

# Typed in again from the seed book's reward table (Q-learning chapter), not imported.
BOOK_R = [
    [-1, -1, -1, -1, 0, -1],
    [-1, -1, -1, 0, -1, 100],
    [-1, -1, -1, 0, -1, -1],
    [-1, 0, 0, -1, 0, -1],
    [0, -1, -1, 0, -1, 100],
    [-1, 0, -1, -1, 0, 100],
]
# The book's normalised converged Q table (percent of the maximum); 51 is 51.2 printed rounded.
BOOK_Q_NORMALISED = [
    [0, 0, 0, 0, 80, 0],
    [0, 0, 0, 64, 0, 100],
    [0, 0, 0, 64, 0, 0],
    [0, 80, 51, 0, 80, 0],
    [64, 0, 0, 64, 0, 100],
]


def q_value_iteration(P, gamma, sweeps=200):
    """Q* of a toy_text model by repeated Bellman optimality backups (float64)."""
    n_s, n_a = len(P), len(P[0])
    V = np.zeros(n_s)
    for _ in range(sweeps):
        Q = np.array([[sum(p * (r + (0.0 if t else gamma * V[s2])) for p, s2, r, t in P[s][a])
                       for a in range(n_a)] for s in range(n_s)])
        V = Q.max(axis=1)
    return Q


@pytest.fixture
def env():
    e = envs.make("RoomExit")
    yield e
    e.close()


def test_reward_matrix_is_the_books(env):
    np.testing.assert_array_equal(env.unwrapped.R, BOOK_R)
    assert env.unwrapped.action_names[5] == "go to room 5"


def test_room1_action5_pays_100_and_terminates(env):
    s, _ = env.reset(seed=0, options={"start_room": 1})
    assert s == 1
    s, r, terminated, truncated, info = env.step(5)
    assert (s, r, terminated, truncated) == (5, 100.0, True, False)


def test_book_first_episode_transition_3_to_1(env):
    env.reset(seed=0, options={"start_room": 3})
    assert env.step(1)[:4] == (1, 0.0, False, False)


@pytest.mark.parametrize("room", range(5))
def test_invalid_action_returns_minus_one_and_stays(env, room):
    for a in np.flatnonzero(np.array(BOOK_R[room]) == -1):
        env.reset(seed=0, options={"start_room": room})
        s, r, terminated, truncated, info = env.step(int(a))
        assert (s, r, terminated, truncated) == (room, -1.0, False, False)


def test_invalid_action_can_raise():
    e = envs.make("RoomExit", invalid_action="raise")
    e.reset(seed=0, options={"start_room": 2})
    with pytest.raises(ValueError, match=r"room 2 has no door to room 0: valid actions are \[3\]"):
        e.step(0)
    with pytest.raises(ValueError, match="invalid_action"):
        envs.make("RoomExit", invalid_action="ignore")


def test_action_mask_lists_the_doors(env):
    _, info = env.reset(seed=0, options={"start_room": 3})
    np.testing.assert_array_equal(info["action_mask"], [0, 1, 1, 0, 1, 0])
    assert info["action_mask"].dtype == np.int8
    _, _, _, _, info = env.step(4)
    np.testing.assert_array_equal(info["action_mask"], np.array(BOOK_R[4]) != -1)


def test_reset_is_uniform_over_rooms_0_to_4_and_never_5(env):
    n = 5000
    counts = np.bincount([env.reset(seed=i)[0] for i in range(n)], minlength=6)
    assert counts[5] == 0
    # each count ~ Binomial(n, 1/5): 5 standard deviations is a two-sided miss rate < 1e-6
    sd = np.sqrt(n * 0.2 * 0.8)
    assert np.all(np.abs(counts[:5] - n / 5) < 5 * sd), counts


def test_start_room_option_is_validated(env):
    for bad in (5, -1, 2.0, "1"):
        with pytest.raises(ValueError, match="start_room must be a non-goal room from 0 to 4"):
            env.reset(options={"start_room": bad})


def test_model_is_a_distribution_and_matches_step(env):
    P = env.unwrapped.P
    for s in range(6):
        for a in range(6):
            assert sum(p for p, *_ in P[s][a]) == pytest.approx(1.0, abs=1e-12)
    for s in range(5):
        for a in range(6):
            env.reset(options={"start_room": s})
            (p, s2, r, t), = P[s][a]
            assert env.step(a)[:3] == (s2, r, t)
    assert all(P[5][a] == [(1.0, 5, 0.0, True)] for a in range(6))


def test_value_iteration_on_P_reproduces_the_books_q_table(env):
    Q = q_value_iteration(env.unwrapped.P, gamma=0.8)
    doors = np.array(BOOK_R[:5]) != -1
    # with terminal handling the raw fixed point is 100 / 80 / 64 / 51.2 (see ERRATA.md) ...
    assert Q[1, 5] == pytest.approx(100) and Q[3, 1] == pytest.approx(80)
    assert Q[2, 3] == pytest.approx(64) and Q[3, 2] == pytest.approx(51.2)
    # ... and, normalised by its maximum, equals the book's table at every door
    normalised = np.round(100 * Q[:5] / Q[:5].max())
    np.testing.assert_array_equal(normalised[doors], np.array(BOOK_Q_NORMALISED)[doors])


def test_step_limit_truncates_wandering(env):
    env.reset(seed=0, options={"start_room": 2})
    for t in range(1, 101):
        _, _, terminated, truncated, _ = env.step(0)  # no door: stays forever
        assert not terminated
        assert truncated == (t == 100)


def test_seeded_rollouts_are_reproducible():
    def rollout(seed):
        e = envs.make("RoomExit")
        e.action_space.seed(seed)
        out = [e.reset(seed=seed)[0]]
        for _ in range(50):
            s, r, terminated, truncated, _ = e.step(e.action_space.sample())
            out.append((s, r))
            if terminated or truncated:
                out.append(e.reset()[0])
        return out

    assert rollout(3) == rollout(3)
    assert rollout(3) != rollout(4)


@pytest.mark.parametrize("render_mode", [None, "ansi", "rgb_array"])
def test_check_env(render_mode):
    check_env(gym.make(envs.ROOM_EXIT_ID, render_mode=render_mode).unwrapped)


def test_ansi_render_marks_current_room():
    e = envs.make("RoomExit", render_mode="ansi")
    e.reset(options={"start_room": 2})
    text = e.render()
    assert "[2]" in text and "doors: [3]" in text
    e.step(3)
    assert "[3]" in e.render() and "(go to room 3)" in e.render()


def test_rgb_render_highlights_current_room():
    e = envs.make("RoomExit", render_mode="rgb_array")
    for room in (0, 4):
        e.reset(options={"start_room": room})
        frame = e.render()
        assert frame.shape == (400, 480, 3) and frame.dtype == np.uint8
        for r, (x, y) in _NODE_XY.items():
            inside = tuple(frame[y - 18, x])  # inside the node circle, above its label
            assert (inside == AGENT) == (r == room)
    e.close()


def test_human_render_runs_headless():
    e = envs.make("RoomExit", render_mode="human")
    e.reset(seed=0)
    assert e.render() is None
    e.close()
