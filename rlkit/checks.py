"""Range checks for settings, with one message shape everywhere:
``<name> must be <what is expected>, got <value>``.

A config dataclass keeps a :class:`Rule` per field in ``RULES`` and calls :func:`check_fields`
from its ``__post_init__``; optimisers and run schedules call :func:`check` on single values.
The training scripts print the same message as their one ``error:`` line, so the Python API and
the command line refuse a bad value in the same words::

    check("gamma", 5.0, number(0, 1))   # ValueError: gamma must be a number in [0, 1], got 5.0
"""
from __future__ import annotations

import dataclasses
import math
import numbers

import numpy as np


class Rule:
    """A test on one value; ``text`` says what it accepts ("an integer >= 1")."""

    def __init__(self, text: str, test):
        self.text, self._test = text, test

    def accepts(self, value) -> bool:
        return bool(self._test(value))


def _is_integer(value) -> bool:
    # bool is an Integral too, but True as a batch size is a mistake, not a 1
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def _is_number(value) -> bool:
    """A finite real number (an integer counts); NaN and infinities are refused."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)) \
        and math.isfinite(value)


def _bounds(low, high, low_open: bool, high_open: bool) -> tuple[str, object]:
    """(text, test) of an interval; None leaves that side unbounded."""
    if low is not None and high is not None:
        text = f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    elif low is not None:
        text = f"{'>' if low_open else '>='} {low:g}"
    elif high is not None:
        text = f"{'<' if high_open else '<='} {high:g}"
    else:
        text = ""

    def inside(value) -> bool:
        above = low is None or (value > low if low_open else value >= low)
        below = high is None or (value < high if high_open else value <= high)
        return above and below

    return text, inside


def integer(low=None, high=None) -> Rule:
    """An integer in [low, high] (either side may be None: unbounded)."""
    text, inside = _bounds(low, high, False, False)
    return Rule(f"an integer {text}".rstrip(), lambda v: _is_integer(v) and inside(v))


def number(low=None, high=None, *, low_open: bool = False, high_open: bool = False) -> Rule:
    """A finite number between low and high, each end closed unless ``*_open``."""
    text, inside = _bounds(low, high, low_open, high_open)
    return Rule(f"a number {text}".rstrip(), lambda v: _is_number(v) and inside(v))


def one_of(*choices: str) -> Rule:
    """One of the given strings."""
    return Rule("one of " + ", ".join(map(repr, choices)),
                lambda v: isinstance(v, str) and v in choices)


def optional(rule: Rule) -> Rule:
    """None, or what ``rule`` accepts."""
    return Rule(f"None or {rule.text}", lambda v: v is None or rule.accepts(v))


def sizes(low: int = 1) -> Rule:
    """A list (or tuple) of integers >= low, e.g. hidden layer widths; empty is allowed."""
    return Rule(f"a list of integers >= {low}",
                lambda v: isinstance(v, (list, tuple)) and all(_is_integer(x) and x >= low for x in v))


FLAG = Rule("True or False", lambda v: isinstance(v, (bool, np.bool_)))
TEXT = Rule("a string", lambda v: isinstance(v, str))


def check(name: str, value, rule: Rule):
    """Return ``value`` if ``rule`` accepts it, else raise ValueError naming ``name``."""
    if not rule.accepts(value):
        shown = value.item() if isinstance(value, np.generic) else value
        raise ValueError(f"{name} must be {rule.text}, got {shown!r}")
    return value


def check_fields(config, rules: dict) -> None:
    """Check every field of a dataclass instance against ``rules[field name]``.

    A field without a rule raises KeyError: a new field must say what range it takes.
    """
    for field in dataclasses.fields(config):
        if field.name not in rules:
            raise KeyError(f"{type(config).__name__}.RULES has no rule for the field {field.name!r}")
        check(field.name, getattr(config, field.name), rules[field.name])
