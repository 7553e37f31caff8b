"""Plot learning curves of one or more runs from their progress.csv.

    python scripts/plot.py RUN_DIR [RUN_DIR ...] [--x steps|episodes|time]
                           [--metric return|loss|length] [--smooth K] [--out FILE.png] [--show]

Each run is drawn raw (faint) and smoothed (bold: mean of the last K values). Runs whose
config.json differ only in the seed are one setting: drawn as the mean of their smoothed
curves with the min-max band shaded. The legend names each setting by the config values
that tell it apart. x: ``steps`` is the ``step`` column (or, for tabular runs that log none,
the running sum of ``length``), ``episodes`` the ``episode`` column, ``time`` ``wall_time``
(seconds). The figure is 800x450 pixels, written with matplotlib's Agg backend (no display
needed) to --out (default ``<metric>-vs-<x>.png`` here); --show also opens a window.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

import numpy as np

from _tabular import ArgumentParser, fail

from rlkit.plotting import learning_curves, plt
from rlkit.runs import read_csv, read_json

X_AXES = {"steps": "step", "episodes": "episode", "time": "wall_time"}
X_LABELS = {"steps": "environment steps", "episodes": "episodes", "time": "wall time (s)"}
METRICS = ("return", "loss", "length")
# config.json entries that differ between seeds of one setting, or that do not change what a run
# learns or how long it takes ("resumes" logs what a resume changed, and the changed values are
# in the settings themselves; the others are where and how a run writes; the thread count stays
# a setting: wall-time curves depend on it)
NOT_A_SETTING = ("seed", "run_dir", "resume", "resumes", "overwrite", "no_progress",
                 "no_tensorboard", "save_replay")
GUI_BACKENDS = ("qtagg", "gtk4agg", "gtk3agg", "tkagg", "wxagg", "macosx")


def parse_args(argv=None) -> argparse.Namespace:
    p = ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run directories with a progress.csv")
    # checked by hand rather than with argparse choices: a bad value is then one line, not two
    p.add_argument("--x", default="steps", help="steps (default), episodes or time")
    p.add_argument("--metric", default="return", help="return (default), loss or length")
    p.add_argument("--smooth", type=int, default=20, help="values in the moving average (default 20)")
    p.add_argument("--out", help="PNG to write (default: <metric>-vs-<x>.png; with --show: none)")
    p.add_argument("--show", action="store_true", help="open the figure in a window")
    p.add_argument("--title", default="", help="figure title")
    args = p.parse_args(argv)
    if args.x not in X_AXES:
        fail(f"unknown --x {args.x!r}: choose one of {', '.join(X_AXES)}")
    if args.metric not in METRICS:
        fail(f"unknown --metric {args.metric!r}: choose one of {', '.join(METRICS)}")
    if args.smooth < 1:
        fail(f"--smooth must be at least 1, got {args.smooth}")
    return args


def _number(text: str, path: Path, line: int, column: str) -> float:
    """A CSV cell as a float; an empty cell is NaN (e.g. no loss before learning starts)."""
    if text in ("", None):
        return math.nan
    try:
        return float(text)
    except ValueError:
        fail(f"{path}, line {line}: column {column!r} holds {text!r}, not a number")


def read_curve(run: Path, x: str, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """(x (N,), metric (N,)) of a run's progress.csv, rows without a finite value dropped."""
    path = run / "progress.csv"
    if not path.is_file():
        fail(f"{run}: no progress.csv here (expected a run directory written by a training script)")
    rows = read_csv(path)
    if not rows:
        fail(f"{path}: no rows to plot (the file is empty or holds only a header)")
    columns = list(rows[0])
    x_column = X_AXES[x]
    if x == "steps" and "step" not in columns and "length" in columns:
        x_column = "length"  # summed below: tabular runs log episode lengths, not steps
    missing = [c for c in (x_column, metric) if c not in columns]
    if missing:
        fail(f"{path}: no {' or '.join(map(repr, missing))} column for --x {x} --metric {metric}; "
             f"it has {', '.join(columns)}")
    # line numbers as an editor shows them: the header is line 1
    xs = np.array([_number(r[x_column], path, i + 2, x_column) for i, r in enumerate(rows)])
    ys = np.array([_number(r[metric], path, i + 2, metric) for i, r in enumerate(rows)])
    if x_column == "length":
        xs = np.cumsum(xs)
    keep = np.isfinite(xs) & np.isfinite(ys)
    if not keep.any():
        fail(f"{path}: column {metric!r} holds no numbers to plot")
    return xs[keep], ys[keep]


def _flat(config: dict, prefix: str = "") -> dict:
    """{"a": {"b": 1}} -> {"a.b": 1}, without the entries in NOT_A_SETTING, and without a flag
    whose resolved value is under "hyperparams" (as typed it is None when it was left unset,
    so the same setting would differ, and a legend name it twice)."""
    resolved = config.get("hyperparams") if not prefix else None
    resolved = resolved if isinstance(resolved, dict) else {}
    out = {}
    for key, value in config.items():
        if key in NOT_A_SETTING or key in resolved:
            continue
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def group_runs(runs: list[Path]) -> dict[str, list[Path]]:
    """Runs grouped by setting (config.json without the seed), each named for the legend.

    A setting is named "<script> <env>", followed by up to three config values that tell it
    apart from other settings of the same script and env. A run without config.json is a
    setting of its own, named by its folder.
    """
    settings: dict[str, tuple[dict | None, list[Path]]] = {}
    for run in runs:
        config = read_json(run / "config.json") if (run / "config.json").is_file() else None
        key = json.dumps(_flat(config), sort_keys=True, default=str) if config else str(run)
        settings.setdefault(key, (None if config is None else _flat(config), []))[1].append(run)

    def base(flat: dict) -> str:
        return " ".join(str(flat[k]) for k in ("script", "env") if k in flat)

    groups: dict[str, list[Path]] = {}
    for flat, members in settings.values():
        if flat is None or not base(flat):
            label = members[0].name
        else:
            label = base(flat)
            peers = [other for other, _ in settings.values() if other is not None and base(other) == label]
            differing = sorted({k for other in peers for k in other if other.get(k) != flat.get(k)})[:3]
            if differing:
                label += " (" + ", ".join(f"{k.rsplit('.', 1)[-1]}={flat.get(k)}" for k in differing) + ")"
        while label in groups:  # settings that differ only in keys not shown
            label += "'"
        groups[label] = members
    return groups


def _open_gui() -> None:
    """Switch matplotlib to the first GUI backend that starts; exit with one line if none does."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        fail("--show needs a display (DISPLAY is not set); write a file with --out instead")
    for backend in GUI_BACKENDS:
        try:
            plt.switch_backend(backend)
            return
        except (ImportError, RuntimeError, ValueError):
            continue
    fail(f"--show found no GUI backend for matplotlib ({', '.join(GUI_BACKENDS)}); use --out instead")


def main(argv=None) -> dict[str, list[tuple[np.ndarray, np.ndarray]]]:
    args = parse_args(argv)
    runs = [Path(r) for r in args.runs]
    for run in runs:
        if not run.is_dir():
            fail(f"{run}: no such run directory")
    try:
        groups = group_runs(runs)
    except ValueError as e:  # a config.json that is not JSON
        fail(e)
    curves = {label: [read_curve(run, args.x, args.metric) for run in members]
              for label, members in groups.items()}
    if args.show:
        _open_gui()  # before the figure exists: switching backends closes open figures
    try:
        fig = learning_curves(curves, xlabel=X_LABELS[args.x], ylabel=args.metric,
                              title=args.title, smooth=args.smooth)
    except ValueError as e:  # seeds that share no x range
        fail(e)
    out = args.out or (None if args.show else f"{args.metric}-vs-{args.x}.png")
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out)
        print(f"wrote {out}")
    if args.show:
        plt.show()
    plt.close(fig)
    return curves


if __name__ == "__main__":
    main()
