"""Small learning problems with a bounded number of steps: the engine trains real models."""
import numpy as np
import pytest

import rlkit
from rlkit import Tensor, nn, optim


def train(model, inputs, labels, steps, lr, loss_fn=nn.cross_entropy, batch=None, seed=0):
    """Adam on ``loss_fn(model(x), y)``, full batch or random minibatches of ``batch``."""
    rng = np.random.default_rng(seed)
    opt = optim.Adam(model.parameters(), lr=lr)
    for _ in range(steps):
        idx = slice(None) if batch is None else rng.integers(0, len(inputs), batch)
        opt.zero_grad()
        loss_fn(model(Tensor(inputs[idx])), labels[idx]).backward()
        opt.step()
    return model


def accuracy(model, inputs, labels):
    model.eval()
    with rlkit.no_grad():
        return float((model(Tensor(inputs)).numpy().argmax(axis=1) == labels).mean())


def test_mlp_learns_xor():
    rlkit.manual_seed(0)
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float32)
    y = np.array([0, 1, 1, 0])
    model = train(nn.mlp([2, 16, 2], activation="tanh"), x, y, steps=300, lr=0.05)
    assert accuracy(model, x, y) == 1.0
    with rlkit.no_grad():
        assert nn.cross_entropy(model(Tensor(x)), y).item() < 0.05


def quadrant_images(n, rng):
    """8x8 single-channel images, noise plus one bright 3x3 square; label = its quadrant."""
    images = rng.normal(0, 0.3, (n, 1, 8, 8)).astype(np.float32)
    labels = rng.integers(0, 4, n)
    for k, q in enumerate(labels):
        top, left = 4 * (q // 2) + rng.integers(0, 2), 4 * (q % 2) + rng.integers(0, 2)
        images[k, 0, top:top + 3, left:left + 3] += 2.0
    return images, labels


@pytest.mark.slow
def test_conv_net_finds_the_bright_quadrant():
    rlkit.manual_seed(1)
    rng = np.random.default_rng(1)
    x_train, y_train = quadrant_images(512, rng)
    x_test, y_test = quadrant_images(256, rng)
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Linear(32, 4))
    train(model, x_train, y_train, steps=150, lr=0.01, batch=64)
    assert accuracy(model, x_test, y_test) >= 0.95


def recall_first_token(n, steps, rng):
    """Sequences of one-hot tokens (3 symbols); the label is the FIRST token."""
    tokens = rng.integers(0, 3, (n, steps))
    return np.eye(3, dtype=np.float32)[tokens], tokens[:, 0]


class LastStepClassifier(nn.Module):
    """An LSTM (or nothing) followed by a linear read-out of the last time step."""

    def __init__(self, recurrent: bool):
        super().__init__()
        self.lstm = nn.LSTM(3, 16) if recurrent else None
        self.head = nn.Linear(16 if recurrent else 3, 3)

    def forward(self, x):
        if self.lstm is not None:
            x, _ = self.lstm(x)
        return self.head(x[:, -1])


@pytest.mark.slow
def test_lstm_remembers_the_first_token_a_feed_forward_net_cannot():
    rlkit.manual_seed(2)
    rng = np.random.default_rng(2)
    x, y = recall_first_token(512, 6, rng)
    x_test, y_test = recall_first_token(256, 6, rng)
    lstm = train(LastStepClassifier(recurrent=True), x, y, steps=300, lr=0.02, batch=64)
    feed_forward = train(LastStepClassifier(recurrent=False), x, y, steps=300, lr=0.02, batch=64)
    assert accuracy(lstm, x_test, y_test) >= 0.95
    assert accuracy(feed_forward, x_test, y_test) < 0.5   # chance is 1/3: the last token says nothing
