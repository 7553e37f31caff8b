"""Planners for a world whose model is known: value iteration and policy iteration.

Both read the env's ``P`` once into a ``TabularModel`` (agents/mdp.py) and then work on whole
arrays: one Bellman backup of every state and action is ``reward + gamma * (T @ V)``.
Transitions that end the episode contribute their reward and nothing after it, so terminal
states need no special case, and gamma = 1 is allowed when every state can end its episode.

After ``learn()`` an agent holds
    V       (S,)    optimal state values,
    Q       (S, A)  action values r(s, a) + gamma * E[V(s')]  (-inf for unavailable actions),
    policy  (S,)    a greedy action per state,
    history         one number per sweep (VI: max |change of V|) or per improvement step
                    (PI: how many states changed action).
"""
from __future__ import annotations

import os

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from agents.base import env_signature, load_checkpoint, save_checkpoint
from agents.mdp import TabularModel, require_episodes_end


class _Planner:
    """Shared by both planners: the model, predict, save and load."""

    def __init__(self, env, gamma: float):
        if not 0.0 <= gamma <= 1.0:
            raise ValueError(f"gamma must be in [0, 1], got {gamma}")
        self.env = env
        self.gamma = float(gamma)
        # env=None only for an agent loaded from a checkpoint: it can predict, not learn.
        self.model = TabularModel.from_env(env) if env is not None else None
        self.V: np.ndarray | None = None
        self.Q: np.ndarray | None = None
        self.policy: np.ndarray | None = None
        self.history: list = []

    def _start(self) -> TabularModel:
        if self.model is None:
            raise ValueError(f"this {type(self).__name__} has no env to plan on; pass env= "
                             "to the constructor or to load()")
        require_episodes_end(self.model, self.gamma)
        self.history = []
        return self.model

    def _finish(self, V: np.ndarray, Q: np.ndarray, policy: np.ndarray) -> None:
        self.V, self.Q, self.policy = V, np.ascontiguousarray(Q.T), policy

    def predict(self, obs: int, deterministic: bool = True) -> int:
        """The planned action for state ``obs`` (the policy is deterministic either way)."""
        if self.policy is None:
            raise ValueError(f"{type(self).__name__}.predict called before learn() or load()")
        return int(self.policy[int(obs)])

    ACTION_VALUES = "Q-values"  # what action_values returns, as a viewer's panel names it

    def action_values(self, obs: int) -> np.ndarray:
        """Q(obs, .), shape (n_actions,); NaN for an action that does not exist in that state."""
        if self.Q is None:
            raise ValueError(f"{type(self).__name__}.action_values called before learn() or load()")
        q = self.Q[int(obs)]
        return np.where(np.isfinite(q), q, np.nan)

    def hyperparams(self) -> dict:
        raise NotImplementedError

    def save(self, path: str | os.PathLike) -> None:
        """Write V, Q, policy and history with the hyperparameters to ``path`` (.npz + JSON)."""
        if self.policy is None:
            raise ValueError("nothing to save: call learn() first")
        meta = {"hyperparams": self.hyperparams()}
        if self.env is not None:
            meta["env"] = env_signature(self.env)
        save_checkpoint(path, self, meta, V=self.V, Q=self.Q, policy=self.policy,
                        history=np.asarray(self.history))

    @classmethod
    def load(cls, path: str | os.PathLike, env=None):
        """An agent restored from ``save``; with ``env`` it is checked against it and can re-plan."""
        header, arrays = load_checkpoint(path, cls, env)
        agent = cls(env, **header["hyperparams"])
        agent._finish(arrays["V"], arrays["Q"].T, arrays["policy"])
        agent.history = arrays["history"].tolist()
        return agent


class ValueIteration(_Planner):
    """Value iteration (Bellman 1957): repeat V <- max_a Q(V) until V stops moving.

    Args:
        env: an env with Discrete spaces that publishes ``P`` (toy_text model).
        gamma: discount in [0, 1]; 1 needs every state to be able to end its episode.
        tol: stop when the largest change of V in one sweep is below ``tol``.
        max_sweeps: give up (RuntimeError) after this many sweeps.
    """

    def __init__(self, env, gamma: float = 0.99, tol: float = 1e-8, max_sweeps: int = 100_000):
        super().__init__(env, gamma)
        self.tol = float(tol)
        self.max_sweeps = int(max_sweeps)

    def hyperparams(self) -> dict:
        return {"gamma": self.gamma, "tol": self.tol, "max_sweeps": self.max_sweeps}

    def learn(self, callback=None) -> "ValueIteration":
        """Sweep to convergence. ``callback({"sweep", "delta"})`` after each sweep; False stops."""
        model = self._start()
        V = np.zeros(model.n_states)
        for sweep in range(1, self.max_sweeps + 1):
            # One synchronous sweep: back up every (s, a) from the old V, keep the best action.
            V_new = model.backup(V, self.gamma).max(axis=0)
            delta = float(np.max(np.abs(V_new - V)))
            V = V_new
            self.history.append(delta)
            if callback is not None and callback({"sweep": sweep, "delta": delta}) is False:
                break
            if delta < self.tol:
                break
        else:
            raise RuntimeError(f"value iteration did not converge in {self.max_sweeps} sweeps "
                               f"(last change {delta:.3g} > tol {self.tol:g}); with gamma = 1 "
                               "a policy that never ends may be collecting reward forever")
        # The greedy policy of the converged V; np.argmax breaks ties by the first action.
        Q = model.backup(V, self.gamma)
        self._finish(V, Q, np.argmax(Q, axis=0))
        return self


class PolicyIteration(_Planner):
    """Policy iteration (Howard 1960): evaluate the policy exactly, make it greedy, repeat.

    Evaluation solves the linear system (I - gamma * P_pi) V = r_pi (dense LU for small worlds,
    sparse LU for large ones). The first policy is one that ends every episode (see
    ``TabularModel.terminating_policy``), and an action is replaced only by a strictly better
    one (by more than ``tol * (1 + |V(s)|)``): ties then never flip back and forth, and with
    gamma = 1 the policy never switches to a loop whose value is undefined.

    Args:
        env: an env with Discrete spaces that publishes ``P`` (toy_text model).
        gamma: discount in [0, 1]; 1 needs every state to be able to end its episode.
        tol: relative margin an action must win by to replace the current one.
        max_iterations: give up (RuntimeError) after this many improvement steps.
    """

    def __init__(self, env, gamma: float = 0.99, tol: float = 1e-9, max_iterations: int = 1000):
        super().__init__(env, gamma)
        self.tol = float(tol)
        self.max_iterations = int(max_iterations)

    def hyperparams(self) -> dict:
        return {"gamma": self.gamma, "tol": self.tol, "max_iterations": self.max_iterations}

    def learn(self, callback=None) -> "PolicyIteration":
        """Iterate to a stable policy. ``callback({"iteration", "changed"})`` per step; False stops."""
        model = self._start()
        states = np.arange(model.n_states)
        policy, _ = model.terminating_policy()
        for iteration in range(1, self.max_iterations + 1):
            V = self.evaluate(policy)
            Q = model.backup(V, self.gamma)                       # (A, S)
            best = np.argmax(Q, axis=0)
            better = Q[best, states] > V + self.tol * (1.0 + np.abs(V))
            changed = int(better.sum())
            self.history.append(changed)
            stop = callback is not None and callback({"iteration": iteration,
                                                      "changed": changed}) is False
            if changed == 0 or stop:
                break
            policy = np.where(better, best, policy)
        else:
            raise RuntimeError(f"policy iteration still changed {changed} actions after "
                               f"{self.max_iterations} iterations")
        self._finish(V, Q, policy)
        return self

    def evaluate(self, policy: np.ndarray) -> np.ndarray:
        """V_pi (S,): the exact value of a deterministic policy (S,) on this env's model."""
        model = self.model
        states = np.arange(model.n_states)
        r_pi = model.reward[policy, states]
        if not np.all(np.isfinite(r_pi)):
            raise ValueError("the policy uses actions that are not available in some states")
        P_pi = model.policy_matrix(policy)
        if sp.issparse(P_pi):
            A = (sp.identity(model.n_states, format="csc") - self.gamma * P_pi).tocsc()
            V = spla.spsolve(A, r_pi)
        else:
            try:
                V = np.linalg.solve(np.eye(model.n_states) - self.gamma * P_pi, r_pi)
            except np.linalg.LinAlgError:
                V = np.full(model.n_states, np.nan)
        if not np.all(np.isfinite(V)):
            raise RuntimeError("policy evaluation failed: with gamma = 1 this policy never ends "
                               "its episode from some state, so its value is undefined")
        return V
