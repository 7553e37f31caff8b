"""What every agent shares: checkpoints that hold arrays plus a JSON header, never pickle.

A checkpoint is one ``.npz`` file: the agent's arrays under their own names, and ``meta``, a
JSON string ``{"agent": class name, "format": 1, "hyperparams": {...}, "env": {...}, ...}``.
Loading it runs no code (``allow_pickle=False``) and refuses, with one clear message, a file
that is not a checkpoint, one written by another agent class, or one made for another env.

An agent with a replay memory saves it to a second file beside the checkpoint, first, and the
checkpoint's header names it (``"replay": {"file": name, "steps": step}``, or null when saved
without one): the checkpoint's rename publishes the pair, so a kill between the two writes
leaves the previous checkpoint naming the previous replay (:func:`saved_replay`).
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from pathlib import Path

import numpy as np
from gymnasium import spaces

from rlkit.checks import check_fields
from rlkit.runs import load_npz, save_npz_atomic

FORMAT = 1
# What a run folder's checkpoints named their replay memory before headers named it.
LEGACY_REPLAY = "replay.npz"


def validate_config(config) -> None:
    """What every agent config's ``__post_init__`` does: list values become tuples (argparse and
    JSON give lists) and each field is checked against the class's ``RULES``
    (:func:`rlkit.checks.check_fields`), so a bad value is refused when the config is made."""
    for field in dataclasses.fields(config):
        if isinstance(getattr(config, field.name), list):
            setattr(config, field.name, tuple(getattr(config, field.name)))
    check_fields(config, config.RULES)


def resume_hyperparams(config_cls, saved: dict, overrides: dict) -> dict:
    """The hyper-parameters a loaded agent is rebuilt with: the checkpoint's (``saved``) with
    ``overrides`` laid over them, except that ``device`` is never the checkpoint's (it is the
    machine's: the override, else ``$RLKIT_DEVICE``, else cpu).

    An override of a field in ``config_cls.FIXED_ON_RESUME`` (what shapes the network and the
    saved state, or happened once: initialisation, seeding) that differs from the saved value
    raises ValueError naming both values; every other field may change on resume."""
    for name in config_cls.FIXED_ON_RESUME:
        if name in overrides and name in saved and _plain(overrides[name]) != _plain(saved[name]):
            raise ValueError(f"{name} cannot change on resume: the checkpoint was made with "
                             f"{_plain(saved[name])!r}, not {_plain(overrides[name])!r} "
                             "(start a new run for that)")
    return {**saved, **overrides, "device": overrides.get("device")}


def _plain(value):
    """A config value as JSON gives it back (tuples as lists), so saved and given compare equal."""
    return list(value) if isinstance(value, tuple) else value


def env_signature(env) -> dict:
    """What a checkpoint records about its env: id (or class name), both spaces as text (what
    loading compares) and as JSON (what rebuilds them for an agent loaded without an env)."""
    spec = getattr(env, "spec", None)
    return {"id": spec.id if spec is not None else type(env.unwrapped).__name__,
            "observation_space": str(env.observation_space),
            "action_space": str(env.action_space),
            "spaces": {"observation": space_to_json(env.observation_space),
                       "action": space_to_json(env.action_space)}}


def space_to_json(space) -> dict:
    """A Discrete or Box space as a JSON-able dict."""
    if isinstance(space, spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n), "start": int(space.start)}
    if isinstance(space, spaces.Box):
        return {"type": "Box", "shape": list(space.shape), "dtype": str(space.dtype),
                "low": _bound_to_json(space.low), "high": _bound_to_json(space.high)}
    raise ValueError(f"cannot record a {type(space).__name__} space in a checkpoint")


def _bound_to_json(bound: np.ndarray):
    """A Box bound: one number when every entry has it (image frames: 0 and 255, kept short),
    else the nested list, since an agent loaded without its env clips its actions to these
    bounds (checkpoints of before 2026-12-04 hold the min and max only)."""
    values = np.asarray(bound, np.float64)
    if values.size and (values == values.flat[0]).all():
        return float(values.flat[0])
    return values.tolist()


def space_from_json(saved: dict):
    """Inverse of :func:`space_to_json`."""
    if saved["type"] == "Discrete":
        return spaces.Discrete(saved["n"], start=saved["start"])
    dtype = np.dtype(saved["dtype"])
    low, high = (np.asarray(b, dtype) if isinstance(b, list) else b for b in (saved["low"], saved["high"]))
    return spaces.Box(low, high, tuple(saved["shape"]), dtype)


class SpacesOnly:
    """A stand-in env holding only the spaces a checkpoint recorded: enough to ``predict``."""

    def __init__(self, signature: dict):
        if "spaces" not in signature:
            raise ValueError("this checkpoint predates recorded spaces; load it with env=")
        self.observation_space = space_from_json(signature["spaces"]["observation"])
        self.action_space = space_from_json(signature["spaces"]["action"])
        self.spec, self.unwrapped = None, self


def save_checkpoint(path: str | os.PathLike, agent, meta: dict, **arrays: np.ndarray) -> None:
    """Write ``arrays`` and a JSON header (``meta`` plus agent class and format) to ``path``."""
    header = {"agent": type(agent).__name__, "format": FORMAT, **meta}
    save_npz_atomic(path, meta=np.array(json.dumps(header, sort_keys=True)), **arrays)


def load_checkpoint(path: str | os.PathLike, agent_cls, env=None) -> tuple[dict, dict]:
    """Read a checkpoint written for ``agent_cls``; returns (header, arrays).

    If ``env`` is given it must match the env the checkpoint was made for (same spaces).
    Raises FileNotFoundError or ValueError with the reason.
    """
    arrays = load_npz(path)
    header = _header(path, arrays.pop("meta", None))
    if header.get("agent") != agent_cls.__name__:
        raise ValueError(f"{path}: a {header.get('agent')} checkpoint, not {agent_cls.__name__}")
    if header.get("format") != FORMAT:
        raise ValueError(f"{path}: checkpoint format {header.get('format')}, expected {FORMAT}")
    if env is not None and "env" in header:
        saved, given = header["env"], env_signature(env)
        spaces = ("observation_space", "action_space")
        if any(saved[k] != given[k] for k in spaces):
            raise ValueError(f"{path}: made for {saved['id']} with {[saved[k] for k in spaces]}, "
                             f"but the env given is {given['id']} with "
                             f"{[given[k] for k in spaces]}")
    return header, arrays


def read_header(path: str | os.PathLike) -> dict:
    """A checkpoint's JSON header alone, without reading its arrays; ValueError naming the path
    for a file that is not an rlkit checkpoint, FileNotFoundError for a missing one."""
    return _header(path, load_npz(path, names=("meta",)).get("meta"))


def _header(path, meta) -> dict:
    """The JSON header ``meta`` (a 0-d string array, or None when the file had none) as a dict."""
    if meta is not None:
        with contextlib.suppress(json.JSONDecodeError):
            return json.loads(str(meta))
    raise ValueError(f"{path}: not an rlkit agent checkpoint (no JSON header)")


def saved_replay(checkpoint: str | os.PathLike) -> Path | None:
    """The replay-memory file saved with ``checkpoint``, beside it: the one its header names, or
    for a header from before they named one, ``replay.npz`` if it exists (unchecked: it may be
    a checkpoint behind); None when the checkpoint was saved without one. The file named may
    be missing (deleted since)."""
    checkpoint = Path(checkpoint)
    header = read_header(checkpoint)
    if "replay" not in header:
        legacy = checkpoint.parent / LEGACY_REPLAY
        return legacy if legacy.is_file() else None
    if header["replay"] is None:
        return None
    return checkpoint.parent / Path(header["replay"]["file"]).name  # never outside the folder
