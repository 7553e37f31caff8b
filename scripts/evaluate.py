"""Score a trained agent: play N seeded episodes and report every return and their statistics.

    python scripts/evaluate.py runs/dqn-CartPole-v1-... --episodes 30 --seed 0
    python scripts/evaluate.py results/pong-dqn-collapsed --episodes 10 --json score.json
    python scripts/evaluate.py RUN --env-kwargs '{"repeat_action_probability": 0.25}'  # sticky actions
    python scripts/evaluate.py RUN --epsilon 0.05 --record clip.mp4

The agent and its env are found as ``watch.py`` finds them (a run folder, a results folder or a
checkpoint; the env from the run's config.json, ``--env-kwargs`` on top). The episodes are
played as a training run's evaluation plays them (``agents.training_run.play_evaluation``):
the first reset is seeded with ``--seed`` (and so are a DQN's ``--epsilon`` draws), the agent
acts deterministically, and an episode is cut at ``--max-steps`` (counted as truncated). Same
agent, same flags: the same numbers. Prints each episode's return and length, then mean, std
(population, as eval.csv), min and max; ``--json`` writes them all to a file.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import gymnasium as gym

from _agents import checkpoint_header, env_name, load_agent, locate, run_env
from _tabular import ArgumentParser, fail, json_object

import envs
from agents.dqn import DQN
from agents.training_run import MAX_EVAL_STEPS, play_evaluation
from rlkit.runs import write_json_atomic
from rlkit.viewer import VideoRecorder

ATARI_FPS = 15  # a recording plays at real time: ALE's 60 frames/s at frame skip 4


def parse_args(argv=None) -> argparse.Namespace:
    p = ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("source", help="a run directory, a results folder or a checkpoint (.npz)")
    p.add_argument("--episodes", type=int, default=30, help="episodes to play (default 30)")
    p.add_argument("--seed", type=int, default=0, help="seeds the first reset (and a DQN's epsilon draws)")
    p.add_argument("--epsilon", type=float, default=None,
                   help="DQN: probability of a random action (its eval_epsilon; default: the run's)")
    p.add_argument("--env", help="environment (default: the run's)")
    p.add_argument("--env-kwargs", type=json_object, default=None, metavar="JSON",
                   help='keyword arguments for envs.make on top of the run\'s, e.g. '
                        '\'{"repeat_action_probability": 0.25}\'')
    p.add_argument("--max-steps", type=int, default=MAX_EVAL_STEPS,
                   help=f"an episode is cut after this many steps (default {MAX_EVAL_STEPS:,})")
    p.add_argument("--record", metavar="FILE", help="write every frame of the episodes to FILE.mp4 or FILE.gif")
    p.add_argument("--json", metavar="FILE", help="write the results to FILE as JSON")
    args = p.parse_args(argv)
    if args.episodes < 1 or args.max_steps < 1:
        fail("--episodes and --max-steps must be at least 1")
    if args.seed < 0:
        fail(f"--seed must be at least 0, got {args.seed}")
    if args.epsilon is not None and not 0 <= args.epsilon <= 1:
        fail(f"--epsilon must be in [0, 1], got {args.epsilon}")
    if args.record and Path(args.record).suffix.lower() not in VideoRecorder.FORMATS:
        fail(f"cannot record to {args.record}: the name must end in {' or '.join(VideoRecorder.FORMATS)}")
    return args


class Recording(gym.Wrapper):
    """Adds the env's rendered frame to a recorder after every reset and step."""

    def __init__(self, env, recorder: VideoRecorder):
        super().__init__(env)
        self.recorder = recorder

    def reset(self, **kwargs):
        result = self.env.reset(**kwargs)
        self.recorder.add(self.env.render())
        return result

    def step(self, action):
        result = self.env.step(action)
        self.recorder.add(self.env.render())
        return result


def main(argv=None) -> dict:
    args = parse_args(argv)
    checkpoint, config = locate(args.source)
    header = checkpoint_header(checkpoint)
    name = env_name(args.source, args.env, config, header)
    extra = {**(args.env_kwargs or {}), **({"render_mode": "rgb_array"} if args.record else {})}
    env = run_env(name, config, extra)
    agent = load_agent(checkpoint, header, env)
    title = type(agent).__name__
    if args.epsilon is not None:
        if not isinstance(agent, DQN):
            fail(f"--epsilon is for DQN agents (their eval_epsilon); {checkpoint} holds a {title}, "
                 f"which plays its most likely action")
        agent.config.eval_epsilon = args.epsilon
    recorder = None
    if args.record:
        fps = ATARI_FPS if envs.is_atari(name) else env.metadata.get("render_fps") or 30
        recorder = VideoRecorder(args.record, fps)
        env = Recording(env, recorder)
    try:
        try:
            result = play_evaluation(agent, env, args.episodes, seed=args.seed, max_steps=args.max_steps)
        finally:
            if recorder is not None:
                recorder.close()
            env.close()
    except (RuntimeError, ValueError) as e:
        fail(e)
    except KeyboardInterrupt:
        fail("interrupted (Ctrl+C): no summary", status=130)  # 130: the shell's code for SIGINT
    returns, lengths = result.returns, result.lengths
    for i, (r, n, was_cut) in enumerate(zip(returns, lengths, result.cut), 1):
        cut = f", cut at --max-steps {args.max_steps:,}" if was_cut else ""
        print(f"episode {i}: return {r:.6g} ({n} steps{cut})")
    summary = {
        "source": str(args.source), "checkpoint": str(checkpoint), "agent": title, "env": name,
        "env_kwargs": args.env_kwargs or {}, "seed": args.seed,
        "epsilon": float(agent.config.eval_epsilon) if isinstance(agent, DQN) else None,
        "max_steps": args.max_steps, "episodes": len(returns),
        "mean": float(returns.mean()), "std": float(returns.std()),
        "min": float(returns.min()), "max": float(returns.max()), "truncated": int(result.truncated),
        "returns": [float(r) for r in returns], "lengths": [int(n) for n in lengths]}
    truncated = f", {result.truncated} cut at --max-steps" if result.truncated else ""
    print(f"{title} on {name}: {len(returns)} episodes (seed {args.seed}{truncated}): "
          f"mean {summary['mean']:.6g}, std {summary['std']:.6g}, min {summary['min']:.6g}, "
          f"max {summary['max']:.6g}")
    if recorder is not None:
        w, h = recorder.size or (0, 0)
        print(f"recorded {recorder.frames} frames of {w}x{h} at {recorder.fps:g} fps to {args.record}")
    if args.json:
        try:
            write_json_atomic(Path(args.json), summary)
        except OSError as e:
            fail(f"cannot write {args.json}: {e}")
        print(f"wrote {args.json}")
    return summary


if __name__ == "__main__":
    main()
