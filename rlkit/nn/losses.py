"""Loss functions (functional form) and their Module wrappers.

All take a prediction Tensor first; targets may be Tensors or arrays. ``reduction`` is
"mean" (default), "sum" or "none".
"""
from __future__ import annotations

from rlkit import functions as F
from rlkit.backend import get_array_module
from rlkit.nn.module import Module
from rlkit.tensor import Tensor, as_tensor


def _pair(prediction, target, name):
    prediction = as_tensor(prediction)
    target = as_tensor(target, prediction)
    if prediction.shape != target.shape:
        raise ValueError(f"{name}: prediction shape {prediction.shape} != target shape {target.shape}")
    return prediction, target


def _labels(logits: Tensor, labels, name):
    labels = labels.data if isinstance(labels, Tensor) else labels
    xp = get_array_module(logits.data)
    labels = xp.asarray(labels)
    if logits.ndim != 2 or labels.shape != (logits.shape[0],):
        raise ValueError(f"{name}: expects scores (N, C) and integer labels (N,), "
                         f"got {logits.shape} and {labels.shape}")
    return labels


def mse_loss(prediction, target, reduction: str = "mean") -> Tensor:
    """Mean of (prediction - target)^2."""
    return F.MSE(reduction)(*_pair(prediction, target, "mse_loss"))


def huber_loss(prediction, target, delta: float = 1.0, reduction: str = "mean") -> Tensor:
    """Huber loss (quadratic within ``delta``, linear beyond); equals PyTorch's smooth_l1 at delta 1."""
    return F.Huber(delta, reduction)(*_pair(prediction, target, "huber_loss"))


def cross_entropy(logits, labels, reduction: str = "mean") -> Tensor:
    """Softmax cross-entropy of ``logits`` (N, C) against integer class ``labels`` (N,)."""
    logits = as_tensor(logits)
    return F.SoftmaxCrossEntropy(_labels(logits, labels, "cross_entropy"), reduction)(logits)


def binary_cross_entropy_with_logits(logits, targets, reduction: str = "mean") -> Tensor:
    """Binary cross-entropy of sigmoid(``logits``) against ``targets`` in [0, 1], same shape."""
    return F.BCEWithLogits(reduction)(*_pair(logits, targets, "binary_cross_entropy_with_logits"))


def multiclass_hinge_loss(scores, labels, margin: float = 1.0, reduction: str = "mean") -> Tensor:
    """Multiclass SVM loss: per sample, sum over wrong classes j of max(0, s_j - s_y + margin)."""
    scores = as_tensor(scores)
    return F.MulticlassHinge(_labels(scores, labels, "multiclass_hinge_loss"), margin, reduction)(scores)


def l2_penalty(parameters, weight_decay: float) -> Tensor:
    """0.5 * weight_decay * sum of squared entries of ``parameters`` (add it to a loss)."""
    total = None
    for p in parameters:
        term = (p * p).sum()
        total = term if total is None else total + term
    return total * (0.5 * weight_decay)


class MSELoss(Module):
    def __init__(self, reduction: str = "mean"):
        super().__init__()
        self.reduction = reduction

    def forward(self, prediction, target):
        return mse_loss(prediction, target, self.reduction)


class HuberLoss(Module):
    def __init__(self, delta: float = 1.0, reduction: str = "mean"):
        super().__init__()
        self.delta, self.reduction = delta, reduction

    def forward(self, prediction, target):
        return huber_loss(prediction, target, self.delta, self.reduction)


class CrossEntropyLoss(Module):
    def __init__(self, reduction: str = "mean"):
        super().__init__()
        self.reduction = reduction

    def forward(self, logits, labels):
        return cross_entropy(logits, labels, self.reduction)


class BCEWithLogitsLoss(Module):
    def __init__(self, reduction: str = "mean"):
        super().__init__()
        self.reduction = reduction

    def forward(self, logits, targets):
        return binary_cross_entropy_with_logits(logits, targets, self.reduction)


class MultiMarginLoss(Module):
    """Multiclass hinge (SVM) loss module."""

    def __init__(self, margin: float = 1.0, reduction: str = "mean"):
        super().__init__()
        self.margin, self.reduction = margin, reduction

    def forward(self, scores, labels):
        return multiclass_hinge_loss(scores, labels, self.margin, self.reduction)
