"""Base class for worlds given by an explicit tabular model (Gymnasium toy_text convention).

A subclass builds `P[s][a] = [(prob, next_state, reward, terminated), ...]` and picks start
states; this class samples `step` from `P` with `self.np_random`, validates actions, keeps the
value/policy overlay a viewer sets, and dispatches rendering to `_render_text` / `_draw`.
"""
from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from envs.action_check import validate_action
from envs.drawing import Canvas

Transition = tuple[float, int, float, bool]


class TabularEnv(gym.Env):
    """A finite MDP whose dynamics are exactly its model `P`.

    Observations and actions are integers: `Discrete(n_states)` and `Discrete(n_actions)`.
    """

    metadata = {"render_modes": ["ansi", "rgb_array", "human"], "render_fps": 4}

    def __init__(self, P: dict[int, dict[int, list[Transition]]], render_mode: str | None):
        """Store the model `P` and build the spaces; `render_mode` must be one of the metadata's."""
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"render_mode {render_mode!r} is not supported: "
                f"choose one of {self.metadata['render_modes']} or None"
            )
        self.P = P
        self.n_states = len(P)
        self.n_actions = len(P[0])
        self.observation_space = spaces.Discrete(self.n_states)
        self.action_space = spaces.Discrete(self.n_actions)
        self.render_mode = render_mode
        self.s = 0
        self.last_action: int | None = None
        self.overlay_values: np.ndarray | None = None
        self.overlay_policy: np.ndarray | None = None
        self._canvas: Canvas | None = None

    # --- dynamics -------------------------------------------------------------------------
    def _initial_state(self, options: dict) -> int:
        """Pick the start state for `reset` (subclasses read their own options)."""
        raise NotImplementedError

    def _check_move(self, action: int):
        """Hook called with a valid action index before it is applied (may raise)."""

    def _info(self, prob: float) -> dict:
        """The info dict returned by `reset` and `step`."""
        return {"prob": prob}

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """Start an episode; returns (state, info). `options` are documented by the subclass."""
        super().reset(seed=seed)
        self.s = self._initial_state(options or {})
        self.last_action = None
        if self.render_mode == "human":
            self.render()
        return self.s, self._info(1.0)

    def step(self, action):
        """Sample the next state from `P[s][action]`; returns the Gymnasium 5-tuple.

        `truncated` is always False here: the registered step limit (TimeLimit) truncates.
        """
        a = validate_action(self.action_space, action, type(self).__name__)
        self._check_move(a)
        transitions = self.P[self.s][a]
        chosen = transitions[-1]  # also the fallback if the probabilities sum a rounding error below 1
        if len(transitions) > 1:
            # inverse-CDF sampling; lists have at most a few outcomes, so a plain loop is fastest
            u, acc = self.np_random.random(), 0.0
            for t in transitions:
                acc += t[0]
                if u < acc:
                    chosen = t
                    break
        prob, s_next, reward, terminated = chosen
        self.s, self.last_action = s_next, a
        if self.render_mode == "human":
            self.render()
        return s_next, float(reward), terminated, False, self._info(prob)

    # --- overlay for viewers -------------------------------------------------------------
    def set_overlay(self, values=None, policy=None):
        """Show state values and/or a policy on the next renders; `None` clears that layer.

        values: array-like of n_states floats (e.g. V(s) or max_a Q(s, a)).
        policy: array-like of n_states action indices; -1 draws nothing for that state.
        """
        if values is not None:
            values = np.asarray(values, dtype=np.float64).reshape(-1)
            if values.shape != (self.n_states,):
                raise ValueError(f"overlay values must have {self.n_states} entries, got {values.size}")
        if policy is not None:
            policy = np.asarray(policy).reshape(-1)
            if policy.shape != (self.n_states,) or not np.issubdtype(policy.dtype, np.integer):
                raise ValueError(f"overlay policy must be {self.n_states} integer action indices")
            bad = (policy < -1) | (policy >= self.n_actions)
            if bad.any():
                raise ValueError(
                    f"overlay policy has action {int(policy[bad][0])} at state {int(np.flatnonzero(bad)[0])}: "
                    f"expected -1 (none) or an action from 0 to {self.n_actions - 1}"
                )
        self.overlay_values, self.overlay_policy = values, policy

    # --- rendering -----------------------------------------------------------------------
    def _render_text(self) -> str:
        """The `ansi` frame."""
        raise NotImplementedError

    def _canvas_size(self) -> tuple[int, int]:
        """(width, height) of the pygame canvas in pixels."""
        raise NotImplementedError

    def _draw(self, canvas: Canvas):
        """Draw the current state (and overlay) on `canvas`."""
        raise NotImplementedError

    def render(self):
        """Render in `self.render_mode`: a str (ansi), an (H, W, 3) uint8 array (rgb_array), or None."""
        if self.render_mode is None:
            gym.logger.warn(
                "render() called without a render_mode; pass render_mode='ansi', 'rgb_array' or "
                "'human' when making the environment"
            )
            return None
        if self.render_mode == "ansi":
            return self._render_text()
        if self._canvas is None:
            self._canvas = Canvas(self._canvas_size(), type(self).__name__, self.render_mode,
                                  self.metadata["render_fps"])
        self._canvas.clear()
        self._draw(self._canvas)
        return self._canvas.show()

    def close(self):
        """Close the pygame window, if one was opened."""
        if self._canvas is not None:
            self._canvas.close()
            self._canvas = None
