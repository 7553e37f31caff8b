"""Gridworld: maps, the 0.8/0.1/0.1 slip model, rewards of entered cells, and the Gymnasium API."""
import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import envs
from envs.drawing import value_colour
from envs.gridworld import GridworldEnv

OPEN_5X5 = ["G....", ".....", "..S..", ".....", "....P"]
MAZE = """
    S.#..
    .##.P
    ....G
"""


def value_iteration(P, gamma, sweeps=500):
    """V* of a toy_text model (float64), V = 0 after termination."""
    V = np.zeros(len(P))
    for _ in range(sweeps):
        V = np.array([max(sum(p * (r + (0.0 if t else gamma * V[s2])) for p, s2, r, t in P[s][a])
                          for a in P[s]) for s in range(len(P))])
    return V


def test_default_map_is_the_classic_4x3():
    e = GridworldEnv()
    assert e.grid.shape == (3, 4)
    assert ["".join(r) for r in e.grid] == ["...G", ".#.P", "S..."]
    assert e.start_state == 8 and list(e.wall_states) == [5] and list(e.terminal_states) == [3, 7]
    assert e.action_names == ("up", "right", "down", "left")
    assert e.observation_space.n == 12 and e.action_space.n == 4


def test_classic_values_match_aima():
    # AIMA (Russell & Norvig, 3rd ed., Fig. 17.3): utilities of the 4x3 world with R(s) = -0.04,
    # gamma = 1. AIMA charges R of the state left, rlkit the reward of the cell entered, so for
    # non-terminal states V_rlkit(s) = U_AIMA(s) - R(s) = U_AIMA(s) + 0.04.
    aima = {0: 0.812, 1: 0.868, 2: 0.918, 4: 0.762, 6: 0.660, 8: 0.705, 9: 0.655, 10: 0.611, 11: 0.388}
    V = value_iteration(GridworldEnv().P, gamma=1.0)
    for s, u in aima.items():
        assert V[s] - 0.04 == pytest.approx(u, abs=6e-4), s


@pytest.mark.parametrize("grid,slip", [(envs.CLASSIC_4X3, 0.2), (envs.CLASSIC_4X3, 0.0),
                                       (OPEN_5X5, 0.5), (MAZE, 1.0)])
def test_every_P_row_sums_to_one(grid, slip):
    P = GridworldEnv(grid=grid, slip=slip).P
    for s in P:
        for a in P[s]:
            probs = [p for p, *_ in P[s][a]]
            assert sum(probs) == pytest.approx(1.0, abs=1e-12) and min(probs) > 0


@pytest.mark.parametrize("slip", [0.2, 0.5])
def test_empirical_slip_frequencies(slip):
    # From the centre of an open 5x5 map all three outcomes are distinct floor cells.
    e = GridworldEnv(grid=OPEN_5X5, slip=slip)
    n = 4000
    expected = np.array([1 - slip, slip / 2, slip / 2])  # intended, clockwise, counter-clockwise
    # Each count is Binomial(n, p); 5 standard deviations is a two-sided miss rate < 6e-7 per
    # check, < 2e-5 over the 24 checks of this test (Bonferroni).
    tol = 5 * np.sqrt(expected * (1 - expected) / n)
    e.reset(seed=123)
    for a, (dr, dc) in enumerate(e.action_deltas):
        counts = np.zeros(3)
        for _ in range(n):
            e.reset()
            s, r, terminated, _, _ = e.step(a)
            move = (s // 5 - 2, s % 5 - 2)
            sides = [(dr, dc), e.action_deltas[(a + 1) % 4], e.action_deltas[(a - 1) % 4]]
            counts[sides.index(move)] += 1
            assert r == pytest.approx(-0.04) and not terminated
        assert np.all(np.abs(counts / n - expected) <= tol), (a, counts / n)


def test_slip_zero_is_deterministic():
    e = GridworldEnv(grid=OPEN_5X5, slip=0.0)
    e.reset(seed=0)
    for a, expected in enumerate([7, 13, 17, 11]):
        for _ in range(20):
            e.reset()
            assert e.step(a)[0] == expected


def test_state_index_is_row_times_ncols_plus_col():
    e = GridworldEnv(grid=MAZE, slip=0.0)
    s, _ = e.reset()
    assert s == 0 and e.grid.shape == (3, 5)
    assert e.step(2)[0] == 5       # down: +ncols
    assert e.step(2)[0] == 10
    assert e.step(1)[0] == 11      # right: +1
    assert e.step(0)[0] == 11      # (1, 1) is a wall: stays


def test_walls_and_edges_stay_put_with_living_reward():
    e = GridworldEnv(slip=0.0)
    e.reset()
    assert e.step(3)[:3] == (8, -0.04, False)   # left edge
    assert e.step(2)[:3] == (8, -0.04, False)   # bottom edge
    e.reset(options={"start_state": 9})
    assert e.step(0)[:3] == (9, -0.04, False)   # wall above (1, 1)


def test_exits_pay_their_reward_and_terminate():
    e = GridworldEnv(slip=0.0)
    e.reset(options={"start_state": 2})
    assert e.step(1)[:4] == (3, 1.0, True, False)
    e.reset(options={"start_state": 6})
    assert e.step(1)[:4] == (7, -1.0, True, False)
    custom = GridworldEnv(slip=0.0, goal_reward=10, pit_reward=-5, living_reward=0.0)
    custom.reset(options={"start_state": 6})
    assert custom.step(0)[1] == 0.0
    assert custom.step(1)[1] == 10.0
    custom.reset(options={"start_state": 6})
    assert custom.step(1)[1] == -5.0


def test_start_state_option_is_validated():
    e = GridworldEnv()
    for bad in (5, 3, 7, 12, -1):  # wall, exits, out of range
        with pytest.raises(ValueError, match="start_state must index a start or floor cell"):
            e.reset(options={"start_state": bad})


@pytest.mark.parametrize("grid,message", [
    ([], "empty"),
    (["S..G", "..."], r"ragged: row 1 has 3 cells but row 0 has 4"),
    (["S.xG"], r"unknown character 'x' at row 0, col 2"),
    (["...G", ".#.P"], "no start cell 'S'"),
    (["S..G", "S..."], r"2 start cells 'S' at \(row 0, col 0\), \(row 1, col 0\)"),
    (["S...", "..#."], r"no exit"),
])
def test_malformed_maps_raise_with_position(grid, message):
    with pytest.raises(ValueError, match=message):
        GridworldEnv(grid=grid)


def test_slip_outside_unit_interval_raises():
    with pytest.raises(ValueError, match="slip"):
        GridworldEnv(slip=1.5)


def test_multiline_string_map():
    assert GridworldEnv(grid=MAZE).grid.shape == (3, 5)


@pytest.mark.parametrize("grid,slip", [(envs.CLASSIC_4X3, 0.2), (envs.CLASSIC_4X3, 0.0),
                                       (OPEN_5X5, 0.5), (MAZE, 0.1)])
@pytest.mark.parametrize("render_mode", [None, "ansi", "rgb_array"])
def test_check_env(grid, slip, render_mode):
    check_env(gym.make(envs.GRIDWORLD_ID, grid=grid, slip=slip, render_mode=render_mode).unwrapped)


def test_seeded_rollouts_are_reproducible():
    def rollout(seed):
        e = envs.make("Gridworld", grid=OPEN_5X5)
        e.reset(seed=seed)
        out = []
        for t in range(200):
            s, r, terminated, truncated, _ = e.step(t % 4)
            out.append(s)
            if terminated or truncated:
                e.reset()
        return out

    assert rollout(7) == rollout(7)
    assert rollout(7) != rollout(8)


def test_step_limit_truncates():
    e = envs.make("Gridworld", slip=0.0)
    e.reset()
    truncated = [e.step(3)[3] for _ in range(100)]  # bump the left edge forever
    assert truncated == [False] * 99 + [True]


def test_ansi_render_with_overlay():
    e = envs.make("Gridworld", render_mode="ansi")
    e.reset()
    assert e.render().splitlines()[1:] == ["...G", ".#.P", "A..."]
    e.unwrapped.set_overlay(values=np.arange(12) / 10, policy=[1, 1, 1, -1, 0, -1, 0, -1, 0, 3, 3, 3])
    lines = e.render().splitlines()
    assert lines[4].split() == ["0.000", "0.100", "0.200", "0.300"]
    assert lines[5].split() == ["0.400", "####", "0.600", "0.700"]
    assert lines[7:] == [">>>G", "^#^P", "^<<<"]


def test_rgb_render_draws_cells_agent_and_value_tint():
    e = envs.make("Gridworld", render_mode="rgb_array")
    e.reset()
    values = np.linspace(-1, 1, 12)
    e.unwrapped.set_overlay(values=values)
    frame = e.render()
    px = 96
    assert frame.shape == (3 * px, 4 * px, 3) and frame.dtype == np.uint8
    corner = lambda s: tuple(frame[(s // 4) * px + 4, (s % 4) * px + 4])  # noqa: E731
    assert corner(5) == (70, 70, 80)                      # wall
    assert corner(0) == value_colour(-1.0, 1.0)           # strongest negative tint
    assert corner(11) == value_colour(1.0, 1.0)
    assert tuple(frame[2 * px + px // 2 - px // 12, px // 2]) == (240, 190, 40)  # agent disc at S


def test_overlay_is_validated():
    e = GridworldEnv()
    with pytest.raises(ValueError, match="12 entries"):
        e.set_overlay(values=np.zeros(11))
    with pytest.raises(ValueError, match="action 4 at state 2"):
        e.set_overlay(policy=[0, 0, 4] + [0] * 9)


def test_human_render_runs_headless():
    e = envs.make("Gridworld", render_mode="human")
    e.reset(seed=0)
    e.step(0)
    assert e.render() is None
    e.close()
