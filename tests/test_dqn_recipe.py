"""The DQN options of the Pong recipe: n-step returns from the frame replay, the dueling head,
the 2013 network, Adam's epsilon, evaluation epsilon, and the training-health figures."""
import json
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import envs
import rlkit
from agents.dqn import DQN, td_targets
from agents.training_run import TrainingRun
from rlkit import Tensor, gradcheck_module, nn
from rlkit.health import collapse_reasons, relu_activity, relu_layer_names
from rlkit.replay import FrameReplayBuffer, ReplayBuffer
from rlkit.runs import read_csv

ROOT = Path(__file__).resolve().parents[1]
GAMMA = 0.5


# ---------------------------------------------------------------- n-step returns

def frame(episode, step):
    """A (1, 2) frame naming its episode and step, so a sampled stack says where it came from."""
    return np.array([[episode, step]], np.uint8)


def play(buf, episode, rewards, end):
    """One episode of len(rewards) transitions; ``end``: "terminated", "truncated" or "open"."""
    stack = [frame(episode, 0)] * buf.stack
    for t, reward in enumerate(rewards):
        last = t == len(rewards) - 1
        next_stack = stack[1:] + [frame(episode, t + 1)]
        buf.add(np.stack(stack), t % 3, reward, np.stack(next_stack),
                last and end == "terminated", last and end == "truncated")
        stack = next_stack


def sampled_windows(buf, n_step, draws=3000):
    """{(episode, step): (reward, horizon, done, (episode, step) of next_obs's newest frame)}."""
    b = buf.sample(draws, n_step=n_step, gamma=GAMMA)
    seen = {}
    for obs, reward, horizon, done, next_obs in zip(b.obs, b.rewards, b.horizons, b.dones, b.next_obs):
        key = tuple(int(v) for v in obs[-1, 0])
        seen[key] = (float(reward), int(horizon), float(done), tuple(int(v) for v in next_obs[-1, 0]))
    return seen


def test_three_step_targets_around_a_terminal_a_truncation_and_the_newest_step():
    buf = FrameReplayBuffer(100, frame_shape=(1, 2), stack=2, seed=0)
    play(buf, 1, [1, 2, 3, 4, 5], "terminated")
    play(buf, 2, [10, 20, 30, 40], "truncated")
    play(buf, 3, [100, 200], "open")       # the newest step: nothing after it is known yet
    expected = {
        # r_t + 0.5 r_t+1 + 0.25 r_t+2, horizon, terminated at the window's last step, next_obs
        (1, 0): (2.75, 3, 0.0, (1, 3)), (1, 1): (4.5, 3, 0.0, (1, 4)),
        (1, 2): (6.25, 3, 1.0, (1, 5)), (1, 3): (6.5, 2, 1.0, (1, 5)), (1, 4): (5.0, 1, 1.0, (1, 5)),
        # a truncation ends the window but still bootstraps (done 0) from the final frame
        (2, 0): (27.5, 3, 0.0, (2, 3)), (2, 1): (45.0, 3, 0.0, (2, 4)),
        (2, 2): (50.0, 2, 0.0, (2, 4)), (2, 3): (40.0, 1, 0.0, (2, 4)),
        (3, 0): (200.0, 2, 0.0, (3, 2)), (3, 1): (200.0, 1, 0.0, (3, 2)),
    }
    assert sampled_windows(buf, 3) == expected


def test_one_step_sampling_is_the_plain_transition():
    buf = FrameReplayBuffer(100, frame_shape=(1, 2), stack=2, seed=0)
    play(buf, 1, [1, 2, 3], "terminated")
    seen = sampled_windows(buf, 1)
    assert seen == {(1, 0): (1.0, 1, 0.0, (1, 1)), (1, 1): (2.0, 1, 0.0, (1, 2)),
                    (1, 2): (3.0, 1, 1.0, (1, 3))}


def test_windows_read_across_the_ring_end_and_stop_at_the_write_cursor():
    buf = FrameReplayBuffer(12, frame_shape=(1, 2), stack=2, seed=0)
    play(buf, 1, list(range(30)), "open")   # 31 frames through 12 slots: the ring wraps twice
    seen = sampled_windows(buf, 3)
    # frames 19..30 are stored; a 2-frame stack needs frame t - 1, so t = 20..29 remain
    assert sorted(t for _, t in seen) == list(range(20, 30))
    for (_, t), (reward, horizon, done, nxt) in seen.items():
        h = min(3, 30 - t)                  # no step after t = 29 has been taken yet
        assert (horizon, done, nxt) == (h, 0.0, (1, t + h))
        assert reward == pytest.approx(sum(GAMMA ** k * (t + k) for k in range(h)))


def test_whole_transition_replay_refuses_n_step():
    with pytest.raises(ValueError, match="1-step"):
        ReplayBuffer(10, (2,)).sample(1, n_step=3)


def test_n_step_targets_discount_the_bootstrap_by_gamma_to_the_horizon():
    y = td_targets(np.array([2.75, 6.5, 45.0]), np.array([0.0, 1.0, 0.0]),
                   np.array([4.0, 4.0, 8.0]), GAMMA, np.array([3.0, 2.0, 3.0]))
    np.testing.assert_allclose(y, [2.75 + 0.125 * 4, 6.5, 45.0 + 0.125 * 8])


def test_n_step_needs_image_observations():
    with pytest.raises(ValueError, match="n_step"):
        DQN(envs.make("CartPole-v1"), n_step=3)


# ---------------------------------------------------------------- networks

def test_dueling_head_is_value_plus_centred_advantage():
    head = nn.DuelingHead(5, 4, 3)
    x = Tensor(np.random.default_rng(0).standard_normal((6, 5)).astype(np.float32))
    value, advantage = head.value(x).numpy(), head.advantage(x).numpy()
    np.testing.assert_allclose(head(x).numpy(), value + advantage - advantage.mean(axis=1, keepdims=True),
                               rtol=1e-6)
    assert value.shape == (6, 1) and advantage.shape == (6, 3)
    # the advantage's mean is removed: a constant added to it changes no Q-value
    before = head(x).numpy()
    head.advantage[2].bias.data += 7.0
    np.testing.assert_allclose(head(x).numpy(), before, atol=1e-5)


def test_dueling_head_gradients():
    rng = np.random.default_rng(1)
    assert gradcheck_module(nn.DuelingHead(4, 3, 2), rng.standard_normal((3, 4)))


def test_small_cnn_is_the_2013_network():
    net = nn.small_cnn(4, 6)
    assert [tuple(p.shape) for p in net.parameters()] == [
        (16, 4, 8, 8), (16,), (32, 16, 4, 4), (32,), (256, 2592), (256,), (6, 256), (6,)]
    assert net.num_parameters() == 677_686
    assert net(Tensor(np.zeros((2, 4, 84, 84), np.float32))).shape == (2, 6)
    dueling = nn.small_cnn(4, 6, dueling=True)
    assert dueling(Tensor(np.zeros((2, 4, 84, 84), np.float32))).shape == (2, 6)


def pong_like_env():
    return envs.make("Pong", max_num_frames_per_episode=400)


def test_dqn_builds_the_network_and_optimiser_its_config_names():
    agent = DQN(pong_like_env(), network="small", dueling=True, adam_eps=1.5e-4, seed=0)
    assert isinstance(agent.q_net[-1], nn.DuelingHead) and agent.q_net[0].weight.shape == (16, 4, 8, 8)
    assert agent.optimizer.eps == 1.5e-4
    with pytest.raises(ValueError, match="network must be one of .nature., .small., got .huge."):
        DQN(pong_like_env(), network="huge")
    mlp = DQN(envs.make("CartPole-v1"), dueling=True, hidden_sizes=(32, 16), seed=0)
    assert isinstance(mlp.q_net[-1], nn.DuelingHead) and mlp.action_values(np.zeros(4)).shape == (2,)


def test_evaluation_honours_eval_epsilon():
    env = envs.make("RoomExit")
    greedy = DQN(env, eval_epsilon=0.0, seed=0)
    assert len({greedy.predict(2) for _ in range(50)}) == 1
    explorer = DQN(env, eval_epsilon=1.0, seed=0)
    assert len({explorer.predict(2) for _ in range(50)}) > 1


# ---------------------------------------------------------------- health

def test_relu_activity_counts_positive_activations_per_layer():
    net = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1))
    net[0].weight.data[...] = [[1, 0], [0, -1]]
    net[0].bias.data[...] = 0
    net[2].weight.data[...] = 0
    net[2].bias.data[...] = [-1, 0]    # the second hidden layer never fires
    x = Tensor(np.array([[1, 1], [2, -1], [-1, -3]], np.float32))
    out, activity = relu_activity(net, x)
    # first layer: [1, -1], [2, 1], [-1, 3] -> 4 of 6 positive
    assert activity == {"fc1": pytest.approx(4 / 6), "fc2": 0.0} and out.shape == (3, 1)
    assert relu_layer_names(nn.small_cnn(4, 6, dueling=True)) == {
        "1": "conv1", "3": "conv2", "5.value.1": "fc1_value", "5.advantage.1": "fc1_advantage"}
    assert "forward" not in vars(net[1])        # the recording hooks are gone


def test_relu_activity_of_one_relu_object_used_at_two_places():
    act = nn.ReLU()
    net = nn.Sequential(nn.Linear(2, 2), act, nn.Linear(2, 2), act, nn.Linear(2, 1))
    net[0].weight.data[...] = [[1, 0], [0, -1]]
    net[0].bias.data[...] = 0
    net[2].weight.data[...] = 0
    net[2].bias.data[...] = [-1, 0]
    out, activity = relu_activity(net, Tensor(np.array([[1, 1], [2, -1], [-1, -3]], np.float32)))
    assert activity == {"fc1": pytest.approx(4 / 6), "fc2": 0.0} and out.shape == (3, 1)
    assert "forward" not in vars(act)


def test_collapse_reasons():
    assert collapse_reasons({"conv1": 0.4}, np.array([0.1, 0.3])) == []
    dead = collapse_reasons({"conv1": 0.0, "fc1": 0.5}, np.array([-2.36, -2.36]))
    assert len(dead) == 2 and "conv1" in dead[0] and "same on every probe state" in dead[1]
    assert "not finite" in collapse_reasons({}, np.array([np.nan, 1.0]))[0]


def test_a_healthy_run_writes_health_and_a_diverged_one_is_stopped(tmp_path):
    def run(lr, stop):
        agent = DQN(envs.make("CartPole-v1"), seed=0, learning_rate=lr, learning_starts=200)
        training = TrainingRun(None, 2000, eval_env=envs.make("CartPole-v1"), eval_every=500,
                               eval_episodes=1, progress=False, stop_on_collapse=stop)
        agent.learn(2000, run=training)
        return agent, training

    healthy, training = run(1e-3, True)
    assert healthy.steps == 2000 and 0.05 < training.first_layer_active < 1
    row, warnings = healthy.health()
    assert warnings == [] and row["q_max_std"] > 0 and np.isfinite(row["grad_norm"])
    collapsed, _ = run(10.0, True)           # a learning rate this large kills the network
    assert collapsed.steps == 500


def test_script_warns_once_per_check_and_stops_on_collapse(tmp_path):
    run_dir = tmp_path / "collapse"
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "train_dqn.py"), "--env", "CartPole-v1",
         "--steps", "3000", "--lr", "10", "--learning-starts", "200", "--eval-every", "500",
         "--eval-episodes", "1", "--stop-on-collapse", "--no-progress", "--run-dir", str(run_dir)],
        capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning: step 500:")]
    assert len(warnings) == 1 and "collapsed" in warnings[0] and "stopping" in warnings[0]
    health = read_csv(run_dir / "health.csv")
    assert [row["step"] for row in health] == ["500"]
    assert list(health[0])[:3] == ["step", "active_fc1", "active_fc2"]
    assert (run_dir / "checkpoints" / "latest.npz").is_file()
    assert json.loads((run_dir / "config.json").read_text())["stop_on_collapse"] is True


# ---------------------------------------------------------------- prioritised replay

def test_prioritized_update_weights_the_loss_and_stores_new_priorities():
    from test_dqn import FixedQ
    env = envs.make("RoomExit")
    agent = DQN(env, q_network=FixedQ(np.zeros((6, 6))), prioritized=True, priority_alpha=1.0,
                priority_beta=1.0, batch_size=64, learning_starts=1, max_grad_norm=0, gamma=0.5, seed=0)
    agent.replay.add(2, 3, 1.0, 3, True, False)     # TD error 1 (Q = 0, y = 1)
    agent.replay.add(4, 5, 3.0, 5, True, False)     # TD error 3
    agent.optimizer.lr = 0.0                         # look at the gradient, change nothing
    agent.train_step()
    # new priorities are |TD error| (+ eps), alpha 1: three times as many draws of the second
    np.testing.assert_allclose(agent.replay.priorities[:2], [1.0, 3.0], rtol=1e-5)
    batch = agent.replay.sample(4000, beta=1.0)
    share = (batch.actions == 5).mean()
    assert abs(share - 0.75) < 0.03
    # beta 1: weights (N P(i))^-1 / max undo the skew; both transitions weigh the same in expectation
    np.testing.assert_allclose(np.unique(batch.weights), [1 / 3, 1.0], rtol=1e-5)


def test_priority_beta_anneals_to_one():
    agent = DQN(envs.make("RoomExit"), prioritized=True, priority_beta=0.4, priority_beta_steps=100)
    assert [agent.priority_beta(s) for s in (0, 50, 100, 1000)] == pytest.approx([0.4, 0.7, 1.0, 1.0])


def test_prioritized_dqn_finds_the_optimal_room_exit_policy():
    from test_dqn import optimal_everywhere
    from agents.planning import ValueIteration
    env = envs.make("RoomExit")
    planner = ValueIteration(env, gamma=0.8)
    planner.learn()
    agent = DQN(env, gamma=0.8, prioritized=True, priority_beta_steps=3_000, seed=0).learn(3_000)
    assert optimal_everywhere(agent, planner, range(5))


def test_the_health_check_names_the_committed_collapsed_pong_network():
    """results/pong-dqn-collapsed: 907k steps of the old Nature-CNN recipe, -21 throughout."""
    agent = DQN.load(ROOT / "results" / "pong-dqn-collapsed" / "q_network.npz")
    env = envs.make("Pong")
    rng = np.random.default_rng(0)
    obs, _ = env.reset(seed=0)
    screens = []
    for t in range(200):                      # real Pong screens from random play
        obs, *_ = env.step(int(rng.integers(6)))
        screens.append(obs)
    q, activity = relu_activity(agent.q_net, agent.adapt(np.stack(screens[::5])))
    assert activity["conv1"] == 0.0 and 0 < activity["fc1"] < 0.5
    reasons = collapse_reasons(activity, q.max(axis=1))
    assert len(reasons) == 2 and "conv1" in reasons[0]
    fresh = DQN(env, network="nature", dueling=False, seed=0)   # the same network, untrained
    q, activity = relu_activity(fresh.q_net, fresh.adapt(np.stack(screens[::5])))
    assert 0.3 < activity["conv1"] < 0.7 and collapse_reasons(activity, q.max(axis=1)) == []


@pytest.mark.parametrize("network", sorted(nn.IMAGE_NETWORKS))
def test_image_observations_reach_the_network_as_bytes_and_are_scaled_in_its_first_layer(network):
    """ObsAdapter passes uint8 frames as they are; the network built for them scales them by
    1/255 in its first convolution, so its Q-values equal those of the same weights on frames
    scaled to [0, 1] first."""
    from agents.networks import FRAME_SCALE, ObsAdapter, build_network
    space = gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)
    frames = np.random.default_rng(0).integers(0, 256, (3, 4, 84, 84)).astype(np.uint8)
    x = ObsAdapter(space)(frames)
    assert x.dtype == np.uint8 and np.array_equal(x.numpy(), frames)
    net = build_network(space, 6, image_network=network)
    assert net[0].input_scale == FRAME_SCALE
    plain = nn.IMAGE_NETWORKS[network](4, 6)
    plain.load_state_dict(net.state_dict())
    scaled = frames.astype(np.float32)
    scaled *= np.float32(FRAME_SCALE)
    with rlkit.no_grad():
        np.testing.assert_array_equal(net(x).numpy(), plain(Tensor(scaled)).numpy())
