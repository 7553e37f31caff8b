"""Proximal Policy Optimisation (PPO-Clip, Schulman et al. 2017) over a vector env.

A2C takes one gradient step per rollout and throws the rollout away. PPO reuses each rollout
for several epochs of minibatch steps, and keeps the new policy close to the one that acted by
clipping the probability ratio in its objective. One iteration, as in the paper's Algorithm 1
and its appendix (and CleanRL's ``ppo.py``):

1. learning rate (``anneal_lr``): lr_k = lr * (1 - steps done / total steps), linear to 0 at
   the ``total_steps`` of ``learn``;
2. act in all N environments for n_steps steps, a_t ~ pi_old(. | s_t) (A2C's rollout code, the
   same NEXT_STEP autoreset handling: reset steps are left out of everything below);
3. keep log pi_old(a_t | s_t) and V_old(s_t) of the network as it acted (recorded while acting,
   as CleanRL does: no second pass over the rollout; with ``normalize_observations``, of the
   observations as normalised at that step, while the epochs normalise with the statistics at
   the rollout's end);
4. advantages by GAE(lambda) (Schulman et al. 2016; A2C's ``n_step_returns``):
       delta_t = r_t + gamma V_old(s_{t+1}) - V_old(s_t),  A_t = delta_t + gamma lambda A_{t+1},
   cut at terminations, bootstrapped at time-limit truncations; value targets R_t = A_t + V_old(s_t);
5. for ``n_epochs`` epochs, shuffle the N * n_steps transitions into ``n_minibatches``
   minibatches (recurrent: the N env sequences, each replayed from the LSTM state the rollout
   started in) and for each take one optimiser step on
       loss = L_clip + value_coef * L_value - entropy_coef * mean H(pi(. | s_t)),
   where, with the ratio r_t = pi(a_t | s_t) / pi_old(a_t | s_t) and A_t standardised over the
   minibatch (``normalize_advantages``),
       L_clip  = -mean min(r_t A_t, clip(r_t, 1 - eps, 1 + eps) A_t)          (eps: clip_range)
       L_value = 1/2 mean (V(s_t) - R_t)^2, or with ``clip_value``
               = 1/2 mean max((V - R)^2, (V_old + clip(V - V_old, -eps, eps) - R)^2);
   the gradient's global norm is clipped to ``max_grad_norm`` before each step.

The min makes L_clip a pessimistic bound: once the ratio has moved past 1 + eps in the direction
the advantage rewards (or below 1 - eps for a negative advantage) that transition gives no more
gradient, so a rollout cannot push the policy far from the one that collected it.

Networks are initialised orthogonally (``orthogonal_init``): hidden layers with gain sqrt(2),
the policy head with 0.01 (a near-uniform first policy, or a Gaussian mean near 0), the value
head with 1, all biases 0. Continuous (Box) actions: a diagonal Gaussian whose log standard
deviation is a learned parameter independent of the state; draws are clipped to the bounds at
the env, and log-probabilities are those of the unclipped draw.

Checkpoints are taken between iterations. On classic control and toy-text envs (Gymnasium's
sync vector env) a checkpoint holds the N episodes in progress too, so a resumed run continues
exactly as if it had not stopped; elsewhere (Atari) the resumed run restarts its episodes.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

from agents.actor_critic import ActorCritic, ActorCriticConfig, n_step_returns
from agents.policy_networks import select_rows
from agents.training_run import TrainingRun
from rlkit import Tensor, maximum, nn
from rlkit.backend import get_array_module, to_numpy
from rlkit.checks import FLAG, integer, number


@dataclasses.dataclass
class PPOConfig(ActorCriticConfig):
    """Hyper-parameters of :class:`PPO`; unset ones come from ``PRESETS``.

    The A2C fields it shares keep their meaning: ``n_steps`` (steps of every env per rollout),
    ``gae_lambda``, ``value_coef``, ``entropy_coef``, ``normalize_advantages`` (here per
    minibatch), ``reward_scale``, ``max_grad_norm``, ``init_log_std``.
    """

    n_epochs: int = 4
    """Passes over each rollout."""
    n_minibatches: int = 4
    """Minibatches each pass is split into (one optimiser step each): the minibatch size is
    n_envs * n_steps / n_minibatches."""
    clip_range: float = 0.2
    """eps of the clipped objective: the ratio pi / pi_old counts only inside [1 - eps, 1 + eps]."""
    clip_value: bool = True
    """Clip the value loss too: V may move at most clip_range away from the V that acted,
    beyond which the larger (pessimistic) of the two squared errors is used."""
    anneal_lr: bool = True
    """Lower the learning rate linearly from learning_rate to 0 over the ``total_steps`` of
    learn() (a resumed run with a larger total stretches what is left of the schedule)."""
    orthogonal_init: bool = True
    """Orthogonal initialisation: hidden layers gain sqrt(2), policy head 0.01, value head 1,
    biases 0 (the initialisation of the PPO paper's code)."""

    RULES = {**ActorCriticConfig.RULES, "n_epochs": integer(1), "n_minibatches": integer(1),
             "clip_range": number(0, low_open=True), "clip_value": FLAG, "anneal_lr": FLAG,
             "orthogonal_init": FLAG}
    FIXED_ON_RESUME = ActorCriticConfig.FIXED_ON_RESUME + ("orthogonal_init",)  # used once


# PPO's own settings; see each line for its source. Keys are policy kinds ("mlp", "cnn"); an
# "<kind>-box" entry is laid over its kind for continuous (Box) action spaces.
PRESETS = {
    # CleanRL's ppo.py (classic control): 4 envs x 128 steps, 4 minibatches, 4 epochs,
    # lr 2.5e-4 annealed, gamma 0.99, lambda 0.95, clip 0.2, entropy 0.01, value 0.5 (clipped),
    # max grad norm 0.5, tanh (64, 64) actor and critic, Adam eps 1e-5.
    "mlp": dict(learning_rate=2.5e-4, optimizer="adam", optimizer_eps=1e-5, n_steps=128,
                n_minibatches=4, n_epochs=4, gamma=0.99, gae_lambda=0.95, clip_range=0.2,
                entropy_coef=0.01, value_coef=0.5, max_grad_norm=0.5, normalize_advantages=True,
                clip_value=True, anneal_lr=True, hidden_sizes=(64, 64), activation="tanh",
                reward_scale=1.0),
    # continuous control, after CleanRL's ppo_continuous_action.py (2048 transitions per rollout,
    # 32 minibatches, 10 epochs, lr 3e-4, no entropy bonus) with RL Zoo's Pendulum-v1 discount
    # gamma 0.9 and rewards scaled by 0.1 (in place of its reward normalisation)
    "mlp-box": dict(learning_rate=1e-3, n_steps=512, n_minibatches=32, n_epochs=10,
                    entropy_coef=0.0, gamma=0.9, reward_scale=0.1),
    # CleanRL's ppo_atari.py: 128 steps, 4 minibatches, 4 epochs, lr 2.5e-4 annealed, clip 0.1,
    # entropy 0.01, value 0.5 (clipped), max grad norm 0.5, one Nature-CNN trunk for both heads
    "cnn": dict(learning_rate=2.5e-4, optimizer="adam", optimizer_eps=1e-5, n_steps=128,
                n_minibatches=4, n_epochs=4, gamma=0.99, gae_lambda=0.95, clip_range=0.1,
                entropy_coef=0.01, value_coef=0.5, max_grad_norm=0.5, normalize_advantages=True,
                clip_value=True, anneal_lr=True),
}


def clipped_surrogate(log_prob: Tensor, old_log_prob, advantages, clip_range: float) -> Tensor:
    """L_clip = -mean_t min(r_t A_t, clip(r_t, 1 - eps, 1 + eps) A_t), r_t = exp(log_prob -
    old_log_prob); ``old_log_prob`` and ``advantages`` are constants (arrays).

    Written as mean max(-r A, -clip(r) A): where the clipped term is the larger, the clip
    passes no gradient (r outside [1 - eps, 1 + eps]); where they are equal (r inside) the
    gradient is that of the plain -r A.
    """
    ratio = (log_prob - old_log_prob).exp()
    return maximum(ratio * -advantages, ratio.clip(1.0 - clip_range, 1.0 + clip_range)
                   * -advantages).mean()


def value_loss(values: Tensor, returns, old_values, clip_range: float | None) -> Tensor:
    """1/2 mean (V - R)^2, or with ``clip_range`` the clipped form (module docstring, step 5)."""
    unclipped = (values - returns) ** 2
    if clip_range is None:
        return unclipped.mean() * 0.5
    clipped = ((values - old_values).clip(-clip_range, clip_range) + old_values - returns) ** 2
    return maximum(unclipped, clipped).mean() * 0.5


def orthogonal_initialisation(net, policy_gain: float = 0.01, value_gain: float = 1.0) -> None:
    """Orthogonal weights and zero biases for every Linear and Conv2d of a PolicyNetwork: gain
    sqrt(2) in the cores, ``policy_gain`` for the policy head, ``value_gain`` for the value head."""
    heads = {id(net.policy): policy_gain}
    if net.value is not None:
        heads[id(net.value)] = value_gain
    for _, module in net.named_modules():
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            nn.init.orthogonal_(module.weight, heads.get(id(module), math.sqrt(2.0)))
            if module.bias is not None:
                nn.init.zeros_(module.bias)


class PPO(ActorCritic):
    """PPO agent: ``PPO(vector_env, **hyperparams)``, see :class:`PPOConfig`.

    ``env`` is a Gymnasium vector env (``envs.make_vec(name, n)``), with a Discrete or a
    one-dimensional Box action space. ``learn`` calls ``callback(agent, step)`` after every
    iteration (rollout and its epochs). ``last_stats`` holds the last iteration's means over
    its minibatches: policy_loss, value_loss, entropy, approx_kl and clipfrac (the fraction
    of transitions whose ratio left [1 - eps, 1 + eps]), CleanRL's names.
    """

    Config = PPOConfig
    PRESETS = PRESETS

    def __init__(self, env, **hyperparams):
        super().__init__(env, **hyperparams)
        self._total_steps = 0

    def _build_network(self):
        net = super()._build_network()
        if self.config.orthogonal_init:
            orthogonal_initialisation(net)
        return net

    def _train(self, total_steps: int, callback, run: TrainingRun) -> bool:
        self._total_steps = total_steps  # the horizon of the learning-rate schedule
        return super()._train(total_steps, callback, run)

    # ------------------------------------------------------------------ learning
    def _update(self, rollout: dict) -> float:
        """Steps 1 and 3-5 of the module docstring on one rollout; returns the mean loss."""
        c = self.config
        n, t_max = rollout["actions"].shape[:2]
        if c.anneal_lr:  # step 1, from the step count before this rollout
            done = (self.steps - n * t_max) / max(self._total_steps, 1)
            self.optimizer.lr = c.learning_rate * max(1.0 - done, 0.0)

        # step 3: the policy and values that acted (kept while acting), and V(s_T)
        old_log_prob, old_values = rollout["log_prob"].reshape(-1), rollout["values"].reshape(-1)
        _, last_values, _ = self._look(self._obs, self._state, self._starts[:, None])
        returns = n_step_returns(c.reward_scale * rollout["rewards"], rollout["terminated"],
                                 rollout["truncated"], old_values.reshape(n, t_max),
                                 to_numpy(last_values.data).astype(np.float64), c.gamma,
                                 c.gae_lambda).reshape(-1)  # step 4
        advantages = returns - old_values

        losses, kls, clipped = [], [], []
        for _ in range(c.n_epochs):  # step 5
            for batch, rows in self._minibatches(rollout["valid"]):
                if len(batch) == 0:
                    continue
                log_prob, entropy, values = self._evaluate(rollout, batch, rows)
                adv = advantages[batch]
                if c.normalize_advantages and len(batch) > 1:
                    adv = (adv - adv.mean()) / (adv.std() + 1e-8)
                policy_loss = clipped_surrogate(log_prob, self._on_device(old_log_prob[batch]),
                                                self._on_device(adv), c.clip_range)
                v_loss = value_loss(values, self._on_device(returns[batch]),
                                    self._on_device(old_values[batch]),
                                    c.clip_range if c.clip_value else None)
                entropy = entropy.mean()
                loss = policy_loss + c.value_coef * v_loss - c.entropy_coef * entropy
                loss.backward()
                self._apply_gradients()
                log_ratio = to_numpy(log_prob.data).astype(np.float64) - old_log_prob[batch]
                kls.append(float(np.mean(np.expm1(log_ratio) - log_ratio)))  # Schulman's k3
                clipped.append(float(np.mean(np.abs(np.expm1(log_ratio)) > c.clip_range)))
                losses.append((loss.item(), policy_loss.item(), v_loss.item(), entropy.item()))
        mean = np.mean(losses, axis=0) if losses else np.full(4, np.nan)
        self.last_stats = {"policy_loss": mean[1], "value_loss": mean[2], "entropy": mean[3],
                           "approx_kl": float(np.mean(kls)) if kls else 0.0,
                           "clipfrac": float(np.mean(clipped)) if clipped else 0.0}
        return float(mean[0])

    def _sequences(self, obs: np.ndarray) -> Tensor:
        """Rollout observations (K, T, ...) as network input (K, T, *input shape)."""
        k, t = obs.shape[:2]
        x = self.obs_adapter(obs.reshape((k * t,) + self.observation_space.shape))
        return x.reshape(k, t, *self._input_shape())

    def _minibatches(self, valid: np.ndarray):
        """One epoch's shuffled minibatches: pairs (flat indices n * T + t of the real
        transitions in it, the env rows it covers or None). Feed-forward: single transitions;
        recurrent: whole env sequences (their LSTM is replayed from the rollout's start)."""
        n, t_max = valid.shape
        if not self.config.recurrent:
            real = np.flatnonzero(valid.reshape(-1))  # reset steps take no part
            for batch in np.array_split(self.rng.permutation(real), self.config.n_minibatches):
                yield batch, None
            return
        for rows in np.array_split(self.rng.permutation(n), min(self.config.n_minibatches, n)):
            flat = (rows[:, None] * t_max + np.arange(t_max)).reshape(-1)
            yield flat[valid[rows].reshape(-1)], rows

    def _evaluate(self, rollout: dict, batch: np.ndarray, rows):
        """(log pi(a | s), H(pi(. | s)), V(s)) as Tensors for the transitions ``batch`` of a
        minibatch from ``_minibatches``."""
        if rows is None:
            obs = rollout["obs"].reshape((-1,) + self.observation_space.shape)[batch]
            dist, values, _ = self.net(self._observations(obs))
            return dist.log_prob(self._flat_actions(rollout["actions"])[batch]), dist.entropy(), values
        dist, values, _ = self.net(self._sequences(rollout["obs"][rows]),
                                   select_rows(rollout["state"], rows), rollout["starts"][rows])
        log_prob = dist.log_prob(self._flat_actions(rollout["actions"][rows]))
        real = np.flatnonzero(rollout["valid"][rows].reshape(-1))
        real = get_array_module(log_prob.data).asarray(real)  # index on the network's device
        return log_prob[real], dist.entropy()[real], values[real]
