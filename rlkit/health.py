"""Training-health figures of a network: is it still alive, does its output still depend on
its input? They catch the failure that flat reward curves only reveal hours later (a first
layer whose ReLUs all went silent, a Q-function that became the same constant on every state).

* :func:`relu_activity`: per ReLU layer, the fraction of its activations that are positive on
  a batch of inputs (about half at initialisation; 0 means the layer is dead);
* :func:`collapse_reasons`: one sentence per sign of collapse in a health row.
"""
from __future__ import annotations

import re

import numpy as np

from rlkit.nn.layers import Conv2d, Linear, ReLU
from rlkit.tensor import no_grad

# Q's spread across states below this fraction of its size (at least 1) counts as "constant":
# float32 rounding level. A freshly initialised Nature CNN spreads about 2e-4 across Pong
# screens; a network with a dead layer gives exactly the same output everywhere.
CONSTANT_OUTPUT_TOLERANCE = 1e-6


def relu_layer_names(net) -> dict:
    """{dotted module path of each ReLU: a readable label}, in forward order.

    Labels say what feeds the ReLU and which one it is: ``conv1``, ``conv2``, ``fc1``, and for
    layers inside named streams (a dueling head's ``value``/``advantage``) the stream too:
    ``fc1_value``. The feeding layer is the last Conv2d or Linear met before the ReLU.
    """
    labels, counts, feeding = {}, {}, "fc"
    for path, module in net.named_modules():
        if isinstance(module, Conv2d):
            feeding = "conv"
        elif isinstance(module, Linear):
            feeding = "fc"
        elif isinstance(module, ReLU):
            streams = [part for part in path.split(".")[:-1] if not re.fullmatch(r"\d+", part)]
            key = (feeding, *streams)
            counts[key] = counts.get(key, 0) + 1
            labels[path] = "_".join([f"{feeding}{counts[key]}", *streams])
    return labels


def relu_activity(net, x) -> tuple:
    """Run ``net(x)`` without a graph and measure each ReLU's output on the way.

    x: the network's input batch (N, ...). Returns (output array, {label: fraction of that
    ReLU's activations > 0 over the batch, every unit and position}), labels from
    :func:`relu_layer_names`.
    """
    labels = relu_layer_names(net)
    modules = dict(net.named_modules())
    # one ReLU object may sit at several places (an activation module reused): its calls go to
    # the labels of its places in forward order
    places = {}  # id -> (the ReLU, [its labels])
    for path, label in labels.items():
        places.setdefault(id(modules[path]), (modules[path], []))[1].append(label)
    activity = {}

    def recording(relu, its_labels):
        calls = iter(its_labels)

        def forward(inputs):
            out = ReLU.forward(relu, inputs)
            label = next(calls, None)  # None: called more often than it appears (a loop)
            if label is not None:
                activity[label] = float((out.data > 0).mean())
            return out
        return forward

    try:
        for relu, its_labels in places.values():  # an instance attribute shadows the class's
            relu.forward = recording(relu, its_labels)  # forward for one call
        with no_grad():
            out = net(x).data
    finally:
        for relu, _ in places.values():
            del relu.forward
    return out, {label: activity[label] for label in labels.values() if label in activity}


def collapse_reasons(activity: dict, values: np.ndarray) -> list:
    """Signs of a collapsed network, one sentence each (empty when healthy).

    activity: :func:`relu_activity`'s fractions (first entry = first hidden layer).
    values: (N,) per-state summary of the output on the probe batch (max-Q for DQN).
    """
    reasons = []
    if activity:
        first, fraction = next(iter(activity.items()))
        if fraction == 0.0:
            reasons.append(f"no unit of the first layer ({first}) is active on the probe states: "
                           "the network no longer sees its input")
    values = np.asarray(values, dtype=np.float64)
    if not np.isfinite(values).all():
        reasons.append("its outputs are not finite (NaN or infinity): the weights diverged")
    elif values.size > 1 and values.std() <= CONSTANT_OUTPUT_TOLERANCE * max(1.0, abs(values.mean())):
        reasons.append(f"its output is the same on every probe state ({values.mean():.4g}): "
                       "it no longer depends on the state")
    return reasons
