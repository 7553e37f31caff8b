"""One framework's side of ``scripts/bench_pg.py --algo ppo``, run in a child process of its own.

    python scripts/_bench_pg_worker.py {rlkit|torch} --threads 2 --rollouts 10 [--warmup 1]

Both sides train PPO on the same Pong vector env, ``envs.make_vec("Pong", n_envs)`` (ale-py's
native vector env with the DQN preprocessing: (4, 84, 84) uint8 frames, NEXT_STEP autoreset),
the env ``scripts/train_pg.py --env Pong --algo ppo`` trains on, with CleanRL's ppo_atari
settings (agents/ppo.py ``PRESETS["cnn"]``): n_envs x n_steps transitions per rollout, 4
minibatches, 4 epochs, Adam lr 2.5e-4 (eps 1e-5) annealed, gamma 0.99, GAE lambda 0.95, clip
0.1, clipped value loss (coefficient 0.5), entropy 0.01, gradient norm clipped to 0.5, one
Nature-CNN trunk for the policy and value heads, orthogonal initialisation.

- rlkit: ``agents.ppo.PPO.learn``, the loop the library's users run;
- torch: the same loop written on PyTorch CPU (eager, float32) after CleanRL's ppo_atari.py,
  with the rollout handling of agents/actor_critic.py so both do the same work: uint8 frames
  stored and scaled per batch, steps that only reset a finished sub-env (NEXT_STEP) left out
  of the minibatches, truncations bootstrapped. Both keep log pi_old and V_old while acting,
  as CleanRL does.

The first ``--warmup`` rollouts (with their updates) are not timed: numba compiles, oneDNN and
the allocators settle. The timed rollouts are split by wrapping the calls (:class:`Timed`):
``envs`` (the vector env's step), ``acting`` (the no-graph forward and the draw of 8 actions),
``update`` (GAE and the epochs of minibatch steps), ``other`` (the rest: storing the rollout,
counting episodes). The parent sets the thread-count variables in this process's environment
before it starts (BLAS and numba read them at import); both sides also set their thread count.

Prints one JSON object on stdout: agent steps (env steps of all sub-envs), wall seconds,
seconds per part, versions.
"""
from __future__ import annotations

import argparse
import json
import math
import platform
import time
from collections import defaultdict

import numpy as np

from _bench_core_worker import SIDES, recorded_environment

import envs

# CleanRL ppo_atari.py's settings (agents/ppo.py PRESETS["cnn"] has the same), named as PPOConfig
# fields; both sides are given these, so they cannot drift apart
PPO_ATARI = dict(n_envs=8, n_steps=128, n_minibatches=4, n_epochs=4, learning_rate=2.5e-4,
                 optimizer_eps=1e-5, gamma=0.99, gae_lambda=0.95, clip_range=0.1, value_coef=0.5,
                 entropy_coef=0.01, max_grad_norm=0.5)
PARTS = ("envs", "acting", "update")


class Timed:
    """Wraps a callable, adding its wall time to ``totals[name]`` while ``clock["active"]``."""

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


class Stopwatch:
    """The timed stretch of a run: ``start()`` after the warm-up rollouts, ``stop()`` at the end;
    ``wrap(fn, part)`` times ``fn`` into ``totals[part]`` while running."""

    def __init__(self):
        self.totals, self.clock = defaultdict(float), {"active": False}
        self.wall = 0.0

    def wrap(self, fn, part: str) -> Timed:
        return Timed(fn, part, self.totals, self.clock)

    def start(self) -> None:
        self.clock["active"], self._started = True, time.perf_counter()

    def stop(self) -> None:
        self.wall, self.clock["active"] = time.perf_counter() - self._started, False

    def seconds(self) -> dict:
        """Seconds per part, "other" being the wall time no part accounts for."""
        parts = {part: self.totals[part] for part in PARTS}
        return {**parts, "other": self.wall - sum(parts.values())}


# ------------------------------------------------------------------------- rlkit
def run_rlkit(env, settings: dict, warmup: int, rollouts: int, seed: int, threads: int,
              watch: Stopwatch) -> None:
    """``warmup`` + ``rollouts`` iterations of ``PPO.learn`` (its Pong preset, ``settings`` on
    top), the last ``rollouts`` timed."""
    from agents.ppo import PPO

    hyper = {k: v for k, v in settings.items() if k != "n_envs"}
    agent = PPO(env, seed=seed, threads=threads, **hyper)
    env.step = watch.wrap(env.step, "envs")
    agent._rollout_act = watch.wrap(agent._rollout_act, "acting")
    agent._update = watch.wrap(agent._update, "update")
    batch = settings["n_envs"] * settings["n_steps"]

    def each_rollout(_, step: int) -> bool:
        if step == warmup * batch:
            watch.start()
        return step < (warmup + rollouts) * batch  # False: stop after the last timed rollout

    if warmup == 0:
        watch.start()
    agent.learn((warmup + rollouts) * batch, callback=each_rollout)
    watch.stop()


# ------------------------------------------------------------------------- torch
def run_torch(env, settings: dict, warmup: int, rollouts: int, seed: int, threads: int,
              watch: Stopwatch) -> None:
    """The same PPO loop on PyTorch (CleanRL's ppo_atari.py, agents/actor_critic.py's rollout
    handling); ``warmup`` + ``rollouts`` iterations, the last ``rollouts`` timed."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    # argument checks, not computation: off, so the yardstick is PyTorch at its quickest
    torch.distributions.Distribution.set_default_validate_args(False)
    s = settings
    n, t_max = s["n_envs"], s["n_steps"]
    n_actions = int(env.single_action_space.n)

    def layer(module, gain=math.sqrt(2.0)):
        nn.init.orthogonal_(module.weight, gain)
        nn.init.zeros_(module.bias)
        return module

    class Agent(nn.Module):
        def __init__(self):
            super().__init__()
            self.trunk = nn.Sequential(
                layer(nn.Conv2d(4, 32, 8, stride=4)), nn.ReLU(),
                layer(nn.Conv2d(32, 64, 4, stride=2)), nn.ReLU(),
                layer(nn.Conv2d(64, 64, 3, stride=1)), nn.ReLU(), nn.Flatten(),
                layer(nn.Linear(3136, 512)), nn.ReLU())
            self.actor, self.critic = layer(nn.Linear(512, n_actions), 0.01), layer(nn.Linear(512, 1), 1.0)

        def forward(self, frames: np.ndarray):
            """uint8 frames (B, 4, 84, 84) -> (action distribution, values (B,))."""
            hidden = self.trunk(torch.from_numpy(frames).float() / 255.0)
            return (torch.distributions.Categorical(logits=self.actor(hidden)),
                    self.critic(hidden).reshape(-1))

    net = Agent()
    optimizer = torch.optim.Adam(net.parameters(), lr=s["learning_rate"], eps=s["optimizer_eps"])
    rng = np.random.default_rng(seed)
    total = warmup + rollouts

    @torch.no_grad()
    def act(frames):
        dist, values = net(frames)
        actions = dist.sample()
        return actions.numpy(), dist.log_prob(actions).numpy(), values.numpy()

    def update(rollout, last_obs, iteration):
        optimizer.param_groups[0]["lr"] = s["learning_rate"] * (1.0 - iteration / total)
        with torch.no_grad():  # V(s_T), which the last steps bootstrap from
            last_values = net(last_obs)[1].numpy()
        values, rewards = rollout["values"], rollout["rewards"]
        terminated, truncated = rollout["terminated"], rollout["truncated"]
        advantages, following = np.zeros((t_max, n)), np.zeros(n)
        for t in range(t_max - 1, -1, -1):  # GAE; a truncation bootstraps from the final frame
            next_values = last_values if t == t_max - 1 else values[t + 1]
            delta = rewards[t] + s["gamma"] * (1.0 - terminated[t]) * next_values - values[t]
            following = delta + s["gamma"] * s["gae_lambda"] * (1.0 - terminated[t]) \
                * (1.0 - truncated[t]) * following
            advantages[t] = following
        returns = advantages + values
        frames = rollout["obs"].reshape((-1,) + rollout["obs"].shape[2:])
        actions, old_log_prob = (torch.from_numpy(rollout[k].reshape(-1)) for k in ("actions", "log_prob"))
        advantages, returns, old_values = (torch.from_numpy(a.reshape(-1).astype(np.float32))
                                           for a in (advantages, returns, values))
        real = np.flatnonzero(rollout["valid"].reshape(-1))  # reset steps take no part
        for _ in range(s["n_epochs"]):
            for batch in np.array_split(rng.permutation(real), s["n_minibatches"]):
                dist, new_values = net(frames[batch])
                index = torch.from_numpy(batch)
                log_ratio = dist.log_prob(actions[index]) - old_log_prob[index]
                ratio = log_ratio.exp()
                with torch.no_grad():  # logged, as rlkit's last_stats
                    approx_kl = ((ratio - 1) - log_ratio).mean().item()
                    clip_fraction = ((ratio - 1.0).abs() > s["clip_range"]).float().mean().item()
                adv = advantages[index]
                adv = (adv - adv.mean()) / (adv.std() + 1e-8)
                policy_loss = torch.max(-adv * ratio, -adv * ratio.clamp(1 - s["clip_range"],
                                                                         1 + s["clip_range"])).mean()
                clipped = old_values[index] + (new_values - old_values[index]).clamp(-s["clip_range"],
                                                                                      s["clip_range"])
                value_loss = 0.5 * torch.max((new_values - returns[index]) ** 2,
                                             (clipped - returns[index]) ** 2).mean()
                entropy = dist.entropy().mean()
                loss = policy_loss + s["value_coef"] * value_loss - s["entropy_coef"] * entropy
                optimizer.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(net.parameters(), s["max_grad_norm"])
                optimizer.step()
        return loss.item(), approx_kl, clip_fraction

    env.step = watch.wrap(env.step, "envs")
    act, update = watch.wrap(act, "acting"), watch.wrap(update, "update")
    obs, _ = env.reset(seed=seed)
    ended = np.zeros(n, bool)
    for iteration in range(total):
        if iteration == warmup:
            watch.start()
        rollout = {"obs": np.zeros((t_max,) + obs.shape, obs.dtype),
                   "actions": np.zeros((t_max, n), np.int64),
                   "log_prob": np.zeros((t_max, n), np.float32), "values": np.zeros((t_max, n)),
                   "rewards": np.zeros((t_max, n)), "valid": np.zeros((t_max, n), bool),
                   "terminated": np.zeros((t_max, n), bool), "truncated": np.zeros((t_max, n), bool)}
        for t in range(t_max):
            actions, log_prob, values = act(obs)
            rollout["obs"][t], rollout["actions"][t], rollout["valid"][t] = obs, actions, ~ended
            rollout["log_prob"][t], rollout["values"][t] = log_prob, values
            obs, rewards, terminated, truncated, _ = env.step(actions)
            rollout["rewards"][t], rollout["terminated"][t], rollout["truncated"][t] = \
                rewards, terminated, truncated
            ended = terminated | truncated
        update(rollout, obs, iteration)
    watch.stop()


RUNNERS = {"rlkit": run_rlkit, "torch": run_torch}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("framework", choices=sorted(RUNNERS))
    p.add_argument("--threads", type=int, required=True, help="math threads of the framework")
    p.add_argument("--rollouts", type=int, default=10, help="timed rollouts (with their updates)")
    p.add_argument("--warmup", type=int, default=1, help="untimed rollouts before them")
    p.add_argument("--n-envs", type=int, default=PPO_ATARI["n_envs"],
                   help="environments (CleanRL: 8; fewer only for smoke tests)")
    p.add_argument("--n-steps", type=int, default=PPO_ATARI["n_steps"],
                   help="steps of every env per rollout (CleanRL: 128; fewer only for smoke tests)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.rollouts < 1 or args.warmup < 0:
        p.error("--rollouts must be at least 1 and --warmup at least 0")
    settings = {**PPO_ATARI, "n_envs": args.n_envs, "n_steps": args.n_steps}
    versions = SIDES[args.framework](args.threads).info()  # torch: also set_num_threads
    env = envs.make_vec("Pong", args.n_envs)
    watch = Stopwatch()
    try:
        RUNNERS[args.framework](env, settings, args.warmup, args.rollouts, args.seed, args.threads, watch)
    finally:
        env.close()
    steps = args.rollouts * args.n_envs * args.n_steps
    print(json.dumps({"framework": args.framework, "settings": settings, "rollouts": args.rollouts,
                      "warmup_rollouts": args.warmup, "steps": steps, "wall_s": watch.wall,
                      "steps_per_s": steps / watch.wall, "seconds": watch.seconds(),
                      "versions": versions, "env": recorded_environment(),
                      "python": platform.python_version()}))


if __name__ == "__main__":
    main()
