"""Module: a tree of layers owning Parameters and buffers, with state dicts and devices."""
from __future__ import annotations

from collections import OrderedDict

import numpy as np

from rlkit.backend import get_array_module, to_device, to_numpy
from rlkit.tensor import Tensor


class Parameter(Tensor):
    """A Tensor that a Module registers as trainable (requires_grad is True)."""

    __slots__ = ()

    def __init__(self, data):
        super().__init__(data, requires_grad=True)


class Module:
    """Base class of every layer and network.

    Assigning a Parameter, a Module or (through :meth:`register_buffer`) an array to an
    attribute registers it; ``parameters()``, ``state_dict()``, ``to()``, ``train()`` and
    ``eval()`` then walk the tree. Subclasses implement ``forward``.
    """

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "training", True)

    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise RuntimeError(f"{type(self).__name__}.__init__ must call super().__init__() "
                               "before assigning attributes")
        self._parameters.pop(name, None)  # re-assigning a name replaces what it was
        self._modules.pop(name, None)
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        object.__setattr__(self, name, value)

    def register_buffer(self, name: str, array) -> None:
        """Register a non-trainable array (e.g. running statistics) saved in the state dict."""
        self._buffers[name] = True
        setattr(self, name, array)

    def forward(self, *args, **kwargs):
        raise NotImplementedError

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    # ----------------------------------------------------------------- traversal
    def named_modules(self, prefix: str = ""):
        """Yield ``(dotted name, module)`` for this module and every descendant."""
        yield prefix, self
        for name, child in self._modules.items():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def named_parameters(self):
        """Yield ``(dotted name, Parameter)`` in registration order."""
        for prefix, module in self.named_modules():
            for name, param in module._parameters.items():
                yield (f"{prefix}.{name}" if prefix else name), param

    def parameters(self) -> list:
        """Every Parameter of the tree, each once."""
        return [p for _, p in self.named_parameters()]

    def named_buffers(self):
        for prefix, module in self.named_modules():
            for name in module._buffers:
                yield (f"{prefix}.{name}" if prefix else name), module, name

    def children(self):
        return list(self._modules.values())

    def num_parameters(self) -> int:
        """Total number of trainable scalars."""
        return sum(p.size for p in self.parameters())

    # ----------------------------------------------------------------- modes
    def train(self, mode: bool = True) -> "Module":
        """Training mode (dropout active, batch norm uses batch statistics)."""
        for _, module in self.named_modules():
            object.__setattr__(module, "training", mode)
        return self

    def eval(self) -> "Module":
        """Evaluation mode (dropout off, batch norm uses running statistics)."""
        return self.train(False)

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad = None

    # ----------------------------------------------------------------- state
    def state_dict(self) -> "OrderedDict[str, np.ndarray]":
        """Name -> host NumPy copy of every parameter and buffer."""
        state = OrderedDict((name, to_numpy(p.data).copy()) for name, p in self.named_parameters())
        for name, module, attr in self.named_buffers():
            state[name] = to_numpy(getattr(module, attr)).copy()
        return state

    def load_state_dict(self, state) -> None:
        """Copy ``state`` (name -> array) into this module's parameters and buffers, in place.

        Raises KeyError naming every missing and unexpected key, and ValueError naming every
        entry whose shape differs; nothing is changed unless all entries fit.
        """
        targets = {name: (p, None) for name, p in self.named_parameters()}
        targets.update({name: (module, attr) for name, module, attr in self.named_buffers()})
        missing = sorted(set(targets) - set(state))
        unexpected = sorted(set(state) - set(targets))
        if missing or unexpected:
            raise KeyError(f"state dict does not match {type(self).__name__}: "
                           f"missing keys {missing}, unexpected keys {unexpected}")
        wrong = [f"{name}: expected {self._target_array(*targets[name]).shape}, got {np.shape(state[name])}"
                 for name in targets if self._target_array(*targets[name]).shape != np.shape(state[name])]
        if wrong:
            raise ValueError("state dict shapes do not match: " + "; ".join(wrong))
        for name, (owner, attr) in targets.items():
            target = self._target_array(owner, attr)
            xp = get_array_module(target)
            target[...] = xp.asarray(state[name], dtype=target.dtype)  # in place: optimisers keep views

    @staticmethod
    def _target_array(owner, attr):
        return owner.data if attr is None else getattr(owner, attr)

    def to(self, device: str | None = None, dtype=None) -> "Module":
        """Move every parameter and buffer to ``device`` and/or cast floats to ``dtype``.

        Build optimisers after moving: they hold the parameters' arrays.
        """
        def convert(array):
            if device is not None:
                array = to_device(array, device)
            if dtype is not None and array.dtype.kind == "f":
                array = array.astype(dtype)
            return array

        for _, module in self.named_modules():
            for param in module._parameters.values():
                param.data, param.grad = convert(param.data), None
            for attr in module._buffers:
                object.__setattr__(module, attr, convert(getattr(module, attr)))
        return self

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__}({self.extra_repr()}"]
        for name, child in self._modules.items():
            lines.append(f"  ({name}): " + repr(child).replace("\n", "\n  "))
        return lines[0] + (")" if len(lines) == 1 else "\n" + "\n".join(lines[1:]) + "\n)")

    def extra_repr(self) -> str:
        return ""


class Sequential(Module):
    """Layers applied in order; children are named "0", "1", ... like PyTorch."""

    def __init__(self, *layers: Module):
        super().__init__()
        for index, layer in enumerate(layers):
            setattr(self, str(index), layer)

    def forward(self, x):
        for layer in self._modules.values():
            x = layer(x)
        return x

    def __getitem__(self, index: int) -> Module:
        return list(self._modules.values())[index]

    def __len__(self) -> int:
        return len(self._modules)
