"""scripts/watch.py on results folders: config.json plus a network file, no checkpoints/."""
import dataclasses
import os
import re
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import envs
from agents.dqn import DQN
from agents.ppo import PPO
from rlkit.runs import write_json_atomic
from rlkit.viewer import Viewer

ROOT = Path(__file__).resolve().parents[1]
ENV_KWARGS = {"max_episode_steps": 9}  # the run's env settings: watch must rebuild them


@pytest.fixture
def watch(script):
    """scripts/watch.py as a module (conftest's ``script`` puts its folder on sys.path)."""
    return script("watch")


@pytest.fixture(scope="module")
def results_folder(tmp_path_factory) -> Path:
    """What a committed DQN results folder holds: config.json and a weights-only q_network.npz."""
    folder = tmp_path_factory.mktemp("cartpole-dqn")
    agent = DQN(envs.make("CartPole-v1", **ENV_KWARGS), learning_starts=50, buffer_size=1_000,
                eps_steps=200, eval_epsilon=0.0, seed=0)
    agent.learn(300)
    agent.save(folder / "q_network.npz", weights_only=True)
    write_json_atomic(folder / "config.json", {
        "script": "dqn", "env": "CartPole-v1", "env_kwargs": ENV_KWARGS, "living_reward": None,
        "slip": None, "seed": 0, "hyperparams": dataclasses.asdict(agent.config)})
    (folder / "progress.csv").write_text("step,episode_return\n300,12.0\n")
    return folder


def greedy_returns(agent, env, episodes: int, seed: int) -> list[float]:
    """``agent``'s returns on ``env``, played here the way watch.py plays (first reset seeded)."""
    returns, obs = [], env.reset(seed=seed)[0]
    while len(returns) < episodes:
        total, done = 0.0, False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(agent.predict(obs))
            total, done = total + reward, terminated or truncated
        returns.append(total)
        obs = env.reset()[0]
    return returns


def run_watch(*argv) -> subprocess.CompletedProcess:
    """``python scripts/watch.py ARGV`` as a user runs it, without a display."""
    environ = {**os.environ, "SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy",
               "OPENBLAS_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "watch.py"), *map(str, argv)],
                          cwd=ROOT, env=environ, capture_output=True, text=True, timeout=300)


def test_headless_watch_of_a_results_folder_prints_each_return_and_the_mean(results_folder):
    assert not (results_folder / "checkpoints").exists()
    done = run_watch(results_folder, "--headless", "--episodes", "3", "--seed", "5")
    assert done.returncode == 0, done.stderr
    found = re.findall(r"^episode (\d+): return (\S+) \((\d+) steps\)$", done.stdout, re.M)
    assert [int(n) for n, _, _ in found] == [1, 2, 3]
    assert all(int(steps) <= ENV_KWARGS["max_episode_steps"] for _, _, steps in found)  # config's env
    returns = [float(r) for _, r, _ in found]
    env = envs.make("CartPole-v1", **ENV_KWARGS)
    saved = DQN.load(results_folder / "q_network.npz", env)
    assert returns == greedy_returns(saved, env, 3, seed=5)  # the saved network, greedy
    mean = sum(returns) / 3
    assert re.search(rf"DQN on CartPole-v1: \d+ steps, 3 episodes \(returns: .*; mean {mean:.6g}\)",
                     done.stdout)


def test_a_folder_without_checkpoints_or_network_is_one_error_line(tmp_path):
    write_json_atomic(tmp_path / "config.json", {"env": "CartPole-v1"})
    (tmp_path / "progress.csv").write_text("step,episode_return\n")
    done = run_watch(tmp_path, "--headless")
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert done.returncode == 2 and len(errors) == 1
    assert f"{tmp_path} holds no agent: expected a run's checkpoint" in errors[0]
    assert "q_network.npz" in errors[0]


def test_any_one_agent_file_is_found_and_several_are_refused(watch, results_folder, tmp_path, capsys):
    other = tmp_path / "policy_net.npz"
    other.write_bytes((results_folder / "q_network.npz").read_bytes())
    (tmp_path / "notes.npz").write_bytes(b"not a zip")  # ignored: no agent header
    assert watch.locate(str(tmp_path))[0] == other
    (tmp_path / "second.npz").write_bytes(other.read_bytes())
    with pytest.raises(SystemExit):
        watch.locate(str(tmp_path))
    assert "holds several agent files (policy_net.npz, second.npz)" in capsys.readouterr().err


def test_a_committed_pong_results_folder_is_watchable(watch, capsys):
    folder = ROOT / "results" / "pong-dqn-collapsed"  # the Nature-CNN run that died (README)
    summary = watch.main([str(folder), "--headless", "--max-steps", "3", "--seed", "0"])
    assert summary["steps"] == 3
    assert "DQN on Pong: 3 steps" in capsys.readouterr().out


def test_a_policy_gradient_results_folder_gets_the_input_its_run_trained_on(watch, tmp_path, capsys):
    from agents.policy_gradient import PolicyGradient
    # train_pg.py gave REINFORCE on Pong the book's input; config.json records only the flags
    agent = PolicyGradient(envs.make("Pong", preprocess="pg", actions="updown"), seed=0)
    agent.save(tmp_path / "policy.npz")
    write_json_atomic(tmp_path / "config.json", {"script": "pg-reinforce", "env": "Pong", "algo": "reinforce",
                                                 "policy": None, "env_kwargs": None})
    summary = watch.main([str(tmp_path), "--headless", "--max-steps", "3"])
    assert summary["steps"] == 3
    assert "PolicyGradient on Pong: 3 steps" in capsys.readouterr().out


# ---- continuous actions: a PPO run on Pendulum-v1 ----------------------------------------

PENDULUM_RUN = ["--env", "Pendulum-v1", "--algo", "ppo", "--steps", "64", "--n-envs", "2",
                "--n-steps", "16", "--n-minibatches", "2", "--n-epochs", "1", "--eval-episodes", "1",
                "--no-progress", "--no-tensorboard"]


def test_headless_watch_of_a_pendulum_ppo_run_plays_its_clipped_mean(tmp_path):
    """train_pg.py's run folder as a user makes it; watch plays the Gaussian policy's mean."""
    run = tmp_path / "pend"
    trained = subprocess.run([sys.executable, str(ROOT / "scripts" / "train_pg.py"), *PENDULUM_RUN,
                              "--run-dir", str(run)], cwd=ROOT, capture_output=True, text=True,
                             timeout=300, env={**os.environ, "OPENBLAS_NUM_THREADS": "1"})
    assert trained.returncode == 0, trained.stderr
    done = run_watch(run, "--headless", "--episodes", "2", "--seed", "3")
    assert done.returncode == 0, done.stderr
    found = re.findall(r"^episode (\d+): return (\S+) \(200 steps\)$", done.stdout, re.M)
    assert [int(n) for n, _ in found] == [1, 2]
    env = envs.make("Pendulum-v1")
    expected = greedy_returns(PPO.load(run / "checkpoints" / "best.npz", env), env, 2, seed=3)
    assert [float(r) for _, r in found] == [float(f"{r:.6g}") for r in expected]


def test_watch_clips_a_gaussian_mean_beyond_the_bounds_and_shows_it_on_their_scale(
        watch, tmp_path, monkeypatch):
    agent = PPO(envs.make_vec("Pendulum-v1", 2), seed=0)
    agent.net.policy.bias.data[...] = 5.0  # a mean far above Pendulum's torque bound of 2
    agent.save(tmp_path / "policy.npz")
    write_json_atomic(tmp_path / "config.json", {"script": "pg-ppo", "env": "Pendulum-v1", "algo": "ppo",
                                                 "policy": None, "env_kwargs": None})
    played, panels = [], []

    class Recorded(gym.Wrapper):
        def step(self, action):
            played.append(np.array(action, copy=True))
            return super().step(action)

    make = watch.run_env
    monkeypatch.setattr(watch, "run_env", lambda *a, **k: Recorded(make(*a, **k)))
    show = Viewer.show
    monkeypatch.setattr(Viewer, "show", lambda self, frame, info: (panels.append(info),
                                                                   show(self, frame, info)))
    summary = watch.main([str(tmp_path), "--headless", "--max-steps", "5"])
    assert summary["steps"] == 5 and len(played) == 5
    for action in played:  # the env gets the mean clipped to the Box, in its dtype and shape
        assert action.shape == (1,) and action.dtype == np.float32 and action[0] == 2.0
    panel = panels[0]
    assert panel.kind == "mean action (clipped)" and list(panel.action_names) == ["a0 [-2, 2]"]
    assert panel.value_range == (-2.0, 2.0) and panel.chosen is None
    np.testing.assert_array_equal(panel.values, [2.0])
