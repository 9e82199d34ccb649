"""The order of training samples: a function of (seed, epoch), split across ranks, resumable."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from src.data import order as order_mod
from src.data.mixture import MixtureSampler
from src.data.order import ResumableLoader, Shard, Shuffled


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch):
    """Pretend to be rank r of w processes."""

    def set_world(rank: int, size: int) -> None:
        monkeypatch.setattr(order_mod, "rank_and_world", lambda: (rank, size))

    return set_world


def test_an_epoch_is_a_permutation_fixed_by_seed_and_epoch() -> None:
    a, b = Shuffled(range(10), seed=1), Shuffled(range(10), seed=1)
    first = list(a)
    assert sorted(first) == list(range(10)) and first == list(b)
    torch.manual_seed(123)  # the global random state plays no part
    assert list(a) == first
    a.set_epoch(1)
    assert list(a) != first and sorted(a) == list(range(10))
    assert list(Shuffled(range(10), seed=2)) != first


def test_resume_skips_what_was_trained_on_in_that_epoch_only() -> None:
    s = Shuffled(range(12), seed=0)
    s.set_epoch(2)
    full = list(s)
    s.resume(2, 5)
    assert list(s) == full[5:]
    assert list(s) == full  # the skip holds for one pass only
    s.resume(1, 5)
    s.set_epoch(2)  # an older epoch's place does not apply to this one
    assert list(s) == full


def test_ranks_take_disjoint_slices_of_equal_length(world) -> None:
    per_rank = []
    for r in range(3):
        world(r, 3)
        s = Shuffled(range(10), seed=4)
        per_rank.append(list(s))
        assert len(s) == 4
    world(0, 1)
    full = list(Shuffled(range(10), seed=4))
    assert all(len(p) == 4 for p in per_rank)  # 10 padded to 12 by wrapping around
    assert sorted(i for p in per_rank for i in p) == sorted(full + full[:2])
    assert per_rank[1] == np.resize(full, 12)[1::3].tolist()


def test_shard_splits_eval_items_without_repeats(world) -> None:
    got = []
    for r in range(2):
        world(r, 2)
        got += list(Shard(7))
        assert len(Shard(7)) == (4 if r == 0 else 3)
    assert sorted(got) == list(range(7))


def test_mixture_is_an_order_too() -> None:
    m = MixtureSampler(["video"] * 6 + ["text"] * 2, {"video": 0.5, "text": 0.5}, seed=3)
    full = list(m)
    m.resume(0, 3)
    assert list(m) == full[3:]


def test_loader_state_is_the_epoch_and_the_batches_trained_on() -> None:
    trained = {"n": 0}
    data = list(range(20))
    loader = ResumableLoader(data, batch_size=4, order=Shuffled(range(20), seed=0), trained=lambda: trained["n"])
    batches = [b.tolist() for b in loader]
    trained["n"] = 2
    assert loader.state_dict() == {"epoch": 0, "batches": 2}
    again = ResumableLoader(data, batch_size=4, order=Shuffled(range(20), seed=0), trained=lambda: 0)
    again.load_state_dict({"epoch": 0, "batches": 2})
    assert [b.tolist() for b in again] == batches[2:]
