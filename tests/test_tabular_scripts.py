"""scripts/train_q.py, scripts/solve_mdp.py and scripts/bench_tabular.py, end to end."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from agents.planning import PolicyIteration, ValueIteration
from agents.q_learning import QLearning
from rlkit.runs import read_csv

ROOT = Path(__file__).resolve().parents[1]


def test_train_q_book_command_line_as_in_the_issue(tmp_path):
    run = tmp_path / "run"
    out = subprocess.run(
        [sys.executable, "scripts/train_q.py", "--env", "RoomExit", "--gamma", "0.8", "--rule",
         "book", "--episodes", "1000", "--run-dir", str(run)],
        cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert "     3 |   0 400 256   0 400   0" in out          # raw table row
    assert "     3 |    0   80 51.2    0   80    0" in out    # normalised row
    assert "  2: 2 -> 3 -> 1 -> 5" in out
    rows = read_csv(run / "progress.csv")
    assert len(rows) == 1000 and list(rows[0]) == ["episode", "return", "length", "epsilon"]
    assert all(r["return"] == "100.0" for r in rows)  # every book episode ends at the goal
    q = np.load(run / "q_table.npy", allow_pickle=False)
    assert q.max() == pytest.approx(500)
    config = json.loads((run / "config.json").read_text())
    assert config["hyperparams"]["alpha"] == 1.0 and config["rule"] == "book"
    np.testing.assert_array_equal(QLearning.load(run / "agent.npz").q_table, q)


def test_train_q_td_on_a_gymnasium_id(script, tmp_path, capsys):
    agent = script("train_q").main(["--env", "Taxi-v4", "--episodes", "50", "--alpha",
                                    "0.5", "--seed", "3", "--run-dir", str(tmp_path)])
    assert agent.rule == "td" and agent.alpha == 0.5 and agent.episodes_done == 50
    out = capsys.readouterr().out
    assert "Q-learning (td rule, gamma 0.99, alpha 0.5) on Taxi-v4, 50 episodes" in out
    assert "(500 states: table saved, not printed)" in out
    assert len(read_csv(tmp_path / "progress.csv")) == 50


ARROWS_MINUS_0_04 = """Policy:
  →   →   →  +1
  ↑   #   ↑  -1
  ↑   ←   ←   ←"""


@pytest.mark.parametrize("method,cls", [("value", ValueIteration), ("policy", PolicyIteration)])
def test_solve_mdp_gridworld_prints_values_and_arrows(script, tmp_path, capsys, method, cls):
    planner = script("solve_mdp").main(["--env", "Gridworld", "--living-reward", "-0.04",
                                        "--gamma", "1", "--method", method,
                                        "--run-dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert "  0.852   0.908   0.958      +1" in out and "  0.802       #   0.700      -1" in out
    assert ARROWS_MINUS_0_04 in out
    assert (tmp_path / "solution.txt").read_text() in out
    assert isinstance(planner, cls)
    np.testing.assert_array_equal(cls.load(tmp_path / "agent.npz").policy, planner.policy)
    assert len(read_csv(tmp_path / "progress.csv")) == len(planner.history)


def test_solve_mdp_lists_a_world_that_is_not_a_grid(script, tmp_path, capsys):
    script("solve_mdp").main(["--env", "RoomExit", "--gamma", "0.8", "--method", "policy",
                              "--run-dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert "     2 |    64.0000 | 3 (go to room 3)" in out
    assert "     5 |     0.0000 | - (terminal)" in out


@pytest.mark.parametrize("name,argv,message", [
    ("solve_mdp", ["--env", "NoSuchWorld"], "cannot make env 'NoSuchWorld': unknown environment"),
    ("solve_mdp", ["--env", "CartPole-v1"], "need a Discrete observation space"),
    ("solve_mdp", ["--env", "FrozenLake-v1", "--slip", "0.1"], "unexpected keyword argument"),
    ("solve_mdp", ["--env", "Gridworld", "--living-reward", "0.1", "--gamma", "1"],
     "did not converge"),
    ("train_q", ["--env", "FrozenLake-v1", "--rule", "book"], "needs the env's reward matrix R"),
    ("train_q", ["--env", "Gridworld", "--gamma", "2"], "gamma must be in [0, 1]"),
])
def test_scripts_fail_with_one_clear_line(script, tmp_path, capsys, name, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        script(name).main(argv + ["--run-dir", str(tmp_path / "run")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err


def test_bench_tabular_small_run(script, tmp_path, capsys):
    result = script("bench_tabular").main(["--size", "20", "--loop-sweeps", "1",
                                           "--out", str(tmp_path / "tabular.json")])
    assert result["world"]["states"] == 400
    assert result["max_abs_difference_loop_vs_vectorised"] < 1e-12
    assert json.loads((tmp_path / "tabular.json").read_text())["sweeps"] == result["sweeps"]
