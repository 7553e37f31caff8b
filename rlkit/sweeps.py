"""Many runs as Ray Tune trials: the runner behind ``scripts/sweep.py`` and ``compare.py --ray``.

A sweep is one folder::

    sweep.json             the plan: each trial's name, configuration, seed and flags
    runs/<trial>/          the trial's run folder, exactly as its script writes it
    status/<trial>.json    how the trial ended: finished, stopped (early, by ASHA) or failed
    logs/<trial>.log       what the trial's command printed, every session appended
    tune/                  Ray Tune's own records
    summary.md, summary.json, curves.png    (:func:`summarize`)

A trial is a command line. :func:`run_trials` starts each one as a subprocess inside a Ray Tune
trial that holds ``threads`` CPUs (BLAS and numba get as many threads), reports each new row of
the run's ``eval.csv`` to Tune as ``eval/<column>`` with ``step`` (what ASHA compares), and
writes its status when it ends. Nothing the command runs knows it is in a sweep: the run
folder plots, watches, evaluates and resumes like any other.

A trial has finished when its command exits with status 0 and, for a training run, its
``eval.csv`` reached the run's length: a training script exits 0 after a SIGTERM too, with
``latest`` saved part way. A stopped sweep (Ctrl+C, a killed worker) leaves the trials it
had not finished without a status, and their run folders with their last checkpoints.

The folder must be one path that every Ray node reads and writes (a shared file system on a
cluster). Ray is imported only when trials run; :func:`require_ray` names the install command
when it is missing. Nothing here imports ``agents`` or ``envs``.
"""
from __future__ import annotations

import csv
import ctypes
import dataclasses
import io
import math
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from rlkit.backend import thread_limited_env
from rlkit.plotting import learning_curves, plt
from rlkit.runs import atomic_open, read_csv, read_json, write_json_atomic

RAY_MISSING = "sweeps run on Ray, which is not installed: pip install -e '.[ray]'"
POLL_SECONDS = 0.5           # how often a trial looks for new eval.csv rows
MAX_EVALUATIONS = 10 ** 6    # ASHA's max_t, in evaluations: no run is stopped for its length
DONE = ("finished", "stopped")  # statuses a resumed sweep does not run again
PR_SET_PDEATHSIG = 1         # linux/prctl.h


class DashboardUnavailableError(RuntimeError):
    """A dashboard was asked of the Ray started here, and Ray lacks the packages it needs."""


def require_ray():
    """``ray`` with Tune, or ImportError saying what to install."""
    try:
        import ray
        from ray import tune  # noqa: F401  (plain ``ray`` lacks Tune's dependencies)
    except ImportError:
        raise ImportError(RAY_MISSING) from None
    return ray


@dataclasses.dataclass(frozen=True)
class Trial:
    """One command line to run as a Tune trial."""

    name: str
    """Unique in the sweep: names the run folder, the status file and the log."""
    command: tuple
    """The whole argv, the executable first."""
    steps: int | None = None
    """Environment steps the run must reach to have finished; None: the ``steps`` of its
    config.json, and without one (not a training run) exiting with status 0 is enough."""


class SweepFolder:
    """Where a sweep keeps its plan, run folders, trial statuses and logs (module docstring)."""

    PLAN = "sweep.json"

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path).resolve()  # trials run elsewhere (another cwd, another node)

    def run_dir(self, name: str) -> Path:
        """The run folder of trial ``name``."""
        return self.path / "runs" / name

    def log_file(self, name: str) -> Path:
        """What trial ``name``'s command printed."""
        return self.path / "logs" / f"{name}.log"

    def _status_file(self, name: str) -> Path:
        return self.path / "status" / f"{name}.json"

    def status(self, name: str) -> dict | None:
        """How trial ``name`` ended (``{"status": ..., ...}``), None while it has not."""
        path = self._status_file(name)
        return read_json(path) if path.is_file() else None

    def set_status(self, name: str, status: str, **details) -> None:
        """Record how trial ``name`` ended: ``finished``, ``stopped`` or ``failed``."""
        write_json_atomic(self._status_file(name), {"status": status, **details})

    def read_plan(self) -> dict:
        """The plan in sweep.json; FileNotFoundError naming it when there is none."""
        path = self.path / self.PLAN
        if not path.is_file():
            raise FileNotFoundError(f"{path} does not exist: not a sweep folder")
        return read_json(path)

    def write_plan(self, plan: dict) -> None:
        """Write sweep.json (atomically)."""
        write_json_atomic(self.path / self.PLAN, plan)


def evaluations(run_dir: str | os.PathLike) -> list[dict]:
    """The rows of ``<run_dir>/eval.csv`` as floats, [] without one. A row its writer has not
    finished (no newline yet) is left out, so a running run can be read."""
    path = Path(run_dir) / "eval.csv"
    if not path.is_file():
        return []
    text = path.read_text(encoding="utf-8")
    text = text[:text.rfind("\n") + 1]
    return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(io.StringIO(text))]


def run_length(run_dir: str | os.PathLike, steps: int | None = None) -> int | None:
    """Steps a run is to reach: ``steps``, else the ``steps`` of its config.json, else None."""
    config = Path(run_dir) / "config.json"
    if steps is None and config.is_file():
        steps = read_json(config).get("steps")
    return steps


def wall_time(run_dir: str | os.PathLike) -> float | None:
    """Seconds of training of a run (progress.csv's last ``wall_time``, which carries over
    resumes), None before its first episode ended."""
    path = Path(run_dir) / "progress.csv"
    rows = read_csv(path) if path.is_file() else []
    return float(rows[-1]["wall_time"]) if rows and rows[-1].get("wall_time") else None


# ---- inside a trial ---------------------------------------------------------------------------

def _exit_with_parent():
    """A ``preexec_fn`` (Linux) after which the child gets SIGTERM when the thread that started
    it ends: when its Ray worker is killed outright, which leaves no time for the trial's
    cleanup, a training script still saves ``latest`` and exits instead of running on unowned."""
    parent, libc = os.getpid(), ctypes.CDLL(None, use_errno=True)  # loaded before the fork

    def preexec() -> None:
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent went before prctl took effect
            os._exit(1)
    return preexec


def _last_line(path: Path) -> str:
    """The last non-empty line of a log (a script's ``error:`` line), or a note that it is empty."""
    lines = [line for line in path.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
    return lines[-1].strip() if lines else "it printed nothing"


def _trainable():
    """The Tune trainable that runs a trial (a subclass of Tune's, so made once Ray is in)."""
    from ray import tune

    class SweepTrial(tune.Trainable):
        """Runs a trial's command; each step is the next new row of its eval.csv, the last
        one the end of the command, whose status it records. A failed command is recorded,
        not raised: the sweep says so in one line, and a resumed sweep runs it again."""

        def setup(self, config: dict) -> None:
            self.folder, self.trial = SweepFolder(config["folder"]), Trial(**config["trial"])
            self.run_dir = self.folder.run_dir(self.trial.name)
            log_path = self.folder.log_file(self.trial.name)
            log_path.parent.mkdir(parents=True, exist_ok=True)
            self.log = open(log_path, "a", encoding="utf-8")
            self.log.write(f"$ {shlex.join(self.trial.command)}\n")
            self.log.flush()
            env = thread_limited_env(config["threads"])
            # its own session: a Ctrl+C at the terminal reaches the sweep, which stops the trial
            self.child = subprocess.Popen(
                self.trial.command, stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT,
                cwd=self.folder.path, env=env, start_new_session=True,
                preexec_fn=_exit_with_parent() if sys.platform == "linux" else None)
            self.reported = -math.inf  # a resumed run first cuts its eval.csv back: each step once

        def step(self) -> dict:
            """The next eval.csv row as ``step`` and ``eval/<column>`` (waiting for one), or,
            once the command has exited and every row is out, ``done``."""
            while True:
                exited = self.child.poll() is not None  # before reading: its last rows are seen
                for row in evaluations(self.run_dir):
                    if row["step"] > self.reported:
                        self.reported = row["step"]
                        return {"step": int(row["step"]),
                                **{f"eval/{k}": v for k, v in row.items() if k != "step"}}
                if exited:
                    self._record_end()
                    return {"done": True}
                time.sleep(POLL_SECONDS)

        def _record_end(self) -> None:
            """The status of an exited command: finished, or failed with its last line."""
            last = int(self.reported) if self.reported > -math.inf else None
            total = run_length(self.run_dir, self.trial.steps)
            code, name = self.child.returncode, self.trial.name
            if code != 0:
                message = f"exit status {code}: {_last_line(self.folder.log_file(name))}"
            elif total is not None and (last is None or last < total):
                message = f"stopped at step {last} of {total:,}: {_last_line(self.folder.log_file(name))}"
            else:
                self.folder.set_status(name, "finished", step=last)
                return
            self.folder.set_status(name, "failed", step=last, message=message)

        def cleanup(self) -> None:
            """Stopped (early stop, a stopped sweep): SIGTERM, and wait while it saves ``latest``
            (Ray kills what a finished actor leaves running)."""
            if self.child.poll() is None:
                self.child.terminate()
                self.child.wait()
            self.log.close()

        def reset_config(self, new_config: dict) -> bool:
            """The next trial in this actor (Tune's ``reuse_actors``: no new process to start)."""
            self.cleanup()
            self.setup(new_config)
            return True

    return SweepTrial


# ---- the driver -------------------------------------------------------------------------------

def describe_trial(name: str, status: dict | None) -> str:
    """One line on how trial ``name`` ended."""
    if status is None:
        return f"{name}: not finished"
    step = "" if status.get("step") is None else f" at step {status['step']:,}"
    message = f": {status['message']}" if status.get("message") else ""
    return f"{name}: {status['status']}{step}{message}"


def _callback_and_scheduler(folder: SweepFolder, early_stop: str | None, metric: str, mode: str,
                            grace_period: int, say):
    """Tune's callback that says how each trial ended, and the scheduler (None, or ASHA that
    records the trials it stops). Made here: their classes are subclasses of Ray's."""
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler, TrialScheduler

    class Report(tune.Callback):
        """Says one line when a trial ends."""

        def on_trial_complete(self, iteration, trials, trial, **info):
            name = trial.config["trial"]["name"]
            say(describe_trial(name, folder.status(name)))

        on_trial_error = on_trial_complete

    class RecordingASHA(ASHAScheduler):
        """ASHA that writes the status of each trial it stops (a stopped trial cannot tell an
        early stop from a stopped sweep, which a resumed sweep continues)."""

        def on_trial_result(self, tune_controller, trial, result):
            decision = super().on_trial_result(tune_controller, trial, result)
            name = trial.config["trial"]["name"]
            if decision == TrialScheduler.STOP and folder.status(name) is None:
                folder.set_status(name, "stopped", step=result.get("step"),
                                  message=f"early stop (ASHA on {metric}, "
                                          f"{result.get('training_iteration')} evaluations)")
            return decision

    if early_stop not in (None, "asha"):
        raise ValueError(f"unknown early stop {early_stop!r}: the one there is is 'asha'")
    scheduler = None if early_stop is None else RecordingASHA(
        time_attr="training_iteration", metric=metric, mode=mode, grace_period=grace_period,
        max_t=MAX_EVALUATIONS)
    return Report(), scheduler


def run_trials(folder: SweepFolder, trials: list[Trial], *, threads: int = 1,
               address: str | None = None, num_cpus: int | None = None, dashboard: bool = False,
               early_stop: str | None = None, metric: str = "eval/mean_return", mode: str = "max",
               grace_period: int = 1, say=print) -> dict[str, dict | None]:
    """Run ``trials`` as Ray Tune trials of ``threads`` CPUs each; returns each one's status.

    Without ``address`` Ray starts on this machine with ``num_cpus`` (default: all of them)
    and no dashboard unless ``dashboard``; with one it joins that running cluster. Ray is shut
    down (or left) at the end. ``early_stop="asha"`` stops trials whose ``metric`` (an
    ``eval/<column of eval.csv>``, ``mode`` max or min) trails the others' at the same number
    of evaluations, from ``grace_period`` evaluations on. ``say`` prints a line per trial.
    Raises ImportError (:data:`RAY_MISSING`) without Ray, ConnectionError when ``address``
    does not answer or refuses this machine.
    """
    ray = require_ray()
    from ray import tune
    from ray.tune.logger import JsonLoggerCallback

    # Tune would also log every reported metric as TensorBoard events in tune/, a second copy
    # of what the run folders' own tb/ holds for `tensorboard --logdir`; its result.json stays
    # (Tune reads it back at the end).
    os.environ["TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"] = "1"
    # A trial's last result (its command ended) has no evaluation in it, nor has any result of
    # a trial that ends before its first evaluation; Tune would refuse them under ASHA.
    os.environ["TUNE_DISABLE_STRICT_METRIC_CHECKING"] = "1"
    callback, scheduler = _callback_and_scheduler(folder, early_stop, metric, mode, grace_period, say)
    if address:
        try:
            ray.init(address=address)
        except ConnectionError as e:
            raise ConnectionError(f"cannot join the Ray cluster at {address} ({e}); a cluster with "
                                  "token authentication also needs RAY_AUTH_MODE=token and its "
                                  "token here") from None
    else:  # "local": a new Ray, even where `ray start` left one running (ray.init would join it)
        try:
            ray.init(address="local", num_cpus=num_cpus or os.cpu_count(), include_dashboard=dashboard)
        except Exception as e:  # Ray raises a bare Exception for the dashboard's missing packages
            if dashboard and "dashboard" in str(e).lower():
                raise DashboardUnavailableError(f"{e}: the dashboard needs Ray's default extra, "
                                                "pip install 'ray[default]==2.60.*'") from None
            raise
    try:
        tuner = tune.Tuner(
            tune.with_resources(_trainable(), {"cpu": threads}),
            param_space={"folder": str(folder.path), "threads": threads,
                         "trial": tune.grid_search([dataclasses.asdict(t) for t in trials])},
            tune_config=tune.TuneConfig(scheduler=scheduler, reuse_actors=True,
                                        trial_name_creator=_trial_name,
                                        trial_dirname_creator=_trial_name),
            run_config=tune.RunConfig(name="tune", storage_path=str(folder.path), verbose=0,
                                      callbacks=[callback, JsonLoggerCallback()],
                                      checkpoint_config=tune.CheckpointConfig(checkpoint_at_end=False)))
        tuner.fit()
    finally:
        ray.shutdown()
    return {t.name: folder.status(t.name) for t in trials}


def _trial_name(trial) -> str:
    """Tune's name (and folder) for a trial: the sweep's own."""
    return trial.config["trial"]["name"]


# ---- the summary ------------------------------------------------------------------------------

def _trial_summary(folder: SweepFolder, trial: dict, threshold: float | None) -> dict:
    """What the summary says of one trial, from its run folder and status."""
    rows = evaluations(folder.run_dir(trial["name"]))
    status = folder.status(trial["name"])
    reached = [r["step"] for r in rows if threshold is not None and r["mean_return"] >= threshold]
    return {"trial": trial["name"], "seed": trial["seed"],
            "status": status["status"] if status else "not finished",
            "final_step": int(rows[-1]["step"]) if rows else None,
            "final_return": rows[-1]["mean_return"] if rows else None,
            "steps_to_threshold": int(reached[0]) if reached else None,
            "wall_time": wall_time(folder.run_dir(trial["name"]))}


def _stats(values: list[float]) -> dict | None:
    """Mean, std (over seeds: population, as compare.py's), min and max; None for no values."""
    if not values:
        return None
    v = np.asarray(values, dtype=float)
    return {"mean": float(v.mean()), "std": float(v.std()), "min": float(v.min()), "max": float(v.max())}


def _config_summary(name: str, trials: list[dict], threshold: float | None) -> dict:
    """Per configuration: final evaluations over seeds, steps to ``threshold``, wall time."""
    # a failed trial's last evaluation is of a run an error cut short: not a final one (an
    # early-stopped trial's counts: ASHA ended it on purpose)
    finals = [t["final_return"] for t in trials if t["final_return"] is not None and t["status"] in DONE]
    steps = [t["steps_to_threshold"] for t in trials if t["steps_to_threshold"] is not None]
    walls = [t["wall_time"] for t in trials if t["wall_time"] is not None]
    statuses = {}
    for t in trials:
        statuses[t["status"]] = statuses.get(t["status"], 0) + 1
    return {"configuration": name, "seeds": [t["seed"] for t in trials],
            "final_return": _stats(finals),
            "steps_to_threshold": None if threshold is None else {
                "reached": len(steps), "of": len(trials),
                "mean": float(np.mean(steps)) if steps else None,
                "median": float(np.median(steps)) if steps else None},
            "wall_time": _stats(walls), "statuses": statuses, "trials": trials}


def _markdown(plan: dict, summary: dict) -> str:
    """summary.md: what was run, then one table row per configuration."""
    threshold = summary["threshold"]
    reach = f"steps to {threshold:g}" if threshold is not None else None
    lines = [f"# Sweep of {plan['script']}", "", f"`{plan['command']}`", "",
             "Final evaluation: the last row of each finished or early-stopped trial's eval.csv "
             "(mean return of its evaluation episodes); mean ± std (over seeds), min and max. "
             "Wall time: training seconds per trial (progress.csv), mean over seeds."
             + (f" Steps to {threshold:g}: the first evaluation at or above it, mean over the "
                "seeds that got there." if reach else ""), "",
             "| configuration | final evaluation | min | max |" + (f" {reach} |" if reach else "")
             + " wall time | trials |",
             "|---|---:|---:|---:|" + ("---:|" if reach else "") + "---:|---|"]
    for c in summary["configurations"]:
        f = c["final_return"]
        cells = [c["configuration"]]
        cells += ["-"] * 3 if f is None else [f"{f['mean']:.3f} ± {f['std']:.3f}", f"{f['min']:.3f}",
                                               f"{f['max']:.3f}"]
        if reach:
            s = c["steps_to_threshold"]
            cells.append(f"{s['mean']:,.0f} ({s['reached']}/{s['of']})" if s["reached"]
                         else f"never (0/{s['of']})")
        cells.append("-" if c["wall_time"] is None else f"{c['wall_time']['mean']:.1f} s")
        cells.append(", ".join(f"{n} {status}" for status, n in c["statuses"].items()))
        lines.append("| " + " | ".join(cells) + " |")
    unfinished = [t for c in summary["configurations"] for t in c["trials"] if t["status"] not in DONE]
    if unfinished:
        lines += ["", f"Not finished: {', '.join(t['trial'] for t in unfinished)}."]
    return "\n".join(lines) + "\n"


def _figure(folder: SweepFolder, plan: dict, summary: dict, path: Path) -> str | None:
    """curves.png: evaluation returns against steps, per configuration the mean over seeds
    and the min-max band (rlkit.plotting, as scripts/plot.py draws). Returns why there is no
    figure, or None."""
    curves = {}
    for c in summary["configurations"]:
        runs = [evaluations(folder.run_dir(t["trial"])) for t in c["trials"]]
        runs = [(np.array([r["step"] for r in rows]), np.array([r["mean_return"] for r in rows]))
                for rows in runs if rows]
        if runs:
            curves[c["configuration"]] = runs
    if not curves:
        return "no trial has an evaluation yet"
    threshold = summary["threshold"]
    references = None if threshold is None else {f"threshold {threshold:g}": threshold}
    try:
        fig = learning_curves(curves, xlabel="environment steps", ylabel="evaluation return",
                              title=f"{plan['script']}: evaluations over seeds", smooth=1,
                              references=references)
    except ValueError as e:  # seeds of one configuration that share no step range
        return str(e)
    fig.savefig(path)
    plt.close(fig)
    return None


def summarize(folder: SweepFolder, threshold: float | None = None) -> dict:
    """Write summary.json, summary.md and curves.png from the run folders of the sweep in
    ``folder`` (its plan names the trials, their configurations and seeds); return the summary.

    Per configuration: mean, std, min and max over seeds of the final evaluation (the last
    eval.csv row's ``mean_return``), with ``threshold`` the first step whose evaluation
    reached it (per trial, and mean and median over the seeds that did), training wall time
    (progress.csv), and how many trials finished, stopped or did not finish.
    """
    plan = folder.read_plan()
    by_config: dict[str, list[dict]] = {}
    for trial in plan["trials"]:
        by_config.setdefault(trial["config"], []).append(_trial_summary(folder, trial, threshold))
    summary = {"script": plan["script"], "command": plan["command"], "threshold": threshold,
               "configurations": [_config_summary(name, trials, threshold)
                                  for name, trials in by_config.items()]}
    why_not = _figure(folder, plan, summary, folder.path / "curves.png")
    summary["figure"] = "curves.png" if why_not is None else f"none: {why_not}"
    write_json_atomic(folder.path / "summary.json", summary)
    with atomic_open(folder.path / "summary.md") as f:
        f.write(_markdown(plan, summary))
    return summary
