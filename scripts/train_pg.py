"""Train a policy-gradient agent: ``python scripts/train_pg.py --env Pong`` (the book's network).

    python scripts/train_pg.py --env Pong                          # REINFORCE, the book's setup
    python scripts/train_pg.py --env CartPole-v1 --algo a2c        # actor-critic, 4 envs
    python scripts/train_pg.py --env CartPole-v1 --algo ppo        # PPO, CleanRL's settings
    python scripts/train_pg.py --env Pendulum-v1 --algo ppo        # continuous actions
    python scripts/train_pg.py --env CartPole-v1 --recurrent       # an LSTM policy
    python scripts/train_pg.py --resume runs/pg-Pong-...           # go on after a stop

``--algo reinforce`` (``agents.policy_gradient.PolicyGradient``), ``a2c``
(``agents.actor_critic.ActorCritic``) or ``ppo`` (``agents.ppo.PPO``), the last two on ``--n-envs``
environments and also for continuous (Box) actions. Every hyper-parameter of the
agent's config is a flag (``--learning-rate``/``--lr``, ``--batch-episodes``, ``--n-steps``,
...); unset ones take the agent's preset for the policy kind. For Pong, REINFORCE gets the
book's input (``preprocess="pg"``: 6400-float difference frames, actions UP/DOWN) and network
with the book's source hyper-parameters (H = 200, 10 episodes per update, RMSProp decay 0.99,
lr 1e-4, gamma 0.99); a CNN policy (``--policy cnn``, A2C's and PPO's default) gets 4 x 84 x 84
frames.
The run directory gets config.json, progress.csv (one row per episode), eval.csv,
checkpoints/latest.npz and best.npz, and reward_curve.png. Ctrl+C or SIGTERM saves ``latest``
and exits; ``--resume RUN_DIR`` continues from it (on classic-control and toy-text worlds
exactly, the episodes in progress included; Pong's episodes start afresh). A hyper-parameter
typed with ``--resume`` is applied and recorded in config.json, or refused in one line when it
cannot change (the config's ``FIXED_ON_RESUME``, ``--algo``, ``--n-envs``, the env).
A new run needs ``--run-dir`` missing or empty (``--overwrite`` replaces an earlier run there);
evaluation episodes are cut at ``--max-eval-steps``, and a stop is honoured during them too.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys

import gymnasium as gym

from _common import (ATARI_TRAINING_ENV_KWARGS, RUN_IDENTITY, add_config_flags, add_run_flags,
                     check_run_flags, fill_defaults, given_values, latest_checkpoint, record_resume,
                     resumed_args, train_in_run, unset_help)
from _tabular import _ENV_ERRORS, ArgumentParser, add_common_flags, fail, open_run

import envs
from agents.actor_critic import ActorCritic, ActorCriticConfig
from agents.policy_base import PolicyConfig, kind_preset
from agents.policy_gradient import PolicyGradient, PolicyGradientConfig
from agents.ppo import PPO, PPOConfig
from rlkit.backend import DeviceUnavailableError

ALGOS = {"reinforce": (PolicyGradient, PolicyGradientConfig), "a2c": (ActorCritic, ActorCriticConfig),
         "ppo": (PPO, PPOConfig)}
VECTOR_ALGOS = ("a2c", "ppo")  # these step --n-envs environments together
# How long, how often and on how many environments (a2c, ppo), by env (the agents' own
# defaults live in their modules). Pong's are those of the A2C run that learned it
# (README "Pong, learned by A2C"): 16 environments, 10-episode evaluations every 250k steps.
RUN_PRESETS = {
    "pong": dict(steps=5_000_000, eval_every=250_000, eval_episodes=10, checkpoint_every=100_000,
                 n_envs=16),
    "other": dict(steps=200_000, eval_every=10_000, eval_episodes=10, checkpoint_every=20_000,
                  n_envs=4),
}


def build_parser() -> argparse.ArgumentParser:
    """The command line; every hyper-parameter defaults to None ("the agent's preset")."""
    parser = ArgumentParser(description=__doc__.split("\n")[0])
    add_common_flags(parser, default_env="Pong")
    parser.add_argument("--algo", choices=ALGOS, default="reinforce", help="reinforce, a2c or ppo")
    parser.add_argument("--n-envs", type=int, help="a2c, ppo: environments stepped together"
                        + unset_help("n_envs", dataclasses.MISSING, RUN_PRESETS))
    add_run_flags(parser, RUN_PRESETS)
    common = parser.add_argument_group("hyper-parameters of every algorithm (unset: the preset)")
    add_config_flags(common, PolicyConfig, skip={"seed"}, aliases={"learning_rate": ["--lr"]},
                     presets=labelled_presets(ALGOS))
    # the other fields, one group per set of algorithms that has them ("a2c, ppo only", ...)
    owners = {}
    for name, (_, config) in ALGOS.items():
        for field in config.__dataclass_fields__:
            if field not in PolicyConfig.__dataclass_fields__:
                owners.setdefault(field, []).append(name)
    for names in dict.fromkeys(tuple(v) for v in owners.values()):
        config = ALGOS[names[-1]][1]  # the most derived config: its docstrings are the fullest
        group = parser.add_argument_group(f"{', '.join(names)} only")
        add_config_flags(group, config, skip={f for f in config.__dataclass_fields__
                                              if tuple(owners.get(f, ())) != names},
                         presets=labelled_presets({name: ALGOS[name] for name in names}))
    return parser


def labelled_presets(algos: dict) -> dict:
    """{"<algo> <policy kind>": preset} of the agents in ``algos``, for the flags' help (a
    "<kind>-box" entry as it applies: laid over its kind)."""
    return {f"{name} {kind}": kind_preset(agent_cls.PRESETS, kind.removesuffix("-box"),
                                          continuous=kind.endswith("-box"))
            for name, (agent_cls, _) in algos.items() for kind in agent_cls.PRESETS}


# What the scripts know of a game, so that no agent has to: for each policy kind, the env's
# input and the agent settings that go with it (those the chosen algorithm has). Pong is the
# seed book's game: REINFORCE gets the book's input and network, its returns restarting at
# every point (an MLP policy gets the same input), and ALE's default sticky actions as the
# book's Pong-v0 had; a CNN policy (A2C's and PPO's default) gets 4 x 84 x 84 frames without
# sticky actions, as DQN trains (ATARI_TRAINING_ENV_KWARGS), and the 2013 network, on which
# A2C learned Pong here (the Nature CNN costs three times as much per frame).
GAMES = {
    "pong": {
        "book": (dict(preprocess="pg", actions="updown"), dict(policy="book", reset_on_reward=True)),
        "mlp": (dict(preprocess="pg", actions="updown"), dict(policy="mlp", reset_on_reward=True)),
        "cnn": (dict(preprocess="dqn", **ATARI_TRAINING_ENV_KWARGS),
                dict(policy="cnn", network="small", reset_on_reward=True)),
    },
}


def is_pong(name: str) -> bool:
    """Pong by any name envs.make accepts ("Pong", "pong", "ALE/Pong-v5"): the book's game."""
    return envs.atari_game(name) == "pong"


def game_setup(args: argparse.Namespace) -> tuple[dict, dict]:
    """(env keyword arguments, agent settings) from ``GAMES`` for the run's env and policy kind
    (unset or "auto": "book" for REINFORCE, "cnn" for A2C and PPO); ({}, {}) for other envs."""
    game = GAMES.get(envs.atari_game(args.env) or "")
    if game is None:
        return {}, {}
    kind = args.policy if args.policy not in (None, "auto") else (
        "cnn" if args.algo in VECTOR_ALGOS else "book")
    env, agent = game.get(kind, ({}, {}))
    fields = ALGOS[args.algo][1].__dataclass_fields__
    return env, {name: value for name, value in agent.items() if name in fields}


def env_kwargs(args: argparse.Namespace) -> dict:
    """Keyword arguments for envs.make/make_vec: the Gridworld flags, the game's input for the
    policy kind (``GAMES``), then ``--env-kwargs``."""
    kwargs = {name: value for name, value in (("living_reward", args.living_reward),
                                               ("slip", args.slip)) if value is not None}
    kwargs.update(game_setup(args)[0])
    kwargs.update(args.env_kwargs or {})
    return kwargs


def make_envs(args: argparse.Namespace) -> tuple:
    """(training env: a vector env for a2c and ppo, evaluation env); exits with one line on failure."""
    kwargs = env_kwargs(args)
    try:
        train = (envs.make_vec(args.env, args.n_envs, **kwargs) if args.algo in VECTOR_ALGOS
                 else envs.make(args.env, **kwargs))
        return train, envs.make(args.env, **envs.evaluation_kwargs(args.env, kwargs))
    except _ENV_ERRORS as e:
        fail(f"cannot make env {args.env!r}{' with ' + str(kwargs) if kwargs else ''}: {e}")


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    resume_dir = args.resume
    if resume_dir:
        run, args, typed = resumed_args(parser, args, argv, RUN_IDENTITY + ("algo", "n_envs"))
    agent_cls, config_cls = ALGOS[args.algo]
    foreign = [k for name, (_, c) in ALGOS.items() if name != args.algo
               for k in given_values(args, c.__dataclass_fields__)
               if k not in config_cls.__dataclass_fields__]
    if foreign:
        fail(f"--{foreign[0].replace('_', '-')} does not apply to --algo {args.algo}")
    if not resume_dir and args.n_envs is not None and args.algo not in VECTOR_ALGOS:
        fail(f"--n-envs does not apply to --algo {args.algo}: it plays one env, an episode at a time")
    fill_defaults(args, RUN_PRESETS["pong" if is_pong(args.env) else "other"])
    env, eval_env = make_envs(args)
    check_run_flags(args)
    try:
        if resume_dir:
            latest = latest_checkpoint(run)
            # the hyper-parameters typed now: load applies them or refuses those it cannot
            agent = agent_cls.load(latest, env, **{k: getattr(args, k) for k in typed
                                                   if k in config_cls.__dataclass_fields__})
        else:
            hyper = {**game_setup(args)[1], **given_values(args, config_cls.__dataclass_fields__),
                     "seed": args.seed}
            agent = agent_cls(env, **hyper)  # before the run folder: a refused config leaves nothing
            run = open_run(args, f"pg-{args.algo}", dataclasses.asdict(agent.config))
    except (ValueError, TypeError, DeviceUnavailableError, gym.error.Error) as e:
        fail(e)
    if resume_dir:
        record_resume(run, args, typed, agent)
    train_in_run(agent, run, args, eval_env, f"{args.algo} on {args.env} (policy {agent.config.policy})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
