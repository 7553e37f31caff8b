"""PPO (agents/ppo.py), the diagonal Gaussian policy, orthogonal initialisation, and
``train_pg.py --algo ppo``: hand-computed objectives, closed forms, gradchecks, learning, resume.

CartPole-v1 learning, measured on this repository's 2-core machine with the "mlp" preset
(CleanRL's settings, greedy evaluation of 10 episodes every 10k steps): seeds 0, 1, 2 solved
(mean >= 475) at 10k, 30k and 40k steps, 28 s for the three.
"""
import json
import math

import gymnasium as gym
import numpy as np
import pytest

import envs
from agents.actor_critic import ActorCritic, n_step_returns
from agents.policy_gradient import PolicyGradient
from agents.policy_networks import DiagGaussian
from agents.ppo import PPO, PPOConfig, clipped_surrogate, value_loss
from agents.training_run import TrainingRun, evaluate
from rlkit import Tensor, gradcheck, nn, no_grad

import memory_corridor  # noqa: F401  (registers MemoryCorridor-v0)

# ---------------------------------------------------------------------------- the clipped objective

def test_clipped_objective_by_hand():
    eps = 0.2
    # ratios 1.5, 0.5, 1.1, 1.5 with advantages +1, -1, +2, -1
    ratios = np.array([1.5, 0.5, 1.1, 1.5])
    advantages = np.array([1.0, -1.0, 2.0, -1.0])
    old = np.zeros(4)
    log_prob = Tensor(np.log(ratios), requires_grad=True)
    loss = clipped_surrogate(log_prob, old, advantages, eps)
    # -min(r A, clip(r) A) per row: -min(1.5, 1.2), -min(-0.5, -0.8), -min(2.2, 2.2), -min(-1.5, -1.2)
    assert loss.item() == pytest.approx(np.mean([-1.2, 0.8, -2.2, 1.5]))
    loss.backward()
    # d/d log pi of -r A / 4 is -r A / 4 where the unclipped term is the one in force
    np.testing.assert_allclose(log_prob.grad, [0.0,            # above 1 + eps, A > 0: no gradient
                                               0.0,            # below 1 - eps, A < 0: no gradient
                                               -1.1 * 2 / 4,   # inside: the plain gradient
                                               1.5 / 4])       # above 1 + eps, A < 0: still pulled back
    # at ratio 1 (the first epoch's first minibatch) it is the plain policy gradient -A / N
    log_prob = Tensor(np.zeros(3), requires_grad=True)
    clipped_surrogate(log_prob, np.zeros(3), np.array([1.0, -2.0, 0.5]), eps).backward()
    np.testing.assert_allclose(log_prob.grad, [-1 / 3, 2 / 3, -0.5 / 3])


def test_clipped_value_loss_by_hand():
    returns, old = np.array([1.0, 1.0, 1.0]), np.array([0.0, 0.0, 0.9])
    values = Tensor(np.array([0.5, -0.5, 1.2]), requires_grad=True)
    loss = value_loss(values, returns, old, 0.2)
    # row 0: V moved 0.5 > 0.2: max((0.5 - 1)^2, (0.2 - 1)^2) = 0.64, no gradient
    # row 1: moved -0.5: clipped -0.2 -> (1.2)^2 = 1.44 < (1.5)^2 = 2.25: unclipped, gradient V - R
    # row 2: moved 0.3 to 1.2: (0.2)^2 = 0.04 vs clipped 1.1 -> 0.01: unclipped
    assert loss.item() == pytest.approx(0.5 * np.mean([0.64, 2.25, 0.04]))
    loss.backward()
    np.testing.assert_allclose(values.grad, [0.0, -1.5 / 3, 0.2 / 3])
    plain = Tensor(np.array([0.5, -0.5, 1.2]), requires_grad=True)
    value_loss(plain, returns, old, None).backward()
    np.testing.assert_allclose(plain.grad, (plain.data - returns) / 3)


def test_gae_by_hand_with_a_termination_and_a_truncation():
    gamma, lam = 0.9, 0.8
    rewards = np.array([[1.0, 2.0, 0.0, 3.0], [1.0, 1.0, 0.0, 1.0]])
    values = np.array([[0.5, 1.0, 7.0, 2.0], [1.0, 2.0, 4.0, 3.0]])
    last = np.array([10.0, 5.0])
    terminated = np.zeros((2, 4), bool)
    truncated = np.zeros((2, 4), bool)
    terminated[0, 1] = True  # env 0 ends at t=1 (t=2 is the reset step)
    truncated[1, 1] = True   # env 1 hits a time limit at t=1: V(final obs) = values[1, 2] = 4
    targets = n_step_returns(rewards, terminated, truncated, values, last, gamma, lam)
    advantages = targets - values
    # env 0: delta_3 = 3 + 0.9 * 10 - 2 = 10; delta_1 = 2 - 1 = 1 (no bootstrap);
    #        delta_0 = 1 + 0.9 * 1 - 0.5 = 1.4, A_0 = 1.4 + 0.72 * A_1 = 1.4 + 0.72
    np.testing.assert_allclose(advantages[0, [0, 1, 3]], [1.4 + 0.72 * 1.0, 1.0, 10.0])
    # env 1: delta_1 = 1 + 0.9 * 4 - 2 = 2.6 (bootstraps, but A_2 does not flow back);
    #        delta_0 = 1 + 0.9 * 2 - 1 = 1.8, A_0 = 1.8 + 0.72 * 2.6; delta_3 = 1 + 4.5 - 3 = 2.5
    np.testing.assert_allclose(advantages[1, [0, 1, 3]], [1.8 + 0.72 * 2.6, 2.6, 2.5])


# ---------------------------------------------------------------------------- the Gaussian

def test_gaussian_log_prob_and_entropy_match_the_closed_forms(rng):
    mean, log_std = rng.normal(size=(6, 3)), rng.normal(size=3) * 0.5
    actions = rng.normal(size=(6, 3)) * 2
    dist = DiagGaussian(Tensor(mean), Tensor(log_std))
    std = np.exp(log_std)
    density = np.prod(np.exp(-((actions - mean) / std) ** 2 / 2) / (std * math.sqrt(2 * math.pi)), axis=1)
    np.testing.assert_allclose(dist.log_prob(actions).numpy(), np.log(density), rtol=1e-10)
    entropy = np.sum(0.5 * np.log(2 * math.pi * math.e * std ** 2))
    np.testing.assert_allclose(dist.entropy().numpy(), np.full(6, entropy), rtol=1e-12)
    np.testing.assert_array_equal(dist.mode(), mean)


def test_gaussian_samples_have_its_mean_and_std(rng):
    mean, log_std = np.array([[1.0, -2.0]]), np.log(np.array([0.5, 2.0]))
    dist = DiagGaussian(Tensor(np.repeat(mean, 20_000, axis=0)), Tensor(log_std))
    draws = dist.sample(rng)
    np.testing.assert_allclose(draws.mean(axis=0), mean[0], atol=0.05)
    np.testing.assert_allclose(draws.std(axis=0), np.exp(log_std), rtol=0.03)


def test_gradients_through_the_gaussian_pass_gradcheck(rng):
    actions = rng.normal(size=(5, 2))
    assert gradcheck(lambda m, s: DiagGaussian(m, s).log_prob(actions),
                     rng.normal(size=(5, 2)), rng.normal(size=2) * 0.3)
    assert gradcheck(lambda m, s: DiagGaussian(m, s).entropy(),
                     rng.normal(size=(5, 2)), rng.normal(size=2) * 0.3)
    # and through the whole PPO loss of a Gaussian policy, to the mean and the log-std
    old, adv = rng.normal(size=5) - 2.0, rng.normal(size=5)
    assert gradcheck(lambda m, s: clipped_surrogate(DiagGaussian(m, s).log_prob(actions), old, adv, 0.2),
                     rng.normal(size=(5, 2)), rng.normal(size=2) * 0.3)


# ---------------------------------------------------------------------------- initialisation

@pytest.mark.parametrize("shape", [(3, 7), (7, 3), (5, 5), (8, 4, 3, 3)])
def test_orthogonal_init_gives_orthonormal_rows_or_columns(rng, shape):
    w = nn.init.orthogonal_(Tensor(np.zeros(shape, np.float64)), gain=1.7, rng=rng).numpy()
    w = w.reshape(shape[0], -1)
    small = min(w.shape)
    gram = w @ w.T if w.shape[0] <= w.shape[1] else w.T @ w
    np.testing.assert_allclose(gram, 1.7 ** 2 * np.eye(small), atol=1e-12)
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        nn.init.orthogonal_(Tensor(np.zeros(3)))


def test_ppo_networks_start_orthogonal_with_small_policy_head():
    agent = PPO(envs.make_vec("CartPole-v1", 2), seed=0)
    net = agent.net
    w = net.actor.encoder[0].weight.numpy()  # (64, 4): orthonormal columns, gain sqrt(2)
    np.testing.assert_allclose(w.T @ w, 2 * np.eye(4), atol=1e-5)
    head = net.policy.weight.numpy()          # (2, 64): rows of norm 0.01
    np.testing.assert_allclose(head @ head.T, 1e-4 * np.eye(2), atol=1e-8)
    value = net.value.weight.numpy()
    np.testing.assert_allclose(value @ value.T, [[1.0]], atol=1e-5)
    for name, array in net.state_dict().items():
        if name.endswith("bias"):
            assert not array.any(), name
    plain = PPO(envs.make_vec("CartPole-v1", 2), seed=0, orthogonal_init=False)
    assert not np.allclose(plain.net.policy.weight.numpy() @ plain.net.policy.weight.numpy().T,
                           1e-4 * np.eye(2), atol=1e-6)


# ---------------------------------------------------------------------------- the agent

def test_config_ranges_and_presets():
    with pytest.raises(ValueError, match="clip_range must be a number > 0, got 0"):
        PPOConfig(clip_range=0)
    with pytest.raises(ValueError, match="n_minibatches must be an integer >= 1"):
        PPO(envs.make_vec("CartPole-v1", 2), n_minibatches=0)
    cartpole = PPO(envs.make_vec("CartPole-v1", 2)).config
    assert (cartpole.n_steps, cartpole.n_minibatches, cartpole.n_epochs, cartpole.learning_rate,
            cartpole.clip_range, cartpole.max_grad_norm) == (128, 4, 4, 2.5e-4, 0.2, 0.5)
    pendulum = PPO(envs.make_vec("Pendulum-v1", 2)).config
    assert pendulum.entropy_coef == 0.0 and pendulum.n_epochs == 10  # the "mlp-box" preset
    assert pendulum.activation == "tanh"  # from "mlp" underneath


def test_one_iteration_takes_epochs_times_minibatches_steps_and_anneals_the_rate():
    agent = PPO(envs.make_vec("CartPole-v1", 2), seed=0, n_steps=16, n_epochs=3, n_minibatches=4)
    agent.learn(64)  # two iterations of 2 x 16 steps
    assert agent.steps == 64 and agent.updates == 2 * 3 * 4
    assert agent.optimizer.lr == pytest.approx(2.5e-4 * (1 - 32 / 64))  # set before the second
    for key in ("policy_loss", "value_loss", "entropy", "approx_kl", "clipfrac"):
        assert np.isfinite(agent.last_stats[key]), key
    fixed = PPO(envs.make_vec("CartPole-v1", 2), seed=0, n_steps=16, anneal_lr=False).learn(64)
    assert fixed.optimizer.lr == 2.5e-4


class RecordActions(gym.ActionWrapper):
    """Keeps every action the env is given."""

    def __init__(self, env, seen):
        super().__init__(env)
        self.seen = seen

    def action(self, action):
        self.seen.append(np.array(action))
        return action


def test_continuous_actions_are_clipped_at_the_env_and_learned_unclipped():
    seen = []
    vec = gym.vector.SyncVectorEnv([lambda: RecordActions(gym.make("Pendulum-v1"), seen)] * 2)
    agent = PPO(vec, seed=0, n_steps=32, init_log_std=1.0)  # std e: many draws beyond +-2
    agent._reset_envs()
    rollout = agent._collect(TrainingRun(None, 0, progress=False))
    assert rollout["actions"].shape == (2, 32, 1) and rollout["actions"].dtype == np.float32
    assert np.abs(rollout["actions"]).max() > 2.0       # the agent keeps the unclipped draws
    assert np.abs(np.array(seen)).max() <= 2.0          # the env only ever saw clipped ones
    np.testing.assert_allclose(np.sort(np.concatenate(seen).ravel()),
                               np.sort(np.clip(rollout["actions"], -2, 2).ravel()), rtol=1e-6)
    action = agent.predict(np.zeros(3, np.float32))
    assert action.shape == (1,) and -2 <= action[0] <= 2
    assert agent.predict(np.zeros((5, 3), np.float32)).shape == (5, 1)
    assert np.exp(agent.net.log_std.numpy()) == pytest.approx([math.e])


@pytest.mark.parametrize("cls", [PPO, ActorCritic])
def test_continuous_control_learns_a_few_steps_and_round_trips(tmp_path, cls):
    agent = cls(envs.make_vec("Pendulum-v1", 2), seed=0, n_steps=64)
    agent.learn(512)
    assert agent.updates > 0 and np.isfinite(agent.net.log_std.numpy()).all()
    agent.save(tmp_path / "agent.npz")
    loaded = cls.load(tmp_path / "agent.npz")  # predict-only, from the recorded Box
    obs = np.zeros((4, 3), np.float32)
    np.testing.assert_array_equal(loaded.predict(obs), agent.predict(obs))
    assert evaluate(loaded, envs.make("Pendulum-v1"), 1, max_steps=20).shape == (1,)


def test_clear_errors():
    with pytest.raises(ValueError, match="vector env"):
        PPO(envs.make("CartPole-v1"))
    with pytest.raises(ValueError, match="PolicyGradient needs a Discrete action space"):
        PolicyGradient(gym.make("Pendulum-v1"))
    with pytest.raises(TypeError, match="unknown PPOConfig hyper-parameters"):
        PPO(envs.make_vec("CartPole-v1", 2), batch_episodes=3)
    with pytest.raises(ValueError, match="density"):
        PPO(envs.make_vec("Pendulum-v1", 2)).action_values(np.zeros(3, np.float32))


@pytest.mark.parametrize("recurrent", [False, True])
def test_log_pi_old_and_v_old_recorded_while_acting_equal_a_pass_over_the_rollout(recurrent):
    env = (gym.make_vec("MemoryCorridor-v0", 3, length=3) if recurrent
           else envs.make_vec("CartPole-v1", 3))
    agent = PPO(env, seed=0, n_steps=12, recurrent=recurrent, lstm_size=8)
    agent.learn(36)  # a trained network, episodes in progress
    run = TrainingRun(None, 10**6, progress=False)
    with run:
        run.start(agent.steps)
        rollout = agent._collect(run)
    with no_grad():  # the network over the whole rollout, from the state it started in
        dist, values, _ = agent.net(agent._sequences(rollout["obs"]), rollout["state"],
                                    rollout["starts"])
    log_prob = dist.log_prob(agent._flat_actions(rollout["actions"])).data
    np.testing.assert_allclose(rollout["log_prob"].reshape(-1), log_prob, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(rollout["values"].reshape(-1), values.data, rtol=1e-5, atol=1e-6)


def test_recurrent_minibatches_are_whole_sequences_covering_each_transition_once():
    agent = PPO(gym.make_vec("MemoryCorridor-v0", 6, length=3), recurrent=True, lstm_size=8,
                seed=0, n_steps=8, n_minibatches=4)
    valid = np.ones((6, 8), bool)
    valid[2, 3] = valid[5, 0] = False  # reset steps
    batches = list(agent._minibatches(valid))
    assert len(batches) == 4 and all(rows is not None for _, rows in batches)
    seen = np.concatenate([batch for batch, _ in batches])
    np.testing.assert_array_equal(np.sort(seen), np.flatnonzero(valid.reshape(-1)))
    for batch, rows in batches:  # a minibatch holds whole rows: every real step of its envs
        assert set(batch // 8) <= set(rows.tolist())


def test_recurrent_ppo_learns_a_few_steps_and_round_trips(tmp_path):
    agent = PPO(gym.make_vec("MemoryCorridor-v0", 4, length=4), recurrent=True, lstm_size=8,
                seed=0, n_steps=16, n_minibatches=2)
    agent.learn(256)
    assert agent.updates == 4 * 4 * 2 and np.isfinite(agent.last_stats["policy_loss"])
    agent.save(tmp_path / "lstm.npz")
    loaded = PPO.load(tmp_path / "lstm.npz")
    assert loaded.net.actor.lstm is not None
    obs = np.eye(4, dtype=np.float32)
    agent.reset_state()
    np.testing.assert_array_equal(loaded.predict(obs), agent.predict(obs))


# ---------------------------------------------------------------------------- resume

def test_resume_gives_the_same_parameters_as_an_uninterrupted_run(tmp_path,
                                                                   assert_same_training):
    def fresh(env=None):
        return PPO(env or envs.make_vec("CartPole-v1", 4), seed=3, n_steps=32)

    total, half = 1280, 640  # 10 iterations of 4 x 32; episodes end and run across the cut
    straight = fresh().learn(total)
    first = fresh().learn(total, callback=lambda agent, step: step < half)
    assert first.steps == half and 0 < first.episodes
    first.save(tmp_path / "ckpt.npz")
    resumed = PPO.load(tmp_path / "ckpt.npz", envs.make_vec("CartPole-v1", 4))
    resumed.learn(total)
    assert_same_training(straight, resumed)


# ---------------------------------------------------------------------------- the script

def test_train_pg_ppo_run_directory_and_resume(script, tmp_path):
    from rlkit.runs import read_csv
    train = script("train_pg").main
    run = tmp_path / "run"
    flags = ["--env", "CartPole-v1", "--algo", "ppo", "--run-dir", str(run), "--no-progress",
             "--eval-every", "1024", "--eval-episodes", "2", "--checkpoint-every", "1024",
             "--seed", "3", "--n-envs", "2", "--n-steps", "64", "--n-epochs", "2", "--clip-range", "0.1",
             "--no-clip-value"]
    assert train(flags + ["--steps", "2048"]) == 0
    for name in ("config.json", "progress.csv", "eval.csv", "reward_curve.png",
                 "checkpoints/latest.npz", "checkpoints/best.npz"):
        assert (run / name).is_file(), name
    config = json.loads((run / "config.json").read_text())
    assert config["algo"] == "ppo"
    hyper = config["hyperparams"]
    assert (hyper["n_steps"], hyper["n_epochs"], hyper["clip_range"], hyper["clip_value"]) == (64, 2, 0.1, False)
    assert PPO.load(run / "checkpoints/latest.npz").steps == 2048
    assert train(["--resume", str(run), "--steps", "3072", "--no-progress"]) == 0
    assert [int(r["step"]) for r in read_csv(run / "eval.csv")] == [1024, 2048, 3072]
    assert PPO.load(run / "checkpoints/latest.npz").steps == 3072


def test_train_pg_ppo_on_pendulum(script, tmp_path):
    run = tmp_path / "pendulum"
    assert script("train_pg").main([
        "--env", "Pendulum-v1", "--algo", "ppo", "--steps", "1024", "--n-steps", "128",
        "--run-dir", str(run), "--no-progress", "--eval-episodes", "1"]) == 0
    agent = PPO.load(run / "checkpoints/latest.npz")
    assert agent.continuous and agent.steps == 1024


# ---------------------------------------------------------------------------- learning

def reaches(agent, env_id: str, target: float, limit: int, every: int) -> bool:
    """Whether a greedy evaluation (10 episodes, every ``every`` steps) reaches ``target``
    within ``limit`` steps; training stops as soon as one does."""
    eval_env, due, best = envs.make(env_id), [every], []

    def check(agent, step):
        if step >= due[0]:
            due[0] += every
            best.append(evaluate(agent, eval_env, 10, seed=step).mean())
            return best[-1] < target
        return True

    agent.learn(limit, callback=check)
    return bool(best) and max(best) >= target


@pytest.mark.slow
def test_ppo_solves_cartpole_within_100k_steps_on_two_of_three_seeds():
    """Stops each seed once solved and the test once two seeds have (about 10-30 s here)."""
    solved = []
    for seed in range(3):
        solved.append(reaches(PPO(envs.make_vec("CartPole-v1", 4), seed=seed), "CartPole-v1",
                              475, 100_000, 10_000))
        if sum(solved) == 2:
            break
    assert sum(solved) >= 2, solved


@pytest.mark.slow
def test_ppo_balances_the_pendulum_within_150k_steps_on_two_of_three_seeds():
    """The "mlp-box" preset on Pendulum-v1 (4 envs). Measured here, greedy evaluation of 10
    episodes every 20k steps: seeds 0, 1, 2 reached -234, -244, -213 at 61k steps and -149,
    -148, -121 at 82k (about 2,000 steps/s on an otherwise idle core, 30 s per seed). The
    issue's bound is -250 within 300k; each seed stops once it is met."""
    solved = []
    for seed in range(3):
        solved.append(reaches(PPO(envs.make_vec("Pendulum-v1", 4), seed=seed), "Pendulum-v1",
                              -250, 150_000, 20_000))
        if sum(solved) == 2:
            break
    assert sum(solved) >= 2, solved


# ---------------------------------------------------------------------------- normalisation

def test_observation_and_reward_normalisation_statistics_are_used_and_saved(tmp_path):
    agent = PPO(envs.make_vec("Pendulum-v1", 2), seed=0, n_steps=64, normalize_observations=True,
                normalize_rewards=True)
    agent.learn(256)
    assert agent.obs_rms.count == pytest.approx(256 + 1e-4)  # every observation acted on
    assert agent.return_rms.var > 1.0  # Pendulum's returns vary by far more than 1
    # predict standardises raw observations with the training statistics
    raw = np.array([[1.0, 0.0, 5.0]], np.float32)
    z = np.clip((raw - agent.obs_rms.mean) / np.sqrt(agent.obs_rms.var + 1e-8), -10, 10)
    np.testing.assert_allclose(agent.obs_adapter(raw).numpy(), z, rtol=1e-6)
    agent.save(tmp_path / "agent.npz")
    loaded = PPO.load(tmp_path / "agent.npz")
    np.testing.assert_array_equal(loaded.obs_rms.mean, agent.obs_rms.mean)
    np.testing.assert_array_equal(loaded.return_rms.var, agent.return_rms.var)
    np.testing.assert_array_equal(loaded.predict(raw), agent.predict(raw))
    plain = PPO(envs.make_vec("Pendulum-v1", 2), seed=0)
    plain.save(tmp_path / "plain.npz")
    with pytest.raises(ValueError, match="normalize_observations cannot change on resume"):
        PPO.load(tmp_path / "plain.npz", normalize_observations=True)
    with pytest.raises(ValueError, match="vector"):
        PPO(gym.make_vec("FrozenLake-v1", 2), normalize_observations=True)


def test_resume_is_exact_with_normalisation_too(tmp_path, assert_same_training):
    def fresh(env=None):
        return PPO(env or envs.make_vec("Pendulum-v1", 2), seed=5, n_steps=64, n_minibatches=4,
                   normalize_observations=True, normalize_rewards=True)

    straight = fresh().learn(768)
    first = fresh().learn(768, callback=lambda agent, step: step < 384)
    first.save(tmp_path / "ckpt.npz")
    resumed = PPO.load(tmp_path / "ckpt.npz", envs.make_vec("Pendulum-v1", 2)).learn(768)
    assert_same_training(straight, resumed)
    np.testing.assert_array_equal(straight.obs_rms.var, resumed.obs_rms.var)
    np.testing.assert_array_equal(straight.return_rms.var, resumed.return_rms.var)


def test_a_single_env_loads_a_predict_only_agent_checked_against_it(tmp_path):
    agent = PPO(envs.make_vec("CartPole-v1", 2), seed=0)
    agent.save(tmp_path / "ppo.npz")
    loaded = PPO.load(tmp_path / "ppo.npz", envs.make("CartPole-v1"))  # what watch.py does
    assert loaded.env is None and loaded.predict(np.zeros(4, np.float32)) in (0, 1)
    with pytest.raises(ValueError, match="made for CartPole-v1"):
        PPO.load(tmp_path / "ppo.npz", envs.make("Acrobot-v1"))


@pytest.mark.slow
def test_recurrent_ppo_remembers_the_corridor_cue():
    """MemoryCorridor (tests/memory_corridor.py): the exit is shown only 6 steps before the
    junction, so only the LSTM policy can beat a coin flip. Measured: seeds 0 and 1 reached a
    greedy mean return of 1.0 after 30k steps (16-40 s each here)."""
    solved = 0
    for seed in range(3):
        agent = PPO(gym.make_vec("MemoryCorridor-v0", 8, length=6), recurrent=True, lstm_size=16,
                    n_steps=16, n_minibatches=4, learning_rate=3e-3, seed=seed).learn(30_000)
        solved += evaluate(agent, gym.make("MemoryCorridor-v0", length=6), 200, seed=1).mean() > 0.9
        if solved == 2:
            break
    assert solved >= 2


class UnevenBox(gym.Env):
    """Two action dimensions with bounds of their own, [-1, 1] and [0, 5]; nothing happens."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)
    action_space = gym.spaces.Box(np.array([-1.0, 0.0], np.float32), np.array([1.0, 5.0], np.float32))

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(3, np.float32), {}

    def step(self, action):
        return np.zeros(3, np.float32), 0.0, False, False, {}


def test_an_agent_loaded_without_its_env_keeps_each_action_dimensions_bounds(tmp_path):
    agent = PPO(gym.vector.SyncVectorEnv([UnevenBox] * 2), seed=0, init_log_std=3.0)  # std 20
    agent.save(tmp_path / "agent.npz")
    loaded = PPO.load(tmp_path / "agent.npz")
    np.testing.assert_array_equal(loaded.action_space.low, [-1, 0])
    np.testing.assert_array_equal(loaded.action_space.high, [1, 5])
    actions = loaded.predict(np.zeros((200, 3), np.float32), deterministic=False)
    assert ((actions >= [-1, 0]) & (actions <= [1, 5])).all()
