"""Advantage actor-critic (A2C: the synchronous form of Mnih et al. 2016) over a vector env.

REINFORCE waits for the end of an episode and weighs every action by the whole return that
followed it. The actor-critic learns a value V(s) alongside the policy and, every ``n_steps``
steps of ``N`` environments stepped together, updates from n-step returns:

1. act in all N environments for n_steps steps, drawing a_t ~ pi(. | s_t);
2. n-step returns, backwards from the value of the observation after the rollout:
       R_t = r_t + gamma * R_{t+1},   R_n = V(s_n);
   a termination cuts the sum (R_t = r_t); a time-limit truncation bootstraps from the value
   of the episode's final observation, R_t = r_t + gamma * V(s_final);
3. advantage A_t = R_t - V(s_t), a constant for the policy term (the value is the baseline);
4. loss = -mean(A_t log pi(a_t | s_t)) + value_coef * mean((R_t - V(s_t))^2)
          - entropy_coef * mean(H(pi(. | s_t)))       (the entropy bonus keeps it exploring);
5. one optimiser step, the gradient's global norm clipped to ``max_grad_norm``.

The vector env resets a finished sub-env on the following step (Gymnasium's NEXT_STEP
autoreset, the default of ``envs.make_vec``): that step returns the new episode's first
observation, its action is ignored, and it is left out of every mean above. The observation
it was given is the finished episode's last one: the value a truncation bootstraps from.

Recurrent (``recurrent=True``): the LSTM state is carried through the rollout and zeroed where
an episode starts; the update replays the rollout from the state it had at its start, so
back-propagation through time is truncated at n_steps.

Continuous (Box) actions: the policy is a diagonal Gaussian (``DiagGaussian``); its draws are
clipped to the bounds when given to the env, and the update uses the unclipped draw.

Checkpoints are taken between updates. On classic control and toy-text envs (Gymnasium's sync
vector env) a checkpoint holds the N episodes in progress too (``_rollout_state``), so N steps
plus a resumed N give the weights of 2N in one go; elsewhere (Atari) and for a recurrent policy
the resumed run restarts its episodes.
"""
from __future__ import annotations

import dataclasses

import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.wrappers.utils import RunningMeanStd

from agents.base import load_checkpoint
from agents.policy_base import PolicyAgent, PolicyConfig
from agents.training_run import TrainingRun, env_restore, env_snapshot, episode_score
from rlkit import Tensor
from rlkit.backend import to_device, to_numpy
from rlkit.checks import FLAG, integer, number


@dataclasses.dataclass
class ActorCriticConfig(PolicyConfig):
    """Hyper-parameters of :class:`ActorCritic`; unset ones come from ``PRESETS``."""

    n_steps: int = 5
    """Steps of every environment per update (the n of the n-step returns)."""
    value_coef: float = 0.5
    """Weight of the value loss."""
    entropy_coef: float = 0.01
    """Weight of the entropy bonus."""
    gae_lambda: float = 1.0
    """GAE's lambda: 1 gives the plain n-step returns, < 1 mixes shorter ones (less variance)."""
    normalize_advantages: bool = False
    """Standardise the advantages of each rollout (zero mean, unit std) for the policy term."""
    reward_scale: float = 1.0
    """Rewards are multiplied by this before returns and values are computed, so the critic
    fits values of order 1 (CartPole's returns reach ~100 at gamma 0.99)."""
    init_log_std: float = 0.0
    """Continuous (Box) actions only: the starting log standard deviation of the Gaussian
    policy, one learned value per action dimension, the same in every state (0: std 1)."""
    normalize_observations: bool = False
    """Standardise vector observations by the running mean and variance of those met in
    training (Gymnasium's NormalizeObservation rule and RunningMeanStd), then clip to +-10; the
    statistics are saved with every checkpoint and used by predict (evaluation) as well."""
    normalize_rewards: bool = False
    """Divide the rewards learned from by the running standard deviation of each env's
    discounted return (Gymnasium's NormalizeReward rule), then clip to +-10; before
    reward_scale. Logged episode returns stay the env's own."""

    RULES = {**PolicyConfig.RULES, "n_steps": integer(1), "value_coef": number(0),
             "entropy_coef": number(0), "gae_lambda": number(0, 1), "normalize_advantages": FLAG,
             "reward_scale": number(0, low_open=True), "init_log_std": number(-20, 5),
             "normalize_observations": FLAG, "normalize_rewards": FLAG}
    # also fixed on resume: the Gaussian's starting spread (used once) and which running
    # statistics the checkpoint holds
    FIXED_ON_RESUME = PolicyConfig.FIXED_ON_RESUME + ("init_log_std", "normalize_observations",
                                                      "normalize_rewards")


PRESETS = {
    # CartPole and other small control tasks with a reward every step (sparse +-1 rewards
    # want reward_scale 1: scaled to 0.01 they fall below Adam's epsilon, see the memory
    # corridor test). Measured on CartPole-v1 with 4 environments (README): greedy evaluation
    # reached 475 on all of seeds 0-47, median 8.8k steps (REINFORCE: 46 of 48, median 13.75k).
    # What mattered: a separate critic network (policy_base), reward_scale (the critic fits
    # values <= 1 instead of ~100: about three times fewer steps), no clipping (a clipped
    # global norm let the critic's gradient shrink the actor's steps), GAE 0.95 and the
    # entropy bonus (fewer runs that collapse after solving).
    "mlp": dict(learning_rate=1e-2, optimizer="adam", n_steps=16, entropy_coef=0.01,
                gae_lambda=0.95, reward_scale=0.01, max_grad_norm=0.0, hidden_sizes=(64, 64)),
    # the Atari setting of Mnih et al. 2016 / RL Zoo: RMSProp 7e-4, 5 steps, entropy 0.01
    "cnn": dict(learning_rate=7e-4, optimizer="rmsprop", rmsprop_decay=0.99, n_steps=5,
                entropy_coef=0.01, max_grad_norm=0.5),
}


def n_step_returns(rewards, terminated, truncated, values, last_values, gamma: float,
                   lam: float = 1.0) -> np.ndarray:
    """Value targets R (N, T) from a rollout of N environments over T steps.

    rewards, terminated, truncated: (N, T); values: V(s_t) (N, T); last_values: V(s_T) (N,).
    With ``lam`` = 1 these are the n-step returns
    R_t = r_t + gamma * (1 - terminated_t) * (V(s_{t+1}) if truncated_t else R_{t+1}), R_T = V(s_T)
    (after a truncation s_{t+1} is the episode's final observation, NEXT_STEP). With ``lam`` < 1,
    R_t = V(s_t) + A_t with GAE (Schulman et al. 2016): delta_t = r_t + gamma * (1 - terminated_t)
    * V(s_{t+1}) - V(s_t), A_t = delta_t + gamma * lam * (1 - terminated_t) * (1 - truncated_t)
    * A_{t+1}, A_T = 0: an exponentially weighted mix of 1- to n-step advantages, less variance
    for a little bias.
    """
    n, t_max = rewards.shape
    next_values = np.concatenate([values[:, 1:], last_values[:, None]], axis=1)
    continues = 1.0 - terminated
    deltas = rewards + gamma * continues * next_values - values
    advantages = np.zeros((n, t_max))
    following = np.zeros(n)
    for t in range(t_max - 1, -1, -1):
        following = deltas[:, t] + gamma * lam * continues[:, t] * (1.0 - truncated[:, t]) * following
        advantages[:, t] = following
    return advantages + values


class ActorCritic(PolicyAgent):
    """A2C agent: ``ActorCritic(vector_env, **hyperparams)``, see :class:`ActorCriticConfig`.

    ``env`` is a Gymnasium vector env (``envs.make_vec(name, n)``). ``learn`` calls
    ``callback(agent, step)`` after every update. ``last_stats`` holds the last update's
    policy_loss, value_loss and entropy (means over the rollout's real transitions).
    """

    Config = ActorCriticConfig
    PRESETS = PRESETS
    VALUE_HEAD = True
    CONTINUOUS_ACTIONS = True

    def __init__(self, env, **hyperparams):
        if not isinstance(env, VectorEnv) and hasattr(env, "step"):
            raise ValueError("ActorCritic steps several environments together: give it a vector "
                             "env, e.g. envs.make_vec('CartPole-v1', 8)")
        if hasattr(env, "step") and env.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP) \
                != AutoresetMode.NEXT_STEP:
            raise ValueError(f"ActorCritic needs the NEXT_STEP autoreset mode (the default), got "
                             f"{env.metadata['autoreset_mode']}")
        super().__init__(env, **hyperparams)
        self.n_envs = getattr(env, "num_envs", 1)
        self._obs = None  # observations of the N environments; None: reset them first
        c = self.config
        self.obs_rms = self.return_rms = None
        if c.normalize_observations:
            space = self.observation_space
            if not isinstance(space, spaces.Box) or len(space.shape) != 1:
                raise ValueError(f"normalize_observations needs vector (1-D Box) observations, "
                                 f"got {space}")
            self.obs_rms = RunningMeanStd(shape=space.shape)
            self.obs_adapter = NormalizedObservations(self.obs_adapter, self.obs_rms)
        if c.normalize_rewards:
            self.return_rms = RunningMeanStd(shape=())
        self._discounted = np.zeros(self.n_envs)  # each env's discounted return so far

    @classmethod
    def load(cls, path, env=None, **overrides):
        """As ``PolicyAgent.load``; a single (not vector) ``env`` is checked against the file
        and gives an agent that can only ``predict`` (e.g. for watch.py)."""
        if env is not None and not isinstance(env, VectorEnv):
            load_checkpoint(path, cls, env)  # refuses a checkpoint made for another env
            return super().load(path, None, **overrides)
        return super().load(path, env, **overrides)

    # ------------------------------------------------------------------ acting
    def _reset_envs(self) -> None:
        seed = self.config.seed
        if seed is not None and self.steps > 0:
            seed = int(self.rng.integers(2**31))  # a resumed run gets new episodes
        self._obs, _ = self.env.reset(seed=seed)
        n = self.n_envs
        self._state = None
        self._starts = np.ones(n, bool)   # the observation is the first of an episode
        self._ended = np.zeros(n, bool)   # the last step ended the episode: the next one resets
        self._episode_return, self._episode_length = np.zeros(n), np.zeros(n, np.int64)
        self._discounted = np.zeros(n)

    def _collect(self, run: TrainingRun) -> dict:
        """Step the N environments n_steps times; arrays of shape (N, T, ...)."""
        n, t_max = self.n_envs, self.config.n_steps
        space = self.observation_space
        actions_shape, actions_dtype = (((self.n_actions,), np.float32) if self.continuous
                                        else ((), np.int64))
        rollout = {"obs": np.zeros((n, t_max) + space.shape, space.dtype),
                   "actions": np.zeros((n, t_max) + actions_shape, actions_dtype),
                   # log pi(a_t | s_t) and V(s_t) of the network as it acted (PPO's pi_old, V_old)
                   "log_prob": np.zeros((n, t_max), np.float32), "values": np.zeros((n, t_max)),
                   "rewards": np.zeros((n, t_max)),
                   "terminated": np.zeros((n, t_max), bool), "truncated": np.zeros((n, t_max), bool),
                   "valid": np.zeros((n, t_max), bool), "starts": np.zeros((n, t_max), bool),
                   "state": self._state}
        for t in range(t_max):
            valid = ~self._ended  # False: this step only resets the sub-env
            if self.obs_rms is not None:  # as Gymnasium's NormalizeObservation: before acting
                self.obs_rms.update(np.asarray(self._obs, np.float64))
            actions, rollout["log_prob"][:, t], rollout["values"][:, t] = self._rollout_act()
            rollout["obs"][:, t] = self._obs
            rollout["actions"][:, t], rollout["valid"][:, t] = actions, valid
            rollout["starts"][:, t] = self._starts
            self._obs, rewards, terminated, truncated, info = self.env.step(self._env_actions(actions))
            rollout["rewards"][:, t] = self._learned_rewards(rewards, valid, terminated | truncated)
            rollout["terminated"][:, t], rollout["truncated"][:, t] = terminated, truncated
            self._starts, self._ended = ~valid, terminated | truncated
            self.steps += n
            self._count_episodes(rewards, valid, info, run)
        return rollout

    def _rollout_act(self) -> tuple:
        """Draw actions (N,) for the current observations, advancing the LSTM state; returns
        them with log pi(a | s) (N,) and V(s) (N,). No graph."""
        dist, values, self._state = self._look(self._obs, self._state, self._starts[:, None])
        actions = dist.sample(self.rng)
        return actions, to_numpy(dist.log_prob(actions).data), to_numpy(values.data)

    def _learned_rewards(self, rewards, valid, ended) -> np.ndarray:
        """The rewards the update learns from: the env's, or with ``normalize_rewards`` divided
        by the running std of the discounted returns (updated here), clipped to +-10."""
        if self.return_rms is None:
            return rewards
        self._discounted[valid] = self._discounted[valid] * self.config.gamma + rewards[valid]
        if valid.any():
            self.return_rms.update(self._discounted[valid])
        self._discounted[ended] = 0.0
        return np.clip(rewards / np.sqrt(self.return_rms.var + 1e-8), -10.0, 10.0)

    def _extra_state(self) -> tuple[dict, dict]:
        """The normalisation statistics (when on) and the episodes in progress
        (``_rollout_state``): saved with every checkpoint."""
        arrays = {}
        for name, rms in (("obs_rms", self.obs_rms), ("return_rms", self.return_rms)):
            if rms is not None:
                arrays.update({f"{name}_mean": rms.mean, f"{name}_var": rms.var,
                               f"{name}_count": np.asarray(rms.count, np.float64)})
        if self.return_rms is not None:
            arrays["discounted_returns"] = self._discounted
        rollout_meta, rollout_arrays = self._rollout_state()
        return rollout_meta, {**arrays, **rollout_arrays}

    def _restore_extra(self, meta: dict, arrays: dict) -> None:
        for name, rms in (("obs_rms", self.obs_rms), ("return_rms", self.return_rms)):
            if rms is None:
                continue
            if f"{name}_mean" not in arrays:
                raise ValueError(f"this checkpoint has no {name} statistics: it was saved "
                                 f"without normalize_{'observations' if name == 'obs_rms' else 'rewards'}")
            rms.mean = np.array(arrays[f"{name}_mean"], np.float64)
            rms.var = np.array(arrays[f"{name}_var"], np.float64)
            rms.count = float(arrays[f"{name}_count"])
        if self.return_rms is not None and len(arrays["discounted_returns"]) == self.n_envs:
            self._discounted = np.array(arrays["discounted_returns"], np.float64)
        self._restore_rollout(meta, arrays)

    def _rollout_state(self) -> tuple[dict, dict]:
        """(JSON values, arrays) with which a resumed run continues the N episodes in progress
        instead of restarting them: every sub-env's state (``env_snapshot``: classic control and
        toy text in Gymnasium's sync vector env) and the agent's view of them. Empty, so that a
        resume restarts the episodes, for other envs and for a recurrent policy (its LSTM state
        is not saved). Saved with every checkpoint of A2C and PPO."""
        sub_envs = getattr(self.env, "envs", None)
        if (self._obs is None or sub_envs is None or self.config.recurrent
                or not hasattr(self.env, "_autoreset_envs")):
            return {}, {}
        snapshots = [env_snapshot(env) for env in sub_envs]
        if any(snapshot is None for snapshot in snapshots):
            return {}, {}
        meta = {"rollout": {"envs": snapshots, "episode_return": self._episode_return.tolist(),
                            "episode_length": self._episode_length.tolist()}}
        arrays = {"rollout_obs": np.asarray(self._obs), "rollout_starts": self._starts,
                  "rollout_ended": self._ended}
        return meta, arrays

    def _restore_rollout(self, meta: dict, arrays: dict) -> None:
        """Undo ``_rollout_state`` on this agent's env (nothing without one, or when the
        checkpoint holds no rollout state: the episodes then restart)."""
        saved = meta.get("rollout")
        if not saved or not hasattr(self.env, "step") or len(saved["envs"]) != self.n_envs:
            return
        self.env.reset()  # every sub-env must have been reset once before it is restored
        for env, snapshot in zip(self.env.envs, saved["envs"]):
            env_restore(env, snapshot)
        self.env._autoreset_envs = np.array(arrays["rollout_ended"], bool)  # NEXT_STEP resets
        self._obs, self._state = arrays["rollout_obs"], None
        self._starts = np.array(arrays["rollout_starts"], bool)
        self._ended = np.array(arrays["rollout_ended"], bool)
        self._episode_return = np.array(saved["episode_return"], np.float64)
        self._episode_length = np.array(saved["episode_length"], np.int64)

    def _count_episodes(self, rewards, valid, info: dict, run: TrainingRun) -> None:
        self._episode_return += np.where(valid, rewards, 0.0)
        self._episode_length += valid
        for i in np.flatnonzero(self._ended):
            self.episodes += 1
            run.episode_end(self.steps, self.episodes,
                            episode_score(info, float(self._episode_return[i]), i),
                            int(self._episode_length[i]))
            self._episode_return[i], self._episode_length[i] = 0.0, 0

    def _train(self, total_steps: int, callback, run: TrainingRun) -> bool:
        if self._obs is None:
            self._reset_envs()
        while self.steps < total_steps:
            run.last_loss = self._update(self._collect(run))
            if run.after_step(self, self.steps, callback=callback):
                return True
        return False

    # ------------------------------------------------------------------ learning
    def _update(self, rollout: dict) -> float:
        """One gradient step on a rollout (steps 2-5 of the module docstring); returns the loss."""
        c = self.config
        n, t_max = rollout["actions"].shape[:2]
        x = self.obs_adapter(rollout["obs"].reshape((n * t_max,) + self.observation_space.shape))
        dist, values, _ = self.net(x.reshape(n, t_max, *self._input_shape()), rollout["state"],
                                   rollout["starts"])
        # V(s_T), from the LSTM state the rollout ended in
        _, last_values, _ = self._look(self._obs, self._state, self._starts[:, None])
        returns = n_step_returns(c.reward_scale * rollout["rewards"], rollout["terminated"],
                                 rollout["truncated"],
                                 to_numpy(values.data).reshape(n, t_max).astype(np.float64),
                                 to_numpy(last_values.data).astype(np.float64), c.gamma, c.gae_lambda)
        valid = rollout["valid"].reshape(-1).astype(np.float32)
        weights = valid / max(valid.sum(), 1.0)  # the mean over real transitions
        advantages = returns.reshape(-1) - to_numpy(values.data)
        if c.normalize_advantages:
            mean = (advantages * weights).sum()
            std = np.sqrt((((advantages - mean) ** 2) * weights).sum())
            advantages = (advantages - mean) / (std + 1e-8)
        policy_loss = -(dist.log_prob(self._flat_actions(rollout["actions"]))
                        * self._on_device(advantages * weights)).sum()
        value_loss = ((values - Tensor(self._on_device(returns.reshape(-1)))) ** 2
                      * self._on_device(weights)).sum()
        entropy = (dist.entropy() * self._on_device(weights)).sum()
        loss = policy_loss + c.value_coef * value_loss - c.entropy_coef * entropy
        loss.backward()
        self._apply_gradients()
        self.last_stats = {"policy_loss": policy_loss.item(), "value_loss": value_loss.item(),
                           "entropy": entropy.item()}
        return loss.item()

    def _on_device(self, array) -> np.ndarray:
        """A host array as float32 on the agent's device (a constant of the loss)."""
        return to_device(np.asarray(array, np.float32), self.device)


class NormalizedObservations:
    """An observation adapter that first standardises raw observations with running
    statistics: clip((obs - mean) / sqrt(var + 1e-8), -10, 10), as Gymnasium's
    NormalizeObservation (plus CleanRL's clip). It reads ``rms`` and never updates it."""

    def __init__(self, adapter, rms: RunningMeanStd):
        self.adapter, self.rms = adapter, rms

    def __call__(self, obs) -> Tensor:
        z = (np.asarray(obs, np.float64) - self.rms.mean) / np.sqrt(self.rms.var + 1e-8)
        return self.adapter(np.clip(z, -10.0, 10.0).astype(np.float32))
