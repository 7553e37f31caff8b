"""Planners and Q-learning on Gymnasium's toy_text worlds and on small hand-made MDPs."""
import gymnasium as gym
import numpy as np
import pytest
from gymnasium.spaces import Box, Discrete

import agents.mdp as mdp
from agents.mdp import TabularModel
from agents.planning import PolicyIteration, ValueIteration
from agents.q_learning import QLearning


class ModelEnv(gym.Env):
    """A bare env around a hand-written toy_text model P (only what the planners read)."""

    def __init__(self, P, n_states, n_actions):
        self.P = P
        self.observation_space = Discrete(n_states)
        self.action_space = Discrete(n_actions)


def chain():
    """0 -a0-> 1 -a0-> 2 (entering 2 pays 1 and ends). Action 1 stays put, paying -0.1;
    state 2 lists no outcome for action 1 (unavailable there)."""
    P = {0: {0: [(1.0, 1, 0.0, False)], 1: [(1.0, 0, -0.1, False)]},
         1: {0: [(1.0, 2, 1.0, True)], 1: [(1.0, 1, -0.1, False)]},
         2: {0: [(1.0, 2, 0.0, True)], 1: []}}
    return ModelEnv(P, 3, 2)


def assert_same_solution(a, b, atol=1e-6):
    """Same values, and each policy is greedy under the other's Q (ties may break differently)."""
    np.testing.assert_allclose(a.V, b.V, atol=atol)
    states = np.arange(len(a.V))
    assert np.all(a.Q[states, b.policy] >= a.V - atol)
    assert np.all(b.Q[states, a.policy] >= b.V - atol)


def test_chain_values_terminal_handling_and_unavailable_actions():
    env = chain()
    model = TabularModel.from_env(env)
    assert model.terminal.tolist() == [False, False, True]
    assert model.available[2].tolist() == [True, False]
    vi = ValueIteration(env, gamma=0.5, tol=1e-12).learn()
    # V(1) = 1 (the exit's reward, nothing after it); V(0) = 0 + 0.5 * V(1); V(2) = 0.
    np.testing.assert_allclose(vi.V, [0.5, 1.0, 0.0])
    np.testing.assert_allclose(vi.Q, [[0.5, -0.1 + 0.25], [1.0, -0.1 + 0.5], [0.0, -np.inf]])
    assert vi.policy.tolist() == [0, 0, 0]
    assert vi.predict(1) == 0
    pi = PolicyIteration(env, gamma=1.0).learn()
    np.testing.assert_allclose(pi.V, [1.0, 1.0, 0.0])


def test_gamma_one_needs_every_state_to_end():
    P = {0: {0: [(1.0, 1, 1.0, True)]}, 1: {0: [(1.0, 1, 0.0, False)]}}  # 1 loops forever
    env = ModelEnv(P, 2, 1)
    for agent in (ValueIteration(env, gamma=1.0), PolicyIteration(env, gamma=1.0)):
        with pytest.raises(ValueError, match=r"states \[1\] \(of 1\) cannot"):
            agent.learn()
    np.testing.assert_allclose(ValueIteration(env, gamma=0.9).learn().V, [1.0, 0.0])


def test_value_iteration_that_cannot_converge_says_so():
    # Two actions each way; looping on state 0 pays +1 forever (an exit exists, so gamma = 1
    # passes the "can end" check, but the optimum is unbounded).
    P = {0: {0: [(1.0, 0, 1.0, False)], 1: [(1.0, 0, 0.0, True)]}}
    with pytest.raises(RuntimeError, match="did not converge in 50 sweeps"):
        ValueIteration(ModelEnv(P, 1, 2), gamma=1.0, max_sweeps=50).learn()


def test_bad_models_and_spaces_are_clear_errors():
    with pytest.raises(ValueError, match=r"P\[0\]\[0\] probabilities sum to 0.5"):
        TabularModel.from_env(ModelEnv({0: {0: [(0.5, 0, 0.0, True)]}}, 1, 1))
    with pytest.raises(ValueError, match="outside 0 <= state < 1"):
        TabularModel.from_env(ModelEnv({0: {0: [(1.0, 3, 0.0, True)]}}, 1, 1))
    env = ModelEnv({}, 1, 1)
    env.observation_space = Box(0, 1, (2,))
    with pytest.raises(ValueError, match="Discrete observation space"):
        ValueIteration(env)
    with pytest.raises(ValueError, match="publishes no model"):
        ValueIteration(ModelEnv(None, 1, 1))
    with pytest.raises(ValueError, match=r"gamma must be in \[0, 1\]"):
        ValueIteration(chain(), gamma=1.5)


WORLDS = [
    ("FrozenLake-v1", {}, 0.99),
    ("FrozenLake-v1", {}, 1.0),
    ("FrozenLake-v1", {"map_name": "8x8"}, 0.95),
    ("CliffWalking-v1", {}, 1.0),
    ("CliffWalking-v1", {"is_slippery": True}, 0.99),
    ("Taxi-v4", {}, 1.0),
    ("Taxi-v4", {"is_rainy": True}, 0.95),
]


@pytest.mark.parametrize("env_id,kwargs,gamma", WORLDS, ids=[f"{e}{k}-g{g}" for e, k, g in WORLDS])
def test_value_and_policy_iteration_agree_on_gymnasium_worlds(env_id, kwargs, gamma):
    env = gym.make(env_id, **kwargs)
    vi = ValueIteration(env, gamma=gamma, tol=1e-11).learn()
    pi = PolicyIteration(env, gamma=gamma).learn()
    assert_same_solution(vi, pi)
    assert vi.history[-1] < 1e-11 and pi.history[-1] == 0
    assert vi.V.shape == (env.observation_space.n,) and pi.policy.dtype.kind == "i"
    assert vi.Q.shape == (env.observation_space.n, env.action_space.n)


def test_known_values_of_gymnasium_worlds():
    # FrozenLake 4x4, slippery, gamma = 1: the start's value is the best success probability,
    # 0.8235 (82.35% -- the figure quoted for the optimal policy of this map).
    vi = ValueIteration(gym.make("FrozenLake-v1"), gamma=1.0, tol=1e-12).learn()
    assert vi.V[0] == pytest.approx(0.82353, abs=1e-5)
    # CliffWalking, gamma = 1: 13 steps of -1 along the cliff edge from the start (state 36).
    cliff = ValueIteration(gym.make("CliffWalking-v1"), gamma=1.0).learn()
    assert cliff.V[36] == -13.0


def test_sparse_and_dense_models_give_the_same_answer(monkeypatch):
    env = gym.make("FrozenLake-v1", map_name="8x8")
    dense = ValueIteration(env, gamma=0.95, tol=1e-12).learn()
    dense_pi = PolicyIteration(env, gamma=0.95).learn()
    monkeypatch.setattr(mdp, "DENSE_MAX_ENTRIES", 0)
    sparse = ValueIteration(env, gamma=0.95, tol=1e-12).learn()
    sparse_pi = PolicyIteration(env, gamma=0.95).learn()
    assert isinstance(dense.model.T, np.ndarray) and not isinstance(sparse.model.T, np.ndarray)
    np.testing.assert_allclose(sparse.V, dense.V, atol=1e-12)
    np.testing.assert_allclose(sparse_pi.V, dense_pi.V, atol=1e-12)
    np.testing.assert_array_equal(sparse.policy, dense.policy)


def test_planner_save_load_round_trip_and_refusals(tmp_path):
    env = gym.make("FrozenLake-v1")
    vi = ValueIteration(env, gamma=0.9).learn()
    vi.save(tmp_path / "vi.npz")
    back = ValueIteration.load(tmp_path / "vi.npz")           # no env: can predict
    np.testing.assert_array_equal(back.Q, vi.Q)
    assert back.gamma == 0.9 and back.history == vi.history
    assert [back.predict(s) for s in range(16)] == vi.policy.tolist()
    with pytest.raises(ValueError, match="no env to plan on"):
        back.learn()
    with pytest.raises(ValueError, match="a ValueIteration checkpoint, not PolicyIteration"):
        PolicyIteration.load(tmp_path / "vi.npz")
    with pytest.raises(ValueError, match="made for FrozenLake-v1"):
        ValueIteration.load(tmp_path / "vi.npz", env=gym.make("Taxi-v4"))
    (tmp_path / "bad.npz").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="not a readable .npz"):
        ValueIteration.load(tmp_path / "bad.npz")


def test_q_learning_td_on_cliff_walking_finds_the_planned_policy():
    """Off-policy: even a uniformly random behaviour learns the optimal table (deterministic
    world, alpha = 1 makes each backup exact)."""
    env = gym.make("CliffWalking-v1", max_episode_steps=200)
    vi = ValueIteration(env, gamma=0.9).learn()
    agent = QLearning(env, gamma=0.9, alpha=1.0, epsilon=1.0, epsilon_min=1.0, seed=0)
    agent.learn(300)
    decision = np.arange(37)  # the cliff cells (37..46) are never occupied, 47 ends episodes
    greedy = agent.q_table[decision].argmax(axis=1)
    np.testing.assert_allclose(vi.Q[decision, greedy], vi.V[decision], atol=1e-9)
    np.testing.assert_allclose(agent.q_table[decision].max(axis=1), vi.V[decision], atol=1e-9)
    assert agent.greedy_path(36) == [36, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 47]


def test_q_learning_respects_action_masks_on_taxi():
    env = gym.make("Taxi-v4")
    agent = QLearning(env, gamma=0.95, alpha=0.5, seed=1)
    taken = []
    agent.learn(20, callback=lambda row: taken.append(row["length"]) is None)
    assert len(taken) == 20
    # Masked (no-op) actions are never explored, so their entries were never written.
    never_allowed = ~agent.valid
    assert never_allowed.any() and np.all(agent.q_table[never_allowed] == 0)
    # The greedy choice never picks a masked action even when its 0 beats negative values.
    for s in np.flatnonzero(never_allowed.any(axis=1))[:50]:
        assert agent.valid[s, agent.predict(s)]


def test_q_learning_save_load_continues_identically(tmp_path):
    def fresh():
        return gym.make("FrozenLake-v1")
    a = QLearning(fresh(), alpha=0.5, epsilon_decay=0.9, seed=3).learn(30)
    a.save(tmp_path / "q.npz")
    b = QLearning.load(tmp_path / "q.npz", env=fresh())
    assert b.episodes_done == 30 and b.current_epsilon == a.current_epsilon
    np.testing.assert_array_equal(b.q_table, a.q_table)
    assert b.rng.bit_generator.state == a.rng.bit_generator.state
    with pytest.raises(ValueError, match="made for FrozenLake-v1"):
        QLearning.load(tmp_path / "q.npz", env=gym.make("CliffWalking-v1"))


def test_q_learning_argument_errors():
    env = gym.make("FrozenLake-v1")
    with pytest.raises(ValueError, match="rule must be one of"):
        QLearning(env, rule="sarsa")
    with pytest.raises(ValueError, match="book's rule has alpha = 1"):
        QLearning(env, rule="book", alpha=0.5)
    with pytest.raises(ValueError, match="epsilon_min <= epsilon"):
        QLearning(env, epsilon=0.1, epsilon_min=0.5)
