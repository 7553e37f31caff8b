"""Fused losses: each computes the loss and its gradient w.r.t. the prediction in one place.

``reduction`` is "mean" (default), "sum" or "none" (per-element / per-sample losses).
"""
from rlkit.backend import get_array_module
from rlkit.functions._util import mean
from rlkit.functions.elementwise import stable_sigmoid
from rlkit.tensor import Function


def _reduce(values, reduction):
    if reduction == "mean":
        return mean(values)
    if reduction == "sum":
        return values.sum()
    if reduction == "none":
        return values
    raise ValueError(f"unknown reduction {reduction!r}: expected 'mean', 'sum' or 'none'")


def _reduction_scale(g, count, reduction):
    """The upstream gradient spread over the elements the reduction combined."""
    if reduction == "mean":
        return g / count
    return g


class MSE(Function):
    """Mean squared error: (prediction - target)^2."""

    def __init__(self, reduction="mean"):
        self.reduction = reduction

    def forward(self, prediction, target):
        self.diff = prediction - target
        return _reduce(self.diff * self.diff, self.reduction)

    def backward(self, g):
        grad = 2 * self.diff * _reduction_scale(g, self.diff.size, self.reduction)
        return grad, (-grad if self.needs_input_grad[1] else None)


class Huber(Function):
    """Huber loss with threshold ``delta``: 0.5 d^2 for |d| <= delta, delta (|d| - delta / 2) beyond.

    Its gradient is d clipped to [-delta, delta]: the DQN paper's error clipping.
    """

    def __init__(self, delta=1.0, reduction="mean"):
        self.delta, self.reduction = delta, reduction

    def forward(self, prediction, target):
        xp = get_array_module(prediction)
        d = prediction - target
        self.clipped = xp.clip(d, -self.delta, self.delta)
        # 0.5 c^2 + delta (|d| - |c|) equals both branches, and needs no mask
        values = self.clipped * (0.5 * self.clipped) + self.delta * (abs(d) - abs(self.clipped))
        return _reduce(values, self.reduction)

    def backward(self, g):
        grad = self.clipped * _reduction_scale(g, self.clipped.size, self.reduction)
        return grad, (-grad if self.needs_input_grad[1] else None)


class SoftmaxCrossEntropy(Function):
    """-log softmax(logits)[label] for ``logits`` (N, C) and integer ``labels`` (N,)."""

    def __init__(self, labels, reduction="mean"):
        self.labels, self.reduction = labels, reduction

    def forward(self, logits):
        xp = get_array_module(logits)
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_z = xp.log(xp.exp(shifted).sum(axis=1, keepdims=True))
        log_p = shifted - log_z
        self.rows = xp.arange(len(logits))
        self.labels = xp.asarray(self.labels)
        self.log_p = log_p
        return _reduce(-log_p[self.rows, self.labels], self.reduction)

    def backward(self, g):
        xp = get_array_module(g)
        grad = xp.exp(self.log_p)
        grad[self.rows, self.labels] -= 1
        scale = _reduction_scale(g, len(grad), self.reduction)
        return (grad * (scale[:, None] if self.reduction == "none" else scale),)


class BCEWithLogits(Function):
    """Binary cross-entropy of sigmoid(logits) against ``targets`` in [0, 1], computed stably."""

    def __init__(self, reduction="mean"):
        self.reduction = reduction

    def forward(self, logits, targets):
        xp = get_array_module(logits)
        self.logits, self.targets = logits, targets
        # log(1 + e^-|x|) + max(x, 0) - x t   never overflows
        values = xp.maximum(logits, 0) - logits * targets + xp.log1p(xp.exp(-abs(logits)))
        return _reduce(values, self.reduction)

    def backward(self, g):
        xp = get_array_module(g)
        scale = _reduction_scale(g, self.logits.size, self.reduction)
        p = stable_sigmoid(xp, self.logits)
        return (p - self.targets) * scale, -self.logits * scale


class MulticlassHinge(Function):
    """The multiclass SVM loss: sum over j != y of max(0, s_j - s_y + margin), per sample."""

    def __init__(self, labels, margin=1.0, reduction="mean"):
        self.labels, self.margin, self.reduction = labels, margin, reduction

    def forward(self, scores):
        xp = get_array_module(scores)
        self.rows = xp.arange(len(scores))
        self.labels = xp.asarray(self.labels)
        correct = scores[self.rows, self.labels][:, None]
        margins = xp.maximum(0, scores - correct + self.margin)
        margins[self.rows, self.labels] = 0
        self.active = (margins > 0).astype(scores.dtype)
        return _reduce(margins.sum(axis=1), self.reduction)

    def backward(self, g):
        grad = self.active.copy()
        grad[self.rows, self.labels] = -self.active.sum(axis=1)
        scale = _reduction_scale(g, len(grad), self.reduction)
        return (grad * (scale[:, None] if self.reduction == "none" else scale),)
