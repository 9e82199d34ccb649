"""Data mixtures: the paper's 13 are options, and every epoch meets its shares within 1%."""

from __future__ import annotations

import csv
from collections import Counter

import pytest
from omegaconf import OmegaConf

from src.config.errors import ConfigError
from src.config.validate import validate
from src.data.errors import DataError
from src.data.manifest import MODALITIES
from src.data.mixture import MixtureSampler, epoch_counts
from tests.helpers import ROOT, cfg_with

TABLE13 = ROOT / "analysis" / "reference" / "apollo_2412.10360" / "table13_data_composition.csv"
PAPER = list(csv.DictReader(TABLE13.open()))
COLUMNS = {"text": "text_pct", "image": "image_pct", "multi_image": "multi_image_pct", "video": "video_pct"}
# a training set shaped like the synthetic one: many videos, fewer of the rest
POOL = ["video"] * 1200 + ["image"] * 200 + ["multi_image"] * 200 + ["text"] * 150


@pytest.mark.parametrize("row", PAPER, ids=lambda r: f"paper{int(r['row']):02d}")
def test_each_paper_mixture_is_an_option_with_its_shares(row: dict) -> None:
    cfg = OmegaConf.load(ROOT / "conf" / "mixture" / f"paper{int(row['row']):02d}.yaml")
    for m, col in COLUMNS.items():
        assert cfg.shares[m] == pytest.approx(float(row[col]) / 100)


@pytest.mark.parametrize("row", PAPER, ids=lambda r: f"paper{int(r['row']):02d}")
def test_an_epoch_meets_the_shares_within_one_percent(row: dict) -> None:
    shares = {m: float(row[c]) / 100 for m, c in COLUMNS.items()}
    sampler = MixtureSampler(POOL, shares, seed=3)
    for epoch in range(2):
        sampler.set_epoch(epoch)
        drawn = Counter(POOL[i] for i in sampler)
        assert sum(drawn.values()) == len(sampler) == len(POOL)
        for m in MODALITIES:
            assert abs(drawn[m] / len(POOL) - shares[m]) <= 0.01, (m, drawn)


def test_epochs_differ_repeat_no_sample_twice_before_all_once_and_are_reproducible() -> None:
    shares = {"text": 0.5, "image": 0.0, "multi_image": 0.0, "video": 0.5}
    pool = ["text"] * 3 + ["video"] * 100
    sampler = MixtureSampler(pool, shares, epoch_size=20, seed=0)
    first = list(sampler)
    text = Counter(i for i in first if pool[i] == "text")
    assert sorted(text.values()) == [3, 3, 4]  # 10 text samples from 3: each 3 or 4 times
    assert first == list(sampler)  # the same epoch, the same draw
    sampler.set_epoch(1)
    assert list(sampler) != first
    assert all(pool[i] != "image" for i in first)


def test_largest_remainder_counts_add_up() -> None:
    counts = epoch_counts({"text": 0.07, "image": 0.387, "multi_image": 0.2, "video": 0.343}, 101)
    assert sum(counts.values()) == 101
    assert counts == {"text": 7, "image": 39, "multi_image": 20, "video": 35}


def test_equal_remainders_tie_in_modality_order_despite_float_error() -> None:
    # 0.15 * 36 is 5.3999... in floating point and 0.4 * 36 is 14.4: both remainders are 0.4
    counts = epoch_counts({"text": 0.15, "image": 0.25, "multi_image": 0.2, "video": 0.4}, 36)
    assert counts == {"text": 6, "image": 9, "multi_image": 7, "video": 14}


def test_a_mixture_the_data_cannot_meet_is_a_clear_error() -> None:
    with pytest.raises(
        DataError,
        match=r"mixture=paper01 asks for 25% text samples, but the "
        r"training data has none",
    ):
        MixtureSampler(
            ["video"] * 10 + ["image"] * 10 + ["multi_image"] * 5,
            dict.fromkeys(MODALITIES, 0.25),
            name="mixture=paper01",
        )


@pytest.mark.parametrize(
    "override, needle",
    [
        ("mixture.shares.text=0.5", "sum to 1.3500"),
        ("mixture.shares.video=-0.1", "shares >= 0"),
        ("+mixture.shares.audio=0.0", "unknown modality ['audio']"),
        ("mixture.epoch_size=0", "mixture.epoch_size=0 is invalid"),
    ],
)
def test_bad_shares_are_config_errors(override: str, needle: str) -> None:
    with pytest.raises(ConfigError) as e:
        validate(cfg_with("mixture=paper02", override))
    assert needle in str(e.value)


def test_natural_is_the_default() -> None:
    cfg = cfg_with()
    assert cfg.mixture.name == "natural" and cfg.mixture.shares is None
