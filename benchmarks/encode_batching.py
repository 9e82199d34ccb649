"""What encoding each media item on its own costs, against one encoder call per batch.

    python -m benchmarks.encode_batching [--encoders siglip dinov2] [--batches 20]

A frozen encoder encodes each media item of a batch on its own (src/models/videolmm.py),
so that an item's features are the same bits in any batch and a feature-cache entry is
exactly what the encoder would give; before the cache, a batch's items of one frame size
went through the encoder together. For each encoder, on `--batches` training batches of
the synthetic benchmark, this prints the encoder's CPU milliseconds per batch both ways,
and how many items' features differ between the two in any bit (and by how much at most).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch

from benchmarks.sweeps import ROOT


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.encode_batching", description=__doc__.split("\n")[0])
    p.add_argument("--encoders", nargs="+", default=["siglip", "dinov2"])
    p.add_argument("--batches", type=int, default=20)
    p.add_argument("--threads", type=int, default=1, help="torch threads (a run's main process)")
    p.add_argument("--data-dir", type=Path, help="APOLLO_DATA_DIR (default: ./data)")
    p.add_argument("overrides", nargs="*")
    args = p.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    torch.set_num_threads(args.threads)
    import lightning as L
    from hydra import compose, initialize_config_dir

    from src.run.build import build_parts

    data_dir = (args.data_dir or ROOT / "data").resolve()
    print(f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}; torch threads {torch.get_num_threads()}")
    print(f"{'encoder':<24} {'items/batch':>11} {'batched ms':>10} {'per item ms':>11} {'differ':>7} {'max diff':>9}")
    for name in args.encoders:
        with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
            cfg = compose(
                "train",
                overrides=[
                    f"encoder={name}",
                    f"paths.data_dir={data_dir}",
                    "cache.features=false",
                    "data.num_workers=0",
                    *args.overrides,
                ],
            )
        L.seed_everything(cfg.seed, verbose=False)
        parts = build_parts(cfg)
        encoder = parts.model.encoder.eval()
        parts.datamodule.use_stage(0, "mixture")
        batches = [
            [m for ms in b.media for m in ms] for _, b in zip(range(args.batches), parts.datamodule.train_dataloader())
        ]
        items = sum(len(b) for b in batches)
        with torch.no_grad():
            start = time.process_time()
            together = []
            for media in batches:
                groups: dict[tuple[int, ...], list[int]] = {}
                for j, m in enumerate(media):
                    groups.setdefault(tuple(m.shape[1:]), []).append(j)
                out: list[torch.Tensor] = [torch.empty(0)] * len(media)
                for members in groups.values():
                    grid = encoder.encode(torch.cat([media[j] for j in members]))
                    for j, g in zip(members, grid.split([media[j].shape[0] for j in members])):
                        out[j] = g
                together += out
            batched = (time.process_time() - start) / len(batches)
            start = time.process_time()
            alone = [encoder.encode(m) for media in batches for m in media]
            per_item = (time.process_time() - start) / len(batches)
        differ = sum(not torch.equal(a, b) for a, b in zip(together, alone))
        worst = max(float((a - b).abs().max()) for a, b in zip(together, alone))
        print(
            f"{name:<24} {items / len(batches):>11.1f} {1000 * batched:>10.1f} {1000 * per_item:>11.1f} "
            f"{differ:>7} {worst:>9.2e}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
