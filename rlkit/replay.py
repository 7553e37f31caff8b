"""Replay memories for off-policy agents: FIFO rings with uniform or prioritised sampling.

* `ReplayBuffer` keeps whole (obs, action, reward, next_obs, terminated) rows; for vector or
  discrete observations, where storing next_obs twice costs little.
* `FrameReplayBuffer` keeps every image frame once, as uint8, and rebuilds the frame stacks at
  sample time (the idea of dopamine's circular_replay_buffer): about 7 KB per Atari transition
  instead of the 56 KB of two stored (4, 84, 84) stacks.
* `PrioritizedReplayBuffer` and `PrioritizedFrameReplayBuffer` are the same memories with
  proportional prioritised sampling (Schaul et al. 2016): one `_Prioritized` mixin over a
  `rlkit.sum_tree.SumTree` of per-slot priorities, added to each.

Both return a `Batch` whose `dones` is `terminated` only: a time-limit truncation ends the
episode, but its target must still bootstrap from next_obs. Both save to a dict of NumPy arrays
(`state_dict`) that `np.savez` writes and `np.load(allow_pickle=False)` reads back, RNG included,
so a resumed run samples exactly what an uninterrupted one would have.
"""
import json
import os
from typing import NamedTuple

import numpy as np

from rlkit.memory import mapped_copy, mapped_zeros, release_freed_memory
from rlkit.sum_tree import SumTree

# Rejection rounds before `FrameReplayBuffer.sample` gives up; in a normal buffer well over 99%
# of slots are valid and one round almost always suffices.
_MAX_SAMPLE_ROUNDS = 1000


class Batch(NamedTuple):
    """A sampled batch; B = batch size.

    obs, next_obs: (B, *obs_shape) in the buffer's observation dtype; for `FrameReplayBuffer`
        (B, stack, H, W) uint8.
    actions: (B,) int64.  rewards: (B,) float32.
    dones: (B,) float32, 1.0 where the episode terminated (truncation is not a done).
    With n-step sampling (`FrameReplayBuffer.sample(n_step=n)`), rewards is the discounted
    sum of up to n rewards, next_obs the observation after the last of them, dones whether
    that last step terminated, and horizons how many rewards were summed: the target is
    rewards + gamma ** horizons * (1 - dones) * Q(next_obs).
    The prioritised buffers also fill slots (where each transition is stored, to pass back to
    `update_priorities`) and weights (importance-sampling weights for the loss); the uniform
    buffers leave them None.
    """

    obs: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    next_obs: np.ndarray
    dones: np.ndarray
    horizons: np.ndarray | None = None
    """(B,) int64: rewards summed into `rewards` (n-step sampling); None means 1 each."""
    slots: np.ndarray | None = None
    """(B,) int64: the buffer slot of each transition (prioritised buffers only)."""
    weights: np.ndarray | None = None
    """(B,) float32: importance-sampling weights (N * P(i)) ** -beta over their batch maximum,
    in (0, 1] (prioritised buffers only); None means 1 each."""


def available_memory_bytes() -> int:
    """Memory the OS can give this process now, in bytes (MemAvailable, else free pages)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024  # the file counts kB
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


class _Ring:
    """Storage, memory check and (de)serialisation shared by both buffers.

    A subclass describes its per-slot arrays in `_layout(**shape_args)` as
    {name: (shape, dtype)}, lists the int/bool attributes that make up its cursor state in
    `_scalars`, and the attributes that must match on load in `_fixed`.
    """

    _scalars: tuple = ()
    _fixed: tuple = ()

    def __init__(self, capacity, layout, seed):
        if int(capacity) != capacity or capacity < 1:
            raise ValueError(f"capacity must be a positive integer, got {capacity!r}")
        self.capacity = int(capacity)
        self._require_memory(self.capacity, layout)
        # a mapping of its own: memory is committed as slots are first written, which is why the
        # check above, not the allocation, is what refuses an impossible capacity; and it goes
        # back to the kernel when the buffer is freed (rlkit/memory.py keeps malloc's blocks)
        self._store = {name: mapped_zeros((self.capacity, *shape), dtype)
                       for name, (shape, dtype) in layout.items()}
        self._rng = np.random.default_rng(seed)

    @staticmethod
    def _layout(**shape_args):
        raise NotImplementedError

    def _transitions_added(self, slots) -> None:
        """Hook: `slots` (n,) int64 now hold new (sampleable) transitions. No-op here."""

    @classmethod
    def check_capacity(cls, capacity, **shape_args) -> int:
        """Bytes a buffer of `capacity` slots needs; ValueError if the machine cannot hold them.

        shape_args: the constructor's shape arguments (`obs_shape=`, `obs_dtype=` for
        ReplayBuffer, `frame_shape=` for FrameReplayBuffer).
        """
        return cls._require_memory(int(capacity), cls._layout(**shape_args))

    @classmethod
    def _require_memory(cls, capacity, layout):
        row = sum(int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
                  for shape, dtype in layout.values())
        needed = capacity * row
        available = available_memory_bytes()
        if needed > available:
            raise ValueError(
                f"{cls.__name__} with capacity {capacity:,} needs {needed / 1e9:.2f} GB "
                f"({row:,} bytes per transition) but only {available / 1e9:.2f} GB of memory is "
                f"available; lower the capacity")
        return needed

    def sample_aside(self, batch_size) -> "Batch":
        """``sample(batch_size)`` that leaves the buffer's generator where it was: for draws that
        are no part of learning (DQN's health probe), so that the batches learning sees, and a
        resumed run's, do not depend on when such a draw was made."""
        state = self._rng.bit_generator.state
        try:
            return self.sample(batch_size)
        finally:
            self._rng.bit_generator.state = state

    @property
    def nbytes(self) -> int:
        """Bytes held by the storage arrays (allocated for the full capacity)."""
        return sum(a.nbytes for a in self._store.values())

    @property
    def bytes_per_transition(self) -> float:
        """nbytes / capacity: bytes per slot."""
        return self.nbytes / self.capacity

    def state_dict(self) -> dict:
        """Everything needed to resume, as {name: np.ndarray}; no object arrays, no pickle.

        The RNG state is a JSON string in a 0-d unicode array.
        """
        state = {name: mapped_copy(a) for name, a in self._store.items()}
        for name in self._scalars + self._fixed:
            state[name] = np.array(int(getattr(self, name)), np.int64)
        state["rng_state"] = np.array(json.dumps(self._rng.bit_generator.state))
        return state

    def load_state_dict(self, state) -> None:
        """Restore from `state_dict()` output (or an `np.load`ed .npz of it).

        Raises ValueError, naming the field, if it comes from a buffer of another layout; every
        field is checked before anything changes, so loading holds a second copy of the storage
        for a moment (an .npz member is read from disk on each access, so each is read once).
        """
        arrays = {name: np.asarray(state[name]) for name in self._store}
        for name, a in self._store.items():
            got = arrays[name]
            if got.shape != a.shape or got.dtype != a.dtype:
                raise ValueError(f"replay state field {name!r} has shape {got.shape} dtype "
                                 f"{got.dtype}, this buffer expects {a.shape} {a.dtype}")
        for name in self._fixed:
            if int(state[name]) != getattr(self, name):
                raise ValueError(f"replay state has {name}={int(state[name])}, "
                                 f"this buffer has {name}={getattr(self, name)}")
        rng_state = json.loads(str(state["rng_state"][()]))
        if rng_state["bit_generator"] != type(self._rng.bit_generator).__name__:
            raise ValueError(f"replay state has a {rng_state['bit_generator']} RNG state, "
                             f"this buffer uses {type(self._rng.bit_generator).__name__}")
        for name, a in self._store.items():
            np.copyto(a, arrays[name])
        for name in self._scalars:
            setattr(self, name, type(getattr(self, name))(state[name]))
        self._rng.bit_generator.state = rng_state
        del arrays
        release_freed_memory()  # the arrays read from disk were heap temporaries (rlkit/memory.py)


def _as_shape(name, value, shape, dtype):
    """`value` as an array of `dtype`; ValueError naming `name` unless it has `shape`."""
    a = np.asarray(value, dtype=dtype)
    if a.shape != shape:
        raise ValueError(f"{name} has shape {a.shape}, expected {shape}")
    return a


class ReplayBuffer(_Ring):
    """FIFO replay of whole transitions for small observations (vectors, discrete states).

    capacity: transitions kept; the oldest is overwritten first.
    obs_shape: shape of one observation, () for a Discrete state id.
    obs_dtype: storage and sample dtype of observations.
    seed: seed of the sampling RNG.
    """

    _scalars = ("_cursor", "_size")

    def __init__(self, capacity, obs_shape, obs_dtype=np.float32, seed=None):
        self.obs_shape = tuple(obs_shape)
        self.obs_dtype = np.dtype(obs_dtype)
        super().__init__(capacity, self._layout(self.obs_shape, self.obs_dtype), seed)
        self._cursor = 0  # next slot to write
        self._size = 0  # slots holding a transition

    @staticmethod
    def _layout(obs_shape, obs_dtype=np.float32):
        return {"obs": (tuple(obs_shape), obs_dtype), "next_obs": (tuple(obs_shape), obs_dtype),
                "actions": ((), np.int64), "rewards": ((), np.float32),
                "terminated": ((), np.bool_)}

    def __len__(self):
        """Number of transitions stored (at most capacity)."""
        return self._size

    def add(self, obs, action, reward, next_obs, terminated, truncated) -> None:
        """Store one transition.

        obs, next_obs: obs_shape. action: int. reward: float. terminated, truncated: bool.
        `truncated` is accepted so that both buffers share one signature; it is not stored,
        because next_obs is stored in full and the target bootstraps from it.
        """
        self.add_batch(np.asarray(obs)[None], [action], [reward], np.asarray(next_obs)[None],
                       [terminated], [truncated])

    def add_batch(self, obs, actions, rewards, next_obs, terminated, truncated) -> None:
        """Store n transitions at once, in row order, e.g. one step of an n-env vector env.

        obs, next_obs: (n, *obs_shape). actions: (n,) int. rewards: (n,) float.
        terminated, truncated: (n,) bool. Equivalent to n calls of `add`.
        With Gymnasium's default NEXT_STEP autoreset the step after an episode end is a reset
        step, not a transition: the caller drops those rows (and passes the real final
        observation as next_obs under SAME_STEP autoreset, from info["final_obs"]).
        """
        actions = np.asarray(actions, np.int64)
        if actions.ndim != 1:
            raise ValueError(f"actions has shape {actions.shape}, expected (n,)")
        n = len(actions)
        rows = {"obs": _as_shape("obs", obs, (n, *self.obs_shape), self.obs_dtype),
                "next_obs": _as_shape("next_obs", next_obs, (n, *self.obs_shape), self.obs_dtype),
                "actions": actions,
                "rewards": _as_shape("rewards", rewards, (n,), np.float32),
                "terminated": _as_shape("terminated", terminated, (n,), np.bool_)}
        _as_shape("truncated", truncated, (n,), np.bool_)
        # Rows beyond the last `capacity` would be overwritten within this call: skip them.
        kept = min(n, self.capacity)
        slots = (self._cursor + np.arange(n - kept, n)) % self.capacity
        for name, a in rows.items():
            self._store[name][slots] = a[n - kept:]
        self._cursor = (self._cursor + n) % self.capacity
        self._size = min(self._size + n, self.capacity)
        self._transitions_added(slots)

    def sample(self, batch_size, n_step: int = 1, gamma: float = 1.0) -> Batch:
        """`batch_size` transitions drawn uniformly with replacement; see `Batch` for shapes.

        Only 1-step transitions (``n_step`` and ``gamma`` keep the signature of
        `FrameReplayBuffer.sample`): rows written by several envs are not in episode order.
        """
        n_step = self._check_n_step(n_step)
        if self._size == 0:
            raise ValueError("cannot sample from an empty ReplayBuffer")
        return self._batch(self._rng.integers(self._size, size=batch_size), n_step, gamma)

    @staticmethod
    def _check_n_step(n_step) -> int:
        if n_step != 1:
            raise ValueError(f"ReplayBuffer samples 1-step transitions only, got n_step={n_step}")
        return 1

    def _batch(self, slots, n_step, gamma) -> Batch:
        """The `Batch` of the transitions in ``slots`` (B,) (n_step is 1, gamma unused)."""
        s = self._store
        return Batch(obs=s["obs"][slots], actions=s["actions"][slots],
                     rewards=s["rewards"][slots], next_obs=s["next_obs"][slots],
                     dones=s["terminated"][slots].astype(np.float32))


class FrameReplayBuffer(_Ring):
    """FIFO replay for frame-stacked image observations that stores each frame once.

    Slot i holds one uint8 frame, the transition taken from the stack that ends at that frame
    (action, reward, terminated), and the frame's age in its episode (capped at stack - 1).
    The stack ending at slot i is rebuilt as slots i - min(k, age_i) for k = stack-1 .. 0: a
    stack never reaches back past its episode's first frame and repeats that frame instead.
    This matches Gymnasium 1.x `FrameStackObservation(env, stack)` with its default
    `padding_type="reset"`, whose reset returns the reset frame `stack` times; an episode whose
    first stack is anything else (e.g. `padding_type="zero"`) is refused.

    Each episode also spends one slot on its final frame (the newest frame of the last
    next_obs), which starts no transition. A transition is sampled only if every frame of its
    stacks is still stored: the oldest slots, whose stacks would reach back across the write
    cursor into frames already overwritten, are never drawn.

    capacity: frame slots (about the number of transitions kept).
    frame_shape: (H, W) of one frame.  stack: frames per observation.
    seed: seed of the sampling RNG.
    """

    _scalars = ("_cursor", "_size", "_count", "_episode_open")
    _fixed = ("stack",)

    def __init__(self, capacity, frame_shape=(84, 84), stack=4, seed=None):
        if capacity < stack + 1:
            raise ValueError(f"capacity must be at least stack + 1 = {stack + 1}, got {capacity}")
        self.frame_shape = tuple(frame_shape)
        self.stack = int(stack)
        super().__init__(capacity, self._layout(self.frame_shape), seed)
        self._cursor = 0  # next slot to write
        self._size = 0  # slots holding a frame
        self._count = 0  # slots holding a transition
        self._episode_open = False  # False: the next add starts an episode
        # Offsets back from a stack's newest slot to its frames, oldest first.
        self._back = np.arange(self.stack - 1, -1, -1)

    @staticmethod
    def _layout(frame_shape=(84, 84)):
        return {"frames": (tuple(frame_shape), np.uint8), "actions": ((), np.int32),
                "rewards": ((), np.float32), "terminated": ((), np.bool_),
                "starts_transition": ((), np.bool_), "age": ((), np.uint8)}

    def __len__(self):
        """Number of transitions stored (a few of the oldest may no longer be sampleable)."""
        return self._count

    def add(self, obs, action, reward, next_obs, terminated, truncated) -> None:
        """Store one transition given full stacked observations, as the env returns them.

        obs, next_obs: (stack, H, W) uint8. action: int. reward: float.
        terminated, truncated: bool; either ends the episode, so the next add starts a new one.
        Only the newest frame of next_obs is written (and, at an episode start, obs's frame).
        Raises ValueError if an episode's first obs is not the reset frame repeated, or if obs
        does not continue the previous next_obs (call `end_episode` when abandoning one).
        """
        shape = (self.stack, *self.frame_shape)
        for name, a in (("obs", obs), ("next_obs", next_obs)):
            # Casting e.g. float frames scaled to [0, 1] would silently store zeros.
            if np.asarray(a).dtype != np.uint8:
                raise ValueError(f"{name} must hold uint8 frames, got {np.asarray(a).dtype}")
        obs = _as_shape("obs", obs, shape, np.uint8)
        next_obs = _as_shape("next_obs", next_obs, shape, np.uint8)
        s = self._store
        if not self._episode_open:
            if not (obs == obs[-1]).all():
                raise ValueError("the first obs of an episode must repeat the reset frame in all "
                                 f"{self.stack} positions (FrameStackObservation with "
                                 "padding_type='reset')")
            self._write_frame(obs[-1], 0)
        elif not np.array_equal(obs[-1], s["frames"][self._cursor - 1]):
            raise ValueError("obs does not continue the previous transition's next_obs; call "
                             "end_episode() before adding the first transition of a new episode")
        i = self._cursor - 1  # the slot of obs's newest frame; -1 wraps to the last slot
        s["actions"][i] = action
        s["rewards"][i] = reward
        s["terminated"][i] = terminated
        s["starts_transition"][i] = True
        self._count += 1
        self._transitions_added(np.array([i % self.capacity]))
        self._write_frame(next_obs[-1], min(int(s["age"][i]) + 1, self.stack - 1))
        self._episode_open = not (terminated or truncated)

    def end_episode(self) -> None:
        """Close the current episode without a terminated/truncated step (e.g. after a resume,
        when the env was reset mid-episode); the next add starts a new episode."""
        self._episode_open = False

    def _write_frame(self, frame, age):
        s = self._store
        c = self._cursor
        if s["starts_transition"][c]:
            self._count -= 1  # overwriting the oldest frame drops its transition
        s["frames"][c] = frame
        s["age"][c] = age
        s["starts_transition"][c] = False  # set by add once this frame's transition is known
        self._cursor = (c + 1) % self.capacity
        self._size = min(self._size + 1, self.capacity)
        self._frame_written(c)

    def _frame_written(self, slot) -> None:
        """Hook: a frame was just written to `slot` (the cursor has moved past it). No-op here."""

    def sample(self, batch_size, n_step: int = 1, gamma: float = 1.0) -> Batch:
        """`batch_size` transitions drawn uniformly (with replacement) among the sampleable ones.

        Returns a `Batch` with obs, next_obs (B, stack, H, W) uint8. With ``n_step`` > 1 each
        transition's reward is the ``gamma``-discounted sum of the rewards of up to n steps
        from it, and next_obs the observation after the last of them (see `Batch`). The
        window stops early, and says so in ``horizons``, where the episode ends (terminated:
        no bootstrap; truncated: bootstrap from the final observation) or where it would reach
        the write cursor (steps not yet taken): it never crosses into another episode.
        """
        n_step = self._check_n_step(n_step)
        return self._batch(self._sample_slots(batch_size), n_step, gamma)

    @staticmethod
    def _check_n_step(n_step) -> int:
        if int(n_step) != n_step or n_step < 1:
            raise ValueError(f"n_step must be a positive integer, got {n_step!r}")
        return int(n_step)

    def _batch(self, slots, n_step, gamma) -> Batch:
        """The `Batch` of the n-step transitions starting at sampleable ``slots`` (B,)."""
        s = self._store
        horizons, rewards, terminated = self._n_step_window(slots, n_step, gamma)
        ends = (slots + horizons) % self.capacity  # slot of next_obs's newest frame
        return Batch(obs=s["frames"][self._stack_slots(slots)],
                     actions=s["actions"][slots].astype(np.int64), rewards=rewards,
                     next_obs=s["frames"][self._stack_slots(ends)],
                     dones=terminated.astype(np.float32), horizons=horizons)

    def _n_step_window(self, slots, n_step, gamma):
        """For transitions starting at ``slots`` (B,): (horizons (B,) int64, discounted reward
        sums (B,) float32, terminated (B,) bool at the last step of each window).

        Step k of a window is slot i + k. It belongs to the window when step k - 1 did not end
        the episode (an episode's last transition is followed by its final frame, which starts
        no transition) and slot i + k is not the write cursor (the oldest slot, from the past).
        """
        s = self._store
        steps = (slots[:, None] + np.arange(n_step)[None, :]) % self.capacity  # (B, n)
        inside = np.ones(steps.shape, bool)
        for k in range(1, n_step):
            previous = steps[:, k - 1]
            inside[:, k] = (inside[:, k - 1] & ~s["terminated"][previous]
                            & s["starts_transition"][steps[:, k]] & (steps[:, k] != self._cursor))
        horizons = inside.sum(axis=1)
        discounts = np.float32(gamma) ** np.arange(n_step, dtype=np.float32)
        rewards = (s["rewards"][steps] * discounts * inside).sum(axis=1, dtype=np.float32)
        last = steps[np.arange(len(slots)), horizons - 1]
        return horizons.astype(np.int64), rewards, s["terminated"][last]

    def _sample_slots(self, batch_size):
        """(batch_size,) int64 slots of sampleable transitions, by rejection sampling."""
        if self._count == 0:
            raise ValueError("cannot sample from an empty FrameReplayBuffer")
        found, n_found = [], 0
        for _ in range(_MAX_SAMPLE_ROUNDS):
            slots = self._rng.integers(self._size, size=batch_size)
            ok = self._sampleable(slots)
            found.append(slots[ok])
            n_found += int(ok.sum())
            if n_found >= batch_size:
                return np.concatenate(found)[:batch_size]
        raise RuntimeError(f"found no sampleable transition in {_MAX_SAMPLE_ROUNDS} rounds: "
                           f"the buffer holds {self._count} transitions but none with its whole "
                           "stack still stored; use a larger capacity")

    def _sampleable(self, slots) -> np.ndarray:
        """(B,) bool: whether the slots (B,) start a transition whose stack is wholly stored.

        A transition's next frame (slot + 1) is written right after it and overwritten after
        it, so it is present whenever the transition is; what can be missing are the oldest
        frames of its stack: they must not precede the oldest stored slot. Once false for a
        slot, this stays false until the slot is overwritten (the oldest slot only advances).
        """
        s = self._store
        oldest = self._cursor if self._size == self.capacity else 0
        position = (slots - oldest) % self.capacity
        return s["starts_transition"][slots] & (position >= s["age"][slots])

    def _stack_slots(self, ends):
        """(B, stack) slot indices of the stacks whose newest frames are at ``ends`` (B,).

        Frame k of the stack is slot end - min(stack - 1 - k, age_end): it never reaches back
        past its episode's first frame and repeats that frame instead.
        """
        age = self._store["age"][ends].astype(np.int64)
        back = np.minimum(self._back[None, :], age[:, None])
        return (ends[:, None] - back) % self.capacity


class _Prioritized:
    """Proportional prioritised replay (Schaul et al. 2016, sec. 3.3), mixed into a `_Ring`
    buffer that provides `_check_n_step`, `_batch(slots, n_step, gamma)` and calls the
    `_transitions_added` hook (see `PrioritizedReplayBuffer`, `PrioritizedFrameReplayBuffer`).

    Slot i is drawn with probability P(i) = p_i ** alpha / sum_k p_k ** alpha. The sum tree
    holds the masses p_i ** alpha: a new transition enters at the largest mass ever set (1.0 at
    first), `update_priorities` sets (|td| + eps) ** alpha, and a slot holding no sampleable
    transition has mass 0 and is never drawn. Sampling is stratified as in the paper: one
    uniform point in each of B equal segments of the total mass.
    """

    alpha: float
    eps: float

    def _init_priorities(self, alpha, eps):
        if not (np.isfinite(alpha) and alpha >= 0):
            raise ValueError(f"alpha must be a finite number >= 0, got {alpha!r}")
        if not (np.isfinite(eps) and eps > 0):
            raise ValueError(f"eps must be a finite number > 0, got {eps!r}")
        self.alpha = float(alpha)
        self.eps = float(eps)
        self._priorities = SumTree(self.capacity, initial_max=1.0)

    @classmethod
    def _require_memory(cls, capacity, layout):
        # The sum tree: 2 * (power of two >= capacity) float64 nodes, under 4 per slot.
        return super()._require_memory(capacity, {**layout, "sum_tree": ((4,), np.float64)})

    @property
    def nbytes(self) -> int:
        """Bytes held by the storage arrays and the sum tree."""
        return super().nbytes + self._priorities._tree.nbytes

    @property
    def priorities(self) -> np.ndarray:
        """(capacity,) float64 read-only: each slot's sampling mass p ** alpha (0: never drawn)."""
        return self._priorities.leaves

    @property
    def max_priority(self) -> float:
        """The mass new transitions enter at: the largest ever set, 1.0 at first."""
        return self._priorities.max_priority

    def _transitions_added(self, slots) -> None:
        self._priorities.set(slots, self._priorities.max_priority)

    def sample(self, batch_size, n_step: int = 1, gamma: float = 1.0, beta: float = 0.4) -> Batch:
        """`batch_size` transitions drawn with replacement, slot i with probability P(i) =
        p_i ** alpha / sum_k p_k ** alpha, stratified over B equal segments of the total (so a
        batch comes out in slot order, not shuffled). Same `Batch` as the uniform buffer's
        sample (n_step, gamma: see there) plus:

        slots: (B,) int64, for `update_priorities`.
        weights: (B,) float32, (N * P(i)) ** -beta / max over the batch, i.e.
            (P(i) / min_batch P) ** -beta in (0, 1]; N cancels. beta in [0, 1]: 0 gives all
            ones, 1 fully corrects the sampling bias.
        """
        n_step = self._check_n_step(n_step)
        if not 0.0 <= beta <= 1.0:
            raise ValueError(f"beta must be in [0, 1], got {beta!r}")
        if len(self) == 0:
            raise ValueError(f"cannot sample from an empty {type(self).__name__}")
        if not self._priorities.total > 0:
            raise RuntimeError(f"{type(self).__name__} holds {len(self)} transitions but none "
                               "is sampleable (for frames: none with its whole stack still "
                               "stored; use a larger capacity)")
        slots = self._priorities.sample_stratified(batch_size, self._rng)
        mass = self._priorities.get(slots)
        weights = (mass / mass.min()) ** -float(beta)
        return self._batch(slots, n_step, gamma)._replace(slots=slots,
                                                          weights=weights.astype(np.float32))

    def update_priorities(self, slots, td_errors) -> None:
        """Set p = |td| + eps, i.e. mass (|td| + eps) ** alpha, for the transitions at `slots`.

        slots: (B,) int, a batch's `slots`. td_errors: (B,) float, NumPy (not device) array.
        Where a slot repeats, its last TD error wins. A slot that holds no sampleable
        transition any more (its mass is 0: e.g. a frame slot that fell behind the write
        cursor) is left at 0. A slot overwritten by a new transition since it was sampled
        would take the old transition's priority: update before adding more.
        """
        slots = np.asarray(slots)
        td = np.asarray(td_errors, np.float64)
        if slots.ndim != 1 or td.shape != slots.shape:
            raise ValueError(f"slots and td_errors must have the same shape (B,), got "
                             f"{slots.shape} and {td.shape}")
        if not np.isfinite(td).all():
            raise ValueError(f"td_errors must be finite, got {td[~np.isfinite(td)][:5]}")
        live = self._priorities.get(slots) > 0
        mass = (np.abs(td[live]) + self.eps) ** self.alpha
        # Mass 0 means "not sampleable": keep live ones above 0 even if the power underflows.
        self._priorities.set(slots[live], np.maximum(mass, np.finfo(np.float64).tiny))

    def state_dict(self) -> dict:
        """The uniform buffer's state plus priorities (capacity,) float64 (the sum tree's
        leaves; its sums are rebuilt on load), max_priority and alpha (0-d float64)."""
        state = super().state_dict()
        state["priorities"] = self._priorities.leaves.copy()
        state["max_priority"] = np.array(self._priorities.max_priority, np.float64)
        state["alpha"] = np.array(self.alpha, np.float64)
        return state

    def load_state_dict(self, state) -> None:
        """Restore from `state_dict()` output of a prioritised buffer of the same layout and
        alpha; ValueError, before anything changes, otherwise."""
        missing = [k for k in ("priorities", "max_priority", "alpha") if k not in state]
        if missing:
            raise ValueError(f"replay state has no {', '.join(missing)}: it was saved by a "
                             f"uniform buffer, not a {type(self).__name__}")
        priorities = np.asarray(state["priorities"])
        if priorities.shape != (self.capacity,) or priorities.dtype != np.float64:
            raise ValueError(f"replay state field 'priorities' has shape {priorities.shape} "
                             f"dtype {priorities.dtype}, this buffer expects "
                             f"({self.capacity},) float64")
        if float(state["alpha"]) != self.alpha:
            raise ValueError(f"replay state has alpha={float(state['alpha'])}, "
                             f"this buffer has alpha={self.alpha}")
        max_priority = float(state["max_priority"])
        super().load_state_dict(state)
        self._priorities.load(priorities, max_priority)


class PrioritizedReplayBuffer(_Prioritized, ReplayBuffer):
    """`ReplayBuffer` with proportional prioritised sampling (see `_Prioritized`).

    alpha: priority exponent (0: uniform). eps: added to |TD error| so no priority is 0.
    Other arguments as `ReplayBuffer`.
    """

    def __init__(self, capacity, obs_shape, obs_dtype=np.float32, seed=None,
                 alpha: float = 0.6, eps: float = 1e-6):
        super().__init__(capacity, obs_shape, obs_dtype, seed)
        self._init_priorities(alpha, eps)


class PrioritizedFrameReplayBuffer(_Prioritized, FrameReplayBuffer):
    """`FrameReplayBuffer` with proportional prioritised sampling (see `_Prioritized`).

    A slot has mass above 0 exactly while it is sampleable (`_sampleable`): writing a frame
    clears the mass of the transition it overwrites and of the slots just after the cursor
    whose stacks now reach back past the oldest stored frame (they never become sampleable
    again before being overwritten), and final frames of episodes never get one.

    alpha: priority exponent (0: uniform over sampleable slots). eps: added to |TD error|.
    Other arguments as `FrameReplayBuffer`.
    """

    def __init__(self, capacity, frame_shape=(84, 84), stack=4, seed=None,
                 alpha: float = 0.6, eps: float = 1e-6):
        super().__init__(capacity, frame_shape, stack, seed)
        self._init_priorities(alpha, eps)

    def _frame_written(self, slot) -> None:
        # Only slot and the next stack - 1 (stack ages are capped at stack - 1) can have lost
        # their sampleability with this write.
        near = (slot + np.arange(self.stack)) % self.capacity
        lost = near[(self._priorities.get(near) > 0) & ~self._sampleable(near)]
        if len(lost):
            self._priorities.set(lost, 0.0)
