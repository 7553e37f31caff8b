"""Frames per second of the book's Pong network while it trains, rlkit against the book's loop.

    python scripts/bench_pg.py [--episodes 10] [--repeats 3] [--out results/bench/pg.json]

Two contestants, each training the book's network (6400 -> 200 ReLU -> 1 sigmoid, no biases)
with the book's source hyper-parameters (batch 10 episodes, RMSProp decay 0.99, lr 1e-4,
gamma 0.99, returns restarted at every point and standardised per episode):

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
thread for both (rlkit's setting for this network).
"""
from __future__ import annotations

import argparse
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

import envs
from agents.policy_gradient import PolicyGradient

TARGET = 2.0
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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--episodes", type=int, default=10, help="episodes per timed round (10 = one update)")
    parser.add_argument("--recorded", type=int, default=3, help="distinct real episodes to replay")
    parser.add_argument("--repeats", type=int, default=3, help="alternating rounds per contestant")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="results/bench/pg.json")
    args = parser.parse_args(argv)

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
        "command": "python scripts/bench_pg.py" + ("" if argv is None else " " + " ".join(argv)),
        "machine": {"cpus": os.cpu_count(), "load_avg_1min_before": load_before,
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
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"network (replayed frames): book loop {medians['book loop']:,.0f} frames/s, rlkit "
          f"{medians['rlkit']:,.0f} frames/s: {speedup:.2f}x (target {TARGET}x)")
    print(f"end to end (live env): book loop {medians['book loop, live env']:,.0f} frames/s, rlkit "
          f"{medians['rlkit, live env']:,.0f} frames/s: {speedup_live:.2f}x")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
