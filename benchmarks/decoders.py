"""Decoder benchmark: fps-sampled frames of a real video, our reader against the libraries.

    python -m benchmarks.decoders [--video tests/fixtures/videos/moviepy__chaplin.mp4]
        [--fps 2] [--rounds 5] [--seconds 2]

Every way opens the file afresh and returns the same frames, (n, H, W, 3) uint8, the ones
`sampler=fps` picks (2 frames a second: 19 of the 241 frames of the 9.6 s, 640x360
chaplin clip), one decoding thread each as in a DataLoader worker:

- `ours`: `src.data.video.open_video` (backend auto) + the fps sampler + `Video.get`,
  exactly what `SampleDataset` does for a video;
- `decord`: `VideoReader(...).get_batch(indices)`;
- `pyav`: PyAV decoding in order from the start, converting only the wanted frames;
- `torchcodec`: `VideoDecoder(...).get_frames_at(indices)`, when torchcodec imports.

The ways take turns, `--rounds` rounds of `--seconds` each, so that a busy machine slows
them alike; each way's best round is reported, by wall time and by CPU time (what it costs
on an idle core: on a shared machine the wall time also counts the others' work), and ours
against the best of the others (target: at least 0.9).
"""

from __future__ import annotations

import argparse
import importlib
import os
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import cast

import numpy as np

from benchmarks.sweeps import ROOT
from src.data.samplers import FpsSampler

VIDEO = ROOT / "tests" / "fixtures" / "videos" / "moviepy__chaplin.mp4"


def ours(path: Path, sampler: FpsSampler) -> np.ndarray:
    from src.data.video import open_video

    with open_video(path) as video:
        times = None if video.constant_rate else video.timestamps()  # as SampleDataset passes them
        plan = sampler(video.num_frames, video.fps, video.start_time, frame_times=times)
        return video.get(plan.flat.tolist())


def decord(path: Path, sampler: FpsSampler) -> np.ndarray:
    from decord import VideoReader, cpu

    vr = VideoReader(str(path), ctx=cpu(0), num_threads=1)
    plan = sampler(len(vr), float(vr.get_avg_fps()), 0.0)
    return vr.get_batch(plan.flat.tolist()).asnumpy()


def pyav(path: Path, sampler: FpsSampler) -> np.ndarray:
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.codec_context.thread_count = 1
        plan = sampler(stream.frames, float(cast(Fraction, stream.average_rate)), 0.0)  # set for the fixture
        wanted = plan.flat.tolist()
        keep, last = set(wanted), max(wanted)
        frames = {}
        for i, frame in enumerate(container.decode(stream)):
            if i in keep:
                frames[i] = frame.to_ndarray(format="rgb24")
            if i >= last:
                break
        return np.stack([frames[i] for i in wanted])


def torchcodec(path: Path, sampler: FpsSampler) -> np.ndarray:
    from torchcodec.decoders import VideoDecoder

    decoder = VideoDecoder(str(path), num_ffmpeg_threads=1, dimension_order="NHWC")
    meta = decoder.metadata
    plan = sampler(meta.num_frames, float(meta.average_fps), 0.0)
    return decoder.get_frames_at(plan.flat.tolist()).data.numpy()


def available() -> dict[str, Callable[[Path, FpsSampler], np.ndarray] | str]:
    """Each way, or why it cannot run here."""
    ways: dict[str, Callable[[Path, FpsSampler], np.ndarray] | str] = {"ours": ours, "decord": decord, "pyav": pyav}
    try:
        importlib.import_module("torchcodec")  # does it load here?
        ways["torchcodec"] = torchcodec
    except Exception as e:  # noqa: BLE001 - not installed, or its libraries do not load
        ways["torchcodec"] = f"not available: {type(e).__name__}: {' '.join(str(e).split())[:160]}"
    return ways


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.decoders", description=__doc__.split("\n")[0])
    p.add_argument("--video", type=Path, default=VIDEO)
    p.add_argument("--fps", type=float, default=2.0)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--seconds", type=float, default=2.0, help="per way per round")
    args = p.parse_args(argv)
    sampler = FpsSampler(fps=args.fps)
    ways = available()
    runnable = {k: f for k, f in ways.items() if callable(f)}
    shapes = {k: f(args.video, sampler).shape for k, f in runnable.items()}  # and warm-up
    print(
        f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}; {args.video.name}, fps {args.fps:g}: "
        f"{shapes['ours'][0]} frames of {shapes['ours'][2]}x{shapes['ours'][1]}"
    )
    wall = dict.fromkeys(runnable, 0.0)  # best videos per second of wall time
    cpu = dict.fromkeys(runnable, 0.0)  # best videos per CPU second (this process, all threads)
    for _ in range(args.rounds):
        for name, fn in runnable.items():
            n, start, start_cpu = 0, time.perf_counter(), time.process_time()
            while time.perf_counter() - start < args.seconds:
                fn(args.video, sampler)
                n += 1
            wall[name] = max(wall[name], n / (time.perf_counter() - start))
            cpu[name] = max(cpu[name], n / max(time.process_time() - start_cpu, 1e-9))
    top_wall = max((v for k, v in wall.items() if k != "ours"), default=float("nan"))
    top_cpu = max((v for k, v in cpu.items() if k != "ours"), default=float("nan"))
    print(f"{'way':<12} {'videos/s':>9} {'vs best':>8} {'videos/CPU-s':>13} {'vs best':>8}")
    for name, way in ways.items():
        if not callable(way):
            print(f"{name:<12} {way}")
            continue
        print(
            f"{name:<12} {wall[name]:>9.2f} {wall[name] / top_wall:>7.2f}x {cpu[name]:>13.2f} "
            f"{cpu[name] / top_cpu:>7.2f}x"
        )
    same = all(s == shapes["ours"] for s in shapes.values())
    print(
        f"ours / best library: {wall['ours'] / top_wall:.2f} by wall time, {cpu['ours'] / top_cpu:.2f} "
        f"by CPU time (target >= 0.9); same shape everywhere: {same}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
