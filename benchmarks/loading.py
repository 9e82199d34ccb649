"""Data-loading benchmark: clips per second through the DataLoader, as training reads them.

    python -m benchmarks.loading [--videos 64] [--seconds 8] [--workers 0 1 2]

For each source (the synthetic benchmark, and a real 640x360 video), each sampler
(`fps`, 2 frames per second; `uniform`, 8 frames) and each worker count, it runs the real
`SampleDataset` + `collate` through a `DataLoader` and prints videos, clips and frames per
second. In the same run, the same loop with every frame decoded and subsampled afterwards
(what a reader without random access does) shows what decoding only the sampled frames
buys. Numbers, not assertions: speed is measured here, never in the tests.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import DataLoader

from src.data.dataset import SampleDataset, collate
from src.data.manifest import Sample, mcq_prompt, read_manifest
from src.data.samplers import FpsSampler, UniformSampler
from src.models.llm import build_word_tokenizer

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT / "tests" / "fixtures" / "videos" / "moviepy__chaplin.mp4"  # 640x360, 25 fps, 9.6 s


class DecodeAllDataset(SampleDataset):
    """The baseline: decode the whole video, then keep the sampled frames."""

    def read_frames(self, video: Any, indices: list[int]) -> np.ndarray:
        every = video.get(range(video.num_frames))
        return every[indices]


def synthetic_rows(n: int, manifest: Path | None) -> list[Sample]:
    """The first `n` video samples of `manifest`, by default the eval split of `make demo`."""
    if manifest is None:
        from src.data.synthetic import default_spec_and_root, ensure

        spec, root = default_spec_and_root()
        manifest = ensure(spec, root) / "eval.jsonl"
    return [s for s in read_manifest(manifest)[0] if s.modality == "video"][:n]


def real_rows(n: int, path: Path) -> list[Sample]:
    prompt = mcq_prompt("What colour is the moving square?", ["red", "green", "blue", "yellow"])
    return [
        Sample(
            id=f"real_{i}",
            media=[("video", str(path))],
            turns=[("user", prompt), ("assistant", "A")],
            category="perception",
            benchmark="real",
            options=["red", "green", "blue", "yellow"],
            answer="A",
        )
        for i in range(n)
    ]


def measure(dataset: SampleDataset, workers: int, seconds: float, batch_size: int) -> dict[str, float]:
    """Read batches for about `seconds`, after one warm-up batch."""
    loader = DataLoader(
        dataset, batch_size=batch_size, num_workers=workers, collate_fn=collate, persistent_workers=workers > 0
    )
    videos = clips = frames = 0
    it = iter(loader)
    next(it)  # start-up (worker processes, first open) is not throughput
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        try:
            batch = next(it)
        except StopIteration:
            it = iter(loader)
            continue
        videos += len(batch.media)
        clips += sum(int(m.shape[0]) for ms in batch.media for m in ms)
        frames += sum(int(m.shape[0] * m.shape[1]) for ms in batch.media for m in ms)
    elapsed = time.perf_counter() - start
    return {"videos/s": videos / elapsed, "clips/s": clips / elapsed, "frames/s": frames / elapsed}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.loading", description=__doc__.split("\n")[0])
    p.add_argument("--videos", type=int, default=64, help="videos per source")
    p.add_argument("--seconds", type=float, default=8.0, help="measuring time per row")
    p.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--batch", type=int, default=8, help="batch size (training's default: 8)")
    p.add_argument("--real", type=Path, default=REAL, help="the real video (repeated)")
    p.add_argument("--manifest", type=Path, help="synthetic JSONL (default: the demo's train split)")
    args = p.parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    sources = {
        "synthetic": synthetic_rows(args.videos, args.manifest),
        f"real {args.real.name}": real_rows(args.videos, args.real),
    }
    tokenizer = build_word_tokenizer(text for rows in sources.values() for r in rows for _, text in r.turns)
    samplers: dict[str, FpsSampler | UniformSampler] = {
        "fps 2": FpsSampler(fps=2.0),
        "uniform 8": UniformSampler(num_frames=8),
    }
    print(f"{os.cpu_count()} CPUs; batches of {args.batch}; {args.seconds:g} s per row")
    print(f"{'source':<28} {'sampler':<10} {'decode':<8} {'workers':>7} {'videos/s':>9} {'clips/s':>9} {'frames/s':>9}")
    for source, rows in sources.items():
        for sname, sampler in samplers.items():
            for mode, cls in (("sampled", SampleDataset), ("all", DecodeAllDataset)):
                for workers in args.workers:
                    r = measure(cls(rows, sampler, tokenizer), workers, args.seconds, args.batch)
                    print(
                        f"{source:<28} {sname:<10} {mode:<8} {workers:>7} {r['videos/s']:>9.1f} "
                        f"{r['clips/s']:>9.1f} {r['frames/s']:>9.1f}",
                        flush=True,
                    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
