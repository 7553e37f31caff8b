"""Agents: tabular Q-learning and planners, DQN, policy gradients.

    from agents import DQN, QLearning, ValueIteration, PolicyIteration, PolicyGradient, ActorCritic, PPO

Each name is imported from its module on first use (PEP 562), so ``import agents`` stays
cheap: the network agents pull in the autograd engine and its numba kernels (about a second).
"""
from __future__ import annotations

import importlib

# public name -> the module that defines it
_LAZY = {
    "QLearning": "agents.q_learning",
    "ValueIteration": "agents.planning",
    "PolicyIteration": "agents.planning",
    "DQN": "agents.dqn",
    "DQNConfig": "agents.dqn",
    "PolicyGradient": "agents.policy_gradient",
    "PolicyGradientConfig": "agents.policy_gradient",
    "ActorCritic": "agents.actor_critic",
    "ActorCriticConfig": "agents.actor_critic",
    "PPO": "agents.ppo",
    "PPOConfig": "agents.ppo",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'agents' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
