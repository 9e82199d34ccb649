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

# 3x5 bitmaps of the digits used by the temporal-OCR scene
GLYPHS = {
    "1": ["010", "110", "010", "010", "111"],
    "2": ["111", "001", "111", "100", "111"],
    "3": ["111", "001", "111", "001", "111"],
    "4": ["101", "101", "111", "001", "001"],
}


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


def motion(rng: np.random.Generator, n: int, fps: float, size: int) -> Scene:
    """Perception: a square crosses the frame; which way does it move?"""
    colour = str(rng.choice(list(COLOURS)))
    d = int(rng.integers(4))
    dx, dy = STEP[DIRECTIONS[d]]
    bg = _texture(rng, size, size, dim=0.25)
    sq = size // 5
    lo, hi = 2.0, size - sq - 2.0
    across = float(rng.uniform(sq, size - 2 * sq))
    frames = np.empty((n, size, size, 3), np.uint8)
    for t in range(n):
        p = lo + (hi - lo) * t / max(1, n - 1)
        along = p if (dx + dy) > 0 else hi - (p - lo)
        x, y = (along, across) if dx else (across, along)
        frames[t] = bg
        _square(frames[t], x, y, sq, colour)
    return Scene(frames, "perception", "motion_direction",
                 f"Which direction does the {colour} square move?", list(DIRECTIONS), d)


def relative_position(rng: np.random.Generator, n: int, fps: float, size: int) -> Scene:
    """Spatial: two squares; where is the first relative to the second?"""
    c1, c2 = (str(c) for c in rng.choice(list(COLOURS), size=2, replace=False))
    rel = int(rng.integers(4))
    options = ["left", "right", "above", "below"]
    sq = size // 5
    centre = size / 2 - sq / 2
    gap = float(rng.uniform(sq * 1.2, sq * 2))
    dx, dy = [(-1, 0), (1, 0), (0, -1), (0, 1)][rel]
    off = float(rng.uniform(-sq, sq))
    a = (centre + dx * gap / 2 + (off if dy else 0), centre + dy * gap / 2 + (off if dx else 0))
    b = (centre - dx * gap / 2, centre - dy * gap / 2)
    bg = _texture(rng, size, size, dim=0.25)
    frames = np.empty((n, size, size, 3), np.uint8)
    drift = rng.normal(0, 0.6, size=(n, 2)).cumsum(axis=0).clip(-3, 3)
    for t in range(n):
        frames[t] = bg
        _square(frames[t], a[0] + drift[t, 0], a[1] + drift[t, 1], sq, c1)
        _square(frames[t], b[0] + drift[t, 0], b[1] + drift[t, 1], sq, c2)
    return Scene(frames, "spatial", "relative_position",
                 f"Where is the {c1} square relative to the {c2} square?", options, rel)


def camera_pan(rng: np.random.Generator, n: int, fps: float, size: int) -> Scene:
    """Egocentric: the camera pans over a textured scene; which way?"""
    d = int(rng.integers(4))
    dx, dy = STEP[DIRECTIONS[d]]
    world = _texture(rng, size * 2, size * 2, dim=0.9)
    span = size - 1
    frames = np.empty((n, size, size, 3), np.uint8)
    for t in range(n):
        p = int(round(span * t / max(1, n - 1)))
        x = p if dx > 0 else (span - p if dx < 0 else size // 2)
        y = p if dy > 0 else (span - p if dy < 0 else size // 2)
        frames[t] = world[y:y + size, x:x + size]
    return Scene(frames, "egocentric", "camera_pan",
                 "Which way does the camera pan?", list(DIRECTIONS), d)


def digit_sequence(rng: np.random.Generator, n: int, fps: float, size: int) -> Scene:
    """Temporal OCR: digits are shown one after another; which one comes last?"""
    digits = [str(d) for d in rng.permutation(list(GLYPHS))[:3]]
    bg = _texture(rng, size, size, dim=0.2)
    scale = size // 8
    gh, gw = 5 * scale, 3 * scale
    y0, x0 = (size - gh) // 2, (size - gw) // 2
    frames = np.empty((n, size, size, 3), np.uint8)
    for t in range(n):
        frames[t] = bg
        glyph = np.array([[c == "1" for c in row] for row in GLYPHS[digits[min(2, 3 * t // n)]]])
        mask = np.kron(glyph, np.ones((scale, scale), bool))
        frames[t, y0:y0 + gh, x0:x0 + gw][mask] = 255
    options = sorted(GLYPHS)
    return Scene(frames, "temporal_ocr", "last_digit",
                 "Which digit is shown last?", options, options.index(digits[-1]))


def count_flashes(rng: np.random.Generator, n: int, fps: float, size: int) -> Scene:
    """Reasoning: a light flashes k times; count the flashes."""
    colour = str(rng.choice(list(COLOURS)))
    k = int(rng.integers(1, 5))
    duration = n / fps
    bg = _texture(rng, size, size, dim=0.25)
    sq = size // 4
    # k equal periods, lit for the middle 60% of each: every flash and every gap lasts
    # long enough to be seen at 2 fps on the shortest videos the spec allows
    period = duration / k
    frames = np.empty((n, size, size, 3), np.uint8)
    for t in range(n):
        phase = (t / fps) % period / period
        frames[t] = bg
        if 0.2 <= phase < 0.8:
            _square(frames[t], (size - sq) / 2, (size - sq) / 2, sq, colour)
    return Scene(frames, "reasoning", "count_flashes",
                 f"How many times does the {colour} light flash?", ["1", "2", "3", "4"], k - 1)


SCENES: dict[str, Callable[[np.random.Generator, int, float, int], Scene]] = {
    "perception": motion,
    "spatial": relative_position,
    "egocentric": camera_pan,
    "temporal_ocr": digit_sequence,
    "reasoning": count_flashes,
}
CATEGORIES = list(SCENES)
