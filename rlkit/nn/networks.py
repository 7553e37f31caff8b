"""Standard networks the agents build on: the Nature DQN CNN and a plain MLP."""
from __future__ import annotations

from rlkit.nn.layers import Conv2d, Flatten, Linear, ReLU, Tanh
from rlkit.nn.module import Sequential

ACTIVATIONS = {"relu": ReLU, "tanh": Tanh}


def nature_cnn(in_channels: int = 4, n_outputs: int = 18, hidden: int = 512) -> Sequential:
    """The DQN network of Mnih et al. (2015), the table in the book's Deep Q Learning chapter.

    Input (N, in_channels, 84, 84) -> conv 8x8/4 (32) -> conv 4x4/2 (64) -> conv 3x3/1 (64)
    -> fc 512 -> fc n_outputs, ReLU between; feature maps (N,32,20,20), (N,64,9,9), (N,64,7,7).
    """
    return Sequential(
        Conv2d(in_channels, 32, kernel_size=8, stride=4), ReLU(),
        Conv2d(32, 64, kernel_size=4, stride=2), ReLU(),
        Conv2d(64, 64, kernel_size=3, stride=1), ReLU(),
        Flatten(),
        Linear(64 * 7 * 7, hidden), ReLU(),
        Linear(hidden, n_outputs),
    )


def mlp(sizes, activation: str = "relu") -> Sequential:
    """Fully connected layers of ``sizes`` = (in, hidden..., out), ``activation`` between them
    (none after the last). E.g. ``mlp([4, 64, 64, 2])``."""
    if len(sizes) < 2:
        raise ValueError(f"mlp needs at least input and output sizes, got {sizes}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}: expected one of {sorted(ACTIVATIONS)}")
    layers = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(Linear(n_in, n_out))
        if i < len(sizes) - 2:
            layers.append(ACTIVATIONS[activation]())
    return Sequential(*layers)
