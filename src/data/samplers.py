"""Frame samplers: which frames of a video make which clips, as pure functions (no I/O).

Named as in Apollo (arXiv 2412.10360, section 4): *fps sampling* takes frames at a
fixed rate in video time, *uniform sampling* takes N frames spread over the whole
video whatever its length. Each sampler returns a `ClipPlan`: frame indices grouped
into clips of `frames_per_clip` (the encoder's: 1 for an image encoder, 4 InternVideo2,
8 LanguageBind-Video, 16 VideoMAE and V-JEPA), with each clip's start and end in seconds
of video time.

Each sampler is a function (`fps_plan`, `uniform_plan`) and a small callable class
(`FpsSampler`, `UniformSampler`) so that a Hydra config can name it as `_target_`.
The token budget of a design (tokens per frame, per clip, per second) is `tokens_design`;
`fps_for_tokens` turns a token rate into a frame rate, so that tokens per second can be
the swept quantity (`sampler.fps=null sampler.tokens_per_second=16`).

A video of variable frame rate passes its frames' timestamps (`frame_times`): the samples
are then placed in its time as for any other, and each takes the frame shown at its time by
those timestamps (for a constant rate, index `floor(t * native_fps)` is that frame).

Counting rule for fps sampling (floor, not ceil, so that no clip runs past the
end of the video): with `duration = num_frames / native_fps`,
`clips = max(1, floor(duration * fps / frames_per_clip))`, capped at `max_clips`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from omegaconf import DictConfig

from src.config.constraints import Constraints, Rule, join, nullable, positive_int, positive_number
from src.config.errors import ConfigError

# Tolerance for float rates such as 30000/1001: 120 frames at 29.97 fps and fps=29.97
# must give 120 samples, not 119 from a product of 119.99999999.
_EPS = 1e-6


@dataclass(frozen=True)
class ClipPlan:
    """Frame indices grouped into clips, with each clip's time span in seconds."""

    indices: np.ndarray  # (clips, frames_per_clip) int64, in [0, num_frames), non-decreasing
    starts: np.ndarray  # (clips,) seconds of video time of each clip's first frame
    ends: np.ndarray  # (clips,) seconds: the clip's last frame time plus one sample interval

    def __post_init__(self) -> None:
        if self.indices.ndim != 2 or self.indices.shape[0] < 1:
            raise ValueError(f"indices must be (clips>=1, frames_per_clip), got {self.indices.shape}")
        if self.starts.shape != (self.num_clips,) or self.ends.shape != (self.num_clips,):
            raise ValueError("starts and ends must have one entry per clip")

    @property
    def num_clips(self) -> int:
        return int(self.indices.shape[0])

    @property
    def frames_per_clip(self) -> int:
        return int(self.indices.shape[1])

    @property
    def flat(self) -> np.ndarray:
        """All indices in clip order, `(clips * frames_per_clip,)`: what to decode."""
        return self.indices.reshape(-1)


def _positive(name: str, value: float | None, integer: bool = False) -> None:
    if value is None:
        return
    if integer and (isinstance(value, bool) or int(value) != value):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")


def _check_video(num_frames: int, native_fps: float) -> None:
    _positive("num_frames (of the video)", num_frames, integer=True)
    _positive("native_fps", native_fps)


def _check_fps(fps: float, frames_per_clip: int, max_clips: int | None) -> None:
    _positive("fps", fps)
    _positive("frames_per_clip", frames_per_clip, integer=True)
    _positive("max_clips", max_clips, integer=True)


def _check_uniform(num_samples: int, frames_per_clip: int) -> None:
    _positive("num_frames (to sample)", num_samples, integer=True)
    _positive("frames_per_clip", frames_per_clip, integer=True)
    if num_samples % frames_per_clip:
        raise ValueError(
            f"num_frames={num_samples} (to sample) must be a multiple of frames_per_clip={frames_per_clip}"
        )


def _plan(
    times: np.ndarray,
    num_frames: int,
    native_fps: float,
    start_time: float,
    interval: float,
    frame_times: np.ndarray | None = None,
) -> ClipPlan:
    """Turn sample times `(clips, frames_per_clip)` (seconds from the first frame) into a plan.

    Each sample takes the frame shown at its time: the one whose display interval holds it,
    [i, i+1)/native_fps, or with `frame_times` (each frame's presentation time, a variable
    frame rate) the last frame whose timestamp is at or before it.
    """
    if frame_times is not None:
        shown = np.asarray(frame_times, dtype=np.float64)
        if shown.shape != (num_frames,):
            raise ValueError(f"frame_times must have one entry per frame ({num_frames}), got {shown.shape}")
        rel = shown - shown[0]
        idx = np.searchsorted(rel, times + _EPS, side="right").astype(np.int64) - 1
        idx = np.clip(idx, 0, num_frames - 1)
        starts, ends = shown[idx[:, 0]], shown[idx[:, -1]] + interval
        return ClipPlan(indices=idx, starts=starts, ends=ends)
    idx = np.floor(times * native_fps + _EPS).astype(np.int64)
    idx = np.clip(idx, 0, num_frames - 1)  # a too-short video repeats its last frame
    starts = start_time + idx[:, 0] / native_fps
    ends = start_time + idx[:, -1] / native_fps + interval
    return ClipPlan(indices=idx, starts=starts.astype(np.float64), ends=ends.astype(np.float64))


def fps_plan(
    num_frames: int,
    native_fps: float,
    fps: float,
    frames_per_clip: int = 1,
    max_clips: int | None = None,
    start_time: float = 0.0,
    frame_times: np.ndarray | None = None,
) -> ClipPlan:
    """Frames at `fps` in video time, `frames_per_clip` consecutive samples per clip.

    `frame_times` (seconds, one per frame; `Video.timestamps()`): given for a video whose
    frames are not evenly spaced (`Video.constant_rate` False), each sample takes the frame
    shown at its time by those timestamps, not by index at `native_fps`; clip starts and
    ends are then frame timestamps (`start_time` is `frame_times[0]`).

    A clip spans `frames_per_clip / fps` seconds. Clips follow one another from the
    start of the video. When more than `max_clips` would be needed, `max_clips` clips
    are spread uniformly instead (each centred in one of `max_clips` equal segments),
    each keeping the rate `fps` inside: the paper's rule, which keeps the temporal
    resolution of a clip and gives up coverage between clips.
    """
    _check_fps(fps, frames_per_clip, max_clips)
    _check_video(num_frames, native_fps)
    duration = num_frames / native_fps
    clips = max(1, math.floor(duration * fps / frames_per_clip + _EPS))
    offsets = np.arange(frames_per_clip) / fps  # sample times inside a clip
    if max_clips is not None and clips > max_clips:
        clips = max_clips
        segment = duration / clips
        span = frames_per_clip / fps
        clip_starts = np.arange(clips) * segment + (segment - span) / 2
    else:
        clip_starts = np.arange(clips) * (frames_per_clip / fps)
    times = clip_starts[:, None] + offsets[None, :]
    return _plan(times, num_frames, native_fps, start_time, 1.0 / fps, frame_times)


def uniform_plan(
    num_frames: int,
    native_fps: float,
    num_samples: int,
    frames_per_clip: int = 1,
    start_time: float = 0.0,
    frame_times: np.ndarray | None = None,
) -> ClipPlan:
    """`num_samples` frames at the centres of equal segments of the whole video.

    Grouped into `num_samples // frames_per_clip` clips. A clip's end is its last
    frame's time plus one sampling interval (`duration / num_samples`). `frame_times`:
    as for `fps_plan`.
    """
    _check_uniform(num_samples, frames_per_clip)
    _check_video(num_frames, native_fps)
    duration = num_frames / native_fps
    interval = duration / num_samples
    times = (np.arange(num_samples) + 0.5) * interval
    return _plan(times.reshape(-1, frames_per_clip), num_frames, native_fps, start_time, interval, frame_times)


def check_one_rate(node: DictConfig, key: str, root: DictConfig) -> None:
    """A frame rate or a token rate, not both, not neither."""
    fps, tps = node.get("fps"), node.get("tokens_per_second")
    if (fps is None) == (tps is None):
        raise ConfigError(
            f"{join(key, 'tokens_per_second')}={tps!r} is invalid with {join(key, 'fps')}="
            f"{fps!r}; valid: exactly one of the two set ({join(key, 'fps')}=null "
            f"{join(key, 'tokens_per_second')}=16 samples at 16 tokens a second)"
        )


class FpsSampler:
    """Fps sampling as a Hydra `_target_`: `FpsSampler(fps=2, frames_per_clip=1)`.

    The rate is `fps`, or a token rate: `FpsSampler(tokens_per_second=16, tokens_per_clip=8)`
    samples at `fps_for_tokens(16, frames_per_clip, 8)` frames a second, so that a sweep
    can hold tokens per second fixed (or vary it) whatever the tokens per frame. Exactly
    one of `fps` and `tokens_per_second` is given.
    """

    CONSTRAINTS: ClassVar[Constraints] = Constraints(
        Rule("fps", nullable(positive_number), "> 0"),
        Rule("tokens_per_second", nullable(positive_number), "> 0, or null"),
        Rule("max_clips", nullable(positive_int), "an integer > 0, or null"),
        check=check_one_rate,
    )

    def __init__(
        self,
        fps: float | None = None,
        frames_per_clip: int = 1,
        max_clips: int | None = None,
        tokens_per_second: float | None = None,
        tokens_per_clip: int | None = None,
    ) -> None:
        if (fps is None) == (tokens_per_second is None):
            raise ValueError(
                f"give exactly one of fps and tokens_per_second, got fps={fps!r}, "
                f"tokens_per_second={tokens_per_second!r}"
            )
        if tokens_per_second is not None:
            if tokens_per_clip is None:
                raise ValueError("tokens_per_second needs tokens_per_clip (the resampler's)")
            fps = fps_for_tokens(tokens_per_second, frames_per_clip, tokens_per_clip)
        assert fps is not None  # exactly one of the two was given
        _check_fps(fps, frames_per_clip, max_clips)
        self.fps = float(fps)
        self.frames_per_clip = int(frames_per_clip)
        self.max_clips = None if max_clips is None else int(max_clips)
        self.tokens_per_second = None if tokens_per_second is None else float(tokens_per_second)

    def __call__(
        self, num_frames: int, native_fps: float, start_time: float = 0.0, frame_times: np.ndarray | None = None
    ) -> ClipPlan:
        return fps_plan(num_frames, native_fps, self.fps, self.frames_per_clip, self.max_clips, start_time, frame_times)

    def __repr__(self) -> str:
        return f"FpsSampler(fps={self.fps}, frames_per_clip={self.frames_per_clip}, max_clips={self.max_clips})"


class UniformSampler:
    """Uniform sampling as a Hydra `_target_`: `UniformSampler(num_frames=32)`.

    `num_frames` here is the number of frames to sample (the paper's 8/16/32/64),
    not the length of the video, which is given at call time.
    """

    CONSTRAINTS: ClassVar[Constraints] = Constraints(Rule("num_frames", positive_int, "an integer > 0"))

    def __init__(self, num_frames: int, frames_per_clip: int = 1) -> None:
        _check_uniform(num_frames, frames_per_clip)
        self.num_frames = int(num_frames)
        self.frames_per_clip = int(frames_per_clip)

    def __call__(
        self, num_frames: int, native_fps: float, start_time: float = 0.0, frame_times: np.ndarray | None = None
    ) -> ClipPlan:
        return uniform_plan(num_frames, native_fps, self.num_frames, self.frames_per_clip, start_time, frame_times)

    def __repr__(self) -> str:
        return f"UniformSampler(num_frames={self.num_frames}, frames_per_clip={self.frames_per_clip})"


def fps_for_tokens(tokens_per_second: float, frames_per_clip: int, tokens_per_clip: int) -> float:
    """The frame rate that gives `tokens_per_second`: tokens_per_second / tokens per frame,
    where a frame has `tokens_per_clip / frames_per_clip` tokens."""
    _positive("tokens_per_second", tokens_per_second)
    _positive("frames_per_clip", frames_per_clip, integer=True)
    _positive("tokens_per_clip", tokens_per_clip, integer=True)
    return tokens_per_second * frames_per_clip / tokens_per_clip


def tokens_design(fps: float | None, frames_per_clip: int, tokens_per_clip: int) -> dict[str, float | int | None]:
    """The token budget of a sampling design: per frame, per clip and per second.

    `tokens_per_second` is None for uniform sampling (`fps=None`), where it depends
    on the video's length. Apollo finds 8 to 32 tokens per frame work best.
    """
    _positive("fps", fps)
    _positive("frames_per_clip", frames_per_clip, integer=True)
    _positive("tokens_per_clip", tokens_per_clip, integer=True)
    tokens_per_frame = tokens_per_clip / frames_per_clip
    return {
        "tokens_per_frame": tokens_per_frame,
        "tokens_per_clip": int(tokens_per_clip),
        "tokens_per_second": None if fps is None else fps * tokens_per_frame,
    }


def sampling_design(sampler: object, frames_per_clip: int, tokens_per_clip: int) -> dict[str, Any]:
    """What the run record says of a sampler: its rate (fps sampling) or frame count
    (uniform), and the token budget of `tokens_design`. A sampler set by a token rate
    reports that rate exactly, so that runs of a tokens-per-second sweep group by it."""
    fps = getattr(sampler, "fps", None)
    out: dict[str, Any] = {
        "fps": None if fps is None else float(fps),
        "num_frames": getattr(sampler, "num_frames", None),  # uniform sampling's N
        **tokens_design(fps, frames_per_clip, tokens_per_clip),
    }
    if getattr(sampler, "tokens_per_second", None) is not None:
        out["tokens_per_second"] = float(sampler.tokens_per_second)  # type: ignore[attr-defined]
    return out
