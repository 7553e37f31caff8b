"""A memory task for the recurrent policy tests: a T-maze corridor (Bakker 2002, simplified).

The first observation shows a cue, left or right; the next ``length - 1`` show only "corridor",
and the last one "junction", the same whichever the cue was. At the junction the action picks
an exit: +1 if it matches the cue, -1 otherwise, and the episode ends. Actions in the corridor
just walk on (reward 0). A feed-forward policy sees identical junctions, so its expected return
is 0 at best; a policy that remembers the cue earns +1.
"""
from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium import spaces

CUE_LEFT, CUE_RIGHT, CORRIDOR, JUNCTION = range(4)


class MemoryCorridor(gym.Env):
    """Observations (4,) one-hot: cue left, cue right, corridor, junction. Actions 0 = left, 1 = right."""

    metadata = {"render_modes": []}

    def __init__(self, length: int = 4):
        self.length = length
        self.observation_space = spaces.Box(0.0, 1.0, (4,), np.float32)
        self.action_space = spaces.Discrete(2)

    def _obs(self, kind: int) -> np.ndarray:
        obs = np.zeros(4, np.float32)
        obs[kind] = 1.0
        return obs

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.cue, self.position = int(self.np_random.integers(2)), 0
        return self._obs(CUE_LEFT + self.cue), {}

    def step(self, action):
        if self.position == self.length:  # at the junction: choose the exit
            return self._obs(JUNCTION), (1.0 if int(action) == self.cue else -1.0), True, False, {}
        self.position += 1
        return self._obs(JUNCTION if self.position == self.length else CORRIDOR), 0.0, False, False, {}


gym.register("MemoryCorridor-v0", entry_point=MemoryCorridor)
