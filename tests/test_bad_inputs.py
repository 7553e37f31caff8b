"""Bad inputs, a table each: every script refusal is exit status 2, exactly one ``error:`` line
and no traceback (and no run folder left behind); every API refusal is a ValueError whose
message names the setting, in the one shape ``<name> must be <range>, got <value>``."""
import dataclasses
import importlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import envs
from agents.actor_critic import PRESETS as A2C_PRESETS
from agents.actor_critic import ActorCritic, ActorCriticConfig
from agents.dqn import PRESETS as DQN_PRESETS
from agents.dqn import DQN, DQNConfig
from agents.policy_gradient import PRESETS as PG_PRESETS
from agents.policy_gradient import PolicyGradient, PolicyGradientConfig
from agents.q_learning import QLearning
from agents.training_run import TrainingRun, evaluate
from rlkit import DeviceUnavailableError, cuda_available, nn, optim
from rlkit.checks import check_fields

ROOT = Path(__file__).resolve().parents[1]
ROOM = ["--env", "RoomExit", "--no-progress"]
CARTPOLE = ["--env", "CartPole-v1", "--no-progress"]


# ---------------------------------------------------------------- the scripts

def non_empty(folder: Path) -> None:
    folder.mkdir()
    (folder / "config.json").write_text("{}")


def a_file(path: Path) -> None:
    path.write_text("")


def corrupt_run(folder: Path) -> None:
    folder.mkdir()
    (folder / "config.json").write_text("{not json")


def not_a_run(folder: Path) -> None:
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")


def a2c_run(folder: Path) -> None:
    """A finished 64-step A2C run on CartPole-v1 (the script fixture put scripts/ on sys.path)."""
    importlib.import_module("train_pg").main(
        CARTPOLE + ["--algo", "a2c", "--n-envs", "2", "--n-steps", "8", "--steps", "64",
                    "--eval-episodes", "1", "--no-tensorboard", "--run-dir", str(folder)])


def dqn_run(folder: Path) -> None:
    """A finished 50-step DQN run on RoomExit."""
    importlib.import_module("train_dqn").main(
        ROOM + ["--steps", "50", "--eval-episodes", "1", "--no-tensorboard",
                "--run-dir", str(folder)])


# (script, flags, what the error line must say, how to prepare RUN first (None: RUN is missing
# and must still be missing afterwards)); "RUN" in the flags and the message is the test's folder
SCRIPT_CASES = [
    # the run's schedule
    ("train_dqn", ROOM + ["--steps", "-5"], "total_steps must be an integer >= 0, got -5", None),
    ("train_dqn", ROOM + ["--eval-episodes", "0"], "eval_episodes must be an integer >= 1", None),
    ("train_dqn", ROOM + ["--eval-episodes", "-1"], "eval_episodes must be an integer >= 1", None),
    ("train_dqn", ROOM + ["--eval-every", "-1"], "eval_every must be", None),
    ("train_dqn", ROOM + ["--checkpoint-every", "-1"], "checkpoint_every must be", None),
    ("train_dqn", ROOM + ["--max-eval-steps", "0"], "max_eval_steps must be an integer >= 1", None),
    ("train_dqn", ROOM + ["--steps", "abc"], "argument --steps: invalid int value: 'abc'", None),
    ("train_dqn", ROOM + ["--env-kwargs", "[1, 2]"], "must be a JSON object", None),
    ("train_dqn", ROOM + ["--env-kwargs", "{max: 1}"], "not valid JSON", None),
    # DQN's hyper-parameters
    ("train_dqn", ROOM + ["--batch-size", "0"], "batch_size must be an integer >= 1, got 0", None),
    ("train_dqn", ROOM + ["--train-freq", "0"], "train_freq must be an integer >= 1", None),
    ("train_dqn", ROOM + ["--target-update", "0"], "target_update must be an integer >= 1", None),
    ("train_dqn", ROOM + ["--hidden-sizes", "0"], "hidden_sizes must be a list of integers >= 1", None),
    ("train_dqn", ROOM + ["--gamma", "5"], "gamma must be a number in [0, 1], got 5.0", None),
    ("train_dqn", ROOM + ["--tau", "0"], "tau must be a number in (0, 1]", None),
    ("train_dqn", ROOM + ["--eps-start", "2"], "eps_start must be a number in [0, 1]", None),
    ("train_dqn", ROOM + ["--lr", "0"], "learning_rate must be a number > 0", None),
    ("train_dqn", ROOM + ["--lr", "nan"], "learning_rate must be a number > 0, got nan", None),
    ("train_dqn", ROOM + ["--loss", "l3"], "loss must be one of 'huber', 'mse'", None),
    ("train_dqn", ROOM + ["--priority-beta", "2"], "priority_beta must be a number in [0, 1]", None),
    ("train_dqn", ROOM + ["--learning-starts", "20000"], "learning_starts must be <= buffer_size", None),
    # policy gradients
    ("train_pg", CARTPOLE + ["--gamma", "2"], "gamma must be a number in [0, 1], got 2.0", None),
    ("train_pg", CARTPOLE + ["--batch-episodes", "0"], "batch_episodes must be an integer >= 1", None),
    ("train_pg", CARTPOLE + ["--activation", "sigmoid"], "activation must be one of", None),
    ("train_pg", CARTPOLE + ["--algo", "a2c", "--gae-lambda", "1.5"],
     "gae_lambda must be a number in [0, 1], got 1.5", None),
    ("train_pg", CARTPOLE + ["--algo", "a2c", "--n-envs", "0"], "num_envs must be an integer >= 1", None),
    ("train_pg", CARTPOLE + ["--steps", "-5"], "total_steps must be an integer >= 0", None),
    ("train_pg", CARTPOLE + ["--env-kwargs", "7"], "must be a JSON object", None),
    ("train_q", ["--episodes", "-5"], "episodes must be an integer >= 0, got -5", None),
    # a planner that cannot converge (reward forever, undiscounted): found before any folder is made
    ("solve_mdp", ["--env", "Gridworld", "--living-reward", "1", "--gamma", "1"],
     "value iteration did not converge", None),
    # the run folder: a new run never mixes with an old one; --resume needs a run
    ("train_dqn", ROOM, "is not empty: continue that run with --resume", non_empty),
    ("train_pg", CARTPOLE, "is not empty: continue that run with --resume", non_empty),
    ("train_q", [], "is not empty: start afresh there with --overwrite", non_empty),
    ("solve_mdp", [], "is not empty: start afresh there with --overwrite", non_empty),
    ("train_dqn", ROOM + ["--overwrite"], "not a run folder, so it is not overwritten", not_a_run),
    ("train_dqn", ROOM, "cannot use", a_file),
    ("train_pg", CARTPOLE, "cannot use", a_file),
    ("train_q", [], "cannot use", a_file),
    ("solve_mdp", [], "cannot use", a_file),
    ("train_dqn", ["--resume", "RUN"], "not a run folder", None),
    ("train_pg", ["--resume", "RUN"], "not a run folder", a_file),
    ("train_dqn", ["--resume", "RUN"], "cannot read its config", corrupt_run),
    ("train_dqn", ["--resume", "RUN", "--overwrite"], "give one of them", non_empty),
    ("train_pg", ["--resume", "RUN", "--run-dir", "elsewhere"],
     "--run-dir elsewhere: a resume continues in its own folder", a2c_run),
    # a resume cannot change what the run is, nor what shapes its network and saved state
    ("train_pg", ["--resume", "RUN", "--algo", "reinforce"],
     "--algo reinforce: RUN was made with a2c, and a resume cannot change it", a2c_run),
    ("train_pg", ["--resume", "RUN", "--env", "Acrobot-v1"], "was made with CartPole-v1", a2c_run),
    ("train_pg", ["--resume", "RUN", "--n-envs", "4"], "--n-envs 4: RUN was made with 2", a2c_run),
    ("train_pg", ["--resume", "RUN", "--hidden-sizes", "32"],
     "hidden_sizes cannot change on resume: the checkpoint was made with [64, 64], not [32]",
     a2c_run),
    ("train_dqn", ["--resume", "RUN", "--buffer-size", "500"],
     "buffer_size cannot change on resume", dqn_run),
    ("train_dqn", ["--resume", "RUN", "--seed", "7"], "seed cannot change on resume", dqn_run),
]


@pytest.mark.parametrize("name,flags,message,prepare", SCRIPT_CASES,
                         ids=[f"{c[0]} {' '.join(c[1])} {c[3].__name__ if c[3] else ''}".strip()
                              for c in SCRIPT_CASES])
def test_scripts_refuse_with_one_error_line(script, tmp_path, capsys, name, flags, message, prepare):
    run = tmp_path / "run"
    if prepare is not None:
        prepare(run)
    before = sorted(run.rglob("*")) if run.is_dir() else None
    argv = [str(run) if flag == "RUN" else flag for flag in flags]
    if "--resume" not in flags:
        argv += ["--run-dir", str(run)]
    with pytest.raises(SystemExit) as exit_info:
        script(name).main(argv)
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert exit_info.value.code == 2 and "Traceback" not in err
    assert len(errors) == 1 and message.replace("RUN", str(run)) in errors[0], err
    if prepare is None:
        assert not run.exists()                 # a refused run leaves no folder
    elif before is not None:
        assert sorted(run.rglob("*")) == before  # nor touches the one that was there


def test_a_refusal_is_one_line_for_the_real_process_too(tmp_path):
    result = subprocess.run([sys.executable, "scripts/train_dqn.py", *ROOM, "--batch-size", "0",
                             "--run-dir", str(tmp_path / "run")],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip() == "error: batch_size must be an integer >= 1, got 0"


@pytest.mark.skipif(cuda_available(), reason="a GPU answers here: RLKIT_DEVICE=cuda is no error")
def test_rlkit_device_is_honoured_when_no_device_is_given(script, tmp_path, monkeypatch, capsys):
    """The configs' device defaulted to "cpu", so RLKIT_DEVICE=cuda ran on the CPU without a
    word; unset, it now comes from the variable, and without a GPU that is the usual error:
    for a new agent, a loaded one (the checkpoint's device is not used) and both scripts."""
    dqn_run(tmp_path / "dqn")
    monkeypatch.setenv("RLKIT_DEVICE", "cuda")
    latest = tmp_path / "dqn" / "checkpoints" / "latest.npz"
    for make in (lambda: DQN(envs.make("RoomExit")),
                 lambda: PolicyGradient(envs.make("CartPole-v1")),
                 lambda: DQN.load(latest, envs.make("RoomExit"))):
        with pytest.raises(DeviceUnavailableError, match="device 'cuda' was requested"):
            make()
    capsys.readouterr()
    for name, argv in (("train_dqn", ROOM + ["--run-dir", str(tmp_path / "new")]),
                       ("train_pg", CARTPOLE + ["--run-dir", str(tmp_path / "new")]),
                       ("train_dqn", ["--resume", str(tmp_path / "dqn")])):
        with pytest.raises(SystemExit) as exit_info:
            script(name).main(argv)
        err = capsys.readouterr().err
        errors = [line for line in err.splitlines() if line.startswith("error:")]
        assert exit_info.value.code == 2 and "Traceback" not in err
        assert len(errors) == 1 and "device 'cuda' was requested" in errors[0], err
        assert not (tmp_path / "new").exists()


def test_overwrite_replaces_the_earlier_run(script, tmp_path):
    run = tmp_path / "run"
    flags = ["--env", "RoomExit", "--run-dir", str(run)]
    script("train_q").main(flags + ["--episodes", "20"])
    (run / "extra.txt").write_text("from the first run")
    script("train_q").main(flags + ["--episodes", "10", "--overwrite"])
    assert not (run / "extra.txt").exists()
    assert json.loads((run / "config.json").read_text())["episodes"] == 10
    assert len((run / "progress.csv").read_text().splitlines()) == 11  # header + 10 episodes


# ---------------------------------------------------------------- the Python API

def room():
    return envs.make("RoomExit")


def cartpole():
    return envs.make("CartPole-v1")


def cartpoles():
    return envs.make_vec("CartPole-v1", 2)


def parameter():
    return [nn.Parameter(np.zeros(2, np.float32))]


# (what to call, the setting the message must name)
API_CASES = [
    (lambda: DQN(room(), batch_size=0), "batch_size"),
    (lambda: DQN(room(), batch_size=1.5), "batch_size"),
    (lambda: DQN(room(), tau=-1), "tau"),
    (lambda: DQN(room(), eps_start=2), "eps_start"),
    (lambda: DQN(room(), eps_end=-0.1), "eps_end"),
    (lambda: DQN(room(), eval_epsilon=1.5), "eval_epsilon"),
    (lambda: DQN(room(), gamma=5), "gamma"),
    (lambda: DQN(room(), train_freq=0), "train_freq"),
    (lambda: DQN(room(), target_update=0), "target_update"),
    (lambda: DQN(room(), n_step=0), "n_step"),
    (lambda: DQN(room(), learning_rate=0), "learning_rate"),
    (lambda: DQN(room(), adam_eps=0), "adam_eps"),
    (lambda: DQN(room(), priority_alpha=-1), "priority_alpha"),
    (lambda: DQN(room(), priority_beta=2), "priority_beta"),
    (lambda: DQN(room(), hidden_sizes=(64, 0)), "hidden_sizes"),
    (lambda: DQN(room(), network="huge"), "network"),
    (lambda: DQN(room(), loss="l1"), "loss"),
    (lambda: DQN(room(), optimizer="sgd"), "optimizer"),
    (lambda: DQN(room(), double_dqn="yes"), "double_dqn"),
    (lambda: DQN(room(), seed=-1), "seed"),
    (lambda: DQN(room(), buffer_size=0), "buffer_size"),
    (lambda: DQN(room(), learning_starts=500, buffer_size=100), "learning_starts"),
    (lambda: DQN(room(), max_grad_norm=-1), "max_grad_norm"),
    (lambda: DQN(room(), threads=-1), "threads"),
    (lambda: DQN(room()).learn(-10), "total_steps"),
    (lambda: PolicyGradient(cartpole(), gamma=2), "gamma"),
    (lambda: PolicyGradient(cartpole(), batch_episodes=0), "batch_episodes"),
    (lambda: PolicyGradient(cartpole(), bptt_steps=0), "bptt_steps"),
    (lambda: PolicyGradient(cartpole(), lstm_size=0), "lstm_size"),
    (lambda: PolicyGradient(cartpole(), activation="sigmoid"), "activation"),
    (lambda: PolicyGradient(cartpole(), rmsprop_decay=1.0), "rmsprop_decay"),
    (lambda: PolicyGradient(cartpole(), learning_rate=-1e-3), "learning_rate"),
    (lambda: PolicyGradient(cartpole(), reset_on_reward="yes"), "reset_on_reward"),
    (lambda: PolicyGradient(cartpole()).learn(-10), "total_steps"),
    (lambda: ActorCritic(cartpoles(), gae_lambda=1.5), "gae_lambda"),
    (lambda: ActorCritic(cartpoles(), n_steps=0), "n_steps"),
    (lambda: ActorCritic(cartpoles(), reward_scale=0), "reward_scale"),
    (lambda: ActorCritic(cartpoles(), entropy_coef=-0.1), "entropy_coef"),
    (lambda: envs.make_vec("CartPole-v1", 0), "num_envs"),
    (lambda: QLearning(room()).learn(-5), "episodes"),
    (lambda: optim.Adam(parameter(), betas=(2, 0)), "betas[0]"),
    (lambda: optim.Adam(parameter(), betas=(0.9, 1.0)), "betas[1]"),
    (lambda: optim.Adam(parameter(), eps=-1), "eps"),
    (lambda: optim.SGD(parameter(), momentum=-1), "momentum"),
    (lambda: optim.SGD(parameter(), weight_decay=-1), "weight_decay"),
    (lambda: optim.RMSProp(parameter(), alpha=1.5), "alpha"),
    (lambda: TrainingRun(None, 10, eval_episodes=0), "eval_episodes"),
    (lambda: TrainingRun(None, 10, max_eval_steps=0), "max_eval_steps"),
    (lambda: TrainingRun(None, -1), "total_steps"),
    (lambda: evaluate(None, room(), episodes=0), "episodes"),
]


@pytest.mark.parametrize("call,name", API_CASES, ids=[f"{i}-{c[1]}" for i, c in enumerate(API_CASES)])
def test_api_refuses_with_a_value_error_naming_the_setting(call, name):
    with pytest.raises(ValueError) as error:
        call()
    assert str(error.value).startswith(f"{name} must be"), str(error.value)


@pytest.mark.parametrize("config,presets", [(DQNConfig, DQN_PRESETS), (PolicyGradientConfig, PG_PRESETS),
                                            (ActorCriticConfig, A2C_PRESETS)])
def test_every_config_field_has_a_range_and_the_defaults_and_presets_are_in_it(config, presets):
    assert set(config.RULES) == {f.name for f in dataclasses.fields(config)}
    required = {f.name for f in dataclasses.fields(config) if f.default is dataclasses.MISSING}
    for name, preset in presets.items():
        assert required <= set(preset), f"preset {name} leaves {sorted(required - set(preset))} unset"
        config(**preset)  # the defaults under the preset pass their own checks


def test_a_field_without_a_rule_is_caught_when_the_config_is_made():
    @dataclasses.dataclass
    class Forgetful:
        size: int = 1

    with pytest.raises(KeyError, match="no rule for the field 'size'"):
        check_fields(Forgetful(), {})
