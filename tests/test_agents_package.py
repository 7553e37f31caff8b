"""The agents are importable from the package, as users of SB3 expect, and lazily."""
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NAMES = ["DQN", "QLearning", "ValueIteration", "PolicyIteration", "PolicyGradient", "ActorCritic", "PPO"]


def test_every_agent_is_importable_from_the_package_and_is_its_modules_class():
    import agents
    from agents import ActorCritic, DQN, PPO, PolicyGradient, PolicyIteration, QLearning, ValueIteration
    from agents.actor_critic import ActorCritic as AC
    from agents.dqn import DQN as D
    from agents.planning import PolicyIteration as PI, ValueIteration as VI
    from agents.policy_gradient import PolicyGradient as PG
    from agents.ppo import PPO as P
    from agents.q_learning import QLearning as Q
    assert (DQN, QLearning, ValueIteration, PolicyIteration, PolicyGradient, ActorCritic, PPO) == \
        (D, Q, VI, PI, PG, AC, P)
    assert set(NAMES) <= set(agents.__all__) and set(NAMES) <= set(dir(agents))


def test_an_unknown_name_is_an_attribute_error():
    import agents
    with pytest.raises(AttributeError, match="has no attribute 'Nope'"):
        agents.Nope  # noqa: B018
    with pytest.raises(ImportError):
        exec("from agents import Nope", {})


def test_importing_the_package_loads_no_agent():
    code = ("import sys, agents; "
            "print(sorted(m for m in sys.modules if m.startswith(('agents.', 'rlkit'))))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
