"""TensorBoard events of a training run (tensorboardX) hold what its CSVs hold."""
import struct
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

import envs
from agents.dqn import DQN
from agents.training_run import TrainingRun
from rlkit.runs import RunDir, read_csv

event_pb2 = pytest.importorskip("tensorboardX.proto.event_pb2")


def read_events(folder: Path) -> dict:
    """{tag: [(step, value), ...]} of every scalar in the event files under ``folder`` (the
    TFRecord framing: length, its CRC, the Event proto, its CRC), in file and write order."""
    scalars = defaultdict(list)
    files = sorted(folder.glob("events.out.tfevents.*"))
    assert files, f"no event files in {folder}"
    for path in files:
        data, at = path.read_bytes(), 0
        while at < len(data):
            (length,) = struct.unpack("<Q", data[at:at + 8])
            event = event_pb2.Event.FromString(data[at + 12:at + 12 + length])
            at += 12 + length + 4
            for value in event.summary.value:
                scalars[value.tag].append((event.step, value.simple_value))
    return dict(scalars)


def test_a_cartpole_run_writes_the_returns_of_progress_csv(script, tmp_path):
    run = tmp_path / "run"
    script("train_dqn").main(["--env", "CartPole-v1", "--steps", "400", "--learning-starts", "50",
                              "--eval-every", "200", "--eval-episodes", "2", "--no-progress",
                              "--run-dir", str(run)])
    events = read_events(run / "tb")
    progress = read_csv(run / "progress.csv")
    assert len(progress) > 3
    returns = [(int(r["step"]), float(r["return"])) for r in progress]
    assert events["charts/episodic_return"] == returns
    assert events["charts/episodic_length"] == [(int(r["step"]), float(r["length"])) for r in progress]
    evals = read_csv(run / "eval.csv")
    assert [s for s, _ in events["eval/mean_return"]] == [int(r["step"]) for r in evals] == [200, 400]
    np.testing.assert_allclose([v for _, v in events["eval/mean_return"]],
                               [float(r["mean_return"]) for r in evals], rtol=1e-6)
    health = read_csv(run / "health.csv")
    for column in health[0]:
        if column != "step":
            np.testing.assert_allclose([v for _, v in events[f"health/{column}"]],
                                       [float(r[column]) for r in health], rtol=1e-6)


def test_no_tensorboard_writes_no_events(script, tmp_path):
    run = tmp_path / "run"
    script("train_dqn").main(["--env", "CartPole-v1", "--steps", "100", "--learning-starts", "50",
                              "--no-progress", "--no-tensorboard", "--run-dir", str(run)])
    assert (run / "progress.csv").is_file() and not (run / "tb").exists()


def test_loss_epsilon_and_rate_are_written_under_their_names(tmp_path, monkeypatch):
    import agents.training_run as training_run
    clock = iter(np.arange(0.0, 1e6, 0.5))  # 0.5 s a call: the 2-s rate (SPS, epsilon, loss) every few steps
    monkeypatch.setattr(training_run.time, "monotonic", lambda: next(clock))
    agent = DQN(envs.make("CartPole-v1"), learning_starts=20, buffer_size=500, eps_steps=100, seed=0)
    with TrainingRun(RunDir(tmp_path / "run"), 120, progress=False, tensorboard=True) as run:
        agent.learn(120, run=run)
    events = read_events(tmp_path / "run" / "tb")
    assert {"charts/SPS", "charts/epsilon", "charts/learning_rate", "losses/td_loss"} <= set(events)
    assert all(v == pytest.approx(agent.config.learning_rate) for _, v in events["charts/learning_rate"])
    assert all(0 <= eps <= 1 for _, eps in events["charts/epsilon"])
    assert all(step >= 20 for step, _ in events["losses/td_loss"])  # no loss before learning starts


def test_ppo_writes_its_loss_terms_kl_and_clip_fraction(tmp_path, monkeypatch):
    import agents.training_run as training_run
    from agents.ppo import PPO
    clock = iter(np.arange(0.0, 1e6, 5.0))  # 5 s a call: every after_step writes the rates
    monkeypatch.setattr(training_run.time, "monotonic", lambda: next(clock))
    agent = PPO(envs.make_vec("CartPole-v1", 2), n_steps=16, seed=0)
    with TrainingRun(RunDir(tmp_path / "run"), 64, progress=False, tensorboard=True) as run:
        agent.learn(64, run=run)
    events = read_events(tmp_path / "run" / "tb")
    for name in ("policy_loss", "value_loss", "entropy", "approx_kl", "clipfrac"):
        step, value = events[f"losses/{name}"][-1]  # the last iteration's, as the agent keeps it
        assert step == 64 and value == pytest.approx(agent.last_stats[name], rel=1e-6), name
    assert 0 < events["losses/entropy"][-1][1] <= np.log(2)  # two actions


def test_a_resumed_session_marks_where_it_purges(tmp_path):
    folder = RunDir(tmp_path / "run")
    with TrainingRun(folder, 60, progress=False, tensorboard=True) as run:
        run.start(60)
    data = next((tmp_path / "run" / "tb").glob("events.out.tfevents.*")).read_bytes()
    # the session's start record: SessionLog START at step 60 hides later events of earlier files
    at, found = 0, False
    while at < len(data):
        (length,) = struct.unpack("<Q", data[at:at + 8])
        event = event_pb2.Event.FromString(data[at + 12:at + 12 + length])
        at += 12 + length + 4
        found |= event.HasField("session_log") and event.step == 60 and \
            event.session_log.status == event_pb2.SessionLog.START
    assert found


def test_the_writer_does_not_import_pytorch(tmp_path):
    """tensorboardX imports torch whenever it is installed (seconds); rlkit runs without it."""
    code = ("import sys; from agents.training_run import TensorBoard; "
            f"TensorBoard({str(tmp_path)!r}).close(); print('torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[1],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
