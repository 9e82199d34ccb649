"""Loading at real size: long 720p (or 1080p) videos through the datamodule's loader, by worker
count, with frames resized to SigLIP's 384 in the workers or after the loader.

    python -m benchmarks.loading_real_size [--height 720] [--videos 2] [--seconds 60]
        [--workers 0 1 2] [--samples 4] [--fps 2] [--max-clips 64]

It writes `--videos` mp4s of `--seconds` each at `--height` (16:9, 30 fps, libx264 at CRF 23,
a scrolling smooth texture: a bitrate like a real clip's, not noise's), once, under `--dir`;
then, for each way and worker count, reads `--samples` samples (one video each, after one
warm-up sample) through `VideoQADataModule.test_dataloader()`, the run's own path: the fps
sampler (conf/sampler/fps.yaml's 2 fps, at most 64 clips), decoding, collating, with the
datamodule attached to an encoder of SigLIP's input size (conf/encoder/siglip.yaml).

Ways:
- `worker`: `resize_in_workers=true`, the default: the workers send 384 x 384 uint8 frames;
- `whole`: `resize_in_workers=false`: the workers send whole frames, which the main process
  only receives: what a GPU run's host pays when the GPU resizes (the whole frames still
  cross the worker queue, the pinned copy and the host-to-device link: the `MB/clip` column);
- `after`: as `whole`, and the main process resizes them as `VisionEncoder.preprocess` does
  (float, bilinear, antialiased), on the CPU: a CPU run's cost.

Columns: samples (videos), clips and frames per second of wall time, MB of frames per clip
sent out of the loader, the main process's CPU ms per sample (collating, unpickling the
batch, and for `after` the resize), and the CPU seconds of all processes (workers included)
per sample. Numbers, not assertions: speed is measured here, never in the tests.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch
from omegaconf import OmegaConf

from src.config.compose import CONF_DIR
from src.data.datamodule import VideoQADataModule
from src.data.samplers import FpsSampler
from src.models.encoders.base import VisionEncoder
from src.models.llm import build_word_tokenizer

WAYS = ("worker", "whole", "after")


class InputSize(VisionEncoder):
    """SigLIP's preprocessing without its tower: what the loader needs of the encoder."""

    frames_per_clip = 1

    def __init__(self, size: int) -> None:
        super().__init__()
        self.input_size = size
        self.image_mean = self.image_std = (0.5, 0.5, 0.5)


def siglip_size() -> int:
    """The input size of the real SigLIP option (384)."""
    return int(OmegaConf.load(CONF_DIR / "encoder" / "siglip.yaml").input_size)


def texture(height: int, width: int, seed: int) -> np.ndarray:
    """A random uint8 texture twice the frame's width: noise at a third of the resolution,
    enlarged (bicubic). At CRF 23 a 720p video of it scrolling is about 2 Mbit/s, a web
    video's rate; finer noise costs more bits than real footage, smoother far fewer."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (max(height // 3, 2), max(2 * width // 3, 2), 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(small).resize((2 * width, height), Image.Resampling.BICUBIC))


def write_video(path: Path, seconds: float, height: int, fps: int = 30, seed: int = 0) -> Path:
    """An h264 mp4 of a texture scrolling 4 px a frame, with a bright square crossing it."""
    import av

    width = (height * 16 // 9) // 2 * 2
    tex = texture(height, width, seed)
    tmp = path.with_suffix(".part.mp4")
    with av.open(str(tmp), "w") as out:
        stream = out.add_stream("libx264", rate=fps, options={"crf": "23", "preset": "veryfast"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(round(seconds * fps)):
            x = (4 * i) % width
            frame = np.ascontiguousarray(tex[:, x : x + width])
            s, y0, x0 = height // 6, (i * 3) % (height - height // 6), (i * 5) % (width - height // 6)
            frame[y0 : y0 + s, x0 : x0 + s] = 255
            out.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        out.mux(stream.encode())
    tmp.rename(path)
    return path


def make_videos(folder: Path, n: int, seconds: float, height: int) -> list[Path]:
    """`n` videos of `seconds` at `height`, written once (the name says the settings)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k in range(n):
        path = folder / f"v{k}_{height}p_{seconds:g}s.mp4"
        if not path.exists():
            t = time.perf_counter()
            write_video(path, seconds, height, seed=k)
            mbits = path.stat().st_size * 8 / seconds / 1e6
            print(f"wrote {path} ({mbits:.1f} Mbit/s) in {time.perf_counter() - t:.1f} s", flush=True)
        paths.append(path)
    return paths


def write_manifest(folder: Path, videos: list[Path], rows: int) -> Path:
    """A multiple-choice manifest of `rows` items over the videos in turn."""
    path = folder / f"manifest_{len(videos)}x{rows}.jsonl"
    with path.open("w") as f:
        for i in range(rows):
            row = {
                "id": f"q{i}",
                "video": str(videos[i % len(videos)].resolve()),
                "question": "Where does the square go?",
                "options": ["left", "right", "up", "down"],
                "answer": "B",
                "category": "motion",
            }
            f.write(json.dumps(row) + "\n")
    return path


def cpu_seconds() -> float:
    """User + system CPU time of this process and its children (the workers, once they end)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def process_seconds() -> float:
    return time.process_time()


def measure(manifest: Path, way: str, workers: int, samples: int, sampler: FpsSampler, size: int) -> dict[str, float]:
    """Read 1 + `samples` samples through the datamodule's loader; rates after the first."""
    dm = VideoQADataModule(
        "real_size",
        str(manifest.parent),
        eval=str(manifest),
        train=str(manifest),
        eval_batch_size=1,
        num_workers=workers,
        resize_in_workers=way == "worker",
        pin_memory=False,
    )
    dm.prepare_data()
    dm.attach(sampler, build_word_tokenizer(t for s in dm.eval_samples for _, t in s.turns), encoder=InputSize(size))
    encoder = dm.encoder
    cpu0 = cpu_seconds()
    it = iter(dm.test_dataloader()[0])
    next(it)  # start-up (worker processes, the first open) is not throughput
    start, main0 = time.perf_counter(), process_seconds()
    clips = frames = nbytes = 0
    for _ in range(samples):
        batch = next(it)
        for media in batch.media:
            for m in media:
                clips, frames, nbytes = clips + m.shape[0], frames + m.shape[0] * m.shape[1], nbytes + m.numel()
                if way == "after":  # the encoder's own resize (and normalisation), here on the CPU
                    encoder.preprocess(m)
    wall, main = time.perf_counter() - start, process_seconds() - main0
    del it  # the workers end: their CPU time is counted
    return {
        "samples/s": samples / wall,
        "clips/s": clips / wall,
        "frames/s": frames / wall,
        "MB/clip": nbytes / max(clips, 1) / 1e6,
        "main ms/sample": 1000 * main / samples,
        "cpu s/sample": (cpu_seconds() - cpu0) / (samples + 1),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.loading_real_size", description=__doc__.split("\n")[0])
    p.add_argument("--height", type=int, default=720, help="frame height (16:9): 720, 1080, ...")
    p.add_argument("--videos", type=int, default=2, help="distinct videos written")
    p.add_argument("--seconds", type=float, default=60.0, help="length of each video")
    p.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--samples", type=int, default=4, help="samples measured per row, after one warm-up")
    p.add_argument("--ways", nargs="+", choices=WAYS, default=list(WAYS))
    p.add_argument("--fps", type=float, default=2.0, help="sampler fps (conf/sampler/fps.yaml: 2)")
    p.add_argument("--max-clips", type=int, default=64, help="sampler max_clips (conf/sampler/fps.yaml: 64)")
    p.add_argument("--size", type=int, default=None, help="the encoder's input size (default: SigLIP's, 384)")
    p.add_argument("--dir", type=Path, default=Path("data") / "benchmarks" / "real_size", help="where videos go")
    p.add_argument("--threads", type=int, default=1, help="torch threads in the main process")
    args = p.parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    torch.set_num_threads(args.threads)
    size = args.size or siglip_size()
    videos = make_videos(args.dir, args.videos, args.seconds, args.height)
    manifest = write_manifest(args.dir, videos, 1 + args.samples)
    sampler = FpsSampler(fps=args.fps, max_clips=args.max_clips)
    load = os.getloadavg()[0]
    print(
        f"{os.cpu_count()} CPUs, load {load:.1f}; {args.videos} videos of {args.seconds:g} s at {args.height}p, "
        f"fps {args.fps:g} (at most {args.max_clips} clips), frames to {size}; {args.samples} samples a row"
    )
    cols = ("samples/s", "clips/s", "frames/s", "MB/clip", "main ms/sample", "cpu s/sample")
    print(f"{'way':<8} {'workers':>7} " + " ".join(f"{c:>14}" for c in cols))
    for way in args.ways:
        for workers in args.workers:
            r = measure(manifest, way, workers, args.samples, sampler, size)
            print(f"{way:<8} {workers:>7} " + " ".join(f"{r[c]:>14.2f}" for c in cols), flush=True)
    print(f"load at the end {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
