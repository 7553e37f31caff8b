"""A small pygame canvas shared by the tabular worlds: one surface, two render modes.

`rgb_array` draws off-screen and returns an (H, W, 3) uint8 array; `human` opens a window and
paces it at the env's `render_fps`. pygame is imported only when something is drawn, so the
text-only and headless paths never touch a display.
"""
from __future__ import annotations

import math
import os

import numpy as np

# colours, RGB
BACKGROUND = (245, 245, 240)
INK = (30, 30, 30)
WALL = (70, 70, 80)
GOAL = (80, 170, 90)
PIT = (200, 70, 60)
AGENT = (240, 190, 40)
ARROW = (40, 90, 200)
GRID_LINE = (180, 180, 180)


def value_colour(value: float, scale: float) -> tuple[int, int, int]:
    """Tint for a state value: green for positive, red for negative, white at 0.

    `scale` is the largest |value| on screen (values are drawn relative to it).
    """
    t = 0.0 if scale <= 0 else max(-1.0, min(1.0, value / scale))
    target = GOAL if t > 0 else PIT
    a = abs(t) * 0.6  # keep text readable on the strongest tint
    return tuple(int(round((1 - a) * 255 + a * c)) for c in target)


class Canvas:
    """A pygame surface of `size` = (width, height) pixels shown in `render_mode`."""

    def __init__(self, size: tuple[int, int], title: str, render_mode: str, fps: int):
        """Create the surface (and the window for `render_mode="human"`)."""
        os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
        import pygame

        self._pg = pygame
        self.render_mode = render_mode
        self.fps = fps
        pygame.font.init()
        if render_mode == "human":
            pygame.display.init()
            pygame.display.set_caption(title)
            self.surface = pygame.display.set_mode(size)
            self._clock = pygame.time.Clock()
        else:
            self.surface = pygame.Surface(size)
        self._fonts: dict[int, object] = {}

    def clear(self):
        """Fill the canvas with the background colour."""
        self.surface.fill(BACKGROUND)

    def rect(self, x: int, y: int, w: int, h: int, colour, width: int = 0):
        """Draw a rectangle (filled when `width` is 0) with its top-left corner at (x, y)."""
        self._pg.draw.rect(self.surface, colour, (x, y, w, h), width)

    def circle(self, centre, radius: int, colour, width: int = 0):
        """Draw a circle (filled when `width` is 0)."""
        self._pg.draw.circle(self.surface, colour, centre, radius, width)

    def line(self, start, end, colour, width: int = 1):
        """Draw a straight line segment."""
        self._pg.draw.line(self.surface, colour, start, end, width)

    def arrow(self, start, end, colour, width: int = 3, head: int = 10):
        """Draw a line from `start` to `end` with an arrow head at `end` (pixels)."""
        self.line(start, end, colour, width)
        angle = math.atan2(end[1] - start[1], end[0] - start[0])
        left = (end[0] - head * math.cos(angle - 0.45), end[1] - head * math.sin(angle - 0.45))
        right = (end[0] - head * math.cos(angle + 0.45), end[1] - head * math.sin(angle + 0.45))
        self._pg.draw.polygon(self.surface, colour, [end, left, right])

    def text(self, s: str, centre, size: int = 18, colour=INK):
        """Draw `s` centred at `centre` with pygame's default font at `size` pixels."""
        font = self._fonts.get(size)
        if font is None:
            font = self._fonts[size] = self._pg.font.Font(None, size)
        img = font.render(s, True, colour)
        self.surface.blit(img, img.get_rect(center=(int(centre[0]), int(centre[1]))))

    def show(self) -> np.ndarray | None:
        """Finish a frame: update the window (human) or return it as (H, W, 3) uint8 (rgb_array)."""
        if self.render_mode == "human":
            self._pg.event.pump()
            self._pg.display.flip()
            self._clock.tick(self.fps)
            return None
        # surfarray is (W, H, 3); Gymnasium frames are (H, W, 3)
        return np.transpose(self._pg.surfarray.array3d(self.surface), (1, 0, 2)).copy()

    def close(self):
        """Close the window, if one was opened."""
        if self.render_mode == "human":
            self._pg.display.quit()
