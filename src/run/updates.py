"""How much of each trained part moved in a stage: the precision policy, checked in every run.

Weights that cannot hold an optimizer step (bf16 at the paper's rates) train nothing while
the loss still falls, through the parts that do move. So every stage samples up to `sample`
elements of each weight it trains at its start and counts, at its end, the share that
changed: per part, the mean over its weights (each weight counts once, so that one large
embedding table, most of whose rows a short run never sees, does not hide the rest). The
record's `updates` holds it per stage; a part below `warn_below` is logged as a warning.
"""

from __future__ import annotations

import logging
from typing import Any

import lightning as L
import torch

log = logging.getLogger(__name__)


def _local(p: torch.Tensor) -> torch.Tensor:
    """This rank's elements of a weight (its shard under trainer=fsdp)."""
    from torch.distributed.tensor import DTensor

    return p.to_local() if isinstance(p, DTensor) else p


class UpdateCheck(L.Callback):
    def __init__(self, sample: int = 4096, warn_below: float = 0.5, seed: int = 0) -> None:
        self.sample = sample
        self.warn_below = warn_below
        self.seed = seed
        self._before: dict[str, list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]] = {}

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        g = torch.Generator().manual_seed(self.seed)
        self._before = {}
        module: Any = pl_module  # a VideoLMMModule: the parts of the schedule
        for name, part in module.parts().items():
            for p in part.parameters():
                flat = _local(p).detach().reshape(-1)
                if not p.requires_grad or flat.numel() == 0:
                    continue
                idx = torch.randint(0, flat.numel(), (min(self.sample, flat.numel()),), generator=g)
                idx = idx.to(flat.device)
                self._before.setdefault(name, []).append((p, idx, flat[idx].clone()))

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        shares: dict[str, float] = {}
        for name, weights in self._before.items():
            moved = [
                float((_local(p).detach().reshape(-1)[idx] != before).float().mean()) for p, idx, before in weights
            ]
            shares[name] = round(sum(moved) / len(moved), 4)
            if trainer.global_step > 0 and shares[name] < self.warn_below:
                log.warning(
                    "only %.0f%% of the %s's sampled weights changed in this stage (%d steps): weights that "
                    "train in half precision lose their updates (src/models/precision.py)",
                    100 * shares[name],
                    name,
                    trainer.global_step,
                )
        module: Any = pl_module  # a VideoLMMModule: its stage, and the updates it saves
        module.updates[module.stage["name"]] = shares
        self._before = {}
