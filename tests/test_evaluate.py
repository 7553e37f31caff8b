"""scripts/evaluate.py: seeded, reproducible scores of a trained agent; one error line otherwise."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import envs
from agents.policy_gradient import PolicyGradient
from rlkit.runs import write_json_atomic

ROOT = Path(__file__).resolve().parents[1]
RUN_ENV_KWARGS = {"max_episode_steps": 5}  # the run's own env setting: evaluate must rebuild it
# (a CartPole pole takes more than 5 steps to fall, so every episode is cut by it)
ENVIRON = {**os.environ, "SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy", "OPENBLAS_NUM_THREADS": "1"}


@pytest.fixture
def evaluate(script):
    """scripts/evaluate.py as a module (conftest's ``script`` puts its folder on sys.path)."""
    return script("evaluate")


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory) -> Path:
    """A real DQN run folder: train_dqn.py on CartPole for 300 steps."""
    folder = tmp_path_factory.mktemp("runs") / "cartpole"
    done = subprocess.run(
        [sys.executable, "scripts/train_dqn.py", "--env", "CartPole-v1", "--steps", "300",
         "--learning-starts", "50", "--eval-every", "300", "--eval-episodes", "2",
         "--env-kwargs", json.dumps(RUN_ENV_KWARGS), "--run-dir", str(folder)],
        cwd=ROOT, env=ENVIRON, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert (folder / "checkpoints" / "best.npz").is_file()
    return folder


def run_evaluate(*argv) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "scripts/evaluate.py", *map(str, argv)], cwd=ROOT,
                          env=ENVIRON, capture_output=True, text=True, timeout=300)


def test_the_same_seed_gives_the_same_json(run_folder, tmp_path):
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    for out in (first, second):
        done = run_evaluate(run_folder, "--episodes", "5", "--seed", "7", "--epsilon", "0.3", "--json", out)
        assert done.returncode == 0, done.stderr
    assert first.read_text() == second.read_text()
    result = json.loads(first.read_text())
    assert result["episodes"] == len(result["returns"]) == len(result["lengths"]) == 5
    assert result["epsilon"] == 0.3 and result["seed"] == 7 and result["agent"] == "DQN"
    assert result["checkpoint"].endswith("checkpoints/best.npz")
    # a CartPole return is its length (reward 1 a step)
    assert result["returns"] == [float(n) for n in result["lengths"]]


def test_the_printed_statistics_are_those_of_the_listed_returns(run_folder):
    done = run_evaluate(run_folder, "--episodes", "6", "--seed", "1", "--epsilon", "0.5")
    assert done.returncode == 0, done.stderr
    found = re.findall(r"^episode (\d+): return (\S+) \((\d+) steps\)$", done.stdout, re.M)
    assert [int(i) for i, _, _ in found] == list(range(1, 7))
    returns = np.array([float(r) for _, r, _ in found])
    stats = re.search(r"^DQN on CartPole-v1: 6 episodes \(seed 1\): mean (\S+), std (\S+), "
                      r"min (\S+), max (\S+)$", done.stdout, re.M)
    assert stats, done.stdout
    mean, std, low, high = (float(v) for v in stats.groups())
    assert mean == pytest.approx(returns.mean(), rel=1e-5)
    assert std == pytest.approx(returns.std(), rel=1e-5, abs=1e-9)
    assert (low, high) == (returns.min(), returns.max())


def test_episodes_are_played_as_a_training_evaluation_plays_them(evaluate, run_folder, capsys):
    from agents.dqn import DQN
    from agents.training_run import play_evaluation
    summary = evaluate.main([str(run_folder), "--episodes", "4", "--seed", "11"])
    agent_env = envs.make("CartPole-v1", **RUN_ENV_KWARGS)
    agent = DQN.load(run_folder / "checkpoints" / "best.npz", agent_env)
    expected = play_evaluation(agent, agent_env, 4, seed=11)
    assert summary["returns"] == expected.returns.tolist()
    assert summary["lengths"] == expected.lengths.tolist()


def test_env_kwargs_reach_the_env_on_top_of_the_runs(evaluate, run_folder, capsys):
    summary = evaluate.main([str(run_folder), "--episodes", "3", "--seed", "0"])
    assert summary["lengths"] == [5, 5, 5]  # the run's own max_episode_steps
    summary = evaluate.main([str(run_folder), "--episodes", "3", "--seed", "0",
                             "--env-kwargs", '{"max_episode_steps": 3}'])
    assert summary["lengths"] == [3, 3, 3] and summary["env_kwargs"] == {"max_episode_steps": 3}
    # --max-steps cuts inside an episode and says so
    summary = evaluate.main([str(run_folder), "--episodes", "2", "--max-steps", "2"])
    assert summary["lengths"] == [2, 2] and summary["truncated"] == 2
    assert "cut at --max-steps 2" in capsys.readouterr().out


def test_an_episode_the_env_ended_on_the_last_allowed_step_is_not_labelled_cut(evaluate, run_folder, capsys):
    summary = evaluate.main([str(run_folder), "--episodes", "2", "--max-steps", "5"])
    assert summary["lengths"] == [5, 5] and summary["truncated"] == 0  # the run's own time limit
    assert "cut at" not in capsys.readouterr().out


def test_record_writes_every_frame(evaluate, run_folder, tmp_path, capsys):
    clip = tmp_path / "clip.gif"
    summary = evaluate.main([str(run_folder), "--episodes", "2", "--record", str(clip)])
    frames = 2 + sum(summary["lengths"])  # one a reset, one a step
    assert clip.is_file()
    assert f"recorded {frames} frames" in capsys.readouterr().out


@pytest.fixture(scope="module")
def policy_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("pg")
    PolicyGradient(envs.make("CartPole-v1"), seed=0).save(folder / "policy.npz")
    write_json_atomic(folder / "config.json", {"script": "pg-reinforce", "env": "CartPole-v1",
                                               "algo": "reinforce", "policy": None, "env_kwargs": None})
    return folder


BAD = [
    (["--episodes", "0"], "--episodes and --max-steps must be at least 1"),
    (["--max-steps", "0"], "--episodes and --max-steps must be at least 1"),
    (["--epsilon", "1.5"], "--epsilon must be in [0, 1]"),
    (["--env-kwargs", "[1]"], "must be a JSON object"),
    (["--env-kwargs", "{nope"], "not valid JSON"),
    (["--env-kwargs", '{"bogus": 1}'], "cannot make env 'CartPole-v1'"),
    (["--env", "RoomExit"], "made for CartPole-v1"),          # checkpoint and env do not match
    (["--record", "clip.avi"], "must end in .mp4 or .gif"),
    (["--bogus"], "unrecognized arguments: --bogus"),
]


@pytest.mark.parametrize("flags,message", BAD, ids=[" ".join(f) for f, _ in BAD])
def test_bad_inputs_are_one_error_line(evaluate, run_folder, capsys, flags, message):
    with pytest.raises(SystemExit) as exit_info:
        evaluate.main([str(run_folder), *flags])
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert exit_info.value.code == 2 and "Traceback" not in err
    assert len(errors) == 1 and message in errors[0], err


def test_epsilon_for_a_policy_agent_and_a_missing_source_are_one_error_line(evaluate, policy_folder,
                                                                           tmp_path, capsys):
    for argv, message in (([str(policy_folder), "--epsilon", "0.1"], "--epsilon is for DQN agents"),
                          ([str(tmp_path / "missing")], "no such run directory or checkpoint"),
                          ([str(tmp_path)], "holds no agent")):
        with pytest.raises(SystemExit) as exit_info:
            evaluate.main(argv)
        err = capsys.readouterr().err
        assert exit_info.value.code == 2 and err.count("error:") == 1 and message in err, err
    summary = evaluate.main([str(policy_folder), "--episodes", "2"])  # without --epsilon it plays
    assert summary["agent"] == "PolicyGradient" and summary["epsilon"] is None


def test_a_refusal_is_one_line_for_the_real_process(run_folder):
    done = run_evaluate(run_folder, "--env", "RoomExit")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().count("\n") == 0 and done.stderr.startswith("error: ")


def test_an_atari_run_is_scored_on_whole_games_whatever_its_training_settings(script):
    # a run trained with a life loss as its episodes' end and clipped rewards: evaluate.py and
    # watch.py build its env (run_env) without both, as train_dqn.py built its evaluation env
    run_env = script("_agents").run_env
    config = {"env": "Breakout", "script": "dqn",
              "env_kwargs": {"terminal_on_life_loss": True, "clip_rewards": True}}
    for asked, lives_left in (({}, 0), ({"terminal_on_life_loss": True}, 4)):  # asked: on top
        env = run_env("Breakout", config, asked)
        rng = np.random.default_rng(0)
        env.reset(seed=0)
        try:
            for _ in range(5_000):
                _, _, terminated, truncated, _ = env.step(int(rng.integers(env.action_space.n)))
                if terminated or truncated:
                    break
            assert terminated and env.unwrapped.ale.lives() == lives_left
        finally:
            env.close()


def test_a_lone_checkpoint_of_an_agent_trained_on_atari_vector_envs_is_played(evaluate, tmp_path):
    # the checkpoint names the game (the vector env's spec), not ale-py's vector env class
    from agents.actor_critic import ActorCritic
    venv = envs.make_vec("Pong", 2)
    try:
        ActorCritic(venv, seed=0, network="small").save(tmp_path / "a2c.npz")
    finally:
        venv.close()
    summary = evaluate.main([str(tmp_path / "a2c.npz"), "--episodes", "1", "--max-steps", "5"])
    assert summary["env"] == "ALE/Pong-v5" and summary["lengths"] == [5]


def test_ctrl_c_ends_an_evaluation_in_one_line(evaluate, run_folder, monkeypatch, capsys):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(evaluate, "play_evaluation", interrupted)
    with pytest.raises(SystemExit) as exit_info:
        try:
            evaluate.main([str(run_folder), "--episodes", "2"])
        except KeyboardInterrupt:  # failed, without ending the whole test session as it would
            pytest.fail("Ctrl+C went through evaluate.py")
    err = capsys.readouterr().err
    assert exit_info.value.code == 130 and err.strip() == "error: interrupted (Ctrl+C): no summary"
