"""Networks chosen from an observation space, and the adapter that feeds them observations.

- image stacks (uint8 Box of shape (C, H, W), e.g. Pong's (4, 84, 84)): the Nature CNN;
- vectors (1-D Box): an MLP;
- Discrete(n) states (RoomExit, Gridworld, FrozenLake): an MLP on the one-hot state, so deep
  agents run on the tabular worlds and can be compared with tabular agents.
"""
from __future__ import annotations

import numpy as np
from gymnasium import spaces

from rlkit import Tensor, manual_seed, nn
from rlkit.backend import array_module_for


def is_image_space(space) -> bool:
    """A uint8 Box (C, H, W) with H, W >= 36: what the Nature CNN can take."""
    return (isinstance(space, spaces.Box) and space.dtype == np.uint8 and len(space.shape) == 3
            and min(space.shape[1:]) >= 36)


# uint8 pixel values -> [0, 1]. Image stacks reach the network as raw bytes and its first
# convolution applies this scale while it copies them into its own layout: a float copy of each
# frame batch would cost a pass over 4x the bytes (rlkit/kernels/blocks.py has the figures).
FRAME_SCALE = 1.0 / 255.0


def input_scale(space) -> float:
    """What the default network's first layer multiplies its input by: FRAME_SCALE for image
    stacks (``ObsAdapter`` passes them as uint8), 1 for everything else."""
    return FRAME_SCALE if is_image_space(space) else 1.0


def input_size(space) -> int:
    """Length of the network input for non-image spaces (one-hot length for Discrete)."""
    if isinstance(space, spaces.Discrete):
        return int(space.n)
    if isinstance(space, spaces.Box) and len(space.shape) == 1:
        return int(space.shape[0])
    raise ValueError(f"unsupported observation space {space}: expected an image stack "
                     "(uint8, C x H x W), a 1-D Box or Discrete")


def build_network(space, n_outputs: int, hidden_sizes=(64, 64), activation: str = "relu",
                  image_network: str = "nature", dueling: bool = False) -> nn.Module:
    """The default network for ``space`` with ``n_outputs`` outputs (Q-values or logits).

    Image stacks get ``nn.IMAGE_NETWORKS[image_network]`` ("nature" or "small"), the rest an
    MLP with ``hidden_sizes``. ``dueling`` ends either in a DuelingHead whose streams have the
    last hidden width.
    """
    if is_image_space(space):
        if image_network not in nn.IMAGE_NETWORKS:
            raise ValueError(f"unknown image network {image_network!r}: expected one of "
                             f"{sorted(nn.IMAGE_NETWORKS)}")
        return nn.IMAGE_NETWORKS[image_network](space.shape[0], n_outputs, dueling=dueling,
                                                input_scale=input_scale(space))
    if not dueling:
        return nn.mlp([input_size(space), *hidden_sizes, n_outputs], activation=activation)
    if not hidden_sizes:
        raise ValueError("a dueling MLP needs at least one hidden layer")
    *trunk, stream = hidden_sizes
    layers = []
    if trunk:
        layers += [nn.mlp([input_size(space), *trunk], activation=activation),
                   nn.networks.ACTIVATIONS[activation]()]
    head_in = trunk[-1] if trunk else input_size(space)
    return nn.Sequential(*layers, nn.DuelingHead(head_in, stream, n_outputs))


def default_threads(space) -> int:
    """BLAS threads for the default network of ``space``: 1 for MLPs (their GEMMs are too small
    to share between threads), 0 (leave the library's default) for the Nature CNN."""
    return 0 if is_image_space(space) else 1


class ObsAdapter:
    """Raw observation batch (N, *space shape) -> the network's input Tensor on ``device``.

    Image stacks (``is_image_space``) stay uint8: the networks built for them scale them to
    [0, 1] in their first layer (``input_scale``). Other uint8 Boxes are scaled to [0, 1] float32
    here, other Boxes become float32 as they are, Discrete(n) states one-hot float32 rows
    (N, n). Other spaces raise ValueError.
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
        if is_image_space(space):
            return Tensor(xp.asarray(obs))
        batch = xp.asarray(obs).astype(np.float32)
        if space.dtype == np.uint8:
            batch *= np.float32(FRAME_SCALE)
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
