"""Data-wait benchmark: how long a training step waits for its batch, by DataLoader workers.

    python -m benchmarks.data_wait [--workers 0 1 2] [--batches 40] [--threads N] [overrides ...]

Trains the default tiny run (or the one the overrides name) on the synthetic benchmark
for `--batches` steps with each worker count, through the real Lightning loop, with
Lightning's SimpleProfiler: `[_TrainingEpochLoop].train_dataloader_next` is the time the
loop waits for the next batch, `run_training_batch` the step itself (forward, backward,
optimizer), of which `encoder ms` in the vision encoder. The first batch (workers
starting) is left out. Target: with 2 workers the
wait is under 10% of the step time. The feature cache is off here (`cache.features=false`,
every video decoded), the case where loading costs the most; `--cache` measures a warm cache.
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.sweeps import ROOT

FETCH = "[_TrainingEpochLoop].train_dataloader_next"
STEP = "run_training_batch"


def measure(overrides: list[str], batches: int) -> tuple[float, float, float]:
    """(mean wait for a batch, mean step, the step's mean time in the vision encoder) in
    seconds, over steps 2..batches."""
    import lightning as L
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate
    from lightning.pytorch.profilers import SimpleProfiler

    from src.config.container import to_dict
    from src.models.module import VideoLMMModule
    from src.run.build import build_parts

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    L.seed_everything(cfg.seed, verbose=False)
    parts = build_parts(cfg)
    stage = to_dict(cfg.schedule.stages[0], resolve=True)
    module = VideoLMMModule(parts.model, parts.option_token_ids, stage)
    parts.datamodule.use_stage(0, stage["data"])
    encode = parts.model.encoder.encode
    spent: list[float] = []

    def timed_encode(frames):  # the encoder's share of a step: what a cache hit saves
        start = time.perf_counter()
        out = encode(frames)
        spent.append(time.perf_counter() - start)
        return out

    parts.model.encoder.encode = timed_encode  # type: ignore[method-assign]
    calls = []
    module.on_train_batch_end = lambda *_: calls.append(sum(spent))  # type: ignore[method-assign]
    profiler = SimpleProfiler(dirpath=tempfile.mkdtemp(), filename="profile")  # its table: a file
    trainer = instantiate(
        cfg.trainer,
        max_epochs=1,
        limit_train_batches=batches,
        logger=False,
        profiler=profiler,
        enable_progress_bar=False,
        enable_checkpointing=False,
    )
    trainer.fit(module, datamodule=parts.datamodule)
    fetch = profiler.recorded_durations[FETCH][1:batches]
    step = profiler.recorded_durations[STEP][1:]
    per_step = [b - a for a, b in itertools.pairwise(calls)]
    return statistics.mean(fetch), statistics.mean(step), statistics.mean(per_step or [0.0])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.data_wait", description=__doc__.split("\n")[0])
    p.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--batches", type=int, default=40)
    p.add_argument("--threads", type=int, help="torch threads of the training process")
    p.add_argument("--cache", action="store_true", help="feature cache on (filled by a first pass)")
    p.add_argument("--data-dir", type=Path, help="APOLLO_DATA_DIR (default: ./data)")
    p.add_argument("overrides", nargs="*")
    args = p.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    data_dir = (args.data_dir or ROOT / "data").resolve()
    print(
        f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}; torch threads {torch.get_num_threads()}; "
        f"{args.batches} steps; feature cache {'on (warm)' if args.cache else 'off'}",
        flush=True,
    )
    rows = []
    with tempfile.TemporaryDirectory() as cache_dir:
        cache = [f"cache.dir={cache_dir}"] if args.cache else ["cache.features=false"]
        base = [f"paths.data_dir={data_dir}", "logger=none", *cache, *args.overrides]
        if args.cache:  # fill it: the first epoch of a run, or an earlier run of the sweep
            measure([*base, "data.num_workers=0"], args.batches)
        for w in args.workers:
            fetch, step, enc = measure([*base, f"data.num_workers={w}"], args.batches)
            rows.append((w, fetch, step, enc))
            print(f"  {w} workers: wait {1000 * fetch:.1f} ms, step {1000 * step:.1f} ms", flush=True)
    print(f"\n{'workers':>7} {'wait ms':>8} {'step ms':>8} {'wait / step':>11} {'encoder ms':>10}")
    for w, fetch, step, enc in rows:
        print(f"{w:>7} {1000 * fetch:>8.1f} {1000 * step:>8.1f} {100 * fetch / step:>10.1f}% {1000 * enc:>10.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
