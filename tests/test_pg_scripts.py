"""scripts/train_pg.py and scripts/bench_pg.py end to end (short runs)."""
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from agents.actor_critic import ActorCritic
from agents.policy_gradient import PolicyGradient
from agents.ppo import PPO
from rlkit.runs import load_npz, read_csv

ROOT = Path(__file__).resolve().parents[1]


def test_reinforce_run_directory_and_resume(script, tmp_path):
    train = script("train_pg").main
    run = tmp_path / "run"
    flags = ["--env", "CartPole-v1", "--run-dir", str(run), "--no-progress", "--eval-every", "1000",
             "--eval-episodes", "2", "--checkpoint-every", "1000", "--seed", "3"]
    assert train(flags + ["--steps", "2000"]) == 0
    for name in ("config.json", "progress.csv", "eval.csv", "reward_curve.png",
                 "checkpoints/latest.npz", "checkpoints/best.npz"):
        assert (run / name).is_file(), name
    config = json.loads((run / "config.json").read_text())
    assert config["algo"] == "reinforce" and config["hyperparams"]["policy"] == "mlp"
    first = read_csv(run / "progress.csv")
    assert PolicyGradient.load(run / "checkpoints/latest.npz").steps == 2000

    assert train(["--resume", str(run), "--steps", "4000", "--no-progress"]) == 0
    rows = read_csv(run / "progress.csv")
    assert rows[:len(first)] == first and len(rows) > len(first)
    episodes = [int(r["episode"]) for r in rows]
    assert episodes == list(range(1, len(rows) + 1))  # the count goes on where it stopped
    assert [int(r["step"]) for r in read_csv(run / "eval.csv")] == [1000, 2000, 3000, 4000]
    assert PolicyGradient.load(run / "checkpoints/latest.npz").steps == 4000


def test_a_resume_applies_a_new_learning_rate_and_records_it(script, tmp_path, capsys):
    """--resume RUN --lr 5e-5 went on at the old rate without a word; now it trains at the new
    one, says so in one line and records it in config.json, where a later resume finds it."""
    train = script("train_pg").main
    run = tmp_path / "run"
    assert train(["--env", "CartPole-v1", "--algo", "a2c", "--n-envs", "2", "--n-steps", "8",
                  "--steps", "64", "--eval-episodes", "1", "--no-progress", "--no-tensorboard",
                  "--run-dir", str(run)]) == 0
    capsys.readouterr()
    assert train(["--resume", str(run), "--lr", "5e-5", "--steps", "128", "--no-progress"]) == 0
    assert "resuming at step 64 with learning_rate 0.01 -> 5e-05 (recorded in config.json)" in \
        capsys.readouterr().out
    latest = run / "checkpoints" / "latest.npz"
    assert load_npz(latest)["optim/lr"] == np.float64(5e-5)  # the rate the session trained at
    config = json.loads((run / "config.json").read_text())
    assert config["resumes"] == [{"step": 64, "changed": {"learning_rate": [0.01, 5e-05]}}]
    assert config["learning_rate"] == config["hyperparams"]["learning_rate"] == 5e-05
    assert config["steps"] == 128
    assert train(["--resume", str(run), "--steps", "192", "--no-progress"]) == 0
    assert load_npz(latest)["optim/lr"] == np.float64(5e-5)
    assert ActorCritic.load(latest).steps == 192
    assert len(json.loads((run / "config.json").read_text())["resumes"]) == 1


def test_pong_gets_the_books_network_and_hyperparameters(script, tmp_path):
    run = tmp_path / "pong"
    # short episodes (400 frames = 100 agent steps) so the test plays a few of them
    assert script("train_pg").main([
        "--env", "Pong", "--steps", "300", "--batch-episodes", "2", "--run-dir", str(run),
        "--no-progress", "--eval-episodes", "1",
        "--env-kwargs", '{"max_num_frames_per_episode": 400}']) == 0
    hyper = json.loads((run / "config.json").read_text())["hyperparams"]
    assert (hyper["policy"], hyper["learning_rate"], hyper["optimizer"], hyper["rmsprop_decay"],
            hyper["gamma"], hyper["reset_on_reward"]) == ("book", 1e-4, "rmsprop", 0.99, 0.99, True)
    agent = PolicyGradient.load(run / "checkpoints/latest.npz")
    assert agent.updates == 1 and agent.episodes == 3 and agent.observation_space.shape == (6400,)


def test_pong_cnn_defaults_are_the_recipe_that_learned_it(script, tmp_path):
    """No sticky actions, the 2013 network, 16 environments (README "Pong, learned by A2C")."""
    train_pg = script("train_pg")
    settings = {algo: train_pg.env_kwargs(train_pg.build_parser().parse_args(["--algo", algo]))
                for algo in ("reinforce", "ppo")}
    assert settings["ppo"] == {"preprocess": "dqn", "repeat_action_probability": 0.0}
    assert "repeat_action_probability" not in settings["reinforce"]  # the book's Pong-v0 had them
    run = tmp_path / "ppo"
    assert train_pg.main([
        "--env", "Pong", "--algo", "ppo", "--n-steps", "2", "--steps", "32", "--run-dir", str(run),
        "--no-progress", "--eval-episodes", "1",
        "--env-kwargs", '{"max_num_frames_per_episode": 200}']) == 0
    assert json.loads((run / "config.json").read_text())["n_envs"] == 16
    agent = PPO.load(run / "checkpoints/latest.npz")
    convolutions = [m for _, m in agent.net.named_modules() if type(m).__name__ == "Conv2d"]
    assert agent.config.network == "small" and [c.weight.shape[0] for c in convolutions] == [16, 32]
    # the frames reach the network as uint8 and its first convolution scales them
    assert [c.input_scale for c in convolutions] == [1 / 255, 1.0]
    assert agent.net.policy.weight.shape == (6, 256)  # Pong's six actions from 256 features


def test_a2c_recurrent_run(script, tmp_path):
    run = tmp_path / "a2c"
    assert script("train_pg").main([
        "--env", "CartPole-v1", "--algo", "a2c", "--n-envs", "4", "--recurrent", "--lstm-size", "8",
        "--steps", "1500", "--run-dir", str(run), "--no-progress", "--eval-episodes", "1"]) == 0
    agent = ActorCritic.load(run / "checkpoints/latest.npz")
    assert agent.config.recurrent and agent.net.actor.lstm is not None
    assert agent.steps >= 1500 and agent.steps % (4 * agent.config.n_steps) == 0


def test_flags_of_the_other_algorithm_are_refused(tmp_path):
    out = subprocess.run([sys.executable, "scripts/train_pg.py", "--env", "CartPole-v1",
                          "--n-steps", "5", "--run-dir", str(tmp_path / "x")],
                         cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 2
    assert out.stderr.strip() == "error: --n-steps does not apply to --algo reinforce"
    assert not (tmp_path / "x").exists()
    out = subprocess.run([sys.executable, "scripts/train_pg.py", "--env", "CartPole-v1",
                          "--n-envs", "2", "--run-dir", str(tmp_path / "x")],
                         cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 2 and "--n-envs does not apply to --algo reinforce" in out.stderr
    assert not (tmp_path / "x").exists()


def test_sigint_saves_latest_and_exits(tmp_path):
    run = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "scripts/train_pg.py", "--env", "CartPole-v1",
                             "--steps", "10000000", "--run-dir", str(run), "--no-progress"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not (run / "progress.csv").is_file() or len(read_csv(run / "progress.csv")) < 5:
        assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read()
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "stopped at step" in out
    agent = PolicyGradient.load(run / "checkpoints/latest.npz")
    assert 0 < agent.steps < 10_000_000


def test_bench_pg_writes_its_json(script, tmp_path):
    out = tmp_path / "pg.json"
    assert script("bench_pg").main(["--episodes", "1", "--recorded", "1", "--repeats", "1",
                                    "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert set(report["frames_per_s"]) == {"book loop", "rlkit", "book loop, live env", "rlkit, live env"}
    assert report["speedup"] > 0 and report["target"] == 2.0
