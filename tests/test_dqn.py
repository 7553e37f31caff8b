"""DQN: targets, gradients, learning on the book's worlds and CartPole, exact resume, Pong smoke."""
import json
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from gymnasium.wrappers import FrameStackObservation

import envs
from agents.base import saved_replay
from agents.dqn import DQN, td_targets
from agents.planning import ValueIteration
from agents.training_run import evaluate
from rlkit import Tensor, nn
from rlkit.runs import load_npz, read_csv

ROOT = Path(__file__).resolve().parents[1]


def test_td_targets_stop_at_terminal_transitions():
    y = td_targets(np.array([1.0, 1.0]), np.array([1.0, 0.0]), np.array([5.0, 5.0]), 0.99)
    np.testing.assert_allclose(y, [1.0, 5.95])


class FixedQ(nn.Module):
    """A 'network' returning a fixed table row per one-hot state, plus a trainable offset."""

    def __init__(self, table):
        super().__init__()
        self.table = np.asarray(table, np.float32)
        self.offset = nn.Parameter(np.zeros(self.table.shape[1], np.float32))

    def forward(self, x):
        return Tensor(x.data @ self.table) + self.offset


def test_double_dqn_target_uses_online_argmax_and_target_value():
    env = envs.make("RoomExit")
    online = np.zeros((6, 6), np.float32)
    online[3] = [0, 9, 0, 0, 1, 0]          # online prefers action 1 in state 3
    target = np.zeros((6, 6), np.float32)
    target[3] = [0, 2, 0, 0, 7, 0]          # target values: a=1 -> 2, a=4 -> 7
    for double, expected in ((True, 1.0 + 0.8 * 2), (False, 1.0 + 0.8 * 7)):
        agent = DQN(env, q_network=FixedQ(online), gamma=0.8, double_dqn=double, seed=0)
        agent.target_net.table = target
        agent.replay.add(0, 4, 1.0, 3, False, False)
        np.testing.assert_allclose(agent.targets(agent.replay.sample(1)), [expected], rtol=1e-6)


def test_only_the_taken_action_gets_a_gradient():
    env = envs.make("RoomExit")
    agent = DQN(env, q_network=FixedQ(np.zeros((6, 6))), batch_size=4, learning_starts=1,
                seed=0, max_grad_norm=0)
    for _ in range(4):
        agent.replay.add(2, 3, 1.0, 3, False, False)   # always action 3, TD error 1
    agent.optimizer.lr = 0.0                            # look at the gradient, change nothing
    agent.train_step()
    grad = agent.q_net.offset.grad
    assert grad[3] != 0 and np.count_nonzero(grad) == 1


def optimal_everywhere(agent, planner, states):
    """The agent's greedy action is optimal (ties allowed) in every listed state."""
    return all(planner.Q[s, agent.predict(s)] >= planner.V[s] - 1e-6 for s in states)


def test_dqn_finds_the_optimal_room_exit_policy():
    env = envs.make("RoomExit")
    planner = ValueIteration(envs.make("RoomExit"), gamma=0.8)
    planner.learn()
    agent = DQN(env, gamma=0.8, seed=0).learn(4_000)
    assert optimal_everywhere(agent, planner, range(5))


def test_dqn_finds_the_optimal_policy_of_the_deterministic_gridworld():
    env = envs.make("Gridworld", slip=0.0)
    planner = ValueIteration(envs.make("Gridworld", slip=0.0), gamma=0.99)
    planner.learn()
    agent = DQN(env, gamma=0.99, seed=0).learn(6_000)
    cells = np.asarray(env.unwrapped.grid).ravel()
    floor = [s for s, ch in enumerate(cells) if ch in "S."]   # not walls, not exits
    assert len(floor) == 9
    assert optimal_everywhere(agent, planner, floor)


@pytest.mark.slow
def test_dqn_solves_cartpole_within_50k_steps_on_two_of_three_seeds():
    solved = 0
    for seed in range(3):
        eval_env = envs.make("CartPole-v1")
        best = []

        def check(agent, step):
            if step % 5_000 == 0:
                best.append(evaluate(agent, eval_env, 5, seed=1000).mean())
                return best[-1] < 475          # stop as soon as it is solved

        DQN(envs.make("CartPole-v1"), seed=seed).learn(50_000, callback=check)
        solved += max(best) >= 475
        if solved == 2:
            break
    assert solved >= 2


class FlashCue(gym.Env):
    """84x84 frames: the first shows a bright square on the left or the right, the next three
    are blank, and the action taken on the fourth earns +1 if it names the side, else -1.
    Only the 4-frame stack holds the cue when the choice is made."""

    observation_space = spaces.Box(0, 255, (84, 84), np.uint8)
    action_space = spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.side, self.t = int(self.np_random.integers(2)), 0
        frame = np.zeros((84, 84), np.uint8)
        frame[30:54, 10 + 50 * self.side:34 + 50 * self.side] = 255
        return frame, {}

    def step(self, action):
        self.t += 1
        blank = np.zeros((84, 84), np.uint8)
        if self.t < 4:
            return blank, 0.0, False, False, {}
        return blank, (1.0 if action == self.side else -1.0), True, False, {}


@pytest.mark.slow
def test_the_image_pipeline_learns_a_cue_seen_only_three_frames_earlier():
    """Pong's path end to end (uint8 frame stacks, the frame replay memory rebuilding stacks,
    the Nature CNN): it can only pick the side if the stacks it trains on hold the cue frame
    the env showed three steps before the choice. Measured: greedy mean return 1.0 on seeds
    0-2 after 700 steps; 0.12 when replay handed out each transition's next stack as its
    stack (an off-by-one in time)."""
    def make():
        return FrameStackObservation(FlashCue(), 4)

    agent = DQN(make(), seed=0, learning_rate=5e-4, buffer_size=5_000, learning_starts=200,
                train_freq=1, target_update=100, eps_steps=500).learn(700)
    assert evaluate(agent, make(), 50, seed=1).mean() >= 0.9


def test_resume_gives_the_same_parameters_as_an_uninterrupted_run(tmp_path):
    def fresh():
        return DQN(envs.make("CartPole-v1"), seed=3, learning_starts=100, buffer_size=1_000,
                   target_update=50)

    straight = fresh().learn(600)
    first = fresh().learn(300)
    first.save(tmp_path / "ckpt.npz", replay_path=tmp_path / "replay.npz")
    resumed = DQN.load(tmp_path / "ckpt.npz", envs.make("CartPole-v1"), replay_path=tmp_path / "replay.npz")
    assert resumed.steps == 300
    resumed.learn(600)
    for (name, a), b in zip(straight.q_net.state_dict().items(), resumed.q_net.state_dict().values()):
        np.testing.assert_array_equal(a, b, err_msg=name)
    np.testing.assert_array_equal(straight.optimizer.state_dict()["exp_avg"],
                                  resumed.optimizer.state_dict()["exp_avg"])


def test_the_health_probe_leaves_the_batches_learning_draws_unchanged():
    # the probe is drawn at the first evaluation: a resumed run draws it at another step
    def fresh():
        return DQN(envs.make("CartPole-v1"), seed=3, learning_starts=100, buffer_size=1_000)

    straight, probed = fresh().learn(400), fresh().learn(200)
    assert probed.health() is not None
    probed.learn(400)
    for (name, a), b in zip(straight.q_net.state_dict().items(), probed.q_net.state_dict().values()):
        np.testing.assert_array_equal(a, b, err_msg=name)


def test_load_applies_changed_hyperparameters_and_refuses_fixed_ones(tmp_path):
    DQN(envs.make("RoomExit"), seed=0, learning_rate=1e-3).learn(250).save(tmp_path / "ckpt.npz")
    agent = DQN.load(tmp_path / "ckpt.npz", envs.make("RoomExit"), learning_rate=5e-5, gamma=0.8)
    assert agent.optimizer.lr == agent.config.learning_rate == 5e-5 and agent.config.gamma == 0.8
    assert agent.optimizer.state_dict()["steps"] > 0  # the optimiser's state is still the saved one
    with pytest.raises(ValueError, match=r"hidden_sizes cannot change on resume: the checkpoint "
                                         r"was made with \[64\], not \[32\]"):
        DQN.load(tmp_path / "ckpt.npz", envs.make("RoomExit"), hidden_sizes=(32,))


def test_checkpoint_for_another_env_is_refused(tmp_path):
    DQN(envs.make("RoomExit"), seed=0).save(tmp_path / "room.npz")
    with pytest.raises(ValueError, match="made for"):
        DQN.load(tmp_path / "room.npz", envs.make("CartPole-v1"))
    agent = DQN.load(tmp_path / "room.npz")          # no env: predict still works
    assert agent.predict(1) in range(6)


def test_weights_only_checkpoint_acts_like_the_full_one(tmp_path):
    agent = DQN(envs.make("RoomExit"), gamma=0.8, seed=1).learn(500)
    agent.health()  # draws the probe batch a full checkpoint keeps for the health figures
    agent.save(tmp_path / "full.npz")
    agent.save(tmp_path / "weights.npz", weights_only=True)
    assert (tmp_path / "weights.npz").stat().st_size < (tmp_path / "full.npz").stat().st_size / 2
    assert "probe" in load_npz(tmp_path / "full.npz") and "probe" not in load_npz(tmp_path / "weights.npz")
    light = DQN.load(tmp_path / "weights.npz", envs.make("RoomExit"))
    for s in range(6):
        np.testing.assert_array_equal(light.action_values(s), agent.action_values(s))


def run_script(*args, timeout=300):
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "train_dqn.py"), *args],
                          capture_output=True, text=True, timeout=timeout, cwd=ROOT)


def test_pong_smoke_run_writes_a_well_formed_run_directory(tmp_path):
    run_dir = tmp_path / "pong"
    result = run_script("--env", "Pong", "--steps", "1200", "--learning-starts", "800",
                        "--buffer-size", "2000", "--eval-every", "0", "--eval-episodes", "1",
                        "--checkpoint-every", "1000", "--no-progress", "--run-dir", str(run_dir),
                        "--env-kwargs", '{"max_num_frames_per_episode": 2400}')
    assert result.returncode == 0, result.stderr
    config = json.loads((run_dir / "config.json").read_text())
    assert config["env"] == "Pong" and config["hyperparams"]["buffer_size"] == 2000
    progress = read_csv(run_dir / "progress.csv")
    assert list(progress[0]) == ["step", "episode", "return", "length", "epsilon", "loss",
                                 "steps_per_second", "wall_time"]
    assert int(progress[-1]["step"]) <= 1200
    evals = read_csv(run_dir / "eval.csv")
    assert evals[-1]["step"] == "1200" and int(evals[-1]["episodes"]) == 1
    for name in ("checkpoints/latest.npz", "checkpoints/best.npz", "reward_curve.png"):
        assert (run_dir / name).is_file(), name
    resumed = DQN.load(run_dir / "checkpoints" / "latest.npz")
    assert resumed.steps == 1200 and resumed.q_net[0].weight.shape == (16, 4, 8, 8)  # "small"


def error_lines(stderr: str) -> list:
    assert "Traceback" not in stderr
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def test_script_errors_are_one_line(tmp_path):
    result = run_script("--env", "NoSuchWorld", "--run-dir", str(tmp_path / "x"))
    assert result.returncode == 2 and len(error_lines(result.stderr)) == 1
    assert "NoSuchWorld" in result.stderr
    result = run_script("--env", "Pong", "--buffer-size", "100000000000", "--run-dir", str(tmp_path / "y"))
    assert result.returncode == 2 and len(error_lines(result.stderr)) == 1
    assert "memory" in result.stderr and not (tmp_path / "y").exists()


def test_sigterm_saves_a_checkpoint_and_resume_continues(tmp_path):
    import signal
    import time
    run_dir = tmp_path / "cartpole"
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "scripts" / "train_dqn.py"), "--env", "CartPole-v1",
         "--steps", "1000000", "--eval-every", "0", "--no-progress", "--run-dir", str(run_dir),
         "--save-replay"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (run_dir / "progress.csv").is_file() or len(read_csv(run_dir / "progress.csv")) < 5:
        assert time.monotonic() < deadline and process.poll() is None, process.stderr.read() if process.poll() is not None else "timeout"
        time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr
    stopped_at = DQN.load(run_dir / "checkpoints" / "latest.npz").steps
    assert 0 < stopped_at < 1_000_000
    assert saved_replay(run_dir / "checkpoints" / "latest.npz").is_file()
    result = run_script("--resume", str(run_dir), "--steps", str(stopped_at + 500), "--eval-every", "0")
    assert result.returncode == 0, result.stderr
    assert DQN.load(run_dir / "checkpoints" / "latest.npz").steps == stopped_at + 500
    steps = [int(row["step"]) for row in read_csv(run_dir / "progress.csv")]
    assert steps == sorted(steps) and steps[-1] > stopped_at   # one log, continued in order


def test_an_atari_run_resumes_with_its_env_kwargs_typed_again(script, tmp_path, capsys):
    # train_dqn.py adds Atari's training settings to the run's env_kwargs; typing the run's own
    # --env-kwargs again names the same env
    train, run = script("train_dqn").main, tmp_path / "pong"
    common = ["--no-progress", "--no-tensorboard", "--max-eval-steps", "5", "--eval-episodes", "1"]
    own = ["--env-kwargs", '{"max_num_frames_per_episode": 400}']
    assert train(["--env", "Pong", "--steps", "20", "--learning-starts", "10", "--buffer-size", "200",
                  "--run-dir", str(run)] + own + common) == 0
    saved = json.loads((run / "config.json").read_text())["env_kwargs"]
    assert saved["max_num_frames_per_episode"] == 400 and len(saved) > 1
    assert train(["--resume", str(run), "--steps", "40"] + own + common) == 0
    assert json.loads((run / "config.json").read_text())["env_kwargs"] == saved
    with pytest.raises(SystemExit):
        train(["--resume", str(run), "--steps", "60", "--env-kwargs",
               '{"max_num_frames_per_episode": 500}'] + common)
    assert "a resume cannot change it" in capsys.readouterr().err
