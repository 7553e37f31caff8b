"""One framework's side of scripts/bench_core.py, run in a child process of its own.

    python scripts/_bench_core_worker.py {rlkit|torch} --threads 2 --repeats 15 --cases a,b
    python scripts/_bench_core_worker.py rlkit --threads 2 --profile dqn_train_step

Every case is written once, against a small adapter (:class:`RlkitSide`, :class:`TorchSide`)
that hides the few places where the two APIs differ (tensor creation, integer indices, the
Huber loss's name, max over a dimension). So both frameworks run the same program: same shapes,
same data, same step. The parent sets the thread-count variables in this process's environment
before it starts (BLAS and numba read them at import); torch also gets ``set_num_threads``.

Prints one JSON object on stdout: per case the median milliseconds per call and the samples;
plus versions and the BLAS this process really uses.
"""
from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import platform
import statistics
import time

import numpy as np

BATCH = 32
PPO_MINIBATCH = 256
A2C_ENVS, A2C_STEPS = 16, 5
N_ACTIONS = 6
GAMMA = 0.99
LSTM_SHAPE = dict(batch=32, steps=32, input=64, hidden=128)
MLP_SIZES = (4, 64, 64, 2)
# a timed sample repeats the step until it lasts this long, so microsecond steps are measurable
MIN_SAMPLE_S = 0.05
# warm-up lasts at least this long too: oneDNN and the allocators settle over the first calls
MIN_WARMUP_S = 1.0


# ------------------------------------------------------------------------- framework adapters
class RlkitSide:
    """rlkit's spelling of the few operations the cases need."""

    name = "rlkit"

    def __init__(self, threads: int):
        # numba and OpenBLAS take their thread counts from the environment the parent set
        import rlkit
        from agents.networks import FRAME_SCALE
        from rlkit import Tensor, nn, no_grad, optim
        self.module, self.nn, self.optim, self.no_grad, self._Tensor = rlkit, nn, optim, no_grad, Tensor
        # a network on frames takes them as uint8 and its first convolution scales them, as the
        # agents build it
        self.frame_conv = {"input_scale": FRAME_SCALE}

    def tensor(self, array: np.ndarray):
        return self._Tensor(array)

    def frames(self, array: np.ndarray):
        """uint8 frames as the network's input: as they are."""
        return self._Tensor(array)

    def index(self, array: np.ndarray):
        return array  # rlkit's gather takes integer NumPy arrays as they are

    def huber(self, prediction, target):
        return self.nn.huber_loss(prediction, target, delta=1.0)

    def mse(self, prediction, target):
        return self.nn.mse_loss(prediction, target)

    def max(self, x, dim: int):
        return x.max(axis=dim)

    def mean_keepdim(self, x, dim: int):
        return x.mean(axis=dim, keepdims=True)

    def argmax_index(self, x, dim: int):
        return x.argmax(axis=dim)[:, None]  # a plain integer array, what gather takes

    def clip_grad_norm(self, optimizer, parameters, max_norm: float):
        optimizer.clip_grad_norm(max_norm)

    def log_softmax(self, x, dim: int):
        return x.log_softmax(axis=dim)

    def clip(self, x, low: float, high: float):
        return x.clip(low, high)

    def maximum(self, a, b):
        return self.module.maximum(a, b)

    def rmsprop(self, parameters, lr: float, alpha: float, eps: float):
        return self.optim.RMSProp(parameters, lr=lr, alpha=alpha, eps=eps)

    def info(self) -> dict:
        import numba
        try:  # an older checkout (bench_revisions' base) has no engine threads
            from rlkit.threads import kernel_threads
        except ImportError:
            kernel_threads = None
        return {"rlkit": git_revision(), "numpy": np.__version__, "numba": numba.__version__,
                "blas": _numpy_blas(), "kernel_threads": kernel_threads and kernel_threads()}


class TorchSide:
    """PyTorch's spelling, plain eager mode (no compile), CPU, float32."""

    name = "torch"

    def __init__(self, threads: int):
        import torch
        torch.set_num_threads(threads)
        self.module, self.nn, self.optim, self.no_grad = torch, torch.nn, torch.optim, torch.no_grad

    frame_conv: dict = {}

    def tensor(self, array: np.ndarray):
        return self.module.from_numpy(array)

    def frames(self, array: np.ndarray):
        """uint8 frames as the network's input: float32 in [0, 1] (NumPy's conversion, the
        fastest measured for this side)."""
        return self.module.from_numpy(array.astype(np.float32) / np.float32(255))

    def index(self, array: np.ndarray):
        return self.module.from_numpy(array)

    def huber(self, prediction, target):
        return self.nn.functional.smooth_l1_loss(prediction, target, beta=1.0)  # = Huber, delta 1

    def mse(self, prediction, target):
        return self.nn.functional.mse_loss(prediction, target)

    def max(self, x, dim: int):
        return x.max(dim=dim).values

    def mean_keepdim(self, x, dim: int):
        return x.mean(dim=dim, keepdim=True)

    def argmax_index(self, x, dim: int):
        return x.argmax(dim=dim, keepdim=True)

    def clip_grad_norm(self, optimizer, parameters, max_norm: float):
        self.nn.utils.clip_grad_norm_(parameters, max_norm)

    def log_softmax(self, x, dim: int):
        return x.log_softmax(dim=dim)

    def clip(self, x, low: float, high: float):
        return x.clamp(low, high)

    def maximum(self, a, b):
        return self.module.maximum(a, b)

    def rmsprop(self, parameters, lr: float, alpha: float, eps: float):
        return self.optim.RMSprop(parameters, lr=lr, alpha=alpha, eps=eps)

    def info(self) -> dict:
        torch = self.module
        return {"torch": torch.__version__, "numpy": np.__version__,
                "torch_threads": torch.get_num_threads(),
                "torch_blas": "MKL" if torch.backends.mkl.is_available() else "other",
                "mkldnn": torch.backends.mkldnn.is_available(),
                "cpu_capability": torch.backends.cpu.get_cpu_capability()}


SIDES = {"rlkit": RlkitSide, "torch": TorchSide}


# ------------------------------------------------------------------------- the cases
def nature_cnn(fw, n_actions: int = N_ACTIONS, frames: bool = False):
    """Mnih et al. (2015): (N, 4, 84, 84) -> (N, n_actions); ``frames``: the input is what
    ``fw.frames`` makes of uint8 frames."""
    nn = fw.nn
    return nn.Sequential(
        nn.Conv2d(4, 32, kernel_size=8, stride=4, **(fw.frame_conv if frames else {})), nn.ReLU(),
        nn.Conv2d(32, 64, kernel_size=4, stride=2), nn.ReLU(),
        nn.Conv2d(64, 64, kernel_size=3, stride=1), nn.ReLU(),
        nn.Flatten(), nn.Linear(3136, 512), nn.ReLU(), nn.Linear(512, n_actions))


def small_convolutions(fw) -> list:
    """Mnih et al. (2013)'s convolutions with their ReLUs, then a flatten: ``fw.frames`` of
    (N, 4, 84, 84) uint8 frames -> (N, 2592)."""
    nn = fw.nn
    return [nn.Conv2d(4, 16, kernel_size=8, stride=4, **fw.frame_conv), nn.ReLU(),
            nn.Conv2d(16, 32, kernel_size=4, stride=2), nn.ReLU(), nn.Flatten()]


def actor_critic(fw, trunk: list, features: int):
    """A 6-way policy and a value head on the ``trunk`` layers' ``features`` outputs:
    x -> (logits (N, 6), values (N,))."""
    nn = fw.nn

    class ActorCritic(nn.Module):
        def __init__(self):
            super().__init__()
            self.trunk = nn.Sequential(*trunk)
            self.policy, self.value = nn.Linear(features, N_ACTIONS), nn.Linear(features, 1)

        def forward(self, x):
            h = self.trunk(x)
            return self.policy(h), self.value(h).reshape(-1)

    return ActorCritic()


def small_dueling_cnn(fw, n_actions: int = N_ACTIONS, frames: bool = True):
    """The default Pong network of agents/dqn.py: Mnih et al. (2013)'s convolutions and a
    dueling head (Wang et al. 2016) with 256 units per stream, on ``fw.frames``."""
    nn = fw.nn

    class SmallDueling(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(*small_convolutions(fw))
            self.value = nn.Sequential(nn.Linear(2592, 256), nn.ReLU(), nn.Linear(256, 1))
            self.advantage = nn.Sequential(nn.Linear(2592, 256), nn.ReLU(), nn.Linear(256, n_actions))

        def forward(self, x):
            h = self.features(x)
            advantage = self.advantage(h)
            return self.value(h) + advantage - fw.mean_keepdim(advantage, 1)

    return SmallDueling()


def dqn_setup(fw, rng, network=nature_cnn, adam_eps: float = 1e-8, frames: bool = False):
    """What the DQN cases start from: online and target networks (on ``fw.frames`` if
    ``frames``), Adam on the online one, and a batch's actions (B, 1), rewards (B,) and not-done
    flags (B,)."""
    online, target = network(fw, frames=frames), network(fw, frames=frames)
    opt = fw.optim.Adam(online.parameters(), lr=1e-4, eps=adam_eps)
    actions = fw.index(rng.integers(0, N_ACTIONS, (BATCH, 1)))
    rewards = fw.tensor(rng.standard_normal(BATCH).astype(np.float32))
    not_done = fw.tensor((rng.random(BATCH) > 0.1).astype(np.float32))
    return online, target, opt, actions, rewards, not_done


def dqn_train_step(fw, rng):
    """DQN update on a batch of 32 (4, 84, 84) float observations: target net under no_grad,
    online Q at the taken actions, Huber loss, backward, Adam."""
    online, target, opt, actions, rewards, not_done = dqn_setup(fw, rng)
    obs = fw.tensor(rng.random((BATCH, 4, 84, 84), np.float32))
    next_obs = fw.tensor(rng.random((BATCH, 4, 84, 84), np.float32))

    def step():
        with fw.no_grad():
            y = rewards + GAMMA * not_done * fw.max(target(next_obs), dim=1)
        q = online(obs).gather(1, actions).reshape(-1)
        loss = fw.huber(q, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return step


def dqn_agent_update(fw, rng, network=nature_cnn, adam_eps: float = 1e-8):
    """agents/dqn.py's update on the Nature CNN, batch 32: uint8 frames scaled to [0, 1],
    Double DQN targets (target and online nets on s' under no_grad), online Q at the taken
    actions, Huber loss, backward, gradient norm clipped to 10, Adam."""
    online, target, opt, actions, rewards, not_done = dqn_setup(fw, rng, network, adam_eps,
                                                                frames=True)
    frames = rng.integers(0, 256, (2, BATCH, 4, 84, 84), dtype=np.uint8)  # what replay returns

    def step():
        obs, next_obs = fw.frames(frames[0]), fw.frames(frames[1])
        with fw.no_grad():
            best = fw.argmax_index(online(next_obs), dim=1)
            y = rewards + GAMMA * not_done * target(next_obs).gather(1, best).reshape(-1)
        q = online(obs).gather(1, actions).reshape(-1)
        loss = fw.huber(q, y)
        opt.zero_grad()
        loss.backward()
        fw.clip_grad_norm(opt, online.parameters(), 10.0)
        opt.step()
    return step


def dqn_recipe_update(fw, rng):
    """The same update with the default Pong recipe's network and Adam (agents/dqn.py PRESETS:
    the 2013 network with a dueling head, eps 1.5e-4); n-step returns cost nothing here, they
    change only the rewards the replay returns. scripts/bench_dqn.py's PyTorch yardstick."""
    return dqn_agent_update(fw, rng, network=small_dueling_cnn, adam_eps=1.5e-4)


def ppo_atari_minibatch(fw, rng):
    """One PPO minibatch step of agents/ppo.py's Atari preset (CleanRL's ppo_atari: 8 envs x 128
    steps in 4 minibatches = 256 frames): Nature-CNN trunk with a 6-way policy and a value head,
    uint8 frames scaled to [0, 1], clipped surrogate (eps 0.1), clipped value loss, entropy
    bonus 0.01, gradient norm clipped to 0.5, Adam (eps 1e-5)."""
    cnn = nature_cnn(fw, frames=True)
    net = actor_critic(fw, [cnn[i] for i in range(len(cnn) - 1)], 512)  # up to the 512-unit ReLU
    opt = fw.optim.Adam(net.parameters(), lr=2.5e-4, eps=1e-5)
    frames = rng.integers(0, 256, (PPO_MINIBATCH, 4, 84, 84), dtype=np.uint8)
    actions = fw.index(rng.integers(0, N_ACTIONS, (PPO_MINIBATCH, 1)))
    old_log_prob, advantages, returns, old_values = (
        fw.tensor(a.astype(np.float32)) for a in (rng.normal(-1.8, 0.1, PPO_MINIBATCH),
                                                   *rng.standard_normal((3, PPO_MINIBATCH))))

    def step():
        logits, values = net(fw.frames(frames))
        log_p = fw.log_softmax(logits, 1)
        ratio = (log_p.gather(1, actions).reshape(-1) - old_log_prob).exp()
        policy_loss = fw.maximum(ratio * -advantages, fw.clip(ratio, 0.9, 1.1) * -advantages).mean()
        clipped = old_values + fw.clip(values - old_values, -0.1, 0.1)
        value_loss = fw.maximum((values - returns) ** 2, (clipped - returns) ** 2).mean() * 0.5
        entropy = -(log_p.exp() * log_p).sum(1).mean()
        loss = policy_loss + 0.5 * value_loss - 0.01 * entropy
        opt.zero_grad()
        loss.backward()
        fw.clip_grad_norm(opt, net.parameters(), 0.5)
        opt.step()
    return step


def a2c_pong_update(fw, rng):
    """One update of the A2C recipe that learned Pong (results/pong-pg): 16 envs x 5 steps = 80
    frames through the 2013 network's trunk (16 8x8/4 and 32 4x4/2 filters, 256 units) with a
    6-way policy and a value head, after V(s_T) of the 16 last frames without a graph; uint8
    frames scaled to [0, 1], policy gradient on the advantages, squared value error (0.5),
    entropy bonus 0.01, gradient norm clipped to 0.5, RMSProp (lr 7e-4, alpha 0.99, eps 1e-5)."""
    net = actor_critic(fw, [*small_convolutions(fw), fw.nn.Linear(2592, 256), fw.nn.ReLU()], 256)
    opt = fw.rmsprop(net.parameters(), lr=7e-4, alpha=0.99, eps=1e-5)
    batch = A2C_ENVS * A2C_STEPS
    frames = rng.integers(0, 256, (batch, 4, 84, 84), dtype=np.uint8)
    last_frames = rng.integers(0, 256, (A2C_ENVS, 4, 84, 84), dtype=np.uint8)
    actions = fw.index(rng.integers(0, N_ACTIONS, (batch, 1)))
    advantages, returns = (fw.tensor(a.astype(np.float32)) for a in rng.standard_normal((2, batch)))

    def step():
        with fw.no_grad():  # V(s_T), from which the returns are computed
            net(fw.frames(last_frames))
        logits, values = net(fw.frames(frames))
        log_p = fw.log_softmax(logits, 1)
        policy_loss = -(log_p.gather(1, actions).reshape(-1) * advantages).mean()
        value_loss = ((values - returns) ** 2).mean()
        entropy = -(log_p.exp() * log_p).sum(1).mean()
        loss = policy_loss + 0.5 * value_loss - 0.01 * entropy
        opt.zero_grad()
        loss.backward()
        fw.clip_grad_norm(opt, net.parameters(), 0.5)
        opt.step()
    return step


def cnn_forward_b1(fw, rng):
    """Acting: one (1, 4, 84, 84) observation through the Nature CNN, no graph."""
    net = nature_cnn(fw)
    obs = fw.tensor(rng.random((1, 4, 84, 84), np.float32))

    def step():
        with fw.no_grad():
            net(obs)
    return step


def mlp_train_step(fw, rng):
    """MLP 4-64-64-2 (ReLU), batch 32, MSE against fixed targets, backward, Adam."""
    nn = fw.nn
    layers = []
    for n_in, n_out in zip(MLP_SIZES[:-1], MLP_SIZES[1:]):
        layers += [nn.Linear(n_in, n_out), nn.ReLU()]
    net = nn.Sequential(*layers[:-1])
    opt = fw.optim.Adam(net.parameters(), lr=1e-3)
    x = fw.tensor(rng.standard_normal((BATCH, MLP_SIZES[0])).astype(np.float32))
    y = fw.tensor(rng.standard_normal((BATCH, MLP_SIZES[-1])).astype(np.float32))

    def step():
        loss = fw.mse(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return step


def lstm_fwd_bwd(fw, rng):
    """One LSTM layer over (32, 32, 64) inputs, hidden 128: forward, then backward of
    output.sum() into the weights (the input needs no gradient)."""
    s = LSTM_SHAPE
    lstm = fw.nn.LSTM(s["input"], s["hidden"], batch_first=True)
    x = fw.tensor(rng.standard_normal((s["batch"], s["steps"], s["input"])).astype(np.float32))

    def step():
        lstm.zero_grad()
        output, _ = lstm(x)
        output.sum().backward()
    return step


CASES = {f.__name__: f for f in (dqn_train_step, dqn_agent_update, dqn_recipe_update,
                                  ppo_atari_minibatch, a2c_pong_update, cnn_forward_b1,
                                  mlp_train_step, lstm_fwd_bwd)}

# multiply-adds per sample of each Nature-CNN layer: output elements x fan-in
NATURE_CNN_MACS = (32 * 20 * 20 * 4 * 8 * 8, 64 * 9 * 9 * 32 * 4 * 4, 64 * 7 * 7 * 64 * 3 * 3,
                   3136 * 512, 512 * N_ACTIONS)
# the same for the small dueling network: two convolutions, then each stream's two layers
SMALL_DUELING_MACS = (16 * 20 * 20 * 4 * 8 * 8, 32 * 9 * 9 * 16 * 4 * 4,
                      2 * 2592 * 256, 256 * (1 + N_ACTIONS))
# the A2C actor-critic on the 2013 network: convolutions, fc 256, policy and value heads
SMALL_ACTOR_CRITIC_MACS = SMALL_DUELING_MACS[:2] + (2592 * 256, 256 * (N_ACTIONS + 1))


def case_flops(case: str) -> int:
    """Floating-point operations of the GEMM/convolution work one call of ``case`` must do
    (2 per multiply-add; elementwise ops, losses and the optimiser are not counted).

    A train step costs one forward, the weight gradients (as much again) and the input
    gradients of every layer but the first (nothing asks for the data's gradient).
    """
    if case == "dqn_train_step":
        forward = sum(NATURE_CNN_MACS)
        macs = BATCH * (forward + 3 * forward - NATURE_CNN_MACS[0])  # target fwd + online train
    elif case in ("dqn_agent_update", "dqn_recipe_update"):
        layers = NATURE_CNN_MACS if case == "dqn_agent_update" else SMALL_DUELING_MACS
        forward = sum(layers)
        macs = BATCH * (2 * forward + 3 * forward - layers[0])  # + online fwd on s'
    elif case == "ppo_atari_minibatch":
        trunk = sum(NATURE_CNN_MACS[:4]) + 512 * (N_ACTIONS + 1)
        macs = PPO_MINIBATCH * (3 * trunk - NATURE_CNN_MACS[0])
    elif case == "a2c_pong_update":
        trunk = sum(SMALL_ACTOR_CRITIC_MACS)
        macs = A2C_ENVS * trunk + A2C_ENVS * A2C_STEPS * (3 * trunk - SMALL_ACTOR_CRITIC_MACS[0])
    elif case == "cnn_forward_b1":
        macs = sum(NATURE_CNN_MACS)
    elif case == "mlp_train_step":
        layers = [a * b for a, b in zip(MLP_SIZES[:-1], MLP_SIZES[1:])]
        macs = BATCH * (3 * sum(layers) - layers[0])
    elif case == "lstm_fwd_bwd":
        s = LSTM_SHAPE
        gates = 4 * s["hidden"]
        # forward: x W_ih^T and h W_hh^T; backward: both weight gradients and dh = dz W_hh
        macs = s["batch"] * s["steps"] * gates * (2 * s["input"] + 3 * s["hidden"])
    else:
        raise KeyError(case)
    return 2 * macs


# ------------------------------------------------------------------------- timing
def time_step(step, repeats: int, warmup: int) -> dict:
    """Median milliseconds per call of ``step()``.

    First ``step()`` once (numba compilation, first allocations), then at least ``warmup``
    calls lasting at least MIN_WARMUP_S; their mean sets how many calls make one sample of at
    least MIN_SAMPLE_S; then ``repeats`` samples.
    """
    step()
    calls, t0 = 0, time.perf_counter()
    while calls < warmup or time.perf_counter() - t0 < MIN_WARMUP_S:
        step()
        calls += 1
    per_call = (time.perf_counter() - t0) / calls
    inner = max(1, int(MIN_SAMPLE_S / max(per_call, 1e-9)))
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(inner):
            step()
        samples.append((time.perf_counter() - t0) / inner * 1e3)
    return {"median_ms": statistics.median(samples), "min_ms": min(samples),
            "max_ms": max(samples), "calls_per_sample": inner, "samples": len(samples)}


def profile_case(fw, case: str, seconds: float = 3.0, top: int = 25) -> None:
    """Run ``case`` for about ``seconds`` under cProfile and print the ``top`` functions by
    cumulative time. Time spent in BLAS or a numba kernel shows as the tottime of the Python
    function that called it."""
    import cProfile
    import pstats
    step = CASES[case](fw, np.random.default_rng(0))
    step()
    t0 = time.perf_counter()
    for _ in range(5):
        step()
    calls = max(10, int(seconds / ((time.perf_counter() - t0) / 5)))
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(calls):
        step()
    profiler.disable()
    print(f"{fw.name} {case}: {calls} calls under cProfile (times include the profiler's overhead)")
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(top)


def gemm_ceiling(fw, size: int = 1024, repeats: int = 7) -> float:
    """GFLOP/s of this framework's float32 ``size``^3 matrix product with the process's
    threads (the best of ``repeats`` timed products): what a case's GEMM work could reach."""
    rng = np.random.default_rng(0)
    a, b = (fw.tensor(rng.random((size, size), np.float32)) for _ in range(2))
    product = (lambda: a.data @ b.data) if fw.name == "rlkit" else (lambda: a @ b)
    product()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        product()
        best = min(best, time.perf_counter() - t0)
    return 2 * size ** 3 / best / 1e9


def breakdown_case(fw, case: str, calls: int = 40) -> dict:
    """Where rlkit's time goes in ``case``: milliseconds per call in each op's forward and
    backward (by Function class), the optimiser step, and the rest (sampling-free Python,
    data conversion, allocation), measured by wrapping those methods with timers.
    The timers cost a few microseconds per op; the total is timed with them in place."""
    import collections

    from rlkit import optim, tensor
    spent = collections.Counter()

    def timed(label, method):
        def wrapper(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                spent[label(args[0])] += time.perf_counter() - t0
        return wrapper

    step = CASES[case](fw, np.random.default_rng(0))
    for _ in range(5):
        step()
    call = tensor.Function.__call__
    tensor.Function.__call__ = timed(lambda op: f"forward {type(op).__name__}", call)
    backwards = _own_methods(tensor.Function, "backward")
    for cls, method in backwards.items():
        cls.backward = timed(lambda op: f"backward {type(op).__name__}", method)
    steps = _own_methods(optim.Optimizer, "step")
    for cls, method in steps.items():
        cls.step = timed(lambda _: "optimiser step", method)
    try:
        t0 = time.perf_counter()
        for _ in range(calls):
            step()
        total = (time.perf_counter() - t0) / calls * 1e3
    finally:
        tensor.Function.__call__ = call
        for cls, method in backwards.items():
            cls.backward = method
        for cls, method in steps.items():
            cls.step = method
    rows = {label: seconds / calls * 1e3 for label, seconds in spent.most_common()}
    rows["other"] = total - sum(rows.values())
    return {"case": case, "total_ms": total, "ms": {k: round(v, 3) for k, v in rows.items()}}


def _own_methods(base, name: str) -> dict:
    """{class: its own ``name`` method} for ``base`` and its subclasses that define one
    (wrapping an inherited method as well would time it twice)."""
    found, stack = {}, [base]
    while stack:
        cls = stack.pop()
        if name in cls.__dict__:
            found[cls] = cls.__dict__[name]
        stack.extend(cls.__subclasses__())
    return found


# ------------------------------------------------------------------------- environment facts
# Variables that hold a side to an older instruction set: NUMBA_CPU_NAME compiles rlkit's kernels
# for an older CPU, OPENBLAS_CORETYPE picks NumPy's GEMM kernels, and the last three keep
# PyTorch's ATen, oneDNN and MKL to AVX2 (how this project emulates an AVX2-only machine on an
# AVX-512 one).
INSTRUCTION_SET_VARIABLES = ("OPENBLAS_CORETYPE", "NUMBA_CPU_NAME", "ATEN_CPU_CAPABILITY",
                             "DNNL_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS")


def instruction_set_limits() -> dict:
    """{variable: value or None} for :data:`INSTRUCTION_SET_VARIABLES` in this process's
    environment: what a benchmark's JSON records so that an emulated run is never read as the
    machine's own."""
    return {k: os.environ.get(k) for k in INSTRUCTION_SET_VARIABLES}


def recorded_environment() -> dict:
    """{variable: value or None}: the thread counts the parent gave this worker
    (rlkit.backend.THREAD_VARIABLES) and :func:`instruction_set_limits`, the environment a
    worker's JSON reports."""
    from rlkit.backend import THREAD_VARIABLES  # here: the module itself stays free of rlkit
    return {**{k: os.environ.get(k) for k in THREAD_VARIABLES}, **instruction_set_limits()}


def git_revision() -> str | None:
    """``git describe --always --dirty`` of the checkout these scripts run from (None outside
    git): which engine a benchmark's JSON measured."""
    import subprocess
    try:
        return subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True, text=True,
                              cwd=os.path.dirname(os.path.abspath(__file__)), check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def _numpy_blas() -> dict:
    """NumPy's BLAS: name and version from its build config, and (for OpenBLAS) the core type
    and thread count the loaded library reports, as threadpoolctl would."""
    build = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
    info = {"name": build.get("name"), "version": build.get("version")}
    with open("/proc/self/maps") as maps:
        paths = sorted({line.split()[-1] for line in maps if "openblas" in line.lower()})
    for path in paths:
        lib = ctypes.CDLL(path)
        for prefix, suffix in (("scipy_openblas", "64_"), ("openblas", "64_"), ("openblas", "")):
            with contextlib.suppress(AttributeError):
                corename = getattr(lib, f"{prefix}_get_corename{suffix}")
                threads = getattr(lib, f"{prefix}_get_num_threads{suffix}")
                corename.restype = ctypes.c_char_p
                info.update(corename=corename().decode(), num_threads=threads(), library=path)
                return info
    return info


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("framework", choices=sorted(SIDES))
    p.add_argument("--threads", type=int, required=True)
    p.add_argument("--cases", default=",".join(CASES))
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--profile", choices=sorted(CASES), help="profile this case instead of timing")
    p.add_argument("--breakdown", choices=sorted(CASES),
                   help="rlkit only: print per-op milliseconds of this case as JSON instead of timing")
    args = p.parse_args(argv)
    fw = SIDES[args.framework](args.threads)
    if args.profile:
        profile_case(fw, args.profile)
        return
    if args.breakdown:
        print(json.dumps(breakdown_case(fw, args.breakdown)))
        return
    fw.module.manual_seed(args.seed)  # weight initialisation (rlkit.manual_seed, torch.manual_seed)
    results = {}
    for case in args.cases.split(","):
        step = CASES[case](fw, np.random.default_rng(args.seed))
        results[case] = time_step(step, args.repeats, args.warmup)
    print(json.dumps({"framework": fw.name, "cases": results, "versions": fw.info(),
                      "env": recorded_environment(), "gemm_gflops": round(gemm_ceiling(fw), 1),
                      "python": platform.python_version()}))


if __name__ == "__main__":
    main()
