"""Reward curves with matplotlib's Agg backend: never needs a display."""
from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402


def moving_average(values, window: int) -> np.ndarray:
    """Trailing mean over up to ``window`` values (shorter at the start), same length as input."""
    values = np.asarray(values, dtype=float)
    if window <= 1 or len(values) == 0:
        return values
    sums = np.cumsum(np.insert(values, 0, 0.0))
    counts = np.minimum(np.arange(1, len(values) + 1), window)
    return (sums[1:] - sums[np.maximum(np.arange(1, len(values) + 1) - window, 0)]) / counts


def reward_curve(steps, returns, path: str | os.PathLike, title: str = "", smooth: int = 20,
                 eval_steps=None, eval_returns=None) -> None:
    """Episode returns against environment steps (raw faint, smoothed bold), evaluations as dots.

    Writes a PNG to ``path``.
    """
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
    ax.plot(steps, returns, color="tab:blue", alpha=0.25, linewidth=0.8, label="episode return")
    ax.plot(steps, moving_average(returns, smooth), color="tab:blue", linewidth=2,
            label=f"mean of last {smooth}")
    if eval_steps is not None and len(eval_steps):
        ax.plot(eval_steps, eval_returns, "o-", color="tab:orange", label="evaluation (greedy)")
    ax.set_xlabel("environment steps")
    ax.set_ylabel("return")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="best")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def mean_band(runs, points: int = 200) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Mean and min-max band of several curves on one x grid.

    runs: [(x (N_i,), y (N_i,)), ...], each x increasing. The grid spans the x range that every
    run covers (largest first x to smallest last x), so no curve is extrapolated.
    Returns (grid, mean, low, high), each of shape (points,). Raises ValueError if the runs
    share no x range.
    """
    start = max(float(x[0]) for x, _ in runs)
    stop = min(float(x[-1]) for x, _ in runs)
    if start > stop:
        raise ValueError(f"the runs share no x range (one ends at {stop:g} before another starts "
                         f"at {start:g})")
    grid = np.linspace(start, stop, points)
    ys = np.stack([np.interp(grid, x, y) for x, y in runs])
    return grid, ys.mean(axis=0), ys.min(axis=0), ys.max(axis=0)


def learning_curves(curves: dict, *, xlabel: str, ylabel: str = "return", title: str = "",
                    smooth: int = 20, references: dict | None = None,
                    size: tuple[int, int] = (800, 450)):
    """A figure with one line per entry of ``curves`` (label -> runs [(x, y), ...]).

    One run is drawn raw (faint) and as the trailing mean of ``smooth`` values (bold). Several
    runs (seeds of one setting) are smoothed each, and drawn as their mean (bold) with the band
    between the lowest and the highest shaded. ``references`` (label -> y) are dashed
    horizontal lines, e.g. a planner's optimal return. ``size`` is (width, height) in pixels.
    Returns the matplotlib Figure; the caller saves (``fig.savefig(path)``) and closes it.
    """
    fig, ax = plt.subplots(figsize=(size[0] / 100, size[1] / 100), dpi=100)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (label, runs) in enumerate(curves.items()):
        colour = colours[i % len(colours)]
        if len(runs) == 1:
            x, y = runs[0]
            ax.plot(x, y, color=colour, alpha=0.25, linewidth=0.8)
            ax.plot(x, moving_average(y, smooth), color=colour, linewidth=2, label=label)
        else:
            grid, mean, low, high = mean_band([(x, moving_average(y, smooth)) for x, y in runs])
            ax.fill_between(grid, low, high, color=colour, alpha=0.2, linewidth=0)
            ax.plot(grid, mean, color=colour, linewidth=2, label=f"{label} (mean of {len(runs)}, min-max)")
    for j, (label, y) in enumerate((references or {}).items()):
        ax.axhline(y, color="black", linestyle=("--", ":", "-.")[j % 3], linewidth=1.2, label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=9)
    fig.tight_layout()
    return fig
