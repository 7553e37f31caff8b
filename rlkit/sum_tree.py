"""A sum tree: proportional sampling over `capacity` non-negative priorities in O(log n).

The tree is one float64 array in heap order: node 1 is the root, node k has children 2k and
2k + 1, and the `capacity` leaves sit at nodes L .. L + capacity - 1 where L is the smallest
power of two >= capacity (the padding leaves after them stay 0). Every internal node is
recomputed as the sum of its two children whenever a leaf below it changes (never adjusted by
a difference), so the whole tree is a pure function of its leaves: a tree rebuilt from saved
leaves equals, bit for bit, the one that was saved, and rounding never accumulates.

Used by `rlkit.replay`'s prioritised buffers (Schaul et al. 2016, proportional variant).
"""
import math

import numpy as np


class SumTree:
    """Sum tree over `capacity` leaves holding non-negative float64 priorities, all 0 at first.

    capacity: number of leaves (slots), >= 1.
    initial_max: the value of `max_priority` before any priority is set.

    `max_priority` is the largest priority ever set (it never decreases, not even when that
    leaf is lowered or cleared): the value new items enter at.
    """

    def __init__(self, capacity: int, initial_max: float = 1.0):
        if int(capacity) != capacity or capacity < 1:
            raise ValueError(f"capacity must be a positive integer, got {capacity!r}")
        self.capacity = int(capacity)
        self._first_leaf = 1 << (self.capacity - 1).bit_length()  # L: power of two >= capacity
        self._depth = self._first_leaf.bit_length() - 1  # levels from a leaf up to the root
        self._tree = np.zeros(2 * self._first_leaf, np.float64)  # node 0 is unused
        self.max_priority = float(initial_max)

    @property
    def total(self) -> float:
        """Sum of all leaves (the root)."""
        return float(self._tree[1])

    @property
    def leaves(self) -> np.ndarray:
        """(capacity,) float64 read-only view of the priorities."""
        view = self._tree[self._first_leaf:self._first_leaf + self.capacity]
        view.flags.writeable = False
        return view

    def get(self, indices) -> np.ndarray:
        """Priorities of leaves `indices` (B,) int -> (B,) float64."""
        return self._tree[self._first_leaf + self._check_indices(indices)]

    def set(self, indices, priorities) -> None:
        """Set leaves `indices` (B,) int to `priorities` (B,) (or a scalar for all of them).

        Priorities must be finite and >= 0. Where an index repeats, its last priority wins.
        Raises `max_priority` to the largest priority given.
        """
        indices = self._check_indices(indices)
        priorities = np.broadcast_to(np.asarray(priorities, np.float64), indices.shape)
        if len(indices) == 1:  # the common case (one new transition): plain floats, no reductions
            priority = float(priorities[0])
            if not (math.isfinite(priority) and priority >= 0):
                raise ValueError(f"priorities must be finite and >= 0, got {priority}")
            self.max_priority = max(self.max_priority, priority)
            self._set_one(int(indices[0]), priority)
            return
        if len(indices) == 0:
            return
        if not np.isfinite(priorities).all() or (priorities < 0).any():
            raise ValueError("priorities must be finite and >= 0, got "
                             f"{priorities[~(np.isfinite(priorities) & (priorities >= 0))][:5]}")
        self.max_priority = max(self.max_priority, float(priorities.max()))
        # Last occurrence of each index: reverse, then the first occurrence of each.
        nodes, first = np.unique(indices[::-1], return_index=True)
        nodes = nodes + self._first_leaf
        self._tree[nodes] = priorities[::-1][first]
        for _ in range(self._depth):  # one level per pass, bottom up, all indices at once
            nodes = np.unique(nodes >> 1)
            self._tree[nodes] = self._tree[2 * nodes] + self._tree[2 * nodes + 1]

    def _set_one(self, index, priority):
        tree = self._tree
        node = index + self._first_leaf
        tree[node] = priority
        for _ in range(self._depth):
            node >>= 1
            tree[node] = tree[2 * node] + tree[2 * node + 1]

    def find(self, values) -> np.ndarray:
        """Leaves at prefix sums `values` (B,) float -> (B,) int64, all of them at once.

        Leaf i is returned for values in [sum of leaves before i, sum up to and including i).
        A leaf of priority 0 is never returned: the descent never enters a subtree whose sum
        is 0, so values at or past the total (rounding) land on the last positive leaf, and
        values below 0 on the first.
        Raises ValueError if every priority is 0.
        """
        if not self._tree[1] > 0:
            raise ValueError("cannot sample: every priority is 0")
        values = np.maximum(np.asarray(values, np.float64).reshape(-1), 0.0)  # a fresh copy
        tree = self._tree
        nodes = np.ones(len(values), np.int64)
        for _ in range(self._depth):
            left = tree[2 * nodes]
            # Right when the value reaches the left sum (so also when the left subtree is dry),
            # unless the right subtree is dry: each step enters a subtree whose sum is > 0.
            right = (left <= values) & (tree[2 * nodes + 1] > 0)
            values -= np.where(right, left, 0.0)
            nodes = 2 * nodes + right
        return nodes - self._first_leaf

    def sample_stratified(self, batch_size: int, rng: np.random.Generator) -> np.ndarray:
        """`batch_size` leaves drawn proportionally to their priorities, stratified (the paper's
        scheme): the total is cut into `batch_size` equal segments and one uniform point is
        drawn in each, so segment k yields a leaf at prefix sum (k + u_k) * total / B.

        Each leaf i is drawn with probability p_i / total per draw (averaged over the segments),
        and in expectation exactly B * p_i / total times per batch. Returns (B,) int64 in
        segment order (ascending leaves). Uses exactly `batch_size` uniforms from `rng`.
        """
        if int(batch_size) != batch_size or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        total = self._tree[1]
        points = (np.arange(batch_size) + rng.random(batch_size)) * (total / batch_size)
        return self.find(points)

    def load(self, leaves, max_priority: float) -> None:
        """Replace all leaves (capacity,) and `max_priority`, rebuilding the sums."""
        leaves = np.asarray(leaves, np.float64)
        if leaves.shape != (self.capacity,):
            raise ValueError(f"leaves have shape {leaves.shape}, expected ({self.capacity},)")
        if not np.isfinite(leaves).all() or (leaves < 0).any():
            raise ValueError("priorities must be finite and >= 0")
        tree = self._tree
        tree[:] = 0.0
        tree[self._first_leaf:self._first_leaf + self.capacity] = leaves
        lo = self._first_leaf
        while lo > 1:  # each level from its children, bottom up
            lo >>= 1
            tree[lo:2 * lo] = tree[2 * lo:4 * lo:2] + tree[2 * lo + 1:4 * lo:2]
        self.max_priority = float(max_priority)

    def _check_indices(self, indices):
        indices = np.asarray(indices).reshape(-1)
        if indices.dtype.kind not in "iu" and indices.size:
            bad = True
        elif indices.size == 1:
            bad = not 0 <= int(indices[0]) < self.capacity
        else:
            bad = indices.size > 0 and (indices.min() < 0 or indices.max() >= self.capacity)
        if bad:
            raise ValueError(f"leaf indices must be integers in [0, {self.capacity}), got "
                             f"{indices[:8]}{'...' if indices.size > 8 else ''}")
        return indices.astype(np.int64, copy=False)
