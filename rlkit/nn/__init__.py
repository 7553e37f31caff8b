"""Neural-network building blocks: Module, layers, losses and initialisers."""
from rlkit.nn import init
from rlkit.nn.layers import Conv2d, Dropout, Flatten, Identity, Linear, MaxPool2d, ReLU, Sigmoid, Tanh
from rlkit.nn.losses import (
    BCEWithLogitsLoss, CrossEntropyLoss, HuberLoss, MSELoss, MultiMarginLoss,
    binary_cross_entropy_with_logits, cross_entropy, huber_loss, l2_penalty, mse_loss,
    multiclass_hinge_loss,
)
from rlkit.nn.module import Module, Parameter, Sequential
from rlkit.nn.networks import IMAGE_NETWORKS, DuelingHead, mlp, nature_cnn, small_cnn
from rlkit.nn.normalization import BatchNorm1d, BatchNorm2d
from rlkit.nn.recurrent import LSTM, LSTMCell

__all__ = [
    "init", "Conv2d", "Dropout", "Flatten", "Identity", "Linear", "MaxPool2d", "ReLU", "Sigmoid",
    "Tanh", "BCEWithLogitsLoss", "CrossEntropyLoss", "HuberLoss", "MSELoss", "MultiMarginLoss",
    "binary_cross_entropy_with_logits", "cross_entropy", "huber_loss", "l2_penalty", "mse_loss",
    "multiclass_hinge_loss", "Module", "Parameter", "Sequential", "BatchNorm1d", "BatchNorm2d",
    "LSTM", "LSTMCell", "mlp", "nature_cnn", "small_cnn", "DuelingHead", "IMAGE_NETWORKS",
]
