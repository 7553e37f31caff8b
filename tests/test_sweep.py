"""scripts/sweep.py on rlkit/sweeps.py: a 2 x 2 sweep on local Ray and its summary against the
run folders, a resumed sweep that keeps its finished trials, one-line refusals, and
compare.py --ray giving the numbers of its in-process runs."""
import csv
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
ENVIRON = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}
# a few hundred CartPole steps, learning from step 100, two greedy episodes every 100 steps
TRAINING = ["--env", "CartPole-v1", "--steps", "300", "--eval-every", "100", "--eval-episodes", "2",
            "--learning-starts", "100", "--no-tensorboard"]
TRIALS = ["lr=1e-3,seed=0", "lr=1e-3,seed=1", "lr=5e-4,seed=0", "lr=5e-4,seed=1"]

needs_ray = pytest.mark.skipif(
    importlib.util.find_spec("ray") is None,
    reason="Ray is not installed (pip install -e '.[ray]', which the test extra pulls in)")


def sweep(*argv) -> subprocess.CompletedProcess:
    """scripts/sweep.py in its own process (so its Ray ends with it), on 2 CPUs."""
    return subprocess.run([sys.executable, "scripts/sweep.py", *map(str, argv), "--num-cpus", "2"],
                          cwd=ROOT, env=ENVIRON, capture_output=True, text=True, timeout=600)


def eval_rows(run: Path) -> list[dict]:
    """A run's eval.csv as read here, independently of rlkit."""
    with open(run / "eval.csv", newline="") as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]


def files_and_times(path: Path) -> dict:
    """Every file under ``path`` with its modification time (ns)."""
    return {p: p.stat().st_mtime_ns for p in sorted(path.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def swept(tmp_path_factory) -> Path:
    """Two learning rates x two seeds of train_dqn on CartPole, swept on local Ray."""
    out = tmp_path_factory.mktemp("sweep") / "lr"
    done = sweep("train_dqn", "--seeds", "0-1", "--grid", "lr=1e-3,5e-4", "--out", out, *TRAINING)
    assert done.returncode == 0, done.stdout + done.stderr
    return out


@needs_ray
def test_a_2x2_sweep_writes_four_runs_and_their_numbers(swept):
    assert sorted(p.name for p in (swept / "runs").iterdir()) == TRIALS
    summary = json.loads((swept / "summary.json").read_text())
    assert [c["configuration"] for c in summary["configurations"]] == ["lr=1e-3", "lr=5e-4"]
    for config in summary["configurations"]:
        finals = []
        for trial in config["trials"]:
            run = swept / "runs" / trial["trial"]
            rows = eval_rows(run)
            assert [r["step"] for r in rows] == [100, 200, 300]
            assert trial["status"] == "finished"
            assert (trial["final_step"], trial["final_return"]) == (300, rows[-1]["mean_return"])
            assert json.loads((run / "config.json").read_text())["seed"] == trial["seed"]
            finals.append(rows[-1]["mean_return"])
        assert config["final_return"] == {"mean": np.mean(finals), "std": np.std(finals),
                                          "min": min(finals), "max": max(finals)}
        assert config["statuses"] == {"finished": 2}
    table = (swept / "summary.md").read_text()
    first = summary["configurations"][0]["final_return"]
    assert f"| lr=1e-3 | {first['mean']:.3f} ± {first['std']:.3f} | {first['min']:.3f} |" in table
    assert Image.open(swept / "curves.png").size == (800, 450)


@needs_ray
def test_a_resumed_sweep_keeps_finished_trials_and_continues_the_others(swept, tmp_path):
    folder = tmp_path / "copy"
    shutil.copytree(swept, folder)  # the plan names no absolute path: a copy resumes
    killed = folder / "runs" / "lr=5e-4,seed=1"
    # as if the sweep had been killed while this trial ran: its checkpoint at step 200, no status
    (folder / "status" / "lr=5e-4,seed=1.json").unlink()
    plan = json.loads((folder / "sweep.json").read_text())
    flags = next(t["flags"] for t in plan["trials"] if t["name"] == killed.name)
    done = subprocess.run([sys.executable, "scripts/train_dqn.py", *flags, "--steps", "200",
                           "--seed", "1", "--threads", "1", "--no-progress", "--run-dir", killed,
                           "--overwrite"], cwd=ROOT, env=ENVIRON, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    before = eval_rows(killed)
    assert [r["step"] for r in before] == [100, 200]
    kept = {name: files_and_times(folder / "runs" / name) for name in TRIALS if name != killed.name}

    done = sweep("--resume", folder)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 trial(s) to run, 3 kept from before" in done.stdout
    assert {name: files_and_times(folder / "runs" / name) for name in kept} == kept
    assert "(DQN on CartPole-v1 (vector preset), 200 of 300 steps done)" in (
        folder / "logs" / f"{killed.name}.log").read_text()
    after = eval_rows(killed)
    assert after[:2] == before and after[-1]["step"] == 300
    summary = json.loads((folder / "summary.json").read_text())
    assert [c["statuses"] for c in summary["configurations"]] == [{"finished": 2}] * 2
    assert summary["configurations"][1]["trials"][1]["final_return"] == after[-1]["mean_return"]


def test_without_ray_one_line_says_what_to_install(script, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now raises ImportError
    with pytest.raises(SystemExit) as exit_info:
        script("sweep").main(["train_dqn", "--seeds", "0-1", *TRAINING])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert err == "error: sweeps run on Ray, which is not installed: pip install -e '.[ray]'\n"


@needs_ray
@pytest.mark.parametrize("argv,message", [
    (["train_dqn", "--grid", "seed=1,2"], "--grid 'seed=1,2': seed is set by the sweep itself"),
    (["train_dqn", "--seed", "3"], "--seed is set by the sweep for each trial; use --seeds"),
    (["train_dqn", "--seeds", "3-x"], "--seeds '3-x': expected seeds such as 0-7"),
    (["train_dqn", "--grid", "lr=loguniform:1e-4:1e-2"], "a distribution needs --search random"),
    (["train_dqn", "--grid", "lr=1e-3,1e-3"], "--grid 'lr=1e-3,1e-3': a value appears twice"),
    (["train_dqn", "--threads", "2", "--num-cpus", "1"], "--threads 2: each trial needs that many CPUs"),
    (["train_dqn", "--search", "random"], "--search random needs --samples N"),
    (["train_dqn", "--bogus", "1"], "unrecognized arguments: --bogus 1"),
    (["train_sac"], "unknown training script 'train_sac'"),
    (["--resume", "nowhere", "--grid", "lr=1"], "--resume continues the sweep as its sweep.json plans it"),
    (["--resume", "nowhere"], "nowhere/sweep.json does not exist: not a sweep folder"),
])
def test_refusals_are_one_line_before_ray_starts(script, tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        script("sweep").main([*argv, "--out", str(tmp_path / "s")] if argv[0] != "--resume" else argv)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "s").exists()


def test_random_search_draws_from_lists_and_ranges(script):
    sweep_script = script("sweep")
    grid = sweep_script.parse_grid(["lr=loguniform:1e-4:1e-2", "target_update=100,500",
                                    "batch_size=randint:16:64"], "random")
    configs = sweep_script.configurations(grid, "random", samples=20, seed=0)
    assert configs == sweep_script.configurations(grid, "random", samples=20, seed=0)
    assert all(1e-4 <= float(c["lr"]) <= 1e-2 and c["target_update"] in ("100", "500")
               and 16 <= int(c["batch_size"]) <= 64 for c in configs)
    assert sweep_script.flag_args({"lr": "1e-3", "double_dqn": "false"}) == [
        "--lr", "1e-3", "--no-double-dqn"]
    assert sweep_script.parse_seeds("0-2,7") == [0, 1, 2, 7]


@needs_ray
def test_compare_on_ray_gives_the_numbers_of_its_runs_here(script, tmp_path):
    compare = script("compare")
    argv = ["--env", "RoomExit", "--agents", "q_learning", "--seeds", "2", "--eval-episodes", "50"]
    here = compare.main([*argv, "--out", str(tmp_path / "here")])
    on_ray = compare.main([*argv, "--out", str(tmp_path / "ray"), "--ray"])
    for a, b in zip(here["q_learning"], on_ray["q_learning"], strict=True):
        assert (a.final_return, a.share, a.first_step) == (b.final_return, b.share, b.first_step)
        np.testing.assert_array_equal(a.curve, b.curve)
    rows = [(tmp_path / where / "table.md").read_text().splitlines()[4].split(" | ")[:4]
            for where in ("here", "ray")]
    assert rows[0] == rows[1]


@needs_ray
def test_a_dashboard_ray_cannot_start_is_one_line(script, tmp_path, monkeypatch, capsys):
    import ray

    def init(*args, include_dashboard=False, **kwargs):  # as Ray 2.60 without ray[default]
        if include_dashboard:
            raise Exception("Cannot include dashboard with missing packages.")
        raise AssertionError("only the dashboard's start is under test")
    monkeypatch.setattr(ray, "init", init)
    with pytest.raises(SystemExit) as exit_info:
        script("sweep").main(["train_dqn", "--seeds", "0", "--dashboard", "--out", str(tmp_path / "s"),
                              *TRAINING])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and len(err.strip().splitlines()) == 1
    assert "pip install 'ray[default]==2.60.*'" in err and "waits in" in err


def test_a_failed_trials_last_evaluation_is_no_final_evaluation():
    from rlkit.sweeps import _config_summary

    def trial(seed, status, final):
        return {"seed": seed, "status": status, "final_return": final, "steps_to_threshold": None,
                "wall_time": 1.0}
    summary = _config_summary("lr=1e-3", [trial(0, "finished", 100.0), trial(1, "error", 300.0)], None)
    assert summary["final_return"]["mean"] == 100.0 and summary["statuses"] == {"finished": 1, "error": 1}
