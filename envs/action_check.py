"""Action validation: an action outside the action space is one clear error, for every env.

Gymnasium environments disagree on what a bad action does (CartPole asserts, ALE raises an
IndexError, ale-py's vector env hangs). rlkit turns all of them into one ValueError that names
the valid range, raised before the action reaches the environment.
"""
from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium import spaces


def describe_valid(space: spaces.Space) -> str:
    """A short human description of the actions `space` accepts, for error messages."""
    if isinstance(space, spaces.Discrete):
        low, high = int(space.start), int(space.start + space.n - 1)
        return f"an integer from {low} to {high}"
    if isinstance(space, spaces.Box):
        return f"an array of shape {space.shape} with values in [{space.low.min()}, {space.high.max()}]"
    return f"an element of {space}"


def validate_action(space: spaces.Space, action, env_name: str = "this environment"):
    """Return `action` unchanged if `space` contains it, else raise ValueError naming the range.

    For a Discrete space the returned action is a plain Python int (NumPy integer scalars and
    0-d integer arrays are accepted, as `Discrete.contains` accepts them).
    """
    if isinstance(space, spaces.Discrete):
        # fast path for the common case, then Gymnasium's own membership test for the rest
        if type(action) is int and space.start <= action < space.start + space.n:
            return action
        if space.contains(action):
            return int(action)
    elif space.contains(action):
        return action
    # show NumPy scalars as plain numbers ("7", not "np.int64(7)")
    shown = action.item() if isinstance(action, (np.generic, np.ndarray)) and np.ndim(action) == 0 else action
    raise ValueError(
        f"action {shown!r} is outside the action space {space} of {env_name}: "
        f"expected {describe_valid(space)}"
    )


def validate_actions(space: spaces.Space, actions, env_name: str = "this environment") -> np.ndarray:
    """Check a batch of actions against a batched space; return them as an integer array.

    `space` is a vector env's `action_space` (MultiDiscrete for a batch of Discrete envs).
    Raises ValueError naming the first bad entry and the valid range.
    """
    arr = np.asarray(actions)
    if isinstance(space, spaces.MultiDiscrete):
        expected = space.shape
        if arr.shape != expected or not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(
                f"actions for {env_name} must be an integer array of shape {expected}, "
                f"got {arr.dtype} array of shape {arr.shape}"
            )
        bad = np.flatnonzero((arr < space.start) | (arr >= space.start + space.nvec))
        if bad.size:
            i = int(bad[0])
            low, high = int(space.start[i]), int(space.start[i] + space.nvec[i] - 1)
            raise ValueError(
                f"action {int(arr[i])} for sub-environment {i} of {env_name} is outside its action "
                f"space: expected an integer from {low} to {high}"
            )
        return arr
    if not space.contains(arr):
        raise ValueError(f"actions {actions!r} are outside the action space {space} of {env_name}")
    return arr


class ActionCheck(gym.ActionWrapper):
    """Raise a clear ValueError for an action outside `action_space` before the env sees it."""

    def __init__(self, env: gym.Env, name: str | None = None):
        """Wrap `env`; `name` (default: its `spec.id`) names it in error messages."""
        super().__init__(env)
        if name is None:
            name = env.spec.id if env.spec is not None else type(env.unwrapped).__name__
        self._name = name

    def action(self, action):
        """Validate one action against this wrapper's `action_space`."""
        return validate_action(self.action_space, action, self._name)
