"""Tabular Q-learning (Watkins 1989), in the seed book's form and in the textbook TD form.

Two update rules for one table Q (S, A):

``rule="book"`` -- the room chapter's algorithm, kept exactly, for a room graph (RoomExit):
    alpha = 1 and no terminal cut-off:  Q(s, a) <- R(s, a) + gamma * max_a' Q(s', a');
    every action is drawn uniformly from the valid ones; an episode runs until the env ends
    it, and then, as the book's loop does, one more update is made from the goal with a random
    door of the goal room. The Gymnasium episode is over by then (and the env's ``P`` makes the
    goal absorbing, as it should), so that update reads the book's reward matrix
    ``env.unwrapped.R`` (-1 = no door; action a leads to room a). It is what lets the goal
    "keep paying" 100 via 5 -> 5 and lifts the raw table to 500/400/320/256 at gamma = 0.8;
    with terminal handling (rule "td", or the planners) the fixed point is 100/80/64/51.2.

``rule="td"`` (default) -- the temporal-difference rule with proper terminal handling:
    Q(s, a) <- Q(s, a) + alpha * (r + gamma * max_a' Q(s', a') * (not terminated) - Q(s, a));
    a truncated episode (time limit) still bootstraps from s'. Actions are epsilon-greedy,
    epsilon_k = max(epsilon_min, epsilon * epsilon_decay ** k) in episode k.

Both respect ``info["action_mask"]`` when the env provides one (RoomExit, Taxi): the agent
remembers the last mask seen in each state and never explores, bootstraps from (td) or
greedily picks an action outside it. Greedy ties go to the first action, as ``np.argmax``.
"""
from __future__ import annotations

import os

import numpy as np

from agents.base import env_signature, load_checkpoint, save_checkpoint
from agents.mdp import discrete_sizes, model_of
from rlkit.checks import check, integer

RULES = ("td", "book")
NO_DOOR = -1  # the book's R marks a missing door with -1


def _room_graph_rewards(env) -> np.ndarray:
    """The book's reward matrix R (S, S) of a room-graph env; ValueError if it has none."""
    R = getattr(env.unwrapped, "R", None)
    n_states, n_actions = discrete_sizes(env)
    if R is None or np.shape(R) != (n_states, n_actions) or n_states != n_actions:
        raise ValueError(f"rule='book' is the room chapter's algorithm: it needs the env's "
                         f"reward matrix R (rooms x rooms, action a = go to room a), as "
                         f"RoomExit has; {type(env.unwrapped).__name__} has none. Use rule='td'.")
    return np.asarray(R, dtype=float)


class QLearning:
    """Q-learning agent for an env with Discrete observations and actions.

    Args:
        env: the Gymnasium env (``None`` only via ``load``: predict works, learn does not).
        rule: ``"td"`` or ``"book"`` (see the module docstring).
        gamma: discount in [0, 1].
        alpha: step size in (0, 1]; default 0.1 for td. The book's rule is alpha = 1.
        epsilon, epsilon_min, epsilon_decay: the td exploration schedule, per episode.
        seed: seeds the agent's random choices and the env's first reset.
    """

    def __init__(self, env, rule: str = "td", gamma: float = 0.99, alpha: float | None = None,
                 epsilon: float = 1.0, epsilon_min: float = 0.05, epsilon_decay: float = 0.99,
                 seed: int | None = None):
        if rule not in RULES:
            raise ValueError(f"rule must be one of {RULES}, got {rule!r}")
        if rule == "book" and alpha not in (None, 1, 1.0):
            raise ValueError(f"the book's rule has alpha = 1; got alpha={alpha}")
        alpha = (1.0 if rule == "book" else 0.1) if alpha is None else float(alpha)
        if not 0.0 < alpha <= 1.0:
            raise ValueError(f"alpha must be in (0, 1], got {alpha}")
        if not 0.0 <= gamma <= 1.0:
            raise ValueError(f"gamma must be in [0, 1], got {gamma}")
        if not (0.0 <= epsilon_min <= epsilon <= 1.0 and 0.0 < epsilon_decay <= 1.0):
            raise ValueError("need 0 <= epsilon_min <= epsilon <= 1 and 0 < epsilon_decay <= 1, "
                             f"got {epsilon_min}, {epsilon}, {epsilon_decay}")
        self.env = env
        self.rule, self.gamma, self.alpha = rule, float(gamma), alpha
        self.epsilon, self.epsilon_min = float(epsilon), float(epsilon_min)
        self.epsilon_decay = float(epsilon_decay)
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.episodes_done = 0
        self._env_seeded = False
        if env is not None:
            n_states, n_actions = discrete_sizes(env)
            self.q_table = np.zeros((n_states, n_actions))
            # Actions allowed in each state: all, until an action mask says otherwise; the
            # book's rule knows the doors from R from the start.
            self.valid = np.ones((n_states, n_actions), dtype=bool)
            if rule == "book":
                self._book_R = _room_graph_rewards(env)
                self.valid = self._book_R != NO_DOOR

    # ---- acting ---------------------------------------------------------------------------

    @property
    def current_epsilon(self) -> float:
        """Exploration rate of the next episode (the book's rule always explores: 1.0)."""
        if self.rule == "book":
            return 1.0
        return max(self.epsilon_min, self.epsilon * self.epsilon_decay ** self.episodes_done)

    def _greedy(self, s: int) -> int:
        return int(np.argmax(np.where(self.valid[s], self.q_table[s], -np.inf)))

    def _random(self, s: int) -> int:
        return int(self.rng.choice(np.flatnonzero(self.valid[s])))

    def predict(self, obs: int, deterministic: bool = True) -> int:
        """Greedy action in state ``obs``; epsilon-greedy (current epsilon) if not deterministic."""
        s = int(obs)
        if not deterministic and self.rng.random() < self.current_epsilon:
            return self._random(s)
        return self._greedy(s)

    ACTION_VALUES = "Q-values"  # what action_values returns, as a viewer's panel names it

    def action_values(self, obs: int) -> np.ndarray:
        """Q(obs, .), shape (n_actions,); NaN for an action that does not exist in that state."""
        s = int(obs)
        return np.where(self.valid[s], self.q_table[s], np.nan)

    def _see(self, s: int, info: dict) -> None:
        mask = info.get("action_mask")
        if mask is not None:
            self.valid[s] = np.asarray(mask, dtype=bool)

    # ---- learning -------------------------------------------------------------------------

    def update(self, s: int, a: int, r: float, s_next: int, terminated: bool) -> float:
        """Apply this agent's rule to one transition; returns the new Q(s, a)."""
        q = self.q_table
        if self.rule == "book":
            q[s, a] = r + self.gamma * q[s_next].max()
        else:
            future = 0.0 if terminated else q[s_next][self.valid[s_next]].max()
            q[s, a] += self.alpha * (r + self.gamma * future - q[s, a])
        return float(q[s, a])

    def _book_update_from_goal(self, goal: int) -> None:
        # The book's loop updates once more from the goal before it stops. The episode is over
        # for Gymnasium, so the move is read from the book's R: a random door a of the goal
        # room, reward R[goal, a], next room a.
        a = self._random(goal)
        self.update(goal, a, self._book_R[goal, a], a, terminated=False)

    def learn(self, episodes: int, callback=None) -> "QLearning":
        """Run ``episodes`` episodes, updating after every step.

        ``callback({"episode", "return", "length", "epsilon"})`` after each episode; returning
        False stops early.
        """
        if self.env is None:
            raise ValueError("this QLearning agent has no env; pass env= to load()")
        check("episodes", episodes, integer(0))
        for _ in range(episodes):
            epsilon = self.current_epsilon
            seed = None if self._env_seeded else self.seed
            s, info = self.env.reset(seed=seed)
            self._env_seeded = True
            self._see(s, info)
            episode_return, length = 0.0, 0
            while True:
                explore = self.rule == "book" or self.rng.random() < epsilon
                a = self._random(s) if explore else self._greedy(s)
                s_next, r, terminated, truncated, info = self.env.step(a)
                self._see(s_next, info)
                self.update(s, a, r, s_next, terminated)
                episode_return += float(r)
                length += 1
                s = s_next
                if terminated or truncated:
                    break
            if self.rule == "book" and terminated:
                self._book_update_from_goal(s)
            self.episodes_done += 1
            row = {"episode": self.episodes_done, "return": episode_return, "length": length,
                   "epsilon": epsilon}
            if callback is not None and callback(row) is False:
                break
        return self

    # ---- reading the table ----------------------------------------------------------------

    def greedy_path(self, start: int, max_steps: int | None = None) -> list[int]:
        """States visited following the greedy action from ``start``, start included.

        Uses the env's model ``P``, following the most likely outcome of each action (the only
        one in a deterministic world). Stops when the episode would end, when a state repeats
        (the path would loop forever) or after ``max_steps`` moves (default: n_states).
        """
        P = model_of(self.env)
        max_steps = self.q_table.shape[0] if max_steps is None else max_steps
        path, s = [int(start)], int(start)
        for _ in range(max_steps):
            outcomes = P[s][self._greedy(s)]
            _, s_next, _, terminated = max(outcomes, key=lambda o: o[0])  # first on ties
            s_next = int(s_next)
            looped = s_next in path
            path.append(s_next)
            if terminated or looped:
                break
            s = s_next
        return path

    def normalised_table(self) -> np.ndarray:
        """The book's normalised table: 100 * Q / max(Q) (its 80/64/51.2 for the room world)."""
        top = self.q_table.max()
        return 100.0 * self.q_table / top if top > 0 else self.q_table.copy()

    # ---- saving ---------------------------------------------------------------------------

    def hyperparams(self) -> dict:
        return {"rule": self.rule, "gamma": self.gamma, "alpha": self.alpha,
                "epsilon": self.epsilon, "epsilon_min": self.epsilon_min,
                "epsilon_decay": self.epsilon_decay, "seed": self.seed}

    def save(self, path: str | os.PathLike) -> None:
        """Write the table, the action masks seen and the RNG state to ``path`` (.npz + JSON)."""
        meta = {"hyperparams": self.hyperparams(), "episodes_done": self.episodes_done,
                "rng_state": self.rng.bit_generator.state}
        if self.env is not None:
            meta["env"] = env_signature(self.env)
        save_checkpoint(path, self, meta, q_table=self.q_table, valid=self.valid)

    @classmethod
    def load(cls, path: str | os.PathLike, env=None) -> "QLearning":
        """An agent restored from ``save``; give ``env`` (checked against the file) to go on learning."""
        header, arrays = load_checkpoint(path, cls, env)
        agent = cls(env, **header["hyperparams"])
        agent.q_table, agent.valid = arrays["q_table"], arrays["valid"].astype(bool)
        agent.episodes_done = int(header["episodes_done"])
        agent.rng.bit_generator.state = header["rng_state"]
        return agent
