"""Replay memories: FIFO order, frame stacks rebuilt exactly as the env produced them, resume."""
import io

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.wrappers import FrameStackObservation

from rlkit.replay import Batch, FrameReplayBuffer, ReplayBuffer


# ---------------------------------------------------------------- ReplayBuffer (vector obs)

def fill_vector(buf, steps, start=0):
    """Transition t has obs [t, -t], next_obs [t + 1, ...], action t % 3, reward t / 10,
    terminated every 5th step, truncated every 7th (unless terminated)."""
    for t in range(start, start + steps):
        buf.add([t, -t], t % 3, t / 10, [t + 1, -t - 1], t % 5 == 4, t % 7 == 6)


def test_vector_fifo_overwrites_oldest_exact_slots():
    buf = ReplayBuffer(5, (2,), seed=0)
    fill_vector(buf, 8)
    assert len(buf) == 5
    # Transition t lives in slot t % 5: 5, 6, 7 replaced 0, 1, 2.
    np.testing.assert_array_equal(buf.state_dict()["obs"][:, 0], [5, 6, 7, 3, 4])
    seen = np.unique(buf.sample(2000).obs[:, 0])
    np.testing.assert_array_equal(seen, [3, 4, 5, 6, 7])


def test_vector_shapes_dtypes_and_row_contents():
    buf = ReplayBuffer(50, (2,), seed=1)
    fill_vector(buf, 30)
    b = buf.sample(64)
    assert isinstance(b, Batch)
    assert b.obs.shape == b.next_obs.shape == (64, 2) and b.obs.dtype == np.float32
    assert b.actions.shape == (64,) and b.actions.dtype == np.int64
    assert b.rewards.dtype == b.dones.dtype == np.float32
    t = b.obs[:, 0].astype(int)
    np.testing.assert_array_equal(b.next_obs[:, 0], t + 1)
    np.testing.assert_array_equal(b.actions, t % 3)
    np.testing.assert_allclose(b.rewards, t / 10, rtol=1e-6)


def test_vector_dones_are_terminated_only():
    buf = ReplayBuffer(40, (2,), seed=2)
    fill_vector(buf, 35)
    b = buf.sample(2000)
    t = b.obs[:, 0].astype(int)
    np.testing.assert_array_equal(b.dones, (t % 5 == 4).astype(np.float32))
    truncated_only = (t % 7 == 6) & (t % 5 != 4)
    assert truncated_only.any() and not b.dones[truncated_only].any()


def test_discrete_observations():
    buf = ReplayBuffer(10, (), obs_dtype=np.int64, seed=0)
    buf.add(3, 1, 0.0, 4, False, False)
    b = buf.sample(4)
    assert b.obs.shape == (4,) and b.obs.dtype == np.int64 and (b.next_obs == 4).all()


def test_vector_batch_add_equals_sequential_adds():
    rng = np.random.default_rng(0)
    seq, vec = ReplayBuffer(7, (3,), seed=5), ReplayBuffer(7, (3,), seed=5)
    for n in (3, 3, 1, 4, 10):  # wraps the ring several times; the last batch exceeds capacity
        obs, next_obs = rng.normal(size=(n, 3)), rng.normal(size=(n, 3))
        act, rew = rng.integers(4, size=n), rng.normal(size=n)
        term, trunc = rng.random(n) < 0.3, rng.random(n) < 0.3
        vec.add_batch(obs, act, rew, next_obs, term, trunc)
        for k in range(n):
            seq.add(obs[k], act[k], rew[k], next_obs[k], term[k], trunc[k])
        assert len(seq) == len(vec)
    for name, a in seq.state_dict().items():
        np.testing.assert_array_equal(vec.state_dict()[name], a, err_msg=name)
    for x, y in zip(seq.sample(16), vec.sample(16)):
        np.testing.assert_array_equal(x, y)


def test_add_rejects_wrong_shape():
    buf = ReplayBuffer(10, (4,))
    with pytest.raises(ValueError, match=r"obs has shape \(1, 3\), expected \(1, 4\)"):
        buf.add(np.zeros(3), 0, 0.0, np.zeros(4), False, False)


# ---------------------------------------------------------------- FrameReplayBuffer

class EpisodeFrames(gym.Env):
    """Frames that say where they come from: pixel [0, 0] = episode id, [0, 1] = step.
    Episodes last 1..12 steps and end terminated or truncated at random."""

    observation_space = gym.spaces.Box(0, 255, (2, 3), np.uint8)
    action_space = gym.spaces.Discrete(6)

    def __init__(self):
        self.episode = -1

    def _frame(self):
        f = np.zeros((2, 3), np.uint8)
        f[0, 0], f[0, 1], f[1] = self.episode, self.t, 7
        return f

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.episode += 1
        self.t = 0
        self.length = int(self.np_random.integers(1, 13))
        return self._frame(), {}

    def step(self, action):
        self.t += 1
        end = self.t == self.length
        terminated = end and bool(self.np_random.random() < 0.5)
        return self._frame(), float(self.t), terminated, end and not terminated, {}


def run_env_into(buf, steps, check_every=None, check=None):
    """Play `steps` random transitions of FrameStackObservation(EpisodeFrames, stack) into
    `buf`; return {(episode, step): (obs, action, reward, next_obs, terminated, truncated)}."""
    env = FrameStackObservation(EpisodeFrames(), buf.stack)
    obs, _ = env.reset(seed=0)
    played = {}
    for n in range(steps):
        action = int(env.action_space.sample())
        next_obs, reward, term, trunc, _ = env.step(action)
        buf.add(obs, action, reward, next_obs, term, trunc)
        played[tuple(obs[-1, 0, :2])] = (obs, action, reward, next_obs, term, trunc)
        obs = env.reset()[0] if term or trunc else next_obs
        if check_every and n % check_every == 0:
            check(played)
    return played


def assert_batch_matches_played(batch, played):
    for k in range(len(batch.actions)):
        obs, action, reward, next_obs, term, _ = played[tuple(batch.obs[k, -1, 0, :2])]
        # Never mixes episodes: every frame of both stacks carries the newest frame's episode id.
        assert (batch.obs[k, :, 0, 0] == obs[-1, 0, 0]).all()
        assert (batch.next_obs[k, :, 0, 0] == obs[-1, 0, 0]).all()
        np.testing.assert_array_equal(batch.obs[k], obs)
        np.testing.assert_array_equal(batch.next_obs[k], next_obs)
        assert (batch.actions[k], batch.rewards[k], batch.dones[k]) == (action, reward, term)


def test_sampled_stacks_equal_the_stacks_frame_stack_observation_produced():
    """Every sampled transition, while the ring wraps many times, is exactly a transition the
    wrapped env produced: stacks never cross an episode start (they repeat the reset frame, as
    FrameStackObservation's default padding does), never read an overwritten slot, and
    dones = terminated while truncated transitions keep dones = 0."""
    buf = FrameReplayBuffer(40, frame_shape=(2, 3), stack=4, seed=0)
    sampled = []

    def check(played):
        b = buf.sample(64)
        assert_batch_matches_played(b, played)
        sampled.append(b)

    played = run_env_into(buf, 600, check_every=10, check=check)
    steps = np.concatenate([b.obs[:, -1, 0, 1] for b in sampled])
    assert (steps == 0).any() and (steps >= 3).any()  # episode starts and full stacks both seen
    truncated = [played[tuple(o[-1, 0, :2])][5] for b in sampled for o in b.obs]
    dones = np.concatenate([b.dones for b in sampled])
    assert any(truncated) and not dones[np.array(truncated)].any()
    assert dones.any()


def test_stack_at_episode_start_repeats_first_frame():
    buf = FrameReplayBuffer(10, frame_shape=(1, 1), stack=4, seed=0)
    first, second = np.full((1, 1), 11, np.uint8), np.full((1, 1), 12, np.uint8)
    obs = np.stack([first] * 4)
    next_obs = np.stack([first] * 3 + [second])
    buf.add(obs, 2, 1.0, next_obs, False, False)
    b = buf.sample(3)
    np.testing.assert_array_equal(b.obs[:, :, 0, 0], [[11, 11, 11, 11]] * 3)
    np.testing.assert_array_equal(b.next_obs[:, :, 0, 0], [[11, 11, 11, 12]] * 3)


def add_long_episode(buf, steps):
    """One episode of `steps` transitions; frame of step t holds t as (t % 256, t // 256)."""
    def frame(t):
        return np.array([[t % 256, t // 256]], np.uint8)
    stack = [frame(0)] * buf.stack
    for t in range(steps):
        next_stack = stack[1:] + [frame(t + 1)]
        buf.add(np.stack(stack), 0, 0.0, np.stack(next_stack), False, False)
        stack = next_stack


def decode_step(frames):
    """Step numbers of `add_long_episode` frames (..., 1, 2) -> (...)."""
    return frames[..., 0, 0].astype(int) + 256 * frames[..., 0, 1].astype(int)


def test_fifo_and_write_cursor_region_never_sampled():
    capacity, steps = 20, 50
    buf = FrameReplayBuffer(capacity, frame_shape=(1, 2), stack=4, seed=3)
    add_long_episode(buf, steps)
    # Frame t (t = 0 .. 50) was written to slot t % 20: the slot keeps the newest such t.
    np.testing.assert_array_equal(decode_step(buf.state_dict()["frames"]),
                                  [max(t for t in range(steps + 1) if t % capacity == j)
                                   for j in range(capacity)])
    # Frames 31..50 are stored. Transition t needs frames t-3..t+1, so exactly t = 34..49 can
    # be sampled; 31..33 would read across the write cursor into overwritten frames.
    b = buf.sample(3000)
    t = decode_step(b.obs[:, -1])
    np.testing.assert_array_equal(np.unique(t), np.arange(34, 50))
    np.testing.assert_array_equal(decode_step(b.obs), t[:, None] + np.arange(-3, 1))
    np.testing.assert_array_equal(decode_step(b.next_obs), t[:, None] + np.arange(-2, 2))
    assert len(buf) == capacity - 1  # every stored frame but the newest starts a transition


def test_frame_shapes_dtypes_and_bytes_per_transition():
    buf = FrameReplayBuffer(1000, seed=0)
    rng = np.random.default_rng(0)
    stack = rng.integers(0, 256, (1, 84, 84), np.uint8).repeat(4, axis=0)
    for _ in range(10):
        next_stack = np.concatenate([stack[1:], rng.integers(0, 256, (1, 84, 84), np.uint8)])
        buf.add(stack, 5, -1.0, next_stack, False, False)
        stack = next_stack
    b = buf.sample(32)
    assert b.obs.shape == b.next_obs.shape == (32, 4, 84, 84)
    assert b.obs.dtype == b.next_obs.dtype == np.uint8
    assert b.actions.shape == (32,) and b.actions.dtype == np.int64
    assert b.rewards.dtype == b.dones.dtype == np.float32
    assert buf.bytes_per_transition <= 7200
    assert buf.nbytes == 1000 * (84 * 84 + 4 + 4 + 1 + 1 + 1)


def test_refuses_zero_padded_first_stack_and_discontinuous_obs():
    buf = FrameReplayBuffer(10, frame_shape=(1, 1), stack=2)
    zero_padded = np.array([[[0]], [[9]]], np.uint8)
    with pytest.raises(ValueError, match="padding_type='reset'"):
        buf.add(zero_padded, 0, 0.0, zero_padded, False, False)
    a, b, c = (np.full((2, 1, 1), v, np.uint8) for v in (1, 2, 3))
    buf.add(a, 0, 0.0, b, False, False)
    with pytest.raises(ValueError, match="end_episode"):
        buf.add(c, 0, 0.0, c, False, False)  # a new episode without closing the old one
    buf.end_episode()
    buf.add(c, 0, 0.0, c, False, False)
    assert len(buf) == 2
    with pytest.raises(ValueError, match="uint8 frames, got float32"):
        buf.add(c / np.float32(255), 0, 0.0, c, False, False)


# ---------------------------------------------------------------- both buffers

def filled_vector_buffer(seed):
    buf = ReplayBuffer(30, (2,), seed=seed)
    fill_vector(buf, 45)
    return buf


def filled_frame_buffer(seed):
    buf = FrameReplayBuffer(40, frame_shape=(2, 3), stack=4, seed=seed)
    run_env_into(buf, 100)
    return buf


@pytest.mark.parametrize("make", [filled_vector_buffer, filled_frame_buffer])
def test_state_dict_npz_round_trip_gives_identical_samples(make):
    original = make(seed=0)
    for _ in range(3):
        original.sample(8)  # advance the RNG so its state is not the seed's
    f = io.BytesIO()
    np.savez(f, **original.state_dict())
    f.seek(0)
    restored = make(seed=99)
    with np.load(f, allow_pickle=False) as saved:
        restored.load_state_dict(saved)
    assert len(restored) == len(original)
    for _ in range(5):
        for x, y in zip(original.sample(16), restored.sample(16)):
            np.testing.assert_array_equal(x, y)


def test_load_state_dict_refuses_another_layout():
    state = FrameReplayBuffer(10, frame_shape=(2, 3)).state_dict()
    with pytest.raises(ValueError, match="'frames' has shape"):
        FrameReplayBuffer(11, frame_shape=(2, 3)).load_state_dict(state)
    with pytest.raises(ValueError, match="stack=4"):
        FrameReplayBuffer(10, frame_shape=(2, 3), stack=3).load_state_dict(state)


def test_absurd_capacity_is_refused_with_sizes_in_gb():
    with pytest.raises(ValueError, match=r"capacity 10,000,000,000 needs 70[0-9,.]* GB .* "
                                         r"only [0-9.]+ GB of memory is available"):
        FrameReplayBuffer(10**10)
    with pytest.raises(ValueError, match="GB"):
        ReplayBuffer(10**12, (8,))
    assert FrameReplayBuffer.check_capacity(1000, frame_shape=(84, 84)) == 1000 * 7067


def test_sampling_empty_buffers_is_an_error():
    with pytest.raises(ValueError, match="empty"):
        ReplayBuffer(5, (1,)).sample(1)
    with pytest.raises(ValueError, match="empty"):
        FrameReplayBuffer(5, frame_shape=(1, 1)).sample(1)
