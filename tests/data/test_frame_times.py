"""Frame times from the stream's timestamps, on videos made here with PyAV (issue 19, item 5).

- a variable-frame-rate mp4 (explicit pts): fps sampling takes the frame shown at each
  wanted time, by timestamps, in both backends and through `SampleDataset`;
- a raw MPEG-2 stream (.m2v) at 30000/1001, whose container rate is the raw demuxer's 25:
  the codec's rate is used, so its duration and sampled frames are right;
- a file with two video streams: the first is read (as `ffprobe -select_streams v:0`),
  never the one decord's ranking picks.

Every frame carries its index in its colour (`index_of` reads it back), so a test sees
which frame a sampler's plan decoded.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import cast

import av
import numpy as np
import pytest
import torch

from src.data.dataset import SampleDataset, centre_frame
from src.data.samplers import FpsSampler, UniformSampler, fps_plan
from src.data.video import VideoError, frame_rate, open_video

SIZE = 64


def colour(i: int) -> np.ndarray:
    """Frame i's colour: its index in two channels, 16 levels apart (a lossy codec's error is smaller)."""
    return np.array([16 * (i % 16) + 8, 16 * (i // 16) + 8, 128], np.uint8)


def index_of(frames: np.ndarray) -> list[int]:
    """The index each decoded frame (n, H, W, 3) carries."""
    mean = frames[:, SIZE // 4 : -SIZE // 4, SIZE // 4 : -SIZE // 4].reshape(len(frames), -1, 3).mean(axis=1)
    return [int(round((g - 8) / 16)) * 16 + int(round((r - 8) / 16)) for r, g, _ in mean]


def _frame(i: int, size: int = SIZE) -> av.VideoFrame:
    return av.VideoFrame.from_ndarray(np.broadcast_to(colour(i), (size, size, 3)).copy(), format="rgb24")


def _encode(container: av.container.OutputContainer, stream: av.VideoStream, pts: list[int], tb: Fraction) -> None:
    for i, p in enumerate(pts):
        frame = _frame(i, stream.width)
        frame.pts, frame.time_base = p, tb
        container.mux(stream.encode(frame))
    container.mux(stream.encode())


# 30 frames 20 ms apart (0 to 0.58 s), then 30 frames 100 ms apart (0.6 to 3.5 s): average 16.7 fps
VFR_PTS_MS = [20 * i for i in range(30)] + [600 + 100 * i for i in range(30)]


@pytest.fixture(scope="module")
def vfr(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if "libx264" not in av.codecs_available:
        pytest.skip("PyAV built without libx264")
    path = tmp_path_factory.mktemp("vfr") / "vfr.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = SIZE, SIZE, "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)
        stream.options = {"crf": "0", "bf": "0"}
        _encode(container, stream, VFR_PTS_MS, Fraction(1, 1000))
    return path


@pytest.fixture(scope="module")
def m2v(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("m2v") / "ntsc.m2v"
    with av.open(str(path), "w", format="mpeg2video") as container:
        stream = container.add_stream("mpeg2video", rate=Fraction(30000, 1001))
        stream.width, stream.height, stream.pix_fmt = SIZE, SIZE, "yuv420p"
        stream.options = {"qscale": "2"}
        _encode(container, stream, list(range(60)), Fraction(1001, 30000))
    return path


@pytest.fixture(scope="module")
def two_streams(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An mkv with stream #0 (64x64, 20 frames at 10 fps) and #1 (32x32, 50 frames at 25 fps):
    both flagged default, so FFmpeg's ranking (decord's) picks #1, the larger bit rate."""
    if "libx264" not in av.codecs_available:
        pytest.skip("PyAV built without libx264")
    path = tmp_path_factory.mktemp("two") / "two.mkv"
    rng = np.random.default_rng(0)
    with av.open(str(path), "w") as container:
        first = container.add_stream("libx264", rate=10)
        first.width, first.height, first.pix_fmt = SIZE, SIZE, "yuv420p"
        second = container.add_stream("libx264", rate=25)
        second.width, second.height, second.pix_fmt = 32, 32, "yuv420p"
        _encode(container, first, list(range(20)), Fraction(1, 10))
        for i in range(50):  # noise: a far larger bit rate than the solid first stream
            frame = av.VideoFrame.from_ndarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8), format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, 25)
            container.mux(second.encode(frame))
        container.mux(second.encode())
    return path


def shown_at(t: float) -> int:
    """The VFR video's frame on screen at `t` seconds: the last one whose time is at or before t."""
    return int(np.searchsorted(np.asarray(VFR_PTS_MS) / 1000, t + 1e-9, side="right") - 1)


@pytest.mark.parametrize("backend", ["decord", "pyav"])
def test_vfr_times_come_from_the_timestamps(vfr: Path, backend: str) -> None:
    with open_video(vfr, backend=backend) as video:
        assert video.num_frames == 60 and not video.constant_rate
        assert np.allclose(video.timestamps(), np.asarray(VFR_PTS_MS) / 1000, atol=1e-6)
        # duration: last frame's time plus its interval (3.5 + 0.1 s); fps the average over it
        assert video.duration == pytest.approx(3.6) and video.fps == pytest.approx(60 / 3.6)


@pytest.mark.parametrize("backend", ["decord", "pyav"])
@pytest.mark.parametrize("sampler", [FpsSampler(fps=2), FpsSampler(fps=4, frames_per_clip=2), UniformSampler(8)])
def test_vfr_sampling_takes_the_frame_shown_at_each_time(vfr: Path, backend: str, sampler: object) -> None:
    with open_video(vfr, backend=backend) as video:
        plan = sampler(video.num_frames, video.fps, video.start_time, frame_times=video.timestamps())  # type: ignore[operator]
        if isinstance(sampler, FpsSampler):  # samples every 1/fps s from the start
            wanted = np.arange(plan.indices.size) / sampler.fps
        else:  # the centres of 8 equal segments of the 3.6 s
            wanted = (np.arange(8) + 0.5) * video.duration / 8
        expected = [shown_at(t) for t in wanted]
        assert plan.flat.tolist() == expected
        assert index_of(video.get(plan.flat.tolist())) == expected  # the pixels agree
        assert np.allclose(plan.starts, np.asarray(VFR_PTS_MS)[plan.indices[:, 0]] / 1000)
        # every decoded frame is the one on screen at its time: off by less than its own interval
        times = video.timestamps()
        assert np.all(times[plan.flat] <= wanted + 1e-9)
        nxt = np.append(times[1:], video.duration)[plan.flat]
        assert np.all(wanted < nxt)


def test_dataset_samples_a_vfr_video_by_its_timestamps(vfr: Path) -> None:
    ds = SampleDataset([], FpsSampler(fps=2), tokenizer=None)
    clips, span, _, errors = ds._video(str(vfr))
    expected = [shown_at(k / 2) for k in range(7)]  # 3.6 s at 2 fps: 7 samples, 0 to 3 s
    assert errors == 0 and index_of(clips.reshape(-1, SIZE, SIZE, 3).numpy()) == expected
    assert span is not None and np.allclose(span[:, 0].numpy(), np.asarray(VFR_PTS_MS)[expected] / 1000)
    centre, _, _, _ = ds._video(str(vfr), centre=True)  # the frame on screen at 1.8 s, not index 30
    assert index_of(centre.reshape(-1, SIZE, SIZE, 3).numpy()) == [shown_at(1.8)] == [42]


def test_raw_m2v_takes_the_codec_rate(m2v: Path) -> None:
    with open_video(m2v) as video:  # decord cannot read it; PyAV does
        assert video.backend == "pyav" and video.num_frames == 60 and video.constant_rate
        assert video.fps == pytest.approx(30000 / 1001, rel=1e-9)  # not the raw demuxer's 25
        assert video.duration == pytest.approx(60 * 1001 / 30000)  # 2.002 s, not 2.4
        assert np.allclose(np.diff(video.timestamps()), 1001 / 30000, atol=1e-6)
        plan = FpsSampler(fps=2)(video.num_frames, video.fps, video.start_time)
        assert plan.flat.tolist() == [0, 14, 29, 44]  # frame shown at 0, 0.5, 1, 1.5 s at 29.97 fps
        assert index_of(video.get(plan.flat.tolist())) == [0, 14, 29, 44]


def test_the_first_of_two_video_streams_is_read(two_streams: Path) -> None:
    with open_video(two_streams) as video:
        assert (video.backend, video.stream, video.num_frames, video.fps) == ("pyav", 0, 20, 10.0)
        assert (video.width, video.height) == (SIZE, SIZE)
        assert index_of(video.get([3, 17])) == [3, 17]
    with pytest.raises(VideoError, match="2 video streams; decord cannot be told to read stream #0"):
        open_video(two_streams, backend="decord")


def test_frame_rate_rules() -> None:
    n = 300
    ntsc = np.arange(n) * 1001 / 30000
    assert frame_rate(ntsc, [30000 / 1001]) == (30000 / 1001, True)
    assert frame_rate(np.round(ntsc, 3), [30000 / 1001]) == (30000 / 1001, True)  # a 1 ms time base
    assert frame_rate(ntsc, [25.0, 30000 / 1001]) == (30000 / 1001, True)  # a wrong container rate passed over
    fps, constant = frame_rate(ntsc, [25.0])  # no declared rate fits: the timestamps' own
    assert constant and fps == pytest.approx(30000 / 1001)
    fps, constant = frame_rate(np.asarray(VFR_PTS_MS) / 1000, [17.79])
    assert not constant and fps == pytest.approx(60 / 3.6)
    assert frame_rate(np.zeros(1), [24.0]) == (24.0, True)


def test_constant_rate_plans_are_unchanged_by_their_timestamps() -> None:
    # a constant-rate video planned by index or by its timestamps: the same frames
    for n, fps, rate, fpc in [(300, 30000 / 1001, 2.0, 1), (241, 25.0, 1.0, 4), (90, 10.0, 3.0, 2)]:
        times = 0.3 + np.arange(n) / fps
        a = fps_plan(n, fps, rate, fpc, start_time=0.3)
        b = fps_plan(n, fps, rate, fpc, start_time=0.3, frame_times=times)
        assert np.array_equal(a.indices, b.indices)
        assert np.allclose(a.starts, b.starts) and np.allclose(a.ends, b.ends)


def test_centre_frame() -> None:
    assert centre_frame({"num_frames": 61, "fps": 10.0}) == 30
    times = (np.asarray(VFR_PTS_MS) / 1000).tolist()
    assert centre_frame({"num_frames": 60, "fps": 60 / 3.6, "frame_times": times}) == shown_at(1.8)


# codec, pixel format, encoder options: what the reader survey found decoding right,
# made here so that the frame-time rules are checked on each (AV1 is read by PyAV: decord's
# FFmpeg has no AV1 decoder)
CODECS: dict[str, tuple[str, str, dict[str, object]]] = {
    "av1.mp4": ("libsvtav1", "yuv420p", {"preset": "12", "crf": "10"}),
    "hevc.mp4": ("libx265", "yuv420p", {"crf": "4", "x265-params": "log-level=none"}),
    "h264_10bit.mp4": ("libx264", "yuv420p10le", {"crf": "0"}),
    "interlaced.mp4": ("libx264", "yuv420p", {"crf": "0", "flags": "+ilme+ildct", "x264-params": "interlaced=1:tff=1"}),
    "interlaced.mkv": ("mpeg2video", "yuv420p", {"qscale": "2", "flags": "+ilme+ildct", "top": "1"}),
}


@pytest.mark.parametrize("name", sorted(CODECS))
def test_other_codecs_keep_their_frames_and_times(tmp_path: Path, name: str) -> None:
    codec, pix_fmt, options = CODECS[name]
    if codec not in av.codecs_available:
        pytest.skip(f"PyAV built without {codec}")
    path = tmp_path / name
    with av.open(str(path), "w") as container:
        stream = cast(av.VideoStream, container.add_stream(codec, rate=Fraction(30000, 1001)))
        stream.width, stream.height, stream.pix_fmt, stream.options = SIZE, SIZE, pix_fmt, options
        _encode(container, stream, list(range(30)), Fraction(1001, 30000))
    for backend in ("auto", "pyav"):
        with open_video(path, backend=backend) as video:
            assert (video.num_frames, video.constant_rate) == (30, True)
            assert video.fps == pytest.approx(30000 / 1001, rel=1e-9)
            assert np.allclose(np.diff(video.timestamps()), 1001 / 30000, atol=1e-3)
            plan = FpsSampler(fps=10)(video.num_frames, video.fps, video.start_time)
            assert plan.flat.tolist() == [int(k * 0.1 * 30000 / 1001 + 1e-6) for k in range(10)]
            assert index_of(video.get(plan.flat.tolist())) == plan.flat.tolist()


def test_the_feature_cache_index_keeps_a_vfr_videos_timestamps(vfr: Path, tmp_path: Path) -> None:
    from src.cache.features import FeatureCache, FeatureLookup

    first = SampleDataset([], FpsSampler(fps=2), tokenizer=None, features=FeatureLookup(FeatureCache(tmp_path), "e"))
    clips, span, slot, _ = first._video(str(vfr))  # a miss: the file is probed and indexed
    info = FeatureCache(tmp_path).media_info(vfr)  # read back from the index on disk
    assert info is not None and np.allclose(info["frame_times"], np.asarray(VFR_PTS_MS) / 1000)
    again = SampleDataset([], FpsSampler(fps=2), tokenizer=None, features=FeatureLookup(FeatureCache(tmp_path), "e"))
    clips2, span2, slot2, _ = again._video(str(vfr))  # planned from the index, not by opening the file
    assert slot is not None and slot2 is not None and slot.key == slot2.key
    assert span is not None and span2 is not None and torch.equal(span, span2) and torch.equal(clips, clips2)
