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

Checkpoints are taken between updates; a resumed run restarts all N episodes.
"""
from __future__ import annotations

import dataclasses

import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv

from agents.policy_base import PolicyAgent, PolicyConfig
from agents.training_run import TrainingRun
from rlkit import Tensor, no_grad
from rlkit.backend import to_device, to_numpy


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
    ``callback(agent, step)`` after every update.
    """

    Config = ActorCriticConfig
    PRESETS = PRESETS
    VALUE_HEAD = True

    def __init__(self, env, **hyperparams):
        if not isinstance(env, VectorEnv) and hasattr(env, "step"):
            raise ValueError("ActorCritic steps several environments together: give it a vector "
                             "env, e.g. envs.make_vec('CartPole-v1', 8)")
        if hasattr(env, "step") and env.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP) \
                != AutoresetMode.NEXT_STEP:
            raise ValueError(f"ActorCritic needs the NEXT_STEP autoreset mode (the default), got "
                             f"{env.metadata['autoreset_mode']}")
        super().__init__(env, **hyperparams)
        if self.config.n_steps < 1:
            raise ValueError(f"n_steps must be >= 1, got {self.config.n_steps}")
        self.n_envs = getattr(env, "num_envs", 1)
        self._obs = None  # observations of the N environments; None: reset them first

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

    def _collect(self, run: TrainingRun) -> dict:
        """Step the N environments n_steps times; arrays of shape (N, T, ...)."""
        n, t_max = self.n_envs, self.config.n_steps
        space = self.observation_space
        rollout = {"obs": np.zeros((n, t_max) + space.shape, space.dtype),
                   "actions": np.zeros((n, t_max), np.int64),
                   "rewards": np.zeros((n, t_max)),
                   "terminated": np.zeros((n, t_max), bool), "truncated": np.zeros((n, t_max), bool),
                   "valid": np.zeros((n, t_max), bool), "starts": np.zeros((n, t_max), bool),
                   "state": self._state}
        for t in range(t_max):
            actions, self._state = self._act(self._obs, self._state, self._starts[:, None])
            valid = ~self._ended  # False: this step only resets the sub-env
            rollout["obs"][:, t] = self._obs
            rollout["actions"][:, t], rollout["valid"][:, t] = actions, valid
            rollout["starts"][:, t] = self._starts
            self._obs, rewards, terminated, truncated, _ = self.env.step(actions)
            rollout["rewards"][:, t] = rewards
            rollout["terminated"][:, t], rollout["truncated"][:, t] = terminated, truncated
            self._starts, self._ended = ~valid, terminated | truncated
            self.steps += n
            self._count_episodes(rewards, valid, run)
        return rollout

    def _count_episodes(self, rewards, valid, run: TrainingRun) -> None:
        self._episode_return += np.where(valid, rewards, 0.0)
        self._episode_length += valid
        for i in np.flatnonzero(self._ended):
            self.episodes += 1
            run.episode_end(self.steps, self.episodes, float(self._episode_return[i]),
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
        n, t_max = rollout["actions"].shape
        x = self.obs_adapter(rollout["obs"].reshape((n * t_max,) + self.observation_space.shape))
        dist, values, _ = self.net(x.reshape(n, t_max, *self._input_shape()), rollout["state"],
                                   rollout["starts"])
        with no_grad():  # V(s_T), from the LSTM state the rollout ended in
            _, last_values, _ = self.net(self._observations(self._obs), self._state, self._starts[:, None])
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
        policy_loss = -(dist.log_prob(rollout["actions"].reshape(-1))
                        * self._on_device(advantages * weights)).sum()
        value_loss = ((values - Tensor(self._on_device(returns.reshape(-1)))) ** 2
                      * self._on_device(weights)).sum()
        entropy = (dist.entropy() * self._on_device(weights)).sum()
        loss = policy_loss + c.value_coef * value_loss - c.entropy_coef * entropy
        loss.backward()
        self._apply_gradients()
        return loss.item()

    def _on_device(self, array) -> np.ndarray:
        """A host array as float32 on the agent's device (a constant of the loss)."""
        return to_device(np.asarray(array, np.float32), self.device)
