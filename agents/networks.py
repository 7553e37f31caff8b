"""RECONSTRUCTED FILE -- please check against your own version.

The policy-gradient helper overwrote the original ``agents/networks.py`` by accident at about
21:12 (it created a file of the same name a minute after this one appeared, uncommitted).
This is a best-effort reconstruction of the four functions ``agents/dqn.py`` calls, inferred
from their use there; the policy-gradient networks now live in ``agents/policy_networks.py``.

Networks for value-based agents: encoding raw observations and building a Q-network.
"""
from __future__ import annotations

import numpy as np
from gymnasium import spaces

from rlkit import Tensor, manual_seed, nn
from rlkit.backend import array_module_for


def is_image_space(space) -> bool:
    """True for uint8 image stacks (C, H, W), e.g. Pong with preprocess="dqn"."""
    return isinstance(space, spaces.Box) and space.dtype == np.uint8 and len(space.shape) == 3


def default_threads(space) -> int:
    """CPU math threads for a network on ``space``: 1 for MLPs, 0 (library default) for CNNs."""
    return 0 if is_image_space(space) else 1


def build_network(space, n_actions: int, hidden_sizes=(64, 64)) -> nn.Module:
    """Nature CNN for image stacks, else an MLP (one-hot input for Discrete states)."""
    if is_image_space(space):
        return nn.nature_cnn(space.shape[0], n_actions)
    n_in = int(space.n) if isinstance(space, spaces.Discrete) else int(np.prod(space.shape))
    return nn.mlp([n_in, *hidden_sizes, n_actions])


def build_network(space, n_actions: int, hidden_sizes=(64, 64)) -> nn.Module:
    """Nature CNN for image stacks, else an MLP (one-hot input for Discrete states)."""
    if is_image_space(space):
        return nn.nature_cnn(space.shape[0], n_actions)
    n_in = int(space.n) if isinstance(space, spaces.Discrete) else int(np.prod(space.shape))
    return nn.mlp([n_in, *hidden_sizes, n_actions])


def encode(space, obs: np.ndarray) -> np.ndarray:
    """A batch of raw observations as float32 network input (host array).

    Images: scaled to [0, 1]; Discrete: one-hot (B, n); Box: float32 (B, prod(shape)).
    """
    obs = np.asarray(obs)
    if is_image_space(space):
        return obs.astype(np.float32) * np.float32(1.0 / 255.0)
    if isinstance(space, spaces.Discrete):
        out = np.zeros((obs.shape[0], int(space.n)), np.float32)
        out[np.arange(obs.shape[0]), obs.astype(np.int64).reshape(-1)] = 1.0
        return out
    return obs.astype(np.float32).reshape(obs.shape[0], -1)


class ObsAdapter:
    """Raw observation batch (N, *space shape) -> float32 Tensor on ``device``.

    Box vectors pass as they are, uint8 images are scaled to [0, 1], Discrete(n) states become
    one-hot rows (N, n). Other spaces raise ValueError.
    """

    def __init__(self, space, device: str = "cpu"):
        if not isinstance(space, (spaces.Discrete, spaces.Box)):
            raise ValueError(f"observations of type {type(space).__name__} are not supported: "
                             "expected a Box (vectors or images) or Discrete space")
        self.space, self.device = space, device
        self._xp = array_module_for(device)

    def __call__(self, obs) -> Tensor:
        xp, space = self._xp, self.space
        if isinstance(space, spaces.Discrete):
            index = np.asarray(obs, dtype=np.int64).reshape(-1) - space.start
            return Tensor(xp.asarray(np.eye(space.n, dtype=np.float32)[index]))
        # move first, then convert: a uint8 frame is 4x smaller to copy to a GPU
        batch = xp.asarray(obs).astype(np.float32)
        if space.dtype == np.uint8:
            batch *= np.float32(1.0 / 255.0)
        return Tensor(batch)


def seed_everything(seed: int | None) -> np.random.Generator:
    """Seed rlkit's global generator (weight initialisation) and return the agent's own
    generator for its random choices; ``None`` leaves both unpredictable."""
    if seed is not None:
        manual_seed(seed)
    return np.random.default_rng(seed)


def prefixed(prefix: str, state: dict) -> dict:
    """``{"<prefix>/<name>": array}``: several state dicts side by side in one checkpoint."""
    return {f"{prefix}/{name}": np.asarray(value) for name, value in state.items()}


def unprefixed(prefix: str, arrays: dict) -> dict:
    """The entries of ``arrays`` saved by ``prefixed(prefix, ...)``, under their own names."""
    start = prefix + "/"
    return {name[len(start):]: value for name, value in arrays.items() if name.startswith(start)}
