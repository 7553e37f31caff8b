"""Environment throughput: agent steps per second for Pong, every variant measured in one run.

    python scripts/bench_envs.py [--seconds 3] [--repeats 3] [--out results/bench/envs.json]

Variants: raw `ALE/Pong-v5` (ale-py's defaults, no preprocessing); the DQN pipeline built by
hand from Gymnasium's wrappers (AtariPreprocessing + FrameStackObservation, same settings as
rlkit); rlkit's `envs.make("Pong")`; `envs.make_vec("Pong", n)` for n = 2, 4, 8 (agent steps/s
counts every sub-env's step); and ale-py's AtariVectorEnv(8) without rlkit's wrappers. Actions are uniformly random. The variants are run
round-robin `--repeats` times so background load hits them alike; the table shows medians.
Targets: rlkit >= 90% of the hand-built pipeline; vectorised >= 4,500 agent steps/s.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import sys
import time
from pathlib import Path

import ale_py
import gymnasium as gym
import numpy as np
from ale_py.vector_env import AtariVectorEnv
from gymnasium.wrappers import AtariPreprocessing, FrameStackObservation

import envs

VECTOR_SIZES = (2, 4, 8)
RATIO_TARGET = 0.90
VECTOR_TARGET = 4500.0


def hand_built_pong() -> gym.Env:
    """rlkit's DQN Pong settings, wired directly from Gymnasium's wrappers."""
    env = gym.make("ALE/Pong-v5", frameskip=1, repeat_action_probability=0.25, full_action_space=False)
    env = AtariPreprocessing(env, noop_max=30, frame_skip=4, screen_size=84, terminal_on_life_loss=False)
    return FrameStackObservation(env, 4, padding_type="reset")


def bare_vector() -> gym.vector.VectorEnv:
    """ale-py's AtariVectorEnv with rlkit's settings but none of its wrappers."""
    return AtariVectorEnv("pong", VECTOR_SIZES[-1], repeat_action_probability=0.25, noop_max=30,
                          use_fire_reset=False, reward_clipping=False)


def time_single(env: gym.Env, seconds: float, seed: int) -> float:
    """Agent steps per second of one env under random actions (resets included)."""
    rng = np.random.default_rng(seed)
    actions = rng.integers(env.action_space.n, size=4096).tolist()
    env.reset(seed=seed)
    steps, start = 0, time.perf_counter()
    while True:
        for a in actions[steps % 4096: steps % 4096 + 256]:
            _, _, terminated, truncated, _ = env.step(a)
            if terminated or truncated:
                env.reset()
        steps += 256
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return steps / elapsed


def time_vector(venv: gym.vector.VectorEnv, seconds: float, seed: int) -> float:
    """Agent steps per second (sum over sub-envs) of a vector env under random actions."""
    rng = np.random.default_rng(seed)
    n = venv.num_envs
    actions = rng.integers(venv.single_action_space.n, size=(64, n))
    venv.reset(seed=seed)
    calls, start = 0, time.perf_counter()
    while True:
        for a in actions:
            venv.step(a)
        calls += len(actions)
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return calls * n / elapsed


def main() -> None:
    """Parse flags, run every variant round-robin, print the table, write the JSON."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=3.0, help="timed seconds per variant per repeat")
    p.add_argument("--repeats", type=int, default=3, help="round-robin passes over all variants")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="results/bench/envs.json")
    args = p.parse_args()

    variants = {
        "raw ALE/Pong-v5": ("single", lambda: gym.make("ALE/Pong-v5")),
        "hand-built DQN Pong": ("single", hand_built_pong),
        "rlkit envs.make('Pong')": ("single", lambda: envs.make("Pong")),
        **{f"rlkit envs.make_vec('Pong', {n})": ("vector", lambda n=n: envs.make_vec("Pong", n))
           for n in VECTOR_SIZES},
        # the native env without rlkit's wrappers, to show what they cost
        f"bare AtariVectorEnv({VECTOR_SIZES[-1]})": ("vector", bare_vector),
    }
    load_before = os.getloadavg()[0]  # other jobs on the machine move these numbers a lot
    built = {name: (kind, make()) for name, (kind, make) in variants.items()}
    runs: dict[str, list[float]] = {name: [] for name in variants}
    for r in range(args.repeats):
        for name, (kind, env) in built.items():
            timer = time_single if kind == "single" else time_vector
            timer(env, 0.3, args.seed)  # warm-up: caches, threads, first resets
            runs[name].append(timer(env, args.seconds, args.seed + r))
            print(f"  pass {r + 1}/{args.repeats}  {name:<32} {runs[name][-1]:9.0f} steps/s", file=sys.stderr)
    for _, env in built.values():
        env.close()
    load_after = os.getloadavg()[0]

    median = {name: statistics.median(v) for name, v in runs.items()}
    ratio = median["rlkit envs.make('Pong')"] / median["hand-built DQN Pong"]
    vec_best_name = max((n for n in median if n.startswith("rlkit envs.make_vec")), key=median.get)
    print(f"\n{'variant':<34}{'median steps/s':>15}{'min':>9}{'max':>9}")
    for name, v in runs.items():
        print(f"{name:<34}{median[name]:>15.0f}{min(v):>9.0f}{max(v):>9.0f}")
    print(f"\nrlkit / hand-built: {ratio:.3f} (target >= {RATIO_TARGET})")
    print(f"best vectorised: {median[vec_best_name]:.0f} steps/s, {vec_best_name} (target >= {VECTOR_TARGET:.0f})")
    print(f"1-min load average: {load_before:.2f} before, {load_after:.2f} after ({os.cpu_count()} CPUs)")

    result = {
        "command": shlex.join(["python", "scripts/bench_envs.py", *sys.argv[1:]]),
        "machine": {"cpus": os.cpu_count(), "load_avg_1min_before": load_before, "load_avg_1min_after": load_after, "platform": platform.platform(), "python": platform.python_version(),
                    "numpy": np.__version__, "gymnasium": gym.__version__, "ale_py": ale_py.__version__},
        "settings": {"seconds": args.seconds, "repeats": args.repeats, "seed": args.seed, "actions": "uniform random",
                     "pong": "sticky 0.25, minimal action set, frame skip 4 + max-pool, noop_max 30, 84x84x4"},
        "steps_per_s": {name: {"median": round(median[name], 1), "runs": [round(x, 1) for x in v]}
                        for name, v in runs.items()},
        "checks": {
            "rlkit_over_hand_built": round(ratio, 4), "ratio_target": RATIO_TARGET,
            "ratio_met": ratio >= RATIO_TARGET,
            "best_vector": vec_best_name, "best_vector_steps_per_s": round(median[vec_best_name], 1),
            "vector_target": VECTOR_TARGET, "vector_met": median[vec_best_name] >= VECTOR_TARGET,
        },
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    tmp.replace(out)  # never leave a half-written file behind
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
