"""The order of samples: per epoch, per rank, and resumable in the middle of an epoch.

A run killed in the middle of an epoch must, when started again, see exactly the samples
it had not seen yet, in the same order, so that it ends with the same weights as a run
that was never interrupted. So the order of an epoch is a pure function of (seed, epoch)
(never of the global random state), every rank takes its own slice of it, and the
training loader says, in a checkpoint, how many of its batches were trained on; loading
that state makes the next pass start after them. Lightning saves and restores the
loader's `state_dict` with its checkpoints (a "stateful" loader) and leaves the rest to us.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch.distributed as dist
from torch.utils.data import DataLoader, Sampler


def rank_and_world() -> tuple[int, int]:
    """(this process's rank, number of processes) of the process group; (0, 1) without one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class Order(Sampler[int]):
    """Base of the training orders: `epoch_order(rng)` gives the whole epoch's indices.

    Each rank takes every world-th index of the epoch (the epoch is padded by wrapping
    around, so that every rank has as many batches: a rank that ran out would leave the
    others waiting in a collective). `resume(epoch, skip)` makes the next pass over that
    epoch start at its `skip`-th index.
    """

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self.epoch = 0
        self._skip: tuple[int, int] | None = None  # (epoch, samples of this rank to skip)

    def epoch_order(self, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError

    @property
    def epoch_size(self) -> int:
        raise NotImplementedError

    def set_epoch(self, epoch: int) -> None:
        """Lightning calls this at the start of every training epoch."""
        self.epoch = epoch

    def resume(self, epoch: int, skip: int) -> None:
        self.epoch = epoch
        self._skip = (epoch, skip)

    def __len__(self) -> int:
        return -(-self.epoch_size // rank_and_world()[1])

    def __iter__(self) -> Iterator[int]:
        rank, world = rank_and_world()
        order = self.epoch_order(np.random.default_rng((self.seed, self.epoch)))
        per_rank = -(-len(order) // world)
        order = np.resize(order, per_rank * world)[rank::world]
        skip = 0
        if self._skip is not None:
            if self._skip[0] == self.epoch:
                skip = self._skip[1]
            self._skip = None
        return iter(order[skip:].tolist())


class Shuffled(Order):
    """Every sample of `indices` once an epoch, in a new order each epoch."""

    def __init__(self, indices: np.ndarray | Sequence[int], seed: int = 0) -> None:
        super().__init__(seed)
        self.indices = np.asarray(indices, dtype=np.int64)

    @property
    def epoch_size(self) -> int:
        return len(self.indices)

    def epoch_order(self, rng: np.random.Generator) -> np.ndarray:
        return rng.permutation(self.indices)


class Shard(Sampler[int]):
    """Evaluation: rank r takes items r, r + world, ...; no padding, so nothing is scored twice."""

    def __init__(self, size: int) -> None:
        self.size = size

    def __len__(self) -> int:
        rank, world = rank_and_world()
        return len(range(rank, self.size, world))

    def __iter__(self) -> Iterator[int]:
        rank, world = rank_and_world()
        return iter(range(rank, self.size, world))


class ResumableLoader(DataLoader):
    """A training DataLoader whose state is "epoch e, b batches trained on".

    `trained` tells how many batches of the current epoch the model has trained on; it
    is asked when a checkpoint is written, not counted here, because Lightning fetches a
    batch ahead of the one it trains on.
    """

    def __init__(self, dataset: Any, *, order: Order, trained: Callable[[], int], **kwargs: Any) -> None:
        super().__init__(dataset, sampler=order, **kwargs)
        self.order = order
        self.trained = trained

    def state_dict(self) -> dict[str, int]:
        return {"epoch": int(self.order.epoch), "batches": int(self.trained())}

    def load_state_dict(self, state: dict[str, int]) -> None:
        assert self.batch_size is not None
        self.order.resume(int(state["epoch"]), int(state["batches"]) * self.batch_size)
