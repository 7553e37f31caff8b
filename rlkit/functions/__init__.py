"""Every differentiable op, one Function subclass each (forward and backward on raw arrays)."""
from rlkit.functions.arithmetic import Add, Cast, Div, MatMul, Mul, Neg, Pow, Sub
from rlkit.functions.conv import Conv2d, MaxPool2d
from rlkit.functions.elementwise import Abs, Clip, Exp, Log, Maximum, ReLU, Sigmoid, Sqrt, Tanh, Where
from rlkit.functions.linear import Linear
from rlkit.functions.losses import MSE, BCEWithLogits, Huber, MulticlassHinge, SoftmaxCrossEntropy
from rlkit.functions.normalization import BatchNorm
from rlkit.functions.recurrent import LSTMSequence
from rlkit.functions.reduction import Max, Mean, Sum
from rlkit.functions.shape import Concat, Gather, GetItem, Reshape, Stack, Transpose
from rlkit.functions.softmax import LogSoftmax, Softmax

__all__ = [
    "Add", "Cast", "Div", "MatMul", "Mul", "Neg", "Pow", "Sub", "Conv2d", "MaxPool2d", "Abs", "Clip",
    "Exp", "Log", "Maximum", "ReLU", "Sigmoid", "Sqrt", "Tanh", "Where", "Linear", "MSE",
    "BCEWithLogits", "Huber", "MulticlassHinge", "SoftmaxCrossEntropy", "BatchNorm", "LSTMSequence",
    "Max", "Mean", "Sum", "Concat", "Gather", "GetItem", "Reshape", "Stack", "Transpose",
    "LogSoftmax", "Softmax",
]
