"""A pygame window for watching an agent play, and a recorder that turns it into a video.

Used by ``scripts/watch.py``. This module knows nothing about agents or environments: it is
given the game picture as an (H, W, 3) uint8 RGB array and a :class:`PanelInfo` saying what
to print beside it (one bar per action, the chosen one highlighted, and the episode counters).

Keys: space pauses, the right arrow takes one step while paused, + and - change the speed,
r restarts the episode, q or Esc quits; closing the window quits too. With ``headless=True``
SDL's dummy video driver is used: nothing appears, nothing waits, frames are still drawn
and recorded, so the same code records videos on machines without a display.
"""
from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
import numpy as np  # noqa: E402
import pygame  # noqa: E402

PANEL_WIDTH = 300
MIN_GAME_HEIGHT = 360  # small screens (Pong's 210 rows) are scaled up to about this height
_ROW = 26              # pixels per action bar
_HEADER, _FOOTER = 140, 64
_FPS_LIMITS = (0.5, 240.0)
_SPEED_STEP = 1.5      # + and - multiply / divide the speed by this

# colours, RGB
_BACKGROUND = (250, 250, 247)
_PANEL = (236, 238, 242)
_INK = (30, 30, 30)
_MUTED = (110, 110, 120)
_BAR = (120, 150, 200)
_CHOSEN = (240, 170, 30)
_AXIS = (150, 150, 150)


@dataclass
class PanelInfo:
    """What the side panel shows for one frame.

    values: (n_actions,) numbers per action (Q-values or probabilities; for a continuous
        action space one number per action dimension); NaN marks an action that does not
        exist in this state. None shows the names only (a human player).
    kind: the heading of the bars. "action probabilities" fixes the bar scale to [0, 1];
        anything else scales the bars to ``value_range``, else to the range of the values,
        zero included.
    chosen: the action taken from this frame (highlighted), or None.
    value_range: (low, high) of the bar scale, e.g. a continuous action space's bounds, so a
        bar's length means the same on every frame; None: see ``kind``.
    """

    title: str
    action_names: Sequence[str]
    values: np.ndarray | None = None
    kind: str = "Q-values"
    chosen: int | None = None
    episode: int = 1
    step: int = 0
    episode_return: float = 0.0
    note: str = ""
    value_range: tuple[float, float] | None = None


def _format_value(v: float) -> str:
    """Short text for a value: 2 decimals below 100 in size, whole numbers above."""
    if not math.isfinite(v):
        return "n/a"
    return f"{v:.2f}" if abs(v) < 100 else f"{v:.0f}"


class _Panel:
    """Draws a PanelInfo into a rectangle of a surface."""

    def __init__(self):
        pygame.font.init()
        self._fonts: dict[int, pygame.font.Font] = {}

    def _text(self, surface, s: str, xy, size: int, colour=_INK):
        font = self._fonts.get(size)
        if font is None:
            font = self._fonts[size] = pygame.font.Font(None, size)
        surface.blit(font.render(s, True, colour), xy)

    @staticmethod
    def height(n_actions: int) -> int:
        """Pixels the panel needs for `n_actions` bars."""
        return _HEADER + n_actions * _ROW + _FOOTER

    def draw(self, surface, x0: int, info: PanelInfo, fps: float, paused: bool):
        height = surface.get_height()
        pygame.draw.rect(surface, _PANEL, (x0, 0, PANEL_WIDTH, height))
        x = x0 + 14
        self._text(surface, info.title, (x, 12), 28)
        self._text(surface, f"episode {info.episode}   step {info.step}", (x, 44), 22)
        self._text(surface, f"return {info.episode_return:.6g}", (x, 66), 22)
        status = f"{fps:.3g} steps/s" + ("   PAUSED" if paused else "")
        self._text(surface, status, (x, 88), 20, _MUTED)
        if info.note:
            self._text(surface, info.note, (x, 108), 20, _CHOSEN)
        self._bars(surface, x, _HEADER - 14, info)
        footer = height - _FOOTER + 14
        self._text(surface, "space pause   right: one step", (x, footer), 18, _MUTED)
        self._text(surface, "+/- speed   r restart   q quit", (x, footer + 20), 18, _MUTED)

    def _bars(self, surface, x: int, y: int, info: PanelInfo):
        self._text(surface, info.kind, (x, y), 20, _MUTED)
        y += 20
        names_w, bar_w = 104, 110
        values = None if info.values is None else np.asarray(info.values, dtype=float)
        if values is not None:
            finite = values[np.isfinite(values)]
            if info.kind == "action probabilities":
                lo, hi = 0.0, 1.0
            elif info.value_range is not None:
                lo, hi = (float(v) for v in info.value_range)
            else:  # signed values: bars grow both ways from a zero line
                lo = min(0.0, float(finite.min())) if finite.size else 0.0
                hi = max(0.0, float(finite.max())) if finite.size else 1.0
            span = (hi - lo) or 1.0
            # bars grow from 0, or from the nearer end of a value_range that excludes it
            origin = min(max(0.0, lo), hi)
            zero = x + names_w + int(round((origin - lo) / span * bar_w))
        for a, name in enumerate(info.action_names):
            top = y + a * _ROW
            chosen = a == info.chosen
            if chosen:
                pygame.draw.rect(surface, (252, 236, 200), (x - 6, top - 2, PANEL_WIDTH - 16, _ROW - 2))
            self._text(surface, str(name)[:14], (x, top + 4), 20, _INK if chosen else _MUTED)
            if values is None:
                continue
            v = float(values[a])
            if math.isfinite(v):
                end = x + names_w + int(round((v - lo) / span * bar_w))
                left, width = min(zero, end), max(abs(end - zero), 1)
                pygame.draw.rect(surface, _CHOSEN if chosen else _BAR, (left, top + 3, width, _ROW - 8))
            self._text(surface, _format_value(v), (x + names_w + bar_w + 8, top + 4), 20)
        if values is not None:
            pygame.draw.line(surface, _AXIS, (zero, y - 2), (zero, y + len(info.action_names) * _ROW - 4))


class Viewer:
    """The window: the game picture on the left, the panel on the right.

    title: the window caption. fps: steps shown per second (changed with + and -).
    headless: draw off-screen with SDL's dummy driver and never wait.
    record: a path ending in .mp4 or .gif; every frame passed to :meth:`show` is written there.
    The window is opened by the first :meth:`show`, sized for that frame and its action count.
    Raises RuntimeError with the reason when no window can be opened (no display).
    """

    def __init__(self, title: str, fps: float, headless: bool = False,
                 record: str | os.PathLike | None = None):
        if headless:
            os.environ["SDL_VIDEODRIVER"] = "dummy"
        self.title, self.headless = title, headless
        self.fps = float(np.clip(fps, *_FPS_LIMITS))
        self.paused = False
        self.recorder = VideoRecorder(record, self.fps) if record else None
        self.frames_shown = 0
        self.size: tuple[int, int] | None = None  # (width, height) of the window, once open
        self._window = None
        self._scale = 1
        self._panel = _Panel()
        self._last: tuple[np.ndarray, PanelInfo] | None = None
        self._shown_at = 0.0
        self._step_once = False

    def _open(self, frame: np.ndarray, n_actions: int):
        h, w = frame.shape[:2]
        self._scale = max(1, round(MIN_GAME_HEIGHT / h))
        width = w * self._scale + PANEL_WIDTH
        height = max(h * self._scale, _Panel.height(n_actions))
        # even sides: mp4 encoders work on 2x2 chroma blocks
        self.size = (width + width % 2, height + height % 2)
        try:
            pygame.display.init()
            pygame.display.set_caption(self.title)
            self._window = pygame.display.set_mode(self.size)
        except pygame.error as e:
            raise RuntimeError(f"cannot open a window ({e}); run with --headless where there "
                               "is no display") from None

    def _draw(self, frame: np.ndarray, info: PanelInfo):
        if self._window is None:
            self._open(frame, len(info.action_names))
        self._window.fill(_BACKGROUND)
        game = pygame.surfarray.make_surface(np.ascontiguousarray(frame[..., :3].swapaxes(0, 1)))
        if self._scale > 1:  # nearest-neighbour keeps Atari pixels sharp
            game = pygame.transform.scale(game, (game.get_width() * self._scale,
                                                 game.get_height() * self._scale))
        self._window.blit(game, (0, 0))
        self._panel.draw(self._window, self._window.get_width() - PANEL_WIDTH, info, self.fps, self.paused)
        pygame.display.flip()

    def show(self, frame: np.ndarray, info: PanelInfo) -> None:
        """Display (and record) one frame: `frame` (H, W, 3) uint8 RGB beside the panel."""
        self._draw(frame, info)
        self._last = (frame, info)
        self._shown_at = time.monotonic()
        self.frames_shown += 1
        if self.recorder is not None:
            self.recorder.add(self.screenshot())

    def screenshot(self) -> np.ndarray:
        """What the window shows now, as (H, W, 3) uint8 RGB."""
        return np.ascontiguousarray(pygame.surfarray.array3d(self._window).swapaxes(0, 1))

    def wait(self) -> str:
        """Handle keys until the next step is due; returns "go", "restart" or "quit".

        Paused, it waits for space (resume), the right arrow (one step), r or q.
        """
        while True:
            for event in pygame.event.get():
                command = self._handle(event)
                if command is not None:
                    return command
            if self._step_once:
                self._step_once = False
                return "go"
            if self.headless:
                return "go"
            remaining = self._shown_at + 1.0 / self.fps - time.monotonic()
            if not self.paused and remaining <= 0:
                return "go"
            time.sleep(min(max(remaining, 0.0), 1 / 60) if not self.paused else 1 / 60)

    def _handle(self, event) -> str | None:
        if event.type == pygame.QUIT:
            return "quit"
        if event.type != pygame.KEYDOWN:
            return None
        key = event.key
        if key in (pygame.K_q, pygame.K_ESCAPE):
            return "quit"
        if key == pygame.K_r:
            return "restart"
        if key == pygame.K_SPACE:
            self.paused = not self.paused
        elif key == pygame.K_RIGHT and self.paused:
            self._step_once = True
        elif key in (pygame.K_PLUS, pygame.K_EQUALS, pygame.K_KP_PLUS):
            self.fps = min(self.fps * _SPEED_STEP, _FPS_LIMITS[1])
        elif key in (pygame.K_MINUS, pygame.K_KP_MINUS):
            self.fps = max(self.fps / _SPEED_STEP, _FPS_LIMITS[0])
        else:
            return None
        if self._last is not None:  # show the new status; not a new frame, so not recorded
            self._draw(*self._last)
        return None

    @staticmethod
    def held(key: str) -> bool:
        """Whether an arrow key ("up", "down", "left", "right") is held down now."""
        pygame.event.pump()
        return bool(pygame.key.get_pressed()[getattr(pygame, f"K_{key.upper()}")])

    def close(self) -> None:
        """Finish the recording and close the window."""
        if self.recorder is not None:
            self.recorder.close()
        pygame.display.quit()


class VideoRecorder:
    """Writes (H, W, 3) uint8 RGB frames to ``path``: .mp4 with OpenCV's mp4v codec, .gif with
    Pillow. Every frame must have the first frame's size.

    A GIF is kept in memory (one byte per pixel after palette reduction) and written on
    :meth:`close`; Pillow merges identical consecutive frames into one longer frame.
    """

    FORMATS = (".mp4", ".gif")

    def __init__(self, path: str | os.PathLike, fps: float):
        self.path = Path(path)
        if self.path.suffix.lower() not in self.FORMATS:
            raise ValueError(f"cannot record to {self.path}: the name must end in "
                             f"{' or '.join(self.FORMATS)}")
        self.fps = float(fps)
        self.frames = 0
        self.size: tuple[int, int] | None = None  # (width, height)
        self._writer = None
        self._gif: list = []

    def add(self, frame: np.ndarray) -> None:
        """Append one frame."""
        h, w = frame.shape[:2]
        if self.size is None:
            self.size = (w, h)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if self.path.suffix.lower() == ".mp4":
                import cv2
                self._writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*"mp4v"),
                                               self.fps, self.size)
                if not self._writer.isOpened():
                    raise RuntimeError(f"OpenCV cannot write {self.path} with the mp4v codec")
        elif self.size != (w, h):
            raise ValueError(f"frame of {w}x{h} pixels in a video of {self.size[0]}x{self.size[1]}")
        if self._writer is not None:
            import cv2
            self._writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        else:
            from PIL import Image
            self._gif.append(Image.fromarray(frame).quantize(256, method=Image.Quantize.FASTOCTREE))
        self.frames += 1

    def close(self) -> None:
        """Finish the file (nothing is written if no frame was added)."""
        if self._writer is not None:
            self._writer.release()
            self._writer = None
        elif self._gif:
            # a GIF times frames in hundredths of a second: frame i starts at i / fps rounded to
            # one, so that the whole plays at fps (one rounded length, 70 or 60 ms at 15 fps,
            # played it 5% slow or 11% fast)
            starts = np.round(np.arange(len(self._gif) + 1) * 100 / self.fps) * 10
            self._gif[0].save(self.path, save_all=True, append_images=self._gif[1:],
                              duration=np.diff(starts).astype(int).tolist(), loop=0)
            self._gif = []
