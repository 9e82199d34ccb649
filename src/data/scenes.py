"""Scenes of the synthetic video benchmark: each renders frames and asks one question.

Every scene is a pure function of a numpy Generator: it returns the frames (T, H, W, 3)
uint8 at the video's native fps and a multiple-choice question in one of the five
ApolloBench categories. A video question needs the video, more than one frame of it:
what changes over time is the answer. Controls are the exceptions, on purpose, so that
a curation of the benchmark can be checked against known truth: any single frame
answers a "frame" control, the question alone a "text" control (`Scene.control`).

The tiny models trained on this learn colour readily and fine positions poorly, so every
signal is big and, where it can be, a colour: large squares and cards, whole-frame colour.

Options are listed in a fixed order per kind and the answer is drawn uniformly (digit
options are listed in ascending order, and the answer's rank among them is uniform), so
the letter alone carries nothing.

Besides the videos, the still-image, multi-image and text-only training samples of the
data-mixture sweeps are made here too, as Scenes whose frames are their images.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (230, 40, 40),
    "green": (40, 210, 60),
    "blue": (50, 90, 240),
    "yellow": (240, 225, 40),
}
COLOUR_NAMES = list(COLOURS)  # also the lamp's cycle in `speed`
PALETTE = np.array(list(COLOURS.values()), np.uint8)
BACKGROUND = (25, 25, 30)
DIRECTIONS = ["left", "right", "up", "down"]
# unit steps in (x, y) image coordinates (y grows downwards)
STEP = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}
ORDINALS = ["first", "second", "third", "fourth"]
PERIODS = (0.5, 1.0, 2.0, 4.0)  # seconds the lamp of `speed` stays on each colour
GLIMPSE = 0.6
"""The shortest flash, gap or stretch a question rests on, in seconds: a little over the
0.5 s between the frames of a 2 fps sampler, so that such a sampler sees every one of
them (taking the nearest frame moves a sample by at most 0.05 s at 10 fps)."""
MIN_SECONDS: dict[str, float] = {
    # the first change of a 2 s period, seen, tells it from 4 s: no change means 4 s
    "speed": PERIODS[-2] + GLIMPSE,
    "speed_told": PERIODS[-2] + GLIMPSE,
    "count_events": 4 * GLIMPSE + 3 * GLIMPSE,  # four flashes and the gaps between them
    "event_order": 3 * GLIMPSE,  # two flashes and a gap
    "event_order_told": 3 * GLIMPSE,
    "digit_sequence": 3 * GLIMPSE,  # three digits
    "last_card": 3 * GLIMPSE,  # three cards
    "last_card_told": 3 * GLIMPSE,
}
"""The shortest video a kind's question can be answered from. A scene asked for fewer
frames renders this many; the generator draws such a kind's durations from
[max(min_duration, this), max(max_duration, this)], the same way whatever the answer, so
the duration says nothing of it. A text control made of a scene needs what the scene needs."""
RELATIVE = [
    "left of it at the start, right of it at the end",
    "right of it at the start, left of it at the end",
    "left of it throughout",
    "right of it throughout",
]
# 5x7 bitmaps of the digits, for `digit_sequence`
FONT = [
    ("01110", "10001", "10011", "10101", "11001", "10001", "01110"),
    ("00100", "01100", "00100", "00100", "00100", "00100", "01110"),
    ("01110", "10001", "00001", "00010", "00100", "01000", "11111"),
    ("11111", "00010", "00100", "00010", "00001", "10001", "01110"),
    ("00010", "00110", "01010", "10010", "11111", "00010", "00010"),
    ("11111", "10000", "11110", "00001", "00001", "10001", "01110"),
    ("00110", "01000", "10000", "11110", "10001", "10001", "01110"),
    ("11111", "00001", "00010", "00100", "01000", "01000", "01000"),
    ("01110", "10001", "10001", "01110", "10001", "10001", "01110"),
    ("01110", "10001", "10001", "01111", "00001", "00010", "01100"),
]


@dataclass
class Scene:
    """One rendered video (or the images of a still sample; none for text) and its question."""

    frames: np.ndarray  # (T, H, W, 3) uint8
    category: str
    kind: str
    question: str
    options: list[str]
    answer: int  # index into options
    control: str | None = None  # "frame" or "text": what answers it without the video


VideoScene = Callable[[np.random.Generator, int, float, int], Scene]  # (rng, n, fps, size)
ImageSample = Callable[[np.random.Generator, int], Scene]  # (rng, size)
TextSample = Callable[[np.random.Generator], Scene]


def _frames_for(kind: str, n: int, fps: float) -> int:
    """`n`, or more where `kind` needs a longer video (MIN_SECONDS)."""
    return max(n, math.ceil(MIN_SECONDS.get(kind, 0.0) * fps - 1e-9))


def _plain(n: int, size: int) -> np.ndarray:
    """`n` frames of the plain dark background."""
    return np.full((n, size, size, 3), BACKGROUND, np.uint8)


def _texture(rng: np.random.Generator, h: int, w: int, dim: float = 0.45) -> np.ndarray:
    """A smooth random texture: coarse noise upsampled, so that panning is visible."""
    coarse = rng.uniform(0, 255 * dim, size=(h // 8 + 2, w // 8 + 2, 3))
    big = np.repeat(np.repeat(coarse, 8, axis=0), 8, axis=1)[:h, :w]
    return big.astype(np.uint8)


def _square(frame: np.ndarray, x: float, y: float, size: int, colour: str) -> None:
    """Paint a square with its top-left corner at (x, y), clipped to the frame."""
    h, w, _ = frame.shape
    x0, y0 = int(round(x)), int(round(y))
    x1, y1 = max(0, x0), max(0, y0)
    x2, y2 = min(w, x0 + size), min(h, y0 + size)
    if x2 > x1 and y2 > y1:
        frame[y1:y2, x1:x2] = COLOURS[colour]


def _card_area(size: int) -> slice:
    """Rows (and columns) of the central card, half the frame's side."""
    return slice(size // 4, size - size // 4)


def _card(frames: np.ndarray, colour: str) -> None:
    """Paint the central card on one frame or on every frame of a stack."""
    area = _card_area(frames.shape[-2])
    frames[..., area, area, :] = COLOURS[colour]


def _flashes(rng: np.random.Generator, k: int, longest: float, duration: float) -> list[tuple[float, float]]:
    """(start, end) of `k` flashes, in order, anywhere in `duration` seconds.

    Each lasts GLIMPSE to `longest` seconds (shortened towards GLIMPSE where they would not
    fit) and the gaps between them are at least GLIMPSE. The spare time is cut at uniform
    random points into the stretches before each flash, so they may fall anywhere.
    """
    lengths = rng.uniform(GLIMPSE, longest, size=k)
    room = duration - k * GLIMPSE - (k - 1) * GLIMPSE
    extra = lengths.sum() - k * GLIMPSE
    if extra > room:
        lengths = GLIMPSE + (lengths - GLIMPSE) * max(0.0, room) / extra
    spare = max(0.0, duration - lengths.sum() - (k - 1) * GLIMPSE)
    cuts = np.sort(rng.uniform(0, spare, size=k))
    starts = cuts + np.concatenate([[0.0], np.cumsum(lengths[:-1] + GLIMPSE)])
    return [(float(s), float(s + d)) for s, d in zip(starts, lengths)]


def _light(frames: np.ndarray, fps: float, span: tuple[float, float], colour: str) -> None:
    """Show the central card on the frames whose time falls in `span` (seconds, end excluded)."""
    times = np.arange(len(frames)) / fps
    area = _card_area(frames.shape[-2])
    frames[(times >= span[0]) & (times < span[1]), area, area] = COLOURS[colour]


def _glyph(digit: int, size: int) -> np.ndarray:
    """A frame with `digit` drawn large, white on dark, from the 5x7 bitmap font."""
    bitmap = np.array([[c == "1" for c in row] for row in FONT[digit]])
    scale = (size * 7 // 8) // 7
    big = np.kron(bitmap, np.ones((scale, scale), bool))
    frame = np.full((size, size, 3), 20, np.uint8)
    y0, x0 = (size - big.shape[0]) // 2, (size - big.shape[1]) // 2
    frame[y0 : y0 + big.shape[0], x0 : x0 + big.shape[1]][big] = 235
    return frame


def _region_corner(r: int, size: int) -> tuple[float, float]:
    """Top-left corner of a size/4 square in part `r` of the frame: left, right, top, bottom."""
    sq = size // 4
    lo, mid, hi = 1.0, (size - sq) / 2, size - sq - 1.0
    return [(lo, mid), (hi, mid), (mid, lo), (mid, hi)][r]


def _sorted_digits(rng: np.random.Generator, digits: range) -> tuple[list[int], int]:
    """Four distinct digits in ascending order, and the index of the answer, uniform."""
    options = sorted(int(d) for d in rng.choice(digits, size=4, replace=False))
    return options, int(rng.integers(4))


# -- video questions -------------------------------------------------------------------


def motion_direction(rng: np.random.Generator, n: int, fps: float, size: int) -> Scene:
    """Perception: a big square moves in a straight line; which way?

    It starts anywhere in a central box that is the same for all four directions, so the
    first frame says nothing of the way; it travels 3/8 of the frame without turning back
    and stays at least half in view.
    """
    d = int(rng.integers(4))
    dx, dy = STEP[DIRECTIONS[d]]
    colour = COLOUR_NAMES[int(rng.integers(4))]
    sq = size // 4
    travel = 3 * size / 8
    start = rng.uniform(travel - sq / 2, size - sq - travel + sq / 2, size=2)
    frames = _plain(n, size)
    for t in range(n):
        p = travel * t / max(1, n - 1)
        _square(frames[t], start[0] + dx * p, start[1] + dy * p, sq, colour)
    return Scene(
        frames, "perception", "motion_direction", f"Which way does the {colour} square move?", list(DIRECTIONS), d
    )


def speed(rng: np.random.Generator, n: int, fps: float, size: int) -> Scene:
    """Perception: a lamp (the whole frame) cycles red, green, blue, yellow; how long is
    each colour on?

    Frame t shows colour floor((t / fps) / period) after a random start colour: the video's
    own clock. Every colour is as likely in any frame whatever the period, so the period is
    read only from how long each colour lasts, which takes a known time base: frames
    sampled at a fixed rate show it as run lengths, frames spread evenly over a video of
    unknown length do not.
    """
    n = _frames_for("speed", n, fps)
    p = int(rng.integers(len(PERIODS)))
    first = int(rng.integers(4))
    index = (first + np.floor(np.arange(n) / fps / PERIODS[p]).astype(int)) % 4
    frames = np.ascontiguousarray(np.broadcast_to(PALETTE[index][:, None, None, :], (n, size, size, 3)))
    return Scene(
        frames, "perception", "speed", "How long does the lamp stay on each colour?", [f"{s:g} s" for s in PERIODS], p
    )


def event_order(rng: np.random.Generator, n: int, fps: float, size: int) -> Scene:
    """Reasoning: cards of two colours flash one after the other, at random times; which
    colour flashes first? Any one frame shows one card at most."""
    n = _frames_for("event_order", n, fps)
    first = int(rng.integers(4))
    second = int(rng.choice([c for c in range(4) if c != first]))
    frames = _plain(n, size)
    for colour, span in zip((first, second), _flashes(rng, 2, 1.5, n / fps)):
        _light(frames, fps, span, COLOUR_NAMES[colour])
    return Scene(frames, "reasoning", "event_order", "Which colour flashes first?", list(COLOUR_NAMES), first)


def count_events(rng: np.random.Generator, n: int, fps: float, size: int) -> Scene:
    """Reasoning: a card flashes 1 to 4 times at random times; how many times?"""
    n = _frames_for("count_events", n, fps)
    k = int(rng.integers(1, 5))
    colour = COLOUR_NAMES[int(rng.integers(4))]
    frames = _plain(n, size)
    for span in _flashes(rng, k, 1.0, n / fps):
        _light(frames, fps, span, colour)
    return Scene(
        frames, "reasoning", "count_events", "How many times does the light flash?", ["1", "2", "3", "4"], k - 1
    )


def digit_sequence(rng: np.random.Generator, n: int, fps: float, size: int) -> Scene:
    """Temporal OCR: three digits are shown one after another, a third of the video each;
    which is shown first, second or third?

    The options are the three digits shown and one other, so one frame (a digit, its place
    unknown) cannot tell which.
    """
    n = _frames_for("digit_sequence", n, fps)
    options, a = _sorted_digits(rng, range(10))
    others = [i for i in range(4) if i != a]
    decoy = others[int(rng.integers(3))]
    order = [options[i] for i in rng.permutation([i for i in others if i != decoy])]
    place = int(rng.integers(3))
    order.insert(place, options[a])
    glyphs = np.stack([_glyph(d, size) for d in order])
    frames = glyphs[np.minimum(2, 3 * np.arange(n) // n)]
    return Scene(
        frames,
        "temporal_ocr",
        "digit_sequence",
        f"Which digit is shown {ORDINALS[place]}?",
        [str(d) for d in options],
        a,
    )


def last_colour(rng: np.random.Generator, n: int, fps: float, size: int) -> Scene:
    """Temporal OCR: coloured cards are shown one after another; which comes last?"""
    n = _frames_for("last_card", n, fps)
    order = [int(i) for i in rng.permutation(4)[:3]]
    bg = _texture(rng, size, size, dim=0.2)
    card = size // 2
    frames = np.empty((n, size, size, 3), np.uint8)
    for t in range(n):
        frames[t] = bg
        _square(frames[t], (size - card) / 2, (size - card) / 2, card, COLOUR_NAMES[order[min(2, 3 * t // n)]])
    return Scene(frames, "temporal_ocr", "last_card", "Which colour card is shown last?", list(COLOUR_NAMES), order[-1])


def camera_pan(rng: np.random.Generator, n: int, fps: float, size: int) -> Scene:
    """Egocentric: the camera pans one way over a world; which way?

    The world wraps around (a torus twice the frame's side): a dim texture with four big
    squares, one of each colour, one in each quarter at a random place in it. The camera
    starts anywhere in it, uniformly, and the way is drawn last, so any one frame is a
    uniformly placed view of a world drawn the same whatever the way: no single frame (the
    centre one included) tells it, only how the view moves between frames (against the
    way of the pan, by half the frame's side over the video).
    """
    side = 2 * size
    sq = size // 2
    world = _texture(rng, side, side, dim=0.3)
    for quarter, colour in enumerate(COLOUR_NAMES):
        corner = np.array([quarter % 2, quarter // 2]) * size + rng.integers(0, size - sq, size=2)
        _square(world, float(corner[0]), float(corner[1]), sq, colour)
    start = rng.integers(0, side, size=2)
    d = int(rng.integers(4))
    step = np.array(STEP[DIRECTIONS[d]])
    frames = np.empty((n, size, size, 3), np.uint8)
    for t in range(n):
        x, y = (start + step * int(round(sq * t / max(1, n - 1)))) % side
        frames[t] = np.roll(world, (-int(y), -int(x)), axis=(0, 1))[:size, :size]
    return Scene(frames, "egocentric", "camera_pan", "Which way does the camera pan?", list(DIRECTIONS), d)


def relative_position(rng: np.random.Generator, n: int, fps: float, size: int) -> Scene:
    """Spatial: one square moves past another, or stays on its side; where is the first
    relative to the second, at the start and at the end?

    The squares are in different rows, so they pass without hiding each other. How far
    apart they are across, at the start and at the end, and where the still one stands,
    are drawn the same way whatever the answer: the first frame shows the start side
    only, and cannot tell "left of it, then right" from "left of it throughout"; the last
    shows the end side only. Apart, they are 3/16 to 5/16 of the frame across.
    """
    a = int(rng.integers(4))
    first, second = (COLOUR_NAMES[int(c)] for c in rng.choice(4, size=2, replace=False))
    sq = size // 4
    near, far = 3 * size / 16, 5 * size / 16
    sign0, sign1 = [(-1, 1), (1, -1), (-1, -1), (1, 1)][a]
    u, v = rng.uniform(near, far, size=2)
    r0, r1 = sign0 * u, sign1 * v  # x_first - x_second at the start and at the end
    x = rng.uniform(far, size - sq - far)  # the still square: the other stays in view
    first_moves = rng.random() < 0.5
    rows = (size / 8, 5 * size / 8) if rng.random() < 0.5 else (5 * size / 8, size / 8)
    frames = _plain(n, size)
    for t in range(n):
        r = r0 + (r1 - r0) * t / max(1, n - 1)
        x_first, x_second = (x + r, x) if first_moves else (x, x - r)
        _square(frames[t], x_first, rows[0], sq, first)
        _square(frames[t], x_second, rows[1], sq, second)
    return Scene(
        frames,
        "spatial",
        "relative_position",
        f"Where is the {first} square relative to the {second} square?",
        list(RELATIVE),
        a,
    )


# -- controls: answered by one frame, or by the question's text ------------------------


def colour_of_square(rng: np.random.Generator, n: int, fps: float, size: int) -> Scene:
    """Frame control (perception): a square moves about the frame; what colour is it?"""
    c = int(rng.integers(4))
    bg = _texture(rng, size, size, dim=0.25)
    sq = size // 4
    start, end = rng.uniform(0, size - sq, size=2), rng.uniform(0, size - sq, size=2)
    frames = np.empty((n, size, size, 3), np.uint8)
    for t in range(n):
        x, y = start + (end - start) * t / max(1, n - 1)
        frames[t] = bg
        _square(frames[t], x, y, sq, COLOUR_NAMES[c])
    return Scene(
        frames,
        "perception",
        "square_colour",
        "What colour is the moving square?",
        list(COLOUR_NAMES),
        c,
        control="frame",
    )


def region(rng: np.random.Generator, n: int, fps: float, size: int) -> Scene:
    """Frame control (spatial): a square wanders inside one part of the frame; which part?"""
    r = int(rng.integers(4))
    colour = COLOUR_NAMES[int(rng.integers(4))]
    sq = size // 4
    cx, cy = _region_corner(r, size)
    bg = _texture(rng, size, size, dim=0.25)
    frames = np.empty((n, size, size, 3), np.uint8)
    wander = rng.normal(0, 0.8, size=(n, 2)).cumsum(axis=0).clip(-sq / 3, sq / 3)
    for t in range(n):
        frames[t] = bg
        _square(frames[t], cx + wander[t, 0], cy + wander[t, 1], sq, colour)
    return Scene(
        frames,
        "spatial",
        "square_region",
        f"In which part of the frame is the {colour} square?",
        ["left", "right", "top", "bottom"],
        r,
        control="frame",
    )


def background_colour(rng: np.random.Generator, n: int, fps: float, size: int) -> Scene:
    """Frame control (perception): a dark square drifts over a plain colour; what colour is
    the background?"""
    c = int(rng.integers(4))
    frames = np.empty((n, size, size, 3), np.uint8)
    frames[:] = COLOURS[COLOUR_NAMES[c]]
    sq = size // 4
    start, end = rng.uniform(0, size - sq, size=2), rng.uniform(0, size - sq, size=2)
    for t in range(n):
        x, y = start + (end - start) * t / max(1, n - 1)
        frames[t, int(y) : int(y) + sq, int(x) : int(x) + sq] = BACKGROUND
    return Scene(
        frames,
        "perception",
        "background_colour",
        "What colour is the background?",
        list(COLOUR_NAMES),
        c,
        control="frame",
    )


def card_told(rng: np.random.Generator, n: int, fps: float, size: int) -> Scene:
    """Text control (perception): a still card whose colour the question states."""
    c = int(rng.integers(4))
    frames = _plain(n, size)
    _card(frames, COLOUR_NAMES[c])
    return Scene(
        frames,
        "perception",
        "card_told",
        f"The card in this video is {COLOUR_NAMES[c]}. What colour is the card?",
        list(COLOUR_NAMES),
        c,
        control="text",
    )


def _told(render: VideoScene, statement: str) -> VideoScene:
    """A text control made of a video scene: its question follows `statement`, which gives
    the answer (formatted in for "{}"). Kind: the scene's, plus "_told"."""

    def told(rng: np.random.Generator, n: int, fps: float, size: int) -> Scene:
        scene = render(rng, n, fps, size)
        question = f"{statement.format(scene.options[scene.answer])} {scene.question}"
        return dataclasses.replace(scene, kind=f"{scene.kind}_told", question=question, control="text")

    told.__doc__ = f"Text control: {render.__name__}, its answer stated in the question."
    return told


# -- still images, image sequences and text, for training mixtures ---------------------


def image_colour(rng: np.random.Generator, size: int) -> Scene:
    """Perception, one image: a square somewhere; what colour is it?"""
    c = int(rng.integers(4))
    sq = size // 4
    image = _texture(rng, size, size, dim=0.25)
    x, y = rng.uniform(0, size - sq, size=2)
    _square(image, x, y, sq, COLOUR_NAMES[c])
    return Scene(image[None], "perception", "image_colour", "What colour is the square?", list(COLOUR_NAMES), c)


def image_region(rng: np.random.Generator, size: int) -> Scene:
    """Spatial, one image: a square in one part of the image; which part?"""
    r = int(rng.integers(4))
    colour = COLOUR_NAMES[int(rng.integers(4))]
    image = _texture(rng, size, size, dim=0.25)
    x, y = np.array(_region_corner(r, size)) + rng.uniform(-size / 12, size / 12, size=2)
    _square(image, x, y, size // 4, colour)
    return Scene(
        image[None],
        "spatial",
        "image_region",
        f"In which part of the image is the {colour} square?",
        ["left", "right", "top", "bottom"],
        r,
    )


def multi_image_which(rng: np.random.Generator, size: int) -> Scene:
    """Reasoning, four images: a card of a different colour in each; which image has the
    card of the colour asked?"""
    order = rng.permutation(4)
    a = int(rng.integers(4))
    images = _plain(4, size)
    for image, c in zip(images, order):
        _card(image, COLOUR_NAMES[c])
    return Scene(
        images,
        "reasoning",
        "multi_image_which",
        f"In which image is the card {COLOUR_NAMES[order[a]]}?",
        list(ORDINALS),
        a,
    )


def multi_image_colour(rng: np.random.Generator, size: int) -> Scene:
    """Temporal OCR, 2 to 4 images of cards: what colour is the card in the one asked?"""
    k = int(rng.integers(2, 5))
    colours = rng.integers(4, size=k)
    j = int(rng.integers(k))
    images = _plain(k, size)
    for image, c in zip(images, colours):
        _card(image, COLOUR_NAMES[c])
    return Scene(
        images,
        "temporal_ocr",
        "multi_image_colour",
        f"What colour is the card in the {ORDINALS[j]} image?",
        list(COLOUR_NAMES),
        int(colours[j]),
    )


def text_digits(rng: np.random.Generator) -> Scene:
    """Reasoning, text only: which digit comes right after a given one?"""
    options, a = _sorted_digits(rng, range(1, 10))
    return Scene(
        np.empty((0, 0, 0, 3), np.uint8),
        "reasoning",
        "text_digits",
        f"Which digit comes right after {options[a] - 1}?",
        [str(d) for d in options],
        a,
    )


def text_colours(rng: np.random.Generator) -> Scene:
    """Reasoning, text only: which colour follows a given one in the lamp's cycle?"""
    a = int(rng.integers(4))
    cycle = ", ".join(COLOUR_NAMES)
    return Scene(
        np.empty((0, 0, 0, 3), np.uint8),
        "reasoning",
        "text_colours",
        f"Which colour comes after {COLOUR_NAMES[a - 1]} in the lamp's cycle of {cycle}?",
        list(COLOUR_NAMES),
        a,
    )


CATEGORIES = ["perception", "spatial", "egocentric", "temporal_ocr", "reasoning"]
VIDEO_SCENES: dict[str, VideoScene] = {
    "motion_direction": motion_direction,
    "speed": speed,
    "relative_position": relative_position,
    "camera_pan": camera_pan,
    "digit_sequence": digit_sequence,
    "last_card": last_colour,
    "event_order": event_order,
    "count_events": count_events,
}
BY_CATEGORY: dict[str, list[str]] = {
    "perception": ["motion_direction", "speed"],
    "spatial": ["relative_position"],
    "egocentric": ["camera_pan"],
    "temporal_ocr": ["digit_sequence", "last_card"],
    "reasoning": ["event_order", "count_events"],
}
CONTROLS: dict[str, dict[str, VideoScene]] = {
    "frame": {"square_colour": colour_of_square, "square_region": region, "background_colour": background_colour},
    "text": {
        "card_told": card_told,
        "speed_told": _told(speed, "The lamp stays on each colour for {}."),
        "event_order_told": _told(event_order, "The {} card flashes first."),
        "last_card_told": _told(last_colour, "The last card shown is {}."),
        "camera_pan_told": _told(camera_pan, "The camera pans {}."),
    },
}
IMAGE_SAMPLES: dict[str, ImageSample] = {"image_colour": image_colour, "image_region": image_region}
MULTI_IMAGE_SAMPLES: dict[str, ImageSample] = {
    "multi_image_which": multi_image_which,
    "multi_image_colour": multi_image_colour,
}
TEXT_SAMPLES: dict[str, TextSample] = {"text_digits": text_digits, "text_colours": text_colours}
