"""Issue 4's "must reproduce" list: the seed book's room table, the gridworld chapter's four
policies and Russell & Norvig's 4x3 values, on rlkit's RoomExit and Gridworld."""
import numpy as np
import pytest

import envs
from agents.planning import PolicyIteration, ValueIteration
from agents.q_learning import QLearning

# The book's converged table under its own rule, gamma = 0.8 (Q-learning chapter). The book
# prints row 0's 400 under action 3; R(0, 3) = -1 (no door), it belongs under action 4
# (shared/seed/ERRATA.md).
BOOK_RAW = np.array([
    [0, 0, 0, 0, 400, 0],
    [0, 0, 0, 320, 0, 500],
    [0, 0, 0, 320, 0, 0],
    [0, 400, 256, 0, 400, 0],
    [320, 0, 0, 320, 0, 500],
    [0, 400, 0, 0, 400, 500],
], dtype=float)
# Its normalised table (divided by 500, in percent); the book rounds 51.2 to 51.
BOOK_NORMALISED = np.array([
    [0, 0, 0, 0, 80, 0],
    [0, 0, 0, 64, 0, 100],
    [0, 0, 0, 64, 0, 0],
    [0, 80, 51.2, 0, 80, 0],
    [64, 0, 0, 64, 0, 100],
    [0, 80, 0, 0, 80, 100],
])
# Doors of the room graph: the book's R marks a missing one with -1.
DOORS = envs.make("RoomExit").unwrapped.R != -1


def room_exit():
    return envs.make("RoomExit")


# ---- the Q-learning chapter ---------------------------------------------------------------

def test_book_hand_worked_episodes():
    env = room_exit()
    agent = QLearning(env, rule="book", gamma=0.8)
    # Episode 1: start in room 1, go to room 5 (the goal): Q(1, 5) = 100 + 0.8 * 0.
    s, _ = env.reset(seed=0, options={"start_room": 1})
    s_next, r, terminated, _, _ = env.step(5)
    assert (r, terminated) == (100.0, True)
    assert agent.update(s, 5, r, s_next, terminated) == 100.0
    expected = np.zeros((6, 6))
    expected[1, 5] = 100
    np.testing.assert_array_equal(agent.q_table, expected)
    # Episode 2: start in room 3, go to room 1: Q(3, 1) = 0 + 0.8 * max(Q(1, 3), Q(1, 5)) = 80.
    s, _ = env.reset(options={"start_room": 3})
    s_next, r, terminated, _, _ = env.step(1)
    assert agent.update(s, 1, r, s_next, terminated) == 80.0
    expected[3, 1] = 80
    np.testing.assert_array_equal(agent.q_table, expected)
    # ... then 1 -> 5: Q(1, 5) = 100 + 0.8 * max Q(5, .) = 100 again; "the Q matrix remains
    # unchanged".
    s_next, r, terminated, _, _ = env.step(5)
    agent.update(1, 5, r, s_next, terminated)
    np.testing.assert_array_equal(agent.q_table, expected)


def test_book_rule_converges_to_the_books_table():
    agent = QLearning(room_exit(), rule="book", gamma=0.8, seed=0).learn(1000)
    np.testing.assert_allclose(agent.q_table, BOOK_RAW, rtol=1e-12)
    np.testing.assert_allclose(agent.normalised_table(), BOOK_NORMALISED, rtol=1e-12)
    # The erratum: row 0's 400 is under action 4, action 3 has no door.
    assert agent.q_table[0, 3] == 0 and agent.q_table[0, 4] == pytest.approx(400)


def test_book_greedy_paths():
    agent = QLearning(room_exit(), rule="book", gamma=0.8, seed=0).learn(1000)
    # Room 3 ties actions 1 and 4 (both 400); the first wins, as in the book.
    assert agent.greedy_path(2) == [2, 3, 1, 5]
    assert [agent.greedy_path(s) for s in (0, 1, 3, 4)] == [[0, 4, 5], [1, 5], [3, 1, 5], [4, 5]]


def test_book_rule_needs_the_room_graph():
    with pytest.raises(ValueError, match="needs the env's reward matrix R"):
        QLearning(envs.make("Gridworld"), rule="book")


def test_td_rule_reaches_the_terminal_fixed_point_with_the_same_normalised_table():
    """With terminal handling the raw values are 100/80/64/51.2 (= the planners' Q on the
    doors); normalised, the table is the book's. Random behaviour, alpha = 1: exact."""
    env = room_exit()
    agent = QLearning(env, rule="td", gamma=0.8, alpha=1.0, epsilon=1.0, epsilon_min=1.0,
                      seed=0).learn(300)
    vi = ValueIteration(env, gamma=0.8).learn()
    np.testing.assert_allclose(agent.q_table[:5][DOORS[:5]], vi.Q[:5][DOORS[:5]], rtol=1e-12)
    np.testing.assert_allclose(agent.q_table[:5], BOOK_NORMALISED[:5] * DOORS[:5], rtol=1e-12)
    np.testing.assert_allclose(vi.V, [80, 100, 64, 80, 100, 0])
    assert agent.greedy_path(2) == [2, 3, 1, 5]


# ---- planners agree, Q-learning finds the planned policy ----------------------------------

def decision_states(model):
    """States where an action is chosen: not ones the episode ends on entering (exits, goal),
    nor Gridworld's walls (absorbing and never entered, so marked terminal too)."""
    return np.flatnonzero(~model.terminal)


def assert_optimal(policy_of, planner, states):
    """Every state's chosen action is optimal under the planner's Q (ties may differ)."""
    chosen = np.array([policy_of(s) for s in states])
    np.testing.assert_array_less(planner.V[states] - 1e-6, planner.Q[states, chosen] + 1e-12)


WORLDS = [
    ("RoomExit", {}, 0.8),
    ("RoomExit", {}, 1.0),
    ("Gridworld", {}, 1.0),
    ("Gridworld", {"slip": 0.0}, 1.0),
    ("Gridworld", {"living_reward": -2.0, "slip": 0.4}, 0.9),
    ("Gridworld", {"grid": ["S..#....G", ".#...#.#.", "...#P...."], "living_reward": -0.1}, 1.0),
]


@pytest.mark.parametrize("name,kwargs,gamma", WORLDS)
def test_value_iteration_and_policy_iteration_agree(name, kwargs, gamma):
    env = envs.make(name, **kwargs)
    vi = ValueIteration(env, gamma=gamma, tol=1e-12).learn()
    pi = PolicyIteration(env, gamma=gamma).learn()
    np.testing.assert_allclose(vi.V, pi.V, atol=1e-9)
    states = decision_states(vi.model)
    assert_optimal(lambda s: pi.policy[s], vi, states)
    assert_optimal(lambda s: vi.policy[s], pi, states)


@pytest.mark.parametrize("seed", range(3))
def test_q_learning_td_finds_the_value_iteration_policy_on_room_exit(seed):
    env = room_exit()
    vi = ValueIteration(env, gamma=0.8).learn()
    agent = QLearning(env, gamma=0.8, alpha=0.5, seed=seed).learn(300)
    states = decision_states(vi.model)
    assert_optimal(agent.predict, vi, states)
    np.testing.assert_allclose(agent.q_table[states].max(axis=1), vi.V[states], atol=1e-3)


@pytest.mark.parametrize("seed", range(3))
def test_q_learning_td_finds_the_value_iteration_policy_on_deterministic_gridworld(seed):
    env = envs.make("Gridworld", slip=0.0)
    vi = ValueIteration(env, gamma=1.0).learn()
    agent = QLearning(env, gamma=1.0, alpha=0.5, epsilon_decay=0.995, epsilon_min=0.1,
                      seed=seed).learn(1000)
    states = decision_states(vi.model)
    assert_optimal(agent.predict, vi, states)
    np.testing.assert_allclose(agent.q_table[states].max(axis=1), vi.V[states], atol=0.01)


# ---- the gridworld chapter ----------------------------------------------------------------

# State indices of the classic map ("...G", ".#.P", "S..."): row * 4 + col.
LEFT_OF_PIT, BELOW_PIT = 6, 11          # the two cells next to the -1 exit (state 7)
BOTTOM_MIDDLE = (9, 10)
UP, RIGHT, DOWN, LEFT = range(4)        # GridworldEnv.action_names


@pytest.mark.parametrize("living_reward,left_of_pit,below_pit,bottom_middle", [
    # Tiny cost: never risk the pit. Bump into the wall (left) / the edge (down) and only ever
    # slip away from the -1.
    (-0.01, LEFT, DOWN, (LEFT, LEFT)),
    # R&N's standard policy: go up past the pit, accept the 10% slip; long way round below it.
    (-0.03, UP, LEFT, (LEFT, LEFT)),
    # Costly: from the bottom row take the short way, past the pit.
    (-0.4, UP, LEFT, (RIGHT, UP)),
    # Life hurts more than the pit: walk straight into it.
    (-2.0, RIGHT, UP, (RIGHT, RIGHT)),
])
def test_four_living_rewards_pin_the_cells_next_to_the_pit(living_reward, left_of_pit,
                                                           below_pit, bottom_middle):
    env = envs.make("Gridworld", living_reward=living_reward)
    for planner in (ValueIteration(env, gamma=1.0, tol=1e-12), PolicyIteration(env, gamma=1.0)):
        policy = planner.learn().policy
        assert (policy[LEFT_OF_PIT], policy[BELOW_PIT]) == (left_of_pit, below_pit)
        assert tuple(policy[list(BOTTOM_MIDDLE)]) == bottom_middle


def test_four_living_rewards_give_four_different_policies():
    policies = []
    for living_reward in (-0.01, -0.03, -0.4, -2.0):
        vi = ValueIteration(envs.make("Gridworld", living_reward=living_reward), gamma=1.0).learn()
        policies.append(tuple(vi.policy[decision_states(vi.model)]))
    assert len(set(policies)) == 4


# Russell & Norvig, AIMA 3rd ed., Figure 17.3: utilities U(s) of the 4x3 world, R(s) = -0.04
# for non-terminal states, gamma = 1, 0.8/0.1/0.1 moves (published to 3 decimals).
RN_UTILITIES = {0: 0.812, 1: 0.868, 2: 0.918,
                4: 0.762, 6: 0.660,
                8: 0.705, 9: 0.655, 10: 0.611, 11: 0.388}


def test_russell_norvig_4x3_values():
    """R&N's reward is received in the state being left (U includes R(s)); the env's is that
    of the cell entered (V counts from the next step). So U(s) = R(s) + gamma * V(s), here
    U = V - 0.04 for every non-exit cell (exits: U = +1 / -1, V = 0)."""
    env = envs.make("Gridworld", living_reward=-0.04, slip=0.2)
    for planner in (ValueIteration(env, gamma=1.0, tol=1e-12), PolicyIteration(env, gamma=1.0)):
        V = planner.learn().V
        states = list(RN_UTILITIES)
        U = -0.04 + 1.0 * V[states]
        np.testing.assert_allclose(U, list(RN_UTILITIES.values()), atol=5e-4 + 1e-12)
        assert V[[3, 7]].tolist() == [0.0, 0.0]
    # And R&N's Figure 17.2(a) policy: up the left column, right along the top, up at (3,2),
    # the long way round at (4,1).
    assert planner.policy[[8, 4, 0, 1, 2, 6, 9, 10, 11]].tolist() == [UP, UP, RIGHT, RIGHT,
                                                                       RIGHT, UP, LEFT, LEFT, LEFT]
