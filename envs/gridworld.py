"""Gridworld: the MDP chapter's stochastic grid, on any rectangular text map.

Map characters (rows top to bottom): `S` start, `.` floor, `#` wall, `G` +1 exit, `P` -1 exit.
A move goes the intended way with probability 1 - slip and slips to each perpendicular side
with slip / 2; hitting a wall or the edge leaves the agent in place. The reward of a step is
that of the cell entered: `living_reward` for S and `.` cells, the exit's reward for G / P,
which ends the episode. State index = row * ncols + col from the top-left; walls keep their
index but are never entered.
"""
from __future__ import annotations

import numpy as np

from envs.drawing import AGENT, ARROW, GOAL, GRID_LINE, INK, PIT, WALL, Canvas, value_colour
from envs.tabular import TabularEnv

# The classic 4x3 world: start bottom-left, a wall in the middle, +1 top-right, -1 below it.
CLASSIC_4X3 = ("...G", ".#.P", "S...")

CELL_KINDS = {"S": "start", ".": "floor", "#": "wall", "G": "+1 exit", "P": "-1 exit"}
EXITS = "GP"

# Action index -> (d_row, d_col); clockwise, so (a +- 1) % 4 are the perpendicular moves.
ACTION_NAMES = ("up", "right", "down", "left")
ACTION_DELTAS = ((-1, 0), (0, 1), (1, 0), (0, -1))
_ASCII_ARROWS = "^>v<"


def parse_grid(grid) -> np.ndarray:
    """Check a text map and return it as an (nrows, ncols) array of one-character strings.

    `grid` is a sequence of row strings or one multi-line string (blank lines and surrounding
    whitespace of each line are ignored). Raises ValueError naming the problem and position:
    empty map, ragged rows, unknown character, no start or several starts, no exit.
    """
    if isinstance(grid, str):
        rows = [line.strip() for line in grid.strip().splitlines() if line.strip()]
    else:
        rows = [str(r) for r in grid]
    if not rows or not rows[0]:
        raise ValueError("Gridworld map is empty: give at least one row of cells")
    ncols = len(rows[0])
    for r, row in enumerate(rows):
        if len(row) != ncols:
            raise ValueError(
                f"Gridworld map is ragged: row {r} has {len(row)} cells but row 0 has {ncols}; "
                "every row must have the same length"
            )
        for c, ch in enumerate(row):
            if ch not in CELL_KINDS:
                allowed = ", ".join(f"'{k}' {v}" for k, v in CELL_KINDS.items())
                raise ValueError(
                    f"Gridworld map has unknown character {ch!r} at row {r}, col {c}; allowed: {allowed}"
                )
    cells = np.array([list(row) for row in rows], dtype="<U1")
    starts = np.argwhere(cells == "S")
    if len(starts) == 0:
        raise ValueError("Gridworld map has no start cell 'S'")
    if len(starts) > 1:
        where = ", ".join(f"(row {r}, col {c})" for r, c in starts)
        raise ValueError(f"Gridworld map has {len(starts)} start cells 'S' at {where}; exactly one is required")
    if not np.isin(cells, list(EXITS)).any():
        raise ValueError("Gridworld map has no exit: add a 'G' (+1) or 'P' (-1) cell")
    return cells


class GridworldEnv(TabularEnv):
    """The MDP chapter's grid world as a Gymnasium environment.

    Observation: state index row * ncols + col, Discrete(nrows * ncols).
    Actions: 0 up, 1 right, 2 down, 3 left (`action_names`, `action_deltas`).

    Args:
        render_mode: None, "ansi", "rgb_array" or "human".
        grid: the text map (see `parse_grid`); default `CLASSIC_4X3`.
        slip: probability of not going the intended way, split evenly between the two
            perpendicular moves; 0 is deterministic. Default 0.2 (0.8 / 0.1 / 0.1).
        living_reward: reward for entering a start or floor cell (and for bumping in place).
        goal_reward, pit_reward: rewards for entering a 'G' / 'P' exit.

    Attributes:
        grid: (nrows, ncols) array of map characters; nrows, ncols.
        P: toy_text model; exit and wall states are absorbing with reward 0.
        start_state, terminal_states (exit indices), wall_states.
    reset options: {"start_state": k} starts in any floor or start cell k instead of 'S'.
    """

    action_names = ACTION_NAMES
    action_deltas = ACTION_DELTAS

    def __init__(
        self,
        render_mode: str | None = None,
        grid=CLASSIC_4X3,
        slip: float = 0.2,
        living_reward: float = -0.04,
        goal_reward: float = 1.0,
        pit_reward: float = -1.0,
    ):
        """See the class docstring."""
        if not 0.0 <= slip <= 1.0:
            raise ValueError(f"slip is a probability and must be in [0, 1], got {slip}")
        self.grid = parse_grid(grid)
        self.nrows, self.ncols = self.grid.shape
        self.slip = float(slip)
        self.living_reward = float(living_reward)
        self.exit_rewards = {"G": float(goal_reward), "P": float(pit_reward)}
        flat = self.grid.reshape(-1)
        self.start_state = int(np.flatnonzero(flat == "S")[0])
        self.terminal_states = np.flatnonzero(np.isin(flat, list(EXITS)))
        self.wall_states = np.flatnonzero(flat == "#")
        super().__init__(self._build_model(), render_mode)

    def _build_model(self) -> dict:
        """P with outcomes leading to the same cell merged and zero-probability ones dropped."""
        flat = "".join(self.grid.reshape(-1))  # plain str lookups: this runs per (cell, action)
        nr, nc = self.nrows, self.ncols
        # (reward, terminated) of entering each cell
        enter = [(self.exit_rewards[ch], True) if ch in EXITS else (self.living_reward, False) for ch in flat]
        side = self.slip / 2.0
        P = {}
        for s, ch in enumerate(flat):
            if ch in EXITS or ch == "#":
                P[s] = {a: [(1.0, s, 0.0, True)] for a in range(4)}
                continue
            row, col = divmod(s, nc)
            P[s] = {}
            for a in range(4):
                outcomes: dict[int, float] = {}
                for move, p in ((a, 1.0 - self.slip), ((a + 1) % 4, side), ((a - 1) % 4, side)):
                    if p > 0.0:
                        r, c = row + ACTION_DELTAS[move][0], col + ACTION_DELTAS[move][1]
                        # a wall or the edge leaves the agent where it is
                        nxt = r * nc + c if 0 <= r < nr and 0 <= c < nc and flat[r * nc + c] != "#" else s
                        outcomes[nxt] = outcomes.get(nxt, 0.0) + p
                P[s][a] = [(p, nxt, *enter[nxt]) for nxt, p in outcomes.items()]
        return P

    def _initial_state(self, options: dict) -> int:
        """The 'S' cell, or options["start_state"] if it is a start or floor cell."""
        if "start_state" not in options:
            return self.start_state
        k = options["start_state"]
        if not (isinstance(k, (int, np.integer)) and 0 <= k < self.n_states) or self.grid.reshape(-1)[k] not in "S.":
            raise ValueError(
                f"start_state must index a start or floor cell (0 to {self.n_states - 1}, "
                f"not a wall or exit), got {k!r}"
            )
        return int(k)

    # --- rendering -----------------------------------------------------------------------
    def _render_text(self) -> str:
        """The map with the agent as 'A', then the overlay's values and arrows if set."""
        cells = self.grid.copy().reshape(-1)
        cells[self.s] = "A"
        last = "" if self.last_action is None else f"  ({ACTION_NAMES[self.last_action]})"
        lines = [f"state {self.s}{last}"]
        lines += ["".join(row) for row in cells.reshape(self.grid.shape)]
        if self.overlay_values is not None:
            v = self.overlay_values.reshape(self.grid.shape)
            lines += [" ".join("  ####" if self.grid[r, c] == "#" else f"{v[r, c]:6.3f}" for c in range(self.ncols))
                      for r in range(self.nrows)]
        if self.overlay_policy is not None:
            pol = self.overlay_policy.reshape(self.grid.shape)
            lines += ["".join(self._policy_char(r, c, pol[r, c]) for c in range(self.ncols))
                      for r in range(self.nrows)]
        return "\n".join(lines) + "\n"

    def _policy_char(self, r: int, c: int, a: int) -> str:
        """Arrow for action `a` at a floor cell; the map character elsewhere."""
        if self.grid[r, c] in "S." and a >= 0:
            return _ASCII_ARROWS[a]
        return self.grid[r, c] if self.grid[r, c] != "S" else "."

    def _cell_px(self) -> int:
        """Side of one cell in pixels: 96, smaller for maps wider or taller than 8 cells."""
        return max(24, min(96, 768 // max(self.nrows, self.ncols)))

    def _canvas_size(self) -> tuple[int, int]:
        """(width, height) of the pygame canvas in pixels."""
        px = self._cell_px()
        return self.ncols * px, self.nrows * px

    def _draw(self, canvas: Canvas):
        """Cells (walls dark, exits coloured, values tinted), policy arrows, then the agent."""
        px = self._cell_px()
        values, policy = self.overlay_values, self.overlay_policy
        scale = float(np.abs(values).max()) if values is not None else 0.0
        for s in range(self.n_states):
            r, c = divmod(s, self.ncols)
            x, y, ch = c * px, r * px, self.grid[r, c]
            centre = (x + px // 2, y + px // 2)
            fill = {"#": WALL, "G": GOAL, "P": PIT}.get(ch)
            if fill is None:
                fill = value_colour(values[s], scale) if values is not None else (255, 255, 255)
            canvas.rect(x, y, px, px, fill)
            canvas.rect(x, y, px, px, GRID_LINE, 1)
            if ch in EXITS:
                canvas.text(f"{self.exit_rewards[ch]:+g}", centre, px // 3, (255, 255, 255))
                continue
            if ch == "#":
                continue
            if values is not None:
                canvas.text(f"{values[s]:.3f}", (centre[0], y + px // 5), max(12, px // 5), INK)
            if policy is not None and policy[s] >= 0:
                dr, dc = ACTION_DELTAS[policy[s]]
                half = px * 0.3
                start = (centre[0] - dc * half * 0.5, centre[1] - dr * half * 0.5 + px // 10)
                end = (centre[0] + dc * half, centre[1] + dr * half + px // 10)
                canvas.arrow(start, end, ARROW, width=max(2, px // 24), head=max(6, px // 8))
        ar, ac = divmod(self.s, self.ncols)
        canvas.circle((ac * px + px // 2, ar * px + px // 2), px // 6, AGENT)
        canvas.circle((ac * px + px // 2, ar * px + px // 2), px // 6, INK, 2)
