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
