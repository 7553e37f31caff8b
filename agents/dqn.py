"""Deep Q-Network (Mnih et al. 2015) with its standard repairs, on rlkit's engine.

The loop, one environment step at a time:

1. act epsilon-greedily on Q(s, .), epsilon falling linearly from ``eps_start`` to ``eps_end``
   over ``eps_steps`` steps;
2. store (s, a, r, s', terminated) in the replay memory (frames once each for image stacks);
3. every ``train_freq`` steps, once the memory holds ``learning_starts`` transitions, sample a
   batch and take one gradient step on  L = loss(Q(s, a), y), with the target
       y = R                                   if the window ends in a terminal state,
       y = R + gamma^n * Q_target(s', a*)      otherwise, where
       R = r_t + gamma r_t+1 + ... + gamma^(n-1) r_t+n-1 and s' = s_t+n (``n_step``; the
       window is cut short at an episode end), and
       a* = argmax_a Q(s', a) (Double DQN, default) or argmax_a Q_target(s', a) (DQN).
   A time-limit truncation is not terminal: its target still bootstraps. ``loss`` is Huber
   (default; its gradient is the clipped TD error of the DQN paper) or MSE; gradients are
   clipped to a global norm; the optimiser is Adam (default) or RMSProp. With ``prioritized``
   the batch is drawn by priority, each loss is weighted by its importance-sampling weight and
   the priorities become the new |y - Q(s, a)|;
4. every ``target_update`` steps copy the online weights into the target network (tau = 1),
   or move them a fraction tau towards them (Polyak averaging, tau < 1).

Q(s, .) comes from the network ``network`` names (image stacks) or an MLP, ending in one
output layer or, with ``dueling``, in V(s) + A(s, .) - mean A(s, .). ``health()`` measures the
network on a fixed probe batch (rlkit.health), so a training run can name a collapse.

Defaults come in presets chosen by the observation space (``PRESETS``); any keyword overrides.
Resuming (``DQN.load`` then ``learn``) restores the networks, optimiser, schedule position,
random generators, the episode in progress (for toy-text and classic-control worlds; an ALE
game starts a fresh episode) and, when it was saved, the replay memory.
"""
from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import numpy as np
from gymnasium import spaces

from agents import networks
from agents.networks import ObsAdapter, prefixed, seed_everything, unprefixed
from agents.base import (SpacesOnly, env_signature, load_checkpoint, resume_hyperparams,
                         save_checkpoint, validate_config)
from agents.training_run import TrainingRun, env_restore, env_snapshot, episode_score
from rlkit import nn, no_grad, optim
from rlkit.checks import FLAG, TEXT, check, integer, number, one_of, optional, sizes
from rlkit.health import collapse_reasons, relu_activity
from rlkit.backend import array_module_for, resolve_device, set_num_threads, to_device, to_numpy
from rlkit.replay import (FrameReplayBuffer, PrioritizedFrameReplayBuffer, PrioritizedReplayBuffer,
                          ReplayBuffer)
from rlkit.runs import load_npz, save_npz_atomic
from rlkit import random as rlkit_random
from rlkit.random import generator_state, restore_generator


@dataclasses.dataclass(kw_only=True)
class DQNConfig:
    """Every hyper-parameter of :class:`DQN` (the training scripts expose each as a flag).

    ``DQNConfig.for_space(observation_space, **overrides)`` makes one from the preset for that
    kind of observation (``PRESETS``); the fields without a default here are those every
    preset sets, so each value lives in one place."""

    learning_rate: float
    """Optimiser step size."""
    buffer_size: int
    """Replay memory capacity, in transitions."""
    learning_starts: int
    """Transitions collected before the first gradient step."""
    batch_size: int = 32
    """Transitions per gradient step."""
    gamma: float = 0.99
    """Discount factor."""
    train_freq: int = 1
    """Environment steps per gradient step."""
    target_update: int
    """Steps between target-network updates."""
    tau: float = 1.0
    """1: hard copy; < 1: Polyak averaging target <- tau * online + (1 - tau) * target."""
    double_dqn: bool = True
    """Select a* with the online network, evaluate it with the target network."""
    loss: str = "huber"
    """"huber" (delta 1) or "mse"."""
    max_grad_norm: float = 10.0
    """Clip the global gradient norm to this (0: no clipping)."""
    optimizer: str = "adam"
    """"adam" or "rmsprop"."""
    eps_start: float = 1.0
    """Exploration rate at step 0."""
    eps_end: float = 0.05
    """Exploration rate after eps_steps."""
    eps_steps: int
    """Steps over which epsilon falls linearly."""
    eval_epsilon: float = 0.0
    """Exploration rate while evaluating (0: greedy)."""
    n_step: int = 1
    """Rewards summed into each target before bootstrapping (n-step returns; image stacks)."""
    dueling: bool = False
    """Q = V + A - mean(A) from two streams (Wang et al. 2016) instead of one output layer."""
    network: str = "nature"
    """Image network: "nature" (Mnih et al. 2015) or "small" (Mnih et al. 2013, 1/3 the cost)."""
    adam_eps: float = 1e-8
    """Adam's epsilon; larger values damp steps on parameters with tiny gradients."""
    prioritized: bool = False
    """Proportional prioritised replay (Schaul et al. 2016): sample by |TD error| ** alpha."""
    priority_alpha: float = 0.6
    """How strongly priorities skew sampling (0: uniform)."""
    priority_beta: float = 0.4
    """Importance-sampling exponent at step 0, raised linearly to 1 over priority_beta_steps."""
    priority_beta_steps: int = 1_000_000
    """Steps over which the importance-sampling exponent reaches 1 (full correction)."""
    hidden_sizes: tuple = (64, 64)
    """Hidden layers of the MLP (vector and Discrete observations)."""
    seed: int | None = None
    """Seeds initialisation, exploration, replay sampling and the first env reset."""
    device: str | None = None
    """"cpu" or "cuda"; None (unset): $RLKIT_DEVICE, else "cpu"."""
    threads: int = 0
    """CPU math threads; 0: automatic (1 for MLPs, the library default for the CNN)."""

    # the range of every field (rlkit.checks), checked when a config is made
    RULES = {
        "learning_rate": number(0, low_open=True), "buffer_size": integer(1),
        "learning_starts": integer(0), "batch_size": integer(1), "gamma": number(0, 1),
        "train_freq": integer(1), "target_update": integer(1),
        "tau": number(0, 1, low_open=True), "double_dqn": FLAG, "loss": one_of("huber", "mse"),
        "max_grad_norm": number(0), "optimizer": one_of("adam", "rmsprop"),
        "eps_start": number(0, 1), "eps_end": number(0, 1), "eps_steps": integer(0),
        "eval_epsilon": number(0, 1), "n_step": integer(1), "dueling": FLAG,
        "network": one_of(*sorted(nn.IMAGE_NETWORKS)), "adam_eps": number(0, low_open=True),
        "prioritized": FLAG, "priority_alpha": number(0), "priority_beta": number(0, 1),
        "priority_beta_steps": integer(0), "hidden_sizes": sizes(1), "seed": optional(integer(0)),
        "device": optional(TEXT), "threads": integer(0),
    }
    # what a resume cannot change (agents.base.resume_hyperparams): the network's and the
    # replay's shapes, the optimiser's state, and the seed (used once, at the start)
    FIXED_ON_RESUME = ("buffer_size", "hidden_sizes", "network", "dueling", "optimizer",
                       "prioritized", "priority_alpha", "seed")

    def __post_init__(self):
        validate_config(self)
        if self.learning_starts > self.buffer_size:  # the replay never holds that many: no learning
            raise ValueError(f"learning_starts must be <= buffer_size ({self.buffer_size}), "
                             f"got {self.learning_starts}")

    @classmethod
    def for_space(cls, observation_space, **overrides) -> "DQNConfig":
        """The preset for ``observation_space`` (:func:`preset_for`), then ``overrides``;
        TypeError for a name that is no hyper-parameter."""
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(overrides) - fields)
        if unknown:
            raise TypeError(f"unknown DQN hyper-parameters {unknown}; known: {sorted(fields)}")
        return cls(**{**PRESETS[preset_for(observation_space)], **overrides})


# Atari (Pong): chosen from measurements on a 2-core CPU (README "The Atari recipe" gives the
# source of each value): the 2013 network with a dueling head, 3-step Double DQN targets, Adam
# 1e-4 with eps 1.5e-4 (Dopamine's Atari setting: 1e-8 let conv1 die), a 100k replay, learning
# from 10k transitions, one update per step (the reference's: ~350k of them reached +18, and a
# 25 ms update fits that many in 3 hours), epsilon 1 -> 0.02 over 100k steps, target copy every
# 1,000 steps, greedy evaluation.
# Each preset names only what differs from DQNConfig's defaults (one update per step, batch
# 32, greedy evaluation, ...), and every field without a default.
PRESETS = {
    "image": dict(learning_rate=1e-4, adam_eps=1.5e-4, buffer_size=100_000, learning_starts=10_000,
                  target_update=1_000, eps_end=0.02, eps_steps=100_000, n_step=3, dueling=True,
                  network="small"),
    # CartPole and other small control tasks: measured to solve CartPole-v1 within 50k steps
    "vector": dict(learning_rate=1e-3, buffer_size=50_000, learning_starts=1_000, batch_size=64,
                   target_update=500, eps_steps=10_000, hidden_sizes=(128, 128)),
    # tabular worlds (one-hot states)
    "discrete": dict(learning_rate=1e-3, buffer_size=10_000, learning_starts=200,
                     target_update=100, eps_steps=2_000, hidden_sizes=(64,)),
}


# Replay states whose activations and Q-values the health figures are measured on.
PROBE_SIZE = 128


def preset_for(observation_space) -> str:
    """Name of the preset for an observation space: "image", "vector" or "discrete"."""
    if networks.is_image_space(observation_space):
        return "image"
    return "discrete" if isinstance(observation_space, spaces.Discrete) else "vector"


def td_targets(rewards, dones, next_values, gamma: float, horizons=1):
    """y = r + gamma^n * (1 - done) * Q'(s', a*), elementwise over a batch (arrays of shape (B,)).

    ``rewards`` are the discounted sums of ``horizons`` (n, scalar or (B,)) rewards each; for
    1-step targets n = 1 and r is the one reward."""
    return rewards + gamma ** horizons * (1.0 - dones) * next_values


class DQN:
    """DQN agent. ``DQN(env, q_network=None, **hyperparams)``; see :class:`DQNConfig`.

    ``q_network`` replaces the default network (it must map the encoded observation batch to
    (B, n_actions) Q-values).
    """

    loss_name = "td_loss"  # what a TrainingRun logs the loss as (losses/td_loss)

    def __init__(self, env, q_network: nn.Module | None = None, **hyperparams):
        if not isinstance(env.action_space, spaces.Discrete):
            raise ValueError(f"DQN needs a Discrete action space, got {env.action_space}")
        self.env = env
        self.config = DQNConfig.for_space(env.observation_space, **hyperparams)
        c = self.config
        if c.n_step > 1 and not networks.is_image_space(env.observation_space):
            raise ValueError("n_step > 1 needs image-stack observations (the frame replay keeps "
                             "the episode order n-step returns are read from)")
        self.device = resolve_device(c.device)
        threads = c.threads or networks.default_threads(env.observation_space)
        if threads:
            set_num_threads(threads)
        self.xp = array_module_for(self.device)
        self.n_actions = int(env.action_space.n)
        self.rng = seed_everything(c.seed)
        self.eval_rng = np.random.default_rng(None if c.seed is None else c.seed + 2)
        self.adapt = ObsAdapter(env.observation_space, self.device)
        build = lambda: networks.build_network(env.observation_space, self.n_actions, c.hidden_sizes,
                                               image_network=c.network, dueling=c.dueling)
        self.q_net = q_network or build()
        self.target_net = build() if q_network is None else _clone_structure(q_network)
        self.q_net.to(self.device)
        self.target_net.to(self.device)
        self.target_net.load_state_dict(self.q_net.state_dict())
        self.target_net.eval()
        if c.optimizer == "adam":
            self.optimizer = optim.Adam(self.q_net.parameters(), lr=c.learning_rate, eps=c.adam_eps)
        else:
            self.optimizer = optim.RMSProp(self.q_net.parameters(), lr=c.learning_rate)
        self.replay = self._make_replay()
        self.steps, self.episodes, self.updates = 0, 0, 0
        self._obs, self._episode_return, self._episode_length = None, 0.0, 0
        self.last_grad_norm = float("nan")
        self._probe = None  # raw observations (PROBE_SIZE, *obs shape), drawn once from replay

    def _make_replay(self):
        space, c = self.env.observation_space, self.config
        seed = None if c.seed is None else c.seed + 1
        priority = dict(alpha=c.priority_alpha) if c.prioritized else {}
        if networks.is_image_space(space):
            kind = PrioritizedFrameReplayBuffer if c.prioritized else FrameReplayBuffer
            return kind(c.buffer_size, frame_shape=space.shape[1:], stack=space.shape[0], seed=seed, **priority)
        shape, dtype = (space.shape, space.dtype) if isinstance(space, spaces.Box) else ((), np.int64)
        kind = PrioritizedReplayBuffer if c.prioritized else ReplayBuffer
        return kind(c.buffer_size, shape, dtype, seed=seed, **priority)

    # ------------------------------------------------------------------ acting
    def epsilon(self, step: int | None = None) -> float:
        """The exploration rate at ``step`` (default: now)."""
        c = self.config
        fraction = min((self.steps if step is None else step) / max(c.eps_steps, 1), 1.0)
        return c.eps_start + fraction * (c.eps_end - c.eps_start)

    ACTION_VALUES = "Q-values"  # what action_values returns, as a viewer's panel names it

    def action_values(self, obs) -> np.ndarray:
        """Q(s, .) for one observation, as a host array of shape (n_actions,)."""
        with no_grad():
            return self.q_net(self.adapt(np.asarray(obs)[None])).numpy()[0]

    def predict(self, obs, deterministic: bool = True) -> int:
        """The action evaluation takes: greedy, except a random one with probability
        ``eval_epsilon`` (0 by default: always greedy). ``deterministic=False`` explores at
        the current training rate instead (``epsilon()``)."""
        if deterministic:  # evaluation draws from its own generator: training's stays as it was
            return self._act(obs, self.config.eval_epsilon, self.eval_rng)
        return self._act(obs, self.epsilon(), self.rng)

    def seed_evaluation(self, seed: int) -> None:
        """Restart the generator of evaluation's random actions (``eval_epsilon``) from ``seed``;
        a seeded ``evaluate`` calls it, so equal weights play equal evaluations."""
        self.eval_rng = np.random.default_rng(seed)

    def _act(self, obs, epsilon: float, rng: np.random.Generator) -> int:
        if epsilon > 0 and rng.random() < epsilon:
            return int(rng.integers(self.n_actions))
        return int(np.argmax(self.action_values(obs)))

    # ------------------------------------------------------------------ learning
    def targets(self, batch):
        """TD targets y (B,) for a replay batch, on the agent's device (no gradient)."""
        c, xp = self.config, self.xp
        next_obs = self.adapt(batch.next_obs)
        with no_grad():
            next_q_target = self.target_net(next_obs).data
            chooser = self.q_net(next_obs).data if c.double_dqn else next_q_target
            best = chooser.argmax(axis=1)
            next_values = next_q_target[xp.arange(len(best)), best]
        horizons = 1 if batch.horizons is None else to_device(batch.horizons.astype(np.float32), self.device)
        return td_targets(to_device(batch.rewards, self.device), to_device(batch.dones, self.device),
                          next_values, c.gamma, horizons)

    def priority_beta(self, step: int | None = None) -> float:
        """The importance-sampling exponent of prioritised replay at ``step`` (default: now)."""
        c = self.config
        fraction = min((self.steps if step is None else step) / max(c.priority_beta_steps, 1), 1.0)
        return c.priority_beta + fraction * (1.0 - c.priority_beta)

    def train_step(self) -> float:
        """One gradient step on a sampled batch; returns the loss.

        With prioritised replay each transition's loss is weighted by its importance-sampling
        weight, and its priority becomes its new |TD error|."""
        c = self.config
        if c.prioritized:
            batch = self.replay.sample(c.batch_size, c.n_step, c.gamma, beta=self.priority_beta())
        else:
            batch = self.replay.sample(c.batch_size, c.n_step, c.gamma)
        y = self.targets(batch)
        actions = to_device(batch.actions, self.device)
        q_taken = self.q_net(self.adapt(batch.obs)).gather(1, actions[:, None]).reshape(-1)
        per_sample = nn.huber_loss if c.loss == "huber" else nn.mse_loss
        if c.prioritized:
            weights = to_device(batch.weights, self.device)
            loss = (per_sample(q_taken, y, reduction="none") * weights).mean()
            self.replay.update_priorities(batch.slots, to_numpy(abs(y - q_taken.data)))
        else:
            loss = per_sample(q_taken, y)
        self.optimizer.zero_grad()
        loss.backward()
        self.last_grad_norm = self.optimizer.clip_grad_norm(c.max_grad_norm or float("inf"))
        self.optimizer.step()
        self.updates += 1
        return loss.item()

    def health(self) -> tuple[dict, list] | None:
        """Training-health figures on a fixed probe batch of replay states (``PROBE_SIZE``,
        drawn at the first call and kept in checkpoints), or None while the replay holds fewer.

        Returns (row, warnings): row = {"active_<layer>": fraction of each ReLU layer's
        activations > 0, "q_max_mean"/"q_max_std": mean and spread of max_a Q(s, a) across the
        probe states, "grad_norm": the last update's gradient norm before clipping}; warnings =
        :func:`rlkit.health.collapse_reasons` (empty when healthy).
        """
        if self._probe is None:
            if len(self.replay) < PROBE_SIZE:
                return None
            self._probe = self.replay.sample_aside(PROBE_SIZE).obs.copy()
        q, activity = relu_activity(self.q_net, self.adapt(self._probe))
        best = to_numpy(q.max(axis=1))
        row = {**{f"active_{name}": round(fraction, 5) for name, fraction in activity.items()},
               "q_max_mean": float(best.mean()), "q_max_std": float(best.std()),
               "grad_norm": self.last_grad_norm}
        return row, collapse_reasons(activity, best)

    def update_target(self) -> None:
        """Hard copy (tau = 1) or Polyak step of the target network towards the online one."""
        tau = self.config.tau
        for target, online in zip(self.target_net.parameters(), self.q_net.parameters()):
            if tau >= 1.0:
                target.data[...] = online.data
            else:
                target.data *= 1.0 - tau
                target.data += tau * online.data

    def learn(self, total_steps: int, callback=None, run: TrainingRun | None = None) -> "DQN":
        """Train until ``self.steps == total_steps`` (absolute, so a resumed run continues).

        ``callback(agent, step)`` is called after every step; returning False stops.
        ``run`` (a TrainingRun) logs, evaluates and checkpoints; without one nothing is written.
        A stop (callback, Ctrl+C, SIGTERM) saves ``latest`` before returning.
        """
        check("total_steps", total_steps, integer(0))
        c, env = self.config, self.env
        run = run or TrainingRun(None, total_steps, progress=False)
        with run:
            run.start(self.steps)
            if self._obs is None:
                self._obs, _ = env.reset(seed=c.seed if self.steps == 0 else None)
                self._episode_return, self._episode_length = 0.0, 0
            stopped = False
            while self.steps < total_steps and not stopped:
                epsilon = self.epsilon()
                action = self._act(self._obs, epsilon, self.rng)
                next_obs, reward, terminated, truncated, info = env.step(action)
                self.replay.add(self._obs, action, reward, next_obs, terminated, truncated)
                self.steps += 1
                self._episode_return += float(reward)
                self._episode_length += 1
                if terminated or truncated:
                    self.episodes += 1
                    run.episode_end(self.steps, self.episodes, episode_score(info, self._episode_return),
                                    self._episode_length, epsilon)
                    next_obs, _ = env.reset()
                    self._episode_return, self._episode_length = 0.0, 0
                self._obs = next_obs
                if len(self.replay) >= c.learning_starts and self.steps % c.train_freq == 0:
                    run.last_loss = self.train_step()
                if self.steps % c.target_update == 0:
                    self.update_target()
                stopped = run.after_step(self, self.steps, epsilon, callback)
            if not stopped:
                run.evaluate(self, self.steps)  # a run always ends with an evaluation
            run.checkpoint(self)
        return self

    # ------------------------------------------------------------------ saving
    def save(self, path: str | os.PathLike, run_state: dict | None = None,
             replay_path: str | os.PathLike | None = None, weights_only: bool = False) -> None:
        """Write a checkpoint (.npz + JSON header, no pickle); the replay goes to ``replay_path``.

        The replay is written first, stamped with this step and its file name, and the
        checkpoint's header names it: publishing the checkpoint publishes the pair, so a kill
        between the two writes leaves the previous checkpoint with its own replay, and ``load``
        refuses a replay that was not saved with the checkpoint.
        ``weights_only`` keeps just the online network (a quarter of the size): enough to act
        and to watch, while resuming from it starts a fresh optimiser and target copy and draws
        a new health probe (the 3.6 MB Atari probe is left out too).
        """
        arrays = prefixed("q", self.q_net.state_dict())
        if not weights_only:
            arrays.update({**prefixed("target", self.target_net.state_dict()),
                           **prefixed("optim", self.optimizer.state_dict())})
            if self._probe is not None:
                arrays["probe"] = self._probe
        if self._obs is not None:
            arrays["obs"] = np.asarray(self._obs)
        replay = None
        if replay_path is not None:
            replay = {"file": Path(replay_path).name, "steps": self.steps}
            save_npz_atomic(replay_path, checkpoint=np.array(json.dumps(replay)),
                            **self.replay.state_dict())
        meta = {"hyperparams": dataclasses.asdict(self.config), "env": env_signature(self.env),
                "steps": self.steps, "episodes": self.episodes, "updates": self.updates,
                "episode_return": self._episode_return, "episode_length": self._episode_length,
                "rng": generator_state(self.rng), "global_rng": generator_state(rlkit_random.generator()),
                "env_state": env_snapshot(self.env) if self._obs is not None else None,
                "run_state": run_state or {}, "replay": replay}
        save_checkpoint(path, self, meta, **arrays)

    @classmethod
    def load(cls, path: str | os.PathLike, env=None, replay_path: str | os.PathLike | None = None,
             **overrides) -> "DQN":
        """Rebuild an agent from a checkpoint; with ``env`` it can keep learning (resume).

        ``replay_path``: the replay memory saved with it (:func:`agents.base.saved_replay`
        finds it); a replay of another step or file raises ValueError saying which.
        ``overrides`` change hyper-parameters (e.g. ``learning_rate``, ``device``); one in
        ``DQNConfig.FIXED_ON_RESUME`` that differs from the checkpoint's raises ValueError.
        The device is never the checkpoint's: unset, it comes from $RLKIT_DEVICE, else cpu.
        Without ``env`` a stand-in with the saved spaces is used: predict works, learn does not.
        """
        header, arrays = load_checkpoint(path, cls, env)
        # a file written before a setting existed was made without it: its plain default (e.g.
        # network "nature", no dueling head), not today's preset, rebuilds that agent
        predating = {f.name: f.default for f in dataclasses.fields(DQNConfig)
                     if f.name not in header["hyperparams"] and f.default is not dataclasses.MISSING}
        hyper = resume_hyperparams(DQNConfig, {**predating, **header["hyperparams"]}, overrides)
        agent = cls(env if env is not None else SpacesOnly(header["env"]), **hyper)
        agent.q_net.load_state_dict(unprefixed("q", arrays))
        target = unprefixed("target", arrays)
        agent.target_net.load_state_dict(target or unprefixed("q", arrays))  # weights-only files
        if any(k.startswith("optim/") for k in arrays):
            agent.optimizer.load_state_dict(unprefixed("optim", arrays))
            agent.optimizer.lr = agent.config.learning_rate  # the state holds the rate it had
        agent.steps, agent.episodes, agent.updates = header["steps"], header["episodes"], header["updates"]
        agent._probe = arrays.get("probe")
        restore_generator(agent.rng, header["rng"])
        restore_generator(rlkit_random.generator(), header["global_rng"])
        if replay_path is not None:
            agent.replay.load_state_dict(_replay_saved_with(path, header, replay_path))
        if env is not None and "obs" in arrays and header.get("env_state"):
            env.reset()
            env_restore(env, header["env_state"])
            agent._obs = arrays["obs"]
            agent._episode_return = header["episode_return"]
            agent._episode_length = header["episode_length"]
        elif isinstance(agent.replay, FrameReplayBuffer):
            agent.replay.end_episode()  # the env restarts with a fresh episode
        return agent


def _replay_saved_with(checkpoint, header: dict, replay_path) -> dict:
    """The arrays of ``replay_path`` after checking its stamp against the checkpoint's header:
    ValueError (naming both files and steps) unless the two were saved together. A header from
    before replays were stamped (no "replay" entry) takes an unstamped file unchecked."""
    arrays = load_npz(replay_path)
    stamp = json.loads(str(arrays.pop("checkpoint"))) if "checkpoint" in arrays else None
    expected = header.get("replay")
    if stamp == expected or ("replay" not in header and stamp is None):
        return arrays
    held = (f"holds the replay memory of step {stamp['steps']:,}" if stamp
            else "carries no step stamp")
    named = f"names {expected['file']}" if expected else "was saved without a replay memory"
    raise ValueError(f"{replay_path} {held}, but {checkpoint} (step {header['steps']:,}) {named}: "
                     "they were not saved together")


def _clone_structure(module: nn.Module) -> nn.Module:
    """A second instance of a user-given network for the target (same class, same weights)."""
    import copy
    return copy.deepcopy(module)
