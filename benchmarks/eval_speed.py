"""Evaluation benchmark: eval items per second, scored as a run scores them, several ways.

    python -m benchmarks.eval_speed [--workers 1] [--data-dir DIR] [overrides, e.g. encoder=dinov2]

Builds the default tiny model (or the one the overrides name) as a run does and scores the
synthetic benchmark's eval split through the real test loader and
`VideoLMM.option_scores`, which reads every option letter's score from one forward pass
of the item's prompt (the hook below counts the LLM's passes). In one process, side by side:

- `batched encoder, no cache`: the encoder takes all media of a batch at once (the code
  before the feature cache: its features then depend, in the last bits, on the batch);
- `per item, no cache`: what a run does now with `cache.features=false`;
- `cache, cold`: an empty cache (every item a miss: encoded and stored);
- `cache, warm`: the same items again (every item a hit: no decoding, no encoder);
- `one pass per option`: the prompt's forward pass repeated for each of the K options,
  what scoring each option on its own would cost (for scale).

Prints items per second and whether each way chose the same answers as `per item, no cache`.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from benchmarks.sweeps import ROOT


def batched_clip_tokens(self: Any, media: list[torch.Tensor], cache: Any = None) -> list[torch.Tensor]:
    """VideoLMM.clip_tokens as it was before the cache: one encoder call per frame size."""
    from src.models.videolmm import by_shape

    dtype = next(self.connector.parameters()).dtype
    tokens = by_shape(lambda x: self.connector(self.encoder.encode(x).to(dtype)), media)
    return [t.flatten(0, 1) for t in tokens]


def score(parts: Any, passes_per_item: int = 1) -> tuple[float, list[int], int]:
    """(seconds, chosen option per item, LLM forward passes) over the eval split."""
    model, ids = parts.model, torch.tensor(parts.option_token_ids)
    calls = [0]
    hook = model.llm.get_decoder().register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    chosen: list[int] = []
    start = time.perf_counter()
    try:
        with torch.no_grad():
            for batch in parts.datamodule.test_dataloader()[0]:
                for _ in range(passes_per_item):
                    scores = model.option_scores(batch, ids)
                chosen += scores.argmax(-1).tolist()
    finally:
        hook.remove()
    return time.perf_counter() - start, chosen, calls[0]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.eval_speed", description=__doc__.split("\n")[0])
    p.add_argument("--workers", type=int, default=1, help="test loader workers (the demo's: 1)")
    p.add_argument("--data-dir", type=Path, help="APOLLO_DATA_DIR (default: ./data)")
    p.add_argument("overrides", nargs="*", help="config overrides (e.g. encoder=dinov2)")
    args = p.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import lightning as L
    from hydra import compose, initialize_config_dir

    from src.models.videolmm import VideoLMM
    from src.run.build import build_parts

    data_dir = (args.data_dir or ROOT / "data").resolve()
    with tempfile.TemporaryDirectory() as cache_dir:
        ways: dict[str, tuple[list[str], Any]] = {
            "batched encoder, no cache": (["cache.features=false"], batched_clip_tokens),
            "per item, no cache": (["cache.features=false"], None),
            "cache, cold": ([f"cache.dir={cache_dir}"], None),
            "cache, warm": ([f"cache.dir={cache_dir}"], None),
        }
        print(
            f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}; torch threads {torch.get_num_threads()}", flush=True
        )
        results = {}
        for way, (extra, clip_tokens) in [*ways.items(), ("one pass per option", (["cache.features=false"], None))]:
            with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
                cfg = compose(
                    "train",
                    overrides=[
                        f"paths.data_dir={data_dir}",
                        *extra,
                        f"data.num_workers={args.workers}",
                        *args.overrides,
                    ],
                )
            L.seed_everything(cfg.seed, verbose=False)
            parts = build_parts(cfg)
            parts.model.eval()
            k = len(parts.option_token_ids) if way == "one pass per option" else 1
            original = VideoLMM.clip_tokens
            if clip_tokens is not None:
                VideoLMM.clip_tokens = clip_tokens  # type: ignore[method-assign]
            try:
                results[way] = score(parts, k)
            finally:
                VideoLMM.clip_tokens = original  # type: ignore[method-assign]
            print(f"  {way}: {results[way][0]:.2f} s", flush=True)
    reference = results["per item, no cache"][1]
    print(f"\n{'way':<28} {'items':>5} {'seconds':>8} {'items/s':>8} {'LLM passes':>10}  answers vs per item")
    for way, (seconds, chosen, passes) in results.items():
        differ = sum(a != b for a, b in zip(chosen, reference))
        print(
            f"{way:<28} {len(chosen):>5} {seconds:>8.2f} {len(chosen) / seconds:>8.1f} {passes:>10}  "
            f"{'same' if differ == 0 else f'{differ} differ'}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
