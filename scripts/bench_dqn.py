"""DQN on Pong while it learns: agent steps per second, where the time goes, peak memory.

    python scripts/bench_dqn.py [--warmup 2000] [--steps 4000] [--threads 0]

Runs the real ``DQN.learn`` loop (Nature CNN, batch 32, train every 4 steps) and times its
parts by wrapping them: env step, acting (epsilon-greedy forward), replay add, replay sample,
and the rest of the update (targets, forward, backward, Adam). The first ``--warmup`` steps
fill the replay memory and are not timed. Writes results/bench/dqn.json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import time
from collections import defaultdict
from pathlib import Path

import envs
from agents.dqn import DQN

TARGET_STEPS_PER_SECOND = 150


class Timed:
    """Wraps a callable, adding its wall time to ``totals[name]`` while ``active``."""

    def __init__(self, fn, name, totals, clock):
        self.fn, self.name, self.totals, self.clock = fn, name, totals, clock

    def __call__(self, *args, **kwargs):
        if not self.clock["active"]:
            return self.fn(*args, **kwargs)
        start = time.perf_counter()
        try:
            return self.fn(*args, **kwargs)
        finally:
            self.totals[self.name] += time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--warmup", type=int, default=2000, help="untimed steps that fill the replay")
    parser.add_argument("--steps", type=int, default=4000, help="timed steps (with learning)")
    parser.add_argument("--threads", type=int, default=0, help="BLAS threads (0: library default)")
    parser.add_argument("--out", default="results/bench/dqn.json")
    args = parser.parse_args()

    env = envs.make("Pong")
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
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "loadavg_1min_before_after": [load_before, os.getloadavg()[0]],
                    "note": "shared 2-core machine: other work may run concurrently"},
        "timed_steps": args.steps, "updates": agent.updates,
        "steps_per_second": args.steps / wall, "target_steps_per_second": TARGET_STEPS_PER_SECOND,
        "ms_per_step": {k: 1000 * v / args.steps for k, v in parts.items()},
        "ms_per_update": 1000 * update / max(agent.updates, 1),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "replay_bytes_per_transition": agent.replay.bytes_per_transition,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"{result['steps_per_second']:.1f} agent steps/s (target >= {TARGET_STEPS_PER_SECOND}), "
          f"{result['ms_per_update']:.1f} ms per update, peak RSS {result['peak_rss_mb']:.0f} MB")
    for name, ms in sorted(result["ms_per_step"].items(), key=lambda kv: -kv[1]):
        print(f"  {name:14s} {ms:7.3f} ms/step")
    print(f"load average {load_before:.2f} -> {os.getloadavg()[0]:.2f}; wrote {args.out}")


if __name__ == "__main__":
    main()
