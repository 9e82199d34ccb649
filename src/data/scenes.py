"""Scenes of the synthetic video benchmark: each renders frames and asks one question.

Every scene is a pure function of a numpy Generator: it returns the frames (T, H, W, 3)
uint8 at the video's native fps and a multiple-choice question in one of the five
ApolloBench categories. Options are listed in a fixed order per scene kind, so the
letter alone carries no information: the answer is spread evenly over the options.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (230, 40, 40),
    "green": (40, 210, 60),
    "blue": (50, 90, 240),
    "yellow": (240, 225, 40),
}
DIRECTIONS = ["left", "right", "up", "down"]
# unit steps in (x, y) image coordinates (y grows downwards)
STEP = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}

@dataclass
class Scene:
    """One rendered video and its question."""

    frames: np.ndarray  # (T, H, W, 3) uint8
    category: str
    kind: str
    question: str
    options: list[str]
    answer: int  # index into options


def _texture(rng: np.random.Generator, h: int, w: int, dim: float = 0.45) -> np.ndarray:
    """A smooth random texture: coarse noise upsampled, so that panning is visible."""
    coarse = rng.uniform(0, 255 * dim, size=(h // 8 + 2, w // 8 + 2, 3))
    big = np.repeat(np.repeat(coarse, 8, axis=0), 8, axis=1)[:h, :w]
    return big.astype(np.uint8)


def _square(frame: np.ndarray, x: float, y: float, size: int, colour: str) -> None:
    h, w, _ = frame.shape
    x0, y0 = int(round(x)), int(round(y))
    x1, y1 = max(0, x0), max(0, y0)
    x2, y2 = min(w, x0 + size), min(h, y0 + size)
    if x2 > x1 and y2 > y1:
        frame[y1:y2, x1:x2] = COLOURS[colour]


def colour_of_square(rng: np.random.Generator, n: int, fps: float, size: int) -> Scene:
    """Perception: a square moves about the frame; what colour is it?"""
    colours = list(COLOURS)
    c = int(rng.integers(4))
    bg = _texture(rng, size, size, dim=0.25)
    sq = size // 4
    start, end = rng.uniform(0, size - sq, size=2), rng.uniform(0, size - sq, size=2)
    frames = np.empty((n, size, size, 3), np.uint8)
    for t in range(n):
        x, y = start + (end - start) * t / max(1, n - 1)
        frames[t] = bg
        _square(frames[t], x, y, sq, colours[c])
    return Scene(frames, "perception", "square_colour",
                 "What colour is the moving square?", colours, c)


def region(rng: np.random.Generator, n: int, fps: float, size: int) -> Scene:
    """Spatial: a square wanders inside one part of the frame; which part?"""
    options = ["left", "right", "top", "bottom"]
    r = int(rng.integers(4))
    colour = str(rng.choice(list(COLOURS)))
    sq = size // 4
    lo, mid, hi = 1.0, (size - sq) / 2, size - sq - 1.0
    cx, cy = [(lo, mid), (hi, mid), (mid, lo), (mid, hi)][r]
    bg = _texture(rng, size, size, dim=0.25)
    frames = np.empty((n, size, size, 3), np.uint8)
    wander = rng.normal(0, 0.8, size=(n, 2)).cumsum(axis=0).clip(-sq / 3, sq / 3)
    for t in range(n):
        frames[t] = bg
        _square(frames[t], cx + wander[t, 0], cy + wander[t, 1], sq, colour)
    return Scene(frames, "spatial", "square_region",
                 f"In which part of the frame is the {colour} square?", options, r)


def camera_pan(rng: np.random.Generator, n: int, fps: float, size: int) -> Scene:
    """Egocentric: the camera starts at the centre of a world and pans one way; which way?

    The world has a landmark colour on each side (red left, green right, blue above,
    yellow below), so where the camera ends up tells where it went.
    """
    d = int(rng.integers(4))
    dx, dy = STEP[DIRECTIONS[d]]
    world_side = size * 2
    world = _texture(rng, world_side, world_side, dim=0.35).astype(np.int16)
    band = size // 2
    for side, colour in zip(DIRECTIONS, COLOURS.values()):
        region = {"left": (slice(None), slice(0, band)), "right": (slice(None), slice(-band, None)),
                  "up": (slice(0, band), slice(None)), "down": (slice(-band, None), slice(None))}[side]
        world[region] = (world[region] // 2 + np.array(colour) // 2)
    world = world.clip(0, 255).astype(np.uint8)
    centre = (world_side - size) // 2
    frames = np.empty((n, size, size, 3), np.uint8)
    for t in range(n):
        p = int(round(centre * t / max(1, n - 1)))
        x, y = centre + dx * p, centre + dy * p
        frames[t] = world[y:y + size, x:x + size]
    return Scene(frames, "egocentric", "camera_pan",
                 "Which way does the camera pan?", list(DIRECTIONS), d)


def last_colour(rng: np.random.Generator, n: int, fps: float, size: int) -> Scene:
    """Temporal OCR: coloured cards are shown one after another; which comes last?"""
    colours = list(COLOURS)
    order = [int(i) for i in rng.permutation(4)[:3]]
    bg = _texture(rng, size, size, dim=0.2)
    card = size // 2
    frames = np.empty((n, size, size, 3), np.uint8)
    for t in range(n):
        frames[t] = bg
        _square(frames[t], (size - card) / 2, (size - card) / 2, card, colours[order[min(2, 3 * t // n)]])
    return Scene(frames, "temporal_ocr", "last_card",
                 "Which colour card is shown last?", colours, order[-1])


def count_squares(rng: np.random.Generator, n: int, fps: float, size: int) -> Scene:
    """Reasoning: squares drift about the frame; how many are there?"""
    k = int(rng.integers(1, 5))
    colour = str(rng.choice(list(COLOURS)))
    sq = size // 6
    cells = rng.permutation(9)[:k]  # one square per cell of a 3x3 layout: they never overlap
    pos = np.stack([(cells % 3) * size / 3 + 2, (cells // 3) * size / 3 + 2], axis=1).astype(float)
    bg = _texture(rng, size, size, dim=0.25)
    frames = np.empty((n, size, size, 3), np.uint8)
    drift = rng.normal(0, 0.5, size=(n, k, 2)).cumsum(axis=0).clip(-2, 2)
    for t in range(n):
        frames[t] = bg
        for j in range(k):
            _square(frames[t], pos[j, 0] + drift[t, j, 0], pos[j, 1] + drift[t, j, 1], sq, colour)
    return Scene(frames, "reasoning", "count_squares",
                 f"How many {colour} squares are there?", ["1", "2", "3", "4"], k - 1)


SCENES: dict[str, Callable[[np.random.Generator, int, float, int], Scene]] = {
    "perception": colour_of_square,
    "spatial": region,
    "egocentric": camera_pan,
    "temporal_ocr": last_colour,
    "reasoning": count_squares,
}
CATEGORIES = list(SCENES)
