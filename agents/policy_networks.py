"""The networks of the policy-gradient agents, and the action distributions they output.

    observation -> encoder -> [LSTM] -> policy head -> action distribution
                                     -> value head  -> V(s)          (actor-critic only)

- ``encoder_for``: an MLP for vector observations, the Nature CNN (up to its 512-unit layer)
  for (C, 84, 84) frames.
- ``book_network``: the seed book's Pong network, exactly: 6400 inputs -> 200 ReLU -> 1 logit,
  no biases, weights N(0, 1/fan_in) (the book's "Xavier": ``randn(H, D) / sqrt(D)``), and
  P(UP) = sigmoid(logit). Its first layer multiplies only the nonzero pixels of the
  difference frame (``SparseInputMatMul``): the same numbers, a fraction of the work.
- ``Core``: encoder and optional LSTM (state carried by the caller, zeroed at episode
  starts); ``PolicyNetwork``: an actor core with its policy head, and for the actor-critic a
  value head, on the actor's features or on a separate critic core.
- ``Categorical`` (softmax over actions), ``Bernoulli`` (the book's coin: action 0 = UP with
  probability sigmoid(logit), else 1 = DOWN) and ``DiagGaussian`` (continuous actions: a mean
  from the network, a log standard deviation per action dimension that depends on no state).
"""
from __future__ import annotations

import math

import numpy as np
import scipy.sparse

from rlkit import Function, Tensor, cat, nn
from rlkit import random as rlkit_random
from rlkit.backend import get_array_module, to_numpy

BOOK_INPUTS, BOOK_HIDDEN = 80 * 80, 200


# --------------------------------------------------------------------------------------------
# Action distributions
# --------------------------------------------------------------------------------------------

class Categorical:
    """pi(a | s) = softmax(logits)[a]; ``logits`` Tensor (N, A)."""

    def __init__(self, logits: Tensor):
        self.logits = logits
        self.log_p = logits.log_softmax(axis=-1)  # (N, A)

    def probs(self) -> np.ndarray:
        """Action probabilities (N, A) on the host."""
        return np.exp(to_numpy(self.log_p.data))

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        """One action per row (N,), by inverting the CDF with one uniform draw per row."""
        cdf = np.cumsum(self.probs(), axis=1)
        u = rng.random((cdf.shape[0], 1))
        return np.minimum((u >= cdf).sum(axis=1), cdf.shape[1] - 1)

    def mode(self) -> np.ndarray:
        """The most likely action of each row (N,)."""
        return to_numpy(self.logits.data).argmax(axis=1)

    def log_prob(self, actions) -> Tensor:
        """log pi(a_i | s_i) for integer ``actions`` (N,) -> Tensor (N,)."""
        index = get_array_module(self.log_p.data).asarray(actions).reshape(-1, 1)
        return self.log_p.gather(1, index).reshape(-1)

    def entropy(self) -> Tensor:
        """-sum_a pi(a) log pi(a) per row -> Tensor (N,)."""
        return -(self.log_p.exp() * self.log_p).sum(axis=1)


class Bernoulli:
    """The book's coin over two actions: 0 = UP with p = sigmoid(logit), 1 = DOWN.

    ``logit`` Tensor (N,). ``sample`` is the book's draw: UP if uniform() < p.
    """

    def __init__(self, logit: Tensor):
        self.logit = logit

    def probs(self) -> np.ndarray:
        """(N, 2): P(UP), P(DOWN) on the host."""
        p_up = 1.0 / (1.0 + np.exp(-to_numpy(self.logit.data).astype(np.float64)))
        return np.stack([p_up, 1.0 - p_up], axis=1)

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        p_up = self.probs()[:, 0]
        return np.where(rng.random(p_up.shape) < p_up, 0, 1)

    def mode(self) -> np.ndarray:
        return np.where(to_numpy(self.logit.data) > 0, 0, 1)

    def log_prob(self, actions) -> Tensor:
        """log P(a) = -BCE(logit, [a == UP]) -> Tensor (N,); its logit gradient is y - p."""
        xp = get_array_module(self.logit.data)
        up = xp.asarray(np.asarray(actions).reshape(-1) == 0, dtype=self.logit.dtype)
        return -nn.binary_cross_entropy_with_logits(self.logit, up, reduction="none")

    def entropy(self) -> Tensor:
        """-p log p - (1 - p) log(1 - p) = softplus(z) - z * sigmoid(z) -> Tensor (N,)."""
        z = self.logit
        softplus = z.relu() + ((-z.abs()).exp() + 1.0).log()  # log(1 + e^z), never overflows
        return softplus - z * z.sigmoid()


class DiagGaussian:
    """pi(a | s) = N(a; mean(s), diag(exp(log_std))^2) over D action dimensions.

    ``mean`` Tensor (N, D), ``log_std`` Tensor (D,) (one learned parameter per dimension, the
    same for every state). Samples are not clipped here: the agent clips them to the action
    space's bounds when it hands them to the env, and trains on the log-probability of the
    unclipped sample.
    """

    LOG_2PI = math.log(2.0 * math.pi)

    def __init__(self, mean: Tensor, log_std: Tensor):
        self.mean, self.log_std = mean, log_std

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        """One action per row (N, D) on the host: mean + std * z, z ~ N(0, I)."""
        mean = to_numpy(self.mean.data).astype(np.float64)
        std = np.exp(to_numpy(self.log_std.data).astype(np.float64))
        return (mean + std * rng.standard_normal(mean.shape)).astype(np.float32)

    def mode(self) -> np.ndarray:
        """The most likely action of each row: the mean (N, D)."""
        return to_numpy(self.mean.data).copy()

    def log_prob(self, actions) -> Tensor:
        """log pi(a_i | s_i) = -sum_d [(a - mu)^2 / (2 sigma^2) + log sigma + log(2 pi) / 2]
        for ``actions`` (N, D) -> Tensor (N,)."""
        xp = get_array_module(self.mean.data)
        a = xp.asarray(actions, dtype=self.mean.dtype).reshape(self.mean.shape)
        z = (a - self.mean) * (-self.log_std).exp()
        d = self.mean.shape[-1]
        return (z * z).sum(axis=1) * -0.5 - self.log_std.sum() - 0.5 * d * self.LOG_2PI

    def entropy(self) -> Tensor:
        """sum_d [log sigma_d + (1 + log(2 pi)) / 2], the same for every row -> Tensor (N,)."""
        xp = get_array_module(self.mean.data)
        d = self.mean.shape[-1]
        ones = Tensor(xp.ones(self.mean.shape[0], dtype=self.mean.dtype))
        return ones * (self.log_std.sum() + 0.5 * d * (1.0 + self.LOG_2PI))


# --------------------------------------------------------------------------------------------
# Encoders
# --------------------------------------------------------------------------------------------

def encoder_for(obs_shape: tuple, hidden=(64, 64), activation: str = "relu",
                network: str = "nature", input_scale: float = 1.0) -> tuple:
    """(encoder module, feature size) for observations of ``obs_shape`` (batch first).

    (D,): an MLP D -> hidden... with ``activation`` after every layer (no layer if ``hidden``
    is empty: the features are the observation). (C, 84, 84): the image network ``network``
    names (``nn.IMAGE_NETWORKS``: "nature", 512 features, or "small", 256) up to and including
    its last hidden ReLU layer, its first convolution multiplying the frames by ``input_scale``
    (1/255 for raw uint8 frames). Anything else raises ValueError.
    """
    if len(obs_shape) == 1:
        hidden = tuple(int(h) for h in hidden)
        if not hidden:
            return nn.Identity(), obs_shape[0]
        layers = list(nn.mlp([obs_shape[0], *hidden], activation))
        layers.append(nn.networks.ACTIVATIONS[activation]())
        return nn.Sequential(*layers), hidden[-1]
    if len(obs_shape) == 3 and obs_shape[1:] == (84, 84):
        cnn = nn.IMAGE_NETWORKS[network](obs_shape[0], n_outputs=1, input_scale=input_scale)
        # the network without its output layer: convolutions, flatten, fc, ReLU
        return nn.Sequential(*[cnn[i] for i in range(len(cnn) - 1)]), cnn[len(cnn) - 1].in_features
    raise ValueError(f"no encoder for observations of shape {obs_shape}: expected a vector (D,) "
                     "or frames (C, 84, 84) (Pong with preprocess='dqn')")


# --------------------------------------------------------------------------------------------
# Policy network
# --------------------------------------------------------------------------------------------

class Core(nn.Module):
    """encoder -> [LSTM]: observations (N, T, *obs_shape) -> features (N*T, size), (n, t) order.

    ``forward(obs, state=None, starts=None)``: ``state`` the LSTM's (h, c), each (N, lstm_size),
    or None for zeros; ``starts`` bool (N, T), True where an observation is the first of an
    episode (the LSTM state is zeroed before it). Returns (features, new state or None).
    """

    def __init__(self, encoder: nn.Module, n_features: int, lstm_size: int = 0):
        super().__init__()
        self.encoder, self.lstm_size = encoder, int(lstm_size)
        self.lstm = nn.LSTM(n_features, self.lstm_size) if self.lstm_size else None
        self.size = self.lstm_size or n_features

    def forward(self, obs: Tensor, state=None, starts=None):
        n, t = obs.shape[:2]
        features = self.encoder(obs.reshape(n * t, *obs.shape[2:]))
        if self.lstm is None:
            return features, None
        sequence, state = self._recur(features.reshape(n, t, -1), state, starts)
        return sequence.reshape(n * t, -1), state

    def _recur(self, x: Tensor, state, starts):
        """The LSTM over x (N, T, F), zeroing the state of sequences at their ``starts``.

        Runs the fused sequence op on each stretch of time between episode starts (usually
        one stretch), so resets cost nothing when there are none.
        """
        n, t = x.shape[:2]
        xp = get_array_module(x.data)
        if state is None:
            zeros = xp.zeros((n, self.lstm_size), np.float32)
            state = (Tensor(zeros), Tensor(zeros))
        starts = np.zeros((n, t), bool) if starts is None else np.asarray(starts, bool)
        cuts = [0] + [k for k in range(1, t) if starts[:, k].any()] + [t]
        outputs = []
        for t0, t1 in zip(cuts[:-1], cuts[1:]):
            if starts[:, t0].any():
                keep = xp.asarray(~starts[:, t0:t0 + 1], dtype=np.float32)  # (N, 1)
                state = (state[0] * keep, state[1] * keep)
            out, state = self.lstm(x if (t0, t1) == (0, t) else x[:, t0:t1], state)
            outputs.append(out)
        return (outputs[0] if len(outputs) == 1 else cat(outputs, axis=1)), state


class PolicyNetwork(nn.Module):
    """actor core -> policy head, and optionally a value V(s):

    - ``critic=None, shared_value=False``: no value (REINFORCE);
    - ``shared_value=True``: a linear value head on the actor's features (the Atari A2C);
    - ``critic`` a Core: a separate network for V(s) (stable for small MLPs, whose value
      targets, returns in the hundreds, would otherwise swamp the policy's features).

    ``book_head``: one logit, no bias, P(UP) = sigmoid (the book's output); ``gaussian``: a
    diagonal Gaussian over ``n_actions`` continuous dimensions (a linear mean head and a
    state-independent ``log_std`` parameter, starting at ``init_log_std``); else a softmax
    over ``n_actions``. ``forward(obs, state=None, starts=None)`` with ``obs`` (N, T, ...)
    (T = 1 to act) returns (distribution over N*T rows, values (N*T,) or None, new state);
    the state is the pair (actor LSTM state, critic LSTM state), None for a part without one.
    """

    def __init__(self, actor: Core, n_actions: int, *, book_head: bool = False,
                 critic: Core | None = None, shared_value: bool = False, gaussian: bool = False,
                 init_log_std: float = 0.0):
        super().__init__()
        self.actor, self.critic, self.book_head, self.gaussian = actor, critic, book_head, gaussian
        self.policy = nn.Linear(actor.size, 1, bias=False) if book_head else nn.Linear(actor.size, n_actions)
        head_size = critic.size if critic is not None else actor.size
        self.value = nn.Linear(head_size, 1) if critic is not None or shared_value else None
        if gaussian:
            self.log_std = nn.Parameter(np.full(n_actions, init_log_std, np.float32))

    def forward(self, obs: Tensor, state=None, starts=None):
        actor_state, critic_state = state if state is not None else (None, None)
        features, actor_state = self.actor(obs, actor_state, starts)
        head = self.policy(features)
        if self.gaussian:
            dist = DiagGaussian(head, self.log_std)
        else:
            dist = Bernoulli(head.reshape(-1)) if self.book_head else Categorical(head)
        values = None
        if self.critic is not None:
            critic_features, critic_state = self.critic(obs, critic_state, starts)
            values = self.value(critic_features).reshape(-1)
        elif self.value is not None:
            values = self.value(features).reshape(-1)
        return dist, values, (actor_state, critic_state)


# --------------------------------------------------------------------------------------------
# The book's network
# --------------------------------------------------------------------------------------------

def book_normal(shape: tuple) -> np.ndarray:
    """The book's initialisation of an (out, in) weight, N(0, 1 / in), as float32:
    ``np.random.randn(H, D) / np.sqrt(D)`` (the chapter calls it "Xavier")."""
    return rlkit_random.generator().normal(0.0, 1.0 / math.sqrt(shape[1]), shape).astype(np.float32)


class SparseInputMatMul(Function):
    """``x @ w`` for an ``x`` (N, D) that is mostly zeros, reading only the rows of ``w`` (D, H)
    that meet a nonzero input: O(nonzeros * H) instead of O(N * D * H), forward and backward.

    The book's input is the difference of two frames: only the pixels that changed (ball and
    paddles, about 26 of 6400 in Pong) are nonzero, so acting reads 0.4% of W1's 5 MB and the
    update's gradient dW1 = x^T g costs as much again. ``x`` gets no gradient (it is data).
    A dense input, or one on the GPU, takes the plain product.
    """

    def forward(self, x, w):
        self.x, self.sparse = x, None
        if get_array_module(x) is not np:
            return x @ w
        if len(x) == 1 and not self.needs_input_grad:  # acting on one frame, no graph
            changed = np.flatnonzero(x[0])
            if len(changed) <= x.shape[1] // 8:
                return (x[0, changed] @ w[changed])[None]
        elif np.count_nonzero(x) <= x.size // 8:
            self.sparse = scipy.sparse.csr_matrix(x)
            return np.asarray(self.sparse @ w, dtype=w.dtype)
        return x @ w

    def backward(self, g):
        if self.needs_input_grad[0]:
            raise ValueError("SparseInputMatMul gives no gradient to its input (it is data)")
        if self.sparse is None:
            return None, self.x.T @ g
        return None, np.asarray(self.sparse.T @ g, dtype=g.dtype)


class DifferenceFrameLayer(nn.Module):
    """The book's first layer, h = x W1 (no bias) for difference frames x (N, 6400), with
    ``weight`` stored (in, out) = (6400, 200) so the rows a sparse input picks are contiguous.
    Initialised as the book does: N(0, 1 / fan_in), ``np.random.randn(H, D) / np.sqrt(D)``.
    """

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        # drawn as the book's (out, in) matrix, stored transposed and C-contiguous
        self.weight = nn.Parameter(np.ascontiguousarray(book_normal((out_features, in_features)).T))

    def forward(self, x: Tensor) -> Tensor:
        return SparseInputMatMul()(x, self.weight)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias=False"


def book_network(lstm_size: int = 0) -> PolicyNetwork:
    """The book's Pong policy: 6400 -> 200 ReLU -> 1 logit (no biases, N(0, 1/fan_in) weights).

    With ``lstm_size`` an LSTM sits between the 200 hidden units and the output (not in the
    book: the recurrent option).
    """
    hidden = DifferenceFrameLayer(BOOK_INPUTS, BOOK_HIDDEN)
    net = PolicyNetwork(Core(nn.Sequential(hidden, nn.ReLU()), BOOK_HIDDEN, lstm_size), 2,
                        book_head=True)
    net.policy.weight.data[...] = book_normal(net.policy.weight.shape)
    return net


# --------------------------------------------------------------------------------------------
# Network state (LSTM)
# --------------------------------------------------------------------------------------------

def _map_state(fn, state):
    if state is None:
        return None
    if isinstance(state, Tensor):
        return fn(state)
    return tuple(_map_state(fn, s) for s in state)


def detach_state(state):
    """The network state cut from the graph (truncated back-propagation through time)."""
    return _map_state(Tensor.detach, state)


def select_rows(state, rows):
    """The network state of the sequences ``rows`` (an index array) only (None stays None)."""
    return _map_state(lambda tensor: tensor[get_array_module(tensor.data).asarray(rows)], state)


def state_rows(state) -> int | None:
    """How many sequences a network state holds (None: no LSTM state yet)."""
    tensors = []
    _map_state(tensors.append, state)
    return tensors[0].shape[0] if tensors else None
