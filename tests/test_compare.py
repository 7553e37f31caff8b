"""scripts/compare.py: RoomExit end to end in under a minute, learners-only worlds, the judge."""
import json
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import envs
from agents.planning import ValueIteration

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def compare(script):
    """scripts/compare.py as a module (conftest's ``script`` puts its folder on sys.path)."""
    return script("compare")


def test_room_exit_in_under_a_minute_every_agent_optimal(compare, tmp_path, capsys):
    start = time.perf_counter()
    results = compare.main(["--env", "RoomExit", "--out", str(tmp_path)])
    assert time.perf_counter() - start < 60
    assert set(results) == {"value_iteration", "q_learning", "dqn", "pg"}
    assert [len(runs) for runs in results.values()] == [1, 3, 3, 3]
    for name, runs in results.items():
        for run in runs:
            assert run.share == 1.0, name
            assert run.final_return == 100.0, name
            assert run.first_time is not None, name
    table = (tmp_path / "table.md").read_text()
    assert "| q_learning | 100.000 ± 0.000 | 100% |" in table and "(3/3 seeds)" in table
    assert table.split("\n\n")[1] in capsys.readouterr().out  # the table is printed too
    assert Image.open(tmp_path / "curves.png").size == (800, 450)
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["optimal_return"] == 100.0 and len(saved["agents"]["dqn"]) == 3


def test_world_without_a_model_compares_learners_only(compare, tmp_path, capsys):
    results = compare.main(["--env", "CartPole-v1", "--agents", "value_iteration,dqn", "--seeds", "1",
                            "--steps", "200", "--eval-episodes", "2", "--out", str(tmp_path)])
    assert list(results) == ["dqn"] and results["dqn"][0].share is None
    assert "publishes no model P: comparing learners only" in capsys.readouterr().out
    assert "| n/a | n/a | n/a |" in (tmp_path / "table.md").read_text()


def test_judge_counts_ties_as_optimal(compare):
    planner = ValueIteration(envs.make("RoomExit"), gamma=0.8).learn()
    judge = compare.Judge.from_planner(planner)
    # room 3 -> 1 and room 3 -> 4 are worth 80 each; room 5 is terminal and not judged
    np.testing.assert_array_equal(np.flatnonzero(judge.optimal[3]), [1, 4])
    assert not judge.states[5] and judge.states[:5].all()

    class Fixed:
        def __init__(self, actions):
            self.actions = actions

        def predict(self, s):
            return self.actions[s]

    assert judge.check(Fixed([4, 5, 3, 4, 5, 5]), step=7) == 1.0 and judge.first_step == 7
    assert judge.share(Fixed([4, 3, 3, 1, 5, 5])) == 0.8  # room 1 -> 3 is not the way out


@pytest.mark.parametrize("argv,message", [
    (["--agents", "sarsa"], "unknown agent 'sarsa'"),
    (["--env", "Gridworld", "--env-kwargs", '{"grid": ["..G", "S.X"]}'], "unknown character 'X'"),
    (["--env-kwargs", "[1]"], "must be a JSON object"),
    (["--eval-episodes", "0"], "--eval-episodes >= 1"),
    (["--bogus"], "unrecognized arguments: --bogus"),
])
def test_errors_are_one_line(compare, capsys, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        compare.main(argv)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and message in err and len(err.strip().splitlines()) == 1
