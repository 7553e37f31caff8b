"""Batch normalisation in training mode, forward and backward fused."""
from rlkit.backend import get_array_module
from rlkit.tensor import Function


class BatchNorm(Function):
    """Normalise ``x`` (N, C) or (N, C, H, W) per channel with the batch's own statistics.

    y = gamma * (x - mean) / sqrt(var + eps) + beta, biased variance (divide by the count),
    as in the book's code and PyTorch. After the call ``batch_mean`` and ``batch_var`` (C,)
    hold the statistics, for the module's running averages.
    """

    def __init__(self, eps=1e-5):
        self.eps = eps

    def forward(self, x, gamma, beta):
        xp = get_array_module(x)
        self.axes = (0,) if x.ndim == 2 else (0, 2, 3)
        shape = (1, -1) + (1,) * (x.ndim - 2)
        mean = x.mean(axis=self.axes, keepdims=True)
        centred = x - mean
        var = (centred * centred).mean(axis=self.axes, keepdims=True)
        self.inv_std = 1.0 / xp.sqrt(var + self.eps)
        self.x_hat = centred * self.inv_std
        self.gamma = gamma.reshape(shape)
        self.batch_mean, self.batch_var = mean.reshape(-1), var.reshape(-1)
        self.count = x.size // x.shape[1]
        return self.x_hat * self.gamma + beta.reshape(shape)

    def backward(self, g):
        axes, x_hat = self.axes, self.x_hat
        g_gamma = (g * x_hat).sum(axis=axes)
        g_beta = g.sum(axis=axes)
        g_xhat = g * self.gamma
        gx = (self.inv_std / self.count) * (
            self.count * g_xhat
            - g_xhat.sum(axis=axes, keepdims=True)
            - x_hat * (g_xhat * x_hat).sum(axis=axes, keepdims=True))
        return gx, g_gamma, g_beta
