"""What the policy-gradient agents (REINFORCE, A2C, PPO) share, so that each of their files holds
only its algorithm: hyper-parameters resolved from presets, the network for an env's spaces,
acting with a carried LSTM state, the learn() bookkeeping (``agents.training_run``) and
checkpoints (.npz + JSON header, no pickle).

Continuous actions: an agent class with ``CONTINUOUS_ACTIONS`` (A2C, PPO) also takes a
one-dimensional Box action space; its policy is then a diagonal Gaussian with a learned,
state-independent log standard deviation, its draws are clipped to the Box's bounds when
handed to the env (``_env_actions``, also what ``predict`` returns) and it learns from the
log-probability of the unclipped draw.

Recurrent agents and ``predict``: the agent keeps the LSTM state of the episode it is being
shown between ``predict`` calls. Call ``reset_state()`` when a new episode starts (the shared
``evaluate`` does); a batch of observations keeps one state per row.
"""
from __future__ import annotations

import dataclasses
import os

import numpy as np
from gymnasium import spaces
from gymnasium.vector import VectorEnv

from agents import networks
from agents.base import (SpacesOnly, env_signature, load_checkpoint, resume_hyperparams,
                         save_checkpoint, validate_config)
from agents.policy_networks import (BOOK_INPUTS, Core, PolicyNetwork, book_network, encoder_for,
                                    state_rows)
from agents.training_run import TrainingRun
from rlkit import Tensor, nn, no_grad, optim
from rlkit.backend import resolve_device, set_num_threads
from rlkit.checks import FLAG, TEXT, check, integer, number, one_of, optional, sizes
from rlkit import random as rlkit_random
from rlkit.random import generator_state, restore_generator

POLICIES = ("auto", "book", "mlp", "cnn")


@dataclasses.dataclass
class PolicyConfig:
    """Hyper-parameters both policy-gradient agents have (each agent adds its own)."""

    policy: str = "auto"
    """"book" (the seed book's Pong network: 6400 floats in, two actions), "mlp", "cnn", or
    "auto": cnn for (C, 84, 84) frames, mlp otherwise. train_pg.py chooses "book" for Pong
    with REINFORCE and "cnn" with A2C and PPO."""
    hidden_sizes: tuple = (64, 64)
    """Hidden layers of the MLP encoder (policy "mlp")."""
    activation: str = "relu"
    """MLP activation: "relu" or "tanh"."""
    network: str = "nature"
    """Image network of the cnn policy: "nature" (Mnih et al. 2015, 512 features) or "small"
    (Mnih et al. 2013, 256 features, a third of the multiply-adds). train_pg.py gives Pong's
    cnn policy "small"."""
    recurrent: bool = False
    """An LSTM between encoder and heads, its state carried through each episode."""
    lstm_size: int = 64
    """LSTM hidden units (recurrent only)."""
    gamma: float = 0.99
    """Discount factor."""
    learning_rate: float = 1e-3
    """Optimiser step size."""
    optimizer: str = "adam"
    """"rmsprop" or "adam"."""
    rmsprop_decay: float = 0.99
    """RMSProp's decay of the running mean of squared gradients."""
    optimizer_eps: float = 1e-5
    """Added to the root of the squared-gradient average (RMSProp, Adam)."""
    max_grad_norm: float = 0.0
    """Clip the global gradient norm to this before each update (0: no clipping)."""
    seed: int | None = None
    """Seeds initialisation, the agent's action draws and the env's first reset."""
    device: str | None = None
    """"cpu" or "cuda"; None (unset): $RLKIT_DEVICE, else "cpu"."""
    threads: int = 0
    """CPU math threads; 0: automatic (1 for MLPs, the library default otherwise)."""

    # the range of every field (rlkit.checks), checked when a config is made; subclasses extend it
    RULES = {
        "policy": one_of(*POLICIES), "hidden_sizes": sizes(1), "activation": one_of("relu", "tanh"),
        "network": one_of(*sorted(nn.IMAGE_NETWORKS)), "recurrent": FLAG, "lstm_size": integer(1),
        "gamma": number(0, 1),
        "learning_rate": number(0, low_open=True), "optimizer": one_of("rmsprop", "adam"),
        "rmsprop_decay": number(0, 1, high_open=True), "optimizer_eps": number(0, low_open=True),
        "max_grad_norm": number(0), "seed": optional(integer(0)), "device": optional(TEXT),
        "threads": integer(0),
    }
    # what a resume cannot change (agents.base.resume_hyperparams): the network's shape, the
    # optimiser's state, and the seed (used once, at the start); subclasses extend it
    FIXED_ON_RESUME = ("policy", "hidden_sizes", "activation", "network", "recurrent", "lstm_size",
                       "optimizer", "seed")

    def __post_init__(self):
        validate_config(self)


def single_spaces(env) -> tuple:
    """(observation space, action space) of one environment, also for a vector env."""
    if isinstance(env, VectorEnv):
        return env.single_observation_space, env.single_action_space
    return env.observation_space, env.action_space


def resolve_policy(policy: str, observation_space) -> str:
    """The policy kind for these spaces: "auto" becomes "cnn" (image frames) or "mlp"."""
    if policy not in POLICIES:
        raise ValueError(f"policy must be one of {POLICIES}, got {policy!r}")
    if policy != "auto":
        return policy
    return "cnn" if networks.is_image_space(observation_space) else "mlp"


def resolve_config(config_cls, presets: dict, observation_space, action_space, **overrides):
    """``config_cls`` with the preset of the resolved policy kind, then ``overrides``, applied.

    For a Box action space the entry ``"<kind>-box"`` (when there is one) is laid over the kind's.

    Unknown names raise TypeError listing the known ones.
    """
    fields = {f.name for f in dataclasses.fields(config_cls)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise TypeError(f"unknown {config_cls.__name__} hyper-parameters {unknown}; "
                        f"known: {sorted(fields)}")
    kind = resolve_policy(overrides.get("policy", "auto"), observation_space)
    preset = kind_preset(presets, kind, continuous=isinstance(action_space, spaces.Box))
    return config_cls(**{**preset, **overrides, "policy": kind})


def kind_preset(presets: dict, kind: str, continuous: bool) -> dict:
    """The preset of policy ``kind``; for continuous (Box) actions with the ``"<kind>-box"``
    entry laid over it (e.g. "mlp-box": continuous control on top of "mlp")."""
    return {**presets.get(kind, {}), **(presets.get(f"{kind}-box", {}) if continuous else {})}


class PolicyAgent:
    """Base of ``PolicyGradient``, ``ActorCritic`` and ``PPO``: subclasses set ``Config``, ``PRESETS``,
    ``VALUE_HEAD`` and implement ``_train`` (the algorithm's loop) and, when they keep state
    beyond the network and optimiser, ``_extra_state`` / ``_restore_extra``."""

    Config = PolicyConfig
    PRESETS: dict = {}
    VALUE_HEAD = False
    CONTINUOUS_ACTIONS = False  # True: a Box action space gets a diagonal Gaussian policy
    # (the Config then has ``init_log_std``, its starting log standard deviation)

    def __init__(self, env, **hyperparams):
        observation_space, action_space = single_spaces(env)
        box = isinstance(action_space, spaces.Box) and len(action_space.shape) == 1
        if not (isinstance(action_space, spaces.Discrete) or (box and self.CONTINUOUS_ACTIONS)):
            wanted = ("a Discrete or a one-dimensional Box action space" if self.CONTINUOUS_ACTIONS
                      else "a Discrete action space")
            raise ValueError(f"{type(self).__name__} needs {wanted}, got {action_space}")
        self.config = c = resolve_config(self.Config, self.PRESETS, observation_space,
                                         action_space, **hyperparams)
        self.env = env
        self.observation_space, self.action_space = observation_space, action_space
        # continuous: a diagonal Gaussian over the Box's dimensions, clipped to its bounds at the env
        self.continuous = box
        self.n_actions = int(action_space.shape[0]) if box else int(action_space.n)
        self.device = resolve_device(c.device)
        threads = c.threads or networks.default_threads(observation_space)
        if threads:
            set_num_threads(threads)
        self.rng = networks.seed_everything(c.seed)
        self.obs_adapter = networks.ObsAdapter(observation_space, self.device)
        self.net = self._build_network().to(self.device)
        # after .to(): the optimiser keeps the parameters in one flat buffer on the device
        if c.optimizer == "rmsprop":
            self.optimizer = optim.RMSProp(self.net.parameters(), lr=c.learning_rate,
                                           alpha=c.rmsprop_decay, eps=c.optimizer_eps)
        else:
            self.optimizer = optim.Adam(self.net.parameters(), lr=c.learning_rate, eps=c.optimizer_eps)
        self.steps, self.episodes, self.updates = 0, 0, 0
        self.last_stats: dict = {}  # the last update's terms by name, logged as losses/<name>
        self._env_signature = env_signature(_SingleEnvView(env))
        self._predict_state = None

    def _build_network(self) -> PolicyNetwork:
        c = self.config
        lstm_size = c.lstm_size if c.recurrent else 0
        if c.policy == "book":
            if self.observation_space.shape != (BOOK_INPUTS,) or self.n_actions != 2:
                raise ValueError("policy='book' is the book's Pong network: it needs the 6400-float "
                                 "difference frame and the two actions UP/DOWN "
                                 "(envs.make('Pong', preprocess='pg', actions='updown')), got "
                                 f"{self.observation_space} and {self.n_actions} actions")
            if self.VALUE_HEAD:
                raise ValueError("policy='book' has no value head; use 'mlp' or 'cnn' here")
            return book_network(lstm_size)
        shape = self._input_shape()
        if (c.policy == "cnn") != (len(shape) == 3):
            raise ValueError(f"policy={c.policy!r} does not fit observations of shape {shape}: "
                             "'cnn' takes (C, 84, 84) frames, 'mlp' vectors")

        def core() -> Core:
            return Core(*encoder_for(shape, c.hidden_sizes, c.activation, c.network,
                                     networks.input_scale(self.observation_space)), lstm_size)

        gaussian = dict(gaussian=True, init_log_std=c.init_log_std) if self.continuous else {}
        if not self.VALUE_HEAD:
            return PolicyNetwork(core(), self.n_actions, **gaussian)
        if c.policy == "cnn":  # one convolutional trunk for both heads, as in Atari A2C
            return PolicyNetwork(core(), self.n_actions, shared_value=True, **gaussian)
        return PolicyNetwork(core(), self.n_actions, critic=core(), **gaussian)

    def _input_shape(self) -> tuple:
        """Shape of one observation as the network reads it (Discrete becomes one-hot)."""
        space = self.observation_space
        return (int(space.n),) if isinstance(space, spaces.Discrete) else tuple(space.shape)

    # ------------------------------------------------------------------ acting
    def _observations(self, obs) -> Tensor:
        """A batch of raw observations (N, ...) as network input (N, 1, *input shape)."""
        x = self.obs_adapter(obs)
        return x.reshape(x.shape[0], 1, *self._input_shape())

    def _act(self, obs, state, starts=None, deterministic: bool = False):
        """Actions (N,) for a batch of observations, and the LSTM state after them. No graph."""
        dist, _, state = self._look(obs, state, starts)
        return (dist.mode() if deterministic else dist.sample(self.rng)), state

    def _look(self, obs, state, starts=None):
        """The network on a batch of raw observations, no graph: (action distribution, values
        (N,) or None without a value head, LSTM state after them)."""
        with no_grad():
            return self.net(self._observations(obs), state, starts)

    def _flat_actions(self, actions: np.ndarray) -> np.ndarray:
        """Actions of a rollout (N, T[, D]) as rows for ``dist.log_prob``: (N*T,) or (N*T, D)."""
        return actions.reshape(-1, self.n_actions) if self.continuous else actions.reshape(-1)

    def _env_actions(self, actions: np.ndarray) -> np.ndarray:
        """Actions as the env takes them: continuous ones clipped to the Box's bounds (the
        agent learns from the unclipped draw), discrete ones unchanged."""
        if not self.continuous:
            return actions
        space = self.action_space
        return np.clip(actions, space.low, space.high).astype(space.dtype)

    def predict(self, obs, deterministic: bool = True):
        """The action for one observation (an int; continuous: an array (D,) within the Box's
        bounds), or for a batch (N, ...) (an array (N,) or (N, D)).

        ``deterministic``: the most likely action; else a draw from the policy. A recurrent
        agent carries its LSTM state from call to call; ``reset_state()`` starts an episode.
        """
        batch = np.ndim(obs) == len(self.observation_space.shape) + 1
        rows = np.asarray(obs) if batch else np.asarray(obs)[None]
        state = self._predict_state
        if state_rows(state) not in (None, len(rows)):
            state = None  # a different number of episodes: start them all afresh
        actions, self._predict_state = self._act(rows, state, deterministic=deterministic)
        actions = self._env_actions(actions)
        if batch:
            return actions
        return actions[0] if self.continuous else int(actions[0])

    ACTION_VALUES = "action probabilities"  # what action_values returns, as a panel names it

    def action_values(self, obs) -> np.ndarray:
        """pi(. | obs) for one observation, shape (n_actions,), e.g. for a viewer's panel.

        A recurrent agent reads the LSTM state ``predict`` carries, without advancing it.
        """
        if self.continuous:
            raise ValueError("action_values: a continuous policy has a density, not "
                             "probabilities; use predict(obs) for its mean action")
        with no_grad():
            dist, _, _ = self.net(self._observations(np.asarray(obs)[None]), self._predict_state)
        return np.asarray(dist.probs())[0].reshape(-1)

    def reset_state(self) -> None:
        """Forget the LSTM state ``predict`` carries (call at the start of every episode)."""
        self._predict_state = None

    # ------------------------------------------------------------------ learning
    def learn(self, total_steps: int, callback=None, run: TrainingRun | None = None):
        """Train until ``self.steps >= total_steps`` (absolute, so a resumed run continues).

        ``callback(agent, step)`` is called whenever the agent could be checkpointed (see the
        subclass); returning False stops. ``run`` (a TrainingRun) logs episodes, evaluates and
        checkpoints on its schedule; without one nothing is written. A stop (callback, Ctrl+C,
        SIGTERM) saves ``latest`` before returning.
        """
        if self.env is None or not hasattr(self.env, "step"):
            raise ValueError(f"this {type(self).__name__} has no env to learn from; pass env= to load()")
        check("total_steps", total_steps, integer(0))
        run = run or TrainingRun(None, total_steps, progress=False)
        with run:
            run.start(self.steps)
            stopped = self._train(int(total_steps), callback, run)
            if not stopped:
                run.evaluate(self, self.steps)  # a run always ends with an evaluation
            run.checkpoint(self)
        return self

    def _train(self, total_steps: int, callback, run: TrainingRun) -> bool:
        """The algorithm's loop; returns True when stopped early."""
        raise NotImplementedError

    def _apply_gradients(self) -> None:
        """Clip (if configured) and take one optimiser step on the accumulated gradients."""
        if self.config.max_grad_norm:
            optim.clip_grad_norm_(self.optimizer.params, self.config.max_grad_norm)
        self.optimizer.step()
        self.optimizer.zero_grad()
        self.updates += 1

    # ------------------------------------------------------------------ checkpoints
    def _extra_state(self) -> tuple[dict, dict]:
        """(JSON values, arrays) a subclass adds to a checkpoint."""
        return {}, {}

    def _restore_extra(self, meta: dict, arrays: dict) -> None:
        """Undo ``_extra_state``."""

    def save(self, path: str | os.PathLike, run_state: dict | None = None,
             replay_path: str | os.PathLike | None = None) -> None:
        """Write a checkpoint: network, optimiser, counters, random generators (no pickle).

        ``run_state`` is TrainingRun's bookkeeping; ``replay_path`` must be None (these agents
        keep no replay memory; the argument exists because TrainingRun passes it).
        """
        if replay_path is not None:
            raise ValueError(f"{type(self).__name__} has no replay memory to save")
        extra_meta, extra_arrays = self._extra_state()
        meta = {"hyperparams": dataclasses.asdict(self.config),
                "env": self._env_signature,
                "steps": self.steps, "episodes": self.episodes, "updates": self.updates,
                "rng": generator_state(self.rng), "global_rng": generator_state(rlkit_random.generator()),
                "run_state": run_state or {}, **extra_meta}
        arrays = {**networks.prefixed("net", self.net.state_dict()),
                  **networks.prefixed("optim", self.optimizer.state_dict()), **extra_arrays}
        save_checkpoint(path, self, meta, **arrays)

    @classmethod
    def load(cls, path: str | os.PathLike, env=None, **overrides):
        """Rebuild an agent from ``save``; with ``env`` (checked against the file) it can go on
        learning. ``overrides`` change hyper-parameters (e.g. ``learning_rate``, ``device``);
        one in ``Config.FIXED_ON_RESUME`` that differs from the checkpoint's raises ValueError.
        The device is never the checkpoint's: unset, it comes from $RLKIT_DEVICE, else cpu.
        Without ``env`` it can only ``predict``.
        """
        header, arrays = load_checkpoint(path, cls, _SingleEnvView.of(env))
        hyper = resume_hyperparams(cls.Config, header["hyperparams"], overrides)
        agent = cls(env if env is not None else SpacesOnly(header["env"]), **hyper)
        if env is None:
            agent.env, agent._env_signature = None, header["env"]
        agent.net.load_state_dict(networks.unprefixed("net", arrays))
        agent.optimizer.load_state_dict(networks.unprefixed("optim", arrays))
        agent.optimizer.lr = agent.config.learning_rate  # the state holds the rate it had
        agent.steps, agent.episodes, agent.updates = header["steps"], header["episodes"], header["updates"]
        restore_generator(agent.rng, header["rng"])
        restore_generator(rlkit_random.generator(), header["global_rng"])
        agent._restore_extra(header, arrays)
        return agent


class _SingleEnvView:
    """What ``env_signature`` reads, for one sub-environment: an id and the single spaces."""

    def __init__(self, env):
        self.observation_space, self.action_space = single_spaces(env)
        self.spec = getattr(env, "spec", None)
        self.unwrapped = getattr(env, "unwrapped", env)

    @classmethod
    def of(cls, env):
        return None if env is None else cls(env)
