"""Engine speed against PyTorch CPU: rlkit time / torch time for each case, with targets.

    python scripts/bench_core.py [--threads 2] [--repeats 15] [--rounds 3] [--cases dqn_train_step,...]
                                 [--out results/bench/core.json]
    python scripts/bench_core.py --profile dqn_train_step     # where rlkit's time goes (cProfile)
    python scripts/bench_core.py --breakdown dqn_recipe_update  # ms per op forward/backward

Each framework runs in a child process of its own (scripts/_bench_core_worker.py, the same
program for both), never side by side in one process, where their thread pools would fight.
Both children get the same thread count: OMP/OPENBLAS/MKL/NUMBA_NUM_THREADS in their
environment, and torch.set_num_threads. OPENBLAS_CORETYPE is passed on untouched and recorded.
A round runs each framework's child once; a child's time for a case is the median over
``--repeats`` samples of milliseconds per call, after a warm-up; the reported time is the lowest
of the ``--rounds`` rounds' medians (all are kept in the JSON). Times are wall clock on a
2-core machine that other work may share: rerun before trusting a ratio near its target. Without torch installed (the ``bench`` extra) only rlkit is timed.

With ``--lockstep N`` the two frameworks are also timed in lock-step (scripts/_lockstep.py):
one long-lived worker each, taking turns on each case N times, so that a slow spell of the
machine hits both sides of a pair seconds apart; the median of the N paired ratios is printed
in a second table and kept in the JSON under "lockstep". The rounds' best times compare two
processes minutes apart, which this machine's drift (20-50% within minutes) can bias either
way.

Writes ``--out`` (JSON: per case both medians, the ratio, the target, pass/fail, achieved
GFLOP/s of the GEMM work, plus thread count, versions, BLAS, date) and prints a table.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

from _bench_core_worker import CASES, case_flops, git_revision, instruction_set_limits
from _lockstep import paired_turns, start, stop, turn_settings

from rlkit.backend import thread_limited_env

WORKER = Path(__file__).with_name("_bench_core_worker.py")
# 1-minute load average above which the printed table carries a warning: other processes held
# the cores, and an OpenMP or OpenBLAS pool that finds a core busy can slow down 10-100x
BUSY_LOAD = 0.5
# the most rlkit time / torch time may be for a case to pass (issue 15: PyTorch's speed or better
# on every machine; the batch-1 forward and the MLP step, where PyTorch's per-op overhead
# dominates, by a margin)
TARGETS = {"dqn_agent_update": 1.0, "dqn_recipe_update": 1.0, "dqn_train_step": 1.0,
           "ppo_atari_minibatch": 1.0, "a2c_pong_update": 1.0, "lstm_fwd_bwd": 1.0,
           "cnn_forward_b1": 0.8, "mlp_train_step": 0.3}


def cpu_model() -> dict:
    """The CPU as /proc/cpuinfo names it, with family/model numbers (a KVM guest may say only
    "AMD EPYC") and the vector extensions that decide GEMM speed: figures from two CPUs must
    never be compared as one."""
    info = {}
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            key, _, value = (part.strip() for part in line.partition(":"))
            if key in ("model name", "cpu family", "model", "vendor_id") and key not in info:
                info[key] = value
            elif key == "flags" and "flags" not in info:
                flags = set(value.split())
                info["flags"] = sorted(flags & {"avx2", "avx512f", "avx512_bf16", "amx_tile", "fma"})
    return info


def cpu_line(cpu: dict) -> str:
    """``cpu_model()`` as the first words of a benchmark's printed table."""
    return (f"CPU: {cpu.get('model name')} (family {cpu.get('cpu family')}, model {cpu.get('model')}, "
            f"{' '.join(cpu.get('flags', []))})")


def run_child(command: list, threads: int, who: str) -> subprocess.CompletedProcess:
    """``python *command`` in a fresh process whose every thread pool is limited to ``threads``;
    exits with its stderr, naming ``who`` failed, if it fails."""
    done = subprocess.run([sys.executable, *command], env=thread_limited_env(threads),
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{who} failed (exit {done.returncode}):\n{done.stderr.strip()}")
    return done


def last_json_line(done: subprocess.CompletedProcess) -> dict:
    """A child's report: the JSON of its last line of output."""
    return json.loads(done.stdout.strip().splitlines()[-1])


def alternate_children(script: str, labels, rounds: int, threads: int, arguments) -> dict:
    """{label: [report, ...]}: ``python script *arguments(label)`` run once per label per round,
    labels alternating (so that a slow spell of the machine hits every side), each child with
    ``threads`` threads in its environment and its report the JSON of its last output line."""
    reports = {label: [] for label in labels}
    for _ in range(rounds):
        for label in labels:
            done = run_child([script, *arguments(label)], threads,
                             f"{Path(script).name}: the {label} child")
            reports[label].append(last_json_line(done))
    return reports


def utc_timestamp() -> str:
    """Now in UTC to the second, ISO 8601 ("2026-12-05T00:30:00+00:00"): every report's date."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def write_report(out: str, report: dict, threads: int) -> None:
    """Write ``report`` as JSON to ``out``, after the fields every benchmark records: the
    command, the date, the CPU, the thread count, the checkout's revision and the variables
    that hold a side to an older instruction set (an emulated run is never read as the
    machine's own)."""
    common = {"command": "python " + " ".join(sys.argv),
              "date": utc_timestamp(),
              "cpu": cpu_model(), "threads": threads, "revision": git_revision(),
              "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE"),
              "instruction_set_limits": instruction_set_limits()}
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps({**common, **report}, indent=1) + "\n")
    print(f"wrote {out}")


def busy_warning(load_before: float, load_after: float, threads: int) -> str | None:
    """A warning line when other work shared the machine, else None: a 1-minute load average
    above BUSY_LOAD before the benchmark started (none of it the benchmark's own), or above
    BUSY_LOAD plus the benchmark's own ``threads`` when it ended."""
    if load_before <= BUSY_LOAD and load_after <= BUSY_LOAD + threads:
        return None
    return (f"warning: 1-minute load average {load_before:.1f} before, {load_after:.1f} after, on "
            f"{os.cpu_count()} cores: other work shared the machine, so these figures are "
            "unreliable; rerun when it is quiet")


def run_worker(framework: str, args, extra=()) -> subprocess.CompletedProcess:
    """Run the worker for ``framework`` in a fresh process; raise with its stderr if it fails."""
    return run_child([str(WORKER), framework, "--threads", str(args.threads), *extra], args.threads,
                     f"bench_core: the {framework} worker")


def measure(framework: str, args) -> dict:
    """The worker's JSON report for ``framework`` over ``args.cases``."""
    return last_json_line(run_worker(
        framework, args, ["--cases", ",".join(args.cases), "--repeats", str(args.repeats)]))


def best_round(reports: list, case: str) -> tuple:
    """(lowest per-round median ms, every round's median ms) of ``case``.

    On a shared machine another process that wakes up slows a whole round (an OpenMP pool
    with fewer free cores than threads can lose 10-100x), so the least disturbed round is
    the estimate of the framework's own speed; the others are kept in the JSON.
    """
    medians = [r["cases"][case]["median_ms"] for r in reports]
    return min(medians), [round(m, 4) for m in medians]


def gemm_ceilings(rlkit: list, torch: list) -> dict:
    """Each framework's best 1024^3 GEMM GFLOP/s over its rounds (torch None without torch)."""
    return {"rlkit": max(r["gemm_gflops"] for r in rlkit),
            "torch": max(r["gemm_gflops"] for r in torch) if torch else None}


def judged(case: str, ratio) -> dict:
    """{"target", "pass"} of ``case`` at rlkit / torch ``ratio`` (pass None without a ratio or
    a target)."""
    target = TARGETS.get(case)
    return {"target": target, "pass": ratio <= target if ratio and target else None}


def verdict_cells(row: dict) -> str:
    """A table row's target and pass columns."""
    verdict = {True: "yes", False: "NO", None: "-"}[row["pass"]]
    target = f"<= {row['target']}" if row["target"] else "-"
    return f"{target:>7} {verdict:>5}"


def compare(rlkit: list, torch: list, cases, ceiling: dict) -> dict:
    """Per case: both times, ratio, target, pass, GFLOP/s and its share of the framework's own
    GEMM ``ceiling`` measured in the same run (torch fields None without torch)."""
    rows = {}
    for case in cases:
        flops = case_flops(case)
        ours, our_rounds = best_round(rlkit, case)
        theirs, their_rounds = best_round(torch, case) if torch else (None, None)
        ratio = ours / theirs if theirs else None
        rows[case] = {
            "rlkit_ms": round(ours, 4), "torch_ms": round(theirs, 4) if theirs else None,
            "ratio": round(ratio, 3) if ratio else None, **judged(case, ratio),
            "gflop": round(flops / 1e9, 6),
            "rlkit_gflops": round(flops / ours / 1e6, 2),
            "torch_gflops": round(flops / theirs / 1e6, 2) if theirs else None,
            "rlkit_of_ceiling": round(flops / ours / 1e6 / ceiling["rlkit"], 3),
            "torch_of_ceiling": round(flops / theirs / 1e6 / ceiling["torch"], 3) if theirs else None,
            "rlkit_round_medians_ms": our_rounds, "torch_round_medians_ms": their_rounds,
            "calls_per_sample": {"rlkit": rlkit[0]["cases"][case]["calls_per_sample"],
                                 "torch": torch[0]["cases"][case]["calls_per_sample"] if torch else None},
        }
    return rows


def format_table(rows: dict, threads: int, cpu: dict, ceilings: dict) -> str:
    header = (f"{'case':<20} {'rlkit ms':>9} {'torch ms':>9} {'ratio':>6} {'target':>7} {'pass':>5}"
              f" {'rlkit GF/s':>10} {'torch GF/s':>10}")
    ceiling = ", ".join(f"{name} {value:.0f}" for name, value in ceilings.items() if value)
    lines = [f"{cpu_line(cpu)}; threads: {threads}; float32 1024^3 GEMM GFLOP/s: {ceiling}",
             header, "-" * len(header)]

    def cell(value, spec):
        return format(value, spec) if value is not None else "-"

    for case, r in rows.items():
        lines.append(f"{case:<20} {r['rlkit_ms']:>9.3f} {cell(r['torch_ms'], '>9.3f'):>9}"
                     f" {cell(r['ratio'], '>6.2f'):>6} {verdict_cells(r)}"
                     f" {r['rlkit_gflops']:>10.1f} {cell(r['torch_gflops'], '>10.1f'):>10}")
    return "\n".join(lines)


def in_lockstep(args) -> dict:
    """rlkit against torch in lock-step over ``args.cases``: per case both medians, the median
    of the paired ratios rlkit / torch, its target and pass/fail (scripts/_lockstep.py)."""
    workers = {framework: start(framework, args.cases, args.threads)[0] for framework in ("torch", "rlkit")}
    try:
        print(f"lock-step: {args.lockstep} pairs of turns per case")
        results = paired_turns(workers, "torch", args.cases, args.lockstep)
    finally:
        stop(workers.values())
    for case, row in results.items():
        row.update(judged(case, row["ratio"]))
    return {"pairs": args.lockstep, **turn_settings(),
            "ratio": "median over pairs of rlkit ms / torch ms", "cases": results}


def format_lockstep(lockstep: dict) -> str:
    header = f"{'case':<20} {'rlkit ms':>9} {'torch ms':>9} {'ratio':>6} {'target':>7} {'pass':>5}"
    lines = [f"lock-step, {lockstep['pairs']} pairs per case (ratio: median of the paired ratios)",
             header, "-" * len(header)]
    for case, r in lockstep["cases"].items():
        lines.append(f"{case:<20} {r['rlkit_ms']:>9.3f} {r['torch_ms']:>9.3f} {r['ratio']:>6.2f}"
                     f" {verdict_cells(r)}")
    return "\n".join(lines)


def format_breakdown(report: dict) -> str:
    """The worker's per-op breakdown as lines of ``ms  share  label``, largest first."""
    total = report["total_ms"]
    lines = [f"{report['case']}: {total:.2f} ms per call (timers in place)"]
    for label, ms in report["ms"].items():
        lines.append(f"{ms:9.3f} ms {100 * ms / total:5.1f}%  {label}")
    return "\n".join(lines)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=2, help="threads for every pool of both frameworks")
    p.add_argument("--repeats", type=int, default=15, help="timed samples per case and round (median)")
    p.add_argument("--rounds", type=int, default=3,
                   help="rlkit and torch processes run alternately this many times; the best round counts")
    p.add_argument("--cases", default=",".join(TARGETS), help="comma-separated subset of " + ", ".join(CASES))
    p.add_argument("--out", default="results/bench/core.json")
    p.add_argument("--lockstep", type=int, default=0, metavar="PAIRS",
                   help="also time rlkit and torch in lock-step, this many pairs of turns per case")
    p.add_argument("--profile", choices=sorted(CASES),
                   help="run rlkit's side of one case under cProfile and print the top 25 functions")
    p.add_argument("--breakdown", choices=sorted(CASES),
                   help="print rlkit's milliseconds per op (forward and backward), optimiser and the rest")
    args = p.parse_args(argv)
    args.cases = args.cases.split(",")
    unknown = sorted(set(args.cases) - set(CASES))
    if unknown:
        p.error(f"unknown case(s) {unknown}: expected some of {list(CASES)}")
    if args.profile:
        print(run_worker("rlkit", args, ["--profile", args.profile]).stdout)
        return
    if args.breakdown:
        print(format_breakdown(json.loads(run_worker("rlkit", args, ["--breakdown", args.breakdown]).stdout)))
        return

    load_before = os.getloadavg()[0]
    have_torch = importlib.util.find_spec("torch") is not None
    rlkit, torch = [], []
    for _ in range(args.rounds):  # alternate, so a slow spell of the machine hits both sides
        rlkit.append(measure("rlkit", args))
        if have_torch:
            torch.append(measure("torch", args))
    ceilings = gemm_ceilings(rlkit, torch)
    rows = compare(rlkit, torch, args.cases, ceilings)
    lockstep = in_lockstep(args) if args.lockstep and have_torch else None
    report = {
        "command": "python scripts/bench_core.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "date": utc_timestamp(),
        "threads": args.threads,
        "repeats": args.repeats,
        "rounds": args.rounds,
        "ratio": "rlkit median time / torch median time; a case passes when ratio <= target",
        "gflops": "GEMM and convolution FLOPs a call must do (2 per multiply-add), per second of median time",
        "machine": {"cpu": cpu_model(), "cpu_count": os.cpu_count(),
                    "loadavg_1min_before_after": [load_before, os.getloadavg()[0]],
                    "note": "shared 2-core machine: other work may run concurrently"},
        "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE"),
        "gemm_gflops": {name: [r["gemm_gflops"] for r in reports]
                        for name, reports in (("rlkit", rlkit), ("torch", torch))},
        "rlkit": {k: rlkit[0][k] for k in ("versions", "env", "python")},
        "torch": {k: torch[0][k] for k in ("versions", "env", "python")} if torch else "not installed",
        "cases": rows,
        "lockstep": lockstep,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(format_table(rows, args.threads, report["machine"]["cpu"], ceilings))
    if lockstep:
        print(format_lockstep(lockstep))
    warning = busy_warning(*report["machine"]["loadavg_1min_before_after"], args.threads)
    if warning:
        print(warning)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
