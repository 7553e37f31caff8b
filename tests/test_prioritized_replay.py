"""Prioritised replay (Schaul et al. 2016, proportional): the sum tree, sampling frequencies,
importance weights, priorities of new and updated transitions, frame slots that must never be
drawn, and resume."""
import io
import math

import numpy as np
import pytest
from scipy import stats

from rlkit.replay import (Batch, FrameReplayBuffer, PrioritizedFrameReplayBuffer,
                          PrioritizedReplayBuffer, ReplayBuffer)
from rlkit.sum_tree import SumTree
from test_replay import (add_long_episode, assert_batch_matches_played, decode_step, fill_vector,
                         run_env_into)


# ---------------------------------------------------------------- SumTree

def internal_nodes_are_sums(tree):
    t = tree._tree
    parents = np.arange(1, tree._first_leaf)
    return np.array_equal(t[parents], t[2 * parents] + t[2 * parents + 1])


@pytest.mark.parametrize("capacity", [1, 2, 7, 64, 1000])
def test_sum_tree_total_is_the_sum_of_leaves_after_random_updates(capacity):
    rng = np.random.default_rng(capacity)
    tree, reference, largest = SumTree(capacity), np.zeros(capacity), 1.0
    for _ in range(200):
        n = int(rng.integers(1, 40))
        idx = rng.integers(capacity, size=n)  # repeats: the last value of an index wins
        values = rng.exponential(size=n) * (rng.random(n) < 0.8)  # some zeros
        tree.set(idx, values)
        largest = max(largest, values.max())
        for i, v in zip(idx, values):
            reference[i] = v
        np.testing.assert_array_equal(tree.leaves, reference)
        assert tree.total == pytest.approx(math.fsum(reference), rel=1e-12, abs=1e-300)
    assert internal_nodes_are_sums(tree)
    assert tree.max_priority == largest  # the largest ever set, not the largest now
    rebuilt = SumTree(capacity)
    rebuilt.load(tree.leaves, tree.max_priority)
    np.testing.assert_array_equal(rebuilt._tree, tree._tree)  # bit for bit


def test_sum_tree_single_and_batched_updates_build_the_same_tree():
    rng = np.random.default_rng(0)
    one, many = SumTree(37), SumTree(37)
    for _ in range(50):
        idx, values = rng.choice(37, size=5, replace=False), rng.random(5)
        many.set(idx, values)
        for i, v in zip(idx, values):
            one.set([i], v)
    np.testing.assert_array_equal(one._tree, many._tree)


def test_sum_tree_find_matches_prefix_sums_and_never_returns_a_zero_leaf():
    rng = np.random.default_rng(1)
    leaves = rng.exponential(size=300) * (rng.random(300) < 0.5)
    leaves[:3] = 0.0  # leading and trailing zero leaves
    leaves[-3:] = 0.0
    tree = SumTree(300)
    tree.set(np.arange(300), leaves)
    values = rng.random(100_000) * tree.total
    found = tree.find(values)
    bounds = np.cumsum(leaves)
    expected = np.searchsorted(bounds, values, side="right")
    for k in np.flatnonzero(found != expected):  # only rounding right at a boundary may differ
        assert np.abs(bounds - values[k]).min() < 1e-9 * tree.total
    assert (leaves[found] > 0).all()
    positive = np.flatnonzero(leaves > 0)
    # The ends: 0 finds the first positive leaf; the total (or past it) the last one.
    np.testing.assert_array_equal(tree.find([0.0, tree.total, tree.total * (1 + 1e-12), 1e300]),
                                  [positive[0]] + [positive[-1]] * 3)


def test_sum_tree_stratified_sampling_takes_one_point_per_segment():
    tree = SumTree(5)
    tree.set(np.arange(5), [1.0, 0.0, 2.0, 3.0, 0.0])
    for seed in range(20):  # segments [k, k + 1) of the total 6, whatever the uniforms
        np.testing.assert_array_equal(tree.sample_stratified(6, np.random.default_rng(seed)),
                                      [0, 2, 2, 3, 3, 3])
    # A point on a boundary belongs to the leaf that starts there.
    np.testing.assert_array_equal(tree.find([0.0, 1.0, 3.0, 5.999]), [0, 2, 3, 3])
    empty = SumTree(4)
    with pytest.raises(ValueError, match="every priority is 0"):
        empty.sample_stratified(2, np.random.default_rng(0))


def test_sum_tree_rejects_bad_input():
    tree = SumTree(4)
    with pytest.raises(ValueError, match=r"integers in \[0, 4\)"):
        tree.set([4], 1.0)
    with pytest.raises(ValueError, match=r"integers in \[0, 4\)"):
        tree.set([-1, 0], [1.0, 1.0])
    with pytest.raises(ValueError, match="finite and >= 0"):
        tree.set([0, 1], [1.0, np.nan])
    with pytest.raises(ValueError, match="finite and >= 0"):
        tree.set([2], -1.0)
    with pytest.raises(ValueError, match="positive integer"):
        SumTree(0)
    assert tree.total == 0.0 and tree.max_priority == 1.0


# ---------------------------------------------------------------- vector buffer

def slot_counts(buf, capacity, draws, batch=100, **kw):
    return np.bincount(np.concatenate([buf.sample(batch, **kw).slots
                                       for _ in range(draws // batch)]), minlength=capacity)


def chi_square_p(counts, probabilities):
    return stats.chisquare(counts, counts.sum() * probabilities).pvalue


def test_sampling_frequencies_follow_priorities():
    capacity, alpha = 10, 0.7
    buf = PrioritizedReplayBuffer(capacity, (2,), seed=0, alpha=alpha)
    fill_vector(buf, capacity)
    td = np.array([1.0, 2, 3, 4, 5, 6, 7, 8, 9, 10]) * np.array([1, -1] * 5)  # signs ignored
    buf.update_priorities(np.arange(capacity), td)
    p = (np.abs(td) + buf.eps) ** alpha
    p /= p.sum()
    counts = slot_counts(buf, capacity, 200_000)
    assert chi_square_p(counts, p) > 1e-4
    assert chi_square_p(counts, np.full(capacity, 0.1)) < 1e-12  # the test can tell uniform
    # One big stratified batch hits each slot B * P(i) times to within 2.
    big = np.bincount(buf.sample(100_000).slots, minlength=capacity)
    assert np.abs(big - 100_000 * p).max() < 2
    # Rows are the transitions stored at the returned slots (transition t in slot t).
    b = buf.sample(64)
    np.testing.assert_array_equal(b.obs[:, 0], b.slots)
    np.testing.assert_array_equal(b.actions, b.slots % 3)


def test_importance_weights_hand_computed():
    # eps = 1 and alpha = 0.5 make the masses (|td| + 1) ** 0.5 = 1, 2, 3: P = 1/6, 2/6, 3/6.
    buf = PrioritizedReplayBuffer(3, (2,), seed=0, alpha=0.5, eps=1.0)
    fill_vector(buf, 3)
    buf.update_priorities([0, 1, 2], [0.0, -3.0, 8.0])
    np.testing.assert_allclose(buf.priorities, [1, 2, 3])
    P, N = np.array([1, 2, 3]) / 6, 3
    for beta in (0.0, 0.5, 1.0):
        b = buf.sample(6, beta=beta)  # six segments of width 1: slots 0, 1, 1, 2, 2, 2
        np.testing.assert_array_equal(b.slots, [0, 1, 1, 2, 2, 2])
        w = (N * P[b.slots]) ** -beta
        np.testing.assert_allclose(b.weights, w / w.max(), rtol=1e-6)
        assert b.weights.dtype == np.float32 and b.slots.dtype == np.int64
    b = buf.sample(6, beta=1.0)
    np.testing.assert_allclose(b.weights, [1, 1 / 2, 1 / 2, 1 / 3, 1 / 3, 1 / 3], rtol=1e-6)
    b = buf.sample(6, beta=0.5)
    np.testing.assert_allclose(b.weights, [1, 2 ** -.5, 2 ** -.5, 3 ** -.5, 3 ** -.5, 3 ** -.5],
                               rtol=1e-6)
    # Two segments [0, 3) and [3, 6): the batch max is over its own members only.
    b = buf.sample(2, beta=1.0)
    assert b.slots[1] == 2
    np.testing.assert_allclose(b.weights, [1, P[b.slots[0]] / P[2]], rtol=1e-6)


def test_new_transitions_enter_at_the_max_priority():
    buf = PrioritizedReplayBuffer(8, (2,), seed=0, alpha=0.5)
    fill_vector(buf, 3)
    np.testing.assert_array_equal(buf.priorities, [1, 1, 1, 0, 0, 0, 0, 0])
    buf.update_priorities([0, 1], [15.0, 0.0])
    top = (15.0 + buf.eps) ** 0.5
    assert buf.max_priority == top
    fill_vector(buf, 2, start=3)
    np.testing.assert_allclose(buf.priorities[:5], [top, buf.eps ** 0.5, 1, top, top])
    # The max is the largest ever set: lowering every priority does not lower it.
    buf.update_priorities(np.arange(5), np.zeros(5))
    fill_vector(buf, 1, start=5)
    assert buf.priorities[5] == top and buf.max_priority == top
    # add_batch writes several at once, all at the max; overwriting a slot resets it.
    buf.add_batch(np.zeros((4, 2)), [0] * 4, [0.0] * 4, np.zeros((4, 2)), [False] * 4,
                  [False] * 4)
    np.testing.assert_array_equal(buf.priorities[[6, 7, 0, 1]], top)


def test_update_priorities_changes_frequencies():
    buf = PrioritizedReplayBuffer(4, (2,), seed=1, alpha=1.0)
    fill_vector(buf, 4)
    before = slot_counts(buf, 4, 20_000)
    assert chi_square_p(before, np.full(4, 0.25)) > 1e-4  # all at the max priority: uniform
    buf.update_priorities([2, 0, 1, 3], [9.0, 1.0, 1.0, 1.0])  # masses 9, 1, 1, 1 (+ eps)
    after = slot_counts(buf, 4, 20_000)
    assert chi_square_p(after, np.array([1, 1, 9, 1]) / 12) > 1e-4
    buf.update_priorities([2, 2], [9.0, 0.0])  # repeated slot: the last one wins
    assert buf.priorities[2] == pytest.approx(buf.eps)
    assert slot_counts(buf, 4, 20_000)[2] < 10


def test_alpha_zero_is_uniform_and_beta_zero_gives_unit_weights():
    buf = PrioritizedReplayBuffer(5, (2,), seed=0, alpha=0.0)
    fill_vector(buf, 5)
    buf.update_priorities(np.arange(5), [0.0, 1.0, 10.0, 100.0, 1e6])
    np.testing.assert_array_equal(buf.priorities, 1.0)
    b = buf.sample(50, beta=1.0)
    np.testing.assert_array_equal(b.weights, 1.0)


def test_prioritized_vector_buffer_refuses_bad_arguments():
    buf = PrioritizedReplayBuffer(4, (2,), seed=0)
    with pytest.raises(ValueError, match="empty PrioritizedReplayBuffer"):
        buf.sample(2)
    fill_vector(buf, 2)
    with pytest.raises(ValueError, match=r"beta must be in \[0, 1\]"):
        buf.sample(2, beta=1.5)
    with pytest.raises(ValueError, match="1-step transitions only"):
        buf.sample(2, n_step=3)
    with pytest.raises(ValueError, match="same shape"):
        buf.update_priorities([0, 1], [1.0])
    with pytest.raises(ValueError, match="finite"):
        buf.update_priorities([0, 1], [1.0, np.nan])
    with pytest.raises(ValueError, match="alpha"):
        PrioritizedReplayBuffer(4, (2,), alpha=-1)
    with pytest.raises(ValueError, match="eps"):
        PrioritizedReplayBuffer(4, (2,), eps=0.0)
    assert isinstance(buf.sample(2), Batch)


# ---------------------------------------------------------------- frame buffer

def sampleable_from_state(state, capacity):
    """Which slots may be drawn, from a buffer's saved fields alone: slots that start a
    transition whose stack (age + 1 frames back) is not older than the oldest stored frame."""
    full = int(state["_size"]) == capacity
    oldest = int(state["_cursor"]) if full else 0
    position = (np.arange(capacity) - oldest) % capacity
    return state["starts_transition"] & (position >= state["age"])


def test_frame_slots_with_priority_are_exactly_the_sampleable_ones_while_the_ring_wraps():
    """Adversarial: after every add, every slot gets a random large TD error, which would give
    the final frames of episodes and the stale slots behind the cursor a priority if
    update_priorities did not leave unsampleable slots at 0."""
    capacity = 40
    buf = PrioritizedFrameReplayBuffer(capacity, frame_shape=(2, 3), stack=4, seed=0)
    rng = np.random.default_rng(0)
    seen = {"stale": 0, "final": 0, "batches": 0}

    def check(played):
        state = buf.state_dict()
        ok = sampleable_from_state(state, capacity)
        np.testing.assert_array_equal(buf.priorities > 0, ok)
        written = np.arange(capacity) < int(state["_size"])
        newest = (int(state["_cursor"]) - 1) % capacity
        final = written & ~state["starts_transition"]
        final[newest] = False  # the newest frame waits for its transition
        seen["final"] += int(final.sum())
        seen["stale"] += int((state["starts_transition"] & ~ok).sum())
        b = buf.sample(256, beta=0.7)
        assert ok[b.slots].all()
        if seen["batches"] % 4 == 0:  # row by row: slower
            assert_batch_matches_played(b._replace(**{k: v[:16] for k, v in b._asdict().items()
                                                      if v is not None}), played)
        seen["batches"] += 1
        buf.update_priorities(np.arange(capacity), rng.exponential(100.0, capacity))

    run_env_into(buf, 600, check_every=1, check=check)
    # Both kinds of never-sampleable slots occurred many times.
    assert seen["final"] > 100 and seen["stale"] > 100 and seen["batches"] == 600


def test_frame_region_behind_the_write_cursor_is_never_drawn():
    capacity, steps = 20, 50
    buf = PrioritizedFrameReplayBuffer(capacity, frame_shape=(1, 2), stack=4, seed=3)
    add_long_episode(buf, steps)
    # Frames 31..50 are stored (frame t in slot t % 20); transitions 31..33 would read
    # overwritten frames and 50 is the newest frame: their slots have priority 0.
    zero = [t % capacity for t in (31, 32, 33, 50)]
    np.testing.assert_array_equal(np.flatnonzero(buf.priorities == 0), sorted(zero))
    b = buf.sample(3000)
    t = decode_step(b.obs[:, -1])
    np.testing.assert_array_equal(np.unique(t), np.arange(34, 50))
    np.testing.assert_array_equal(decode_step(b.obs), t[:, None] + np.arange(-3, 1))
    np.testing.assert_array_equal(t % capacity, b.slots)
    # Raise transition 34 far above the rest; two more steps push it behind the cursor.
    buf.update_priorities([34 % capacity], [1e6])
    assert (buf.sample(100).slots == 34 % capacity).mean() > 0.9
    add_long_episode_continue(buf, 50, 2)
    assert buf.priorities[34 % capacity] == 0
    buf.update_priorities([34 % capacity], [1e6])  # a late update cannot revive it
    assert buf.priorities[34 % capacity] == 0
    assert 34 % capacity not in buf.sample(3000).slots


def add_long_episode_continue(buf, start, steps):
    """Continue `add_long_episode` from step `start` for `steps` more transitions."""
    def frame(t):
        return np.array([[t % 256, t // 256]], np.uint8)
    for t in range(start, start + steps):
        stack = np.stack([frame(max(k, 0)) for k in range(t - buf.stack + 1, t + 1)])
        buf.add(stack, 0, 0.0, np.concatenate([stack[1:], frame(t + 1)[None]]), False, False)


def test_frame_episode_final_frames_are_never_drawn():
    buf = PrioritizedFrameReplayBuffer(30, frame_shape=(1, 1), stack=2, seed=0)
    f = [np.full((1, 1), v, np.uint8) for v in range(10)]
    # Episode A: 0 -> 1 -> 2 (terminated); episode B: 3 -> 4 (truncated), then 5 -> 6 open.
    buf.add(np.stack([f[0], f[0]]), 0, 0.0, np.stack([f[0], f[1]]), False, False)
    buf.add(np.stack([f[0], f[1]]), 1, 0.0, np.stack([f[1], f[2]]), True, False)
    buf.add(np.stack([f[3], f[3]]), 2, 0.0, np.stack([f[3], f[4]]), False, True)
    buf.add(np.stack([f[5], f[5]]), 3, 0.0, np.stack([f[5], f[6]]), False, False)
    # Slots: 0:f0 1:f1 2:f2(final) 3:f3 4:f4(final) 5:f5 6:f6(newest).
    np.testing.assert_array_equal(np.flatnonzero(buf.priorities), [0, 1, 3, 5])
    buf.update_priorities(np.arange(7), np.full(7, 50.0))
    np.testing.assert_array_equal(np.flatnonzero(buf.priorities), [0, 1, 3, 5])
    b = buf.sample(4000)
    np.testing.assert_array_equal(np.unique(b.slots), [0, 1, 3, 5])
    np.testing.assert_array_equal(b.actions, np.searchsorted([0, 1, 3, 5], b.slots))


def test_frame_sampling_frequencies_follow_priorities_and_n_step_batches_match_uniform():
    capacity = 40
    buf = PrioritizedFrameReplayBuffer(capacity, frame_shape=(2, 3), stack=4, seed=5, alpha=1.0)
    run_env_into(buf, 100)
    uniform = FrameReplayBuffer(capacity, frame_shape=(2, 3), stack=4)
    uniform.load_state_dict(buf.state_dict())  # the same frames (extra fields are ignored)
    live = np.flatnonzero(buf.priorities > 0)
    td = np.random.default_rng(0).uniform(1.0, 10.0, len(live))
    buf.update_priorities(live, td)
    p = np.zeros(capacity)
    p[live] = td + buf.eps
    counts = slot_counts(buf, capacity, 200_000, n_step=3, gamma=0.9)
    assert counts[p == 0].sum() == 0
    assert chi_square_p(counts[live], p[live] / p.sum()) > 1e-4
    # One helper builds n-step batches for both: same slots, same rows.
    b = buf.sample(64, n_step=3, gamma=0.9)
    reference = uniform._batch(b.slots, 3, 0.9)
    for name in ("obs", "actions", "rewards", "next_obs", "dones", "horizons"):
        np.testing.assert_array_equal(getattr(b, name), getattr(reference, name), err_msg=name)
    assert (b.horizons > 1).any()


def test_frame_new_transitions_enter_at_max_priority():
    buf = PrioritizedFrameReplayBuffer(50, frame_shape=(1, 2), stack=4, seed=0, alpha=1.0)
    add_long_episode(buf, 5)
    np.testing.assert_array_equal(buf.priorities[:6], [1, 1, 1, 1, 1, 0])
    buf.update_priorities([1, 2], [7.0, 0.5])
    add_long_episode_continue(buf, 5, 1)
    assert buf.priorities[5] == pytest.approx(7.0 + buf.eps) and buf.priorities[6] == 0


# ---------------------------------------------------------------- resume

def prioritized_vector(seed):
    buf = PrioritizedReplayBuffer(30, (2,), seed=seed, alpha=0.6)
    fill_vector(buf, 45)
    return buf


def prioritized_frames(seed):
    buf = PrioritizedFrameReplayBuffer(40, frame_shape=(2, 3), stack=4, seed=seed)
    run_env_into(buf, 100)
    return buf


@pytest.mark.parametrize("make", [prioritized_vector, prioritized_frames])
def test_state_dict_npz_round_trip_gives_identical_samples(make):
    original = make(seed=0)
    rng = np.random.default_rng(0)
    for _ in range(3):  # priorities that are not all the max, and an advanced RNG
        b = original.sample(8)
        original.update_priorities(b.slots, rng.normal(scale=5.0, size=8))
    f = io.BytesIO()
    np.savez(f, **original.state_dict())
    f.seek(0)
    restored = make(seed=99)
    with np.load(f, allow_pickle=False) as saved:
        restored.load_state_dict(saved)
    np.testing.assert_array_equal(restored._priorities._tree, original._priorities._tree)
    assert restored.max_priority == original.max_priority
    for _ in range(5):
        x, y = original.sample(16, beta=0.5), restored.sample(16, beta=0.5)
        for name in Batch._fields:
            np.testing.assert_array_equal(getattr(x, name), getattr(y, name), err_msg=name)
        td = rng.normal(size=16)
        original.update_priorities(x.slots, td)
        restored.update_priorities(y.slots, td)


def test_load_state_dict_refuses_uniform_state_and_another_alpha():
    with pytest.raises(ValueError, match="saved by a uniform buffer"):
        PrioritizedReplayBuffer(5, (2,)).load_state_dict(ReplayBuffer(5, (2,)).state_dict())
    state = PrioritizedReplayBuffer(5, (2,), alpha=0.6).state_dict()
    with pytest.raises(ValueError, match="alpha=0.6"):
        PrioritizedReplayBuffer(5, (2,), alpha=0.5).load_state_dict(state)
    with pytest.raises(ValueError, match="'priorities' has shape"):
        PrioritizedReplayBuffer(6, (2,), alpha=0.6).load_state_dict(state)


def test_memory_accounting_includes_the_tree():
    buf = PrioritizedFrameReplayBuffer(1000, frame_shape=(84, 84), seed=0)
    assert buf.nbytes == FrameReplayBuffer(1000).nbytes + 2 * 1024 * 8
    assert (PrioritizedFrameReplayBuffer.check_capacity(1000, frame_shape=(84, 84))
            == 1000 * (7067 + 32))
