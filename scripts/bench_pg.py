"""Policy-gradient agents on Pong while they learn: rlkit against the book's loop and PyTorch.

    python scripts/bench_pg.py [--episodes 10] [--repeats 3] [--out results/bench/pg.json]
    python scripts/bench_pg.py --algo ppo [--rollouts 10] [--rounds 2] [--threads 2]
                               [--out results/bench/ppo.json]

``--algo reinforce`` (the default): frames per second of the book's Pong network. Two
contestants, each training the book's network (6400 -> 200 ReLU -> 1 sigmoid, no biases) with
the book's source hyper-parameters (batch 10 episodes, RMSProp decay 0.99, lr 1e-4, gamma 0.99,
returns restarted at every point and standardised per episode):

- "book loop": a single-file NumPy re-implementation of the book's source (Karpathy's
  pg-pong.py), written here from the chapter's description: float64 weights, one forward pass
  per frame that keeps x and h, "fake label minus probability" as d log p / d logit, one
  backward pass per episode over the stacked frames, gradients summed over the batch;
- "rlkit": ``agents.policy_gradient.PolicyGradient(policy="book")``, float32, acting with one
  no-graph forward per frame and learning with one batched forward + backward per episode,
  its first layer multiplying only the nonzero pixels of each difference frame.

Network throughput (the target, >= 2x): both play the same recorded Pong episodes (real
difference frames and rewards, recorded once with random UP/DOWN moves and replayed by a
zero-cost env, so the emulator's cost is left out); a round is ``--episodes`` episodes, update
included. End to end: both train on ``envs.make("Pong", preprocess="pg", actions="updown")``
for one episode per round (the env does the frame preprocessing for both; the book's
``prepro`` is the same function, ``envs.atari.pg_preprocess``). The contestants alternate
``--repeats`` times so background load hits them alike; medians are reported. BLAS runs on one
thread for both (rlkit's setting for this network). Writes results/bench/pg.json.

``--algo ppo``: agent steps per second of PPO on Pong while it learns, with the time split
(envs, acting, update, other), rlkit's ``PPO.learn`` side by side with the same loop written on
PyTorch CPU (scripts/_bench_pg_worker.py says what each side does), both with CleanRL's
ppo_atari settings (8 envs x 128 steps per rollout, 4 minibatches, 4 epochs, Nature-CNN trunk
with policy and value heads, lr 2.5e-4, clip 0.1, entropy 0.01, value 0.5 clipped, gradient
norm 0.5) on the same env, ``envs.make_vec("Pong", 8)``. As in bench_core.py, each framework
runs in a child process of its own with the same thread count (OMP/OPENBLAS/MKL/NUMBA_NUM_THREADS
in its environment; each sets its own as well), the two alternate ``--rounds`` times and the
best round of each counts. The target (issue 12): rlkit's steps/s >= PyTorch's; the ratio is
reported whatever it is. Writes results/bench/ppo.json with the CPU model and the thread count.
Without torch installed (the ``bench`` extra) only rlkit is timed.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from threadpoolctl import threadpool_limits

from _bench_pg_worker import PARTS, PPO_ATARI
from _bench_core_worker import git_revision
from bench_core import busy_warning, cpu_model, last_json_line, run_child, utc_timestamp

import envs
from agents.policy_gradient import PolicyGradient

TARGET = 2.0
PPO_TARGET = 1.0  # rlkit steps/s / PyTorch steps/s (issue 12)
PPO_WORKER = Path(__file__).with_name("_bench_pg_worker.py")
PPO_PARTS = (*PARTS, "other")
BOOK = dict(H=200, D=80 * 80, batch_size=10, learning_rate=1e-4, gamma=0.99, decay_rate=0.99)


# --------------------------------------------------------------------------------------------
# The book's source loop, float64, frame by frame (a faithful re-implementation)
# --------------------------------------------------------------------------------------------

class BookLoop:
    """pg-pong.py's model, forward, backward, discounting and RMSProp, in float64."""

    def __init__(self, seed: int, H=200, D=6400, batch_size=10, learning_rate=1e-4, gamma=0.99,
                 decay_rate=0.99):
        rng = np.random.default_rng(seed)
        self.rng = rng
        self.H, self.D, self.batch_size = H, D, batch_size
        self.learning_rate, self.gamma, self.decay_rate = learning_rate, gamma, decay_rate
        # "Xavier" initialisation of the book: randn / sqrt(fan_in)
        self.model = {"W1": rng.standard_normal((H, D)) / np.sqrt(D),
                      "W2": rng.standard_normal(H) / np.sqrt(H)}
        self.grad_buffer = {k: np.zeros_like(v) for k, v in self.model.items()}
        self.rmsprop_cache = {k: np.zeros_like(v) for k, v in self.model.items()}
        self.episode_number = 0

    @staticmethod
    def sigmoid(x):
        return 1.0 / (1.0 + np.exp(-x))

    def discount_rewards(self, r):
        discounted_r = np.zeros_like(r)
        running_add = 0.0
        for t in reversed(range(r.size)):
            if r[t] != 0:
                running_add = 0.0  # a point was scored: Pong-specific game boundary
            running_add = running_add * self.gamma + r[t]
            discounted_r[t] = running_add
        return discounted_r

    def policy_forward(self, x):
        h = np.dot(self.model["W1"], x)
        h[h < 0] = 0  # ReLU
        logp = np.dot(self.model["W2"], h)
        return self.sigmoid(logp), h  # probability of UP, hidden state

    def policy_backward(self, epx, eph, epdlogp):
        dW2 = np.dot(eph.T, epdlogp).ravel()
        dh = np.outer(epdlogp, self.model["W2"])
        dh[eph <= 0] = 0  # back through the ReLU
        dW1 = np.dot(dh.T, epx)
        return {"W1": dW1, "W2": dW2}

    def train(self, env, episodes: int, seed: int) -> int:
        """Play and learn from ``episodes`` episodes of ``env`` (actions 0 = UP, 1 = DOWN,
        observations the difference frames), the first reset seeded with ``seed`` (as
        PolicyGradient does); returns the frames played."""
        frames = 0
        for k in range(episodes):
            x, _ = env.reset(seed=seed if k == 0 else None)
            xs, hs, dlogps, drs = [], [], [], []
            done = False
            while not done:
                x = np.asarray(x, dtype=np.float64)
                aprob, h = self.policy_forward(x)
                up = self.rng.uniform() < aprob  # roll the dice: UP (2) or DOWN (5)
                xs.append(x)
                hs.append(h)
                dlogps.append((1.0 if up else 0.0) - aprob)  # fake label minus probability
                x, reward, terminated, truncated, _ = env.step(0 if up else 1)
                drs.append(reward)
                done = terminated or truncated
                frames += 1
            self.episode_number += 1
            epx, eph = np.vstack(xs), np.vstack(hs)
            epdlogp, epr = np.vstack(dlogps), np.vstack(drs).astype(np.float64)
            discounted_epr = self.discount_rewards(epr.ravel()).reshape(-1, 1)
            discounted_epr -= np.mean(discounted_epr)
            discounted_epr /= np.std(discounted_epr)
            epdlogp *= discounted_epr  # modulate the gradient with the advantage
            grad = self.policy_backward(epx, eph, epdlogp)
            for k in self.model:
                self.grad_buffer[k] += grad[k]
            if self.episode_number % self.batch_size == 0:
                for k, v in self.model.items():
                    g = self.grad_buffer[k]
                    self.rmsprop_cache[k] = (self.decay_rate * self.rmsprop_cache[k]
                                             + (1 - self.decay_rate) * g ** 2)
                    self.model[k] += self.learning_rate * g / (np.sqrt(self.rmsprop_cache[k]) + 1e-5)
                    self.grad_buffer[k] = np.zeros_like(v)
        return frames


# --------------------------------------------------------------------------------------------
# Recorded frames, replayed by a zero-cost env
# --------------------------------------------------------------------------------------------

def record_episodes(n: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """``n`` real Pong episodes under random UP/DOWN: (frames int8 (T, 6400), rewards (T,))."""
    env = envs.make("Pong", preprocess="pg", actions="updown")
    rng = np.random.default_rng(seed)
    episodes = []
    for k in range(n):
        obs, _ = env.reset(seed=seed + k)
        frames, rewards, done = [], [], False
        while not done:
            frames.append(obs.astype(np.int8))  # a difference frame is -1, 0 or 1
            obs, reward, terminated, truncated, _ = env.step(int(rng.integers(2)))
            rewards.append(reward)
            done = terminated or truncated
        episodes.append((np.stack(frames), np.asarray(rewards, np.float64)))
    return episodes


class ReplayPong(gym.Env):
    """Replays recorded episodes in turn, whatever the actions: the network's work, no emulator."""

    def __init__(self, episodes):
        self.observation_space = spaces.Box(-1.0, 1.0, (80 * 80,), np.float32)
        self.action_space = spaces.Discrete(2)
        self._episodes, self._next = episodes, 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._frames, self._rewards = self._episodes[self._next % len(self._episodes)]
        self._next, self._t = self._next + 1, 0
        return self._frames[0].astype(np.float32), {}

    def step(self, action):
        self._t += 1
        last = self._t == len(self._frames)
        obs = self._frames[min(self._t, len(self._frames) - 1)].astype(np.float32)
        return obs, float(self._rewards[self._t - 1]), last, False, {}


# --------------------------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------------------------

def time_book(env, episodes: int, seed: int) -> float:
    loop = BookLoop(seed, **BOOK)
    start = time.perf_counter()
    frames = loop.train(env, episodes, seed)
    return frames / (time.perf_counter() - start)


def time_rlkit(env, episodes: int, seed: int) -> float:
    agent = PolicyGradient(env, policy="book", seed=seed, reset_on_reward=True)
    start = time.perf_counter()
    # learn() polls the callback after every step: stop once the last episode has been learned
    agent.learn(10**9, callback=lambda a, step: a.episodes < episodes)
    return agent.steps / (time.perf_counter() - start)


def command_line(argv) -> str:
    """The command as typed, for the JSON (``argv`` None: this process's own arguments)."""
    return " ".join(["python scripts/bench_pg.py", *(sys.argv[1:] if argv is None else argv)])


def bench_reinforce(args, argv) -> None:
    """The book's network: rlkit against the book's loop, replayed and live (module docstring)."""
    load_before = os.getloadavg()[0]
    print(f"recording {args.recorded} Pong episodes ...", flush=True)
    recorded = record_episodes(args.recorded, args.seed)
    live_env = envs.make("Pong", preprocess="pg", actions="updown")
    runs = {"book loop": [], "rlkit": [], "book loop, live env": [], "rlkit, live env": []}
    with threadpool_limits(1):
        for r in range(args.repeats):
            runs["book loop"].append(time_book(ReplayPong(recorded), args.episodes, args.seed + r))
            runs["rlkit"].append(time_rlkit(ReplayPong(recorded), args.episodes, args.seed + r))
            runs["book loop, live env"].append(time_book(live_env, 1, args.seed + r))
            runs["rlkit, live env"].append(time_rlkit(live_env, 1, args.seed + r))
            print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]:,.0f}" for k, v in runs.items()), flush=True)
    medians = {k: statistics.median(v) for k, v in runs.items()}
    speedup = medians["rlkit"] / medians["book loop"]
    speedup_live = medians["rlkit, live env"] / medians["book loop, live env"]
    report = {
        "command": command_line(argv),
        "date": utc_timestamp(),
        "revision": git_revision(),
        "machine": {"cpu": cpu_model(), "cpus": os.cpu_count(), "load_avg_1min_before": load_before,
                    "load_avg_1min_after": os.getloadavg()[0], "platform": platform.platform(),
                    "python": platform.python_version(), "numpy": np.__version__,
                    "blas_threads": 1},
        "settings": {"network": "6400 -> 200 ReLU -> 1 sigmoid, no biases", **BOOK,
                     "episodes_per_round": args.episodes, "recorded_episodes": args.recorded,
                     "recorded_frames": int(sum(len(f) for f, _ in recorded)),
                     "repeats": args.repeats, "seed": args.seed,
                     "book_loop": "float64, forward per frame, backward per episode",
                     "rlkit": "float32, no-graph forward per frame, batched forward+backward "
                              "per episode, first layer on the nonzero pixels only",
                     "live_env": "envs.make('Pong', preprocess='pg', actions='updown'), "
                                 "one episode per round"},
        "frames_per_s": {k: {"median": round(medians[k], 1), "runs": [round(x, 1) for x in v]}
                         for k, v in runs.items()},
        "speedup": round(speedup, 2),
        "speedup_live_env": round(speedup_live, 2),
        "target": TARGET,
        "target_met": speedup >= TARGET,
    }
    out = Path(args.out or "results/bench/pg.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"network (replayed frames): book loop {medians['book loop']:,.0f} frames/s, rlkit "
          f"{medians['rlkit']:,.0f} frames/s: {speedup:.2f}x (target {TARGET}x)")
    print(f"end to end (live env): book loop {medians['book loop, live env']:,.0f} frames/s, rlkit "
          f"{medians['rlkit, live env']:,.0f} frames/s: {speedup_live:.2f}x")
    print(f"wrote {out}")


# --------------------------------------------------------------------------------------------
# PPO on Pong against the same loop on PyTorch, each in a process of its own
# --------------------------------------------------------------------------------------------

def run_ppo_worker(framework: str, args) -> dict:
    """One run of ``_bench_pg_worker.py`` for ``framework`` in a fresh process whose every
    thread pool is limited to ``args.threads``; its JSON report. Exits with its stderr if it fails."""
    command = [str(PPO_WORKER), framework, "--threads", str(args.threads),
               "--rollouts", str(args.rollouts), "--warmup", str(args.warmup),
               "--n-envs", str(args.n_envs), "--n-steps", str(args.n_steps), "--seed", str(args.seed)]
    return last_json_line(run_child(command, args.threads, f"bench_pg: the {framework} PPO worker"))


def format_ppo_table(best: dict, settings: dict, threads: int, cpu: dict) -> str:
    """Steps/s and seconds per rollout by part, one row per framework (its best round)."""
    batch = settings["n_envs"] * settings["n_steps"]
    lines = [f"PPO on Pong ({settings['n_envs']} envs x {settings['n_steps']} steps, "
             f"{settings['n_minibatches']} minibatches x {settings['n_epochs']} epochs); CPU: "
             f"{cpu.get('model name')} (family {cpu.get('cpu family')}, model {cpu.get('model')}, "
             f"{' '.join(cpu.get('flags', []))}); threads: {threads}",
             f"seconds per rollout of {batch} agent steps, by part:"]
    header = f"{'framework':<10} {'steps/s':>8}" + "".join(f" {part:>8}" for part in PPO_PARTS)
    lines += [header, "-" * len(header)]
    for framework, report in best.items():
        per_rollout = {part: report["seconds"][part] / report["rollouts"] for part in PPO_PARTS}
        lines.append(f"{framework:<10} {report['steps_per_s']:>8.1f}"
                     + "".join(f" {per_rollout[part]:>8.3f}" for part in PPO_PARTS))
    return "\n".join(lines)


def bench_ppo(args, argv) -> None:
    """PPO on Pong with CleanRL's ppo_atari settings: rlkit's ``PPO.learn`` and the same loop on
    PyTorch CPU, each in a child process with the same thread count, alternating ``--rounds``
    times; the best round of each counts (module docstring)."""
    frameworks = args.frameworks.split(",")
    skipped = None
    if "torch" in frameworks and importlib.util.find_spec("torch") is None:
        frameworks.remove("torch")
        skipped = "torch is not installed (pip install -e '.[bench]')"
    load_before = os.getloadavg()[0]
    rounds = {framework: [] for framework in frameworks}
    for r in range(args.rounds):  # alternate, so a slow spell of the machine hits both sides
        for framework in frameworks:
            rounds[framework].append(run_ppo_worker(framework, args))
            print(f"round {r + 1}: {framework} {rounds[framework][-1]['steps_per_s']:,.1f} steps/s",
                  flush=True)
    best = {framework: max(reports, key=lambda report: report["steps_per_s"])
            for framework, reports in rounds.items()}
    ratio = (best["rlkit"]["steps_per_s"] / best["torch"]["steps_per_s"]
             if {"rlkit", "torch"} <= set(best) else None)
    settings = next(iter(best.values()))["settings"]
    cpu = cpu_model()
    report = {
        "command": command_line(argv),
        "date": utc_timestamp(),
        "what": "PPO on Pong while it learns: agent steps (env steps of all sub-envs) per second "
                "over the timed rollouts, seconds per part (envs: the vector env's step; acting: "
                "no-graph forward and draw; update: GAE and the epochs of minibatch steps; other: "
                "the rest of the loop), each framework in a child process of its own "
                "(scripts/_bench_pg_worker.py); the best of the rounds counts",
        "env": "envs.make_vec('Pong', n_envs): ale-py's native vector env, (4, 84, 84) uint8 frames",
        "settings": settings,
        "rollouts": args.rollouts, "warmup_rollouts": args.warmup, "rounds": args.rounds,
        "threads": args.threads,
        "machine": {"cpu": cpu, "cpu_count": os.cpu_count(),
                    "loadavg_1min_before_after": [load_before, os.getloadavg()[0]],
                    "note": "shared 2-core machine: other work may run concurrently"},
        "steps_per_s": {framework: round(best[framework]["steps_per_s"], 2) for framework in best},
        "steps_per_s_rounds": {framework: [round(r["steps_per_s"], 2) for r in reports]
                               for framework, reports in rounds.items()},
        "seconds_per_rollout": {framework: {part: round(best[framework]["seconds"][part]
                                                        / args.rollouts, 4) for part in PPO_PARTS}
                                for framework in best},
        "ratio": round(ratio, 3) if ratio is not None else None,
        "ratio_means": "rlkit steps/s / torch steps/s",
        "target": PPO_TARGET,
        "target_met": ratio >= PPO_TARGET if ratio is not None else None,
        "versions": {framework: best[framework]["versions"] for framework in best},
        "thread_variables": {framework: best[framework]["env"] for framework in best},
        **({"torch": skipped} if skipped else {}),
    }
    out = Path(args.out or "results/bench/ppo.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(format_ppo_table(best, settings, args.threads, cpu))
    if ratio is not None:
        print(f"rlkit / torch steps/s: {ratio:.2f} (target >= {PPO_TARGET}: "
              f"{'met' if ratio >= PPO_TARGET else 'NOT met'})")
    else:
        print(f"no ratio: {skipped or 'only ' + ', '.join(best) + ' timed'}")
    warning = busy_warning(*report["machine"]["loadavg_1min_before_after"], args.threads)
    if warning:
        print(warning)
    print(f"wrote {out}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--algo", choices=("reinforce", "ppo"), default="reinforce",
                        help="reinforce: the book's network against the book's loop; ppo: PPO on "
                             "Pong against the same loop on PyTorch CPU")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None,
                        help="JSON report (default results/bench/pg.json; --algo ppo: results/bench/ppo.json)")
    book = parser.add_argument_group("--algo reinforce")
    book.add_argument("--episodes", type=int, default=10, help="episodes per timed round (10 = one update)")
    book.add_argument("--recorded", type=int, default=3, help="distinct real episodes to replay")
    book.add_argument("--repeats", type=int, default=3, help="alternating rounds per contestant")
    ppo = parser.add_argument_group("--algo ppo")
    ppo.add_argument("--rollouts", type=int, default=10,
                     help="timed rollouts (with their updates) per framework and round")
    ppo.add_argument("--warmup", type=int, default=1, help="untimed rollouts before them")
    ppo.add_argument("--rounds", type=int, default=2,
                     help="rlkit and torch processes run alternately this many times; the best round counts")
    ppo.add_argument("--threads", type=int, default=2, help="threads for every pool of both frameworks")
    ppo.add_argument("--frameworks", default="rlkit,torch", help="rlkit, torch or both (comma-separated)")
    ppo.add_argument("--n-envs", type=int, default=PPO_ATARI["n_envs"],
                     help="environments (CleanRL's 8; fewer only for smoke tests)")
    ppo.add_argument("--n-steps", type=int, default=PPO_ATARI["n_steps"],
                     help="steps of every env per rollout (CleanRL's 128; fewer only for smoke tests)")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.frameworks.split(",")) - {"rlkit", "torch"})
    if unknown:
        parser.error(f"--frameworks takes rlkit, torch or both, got {', '.join(unknown)}")
    if min(args.rollouts, args.rounds, args.n_envs, args.n_steps) < 1 or args.warmup < 0:
        parser.error("--rollouts, --rounds, --n-envs and --n-steps must be at least 1, --warmup at least 0")
    (bench_ppo if args.algo == "ppo" else bench_reinforce)(args, argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
