"""Standard networks the agents build on: the two DQN CNNs, a plain MLP, the dueling head."""
from __future__ import annotations

from rlkit.nn.layers import Conv2d, Flatten, Linear, ReLU, Tanh
from rlkit.nn.module import Module, Sequential

ACTIVATIONS = {"relu": ReLU, "tanh": Tanh}


class DuelingHead(Module):
    """Q = V + A - mean_a(A) from features (Wang et al. 2016), (N, in_features) -> (N, n_actions).

    Two streams, each ``Linear(in_features, hidden) -> ReLU -> Linear``: ``value`` ends in one
    output V(s), ``advantage`` in ``n_actions`` outputs A(s, a). Subtracting the mean advantage
    makes V and A identifiable (any constant moved between them would otherwise be invisible).
    """

    def __init__(self, in_features: int, hidden: int, n_actions: int):
        super().__init__()
        self.value = Sequential(Linear(in_features, hidden), ReLU(), Linear(hidden, 1))
        self.advantage = Sequential(Linear(in_features, hidden), ReLU(), Linear(hidden, n_actions))

    def forward(self, x):
        advantage = self.advantage(x)
        return self.value(x) + advantage - advantage.mean(axis=1, keepdims=True)


def q_head(in_features: int, hidden: int, n_outputs: int, dueling: bool = False) -> list:
    """The fully connected end of a Q-network: ``[Linear, ReLU, Linear]`` or ``[DuelingHead]``."""
    if dueling:
        return [DuelingHead(in_features, hidden, n_outputs)]
    return [Linear(in_features, hidden), ReLU(), Linear(hidden, n_outputs)]


def nature_cnn(in_channels: int = 4, n_outputs: int = 18, hidden: int = 512,
               dueling: bool = False, input_scale: float = 1.0) -> Sequential:
    """The DQN network of Mnih et al. (2015), the table in the book's Deep Q Learning chapter.

    Input (N, in_channels, 84, 84) -> conv 8x8/4 (32) -> conv 4x4/2 (64) -> conv 3x3/1 (64)
    -> fc 512 -> fc n_outputs, ReLU between; feature maps (N,32,20,20), (N,64,9,9), (N,64,7,7).
    9.35M multiply-adds per input. ``dueling`` replaces the two fc layers by a DuelingHead.
    ``input_scale`` goes to the first convolution: 1/255 takes raw uint8 frames.
    """
    return Sequential(
        Conv2d(in_channels, 32, kernel_size=8, stride=4, input_scale=input_scale), ReLU(),
        Conv2d(32, 64, kernel_size=4, stride=2), ReLU(),
        Conv2d(64, 64, kernel_size=3, stride=1), ReLU(),
        Flatten(),
        *q_head(64 * 7 * 7, hidden, n_outputs, dueling),
    )


def small_cnn(in_channels: int = 4, n_outputs: int = 18, hidden: int = 256,
              dueling: bool = False, input_scale: float = 1.0) -> Sequential:
    """The first DQN network, of Mnih et al. (2013, "Playing Atari with Deep RL").

    Input (N, in_channels, 84, 84) -> conv 8x8/4 (16) -> conv 4x4/2 (32) -> fc 256
    -> fc n_outputs, ReLU between; feature maps (N,16,20,20), (N,32,9,9). 3.0M multiply-adds
    per input, a third of the Nature CNN's. ``dueling`` replaces the two fc layers by a
    DuelingHead. ``input_scale`` goes to the first convolution, as in :func:`nature_cnn`.
    """
    return Sequential(
        Conv2d(in_channels, 16, kernel_size=8, stride=4, input_scale=input_scale), ReLU(),
        Conv2d(16, 32, kernel_size=4, stride=2), ReLU(),
        Flatten(),
        *q_head(32 * 9 * 9, hidden, n_outputs, dueling),
    )


IMAGE_NETWORKS = {"nature": nature_cnn, "small": small_cnn}


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
