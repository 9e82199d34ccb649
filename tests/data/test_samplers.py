"""Property tests of the frame samplers over many random videos (fixed seed, no hypothesis).

Each case draws a video (length, native rate including NTSC fractions, start time)
and a sampler setting; the properties: exact clip counts, indices in range and
ordered, determinism, short videos, the max_clips rule, and agreement with an
exact rational-arithmetic reference.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import numpy as np
import pytest

from src.data.samplers import (
    ClipPlan,
    FpsSampler,
    UniformSampler,
    fps_for_tokens,
    fps_plan,
    sampling_design,
    tokens_design,
    uniform_plan,
)
from tests.helpers import cfg_with

RATES = [
    Fraction(24),
    Fraction(25),
    Fraction(30),
    Fraction(60),
    Fraction(10),
    Fraction(1090000, 36301),
    Fraction(30000, 1001),
    Fraction(24000, 1001),
    Fraction(15000, 1001),
    Fraction(7, 2),
]
FPS = [Fraction(1, 2), Fraction(1), Fraction(2), Fraction(4), Fraction(8), Fraction(3, 2), Fraction(30)]
N_CASES = 300


def case(seed: int) -> dict[str, Any]:
    """One random video and fps-sampler setting; short videos are drawn on purpose."""
    rng = np.random.default_rng(seed)
    native = RATES[rng.integers(len(RATES))]
    num_frames = int(rng.integers(1, 12)) if rng.random() < 0.25 else int(rng.integers(1, 5000))
    return dict(
        num_frames=num_frames,
        native=native,
        fps=FPS[rng.integers(len(FPS))],
        fpc=int(rng.choice([1, 2, 4, 8])),
        max_clips=None if rng.random() < 0.4 else int(rng.integers(1, 64)),
        start=0.0 if rng.random() < 0.5 else float(rng.uniform(0, 100)),
    )


def run_fps(c: dict[str, Any]) -> ClipPlan:
    return FpsSampler(float(c["fps"]), c["fpc"], c["max_clips"])(c["num_frames"], float(c["native"]), c["start"])


def check_plan(plan: ClipPlan, num_frames: int, clips: int, fpc: int) -> None:
    assert plan.indices.shape == (clips, fpc) == (plan.num_clips, plan.frames_per_clip)
    assert plan.indices.dtype == np.int64
    assert plan.indices.min() >= 0 and plan.indices.max() < num_frames
    assert np.all(np.diff(plan.flat) >= 0)
    assert np.all(plan.ends > plan.starts) and np.all(np.diff(plan.starts) >= 0)


@pytest.mark.parametrize("seed", range(N_CASES))
def test_fps_sampler_properties(seed: int) -> None:
    c = case(seed)
    n, native, fps, fpc, cap = c["num_frames"], c["native"], c["fps"], c["fpc"], c["max_clips"]
    plan = run_fps(c)
    # The documented count: floor of the clips that fit, at least one, at most max_clips.
    fit = max(1, math.floor(Fraction(n) / native * fps / fpc))
    clips = fit if cap is None else min(fit, cap)
    check_plan(plan, n, clips, fpc)
    assert np.array_equal(plan.indices, run_fps(c).indices)  # deterministic
    assert np.allclose(plan.starts, c["start"] + plan.indices[:, 0] / float(native))
    assert np.allclose(plan.ends, c["start"] + plan.indices[:, -1] / float(native) + 1 / float(fps))
    if cap is None or fit <= cap:
        # Exact reference: sample j at time j / fps shows frame floor(j * native / fps).
        ref = [min(math.floor(j * native / fps), n - 1) for j in range(clips * fpc)]
        assert plan.flat.tolist() == ref
    else:
        # Capped: clips spread over equal segments, each keeping the rate fps inside.
        segment = Fraction(n, cap)
        for k, row in enumerate(plan.indices):
            assert math.floor(k * segment) <= row[0] and row[-1] < (k + 1) * segment
            steps = np.diff(row)
            assert np.all(steps >= math.floor(native / fps)) and np.all(steps <= math.ceil(native / fps))


@pytest.mark.parametrize("seed", range(N_CASES))
def test_uniform_sampler_properties(seed: int) -> None:
    rng = np.random.default_rng(10_000 + seed)
    n = int(rng.integers(1, 12)) if rng.random() < 0.25 else int(rng.integers(1, 5000))
    native = float(RATES[rng.integers(len(RATES))])
    fpc = int(rng.choice([1, 2, 4, 8]))
    samples = int(rng.choice([8, 16, 32, 64]))
    start = float(rng.uniform(0, 100))
    plan = UniformSampler(samples, fpc)(n, native, start)
    check_plan(plan, n, samples // fpc, fpc)
    # Centres of equal segments, in exact integer arithmetic.
    assert plan.flat.tolist() == [(2 * k + 1) * n // (2 * samples) for k in range(samples)]
    if n >= samples:
        assert np.all(np.diff(plan.flat) > 0)  # no frame twice when there are enough
    shifted = UniformSampler(samples, fpc)(n, native, 0.0)
    assert np.array_equal(shifted.indices, plan.indices)
    assert np.allclose(plan.starts - start, shifted.starts)
    assert np.allclose(plan.ends - plan.indices[:, -1] / native - start, n / native / samples)


def test_short_video_gives_one_padded_clip() -> None:
    # 3 frames (0.1 s at 30 fps), clips of 4 frames at 2 fps (2 s): one clip, last frame repeated.
    plan = FpsSampler(fps=2, frames_per_clip=4)(3, 30.0)
    assert plan.indices.tolist() == [[0, 2, 2, 2]]
    assert plan.starts.tolist() == [0.0] and plan.ends[0] == pytest.approx(2 / 30 + 0.5)
    assert UniformSampler(8)(3, 30.0).flat.tolist() == [0, 0, 0, 1, 1, 2, 2, 2]


def test_fractional_rate_keeps_every_frame() -> None:
    # 120 frames at 30000/1001 sampled at the native rate: all 120, not 119 from rounding.
    native = 30000 / 1001
    plan = FpsSampler(fps=native)(120, native)
    assert plan.flat.tolist() == list(range(120))


def test_max_clips_spreads_clips_not_lowers_fps() -> None:
    # 10 s at 30 fps, 2 fps with 4-frame clips: 5 clips fit; capped at 2 they sit in each half.
    plan = FpsSampler(fps=2, frames_per_clip=4, max_clips=2)(300, 30.0, start_time=1.0)
    assert plan.indices.tolist() == [[45, 60, 75, 90], [195, 210, 225, 240]]
    assert plan.starts.tolist() == [2.5, 7.5] and plan.ends.tolist() == [4.5, 9.5]
    assert fps_plan(300, 30.0, fps=2, frames_per_clip=4).num_clips == 5


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: FpsSampler(fps=0), "fps must be > 0"),
        (lambda: FpsSampler(fps=-1.0), "fps must be > 0"),
        (lambda: FpsSampler(fps=1, frames_per_clip=0), "frames_per_clip must be > 0"),
        (lambda: FpsSampler(fps=1, max_clips=0), "max_clips must be > 0"),
        (
            lambda: FpsSampler(fps=1, frames_per_clip=1.5),  # type: ignore[arg-type]  # wrong on purpose
            "frames_per_clip must be an integer",
        ),
        (lambda: UniformSampler(num_frames=0), "num_frames .to sample. must be > 0"),
        (lambda: UniformSampler(num_frames=8, frames_per_clip=0), "frames_per_clip must be > 0"),
        (lambda: UniformSampler(num_frames=6, frames_per_clip=4), "multiple of frames_per_clip=4"),
        (lambda: FpsSampler(fps=1)(0, 30.0), "num_frames .of the video. must be > 0"),
        (lambda: FpsSampler(fps=1)(10, 0.0), "native_fps must be > 0"),
        (lambda: UniformSampler(8)(-1, 30.0), "num_frames .of the video. must be > 0"),
        (lambda: UniformSampler(8)(10, -30.0), "native_fps must be > 0"),
        (lambda: uniform_plan(10, 30.0, num_samples=8, frames_per_clip=3), "multiple"),
        (lambda: tokens_design(0, 1, 16), "fps must be > 0"),
        (lambda: FpsSampler(), "exactly one of fps and tokens_per_second"),
        (lambda: FpsSampler(fps=2, tokens_per_second=16, tokens_per_clip=8), "exactly one of"),
        (lambda: FpsSampler(fps=None, tokens_per_second=16), "needs tokens_per_clip"),
        (lambda: FpsSampler(fps=None, tokens_per_second=-1, tokens_per_clip=8), "tokens_per_second must be > 0"),
    ],
)
def test_invalid_parameters_raise(build: Callable[[], object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()


def test_tokens_design() -> None:
    assert tokens_design(2.0, 4, 64) == {"tokens_per_frame": 16.0, "tokens_per_clip": 64, "tokens_per_second": 32.0}
    assert tokens_design(None, 1, 16)["tokens_per_second"] is None


def test_hydra_targets_build() -> None:
    instantiate = pytest.importorskip("hydra.utils").instantiate
    sampler = instantiate({"_target_": "src.data.samplers.FpsSampler", "fps": 2, "frames_per_clip": 2})
    assert sampler(60, 30.0).indices.tolist() == [[0, 15], [30, 45]]
    uniform = instantiate({"_target_": "src.data.samplers.UniformSampler", "num_frames": 8})
    assert uniform(80, 30.0).num_clips == 8


@pytest.mark.parametrize("tps, fpc, tpc, fps", [(16, 1, 8, 2.0), (16, 4, 8, 8.0), (4, 16, 32, 2.0), (10, 4, 3, 40 / 3)])
def test_a_token_rate_sets_the_frame_rate(tps: float, fpc: int, tpc: int, fps: float) -> None:
    """Tokens per second as the swept quantity: fps = tokens per second / tokens per frame."""
    assert fps_for_tokens(tps, fpc, tpc) == pytest.approx(fps)
    sampler = FpsSampler(fps=None, frames_per_clip=fpc, tokens_per_second=tps, tokens_per_clip=tpc)
    assert sampler.fps == pytest.approx(fps)
    same = FpsSampler(fps=fps, frames_per_clip=fpc)
    assert np.array_equal(sampler(900, 30.0).indices, same(900, 30.0).indices)
    d = sampling_design(sampler, fpc, tpc)
    assert d["tokens_per_second"] == tps  # exactly the rate asked for, so sweeps group by it
    assert d["fps"] == pytest.approx(fps) and d["tokens_per_frame"] == tpc / fpc
    assert d["tokens_per_second"] == pytest.approx(d["fps"] * d["tokens_per_frame"])


def test_sampling_design_of_each_sampler() -> None:
    assert sampling_design(FpsSampler(fps=1, frames_per_clip=4), 4, 16) == {
        "fps": 1.0,
        "num_frames": None,
        "tokens_per_frame": 4.0,
        "tokens_per_clip": 16,
        "tokens_per_second": 4.0,
    }
    assert sampling_design(UniformSampler(32, 4), 4, 16) == {
        "fps": None,
        "num_frames": 32,
        "tokens_per_frame": 4.0,
        "tokens_per_clip": 16,
        "tokens_per_second": None,
    }


@pytest.mark.parametrize(
    "encoder, fpc", [("siglip", 1), ("internvideo2", 4), ("languagebind_video", 8), ("videomae", 16), ("vjepa", 16)]
)
def test_clip_length_comes_from_the_encoder(encoder: str, fpc: int) -> None:
    from hydra.utils import instantiate

    for option in ("fps", "uniform"):
        extra = ["sampler.num_frames=32"] if option == "uniform" else []
        cfg = cfg_with(f"encoder={encoder}", f"sampler={option}", *extra)
        sampler = instantiate(cfg.sampler)
        assert sampler.frames_per_clip == fpc == cfg.encoder.frames_per_clip
        plan = sampler(30 * 60, 30.0)  # a minute at 30 fps
        assert plan.frames_per_clip == fpc and np.all(plan.ends > plan.starts)
    # fps sampling: 2 fps for 60 s is 120 frames, in clips of fpc, capped at 64 clips
    assert instantiate(cfg_with(f"encoder={encoder}").sampler)(1800, 30.0).num_clips == min(120 // fpc, 64)


def test_a_tokens_per_second_sweep_composes_and_is_checked() -> None:
    from hydra.utils import instantiate

    from src.config.errors import ConfigError
    from src.config.validate import validate

    for tps, tpc, fps in [(8, 4, 2.0), (32, 4, 8.0), (8, 16, 0.5)]:
        cfg = cfg_with(
            "sampler.fps=null",
            f"sampler.tokens_per_second={tps}",
            "resampler=avgpool",
            f"resampler.tokens_per_clip={tpc}",
        )
        validate(cfg)
        sampler = instantiate(cfg.sampler)
        assert sampler.fps == fps
        assert sampling_design(sampler, 1, tpc)["tokens_per_second"] == tps
    video = cfg_with("encoder=internvideo2", "sampler.fps=null", "sampler.tokens_per_second=16")
    assert instantiate(video.sampler).fps == 16 / (8 / 4)  # perceiver: 8 tokens per 4-frame clip
    for bad in (["sampler.tokens_per_second=16"], ["sampler.fps=null"]):
        with pytest.raises(ConfigError, match=r"exactly one of the two set \(sampler.fps=null"):
            validate(cfg_with(*bad))
    with pytest.raises(ConfigError, match=r"sampler.tokens_per_second=-4 is invalid; valid: > 0"):
        validate(cfg_with("sampler.fps=null", "sampler.tokens_per_second=-4"))


@pytest.mark.parametrize("seed", range(20))
def test_variable_rate_plans_take_the_frame_on_screen(seed: int) -> None:
    # random frame intervals (5 ms to 0.5 s): every sample is the frame shown at its time
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 400))
    times = 2.5 + np.concatenate([[0.0], np.cumsum(rng.uniform(0.005, 0.5, n - 1))])
    last = rng.uniform(0.005, 0.5)
    duration = times[-1] - times[0] + last
    fps, fpc = float(rng.choice([0.5, 1, 2, 4, 8])), int(rng.choice([1, 2, 4]))
    plan = FpsSampler(fps=fps, frames_per_clip=fpc)(n, n / duration, times[0], frame_times=times)
    clips = max(1, math.floor(duration * fps / fpc + 1e-6))
    check_plan(plan, n, clips, fpc)
    wanted = times[0] + np.arange(clips * fpc) / fps
    shown = times[plan.flat]
    following = np.append(times[1:], np.inf)[plan.flat]
    assert np.all(shown <= wanted + 1e-9) and np.all((wanted < following) | (plan.flat == n - 1))
    assert np.allclose(plan.starts, times[plan.indices[:, 0]])
    uniform = UniformSampler(num_frames=8, frames_per_clip=2)(n, n / duration, times[0], frame_times=times)
    centres = times[0] + (np.arange(8) + 0.5) * duration / 8
    assert np.all(times[uniform.flat] <= centres + 1e-9)
    assert np.all(centres < np.append(times[1:], np.inf)[uniform.flat])
