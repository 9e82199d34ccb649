"""The real-size loading benchmark writes its videos at the size asked, reads them through the
datamodule's loader, and prints one row per way and worker count; the `worker` way sends
frames at the encoder's size, the `whole` and `after` ways whole frames (benchmarks/loading_real_size.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import loading_real_size as bench
from src.data.samplers import FpsSampler
from src.data.video import open_video


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return bench.make_videos(tmp_path_factory.mktemp("real_size"), n=1, seconds=2, height=72)


def test_the_videos_are_written_at_the_size_asked(videos: list[Path]) -> None:
    with open_video(videos[0]) as v:
        assert (v.width, v.height, v.num_frames) == (128, 72, 60) and v.fps == pytest.approx(30)
    assert bench.siglip_size() == 384


def test_worker_resize_sends_frames_at_the_encoders_size_and_after_whole(videos: list[Path]) -> None:
    manifest = bench.write_manifest(videos[0].parent, videos, rows=2)
    sampler = FpsSampler(fps=2, max_clips=64)
    worker, whole, after = (bench.measure(manifest, w, 0, samples=1, sampler=sampler, size=32) for w in bench.WAYS)
    for r in (worker, whole, after):
        assert r["samples/s"] > 0 and r["clips/s"] == pytest.approx(4 * r["samples/s"])  # 2 s at 2 fps
    assert worker["MB/clip"] == pytest.approx(32 * 32 * 3 / 1e6)
    assert whole["MB/clip"] == after["MB/clip"] == pytest.approx(128 * 72 * 3 / 1e6)


def test_the_benchmark_prints_a_row_per_way_and_worker_count(
    videos: list[Path], capsys: pytest.CaptureFixture[str]
) -> None:
    folder = videos[0].parent
    argv = ["--dir", str(folder), "--height", "72", "--seconds", "2", "--videos", "1", "--samples", "1"]
    assert bench.main([*argv, "--workers", "0", "1", "--size", "32"]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:2] == ["way", "workers"])
    rows = [line.split()[:2] for line in lines[header + 1 : header + 7]]
    assert rows == [[way, w] for way in ("worker", "whole", "after") for w in ("0", "1")]
