"""agents.training_run: bounded, interruptible and seeded evaluation; a resume that cuts the logs
back to its checkpoint and clears the temporary files of killed writes."""
import errno
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

import envs
from agents.base import read_header, saved_replay
from agents.actor_critic import ActorCritic
from agents.dqn import DQN
from agents.policy_gradient import PolicyGradient
from agents.ppo import PPO
from agents import training_run
from agents.training_run import Evaluation, ProgressBar, TrainingRun, evaluation_seed, play_evaluation
from rlkit.runs import RunDir, read_csv

ROOT = Path(__file__).resolve().parents[1]
# the issue's hang: a world without a time limit and an untrained policy that stays in place
ENDLESS_ROOM = ["--env", "RoomExit", "--steps", "5", "--no-progress",
                "--env-kwargs", '{"max_episode_steps": 1000000000}']


class Forever(gym.Env):
    """One state, reward -1 a step, no end and no time limit."""

    observation_space = spaces.Discrete(1)
    action_space = spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return 0, {}

    def step(self, action):
        return 0, -1.0, False, False, {}


class Still:
    """An agent that always takes action 0; ``on_call(n)`` sees the number of calls so far."""

    def __init__(self, on_call=None):
        self.calls, self.on_call = 0, on_call

    def predict(self, obs, deterministic=True):
        self.calls += 1
        if self.on_call is not None:
            self.on_call(self.calls)
        return 0


# ---------------------------------------------------------------- bounded, interruptible

def test_evaluation_cuts_each_episode_at_max_steps():
    agent = Still()
    result = play_evaluation(agent, Forever(), episodes=3, max_steps=50)
    assert result.returns.tolist() == [-50.0] * 3 and result.truncated == 3 and not result.stopped
    assert result.cut.tolist() == [True] * 3 and agent.calls == 150


def test_an_episode_that_ends_on_its_last_allowed_step_was_not_cut():
    ends_at_3 = gym.wrappers.TimeLimit(Forever(), max_episode_steps=3)  # truncated by the env
    result = play_evaluation(Still(), ends_at_3, episodes=2, max_steps=3)
    assert result.lengths.tolist() == [3, 3] and result.cut.tolist() == [False, False]
    assert result.truncated == 0


def test_a_stop_request_ends_the_evaluation_within_a_step():
    agent = Still()
    result = play_evaluation(agent, Forever(), episodes=3, max_steps=10**9,
                             should_stop=lambda: agent.calls >= 7)
    assert result.stopped and agent.calls == 7 and len(result.returns) == 0


def test_an_interrupted_evaluation_is_not_recorded(tmp_path):
    run = TrainingRun(RunDir(tmp_path / "run"), 10, eval_env=Forever(), eval_episodes=2,
                      max_eval_steps=10**9, progress=False)

    def signal_at(calls):  # what the SIGTERM handler does, at the 5th step of the evaluation
        if calls == 5:
            run._stop.requested, run._stop.signal_name = True, "SIGTERM"

    assert np.isnan(run.evaluate(Still(signal_at), step=10))
    assert run.stop_requested and not (tmp_path / "run" / "eval.csv").exists()
    assert not (tmp_path / "run" / "checkpoints" / "best.npz").exists()


def test_the_issues_endless_evaluation_ends_and_counts_its_truncated_episodes(tmp_path):
    result = subprocess.run([sys.executable, "scripts/train_dqn.py", *ENDLESS_ROOM,
                             "--eval-episodes", "2", "--max-eval-steps", "200",
                             "--run-dir", str(tmp_path / "run")],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    [row] = read_csv(tmp_path / "run" / "eval.csv")
    assert (row["step"], row["episodes"], row["truncated"]) == ("5", "2", "2")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_during_evaluation_saves_the_checkpoint_and_exits(tmp_path, signum):
    run_dir = tmp_path / "run"
    process = subprocess.Popen([sys.executable, "scripts/train_dqn.py", *ENDLESS_ROOM,
                                "--max-eval-steps", "1000000000", "--run-dir", str(run_dir)],
                               cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not (run_dir / "config.json").is_file():  # written just before the 5 training steps
        assert time.monotonic() < deadline and process.poll() is None, process.communicate()
        time.sleep(0.1)
    time.sleep(2)  # the 5 steps take milliseconds: it is evaluating now, and would forever
    process.send_signal(signum)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 0 and "Traceback" not in err, err
    assert f"interrupted by {signal.Signals(signum).name}" in out + err
    assert DQN.load(run_dir / "checkpoints" / "latest.npz").steps == 5
    assert not (run_dir / "eval.csv").exists()


# ---------------------------------------------------------------- seeded

def test_equal_weights_write_equal_evaluation_rows(tmp_path):
    # eval_epsilon: the evaluation draws random actions too, from a generator it reseeds
    agent = DQN(envs.make("CartPole-v1"), seed=0, eval_epsilon=0.5)

    def evaluation_rows(name):  # a fresh, unseeded eval env each time
        run = TrainingRun(RunDir(tmp_path / name), 1000, eval_env=envs.make("CartPole-v1"),
                          eval_episodes=3, seed=11, progress=False)
        with run:
            for step in (100, 200):
                run.evaluate(agent, step)
        return read_csv(tmp_path / name / "eval.csv")

    assert evaluation_rows("a") == evaluation_rows("b")


def test_evaluation_seeds_come_from_the_run_seed_and_the_step():
    assert evaluation_seed(11, 100) == evaluation_seed(11, 100)
    assert len({evaluation_seed(11, 100), evaluation_seed(11, 200), evaluation_seed(12, 100)}) == 3
    assert evaluation_seed(None, 100) is None


# ---------------------------------------------------------------- resume

def test_a_resumed_run_reads_its_wall_time_and_best_evaluation_from_its_checkpoint(tmp_path):
    env = envs.make("CartPole-v1")
    agent = DQN(env, seed=0, learning_starts=50, hidden_sizes=(16,))

    def run(steps):
        return TrainingRun(RunDir(tmp_path / "run"), steps, eval_env=envs.make("CartPole-v1"),
                           eval_episodes=2, seed=0, progress=False)

    first = run(100)
    agent.learn(100, run=first)  # ends with an evaluation and a checkpoint at step 100
    saved = read_header(tmp_path / "run/checkpoints/latest.npz")["run_state"]
    assert saved["best_eval"] == first.best_eval > -np.inf and saved["wall_time"] > 0
    resumed = run(200)
    resumed.start(100)
    assert resumed.best_eval == first.best_eval
    assert resumed.wall_time >= saved["wall_time"]
    elsewhere = run(200)  # a checkpoint of another step is not this run's past
    elsewhere.start(50)
    assert elsewhere.best_eval == -np.inf and elsewhere.wall_time < saved["wall_time"]


def scripted_evaluations(monkeypatch, means: dict) -> None:
    """Evaluations that score ``means[agent.steps]``: what a resumed run does with them is
    then the only thing under test."""
    def play(agent, env, episodes=10, deterministic=True, seed=None, max_steps=1, should_stop=None):
        return Evaluation(np.array([means[agent.steps]]), np.array([1]), np.array([False]), False)
    monkeypatch.setattr(training_run, "play_evaluation", play)


def test_a_best_saved_after_the_checkpoint_a_run_resumes_from_goes_with_its_evaluation(tmp_path, monkeypatch):
    means = {100: 10.0, 200: 20.0, 300: 100.0}
    scripted_evaluations(monkeypatch, means)

    def session(steps, agent, callback=None):
        run = TrainingRun(RunDir(tmp_path / "run"), steps, eval_env=envs.make("CartPole-v1"), eval_every=100,
                          checkpoint_every=200, seed=0, progress=False)
        return agent.learn(steps, run=run, callback=callback), run

    def killed_after_300(agent, step):
        if step == 350:
            raise KeyboardInterrupt  # a kill: no checkpoint after the one at step 200
    with pytest.raises(KeyboardInterrupt):
        session(400, DQN(envs.make("CartPole-v1"), seed=0, learning_starts=50), killed_after_300)
    assert read_header(tmp_path / "run/checkpoints/best.npz")["steps"] == 300
    means.update({300: 15.0, 400: 18.0})
    _, run = session(400, DQN.load(tmp_path / "run/checkpoints/latest.npz", envs.make("CartPole-v1")))
    assert [float(r["mean_return"]) for r in read_csv(tmp_path / "run/eval.csv")] == [10, 20, 15, 18]
    # the step-300 network of 100 went with its row; best.npz is the best of what followed
    assert read_header(tmp_path / "run/checkpoints/best.npz")["steps"] == 400 and run.best_eval == 18


def test_an_interrupted_evaluation_leaves_its_step_to_be_evaluated(tmp_path, monkeypatch):
    # a resume at that step must evaluate it: nothing of it was recorded
    def interrupted(*args, **kwargs):
        return Evaluation(np.zeros(0), np.zeros(0, np.int64), np.zeros(0, bool), stopped=True)
    monkeypatch.setattr(training_run, "play_evaluation", interrupted)
    run = TrainingRun(RunDir(tmp_path / "run"), 100, eval_env=envs.make("CartPole-v1"), progress=False)
    assert np.isnan(run.evaluate(DQN(envs.make("CartPole-v1"), seed=0), 100))
    assert run.last_eval_step is None and not (tmp_path / "run/eval.csv").exists()


def test_a_run_resumed_where_it_ended_logs_no_second_final_evaluation(tmp_path):
    def session():
        run = TrainingRun(RunDir(tmp_path / "run"), 200, eval_env=envs.make("CartPole-v1"), eval_every=100,
                          eval_episodes=2, seed=0, progress=False)
        agent = (DQN.load(tmp_path / "run/checkpoints/latest.npz", envs.make("CartPole-v1"))
                 if (tmp_path / "run/checkpoints/latest.npz").is_file()
                 else DQN(envs.make("CartPole-v1"), seed=0, learning_starts=50))
        agent.learn(200, run=run)

    session()
    session()
    assert [int(r["step"]) for r in read_csv(tmp_path / "run/eval.csv")] == [100, 200]
    health_steps = [int(r["step"]) for r in read_csv(tmp_path / "run/health.csv")]
    assert health_steps[-1] == 200 and len(health_steps) == len(set(health_steps))


def test_resume_of_an_old_layout_run_cuts_its_logs_and_clears_temporaries(script, tmp_path):
    """A run folder as the first round wrote it (no max_eval_steps in config.json, eval.csv
    without 'truncated'), stopped after logging past its checkpoint and killed mid-write."""
    train = script("train_dqn").main
    run = tmp_path / "run"
    assert train(["--env", "RoomExit", "--steps", "300", "--eval-every", "100", "--eval-episodes",
                  "2", "--checkpoint-every", "100", "--save-replay", "--no-progress",
                  "--run-dir", str(run)]) == 0
    config = json.loads((run / "config.json").read_text())
    for new_flag in ("max_eval_steps", "overwrite"):
        del config[new_flag]
    (run / "config.json").write_text(json.dumps(config))
    old_eval = [line.rsplit(",", 1)[0] for line in (run / "eval.csv").read_text().splitlines()]
    (run / "eval.csv").write_text("\r\n".join(old_eval + ["400,-1.0,0.0,2", ""]))
    progress_before = read_csv(run / "progress.csv")
    last = progress_before[-1]
    with open(run / "progress.csv", "a", newline="") as f:  # rows of the lost session, one torn
        f.write(f"350,{int(last['episode']) + 1},-3,50,0.5,0.1,100,1.0\r\n360,{int(last['episode']) + 2},-")
    with open(run / "health.csv", "a", newline="") as f:
        f.write("400," + ",".join(["0.5"] * (len(read_csv(run / "health.csv")[0]) - 1)) + "\r\n")
    for leftover in ("checkpoints/.replay.npz.k1ll3d.tmp", ".config.json.x7.tmp"):
        (run / leftover).write_bytes(b"half")

    assert train(["--resume", str(run), "--steps", "500", "--no-progress"]) == 0
    assert DQN.load(run / "checkpoints" / "latest.npz").steps == 500
    assert not list(run.rglob("*.tmp"))
    progress = read_csv(run / "progress.csv")
    assert progress[:len(progress_before)] == progress_before
    assert [int(r["episode"]) for r in progress] == list(range(1, len(progress) + 1))
    evals = read_csv(run / "eval.csv")
    assert [int(r["step"]) for r in evals] == [100, 200, 300, 400, 500]
    assert [r["truncated"] for r in evals[:3]] == ["", "", ""] and evals[3]["truncated"] == "0"
    for name in ("progress.csv", "eval.csv", "health.csv"):
        steps = [int(r["step"]) for r in read_csv(run / name)]
        assert steps == sorted(steps) and steps[-1] <= 500, name


def frozen_inside_a_checkpoint_write(process, folder: Path, timeout: float = 120) -> list:
    """SIGSTOP ``process`` at a moment when latest.npz's temporary file exists next to a
    published latest (so the run is between the replay's write and latest's); returns the
    folder's names as frozen."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        names = os.listdir(folder) if folder.is_dir() else []
        if any(n.startswith(".latest.npz.") for n in names) and "latest.npz" in names:
            process.send_signal(signal.SIGSTOP)
            names = os.listdir(folder)  # the write may have ended before the signal landed
            if any(n.startswith(".latest.npz.") and n.endswith(".tmp") for n in names):
                return names
            process.send_signal(signal.SIGCONT)
    pytest.fail("never caught the run inside latest.npz's write")


def test_a_kill_inside_a_checkpoint_write_leaves_a_consistent_latest_and_replay(script, tmp_path,
                                                                                capsys):
    """The issue's kill -9: the replay of the new checkpoint is on disk, latest.npz is still
    being written. Before checkpoints named their replay, latest (step S) then met a replay of
    step S + 100 and loaded it without a word; now latest still names its own replay, the
    resume removes the orphan and the temporary file, and the logs never step back."""
    run = tmp_path / "run"
    checkpoints = run / "checkpoints"
    # a wide network makes latest.npz a few MB, so its write lasts long enough to be caught;
    # no learning before 5,000 steps keeps the steps fast
    process = subprocess.Popen(
        [sys.executable, "scripts/train_dqn.py", "--env", "CartPole-v1", "--steps", "1000000",
         "--buffer-size", "5000", "--learning-starts", "5000", "--hidden-sizes", "512", "512",
         "--checkpoint-every", "100", "--eval-every", "0", "--save-replay", "--no-progress",
         "--no-tensorboard", "--run-dir", str(run)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        frozen = frozen_inside_a_checkpoint_write(process, checkpoints)
    finally:
        process.kill()  # SIGKILL: no handler runs, nothing is tidied
        process.communicate()
    latest = checkpoints / "latest.npz"
    stopped_at = DQN.load(latest).steps
    replays = sorted(n for n in frozen if n.startswith("replay-"))
    assert len(replays) == 2 and saved_replay(latest).name in replays  # latest's and the next one
    replay = saved_replay(latest)
    # the pair that was published last loads, and the replay is that of latest's step
    agent = DQN.load(latest, envs.make("CartPole-v1"), replay_path=replay)
    assert len(agent.replay) == min(stopped_at, 5000)

    capsys.readouterr()
    assert script("train_dqn").main(["--resume", str(run), "--steps", str(stopped_at + 300),
                                     "--no-progress"]) == 0
    said = capsys.readouterr().out + capsys.readouterr().err
    assert "temporary file(s) of interrupted writes" in said and "does not name" in said
    assert not list(run.rglob("*.tmp"))
    [replay] = checkpoints.glob("replay*.npz")
    assert replay == saved_replay(latest)
    agent = DQN.load(latest, envs.make("CartPole-v1"), replay_path=replay)
    assert agent.steps == stopped_at + 300 and len(agent.replay) == min(agent.steps, 5000)
    steps = [int(row["step"]) for row in read_csv(run / "progress.csv")]
    assert steps == sorted(steps) and steps[-1] <= stopped_at + 300


def test_a_replay_not_saved_with_the_checkpoint_is_refused(tmp_path):
    agent = DQN(envs.make("RoomExit"), seed=0).learn(50)
    agent.save(tmp_path / "latest.npz", replay_path=tmp_path / "replay-50.npz")
    agent.learn(80)
    agent.save(tmp_path / "next.npz", replay_path=tmp_path / "replay-80.npz")
    with pytest.raises(ValueError, match=r"replay-80.npz holds the replay memory of step 80, but "
                                         r".*latest.npz \(step 50\) names replay-50.npz: they were "
                                         "not saved together"):
        DQN.load(tmp_path / "latest.npz", envs.make("RoomExit"),
                 replay_path=tmp_path / "replay-80.npz")
    loaded = DQN.load(tmp_path / "latest.npz", envs.make("RoomExit"),
                      replay_path=tmp_path / "replay-50.npz")
    assert len(loaded.replay) == 50


# ---------------------------------------------------------------- a full disk

def no_space(file, **arrays):
    """np.savez on a full disk: some bytes land, then the write fails."""
    file.write(b"\0" * 1000)
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_a_full_disk_at_a_checkpoint_is_one_line_and_keeps_the_last_checkpoint(script, tmp_path,
                                                                               monkeypatch, capsys):
    train = script("train_dqn").main
    run = tmp_path / "run"
    assert train(["--env", "RoomExit", "--steps", "200", "--checkpoint-every", "100",
                  "--eval-every", "0", "--save-replay", "--no-progress", "--no-tensorboard",
                  "--run-dir", str(run)]) == 0
    checkpoints = sorted(os.listdir(run / "checkpoints"))
    capsys.readouterr()
    monkeypatch.setattr(np, "savez", no_space)
    with pytest.raises(SystemExit) as exited:
        train(["--resume", str(run), "--steps", "300", "--no-progress"])
    monkeypatch.undo()
    err = capsys.readouterr().err
    assert exited.value.code == 1 and "Traceback" not in err
    [line] = [line for line in err.splitlines() if line.startswith("error:")]
    assert re.match(rf"error: no space left in {re.escape(str(run / 'checkpoints'))} to write "
                    r"replay-300-\w+\.npz: it needs about [\d.]+ MB \(.* free\); .* keeps the last "
                    "complete checkpoint", line), line
    assert sorted(os.listdir(run / "checkpoints")) == checkpoints  # no temporary, no orphan replay
    latest = run / "checkpoints" / "latest.npz"
    assert DQN.load(latest, envs.make("RoomExit"), replay_path=saved_replay(latest)).steps == 200


def test_a_disk_too_full_for_config_json_leaves_no_run_folder(script, tmp_path, monkeypatch,
                                                              capsys):
    def no_space_to_sync(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", no_space_to_sync)
    with pytest.raises(SystemExit) as exited:
        script("train_dqn").main(["--env", "RoomExit", "--steps", "10", "--no-progress",
                                  "--run-dir", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert exited.value.code == 1 and "Traceback" not in err
    assert err.startswith(f"error: no space left in {tmp_path / 'run'} to write config.json: it needs about")
    assert not (tmp_path / "run").exists()


def test_the_progress_bar_leaves_out_metrics_without_a_value(capsys):
    # policy-gradient agents explore without an epsilon: the bar showed "eps=nan"
    with ProgressBar(100, min_interval=0.0) as bar:
        bar.update(10, eps=float("nan"), ret=np.float64(1.5), loss=0.25)
        bar.update(20, eps=float("nan"), ret=np.float64(1.5), loss=0.25)
    shown = capsys.readouterr().err
    assert "ret=1.5" in shown and "loss=0.25" in shown and "eps" not in shown


class EpisodeLog(TrainingRun):
    """A TrainingRun without a folder that keeps each finished episode's (return, length)."""

    def __init__(self, total_steps: int):
        super().__init__(None, total_steps, progress=False)
        self.episodes_logged = []

    def episode_end(self, step, episode, episode_return, length, epsilon=float("nan")):
        self.episodes_logged.append((episode_return, length))
        super().episode_end(step, episode, episode_return, length, epsilon)


def halved_after_record(n_envs: int | None):
    """CartPole (reward 1 a step) whose rewards are halved after Gymnasium's
    RecordEpisodeStatistics kept them, as envs.atari clips them with clip_rewards; a vector env
    of n_envs copies, or one env (None)."""
    if n_envs is None:
        return gym.wrappers.TransformReward(gym.wrappers.RecordEpisodeStatistics(
            envs.make("CartPole-v1")), lambda r: 0.5 * r)
    vector = gym.wrappers.vector
    return vector.TransformReward(vector.RecordEpisodeStatistics(
        gym.make_vec("CartPole-v1", n_envs, vectorization_mode="sync")), lambda r: 0.5 * r)


@pytest.mark.parametrize("make_agent", [
    lambda: DQN(halved_after_record(None), seed=0, learning_starts=1_000),
    lambda: PolicyGradient(halved_after_record(None), seed=0),
    lambda: ActorCritic(halved_after_record(4), seed=0),
    lambda: PPO(halved_after_record(4), seed=0, n_steps=32),
], ids=["dqn", "reinforce", "a2c", "ppo"])
def test_logged_returns_are_the_envs_record_not_the_rewards_learned_from(make_agent):
    agent, run = make_agent(), EpisodeLog(400)
    agent.learn(400, run=run)
    assert len(run.episodes_logged) >= 5
    # CartPole pays 1 a step: the game's score is the episode's length, the halved sum half of it
    assert all(ret == length for ret, length in run.episodes_logged), run.episodes_logged[:5]


def test_evaluation_scores_the_envs_record():
    agent = DQN(envs.make("CartPole-v1"), seed=0)
    evaluation = play_evaluation(agent, halved_after_record(None), episodes=3, seed=0)
    np.testing.assert_array_equal(evaluation.returns, evaluation.lengths)
