"""rlkit.viewer and scripts/watch.py, headless: videos read back with OpenCV, keys, errors."""
from pathlib import Path

import cv2
import numpy as np
import pygame
import pytest

import envs
from agents.dqn import DQN
from agents.planning import ValueIteration
from rlkit.runs import write_json_atomic
from rlkit.viewer import PanelInfo, VideoRecorder, Viewer

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def watch(script):
    """scripts/watch.py as a module (conftest's ``script`` puts its folder on sys.path)."""
    return script("watch")


def read_video(path) -> tuple[int, tuple[int, int]]:
    """(frames, (width, height)) of a video, counted by decoding every frame with OpenCV."""
    capture = cv2.VideoCapture(str(path))
    frames, size = 0, None
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames, size = frames + 1, (frame.shape[1], frame.shape[0])
    capture.release()
    return frames, size


@pytest.mark.parametrize("env,steps,suffix", [("RoomExit", 12, "mp4"), ("Gridworld", 15, "gif"),
                                              ("Pong", 6, "mp4")])
def test_watch_random_agent_records_what_was_played(watch, tmp_path, env, steps, suffix):
    out = tmp_path / f"clip.{suffix}"
    summary = watch.main(["--env", env, "--random", "--headless", "--episodes", "100",
                          "--max-steps", str(steps), "--record", str(out)])
    assert summary["steps"] == steps
    # one frame per state shown: after every reset and after every step
    assert summary["frames"] == summary["resets"] + steps
    assert read_video(out) == (summary["frames"], summary["size"])


def test_ctrl_c_in_the_terminal_ends_a_watch_as_quitting_does(watch, monkeypatch):
    viewer = Viewer("ctrl-c", 30, headless=True)
    waits = iter(["go", "go", "go"])

    def wait():
        command = next(waits, None)
        if command is None:
            raise KeyboardInterrupt
        return command
    monkeypatch.setattr(viewer, "wait", wait)
    try:
        summary = watch.watch(envs.make("RoomExit", render_mode="rgb_array"), viewer, None, "random",
                              episodes=5, max_steps=None, seed=0)
    except KeyboardInterrupt:  # failed, without ending the whole test session as it would
        pytest.fail("Ctrl+C went through watch()")
    finally:
        viewer.close()
    assert summary["steps"] + summary["resets"] - 1 == 3  # each "go": a step, or a new episode


def test_watch_a_planner_run_directory_draws_values_and_arrows(watch, tmp_path, capsys):
    env = envs.make("Gridworld", living_reward=-0.04)
    planner = ValueIteration(env, gamma=0.99).learn()
    planner.save(tmp_path / "agent.npz")
    write_json_atomic(tmp_path / "config.json", {"env": "Gridworld", "living_reward": -0.04, "slip": None})
    summary = watch.main([str(tmp_path), "--headless", "--episodes", "2"])
    assert summary["episodes"] == 2 and all(r > 0 for r in summary["returns"])
    assert "ValueIteration on Gridworld: " in capsys.readouterr().out
    values, policy = watch.greedy_overlay(planner, 12, 4)
    decisions = ~planner.model.terminal
    np.testing.assert_allclose(values[decisions], planner.V[decisions])
    np.testing.assert_array_equal(policy[decisions], planner.policy[decisions])


def test_watch_dqn_checkpoint_panel_shows_its_q_values(watch, tmp_path):
    env = envs.make("RoomExit")
    agent = DQN(env, seed=0)
    (tmp_path / "checkpoints").mkdir()
    agent.save(tmp_path / "checkpoints" / "latest.npz")  # no config.json: env from the header
    summary = watch.main([str(tmp_path / "checkpoints" / "latest.npz"), "--headless", "--max-steps", "3"])
    assert summary["steps"] == 3
    kind, values = watch.action_values(agent, 2, 6)
    assert kind == "Q-values"
    np.testing.assert_allclose(values, agent.action_values(2))


def test_watch_policy_gradient_checkpoint_panel_shows_its_probabilities(watch, tmp_path):
    from agents.policy_gradient import PolicyGradient
    agent = PolicyGradient(envs.make("RoomExit"), seed=0)
    agent.save(tmp_path / "pg.npz")
    summary = watch.main([str(tmp_path / "pg.npz"), "--headless", "--max-steps", "3"])
    assert summary["steps"] == 3
    kind, values = watch.action_values(agent, 2, 6)
    assert kind == "action probabilities"
    assert values.shape == (6,) and values.sum() == pytest.approx(1.0, abs=1e-5)


def test_play_pong_headless_takes_no_op_without_keys(watch):
    summary = watch.main(["--env", "Pong", "--play", "--headless", "--max-steps", "4"])
    assert summary["steps"] == 4


def test_keys_pause_step_speed_restart_quit():
    viewer = Viewer("test", fps=4, headless=True)
    try:
        viewer.show(np.zeros((40, 60, 3), np.uint8), PanelInfo("agent", ["a", "b"], np.array([1.0, -2.0])))
        post = lambda key: pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=key))  # noqa: E731
        post(pygame.K_PLUS)
        assert viewer.wait() == "go" and viewer.fps == pytest.approx(6.0)
        post(pygame.K_MINUS), post(pygame.K_MINUS)
        assert viewer.wait() == "go" and viewer.fps == pytest.approx(4.0 / 1.5)
        post(pygame.K_SPACE)
        viewer.wait()
        assert viewer.paused
        post(pygame.K_r)
        assert viewer.wait() == "restart"
        post(pygame.K_ESCAPE)
        assert viewer.wait() == "quit"
        pygame.event.post(pygame.event.Event(pygame.QUIT))
        assert viewer.wait() == "quit"
        assert viewer.frames_shown == 1  # status redraws are not new frames
    finally:
        viewer.close()


@pytest.mark.parametrize("fps", [15, 30, 4])
def test_a_gif_plays_at_the_recorders_frame_rate(tmp_path, fps):
    from PIL import Image
    recorder = VideoRecorder(tmp_path / "x.gif", fps)
    for i in range(2 * fps):  # two seconds of frames, each different (a GIF merges equal ones)
        recorder.add(np.full((8, 8, 3), i, np.uint8))
    recorder.close()
    with Image.open(tmp_path / "x.gif") as gif:
        durations = [gif.seek(i) or gif.info["duration"] for i in range(gif.n_frames)]
    assert len(durations) == 2 * fps and sum(durations) == 2000


def test_recorder_refuses_other_formats_and_sizes(tmp_path):
    with pytest.raises(ValueError, match="must end in .mp4 or .gif"):
        VideoRecorder(tmp_path / "x.avi", 10)
    recorder = VideoRecorder(tmp_path / "x.mp4", 10)
    recorder.add(np.zeros((20, 30, 3), np.uint8))
    with pytest.raises(ValueError, match="frame of 32x20 pixels in a video of 30x20"):
        recorder.add(np.zeros((20, 32, 3), np.uint8))
    recorder.close()


@pytest.mark.parametrize("argv,message", [
    (["/no/such/run"], "no such run directory or checkpoint"),
    (["--env", "Gridworld", "--play"], "--play is for Pong"),
    (["--random"], "--random needs --env"),
    (["--env", "Gridworld", "--random", "--headless", "--record", "x.avi"], "must end in .mp4 or .gif"),
    (["--env", "Gridworld", "--random", "--env-kwargs", "[1]"], "must be a JSON object"),
    (["--env", "Gridworld", "--random", "--bogus"], "unrecognized arguments: --bogus"),
])
def test_watch_errors_are_one_line(watch, capsys, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        watch.main(argv)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_watch_refuses_a_checkpoint_for_another_env(watch, tmp_path, capsys):
    ValueIteration(envs.make("RoomExit"), gamma=0.8).learn().save(tmp_path / "agent.npz")
    with pytest.raises(SystemExit):
        watch.main([str(tmp_path / "agent.npz"), "--env", "Gridworld", "--headless"])
    assert "made for rlkit/RoomExit-v0" in capsys.readouterr().err
