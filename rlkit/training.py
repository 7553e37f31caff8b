"""Pieces every training loop shares: a clean stop on Ctrl+C / SIGTERM, a progress bar, and
random-generator states that can be written into a checkpoint as JSON.

Agents use them so that a run can be interrupted at any moment and resumed exactly::

    with StopSignal() as stop, ProgressBar(total_steps, initial=start) as bar:
        for step in range(start, total_steps):
            ...
            bar.update(step + 1, eps=epsilon, ret=mean_return, loss=loss)
            if stop.requested:
                break          # the caller saves a checkpoint, then returns
"""
from __future__ import annotations

import json
import signal
import sys
import threading
import time

import numpy as np
from tqdm import tqdm

from rlkit import random as rlkit_random


class StopSignal:
    """Turns SIGINT (Ctrl+C) and SIGTERM into a flag the loop polls, so it can save and exit.

    A second Ctrl+C while a stop is pending raises KeyboardInterrupt as usual. Outside the main
    thread (where handlers cannot be installed) the flag simply never rises.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.requested = False
        self.signal_name: str | None = None
        self._previous = {}

    def _handle(self, signum, frame):
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True
        self.signal_name = signal.Signals(signum).name

    def __enter__(self) -> "StopSignal":
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> bool:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        return False


class ProgressBar:
    """A tqdm bar over environment steps that also shows steps/s and named metrics.

    ``update(step, **metrics)`` moves the bar to ``step`` (absolute) and shows the metrics,
    refreshing the text at most every ``min_interval`` seconds so it never slows the loop.
    Disabled (silent) when ``enabled`` is False or stderr is not a terminal and ``force`` is off.
    """

    def __init__(self, total: int, initial: int = 0, desc: str = "train", enabled: bool = True,
                 min_interval: float = 0.5):
        self._bar = tqdm(total=total, initial=initial, desc=desc, unit="step", dynamic_ncols=True,
                         disable=not enabled, file=sys.stderr, mininterval=min_interval)
        self._position, self._last_text, self._min_interval = initial, 0.0, min_interval

    def update(self, step: int, **metrics) -> None:
        self._bar.update(step - self._position)
        self._position = step
        now = time.monotonic()
        if metrics and now - self._last_text >= self._min_interval:
            self._last_text = now
            self._bar.set_postfix({k: _short(v) for k, v in metrics.items()}, refresh=False)

    def write(self, message: str) -> None:
        """Print one line above the bar (to stderr, even when the bar is disabled)."""
        tqdm.write(message, file=sys.stderr)

    def close(self) -> None:
        self._bar.close()

    def __enter__(self) -> "ProgressBar":
        return self

    def __exit__(self, *exc) -> bool:
        self.close()
        return False


def _short(value):
    if isinstance(value, (float, np.floating)):
        return f"{value:.3g}"
    return value


def generator_state(generator: np.random.Generator) -> str:
    """A NumPy Generator's exact state as a JSON string (for a checkpoint)."""
    return json.dumps(generator.bit_generator.state)


def restore_generator(generator: np.random.Generator, state: str) -> None:
    """Put a Generator back into a state from :func:`generator_state`."""
    generator.bit_generator.state = json.loads(state)


def global_rng_state() -> str:
    """rlkit's global generator (initialisation, dropout) state as JSON."""
    return json.dumps(rlkit_random.get_state())


def restore_global_rng(state: str) -> None:
    rlkit_random.set_state(json.loads(state))
