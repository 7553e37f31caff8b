"""What a learn() loop reports to, shared by every deep agent (DQN, policy gradients).

A :class:`TrainingRun` owns the run directory's files and the loop's bookkeeping:
``progress.csv`` (one row per finished episode), ``eval.csv`` (one row per evaluation),
``checkpoints/latest.npz`` and ``checkpoints/best.npz`` (atomic; with ``save_replay`` the
replay memory too, in a file of its own that latest's header names: ``replay-<step>-<tag>.npz``,
written before latest, the files latest does not name deleted after it), ``health.csv`` (at every
evaluation, for agents with a ``health()`` method: see :mod:`rlkit.health`), the progress bar
(:class:`ProgressBar`) and the Ctrl+C / SIGTERM flag (:class:`StopSignal`), and
(``tensorboard=True``) TensorBoard event files in ``tb/`` (:class:`TensorBoard`). The agent's
loop calls :meth:`episode_end` and :meth:`after_step`; ``after_step`` evaluates and checkpoints
on schedule and says when to stop, so that a run can be interrupted at any moment and resumed
exactly. When a run starts (or resumes) at step S, its logs are cut back to the rows of steps
<= S (those a checkpoint at S had seen), temporary files and replay files of killed writes are
removed, and the run's own state (wall time, best evaluation) is read back from the checkpoint
of step S that it wrote (:meth:`TrainingRun.saved_state`).

:func:`evaluate` plays greedy episodes on a separate env, each at most ``max_steps`` long, and
stops early when asked (the stop flag); a TrainingRun seeds every evaluation from the run's
seed and the evaluation's step (:func:`evaluation_seed`), so equal weights give equal rows.
:func:`env_snapshot` / :func:`env_restore` save and restore the state of the simple worlds
(toy-text and classic control) so that a resumed run continues the very same episode. Envs
they do not know (ALE) resume with a fresh episode instead; the agent says so in its docstring.
"""
from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import json
import math
import secrets
import signal
import sys
import threading
import time
from collections import deque
from pathlib import Path

import numpy as np
from tqdm import tqdm

from agents.base import read_header, saved_replay
from rlkit.checks import check, integer
from rlkit.runs import RunDir, truncate_csv
from rlkit.random import generator_state, restore_generator

PROGRESS_FIELDS = ["step", "episode", "return", "length", "epsilon", "loss", "steps_per_second",
                   "wall_time"]
# truncated: episodes cut at max_eval_steps (their return is that of a partial episode)
EVAL_FIELDS = ["step", "mean_return", "std_return", "episodes", "truncated"]
LOGS = ("progress.csv", "eval.csv", "health.csv")  # each has a "step" column
REPLAY_FILES = "replay*.npz"  # in checkpoints/: replay-<step>-<tag>.npz, and the old replay.npz
# An evaluation episode ends here at the latest: 108,000 frames at frame skip 4, the ALE's own
# 30-minute cap; classic-control and toy-text episodes end far sooner by their own time limits.
# Without it an env with no time limit and a policy that never finishes would evaluate forever.
MAX_EVAL_STEPS = 27_000


@dataclasses.dataclass
class Evaluation:
    """What :func:`play_evaluation` played."""

    returns: np.ndarray
    """Return of each finished episode, (episodes,), or fewer when stopped."""
    lengths: np.ndarray
    """Steps of each episode in ``returns`` (``max_steps`` for a cut one), (episodes,) int."""
    cut: np.ndarray
    """Whether ``max_steps`` cut each episode in ``returns`` before it ended, (episodes,) bool
    (an episode that ended on its last allowed step was not cut)."""
    stopped: bool
    """A stop request ended the evaluation before all its episodes were played."""

    @property
    def truncated(self) -> int:
        """Episodes cut at ``max_steps``."""
        return int(self.cut.sum())


def play_evaluation(agent, env, episodes: int = 10, deterministic: bool = True,
                    seed: int | None = None, max_steps: int = MAX_EVAL_STEPS,
                    should_stop=None) -> Evaluation:
    """Plays ``episodes`` episodes with ``agent.predict(obs, deterministic)``.

    Each episode ends at ``max_steps`` steps at the latest (counted in ``truncated``).
    ``should_stop()``, polled every step, ends the evaluation early (``stopped``). A recurrent
    agent's memory is cleared (``agent.reset_state()``) at every episode start. ``seed`` seeds
    the first reset and, when the agent has ``seed_evaluation(seed)``, its own evaluation
    draws (e.g. DQN's eval_epsilon), so two calls with one seed play the same episodes.
    """
    check("episodes", episodes, integer(1))
    check("max_steps", max_steps, integer(1))
    returns, lengths, cut = [], [], []

    def played(stopped: bool) -> Evaluation:
        return Evaluation(np.array(returns), np.array(lengths, dtype=np.int64), np.array(cut, dtype=bool),
                          stopped)

    reset_state = getattr(agent, "reset_state", None)
    if seed is not None and hasattr(agent, "seed_evaluation"):
        agent.seed_evaluation(seed)
    for i in range(episodes):
        obs, _ = env.reset(seed=seed if i == 0 else None)
        if reset_state is not None:
            reset_state()
        total, done, length = 0.0, False, 0
        for _ in range(max_steps):
            if should_stop is not None and should_stop():
                return played(stopped=True)
            obs, reward, terminated, truncated_by_env, info = env.step(agent.predict(obs, deterministic))
            total += float(reward)
            length += 1
            done = terminated or truncated_by_env
            if done:
                total = episode_score(info, total)
                break
        returns.append(total)
        lengths.append(length)
        cut.append(not done)
    return played(stopped=False)


def episode_score(info: dict, rewards_sum: float, index: int | None = None) -> float:
    """The score of an episode that has just ended: the env's own record of it when it keeps
    one (Gymnasium's RecordEpisodeStatistics, ``info["episode"]["r"]``; ``index``: the sub-env
    of a vector env's info, whose ``"_episode"`` mask says which ended), else ``rewards_sum``,
    the sum of the rewards the agent was given. The two differ when rewards are changed after
    the record is kept: envs.atari's ``clip_rewards`` clips them for learning, and a run's
    returns must still be the game's score."""
    episode = info.get("episode")
    if episode is None:
        return rewards_sum
    if index is None:
        return float(episode["r"])
    ended = info.get("_episode")
    return float(episode["r"][index]) if ended is None or ended[index] else rewards_sum


def evaluate(agent, env, episodes: int = 10, deterministic: bool = True,
             seed: int | None = None, max_steps: int = MAX_EVAL_STEPS) -> np.ndarray:
    """Returns (episodes,) of episodes played as :func:`play_evaluation` plays them."""
    return play_evaluation(agent, env, episodes, deterministic, seed, max_steps).returns


def evaluation_seed(run_seed: int | None, step: int) -> int | None:
    """The seed of the evaluation a run with ``run_seed`` makes at ``step`` (None: unseeded).

    The step names the evaluation: it survives a resume, and runs that evaluate at the same
    step with the same seed play the same episodes."""
    if run_seed is None:
        return None
    return int(np.random.SeedSequence([run_seed, step]).generate_state(1)[0])


def check_schedule(total_steps: int, eval_every: int, eval_episodes: int, checkpoint_every: int,
                   max_eval_steps: int) -> None:
    """Refuse (ValueError naming the setting) a schedule a TrainingRun cannot follow; the
    scripts call it before they make a run folder."""
    for name, value, rule in (("total_steps", total_steps, integer(0)),
                              ("eval_every", eval_every, integer(0)),
                              ("eval_episodes", eval_episodes, integer(1)),
                              ("checkpoint_every", checkpoint_every, integer(0)),
                              ("max_eval_steps", max_eval_steps, integer(1))):
        check(name, value, rule)


class TrainingRun:
    """Bookkeeping of one training run (see the module docstring).

    run_dir: a RunDir, or None to keep nothing on disk (tests, quick experiments).
    total_steps: where the progress bar ends.
    eval_env / eval_every / eval_episodes: evaluation schedule, in environment steps.
    max_eval_steps: an evaluation episode is cut (and counted in eval.csv's "truncated") here.
    seed: the run's seed; each evaluation is seeded from it and its step (None: unseeded).
    checkpoint_every: steps between ``latest`` checkpoints (0: only at the end and on stop).
    save_replay: also write the agent's replay memory when checkpointing (agents that have one).
    stop_on_collapse: stop the run (checkpoint saved) when a health check finds a collapse;
        without it the run prints the warning and goes on.
    tensorboard: also write what the CSVs hold as TensorBoard events to ``<run>/tb/``
        (:class:`TensorBoard`; needs a run folder and tensorboardX).
    """

    def __init__(self, run_dir: RunDir | None, total_steps: int, *, eval_env=None,
                 eval_every: int = 0, eval_episodes: int = 5, checkpoint_every: int = 0,
                 max_eval_steps: int = MAX_EVAL_STEPS, seed: int | None = None,
                 save_replay: bool = False, progress: bool = True, window: int = 20,
                 stop_on_collapse: bool = False, tensorboard: bool = False):
        check_schedule(total_steps, eval_every, eval_episodes, checkpoint_every, max_eval_steps)
        self.run_dir, self.total_steps = run_dir, total_steps
        self.eval_env, self.eval_every, self.eval_episodes = eval_env, eval_every, eval_episodes
        self.max_eval_steps, self.seed = max_eval_steps, seed
        self.checkpoint_every, self.save_replay, self.show_progress = checkpoint_every, save_replay, progress
        self.recent_returns = deque(maxlen=window)
        self.best_eval = -math.inf
        self.last_loss = float("nan")
        self.last_eval_step = None
        self._logs = {}  # file name -> CSVLogger, opened at its first row (after start's cut)
        self.stop_on_collapse = stop_on_collapse
        self.first_layer_active = float("nan")  # shown in the progress bar
        self._collapsed = False
        self._stop = StopSignal()
        self._bar = None
        self._clock_start = time.monotonic()
        self._wall_offset = 0.0  # wall time of earlier sessions of a resumed run
        self._rate_mark = (0, time.monotonic())
        self._last_step = 0
        self.steps_per_second = 0.0
        self.tensorboard = tensorboard and run_dir is not None
        if self.tensorboard:
            TensorBoard.check_installed()
        self._tb: TensorBoard | None = None

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> "TrainingRun":
        self._stop.__enter__()
        return self

    def start(self, step: int) -> None:
        """Begin (or resume) at ``step``. A run resumed from the folder's ``latest`` checkpoint
        (saved at ``step``) carries on its wall time, best evaluation and the step of its last
        evaluation (:meth:`saved_state`); without a best.npz (none yet, or one :meth:`tidy`
        dropped) the best evaluation starts again from -inf.

        The run folder's logs are cut back to ``step`` and temporaries of killed writes removed
        (:meth:`tidy`)."""
        saved = self.saved_state(step)
        self._wall_offset = saved.get("wall_time", 0.0)
        self.best_eval = saved.get("best_eval", -math.inf)
        # a run resumed where it ended has had its final evaluation: not another row for it
        self.last_eval_step = saved.get("last_eval_step")
        self._clock_start = time.monotonic()
        self._rate_mark = (step, time.monotonic())
        self._last_step = step
        self.tidy(step)
        if self.run_dir is not None and not (self.run_dir.checkpoints / "best.npz").is_file():
            self.best_eval = -math.inf  # the evaluation of the network in best.npz, if any
        if self.tensorboard and self._tb is None:
            self._tb = TensorBoard(self.run_dir.path / "tb", step)
        self._bar = ProgressBar(self.total_steps, initial=step, enabled=self.show_progress)

    def saved_state(self, step: int) -> dict:
        """What :meth:`checkpoint` recorded of this run (``wall_time`` in seconds, ``best_eval``,
        ``last_eval_step``)
        in the folder's ``latest`` checkpoint, when that checkpoint is of ``step`` (the step an
        agent resumed from it starts at); empty for a new run or without a run folder."""
        latest = self.run_dir.checkpoints / "latest.npz" if self.run_dir is not None else None
        if latest is None or not latest.is_file():
            return {}
        header = read_header(latest)
        return (header.get("run_state") or {}) if header.get("steps") == step else {}

    def tidy(self, step: int) -> None:
        """Make the run folder agree with a checkpoint at ``step``: drop the log rows written
        after it (a stopped session goes on logging past its last checkpoint), and with them
        a best.npz saved after it (its evaluation's row goes), and delete the temporary files
        of killed writes and the replay files latest does not name (one written just before a
        kill stopped its checkpoint); say what went, in one line each."""
        if self.run_dir is None:
            return
        best = self.run_dir.checkpoints / "best.npz"
        best_step = read_header(best).get("steps", 0) if best.is_file() else 0
        if best_step > step:
            best.unlink()
            self._say(f"removed best.npz: saved at step {best_step:,}, after this checkpoint, for "
                      f"an evaluation whose row goes too; the next evaluation writes a new one")
        for what, removed in (("temporary file(s) of interrupted writes",
                               self.run_dir.remove_temporaries()),
                              ("replay file(s) that latest.npz does not name",
                               self._remove_stale_replays())):
            if removed:
                size = sum(size for _, size in removed) / 1e6
                self._say(f"removed {len(removed)} {what} ({size:,.1f} MB): "
                          f"{', '.join(str(p.name) for p, _ in removed)}")
        dropped = {name: truncate_csv(self.run_dir / name, step) for name in LOGS
                   if (self.run_dir / name).is_file()}
        dropped = {name: n for name, n in dropped.items() if n}
        if dropped:
            self._say(f"resuming at step {step:,}: dropped the rows written after that checkpoint "
                      f"({', '.join(f'{n} from {name}' for name, n in dropped.items())})")

    def __exit__(self, *exc) -> bool:
        if self._bar is not None:
            self._bar.close()
        # when an error is on its way (a full disk), closing files that still hold unwritten
        # rows fails too: the first error is the one to report
        closing = contextlib.suppress(OSError) if exc[0] is not None else contextlib.nullcontext()
        for log in self._logs.values():
            with closing:
                log.close()
        self._logs = {}
        if self._tb is not None:
            with closing:
                self._tb.close()
            self._tb = None
        return self._stop.__exit__(*exc)

    @property
    def wall_time(self) -> float:
        """Seconds of training so far, earlier sessions of a resumed run included."""
        return self._wall_offset + time.monotonic() - self._clock_start

    @property
    def stop_requested(self) -> bool:
        return self._stop.requested or self._collapsed

    def _log(self, filename: str, row: dict, fieldnames: list[str] | None = None) -> None:
        """Append ``row`` to ``<run>/<filename>`` (nothing without a run folder)."""
        if self.run_dir is None:
            return
        if filename not in self._logs:
            self._logs[filename] = self.run_dir.logger(filename, fieldnames)
        self._logs[filename].write(row)

    def _say(self, message: str) -> None:
        """One line to the user, above the progress bar when there is one."""
        if self._bar is not None:
            self._bar.write(message)
        else:
            print(message, flush=True)

    # ------------------------------------------------------------------ per step / episode
    def episode_end(self, step: int, episode: int, episode_return: float, length: int,
                    epsilon: float = float("nan")) -> None:
        """Record a finished training episode in progress.csv."""
        self.recent_returns.append(episode_return)
        self._log("progress.csv", {
            "step": step, "episode": episode, "return": episode_return, "length": length,
            "epsilon": round(epsilon, 5), "loss": self.last_loss,
            "steps_per_second": round(self.steps_per_second, 1),
            "wall_time": round(self.wall_time, 2)}, PROGRESS_FIELDS)
        if self._tb is not None:
            self._tb.scalars(step, {"charts/episodic_return": episode_return,
                                    "charts/episodic_length": length})

    def after_step(self, agent, step: int, epsilon: float = float("nan"), callback=None) -> bool:
        """Advance the bar; evaluate and checkpoint when ``step`` has crossed their schedule
        (so agents that advance many steps at once, like A2C, keep it too); call
        ``callback(agent, step)``. True when the loop must stop (signal, or callback False)."""
        now = time.monotonic()
        if now - self._rate_mark[1] >= 2.0:
            self.steps_per_second = (step - self._rate_mark[0]) / (now - self._rate_mark[1])
            self._rate_mark = (step, now)
            if self._tb is not None:  # every 2 s, as the rate: a handful of events a minute
                self._tb.scalars(step, {
                    "charts/SPS": self.steps_per_second, "charts/epsilon": epsilon,
                    "charts/learning_rate": getattr(getattr(agent, "optimizer", None), "lr", None),
                    f"losses/{getattr(agent, 'loss_name', 'loss')}": self.last_loss,
                    **{f"losses/{name}": value
                       for name, value in getattr(agent, "last_stats", {}).items()}})
        if self._bar is not None:
            mean = float(np.mean(self.recent_returns)) if self.recent_returns else float("nan")
            self._bar.update(step, eps=epsilon, ret=mean, loss=self.last_loss,
                             live=self.first_layer_active)
        if _crossed(self._last_step, step, self.eval_every):
            self.evaluate(agent, step)
        if _crossed(self._last_step, step, self.checkpoint_every):
            self.checkpoint(agent)
        self._last_step = step
        stop = self.stop_requested
        if callback is not None and callback(agent, step) is False:
            stop = True
        return stop

    def evaluate(self, agent, step: int) -> float:
        """Evaluate now, append to eval.csv, and save ``best`` when the mean improves.

        A stop request (Ctrl+C, SIGTERM) ends the evaluation within a step; an evaluation cut
        short that way is not recorded (NaN is returned) and the loop then stops as usual."""
        if self.eval_env is None or step == self.last_eval_step:
            return float("nan")
        result = play_evaluation(agent, self.eval_env, self.eval_episodes,
                                 seed=evaluation_seed(self.seed, step),
                                 max_steps=self.max_eval_steps,
                                 should_stop=lambda: self._stop.requested)
        if result.stopped:
            self._say(f"evaluation at step {step:,} interrupted by {self._stop.signal_name}: "
                      "not recorded")
            return float("nan")
        self.last_eval_step = step  # recorded: a resume at this step does not evaluate it again
        mean = float(result.returns.mean())
        self._log("eval.csv", {"step": step, "mean_return": mean,
                               "std_return": float(result.returns.std()),
                               "episodes": len(result.returns), "truncated": result.truncated},
                  EVAL_FIELDS)
        if self._tb is not None:
            self._tb.scalars(step, {"eval/mean_return": mean, "eval/std_return": float(result.returns.std()),
                                    "eval/truncated": result.truncated})
        if mean > self.best_eval:
            self.best_eval = mean
            if self.run_dir is not None:
                agent.save(self.run_dir.checkpoints / "best.npz")
        self.check_health(agent, step)
        if self._tb is not None:  # on disk at every evaluation, not only every 30 s
            self._tb.flush()
        return mean

    def check_health(self, agent, step: int) -> list:
        """Append the agent's health figures to health.csv and report a collapse: one warning
        line, and a stop when ``stop_on_collapse``. Returns the warnings (empty when healthy)."""
        report = agent.health() if hasattr(agent, "health") else None
        if report is None:
            return []
        row, warnings = report
        active = [value for name, value in row.items() if name.startswith("active_")]
        self.first_layer_active = active[0] if active else float("nan")
        self._log("health.csv", {"step": step, **row})  # its columns depend on the network
        if self._tb is not None:
            self._tb.scalars(step, {f"health/{name}": value for name, value in row.items()})
        if warnings:
            action = "stopping (--stop-on-collapse)" if self.stop_on_collapse else "training goes on"
            self._say(f"warning: step {step:,}: the network collapsed: {'; '.join(warnings)}; {action}")
            self._collapsed = self._collapsed or self.stop_on_collapse
        return warnings

    def checkpoint(self, agent) -> Path | None:
        """Write ``checkpoints/latest.npz`` and, when asked, the replay memory as one unit: the
        replay goes to a new file, latest (written after it) names it, and only then are the
        replay files latest no longer names deleted. A kill or a failed write at any point
        leaves a latest whose replay is on disk."""
        if self.run_dir is None:
            return None
        folder = self.run_dir.checkpoints
        path = folder / "latest.npz"
        if self._tb is not None:
            self._tb.flush()
        # a new name each time: a replay rewritten in place could pair with the previous latest
        replay = (folder / f"replay-{agent.steps}-{secrets.token_hex(3)}.npz"
                  if self.save_replay else None)
        try:
            agent.save(path, run_state={"wall_time": self.wall_time, "best_eval": self.best_eval,
                                        "last_eval_step": self.last_eval_step},
                       replay_path=replay)
        finally:  # also after a failed write: a replay latest does not name only takes space
            self._remove_stale_replays()
        return path

    def _remove_stale_replays(self) -> list[tuple[Path, int]]:
        """Delete the replay files in ``checkpoints/`` that latest.npz does not name (all of
        them when there is no latest); returns (path, size in bytes) of each. Nothing goes
        while latest cannot be read."""
        folder = self.run_dir.checkpoints
        latest = folder / "latest.npz"
        try:
            keep = saved_replay(latest) if latest.is_file() else None
        except ValueError:
            return []
        removed = []
        for path in sorted(folder.glob(REPLAY_FILES)):
            if path != keep:
                with contextlib.suppress(FileNotFoundError):
                    size = path.stat().st_size
                    path.unlink()
                    removed.append((path, size))
        return removed


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
    Silent when ``enabled`` is False (the scripts' ``--no-progress``).
    """

    def __init__(self, total: int, initial: int = 0, desc: str = "train", enabled: bool = True,
                 min_interval: float = 0.5):
        self._bar = tqdm(total=total, initial=initial, desc=desc, unit="step", dynamic_ncols=True,
                         disable=not enabled, file=sys.stderr, mininterval=min_interval)
        self._position, self._last_text, self._min_interval = initial, 0.0, min_interval

    def update(self, step: int, **metrics) -> None:
        """Move to ``step``; show the metrics that have a value (a NaN one, such as the
        epsilon of an agent that does not explore by epsilon, is left out)."""
        self._bar.update(step - self._position)
        self._position = step
        now = time.monotonic()
        if metrics and now - self._last_text >= self._min_interval:
            self._last_text = now
            shown = {k: _short(v) for k, v in metrics.items()
                     if not (isinstance(v, (float, np.floating)) and math.isnan(v))}
            self._bar.set_postfix(shown, refresh=False)

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


class TensorBoard:
    """TensorBoard event files of a run (through tensorboardX: no TensorFlow, no PyTorch), named
    as CleanRL names them: ``charts/episodic_return``, ``charts/episodic_length``,
    ``charts/SPS``, ``charts/epsilon``, ``charts/learning_rate`` (its optimiser's ``lr``),
    ``losses/<the agent's loss_name>`` (``loss`` when it names none), ``losses/<name>`` for
    each entry of the agent's ``last_stats`` (A2C, PPO: policy_loss, value_loss, entropy; PPO
    also approx_kl, clipfrac),
    ``eval/mean_return``, ``eval/std_return``, ``eval/truncated``, ``health/<health.csv column>``.

    A session that resumes at step S starts its file with TensorBoard's purge marker at S, so
    the events an earlier session wrote after its last checkpoint are hidden, as ``tidy`` cuts
    the CSVs back. NaN values (no loss yet, no epsilon) are not written.
    """

    INSTALL = ("TensorBoard logging needs tensorboardX (pip install tensorboardX); or turn it off "
               "(tensorboard=False, --no-tensorboard)")

    @classmethod
    def check_installed(cls) -> None:
        """ImportError (saying what to install) unless tensorboardX can be imported; cheap: the
        import itself waits for the first writer."""
        if importlib.util.find_spec("tensorboardX") is None:
            raise ImportError(cls.INSTALL)

    def __init__(self, folder: Path, step: int = 0):
        # tensorboardX imports PyTorch whenever it is installed (2+ s, and rlkit runs without
        # it): hide it during the import, unless this process has imported it already.
        hide = "torch" not in sys.modules
        if hide:
            sys.modules["torch"] = None  # `import torch` raises ImportError
        try:
            from tensorboardX import SummaryWriter
        finally:
            if hide:
                del sys.modules["torch"]
        self.writer = SummaryWriter(str(folder), purge_step=step if step > 0 else None, flush_secs=30)

    def scalars(self, step: int, values: dict) -> None:
        for tag, value in values.items():
            try:
                value = float(value)
            except (TypeError, ValueError):  # not a number: nothing to plot
                continue
            if math.isfinite(value):
                self.writer.add_scalar(tag, value, step)

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


def _crossed(previous: int, step: int, every: int) -> bool:
    """Whether a multiple of ``every`` lies in (previous, step] (never when every is 0)."""
    return bool(every) and step // every > previous // every


# ---------------------------------------------------------------------- env state for resume
_STATE_ATTRIBUTES = ("s", "lastaction", "state", "steps_beyond_terminated")


def env_snapshot(env) -> str | None:
    """The state of a toy-text or classic-control env (plus its time limit) as JSON, else None."""
    base = env.unwrapped
    if not any(hasattr(base, name) for name in ("s", "state")) or "ale" in type(base).__name__.lower():
        return None
    attributes = {}
    for name in _STATE_ATTRIBUTES:
        if hasattr(base, name):
            value = getattr(base, name)
            attributes[name] = value.tolist() if isinstance(value, np.ndarray) else (
                value.item() if isinstance(value, np.generic) else value)
    return json.dumps({"attributes": attributes, "rng": generator_state(base.np_random),
                       "elapsed": _time_limit_steps(env)})


def env_restore(env, snapshot: str) -> None:
    """Put an env back into a state from :func:`env_snapshot` (it must have been reset once)."""
    data = json.loads(snapshot)
    base = env.unwrapped
    for name, value in data["attributes"].items():
        current = getattr(base, name, None)
        setattr(base, name, np.asarray(value, dtype=current.dtype) if isinstance(current, np.ndarray) else value)
    restore_generator(base.np_random, data["rng"])
    wrapper = env
    while hasattr(wrapper, "env"):
        if hasattr(wrapper, "_elapsed_steps"):
            wrapper._elapsed_steps = data["elapsed"]
        wrapper = wrapper.env


def _time_limit_steps(env):
    wrapper = env
    while hasattr(wrapper, "env"):
        if hasattr(wrapper, "_elapsed_steps"):
            return wrapper._elapsed_steps
        wrapper = wrapper.env
    return None
