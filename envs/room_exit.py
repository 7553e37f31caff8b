"""RoomExit: the Q-learning chapter's house of rooms 0-4 with the outside as room 5.

The reward matrix is the seed book's R (rows: current room, columns: action "go to room a");
-1 marks a missing door. Entering room 5 pays 100 and ends the episode.
"""
from __future__ import annotations

import numpy as np

from envs.drawing import AGENT, ARROW, GOAL, GRID_LINE, INK, Canvas
from envs.tabular import TabularEnv

# The seed book's R, copied from its reward table (Q-learning chapter).
BOOK_R = np.array(
    [
        [-1, -1, -1, -1, 0, -1],
        [-1, -1, -1, 0, -1, 100],
        [-1, -1, -1, 0, -1, -1],
        [-1, 0, 0, -1, 0, -1],
        [0, -1, -1, 0, -1, 100],
        [-1, 0, -1, -1, 0, 100],
    ],
    dtype=np.float64,
)
NO_DOOR = -1.0
GOAL_ROOM = 5

# Node centres of the house graph in the pygame picture (pixels); drawn so no doors cross.
_NODE_XY = {5: (240, 60), 4: (100, 170), 1: (380, 170), 3: (240, 240), 0: (100, 320), 2: (380, 320)}
_NODE_RADIUS = 30


class RoomExitEnv(TabularEnv):
    """The seed book's room graph as a Gymnasium environment.

    Observation: the current room, Discrete(6). Action a: "go to room a", Discrete(6).
    Reward: `R[room, a]` for a door (0, or 100 for entering room 5, which terminates).

    Args:
        render_mode: None, "ansi", "rgb_array" or "human".
        invalid_action: what an action without a door does. "stay" (default, the book's
            semantics): reward -1 and the agent stays in its room. "raise": ValueError.

    Attributes:
        R: the book's (6, 6) reward matrix, float64, -1 for a missing door.
        P: toy_text model `P[s][a] = [(1.0, next_state, reward, terminated)]` of the default
            ("stay") semantics; room 5 is absorbing with reward 0 (episodes end on entering it).
        action_names: ("go to room 0", ..., "go to room 5").
    reset options: {"start_room": k} for k in 0-4; otherwise uniform over rooms 0-4.
    info: "action_mask" (int8, shape (6,)): 1 where the current room has a door; "prob".
    """

    def __init__(self, render_mode: str | None = None, invalid_action: str = "stay"):
        """See the class docstring."""
        if invalid_action not in ("stay", "raise"):
            raise ValueError(f"invalid_action must be 'stay' or 'raise', got {invalid_action!r}")
        self.invalid_action = invalid_action
        self.R = BOOK_R.copy()
        self.goal = GOAL_ROOM
        self.action_names = tuple(f"go to room {a}" for a in range(len(self.R)))
        self._masks = (self.R != NO_DOOR).astype(np.int8)
        super().__init__(self._build_model(self.R), render_mode)

    @staticmethod
    def _build_model(R: np.ndarray) -> dict:
        """The deterministic model P of reward matrix R (goal room absorbing)."""
        n = len(R)
        P = {}
        for s in range(n):
            P[s] = {}
            for a in range(n):
                if s == GOAL_ROOM:
                    P[s][a] = [(1.0, s, 0.0, True)]
                elif R[s, a] == NO_DOOR:
                    P[s][a] = [(1.0, s, NO_DOOR, False)]
                else:
                    P[s][a] = [(1.0, a, float(R[s, a]), a == GOAL_ROOM)]
        return P

    def doors(self, room: int | None = None) -> np.ndarray:
        """Indices of the actions with a door from `room` (default: the current room)."""
        return np.flatnonzero(self._masks[self.s if room is None else room])

    def _initial_state(self, options: dict) -> int:
        """Room from options["start_room"], else uniform over the non-goal rooms."""
        if "start_room" in options:
            k = options["start_room"]
            if not (isinstance(k, (int, np.integer)) and 0 <= k < GOAL_ROOM):
                raise ValueError(f"start_room must be a non-goal room from 0 to {GOAL_ROOM - 1}, got {k!r}")
            return int(k)
        return int(self.np_random.integers(GOAL_ROOM))

    def _check_move(self, action: int):
        """In "raise" mode, refuse an action with no door."""
        if self.invalid_action == "raise" and self._masks[self.s, action] == 0:
            raise ValueError(
                f"room {self.s} has no door to room {action}: valid actions are {self.doors().tolist()}"
            )

    def _info(self, prob: float) -> dict:
        """Transition probability and the doors of the room the agent is now in."""
        return {"prob": prob, "action_mask": self._masks[self.s].copy()}

    # --- rendering -----------------------------------------------------------------------
    def _render_text(self) -> str:
        """One line of rooms with the current one bracketed, then its doors (and overlay)."""
        rooms = " ".join(
            (f"[{r}]" if r == self.s else f" {r} ") + ("(exit)" if r == self.goal else "")
            for r in range(self.n_states)
        )
        last = "" if self.last_action is None else f"  ({self.action_names[self.last_action]})"
        lines = [f"room {self.s}{last}", rooms, f"doors: {self.doors().tolist()}"]
        if self.overlay_values is not None:
            lines.append("values: " + " ".join(f"{r}:{v:.3g}" for r, v in enumerate(self.overlay_values)))
        if self.overlay_policy is not None:
            lines.append("policy: " + " ".join(f"{r}->{a}" for r, a in enumerate(self.overlay_policy) if a >= 0))
        return "\n".join(lines) + "\n"

    def _canvas_size(self) -> tuple[int, int]:
        """Fixed 480x400 picture of the graph."""
        return 480, 400

    def _draw(self, canvas: Canvas):
        """The house as a graph: rooms are nodes, doors are edges, the current room is filled."""
        n = self.n_states
        for s in range(n):
            for a in range(s + 1, n):
                if self._masks[s, a] or self._masks[a, s]:
                    canvas.line(_NODE_XY[s], _NODE_XY[a], GRID_LINE, 3)
        if self.overlay_policy is not None:
            for s, a in enumerate(self.overlay_policy):
                if a >= 0 and s != self.goal and self._masks[s, a]:
                    canvas.arrow(*_shorten(_NODE_XY[s], _NODE_XY[a]), ARROW, width=4)
        for r, (x, y) in _NODE_XY.items():
            fill = AGENT if r == self.s else (225, 240, 225) if r == self.goal else (255, 255, 255)
            canvas.circle((x, y), _NODE_RADIUS, fill)
            canvas.circle((x, y), _NODE_RADIUS, GOAL if r == self.goal else INK, 3)
            canvas.text("exit" if r == self.goal else str(r), (x, y), 26)
            if self.overlay_values is not None:
                canvas.text(f"{self.overlay_values[r]:.3g}", (x, y + _NODE_RADIUS + 12), 20)
        canvas.text(f"room {self.s}", (240, 385), 22)


def _shorten(p, q):
    """Segment from p to q trimmed by a node radius at both ends (so arrows meet the circles)."""
    (x0, y0), (x1, y1) = p, q
    d = max(((x1 - x0) ** 2 + (y1 - y0) ** 2) ** 0.5, 1e-9)
    ux, uy = (x1 - x0) / d, (y1 - y0) / d
    r = _NODE_RADIUS + 2
    return (x0 + ux * r, y0 + uy * r), (x1 - ux * r, y1 - uy * r)
