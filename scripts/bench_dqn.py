"""DQN on Pong while it learns: agent steps per second, where the time goes, peak memory.

    python scripts/bench_dqn.py [--warmup 2000] [--steps 4000] [--threads 0]

Runs the real ``DQN.learn`` loop with the default Pong recipe (agents/dqn.py ``PRESETS["image"]``:
the 2013 network with a dueling head, 3-step Double DQN, batch 32, an update every step;
Pong without sticky actions, as scripts/train_dqn.py trains it) and times its parts by wrapping
them: env step, acting (epsilon-greedy forward), replay add, replay sample, and the rest of the
update (targets, forward, backward, Adam). The first ``--warmup`` steps fill the replay memory
and are not timed. Also reports the hours one million agent steps take at the measured rate.

The yardstick: the same update (scripts/_bench_core_worker.py's ``dqn_recipe_update`` case)
timed for rlkit and for PyTorch CPU, each in a process of its own with the same thread count,
alternating ``--rounds`` times (best round counts, as in bench_core.py). From them: the steps
per second this loop would reach if its update took PyTorch's time, i.e. what the target asks
of any CPU framework on this machine. Skipped, and said so, without torch (the ``bench`` extra).
Writes results/bench/dqn.json.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import resource
import time
from collections import defaultdict
from pathlib import Path

from _bench_core_worker import git_revision, instruction_set_limits
from _bench_pg_worker import Timed
from bench_core import best_round, cpu_model, measure

import envs
from agents.dqn import DQN

YARDSTICK_CASE = "dqn_recipe_update"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--warmup", type=int, default=2000, help="untimed steps that fill the replay")
    parser.add_argument("--steps", type=int, default=4000, help="timed steps (with learning)")
    parser.add_argument("--threads", type=int, default=0, help="BLAS threads (0: library default)")
    parser.add_argument("--rounds", type=int, default=3, help="yardstick rounds per framework")
    parser.add_argument("--out", default="results/bench/dqn.json")
    args = parser.parse_args()

    env = envs.make("Pong", repeat_action_probability=0.0)
    agent = DQN(env, seed=0, learning_starts=args.warmup, buffer_size=args.warmup + args.steps + 10,
                threads=args.threads)
    totals, clock = defaultdict(float), {"active": False}
    env.step = Timed(env.step, "env", totals, clock)
    agent._act = Timed(agent._act, "acting", totals, clock)
    agent.replay.add = Timed(agent.replay.add, "replay_add", totals, clock)
    agent.replay.sample = Timed(agent.replay.sample, "replay_sample", totals, clock)
    agent.train_step = Timed(agent.train_step, "update_incl_sample", totals, clock)

    agent.learn(args.warmup)
    load_before = os.getloadavg()[0]
    clock["active"] = True
    start = time.perf_counter()
    agent.learn(args.warmup + args.steps)
    wall = time.perf_counter() - start
    clock["active"] = False

    update = totals.pop("update_incl_sample") - totals["replay_sample"]
    parts = {**totals, "update": update}
    parts["loop_other"] = wall - sum(parts.values())
    result = {
        "command": "python scripts/bench_dqn.py " + " ".join(
            f"--{k} {v}" for k, v in vars(args).items() if k != "out"),
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "revision": git_revision(),
        "machine": {"cpu": cpu_model(), "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE"),
                    "instruction_set_limits": instruction_set_limits(),
                    "cpus": os.cpu_count(), "python": platform.python_version(),
                    "loadavg_1min_before_after": [load_before, os.getloadavg()[0]],
                    "note": "shared 2-core machine: other work may run concurrently"},
        "timed_steps": args.steps, "updates": agent.updates,
        "recipe": {k: getattr(agent.config, k) for k in ("network", "dueling", "n_step", "train_freq",
                                                         "batch_size", "double_dqn")},
        "steps_per_second": args.steps / wall,
        "hours_per_million_steps": 1e6 / (args.steps / wall) / 3600,
        "ms_per_step": {k: 1000 * v / args.steps for k, v in parts.items()},
        "ms_per_update": 1000 * update / max(agent.updates, 1),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "replay_bytes_per_transition": agent.replay.bytes_per_transition,
        "yardstick": yardstick(args, wall - update, agent.updates),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    cpu = result["machine"]["cpu"]
    print(f"{cpu.get('model name')} (family {cpu.get('cpu family')} model {cpu.get('model')}): "
          f"{result['steps_per_second']:.1f} agent steps/s "
          f"({result['hours_per_million_steps']:.1f} h per million steps), "
          f"{result['ms_per_update']:.1f} ms per update, peak RSS {result['peak_rss_mb']:.0f} MB")
    for name, ms in sorted(result["ms_per_step"].items(), key=lambda kv: -kv[1]):
        print(f"  {name:14s} {ms:7.3f} ms/step")
    stick = result["yardstick"]
    if "torch_update_ms" in stick:
        print(f"the update alone, separate processes, {stick['threads']} threads: rlkit "
              f"{stick['rlkit_update_ms']:.1f} ms, torch {stick['torch_update_ms']:.1f} ms "
              f"(ratio {stick['ratio']:.2f}); this loop with torch's update: "
              f"{stick['steps_per_second_with_torch_update']:.1f} steps/s")
    else:
        print(f"yardstick: {stick['skipped']}")
    print(f"load average {load_before:.2f} -> {os.getloadavg()[0]:.2f}; wrote {args.out}")


def yardstick(args, loop_without_update_s: float, updates: int) -> dict:
    """rlkit's and PyTorch's time for the same update, and the steps/s of this loop (its own
    env, acting and replay time) with each of them in place of the measured update."""
    if importlib.util.find_spec("torch") is None:
        return {"skipped": "torch is not installed (pip install -e '.[bench]')"}
    threads = args.threads or os.cpu_count()
    worker_args = argparse.Namespace(threads=threads, cases=[YARDSTICK_CASE], repeats=10)
    rlkit, torch = [], []
    for _ in range(args.rounds):
        rlkit.append(measure("rlkit", worker_args))
        torch.append(measure("torch", worker_args))
    ours, our_rounds = best_round(rlkit, YARDSTICK_CASE)
    theirs, their_rounds = best_round(torch, YARDSTICK_CASE)

    def steps_per_second(update_ms):
        return args.steps / (loop_without_update_s + updates * update_ms / 1000)

    return {"case": f"{YARDSTICK_CASE} (scripts/_bench_core_worker.py)", "threads": threads,
            "rlkit_update_ms": ours, "torch_update_ms": theirs, "ratio": ours / theirs,
            "rlkit_round_medians_ms": our_rounds, "torch_round_medians_ms": their_rounds,
            "steps_per_second_with_rlkit_update": steps_per_second(ours),
            "steps_per_second_with_torch_update": steps_per_second(theirs)}


if __name__ == "__main__":
    main()
