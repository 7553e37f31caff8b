"""Run a training script over seeds and a grid of its flags as Ray Tune trials, then summarise.

    python scripts/sweep.py train_dqn --env CartPole-v1 --seeds 0-7 --grid lr=1e-3,5e-4
    python scripts/sweep.py train_pg --env CartPole-v1 --seeds 0-47 --grid algo=reinforce,a2c \\
        --steps 100000 --eval-every 2500 --eval-episodes 10 --threshold 475
    python scripts/sweep.py train_dqn --env CartPole-v1 --seeds 0-3 --search random --samples 8 \\
        --grid lr=loguniform:1e-4:1e-2 target_update=100,500 --early-stop asha
    python scripts/sweep.py --resume runs/sweep-train_dqn-CartPole-v1-<time>
    python scripts/sweep.py train_dqn --env CartPole-v1 --seeds 0-7 --address HEAD_IP:6379

Every flag that sweep.py does not take goes to the training script (``train_dqn`` or
``train_pg``), the same for every trial; so does all after ``--``. Each ``--grid NAME=V1,V2``
is a flag of the script (``lr`` -> ``--lr``; ``double_dqn=true,false`` -> ``--double-dqn`` and
``--no-double-dqn``). ``--search grid`` (default) runs every combination; ``--search random
--samples N`` draws N configurations (seeded by ``--search-seed``), each value from its list or
from ``uniform:LOW:HIGH``, ``loguniform:LOW:HIGH`` or ``randint:LOW:HIGH`` (HIGH included).
Every configuration runs once per seed of ``--seeds`` (``0-7``, ``0,3,5`` or ``0-3,10``).

Each trial is an ordinary run folder, ``<sweep>/runs/<configuration>,seed=<S>``, trained by
``python scripts/<script>.py ... --seed S --threads T --run-dir ...`` on one Ray Tune trial of
``--threads`` CPUs (default 1; BLAS gets as many threads). ``--early-stop asha`` stops the
trials whose ``--metric`` trails at the same number of evaluations. The plan is
``<sweep>/sweep.json``; ``--resume SWEEP`` keeps the trials that finished (or were stopped
early) and continues the others from their checkpoints (``--resume`` of the script). At the
end: summary.md, summary.json and curves.png in the sweep folder (``rlkit/sweeps.py``).

Without ``--address`` Ray starts on this machine with ``--num-cpus`` (default: all) and no
dashboard (``--dashboard`` starts one on 127.0.0.1); ``--address HOST:PORT`` runs the trials on
that Ray cluster, whose nodes must all see the sweep folder at the same path. The exit status
is 0 when every trial finished or was stopped early, 1 when some did not (resume them), 2 for
a refused command line.
"""
from __future__ import annotations

import argparse
import importlib
import itertools
import os
import shlex
import sys
import time
from pathlib import Path

import numpy as np

from _tabular import ArgumentParser, fail

from agents.training_run import EVAL_FIELDS
from rlkit.sweeps import (DONE, DashboardUnavailableError, SweepFolder, Trial, describe_trial, require_ray,
                          run_trials, summarize)

SCRIPTS = ("train_dqn", "train_pg")
METRICS = tuple(f"eval/{column}" for column in EVAL_FIELDS if column != "step")
DISTRIBUTIONS = ("uniform", "loguniform", "randint")
# flags of the training scripts that the sweep sets for each trial
RESERVED = ("seed", "threads", "run_dir", "resume", "overwrite", "no_progress")
# the flags a resumed sweep may change: how and where it runs, and what the summary counts
RESUME_FLAGS = ("resume", "address", "num_cpus", "dashboard", "threshold")


def build_parser() -> argparse.ArgumentParser:
    """The sweep's own flags; the rest of the command line belongs to the training script."""
    p = ArgumentParser(description=__doc__.split("\n")[0], allow_abbrev=False,  # --seed is not --seeds
                       usage="%(prog)s SCRIPT [sweep flags] [training flags] [-- training flags]")
    p.add_argument("script", nargs="?", help=f"the training script: {' or '.join(SCRIPTS)}")
    p.add_argument("--seeds", default="0",
                   help="seeds of every configuration: 0-7, 0,3,5 or 0-3,10 (default 0)")
    p.add_argument("--grid", nargs="+", action="extend", default=[], metavar="NAME=VALUES",
                   help="a training flag and its values, e.g. lr=1e-3,5e-4 (repeatable)")
    p.add_argument("--search", default="grid", choices=("grid", "random"),
                   help="grid: every combination (default); random: --samples draws")
    p.add_argument("--samples", type=int, help="--search random: configurations to draw")
    p.add_argument("--search-seed", type=int, default=0,
                   help="--search random: seed of the draws (default 0)")
    p.add_argument("--early-stop", choices=("asha",), help="stop trailing trials early (ASHA)")
    p.add_argument("--metric", default="eval/mean_return", choices=METRICS,
                   help="what --early-stop compares (default eval/mean_return)")
    p.add_argument("--mode", default="max", choices=("max", "min"),
                   help="--metric is better higher (max, default) or lower (min)")
    p.add_argument("--grace-period", type=int, default=1,
                   help="--early-stop: evaluations before a trial may be stopped (default 1)")
    p.add_argument("--threshold", type=float,
                   help="the summary counts the steps until an evaluation reaches it")
    p.add_argument("--threads", type=int, default=1, help="CPUs (and BLAS threads) per trial (default 1)")
    p.add_argument("--address", metavar="HOST:PORT", help="run on this Ray cluster (default: start Ray here)")
    p.add_argument("--num-cpus", type=int, help="a Ray started here: CPUs it may use (default: all)")
    p.add_argument("--dashboard", action="store_true", help="a Ray started here: also start its dashboard")
    p.add_argument("--out", metavar="SWEEP_DIR",
                   help="the sweep folder (default runs/sweep-<script>-<env>-<time>); missing or empty")
    p.add_argument("--resume", metavar="SWEEP_DIR", help="continue the sweep in SWEEP_DIR as planned")
    return p


def parse_seeds(text: str) -> list[int]:
    """``0-3,10`` -> [0, 1, 2, 3, 10]; exits with one line on anything else."""
    seeds = []
    for part in text.split(","):
        low, _, high = part.strip().partition("-")
        try:
            first, last = int(low), int(high or low)
        except ValueError:
            fail(f"--seeds {text!r}: expected seeds such as 0-7, 0,3,5 or 0-3,10")
        seeds += range(first, last + 1)
    if not seeds or len(set(seeds)) != len(seeds):
        fail(f"--seeds {text!r}: no seeds, or one seed twice")
    return seeds


def parse_grid(items: list[str], search: str) -> dict[str, list[str] | tuple]:
    """``["lr=1e-3,5e-4", "lr=loguniform:1e-4:1e-2"]`` -> {"lr": ["1e-3", "5e-4"]} or
    {"lr": ("loguniform", 1e-4, 1e-2)}; a distribution only with ``--search random``."""
    grid = {}
    for item in items:
        name, _, values = item.partition("=")
        name = name.strip().lstrip("-").replace("-", "_")
        if not name or not values:
            fail(f"--grid {item!r}: expected NAME=V1,V2,... such as lr=1e-3,5e-4")
        if name in RESERVED or name in grid:
            fail(f"--grid {item!r}: {name} is set by the sweep itself" if name in RESERVED
                 else f"--grid {item!r}: {name} appears twice")
        kind, _, bounds = values.partition(":")
        if kind in DISTRIBUTIONS:
            if search != "random":
                fail(f"--grid {item!r}: a distribution needs --search random")
            try:
                low, high = (float(b) for b in bounds.split(":"))
            except ValueError:
                fail(f"--grid {item!r}: expected {kind}:LOW:HIGH")
            if not low < high or (kind == "loguniform" and low <= 0):
                fail(f"--grid {item!r}: needs LOW < HIGH{' and LOW > 0' if kind == 'loguniform' else ''}")
            grid[name] = (kind, low, high)
        else:
            grid[name] = [v.strip() for v in values.split(",") if v.strip()]
            if not grid[name]:
                fail(f"--grid {item!r}: no values")
            if len(set(grid[name])) < len(grid[name]):  # two trials would share one run folder
                fail(f"--grid {item!r}: a value appears twice")
    return grid


def configurations(grid: dict, search: str, samples: int | None, seed: int) -> list[dict[str, str]]:
    """The configurations (flag name -> value as text) of a grid or random search."""
    if search == "grid":
        return [dict(zip(grid, values, strict=True)) for values in itertools.product(*grid.values())]
    rng = np.random.default_rng(seed)

    def draw(spec):
        if isinstance(spec, list):
            return spec[rng.integers(len(spec))]
        kind, low, high = spec
        if kind == "randint":
            return str(int(rng.integers(int(low), int(high) + 1)))
        if kind == "loguniform":
            return f"{np.exp(rng.uniform(np.log(low), np.log(high))):.4g}"
        return f"{rng.uniform(low, high):.4g}"
    return [{name: draw(spec) for name, spec in grid.items()} for _ in range(samples)]


def config_name(config: dict[str, str], index: int, search: str) -> str:
    """A configuration's name (and the start of its trials' folder names): ``lr=1e-3`` (the
    script's presets: ``preset``); random draws are numbered, as two may coincide."""
    name = ",".join(f"{k}={v}" for k, v in config.items()).replace("/", "_") or "preset"
    return f"sample{index}-{name}" if search == "random" else name


def flag_args(config: dict[str, str]) -> list[str]:
    """A configuration as training flags: ``--name value``; true/false as ``--name``/``--no-name``."""
    args = []
    for name, value in config.items():
        flag = name.replace("_", "-")
        if value.lower() in ("true", "false"):
            args.append(f"--{flag}" if value.lower() == "true" else f"--no-{flag}")
        else:
            args += [f"--{flag}", value]
    return args


def check_forwarded(flags: list[str]) -> None:
    """Exit with one line when a forwarded training flag is one the sweep sets per trial."""
    for token in flags:
        name = token.split("=")[0].lstrip("-").replace("-", "_")
        if token.startswith("--") and name in RESERVED:
            fail(f"{token.split('=')[0]} is set by the sweep for each trial; "
                 + ("use --seeds" if name == "seed" else "give it to sweep.py" if name == "threads"
                    else "use --out / --resume for the sweep folder"))


def make_plan(args: argparse.Namespace, forwarded: list[str], argv: list[str]) -> dict:
    """The sweep's plan (sweep.json): its settings and every trial, each command line checked
    by the training script's own parser (a bad flag exits here, before Ray starts)."""
    if args.script not in SCRIPTS:
        fail(f"unknown training script {args.script!r}: choose {' or '.join(SCRIPTS)}")
    random = args.search == "random"
    if random != (args.samples is not None) or (random and args.samples < 1):
        fail("--search random needs --samples N (N >= 1), and --samples needs --search random")
    if args.threads < 1 or args.grace_period < 1:
        fail("--threads and --grace-period must be at least 1")
    check_forwarded(forwarded)
    seeds, grid = parse_seeds(args.seeds), parse_grid(args.grid, args.search)
    parser = importlib.import_module(args.script).build_parser()
    configs, trials = [], []
    for i, config in enumerate(configurations(grid, args.search, args.samples, args.search_seed)):
        name, flags = config_name(config, i, args.search), [*forwarded, *flag_args(config)]
        parsed = parser.parse_args([*flags, "--seed", str(seeds[0])])  # exits on a bad flag
        configs.append({"name": name, "flags": config})
        trials += [{"name": f"{name},seed={seed}", "config": name, "seed": seed, "flags": flags,
                    "steps": parsed.steps} for seed in seeds]
    return {"script": args.script, "env": parsed.env, "seeds": seeds, "threads": args.threads,
            "command": shlex.join(["python", "scripts/sweep.py", *argv]),
            "search": args.search, "samples": args.samples, "search_seed": args.search_seed,
            "grid": {k: list(v) for k, v in grid.items()}, "early_stop": args.early_stop,
            "metric": args.metric, "mode": args.mode, "grace_period": args.grace_period,
            "threshold": args.threshold, "configs": configs, "trials": trials}


def new_folder(args: argparse.Namespace, plan: dict) -> SweepFolder:
    """The folder of a new sweep: ``--out`` (missing or empty) or a fresh one under runs/."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = Path(args.out or "runs/" + f"sweep-{plan['script']}-{plan['env']}-{stamp}".replace("/", "_"))
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        fail(f"{path} is not an empty folder: continue that sweep with --resume {path}, "
             "or give another --out")
    folder = SweepFolder(path)
    folder.write_plan(plan)
    return folder


def resumed_folder(parser: argparse.ArgumentParser, args: argparse.Namespace,
                   forwarded: list[str]) -> SweepFolder:
    """The folder of ``--resume``; exits with one line when it holds no plan or when a flag
    that would change the plan is given."""
    changed = [k for k, v in vars(args).items() if v != parser.get_default(k) and k not in RESUME_FLAGS]
    if changed or forwarded:
        fail(f"--resume continues the sweep as its sweep.json plans it: only "
             f"{', '.join('--' + f.replace('_', '-') for f in RESUME_FLAGS[1:])} may go with it "
             f"(got {' '.join(forwarded) or '--' + changed[0].replace('_', '-')})")
    folder = SweepFolder(args.resume)
    try:
        folder.read_plan()
    except (FileNotFoundError, ValueError) as e:
        fail(f"--resume {args.resume}: {e}")
    return folder


def check_threads_fit(threads: int, args: argparse.Namespace) -> None:
    """Exit with one line when a trial's ``threads`` CPUs exceed those of the Ray started here
    (``--num-cpus``, else every core): Ray would wait for such a CPU forever."""
    cpus = args.num_cpus or os.cpu_count()
    if not args.address and threads > cpus:
        fail(f"--threads {threads}: each trial needs that many CPUs, and the Ray started here has "
             f"{cpus} (--num-cpus)")


def trial_command(script: str, folder: SweepFolder, trial: dict, threads: int) -> Trial:
    """The trial's command now: ``--resume`` from its checkpoint when it has one, else a fresh
    run in its folder (``--overwrite``: what a run killed before its first checkpoint left)."""
    run = folder.run_dir(trial["name"])
    command = [sys.executable, str(Path(__file__).resolve().parent / f"{script}.py"), *trial["flags"],
               "--seed", str(trial["seed"]), "--threads", str(threads), "--no-progress"]
    if (run / "checkpoints" / "latest.npz").is_file():
        command += ["--resume", str(run)]
    else:
        command += ["--run-dir", str(run), "--overwrite"]
    return Trial(trial["name"], tuple(command), trial["steps"])


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    split = argv.index("--") if "--" in argv else len(argv)
    parser = build_parser()
    args, forwarded = parser.parse_known_args(argv[:split])
    forwarded += argv[split + 1:]
    try:
        require_ray()
    except ImportError as e:
        fail(e)
    if args.address and (args.num_cpus or args.dashboard):
        fail("--num-cpus and --dashboard are for a Ray started here, not one at --address")
    if args.num_cpus is not None and args.num_cpus < 1:
        fail("--num-cpus must be at least 1")
    if args.resume:
        folder = resumed_folder(parser, args, forwarded)
        plan = folder.read_plan()
        check_threads_fit(plan["threads"], args)
    else:
        if args.script is None:
            fail("give the training script (train_dqn or train_pg), or --resume SWEEP_DIR")
        args.script = args.script.removesuffix(".py")
        plan = make_plan(args, forwarded, argv)
        check_threads_fit(plan["threads"], args)
        folder = new_folder(args, plan)
        plan = folder.read_plan()  # as a resume reads it
    threshold = plan["threshold"] if args.threshold is None else args.threshold
    todo = [t for t in plan["trials"] if (folder.status(t["name"]) or {}).get("status") not in DONE]
    kept = len(plan["trials"]) - len(todo)
    print(f"sweep {folder.path}: {len(todo)} trial(s) to run"
          + (f", {kept} kept from before" if kept else "")
          + (f", on the Ray cluster at {args.address}" if args.address else ", on Ray started here"),
          flush=True)
    start = time.monotonic()
    if todo:
        try:
            run_trials(folder, [trial_command(plan["script"], folder, t, plan["threads"]) for t in todo],
                       threads=plan["threads"], address=args.address, num_cpus=args.num_cpus,
                       dashboard=args.dashboard, early_stop=plan["early_stop"], metric=plan["metric"],
                       mode=plan["mode"], grace_period=plan["grace_period"],
                       say=lambda line: print(line, flush=True))
        except (ConnectionError, DashboardUnavailableError) as e:
            fail(f"{e}; the sweep waits in {folder.path} for --resume")
    summary = summarize(folder, threshold)
    print()
    print((folder.path / "summary.md").read_text().rstrip())
    print(f"\n{time.monotonic() - start:.0f} s; written to {folder.path}/ "
          f"(summary.md, summary.json, runs/; figure: {summary['figure']})")
    unfinished = [t for c in summary["configurations"] for t in c["trials"] if t["status"] not in DONE]
    if unfinished:
        for t in unfinished:
            print(describe_trial(t["trial"], folder.status(t["trial"])), file=sys.stderr)
        print(f"error: {len(unfinished)} trial(s) did not finish; continue them with "
              f"python scripts/sweep.py --resume {folder.path}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
