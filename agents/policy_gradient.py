"""REINFORCE (Williams 1992), as the seed book plays Pong from pixels, and on any Gymnasium env.

The loop of the book's source (Karpathy's pg-pong.py), one episode at a time:

1. play an episode, drawing every action from the policy pi(a | s): for the book's network a
   biased coin, UP if uniform() < P(UP);
2. at its end compute the discounted returns  G_t = r_t + gamma * G_{t+1}.  For Pong the
   running sum restarts at every point scored (``reset_on_reward``): each rally is a game of
   its own, and an action should not be credited with a point scored minutes later;
3. standardise them over the episode (zero mean, unit variance): a baseline that encourages
   roughly half of the actions and discourages the other half;
4. accumulate the gradient of  sum_t G_t * log pi(a_t | s_t)  -- for the book's sigmoid output
   d log pi / d logit = [a == UP] - P(UP), the "fake label minus probability" of the chapter,
   modulated by the return's sign and size. The episode is forwarded and back-propagated as one
   batch (in ``bptt_steps`` chunks), not frame by frame;
5. after every ``batch_episodes`` episodes take one optimiser step up that gradient (the book:
   RMSProp, decay 0.99, learning rate 1e-4, 10 episodes).

A recurrent policy (``recurrent=True``) carries its LSTM state through the episode while
acting, and is trained by replaying the episode from a zero state, back-propagating through
at most ``bptt_steps`` steps (the state is passed on between chunks, its gradient is not).

Checkpoints are taken between steps and keep the gradient accumulated over the unfinished
batch. On toy-text and classic-control worlds they keep the episode in progress too (its steps
so far and the env's state and generator), so N steps plus a resumed N give the weights of 2N
in one go; elsewhere (Atari) and for a recurrent policy (its LSTM state is not saved) a resumed
run starts a fresh episode.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from agents.policy_base import PolicyAgent, PolicyConfig
from agents.policy_networks import detach_state
from agents.training_run import TrainingRun, env_restore, env_snapshot, episode_score
from rlkit.backend import to_device
from rlkit.checks import FLAG, integer


def discounted_returns(rewards, gamma: float, reset_on_reward: bool = False) -> np.ndarray:
    """G_t = r_t + gamma * G_{t+1} over one episode's rewards (T,) -> float64 (T,).

    ``reset_on_reward``: the book's Pong rule, the sum restarts at every nonzero reward (a
    point ends a rally), e.g. [0, 0, 1, 0, 0, -1] at gamma 0.99 -> [0.9801, 0.99, 1, -0.9801,
    -0.99, -1].
    """
    rewards = np.asarray(rewards, dtype=np.float64)
    returns = np.zeros_like(rewards)
    running = 0.0
    for t in range(len(rewards) - 1, -1, -1):
        if reset_on_reward and rewards[t] != 0:
            running = 0.0
        running = running * gamma + rewards[t]
        returns[t] = running
    return returns


def standardized(values: np.ndarray) -> np.ndarray:
    """(values - mean) / std; an episode of equal returns gives zeros (no signal, no NaN)."""
    centred = values - values.mean()
    std = centred.std()
    return centred / std if std > 0 else centred


@dataclasses.dataclass
class PolicyGradientConfig(PolicyConfig):
    """Hyper-parameters of :class:`PolicyGradient`; unset ones come from ``PRESETS``."""

    batch_episodes: int = 10
    """Episodes whose gradients are summed into one update."""
    standardize: bool = True
    """Standardise each episode's returns (the book's baseline)."""
    reset_on_reward: bool = False
    """Restart the discounted sum at every nonzero reward (the book's rule for Pong, where a
    point ends a rally; ``train_pg.py`` turns it on there)."""
    bptt_steps: int = 256
    """Steps per forward/backward pass of an update: the truncation of back-propagation
    through time for a recurrent policy (a feed-forward one gets the same gradient)."""

    RULES = {**PolicyConfig.RULES, "batch_episodes": integer(1), "standardize": FLAG,
             "reset_on_reward": FLAG, "bptt_steps": integer(1)}


PRESETS = {
    # the book's source: H = 200, 10 episodes per update, RMSProp (decay 0.99, eps 1e-5), lr 1e-4
    "book": dict(learning_rate=1e-4, optimizer="rmsprop", rmsprop_decay=0.99, optimizer_eps=1e-5,
                 gamma=0.99, batch_episodes=10),
    # CartPole and other small control tasks
    "mlp": dict(learning_rate=1e-2, optimizer="adam", batch_episodes=4, hidden_sizes=(64,)),
    "cnn": dict(learning_rate=1e-4, optimizer="adam", batch_episodes=4),
}


class PolicyGradient(PolicyAgent):
    """REINFORCE agent: ``PolicyGradient(env, **hyperparams)``, see :class:`PolicyGradientConfig`.

    ``learn`` calls ``callback(agent, step)`` after every environment step.
    """

    Config = PolicyGradientConfig
    PRESETS = PRESETS
    loss_name = "policy_loss"  # what a TrainingRun logs the loss as (losses/policy_loss)

    def __init__(self, env, **hyperparams):
        super().__init__(env, **hyperparams)
        self.episodes_in_batch = 0  # episodes whose gradient waits in the optimiser's buffer
        self._episode = None        # the episode being played: observations, actions, rewards
        self._fresh_env = True      # the env has not been reset by this agent yet

    # ------------------------------------------------------------------ acting
    def _start_episode(self) -> None:
        seed = None
        if self._fresh_env and self.config.seed is not None:
            # a resumed run must not replay the first episodes of the original one
            seed = self.config.seed if self.steps == 0 else int(self.rng.integers(2**31))
        self._fresh_env = False
        self._obs, _ = self.env.reset(seed=seed)
        self._state = None  # the LSTM starts every episode from zeros
        self._episode = ([], [], [])

    def _train(self, total_steps: int, callback, run: TrainingRun) -> bool:
        while self.steps < total_steps:
            if self._episode is None:
                self._start_episode()
            action, self._state = self._act(np.asarray(self._obs)[None], self._state)
            obs, reward, terminated, truncated, info = self.env.step(int(action[0]))
            observations, actions, rewards = self._episode
            observations.append(self._obs)
            actions.append(int(action[0]))
            rewards.append(float(reward))
            self._obs = obs
            self.steps += 1
            if terminated or truncated:
                self._end_episode(run, info)
            if run.after_step(self, self.steps, callback=callback):
                return True
        return False

    # ------------------------------------------------------------------ learning
    def _end_episode(self, run: TrainingRun, info: dict) -> None:
        observations, actions, rewards = self._episode
        self._episode = None
        returns = discounted_returns(rewards, self.config.gamma, self.config.reset_on_reward)
        weights = standardized(returns) if self.config.standardize else returns
        run.last_loss = self.accumulate_gradient(np.asarray(observations), np.asarray(actions), weights)
        self.episodes += 1
        run.episode_end(self.steps, self.episodes, episode_score(info, float(np.sum(rewards))),
                        len(rewards))
        self.episodes_in_batch += 1
        if self.episodes_in_batch >= self.config.batch_episodes:  # >=: a resume may lower it
            self._apply_gradients()
            self.episodes_in_batch = 0

    def accumulate_gradient(self, observations: np.ndarray, actions: np.ndarray,
                            weights: np.ndarray) -> float:
        """Add the gradient of  -sum_t weights_t * log pi(actions_t | observations_t)  over one
        episode (T, ...), (T,), (T,) to the parameters' ``.grad``; returns that loss.

        Descending this loss is ascending the policy gradient. The episode goes through the
        network in chunks of ``bptt_steps``, the LSTM state handed on without its gradient.
        """
        xp_weights = to_device(np.asarray(weights, np.float32), self.device)
        state, total = None, 0.0
        for t0 in range(0, len(actions), self.config.bptt_steps):
            t1 = min(t0 + self.config.bptt_steps, len(actions))
            x = self.obs_adapter(observations[t0:t1])
            dist, _, state = self.net(x.reshape(1, t1 - t0, *self._input_shape()), state)
            loss = -(dist.log_prob(actions[t0:t1]) * xp_weights[t0:t1]).sum()
            loss.backward()
            state = detach_state(state)
            total += loss.item()
        return total

    # ------------------------------------------------------------------ checkpoints
    def _extra_state(self) -> tuple[dict, dict]:
        meta, arrays = {"episodes_in_batch": self.episodes_in_batch}, {}
        if self.episodes_in_batch:
            self.optimizer.sync()  # zeros where the batch so far gave a parameter no gradient
            arrays["grad_accumulator"] = self.optimizer.to_parameter_order(self.optimizer.flat_grad)
        episode_meta, episode_arrays = self._episode_state()
        return {**meta, **episode_meta}, {**arrays, **episode_arrays}

    def _restore_extra(self, meta: dict, arrays: dict) -> None:
        self.episodes_in_batch = int(meta["episodes_in_batch"])
        if self.episodes_in_batch:
            self.optimizer.sync()  # every parameter's .grad a view of flat_grad, then the values
            self.optimizer.load_parameter_order(self.optimizer.flat_grad, arrays["grad_accumulator"])
        self._restore_episode(meta, arrays)

    def _episode_state(self) -> tuple[dict, dict]:
        """(JSON values, arrays) with which a resumed run goes on exactly where this one is:
        the env's state and generator (``env_snapshot``) and the episode in progress, if any.
        Empty (a resume then starts a fresh episode) before the first reset, for envs
        ``env_snapshot`` does not know (ALE) and for a recurrent policy (its LSTM state is not
        saved)."""
        if self._fresh_env or self.config.recurrent:
            return {}, {}
        snapshot = env_snapshot(self.env)
        if snapshot is None:
            return {}, {}
        if self._episode is None:  # between episodes: the next reset draws from the env's generator
            return {"episode": {"env": snapshot, "in_progress": False}}, {}
        observations, actions, rewards = self._episode
        shape, dtype = self.observation_space.shape, self.observation_space.dtype
        return ({"episode": {"env": snapshot, "in_progress": True, "actions": actions,
                             "rewards": rewards}},
                {"episode_obs": np.asarray(observations, dtype).reshape((-1,) + shape),
                 "episode_next_obs": np.asarray(self._obs)})

    def _restore_episode(self, meta: dict, arrays: dict) -> None:
        """Undo ``_episode_state`` on this agent's env (nothing without one to learn from)."""
        saved = meta.get("episode")
        if not saved or not hasattr(self.env, "step"):
            return
        self.env.reset()  # an env must have been reset once before its state is restored
        env_restore(self.env, saved["env"])
        self._fresh_env = False
        if saved["in_progress"]:
            self._episode = (list(arrays["episode_obs"]), list(saved["actions"]),
                             list(saved["rewards"]))
            self._obs, self._state = arrays["episode_next_obs"], None
