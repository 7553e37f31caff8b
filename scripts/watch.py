"""Watch a trained agent play, in a pygame window with what it thinks beside the game.

    python scripts/watch.py RUN_DIR_OR_CHECKPOINT [--episodes N] [--fps F]
    python scripts/watch.py results/pong-dqn-collapsed             # a committed results folder
    python scripts/watch.py results/pong-dqn-collapsed --headless --episodes 5 --seed 1   # returns only
    python scripts/watch.py --env Gridworld --random --record clip.gif --headless
    python scripts/watch.py --env Pong --play          # you play, with the up/down arrows

The agent class comes from the checkpoint's header and the env from the run's config.json
(its "env" and "env_kwargs"; ``--env`` overrides), else from the env id the checkpoint
recorded. A run directory is watched from ``checkpoints/best.npz``, else
``checkpoints/latest.npz``, else ``agent.npz`` (tabular scripts); a results folder, which
keeps no checkpoints, from its network file: ``q_network.npz`` (a weights-only DQN),
``policy.npz``, or the one agent ``.npz`` at its top level. Pass a file to choose.
Each finished episode's return is printed, then the mean.
The panel shows Q-values (or, for a random agent, action probabilities) as bars with the
chosen action highlighted; for continuous (Box) actions, one bar per action dimension with the
action played, on the scale of the action bounds (a Gaussian policy plays its mean, clipped to
the bounds, as evaluate.py does); on RoomExit and Gridworld the map shows every state's value as a
colour and the greedy action as an arrow. Keys: space pause, right arrow one step, +/-
speed, r restart, q or Esc quit. ``--record out.mp4|out.gif`` writes every frame shown;
``--headless`` draws off-screen (no display needed) and does not wait between steps.
"""
from __future__ import annotations

import argparse

import numpy as np
from gymnasium import spaces

from _agents import checkpoint_header, env_name, load_agent, locate, run_env
from _tabular import ArgumentParser, action_names, fail, json_object

import envs
from envs.atari import UPDOWN_ACTIONS
from rlkit.viewer import PanelInfo, Viewer

ATARI_FPS = 15  # ALE runs at 60 frames/s and an agent step is 4 frames: real time


def parse_args(argv=None) -> argparse.Namespace:
    p = ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("source", nargs="?",
                   help="a run directory, a results folder (e.g. results/pong-dqn-collapsed) or a checkpoint (.npz)")
    p.add_argument("--env", help="environment (default: the run's); RoomExit, Gridworld, Pong, any Atari "
                                 "game (Breakout, ...) or a Gymnasium id")
    p.add_argument("--env-kwargs", type=json_object, default=None, metavar="JSON",
                   help='keyword arguments for envs.make on top of the run\'s, e.g. \'{"slip": 0}\'')
    p.add_argument("--random", action="store_true", help="watch a uniformly random agent")
    p.add_argument("--play", action="store_true", help="Pong: play yourself with the up/down arrows")
    p.add_argument("--episodes", type=int, default=3, help="episodes to play (default 3)")
    p.add_argument("--max-steps", type=int, default=None, help="stop after this many steps in all")
    p.add_argument("--fps", type=float, default=None,
                   help="steps per second (default: the env's render_fps, 4 on the tabular worlds; 15 on Atari games)")
    p.add_argument("--record", metavar="FILE", help="write the window to FILE.mp4 or FILE.gif")
    p.add_argument("--headless", action="store_true", help="no window (SDL dummy driver), no waiting")
    p.add_argument("--seed", type=int, default=0, help="seeds the env's first reset and the random agent")
    args = p.parse_args(argv)
    if args.random + args.play + (args.source is not None) != 1:
        fail("give exactly one of: a run directory, results folder or checkpoint, --random, --play")
    if (args.random or args.play) and not args.env:
        fail(f"--{'random' if args.random else 'play'} needs --env (e.g. --env Gridworld)")
    if args.episodes < 1 or (args.max_steps is not None and args.max_steps < 1):
        fail("--episodes and --max-steps must be at least 1")
    return args


# ---- what the agent thinks -----------------------------------------------------------------

def action_values(agent, obs, n_actions: int) -> tuple[str, np.ndarray]:
    """(heading, (n_actions,) values) for the panel; NaN marks an action that does not exist.

    What the agent answers (``agent.action_values``: Q-values for the value-based agents, the
    policy's probabilities for the policy-gradient ones), uniform probabilities for the random
    agent (None).
    """
    if agent is None:
        return "action probabilities", np.full(n_actions, 1.0 / n_actions)
    return agent.ACTION_VALUES, agent.action_values(obs)


def continuous_action(agent, env, obs) -> tuple[str, np.ndarray]:
    """(heading, action (D,)) for a continuous (Box) action space: the action the env is given,
    which the panel shows itself. A Gaussian policy's density has no bars to draw, so the
    agent plays and shows its mean clipped to the bounds (``predict``, deterministic); the
    random agent a uniform draw within them."""
    if agent is None:
        return "random action", env.action_space.sample()
    return "mean action (clipped)", agent.predict(obs)


def box_range(space: spaces.Box) -> tuple[float, float] | None:
    """(lowest low, highest high) of a Box's bounds, the panel's bar scale; None if unbounded."""
    low, high = float(np.min(space.low)), float(np.max(space.high))
    return (low, high) if np.isfinite(low) and np.isfinite(high) else None


def greedy_overlay(agent, n_states: int, n_actions: int) -> tuple[np.ndarray, np.ndarray]:
    """(values (S,), greedy actions (S,)) of every state, for the map's colours and arrows."""
    table = np.stack([action_values(agent, s, n_actions)[1] for s in range(n_states)])
    usable = np.isfinite(table).any(axis=1)
    filled = np.where(np.isfinite(table), table, -np.inf)
    values = np.where(usable, filled.max(axis=1), 0.0)
    policy = np.where(usable, filled.argmax(axis=1), -1)
    return values, policy


def panel_action_names(env, play: bool) -> list[str]:
    """A name per action: ALE's meanings for Atari, else the env's names (or indices); for a
    continuous (Box) action space a name per dimension with its bounds, e.g. "a0 [-2, 2]"."""
    if isinstance(env.action_space, spaces.Box):
        space = env.action_space
        return [f"a{i} [{lo:g}, {hi:g}]" for i, (lo, hi) in enumerate(zip(space.low.ravel(),
                                                                           space.high.ravel()))]
    meanings = getattr(env.unwrapped, "get_action_meanings", None)
    names = list(meanings()) if meanings is not None else action_names(env)
    if len(names) != env.action_space.n:
        names = [str(a) for a in range(env.action_space.n)]
    if play:  # the arrows a person presses, next to ALE's names for those actions
        for a, key in zip(UPDOWN_ACTIONS, ("up", "down")):
            names[a] = f"{names[a]}={key}"
    return names


# ---- the loop -------------------------------------------------------------------------------

def watch(env, viewer: Viewer, agent, title: str, episodes: int, max_steps: int | None,
          seed: int, play: bool = False) -> dict:
    """Play until `episodes` episodes end, `max_steps` steps are taken, or the user quits (the
    window, or Ctrl+C in the terminal).

    Every state is shown once: the state after each reset and after each step, so the number
    of frames is resets + steps. Returns {"episodes": finished episodes, "resets", "steps",
    "returns": returns of finished episodes}.
    """
    names = panel_action_names(env, play)
    n_actions = len(names)
    continuous = isinstance(env.action_space, spaces.Box)
    value_range = box_range(env.action_space) if continuous else None
    if agent is None:
        env.action_space.seed(seed)
    reset_state = getattr(agent, "reset_state", None)

    def reset(first: bool):
        if reset_state is not None:
            reset_state()
        return env.reset(seed=seed if first else None)[0]

    obs, resets, steps, returns = reset(True), 1, 0, []
    episode_return, t, done, last_action = 0.0, 0, False, None
    try:
        while True:
            if play:
                kind, values, chosen = "your last action", None, last_action
            elif done:
                kind, values, chosen = "actions", None, None
            elif continuous:
                kind, values = continuous_action(agent, env, obs)
                chosen = values
            else:
                kind, values = action_values(agent, obs, n_actions)
                chosen = env.action_space.sample() if agent is None else agent.predict(obs)
            note = "episode over" if done else ""
            highlight = None if continuous else chosen  # every dimension of a Box action is played
            viewer.show(env.render(), PanelInfo(title, names, values, kind, highlight, resets, t,
                                                episode_return, note, value_range))
            command = viewer.wait()
            if done:
                returns.append(episode_return)
                print(f"episode {len(returns)}: return {episode_return:.6g} ({t} steps)", flush=True)
            if command == "quit" or (done and len(returns) >= episodes) or \
                    (max_steps is not None and steps >= max_steps):
                break
            if command == "restart" or done:
                obs, resets = reset(False), resets + 1
                episode_return, t, done, last_action = 0.0, 0, False, None
                continue
            if play:
                chosen = UPDOWN_ACTIONS[0] if viewer.held("up") else \
                    UPDOWN_ACTIONS[1] if viewer.held("down") else 0
            obs, reward, terminated, truncated, _ = env.step(chosen)
            steps, t, last_action = steps + 1, t + 1, chosen
            episode_return += float(reward)
            done = terminated or truncated
    except KeyboardInterrupt:  # Ctrl+C in the terminal ends the show as the window's quit does
        pass
    return {"episodes": len(returns), "resets": resets, "steps": steps, "returns": returns}


def main(argv=None) -> dict:
    args = parse_args(argv)
    agent, config, header = None, {}, {}
    if args.source:
        checkpoint, config = locate(args.source)
        header = checkpoint_header(checkpoint)
    name = env_name(args.source, args.env, config, header)
    if args.play and envs.atari_game(name) != "pong":
        fail(f"--play is for Pong (arrow keys against the built-in player), not {name}")
    env = run_env(name, config, {**(args.env_kwargs or {}), "render_mode": "rgb_array"})
    if args.source:
        agent = load_agent(checkpoint, header, env)
    title = "you" if args.play else "random agent" if agent is None else type(agent).__name__
    if agent is not None and hasattr(env.unwrapped, "set_overlay"):
        env.unwrapped.set_overlay(*greedy_overlay(agent, env.observation_space.n, env.action_space.n))
    fps = args.fps or (ATARI_FPS if envs.is_atari(name) else env.metadata.get("render_fps") or 30)
    try:
        viewer = Viewer(f"rlkit watch: {title} on {name}", fps, args.headless, args.record)
        try:
            summary = watch(env, viewer, agent, title, args.episodes, args.max_steps, args.seed, args.play)
        finally:
            viewer.close()
            env.close()
    except (RuntimeError, ValueError) as e:
        fail(e)
    rets = ", ".join(f"{r:.6g}" for r in summary["returns"]) or "none finished"
    mean = f"; mean {np.mean(summary['returns']):.6g}" if summary["returns"] else ""
    print(f"{title} on {name}: {summary['steps']} steps, {summary['episodes']} episodes "
          f"(returns: {rets}{mean})")
    if viewer.recorder is not None:
        w, h = viewer.recorder.size
        print(f"recorded {viewer.recorder.frames} frames of {w}x{h} at {viewer.recorder.fps:g} fps "
              f"to {args.record}")
    return {**summary, "frames": viewer.frames_shown, "size": viewer.size}


if __name__ == "__main__":
    main()
