"""Compare planners and learners on one world, with the same budget for every learner.

    python scripts/compare.py --env Gridworld --agents value_iteration,q_learning,dqn,pg --seeds 3
    python scripts/compare.py --env RoomExit
    python scripts/compare.py --env Gridworld --living-reward -0.1 \
        --env-kwargs '{"grid": ["....G", ".#..P", "S...."]}'

Each learner trains ``--seeds`` times for ``--steps`` environment steps (a per-world default;
see WORLDS) with its own defaults and the shared ``--gamma``. Value iteration solves the
world's model; its Q* says which actions are optimal in each state (every action within
1e-6 of the best counts, so ties are no error). Written to ``--out`` (default
``results/compare-<env>/``) and printed:

- table.md: per agent, the final greedy return (mean of ``--eval-episodes`` episodes, mean
  +- std over seeds), the share of decision states whose greedy action is optimal, the
  steps and wall time until that share first reached 100% (mean over the seeds that got
  there), and the wall time of training;
- curves.png: training returns against environment steps (mean over seeds, min-max band)
  and the optimal return (value iteration's greedy return, as in the table) dashed;
- results.json: the numbers per seed.

On a world without a model (no ``P``) only learners are compared and the policy columns
read n/a.

``--ray`` runs each learner's seeds as trials of the sweep runner (``rlkit/sweeps.py``, as
``scripts/sweep.py`` does) on Ray started here, in parallel; ``--address HOST:PORT`` on that Ray
cluster. Each (learner, seed) is then this script in a process of its own, writing its numbers
to ``<out>/trials/runs/<learner>-seed<S>/result.json``; the table, figure and results.json are
those of the same runs in this process.
"""
from __future__ import annotations

import argparse
import shlex
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from _tabular import ArgumentParser, fail, json_object, make_env

from agents.dqn import DQN
from agents.mdp import model_of
from agents.planning import ValueIteration
from agents.policy_gradient import PolicyGradient
from agents.q_learning import QLearning
from agents.training_run import TrainingRun, evaluate
from rlkit.plotting import learning_curves, plt
from rlkit.runs import atomic_open, read_json, write_json_atomic
from rlkit.sweeps import SweepFolder, Trial, describe_trial, run_trials

PLANNERS = ("value_iteration",)
LEARNERS = ("q_learning", "dqn", "pg")
# Discount and env-step budget per world (lower-case name prefix); RoomExit uses the book's 0.8.
WORLDS = {"roomexit": dict(gamma=0.8, steps=3_000),
          "gridworld": dict(gamma=0.99, steps=20_000),
          "frozenlake": dict(gamma=0.99, steps=100_000)}
OTHER_WORLD = dict(gamma=0.99, steps=20_000)
OPTIMAL_TOL = 1e-6       # relative: Q*(s, a) >= V*(s) - tol * (1 + |V*(s)|) counts as optimal
CHECK_EVERY = 50         # DQN: steps between looks at its greedy policy
TRIAL_FLAGS = ("trial", "result")  # set only in the process of one --ray trial


def parse_args(argv=None) -> argparse.Namespace:
    p = ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--env", default="RoomExit", help="RoomExit, Gridworld, FrozenLake-v1 or another Discrete world")
    p.add_argument("--agents", default="value_iteration,q_learning,dqn,pg",
                   help=f"comma-separated, from {', '.join(PLANNERS + LEARNERS)}")
    p.add_argument("--seeds", type=int, default=3, help="training runs per learner (seeds 0..N-1)")
    p.add_argument("--steps", type=int, help="environment steps per learner run (default: by world)")
    p.add_argument("--gamma", type=float, help="discount of every agent (default: by world)")
    p.add_argument("--eval-episodes", type=int, default=1000,
                   help="greedy episodes for the final return (default 1000)")
    p.add_argument("--living-reward", type=float, help="Gridworld: reward of entering a non-exit cell")
    p.add_argument("--slip", type=float, help="Gridworld: probability of sliding sideways")
    p.add_argument("--env-kwargs", type=json_object, default=None, metavar="JSON",
                   help='more keyword arguments for envs.make, e.g. \'{"grid": ["...G", ".#.P", "S..."]}\' '
                        'or \'{"map_name": "8x8"}\'')
    p.add_argument("--out", help="output folder (default: results/compare-<env>)")
    p.add_argument("--ray", action="store_true",
                   help="run the learners' seeds as trials on Ray started here (rlkit/sweeps.py)")
    p.add_argument("--address", metavar="HOST:PORT", help="run them on this Ray cluster (implies --ray)")
    # one (learner, seed) of a --ray comparison: what a trial runs
    p.add_argument("--trial", nargs=2, metavar=("LEARNER", "SEED"), help=argparse.SUPPRESS)
    p.add_argument("--result", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.ray = args.ray or args.address is not None
    args.agents = [a.strip() for a in args.agents.split(",") if a.strip()]
    for name in args.agents:
        if name not in PLANNERS + LEARNERS:
            fail(f"unknown agent {name!r}: choose from {', '.join(PLANNERS + LEARNERS)}")
    if not args.agents or args.seeds < 1 or (args.steps is not None and args.steps < 1) \
            or args.eval_episodes < 1:
        fail("need at least one agent, --seeds >= 1, --steps >= 1 and --eval-episodes >= 1")
    world = next((v for k, v in WORLDS.items() if args.env.lower().startswith(k)), OTHER_WORLD)
    args.steps = args.steps or world["steps"]
    args.gamma = world["gamma"] if args.gamma is None else args.gamma
    args.out = Path(args.out or f"results/compare-{args.env.replace('/', '_')}")
    return args


def env_kwargs(args) -> dict:
    """The world flags that were given, as keyword arguments of the env."""
    kwargs = {"living_reward": args.living_reward, "slip": args.slip, **(args.env_kwargs or {})}
    return {k: v for k, v in kwargs.items() if v is not None}


# ---- judging a policy against the planner's ---------------------------------------------------

class Judge:
    """Share of decision states whose greedy action is optimal, and when it first reached 1.

    optimal: (S, A) bool, the actions within OPTIMAL_TOL of the best in each state.
    states: (S,) bool, the states where a decision matters (not terminal).
    """

    def __init__(self, optimal: np.ndarray, states: np.ndarray):
        self.optimal, self.states = optimal, states
        self.first_step: int | None = None
        self.first_time: float | None = None
        self._start = time.perf_counter()

    @classmethod
    def from_planner(cls, planner: ValueIteration) -> "Judge":
        V = planner.V[:, None]
        optimal = planner.Q >= V - OPTIMAL_TOL * (1.0 + np.abs(V))
        return cls(optimal, ~planner.model.terminal)

    def restart(self) -> "Judge":
        """A judge with the same answers for a new training run (clock and record reset)."""
        return Judge(self.optimal, self.states)

    def share(self, agent) -> float:
        """Fraction of decision states where ``agent.predict(s)`` is an optimal action."""
        states = np.flatnonzero(self.states)
        greedy = np.array([agent.predict(s) for s in states])
        return float(self.optimal[states, greedy].mean())

    def check(self, agent, step: int) -> float:
        """The share now; notes the step and seconds since the judge started at its first 1.0."""
        share = self.share(agent)
        if share == 1.0 and self.first_step is None:
            self.first_step, self.first_time = step, time.perf_counter() - self._start
        return share


# ---- one training run per (agent, seed) -------------------------------------------------------

@dataclass
class RunResult:
    """What one run of one agent gives the table (times in seconds)."""

    final_return: float
    wall_time: float
    share: float | None = None
    first_step: int | None = None
    first_time: float | None = None
    curve: tuple = field(default=((), ()), repr=False)  # (steps at episode ends, returns)
    note: str = ""


class _EpisodeLog(TrainingRun):
    """A TrainingRun that keeps each episode's (step, return) in memory, writing nothing."""

    def __init__(self, total_steps: int):
        super().__init__(None, total_steps, progress=False)
        self.points: list[tuple[int, float]] = []

    def episode_end(self, step, episode, episode_return, length, epsilon=float("nan")):
        super().episode_end(step, episode, episode_return, length, epsilon)
        self.points.append((step, episode_return))


def train_q_learning(env, seed: int, args, judge: Judge | None) -> tuple[QLearning, list]:
    """QLearning (td rule, its defaults) for args.steps steps, stopping at an episode's end."""
    agent = QLearning(env, gamma=args.gamma, seed=seed)
    points, total = [], 0

    def after_episode(row):
        nonlocal total
        total += row["length"]
        points.append((total, row["return"]))
        if judge is not None:
            judge.check(agent, total)
        return total < args.steps

    agent.learn(np.iinfo(np.int64).max, callback=after_episode)  # the callback ends it
    return agent, points


def deep_trainer(agent_cls):
    """A trainer for a network agent (DQN, REINFORCE): its preset for the observation space,
    args.steps environment steps, the greedy policy judged every CHECK_EVERY steps."""
    def train(env, seed: int, args, judge: Judge | None):
        agent = agent_cls(env, gamma=args.gamma, seed=seed)
        log = _EpisodeLog(args.steps)

        def after_step(agent, step):
            if judge is not None and step % CHECK_EVERY == 0:
                judge.check(agent, step)

        agent.learn(args.steps, callback=after_step, run=log)
        return agent, log.points
    return train


TRAINERS = {"q_learning": train_q_learning, "dqn": deep_trainer(DQN), "pg": deep_trainer(PolicyGradient)}


def run_learner(name: str, seed: int, args, judge: Judge | None) -> RunResult:
    """Train one learner on a fresh env, then evaluate its greedy policy on another."""
    env = make_env(args)
    judge = judge.restart() if judge is not None else None
    start = time.perf_counter()
    try:
        agent, points = TRAINERS[name](env, seed, args, judge)
    except ValueError as e:  # e.g. a tabular learner on a world without Discrete states
        fail(f"{name} on {args.env}: {e}")
    wall = time.perf_counter() - start
    returns = evaluate(agent, make_env(args, evaluation=True), args.eval_episodes, seed=10_000 + seed)
    steps, rets = (np.array(v, dtype=float) for v in zip(*points)) if points else (np.array([]),) * 2
    return RunResult(float(returns.mean()), wall,
                     share=None if judge is None else judge.share(agent),
                     first_step=None if judge is None else judge.first_step,
                     first_time=None if judge is None else judge.first_time,
                     curve=(steps, rets))


def run_trial(args) -> None:
    """``--trial LEARNER SEED --result FILE``: one run of a ``--ray`` comparison, judged against
    the planner as in-process runs are, its RunResult (curve included) written as JSON."""
    name, seed = args.trial[0], int(args.trial[1])
    planner, _ = solve(args)
    result = run_learner(name, seed, args, None if planner is None else Judge.from_planner(planner))
    steps, returns = result.curve
    write_json_atomic(args.result, {**asdict(result), "curve": [list(steps), list(returns)]})


def run_seeds_on_ray(args, argv: list[str]) -> dict[str, list[RunResult]]:
    """Every (learner, seed) as a trial of the sweep runner: this script with ``--trial``."""
    folder = SweepFolder(args.out / "trials")
    learners = [name for name in args.agents if name in LEARNERS]
    trials = {}
    for name in learners:
        for seed in range(args.seeds):
            trial = f"{name}-seed{seed}"
            result = folder.run_dir(trial) / "result.json"
            trials[name, seed] = Trial(trial, (sys.executable, str(Path(__file__).resolve()), *argv,
                                               "--trial", name, str(seed), "--result", str(result)))
    try:
        statuses = run_trials(folder, list(trials.values()), address=args.address, say=lambda line: None)
    except (ImportError, ConnectionError) as e:  # no Ray, or no cluster at --address
        fail(e)
    results = {}
    for (name, _), trial in trials.items():  # in seed order
        if (statuses[trial.name] or {}).get("status") != "finished":
            fail(f"{describe_trial(trial.name, statuses[trial.name])} "
                 f"(its output: {folder.log_file(trial.name)})")
        saved = read_json(folder.run_dir(trial.name) / "result.json")
        saved["curve"] = tuple(np.array(v, dtype=float) for v in saved["curve"])
        results.setdefault(name, []).append(RunResult(**saved))
    return results


def solve(args) -> tuple[ValueIteration | None, RunResult | None, float | None]:
    """Value iteration on the world's model: (planner, its row), or (None, None) without one."""
    env = make_env(args)
    try:
        model_of(env)
    except ValueError:
        return None, None
    start = time.perf_counter()
    try:
        planner = ValueIteration(env, gamma=args.gamma).learn()
    except (ValueError, RuntimeError) as e:
        fail(f"value iteration on {args.env}: {e}")
    wall = time.perf_counter() - start
    returns = evaluate(planner, make_env(args, evaluation=True), args.eval_episodes, seed=10_000)
    row = RunResult(float(returns.mean()), wall, share=1.0, first_time=wall,
                    note=f"model, {len(planner.history)} sweeps")
    return planner, row


# ---- the table -----------------------------------------------------------------------------

def _seconds(t: float) -> str:
    return f"{t:.3f} s" if t < 1 else f"{t:.1f} s"


def table_row(name: str, runs: list[RunResult]) -> str:
    """One markdown row summarising an agent's runs."""
    finals = np.array([r.final_return for r in runs])
    spread = finals.std() if len(finals) > 1 else 0.0
    cells = [name, f"{finals.mean():.3f} ± {spread:.3f}"]
    shares = [r.share for r in runs if r.share is not None]
    if not shares:
        cells += ["n/a", "n/a", "n/a"]
    else:
        low = min(shares)
        cells.append(f"{np.mean(shares):.0%}" + (f" (min {low:.0%})" if low < np.mean(shares) else ""))
        reached = [r for r in runs if r.first_time is not None]
        count = f" ({len(reached)}/{len(runs)} seeds)" if len(runs) > 1 else ""
        if runs[0].note:
            cells.append(runs[0].note)
        elif reached:
            cells.append(f"{np.mean([r.first_step for r in reached]):,.0f}{count}")
        else:
            cells.append(f"never{count}")
        cells.append(_seconds(np.mean([r.first_time for r in reached])) if reached else "-")
    cells.append(_seconds(np.mean([r.wall_time for r in runs])))
    return "| " + " | ".join(cells) + " |"


HEADER = ("| agent | final return (mean ± std over seeds) | optimal greedy actions | "
          "steps to all optimal | time to all optimal | wall time |\n"
          "|---|---:|---:|---:|---:|---:|")


def describe(args, reference: float | None) -> str:
    """The settings of the comparison, in one paragraph."""
    world = args.env + "".join(f", {k.replace('_', ' ')} {v}" for k, v in env_kwargs(args).items())
    text = (f"**{world}**, gamma {args.gamma:g}; learners: {args.seeds} seed(s) x "
            f"{args.steps:,} environment steps each. Final return: greedy policy, mean of "
            f"{args.eval_episodes} episodes. Times are per run (mean over seeds).")
    if reference is not None:
        text += f" Optimal return (value iteration's greedy policy): {reference:.3f}."
    return text


def main(argv=None) -> dict:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    if args.trial:
        return run_trial(args)
    planner, planner_row = solve(args)
    reference = None if planner_row is None else planner_row.final_return
    if planner is None and "value_iteration" in args.agents:
        print(f"{args.env} publishes no model P: comparing learners only")
        args.agents.remove("value_iteration")
    judge = Judge.from_planner(planner) if planner is not None else None
    on_ray = run_seeds_on_ray(args, argv) if args.ray else {}
    results: dict[str, list[RunResult]] = {}
    for name in args.agents:
        if name == "value_iteration":
            results[name] = [planner_row]
            continue
        results[name] = []
        for seed in range(args.seeds):
            results[name].append(on_ray[name][seed] if args.ray else run_learner(name, seed, args, judge))
            r = results[name][-1]
            print(f"{name} seed {seed}: final return {r.final_return:.3f}, "
                  f"optimal share {'n/a' if r.share is None else f'{r.share:.0%}'}, "
                  f"{_seconds(r.wall_time)}", flush=True)
    table = "\n".join([HEADER] + [table_row(name, runs) for name, runs in results.items()])
    args.out.mkdir(parents=True, exist_ok=True)
    with atomic_open(args.out / "table.md") as f:
        command = shlex.join(["python", "scripts/compare.py", *argv])
        f.write(f"{describe(args, reference)}\n\n{table}\n\n`{command}`\n")
    curves = {name: [r.curve for r in runs if len(r.curve[0])]
              for name, runs in results.items() if name in LEARNERS}
    fig = learning_curves({k: v for k, v in curves.items() if v}, xlabel="environment steps",
                          title=f"{args.env}: training returns of the learners",
                          references=None if reference is None else {"optimal (value iteration)": reference})
    fig.savefig(args.out / "curves.png")
    plt.close(fig)
    write_json_atomic(args.out / "results.json", {
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
                     if k not in TRIAL_FLAGS},
        "optimal_return": reference,
        "agents": {name: [{k: v for k, v in asdict(r).items() if k != "curve"} for r in runs]
                   for name, runs in results.items()}})
    print()
    print(describe(args, reference))
    print()
    print(table)
    print(f"\nwritten to {args.out}/ (table.md, curves.png, results.json)")
    return results


if __name__ == "__main__":
    main()
