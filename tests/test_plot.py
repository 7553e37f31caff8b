"""scripts/plot.py and rlkit.plotting's learning curves: PNG size, seed groups, one-line errors."""
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rlkit.plotting import mean_band
from rlkit.runs import write_json_atomic

ROOT = Path(__file__).resolve().parents[1]
DQN_COLUMNS = "step,episode,return,length,epsilon,loss,steps_per_second,wall_time"


@pytest.fixture
def plot(script):
    """scripts/plot.py as a module (conftest's ``script`` puts its folder on sys.path)."""
    return script("plot")


def make_run(folder: Path, config: dict | None = None, rows: int = 50, seed: int = 0,
             header: str = DQN_COLUMNS) -> Path:
    """A run directory with a synthetic DQN-style progress.csv (and config.json if given)."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    lines = [header]
    for i in range(rows):
        loss = "" if i < 5 else f"{rng.random():.4f}"  # DQN logs no loss before learning starts
        lines.append(f"{(i + 1) * 10},{i + 1},{i + rng.normal():.3f},10,0.1,{loss},100.0,{i * 0.5:.2f}")
    (folder / "progress.csv").write_text("\n".join(lines) + "\n")
    if config is not None:
        write_json_atomic(folder / "config.json", config)
    return folder


def test_synthetic_run_gives_a_png_of_the_expected_size(plot, tmp_path):
    run = make_run(tmp_path / "run")
    out = tmp_path / "figs" / "curve.png"
    curves = plot.main([str(run), "--smooth", "5", "--out", str(out)])
    assert Image.open(out).size == (800, 450)
    (x, y), = curves["run"]
    assert x[0] == 10 and len(y) == 50


@pytest.mark.parametrize("axis,metric,first_x,points", [("episodes", "return", 1, 50),
                                                        ("time", "loss", 2.5, 45)])
def test_x_axes_and_metrics(plot, tmp_path, axis, metric, first_x, points):
    run = make_run(tmp_path / "run")
    curves = plot.main([str(run), "--x", axis, "--metric", metric, "--out", str(tmp_path / "c.png")])
    (x, y), = curves["run"]
    assert x[0] == first_x and len(x) == points  # rows with an empty loss are left out


def test_tabular_runs_count_steps_from_episode_lengths(plot, tmp_path):
    run = tmp_path / "q"
    run.mkdir()
    (run / "progress.csv").write_text("episode,return,length,epsilon\n1,0.5,4,1.0\n2,0.7,3,0.9\n")
    (x, y), = plot.main([str(run), "--out", str(tmp_path / "c.png")])["q"]
    np.testing.assert_array_equal(x, [4, 7])


def test_seeds_of_one_setting_are_one_group(plot, tmp_path):
    base = {"script": "dqn", "env": "Gridworld", "hyperparams": {"learning_rate": 0.001}}
    # where and how each run wrote (overwrite, progress bar) does not split them
    runs = [make_run(tmp_path / f"s{seed}", {**base, "seed": seed, "run_dir": f"s{seed}", "overwrite": seed == 1,
                                             "no_progress": seed == 2}, seed=seed)
            for seed in range(3)]
    other = make_run(tmp_path / "lr", {**base, "hyperparams": {"learning_rate": 0.01}, "seed": 0})
    curves = plot.main([str(r) for r in runs + [other]] + ["--out", str(tmp_path / "c.png")])
    assert {label: len(group) for label, group in curves.items()} == {
        "dqn Gridworld (learning_rate=0.001)": 3, "dqn Gridworld (learning_rate=0.01)": 1}


def test_a_setting_is_named_by_its_resolved_values_once(plot, tmp_path):
    # config.json holds each flag as typed (None when unset) and under "hyperparams" its value
    base = {"script": "dqn", "env": "Gridworld"}
    unset = make_run(tmp_path / "unset", {**base, "gamma": None, "hyperparams": {"gamma": 0.99}})
    typed = make_run(tmp_path / "typed", {**base, "gamma": 0.99, "hyperparams": {"gamma": 0.99}}, seed=1)
    other = make_run(tmp_path / "other", {**base, "gamma": 0.9, "hyperparams": {"gamma": 0.9}})
    curves = plot.main([str(unset), str(typed), str(other), "--out", str(tmp_path / "c.png")])
    assert {label: len(group) for label, group in curves.items()} == {
        "dqn Gridworld (gamma=0.99)": 2, "dqn Gridworld (gamma=0.9)": 1}


def test_mean_band_uses_the_range_all_runs_cover():
    grid, mean, low, high = mean_band([(np.array([0.0, 10.0]), np.array([0.0, 10.0])),
                                       (np.array([2.0, 8.0]), np.array([4.0, 4.0]))], points=4)
    np.testing.assert_allclose(grid, [2, 4, 6, 8])
    np.testing.assert_allclose(mean, [3, 4, 5, 6])
    np.testing.assert_allclose(low, [2, 4, 4, 4])
    np.testing.assert_allclose(high, [4, 4, 6, 8])


@pytest.mark.parametrize("content,args,message", [
    ("", [], "no rows to plot"),
    (DQN_COLUMNS + "\n", [], "no rows to plot"),
    ("episode,sweep\n1,2\n", [], "no 'step' or 'return' column"),
    ("step,return\n1,2\n", ["--metric", "loss"], "no 'loss' column"),
    ("step,return\n1,2\n", ["--metric", "reward"], "unknown --metric 'reward'"),
    ("step,return\n1,2\n", ["--x", "hours"], "unknown --x 'hours'"),
    ("step,return\n1,2\n", ["--smooth", "x"], "--smooth: invalid int value: 'x'"),
    ("step,return\n1,2\n2,lots\n", [], "line 3: column 'return' holds 'lots', not a number"),
    (None, [], "no progress.csv here"),
])
def test_bad_input_is_one_line(plot, tmp_path, capsys, content, args, message):
    run = tmp_path / "run"
    run.mkdir()
    if content is not None:
        (run / "progress.csv").write_text(content)
    with pytest.raises(SystemExit) as exit_info:
        plot.main([str(run), "--out", str(tmp_path / "c.png")] + args)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "c.png").exists()
