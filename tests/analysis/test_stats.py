"""Intervals and tests of analysis.intervals, analysis.stats and analysis.variants, on hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from analysis import intervals as iv
from analysis import stats
from analysis.variants import average_seeds, score_se


def test_wilson_known_values() -> None:
    # 50/100: centre 0.5, half-width 1.96/(1 + 1.96²/100) · sqrt(.25/100 + 1.96²/40000) = 0.09617
    assert iv.wilson(50, 100) == (pytest.approx(0.40383, abs=1e-5), pytest.approx(0.59617, abs=1e-5))
    # 0/10: (0, z²/(n + z²)) = (0, 3.8415/13.8415)
    lo, hi = iv.wilson(0, 10)
    assert lo == 0.0 and hi == pytest.approx(3.841459 / 13.841459, abs=1e-6)
    assert all(math.isnan(v) for v in iv.wilson(0, 0))


def test_clopper_pearson_known_values() -> None:
    # k = 0: upper = 1 - (α/2)^(1/n); k = n: lower = (α/2)^(1/n)
    assert iv.clopper_pearson(0, 10) == (0.0, pytest.approx(1 - 0.025 ** (1 / 10)))
    assert iv.clopper_pearson(10, 10) == (pytest.approx(0.025 ** (1 / 10)), 1.0)
    # 5/10: the tabulated exact interval (0.1871, 0.8129)
    lo, hi = iv.clopper_pearson(5, 10)
    assert (round(lo, 4), round(hi, 4)) == (0.1871, 0.8129)


def test_mcnemar_exact_and_mid_p_by_hand() -> None:
    # b=1, c=7: X ~ Bin(8, 1/2); P(X <= 1) = 9/256, P(X = 1) = 8/256
    assert iv.mcnemar(1, 7) == (pytest.approx(18 / 256), pytest.approx(10 / 256))
    assert iv.mcnemar(7, 1) == iv.mcnemar(1, 7)
    # b=0, c=5: exact 2/32, mid-p 1/32
    assert iv.mcnemar(0, 5) == (pytest.approx(2 / 32), pytest.approx(1 / 32))
    assert iv.mcnemar(3, 3) == (1.0, 1.0) and iv.mcnemar(0, 0) == (1.0, 1.0)


def test_paired_difference_by_hand() -> None:
    a = np.array([1, 1, 0, 0, 1])
    b = np.array([0, 1, 0, 1, 0])
    p = iv.paired_difference(a, b, n_boot=500)
    # d = (1, 0, 0, -1, 1): mean 0.2; population variance 2.8/5 = 0.56; se = sqrt(0.56/5)
    assert p.diff == pytest.approx(0.2) and p.se == pytest.approx(math.sqrt(0.112))
    assert (p.b, p.c, p.n_items) == (2, 1, 5)
    # McNemar on b=2, c=1: 2·P(X<=1 | n=3) = 1, mid-p 1 - 3/8
    assert (p.p_exact, p.p_mid) == (pytest.approx(1.0), pytest.approx(0.625))
    assert p.lo <= p.diff <= p.hi and p.within_noise


def test_paired_difference_is_the_mean_of_category_means() -> None:
    # category x: both items a right, b wrong (d = 1); category y: six ties (d = 0)
    a = np.array([1, 1, 0, 0, 0, 0, 0, 0])
    b = np.array([0, 0, 0, 0, 0, 0, 0, 0])
    groups = np.array(["x", "x", "y", "y", "y", "y", "y", "y"])
    p = iv.paired_difference(a, b, groups, n_boot=200)
    assert p.diff == pytest.approx(0.5)  # (1 + 0) / 2, not the pooled 2/8
    assert p.se == 0.0 and (p.lo, p.hi) == (pytest.approx(0.5), pytest.approx(0.5)) and not p.within_noise


def test_stratified_bootstrap_matches_its_closed_form() -> None:
    rng = np.random.default_rng(1)
    groups = [rng.integers(0, 2, 120).astype(float), rng.integers(0, 2, 60).astype(float)]
    lo, hi, draws = iv.stratified_bootstrap(groups, n_boot=20000, seed=0)
    se = iv.macro_se(groups)
    # macro_se: sqrt(p1(1-p1)/120 + p2(1-p2)/60) / 2
    p1, p2 = groups[0].mean(), groups[1].mean()
    assert se == pytest.approx(math.sqrt(p1 * (1 - p1) / 120 + p2 * (1 - p2) / 60) / 2)
    assert draws.std() == pytest.approx(se, rel=0.03)
    mean = (p1 + p2) / 2
    assert (lo, hi) == (pytest.approx(mean - 1.96 * se, abs=0.01), pytest.approx(mean + 1.96 * se, abs=0.01))


def test_seed_spread_widens_the_paired_interval() -> None:
    a, b = np.ones(100), np.zeros(100)
    a[:40] = 0
    narrow = iv.paired_difference(a, b, n_boot=500)
    wide = iv.paired_difference(a, b, n_boot=500, extra_se=0.1)
    assert wide.diff == narrow.diff == pytest.approx(0.6)
    # half-widths add in quadrature with 1.96 · 0.1
    assert wide.hi - wide.diff == pytest.approx(math.hypot(narrow.hi - narrow.diff, 0.1959964), abs=1e-6)


def test_accuracy_intervals_per_category_and_overall() -> None:
    rows = [{"benchmark": "b", "category": "x", "correct": int(i < 50)} for i in range(100)]
    rows += [{"benchmark": "b", "category": "y", "correct": int(i < 3), "modality": "frame"} for i in range(10)]
    out = iv.accuracy_intervals(rows)
    assert out["test/b/x"] == pytest.approx(list(iv.wilson(50, 100)))
    assert out["test/b/overall"] == out["test/b/x"]  # one category: its Wilson interval
    assert out["test_frame/b/y"] == pytest.approx(list(iv.wilson(3, 10)))
    rows += [{"benchmark": "b", "category": "z", "correct": 1} for _ in range(20)]
    lo, hi = iv.accuracy_intervals(rows)["test/b/overall"]
    assert lo < (0.5 + 1.0) / 2 < hi  # the mean of the categories, not of the items


def test_overall_of_all_wrong_items_is_not_certain() -> None:
    # 12 items in 3 categories, all wrong: the bootstrap alone gives [0, 0]
    rows = [{"benchmark": "b", "category": c, "correct": 0} for c in "xyz" for _ in range(4)]
    groups = [np.zeros(4)] * 3
    assert iv.stratified_bootstrap(groups)[:2] == (0.0, 0.0)
    # Agresti-Coull: p~ = 1.92/7.84 = 0.245, var = p~(1-p~)/7.84 = 0.0236 per category; se = sqrt(3·0.0236)/3
    z2 = 1.959964**2
    p = (z2 / 2) / (4 + z2)
    se = math.sqrt(3 * p * (1 - p) / (4 + z2)) / 3
    assert iv.accuracy_intervals(rows)["test/b/overall"] == [0.0, pytest.approx(1.959964 * se)]


def test_noise_alone_r2_matches_its_beta_law() -> None:
    # with no true difference, R² of n independent normal pairs ~ Beta(1/2, (n-2)/2)
    x, y = np.array([0.4, 0.5, 0.6, 0.45, 0.55]), np.array([0.3, 0.5, 0.7, 0.4, 0.6])
    se = np.full(5, 0.05)
    p = stats.noise_only_p(x, y, se, se, observed=0.5, n_draw=4000, seed=0)
    assert p == pytest.approx(float(sps.beta.sf(0.5, 0.5, 1.5)), abs=0.03)
    assert math.isnan(stats.noise_only_p(x, y, None, None, observed=0.5))


def test_noisy_interval_holds_the_estimate_and_widens_with_noise() -> None:
    x = np.array([0.30, 0.35, 0.40, 0.45, 0.50, 0.55])
    y = 2 * x + np.array([0.01, -0.01, 0.0, 0.01, -0.01, 0.0])
    r2 = stats.r2(x, y)
    quiet = stats.noisy_interval(x, y, np.full(6, 1e-4), np.full(6, 1e-4), n_boot=300, seed=0)
    loud = stats.noisy_interval(x, y, np.full(6, 0.08), np.full(6, 0.08), n_boot=300, seed=0)
    assert quiet[0] <= r2 <= quiet[1] and loud[0] < quiet[0]
    assert stats.noise_only_p(x, y, np.full(6, 1e-4), np.full(6, 1e-4), r2, n_draw=300) < 0.01


def test_same_best_rate() -> None:
    far = stats.same_best_rate(np.array([0.2, 0.8]), np.array([0.3, 0.9]), np.full(2, 1e-3), np.full(2, 1e-3))
    assert far == 1.0
    # two equal variants under independent noise: the sizes agree half the time
    tie = stats.same_best_rate(np.array([0.5, 0.5]), np.array([0.5, 0.5]), np.ones(2), np.ones(2), n_draw=4000)
    assert tie == pytest.approx(0.5, abs=0.03)


def _runs(scores: list[float], half_width: float) -> pd.DataFrame:
    m = "test/b/overall"
    return pd.DataFrame(
        {
            "run_dir": [f"/r/{i}" for i in range(len(scores))],
            "status": "ok",
            "encoder": "siglip",
            "llm": "qwen0.5b",
            "llm_size_b": 0.5,
            "seed": list(range(len(scores))),
            m: scores,
            iv.LO + m: [s - half_width for s in scores],
            iv.HI + m: [s + half_width for s in scores],
        }
    )


def test_seeds_are_averaged_with_their_spread_and_item_noise() -> None:
    m = "test/b/overall"
    frame = _runs([0.4, 0.5], half_width=1.959964 * 0.05)  # each run's item se is 0.05
    designs = average_seeds(frame)
    assert designs is not None
    [row] = designs.to_dict("records")
    assert (row["n_seeds"], row["seeds"], row[m]) == (2, "0,1", pytest.approx(0.45))
    assert row["sd/" + m] == pytest.approx(math.sqrt(0.005))
    # se² = item se² (not shrunk: the seeds answer the same items) + sd²/k = 0.0025 + 0.0025
    assert row[iv.HI + m] - row[m] == pytest.approx(1.959964 * math.sqrt(0.005))
    se = score_se(frame, m, "llm_size_b", ["encoder"])
    assert se.iloc[0, 0] == pytest.approx(math.sqrt(0.005))
    assert average_seeds(frame.iloc[:1]) is None  # no design with two seeds


def test_a_design_run_once_is_as_noisy_as_one_seed() -> None:
    m = "test/b/overall"
    two = _runs([0.4, 0.5], half_width=0.0)  # no item noise: only the seeds' spread
    one = _runs([0.3], half_width=0.0).assign(encoder="dinov2", run_dir="/r/x")
    se = score_se(pd.concat([two, one]), m, "llm_size_b", ["encoder"])
    # pooled seed variance 0.005: siglip (2 runs) 0.005/2, dinov2 (1 run) 0.005/1
    assert se.loc["encoder=siglip", 0.5] == pytest.approx(math.sqrt(0.0025))
    assert se.loc["encoder=dinov2", 0.5] == pytest.approx(math.sqrt(0.005))
