"""Drawing for the synthetic videos: flat-coloured shapes moving in straight lines over a grey,
lightly textured background. Colours are saturated so they survive H.264's 4:2:0 chroma subsampling;
the background is pure grey (R = G = B) so no background pixel can pass for an object colour.
The coded background (`coded_background`) is the exception: a faint tint that states each pixel's
place and time, for models too small to learn where a video token sits (docs/data.md).

Pixel (x, y) covers [x, x + 1) x [y, y + 1); a pixel belongs to a shape when its centre does.
Boxes are xyxy with the end exclusive in pixels: x1 = first column, x2 = last column + 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (230, 30, 30),
    "green": (30, 190, 40),
    "blue": (40, 70, 235),
    "yellow": (240, 220, 30),
    "magenta": (220, 40, 220),
    "cyan": (30, 200, 220),
}
SHAPES = ("circle", "square", "triangle")
DIRECTIONS: dict[str, tuple[int, int]] = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}


@dataclass(frozen=True)
class MovingObject:
    """A shape visible on frames [span[0], span[1]), moving at constant speed from `start` to `end`
    (its centre on the first and the last visible frame)."""

    instance_id: int
    colour: str
    shape: str
    direction: str
    size: float
    """Diameter (circle) or side (square, triangle's base and height), in pixels."""
    span: tuple[int, int]
    start: tuple[float, float]
    end: tuple[float, float]

    def visible(self, frame: int) -> bool:
        return self.span[0] <= frame < self.span[1]

    def centre(self, frame: int) -> tuple[float, float]:
        steps = max(self.span[1] - 1 - self.span[0], 1)
        a = (frame - self.span[0]) / steps
        return (self.start[0] + a * (self.end[0] - self.start[0]), self.start[1] + a * (self.end[1] - self.start[1]))

    def describe(self) -> str:
        """The query naming this object by its attributes and action."""
        return f"the {self.colour} {self.shape} moving {self.direction}"


def shape_mask(shape: str, cx: float, cy: float, size: float) -> tuple[np.ndarray, int, int]:
    """Boolean mask of the shape over its bounding square, with the square's top-left pixel."""
    half = size / 2
    x0, y0 = int(np.floor(cx - half)), int(np.floor(cy - half))
    n = int(np.ceil(size)) + 2
    ys, xs = np.mgrid[y0:y0 + n, x0:x0 + n].astype(np.float64) + 0.5  # pixel centres
    dx, dy = xs - cx, ys - cy
    if shape == "circle":
        mask = dx * dx + dy * dy <= half * half
    elif shape == "square":
        mask = (np.abs(dx) <= half) & (np.abs(dy) <= half)
    elif shape == "triangle":  # apex up, base at the bottom
        mask = (dy <= half) & (np.abs(dx) <= (dy + half) / 2)
    else:
        raise ValueError(f"unknown shape {shape!r}; choose one of {SHAPES}")
    return mask, x0, y0


def draw(canvas: np.ndarray, obj: MovingObject, frame: int) -> tuple[int, int, int, int] | None:
    """Paint `obj` as it is on `frame` into the RGB canvas; return its tight xyxy box (None when the
    object is not visible or lies wholly outside the canvas)."""
    if not obj.visible(frame):
        return None
    cx, cy = obj.centre(frame)
    mask, x0, y0 = shape_mask(obj.shape, cx, cy, obj.size)
    h, w = canvas.shape[:2]
    # clip the mask's square to the canvas
    mx0, my0 = max(0, -x0), max(0, -y0)
    mx1, my1 = min(mask.shape[1], w - x0), min(mask.shape[0], h - y0)
    if mx1 <= mx0 or my1 <= my0:
        return None
    mask = mask[my0:my1, mx0:mx1]
    if not mask.any():
        return None
    region = canvas[y0 + my0:y0 + my1, x0 + mx0:x0 + mx1]
    region[mask] = PALETTE[obj.colour]
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    left, top = x0 + mx0, y0 + my0
    return (left + int(cols[0]), top + int(rows[0]), left + int(cols[-1]) + 1, top + int(rows[-1]) + 1)


def background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A grey background: a random level, a gentle gradient and a faint checker texture."""
    level = rng.uniform(80, 140)
    gx, gy = rng.uniform(-20, 20, size=2)
    ys, xs = np.mgrid[0:height, 0:width]
    cell = max(4, min(width, height) // 15)
    checker = ((xs // cell + ys // cell) % 2) * 2 - 1
    grey = level + gx * (xs / width - 0.5) + gy * (ys / height - 0.5) + 5 * checker
    grey = np.clip(np.round(grey), 0, 255).astype(np.uint8)
    return np.repeat(grey[:, :, None], 3, axis=2)


CODE_LEVEL = 128
"""Mid-grey around which the coded background's tints vary."""
CODE_RANGE = 48
"""Largest tint of the coded background, in levels either side of CODE_LEVEL: far from every
palette colour (each has a channel at least 150 levels from the others)."""


def coded_background(width: int, height: int, frame: int, num_frames: int) -> np.ndarray:
    """A background whose tint states where and when each pixel is, the same in every video: red
    rises from the left edge to the right, blue from the top to the bottom, green from the first
    frame to the last, each linearly over CODE_LEVEL +- CODE_RANGE. A token holding part of a shape
    then also holds the shape's place and time in its own pixels."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64) + 0.5  # pixel centres
    t = frame / max(num_frames - 1, 1)
    red = CODE_LEVEL + CODE_RANGE * (2 * xs / width - 1)
    blue = CODE_LEVEL + CODE_RANGE * (2 * ys / height - 1)
    green = np.full_like(red, CODE_LEVEL + CODE_RANGE * (2 * t - 1))
    return np.clip(np.round(np.stack([red, green, blue], axis=2)), 0, 255).astype(np.uint8)
