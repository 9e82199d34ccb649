"""Pure statistics of Scaling Consistency: R², bootstrap intervals, log fits, rank agreement.

Every function takes plain numpy arrays (one score per design variant, the same variant at
the same index of both arrays) and returns numbers; nothing here reads files or draws.
Degenerate inputs (too few variants, a constant score) give NaN, never an exception, so a
caller can report them as a note.

Scaling Consistency (Apollo, arXiv 2412.10360, Sec. 2.2) is the coefficient of determination
between the scores of the same design variants at two model sizes. For one predictor and an
intercept the R² of the least-squares line equals the squared Pearson correlation, which is
what `r2` computes.

Each variant's score is itself a measurement with noise (a few hundred items, a seed).
`noisy_interval` resamples the variants *and* draws each score from its noise (normal,
with the score's standard error), so R², Spearman and same-best carry both; `noise_only_p`
asks how often R² at least as high as the one observed comes from noise alone (every
variant equally good at both sizes, the scores differing only by their noise).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

MIN_VARIANTS = 3  # below this an R² of two points is 1 by construction and says nothing


@dataclass(frozen=True)
class RankAgreement:
    """How well the ranking of variants at one size predicts the ranking at another."""

    spearman: float
    kendall: float
    same_best: bool | None  # None when there are no variants to pick from


def _as_pair(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=float).ravel()
    y = np.asarray(y, dtype=float).ravel()
    if x.shape != y.shape:
        raise ValueError(f"x and y must have the same length, got {x.size} and {y.size}")
    return x, y


def r2_note(x: np.ndarray, y: np.ndarray) -> str | None:
    """Why `r2(x, y)` is NaN, or None when it is defined."""
    x, y = _as_pair(x, y)
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        return "non-finite scores"
    if x.size < MIN_VARIANTS:
        return f"n={x.size} < {MIN_VARIANTS} variants"
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return "zero variance in scores"
    return None


def r2(x: np.ndarray, y: np.ndarray) -> float:
    """Squared Pearson correlation of x and y (= R² of the least-squares line y ~ a·x + b).

    NaN with fewer than three pairs, a constant array, or a non-finite value.
    """
    x, y = _as_pair(x, y)
    if r2_note(x, y) is not None:
        return float("nan")
    dx, dy = x - x.mean(), y - y.mean()
    r = float(np.dot(dx, dy) / np.sqrt(np.dot(dx, dx) * np.dot(dy, dy)))
    return min(r * r, 1.0)


def percentile_interval(values: np.ndarray, n_boot: int, level: float) -> tuple[float, float]:
    """The central `level` interval of bootstrap draws; NaNs when under half of them are finite."""
    values = values[np.isfinite(values)]
    if values.size < max(1, n_boot // 2):
        return float("nan"), float("nan")
    tail = 100 * (1 - level) / 2
    lo, hi = np.percentile(values, [tail, 100 - tail])
    return float(lo), float(hi)


def bootstrap_ci(
    x: np.ndarray,
    y: np.ndarray,
    statistic: Callable[[np.ndarray, np.ndarray], float] = r2,
    n_boot: int = 1000,
    seed: int | None = 0,
    level: float = 0.95,
) -> tuple[float, float]:
    """Percentile bootstrap interval of `statistic(x, y)`, resampling variants (pairs).

    Resamples whose statistic is NaN (e.g. all draws of one variant, zero variance) are
    skipped; if fewer than half of the resamples are usable, or n < MIN_VARIANTS, the
    interval is (NaN, NaN). The same seed gives the same interval.
    """
    x, y = _as_pair(x, y)
    n = x.size
    if n < MIN_VARIANTS or n_boot <= 0 or not 0 < level < 1:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n, size=(n_boot, n))
    values = np.array([statistic(x[idx], y[idx]) for idx in draws], dtype=float)
    return percentile_interval(values, n_boot, level)


def log_fit(sizes: np.ndarray, values: np.ndarray) -> tuple[float, float]:
    """Least-squares (slope a, intercept b) of values ≈ a·ln(size) + b.

    Non-finite values and non-positive sizes are dropped; fewer than two distinct sizes
    left gives (NaN, NaN).
    """
    s, v = _as_pair(sizes, values)
    keep = np.isfinite(s) & np.isfinite(v) & (s > 0)
    s, v = s[keep], v[keep]
    if np.unique(s).size < 2:
        return float("nan"), float("nan")
    slope, intercept = np.polyfit(np.log(s), v, deg=1)
    return float(slope), float(intercept)


def best_index(scores: np.ndarray, maximize: bool = True) -> int:
    """Index of the best score (the first one on ties); -1 when there is none."""
    scores = np.asarray(scores, dtype=float)
    if scores.size == 0 or not np.any(np.isfinite(scores)):
        return -1
    return int(np.nanargmax(scores) if maximize else np.nanargmin(scores))


def same_best(x: np.ndarray, y: np.ndarray, maximize: bool = True) -> bool | None:
    """Whether the variant that x ranks best is also (one of) the best by y.

    x is the smaller model, y the larger: the question is whether the small model would
    have picked a design the large one also ranks first. Ties in y all count as best.
    """
    x, y = _as_pair(x, y)
    i = best_index(x, maximize)
    if i < 0 or not np.any(np.isfinite(y)):
        return None
    top = np.nanmax(y) if maximize else np.nanmin(y)
    return bool(y[i] == top)


def rank_agreement(x: np.ndarray, y: np.ndarray, maximize: bool = True) -> RankAgreement:
    """Spearman ρ, Kendall τ (scipy, tie-corrected) and `same_best` between x and y.

    ρ and τ are NaN with fewer than two variants or a constant array.
    """
    x, y = _as_pair(x, y)
    if x.size < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return RankAgreement(float("nan"), float("nan"), same_best(x, y, maximize))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rho = float(sps.spearmanr(x, y).statistic)
        tau = float(sps.kendalltau(x, y).statistic)
    return RankAgreement(rho, tau, same_best(x, y, maximize))


def least_squares_line(x: np.ndarray, y: np.ndarray) -> tuple[float, float] | None:
    """(slope, intercept) of y ≈ slope·x + intercept, or None when x is constant or n < 2."""
    x, y = _as_pair(x, y)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    if x.size < 2 or np.ptp(x) == 0:
        return None
    slope, intercept = np.polyfit(x, y, deg=1)
    return float(slope), float(intercept)


def _noise(se: np.ndarray | None, n: int) -> np.ndarray:
    if se is None:
        return np.zeros(n)
    se = np.asarray(se, dtype=float).ravel()
    return np.where(np.isfinite(se), se, 0.0)


def noisy_interval(
    x: np.ndarray,
    y: np.ndarray,
    se_x: np.ndarray | None,
    se_y: np.ndarray | None,
    statistic: Callable[[np.ndarray, np.ndarray], float] = r2,
    n_boot: int = 1000,
    seed: int | None = 0,
    level: float = 0.95,
) -> tuple[float, float]:
    """Percentile interval of `statistic`, resampling variants and drawing each score from its noise.

    A score with no standard error (NaN) is kept as it is. Draws whose statistic is NaN
    are skipped; fewer than half usable, or n < MIN_VARIANTS, gives (NaN, NaN).
    """
    x, y = _as_pair(x, y)
    n = x.size
    if n < MIN_VARIANTS or n_boot <= 0 or not 0 < level < 1:
        return float("nan"), float("nan")
    sx, sy = _noise(se_x, n), _noise(se_y, n)
    rng = np.random.default_rng(seed)
    values = np.empty(n_boot)
    for i in range(n_boot):
        idx = rng.integers(0, n, size=n)
        values[i] = statistic(x[idx] + rng.normal(0, sx[idx]), y[idx] + rng.normal(0, sy[idx]))
    return percentile_interval(values, n_boot, level)


def noise_only_p(
    x: np.ndarray,
    y: np.ndarray,
    se_x: np.ndarray | None,
    se_y: np.ndarray | None,
    observed: float,
    statistic: Callable[[np.ndarray, np.ndarray], float] = r2,
    n_draw: int = 1000,
    seed: int | None = 0,
) -> float:
    """P(statistic >= observed) when no variant is better than another: scores = mean + noise.

    NaN when no score has a standard error, or the observed value is NaN.
    """
    x, y = _as_pair(x, y)
    sx, sy = _noise(se_x, x.size), _noise(se_y, y.size)
    if not math.isfinite(observed) or not (sx.any() and sy.any()) or n_draw <= 0:
        return float("nan")
    rng = np.random.default_rng(seed)
    hits = total = 0
    for _ in range(n_draw):
        value = statistic(x.mean() + rng.normal(0, sx), y.mean() + rng.normal(0, sy))
        if math.isfinite(value):
            total += 1
            hits += value >= observed
    return hits / total if total else float("nan")


def same_best_rate(
    x: np.ndarray,
    y: np.ndarray,
    se_x: np.ndarray | None,
    se_y: np.ndarray | None,
    maximize: bool = True,
    n_draw: int = 1000,
    seed: int | None = 0,
) -> float:
    """The share of noise draws (each score ± its noise) in which both sizes pick the same best."""
    x, y = _as_pair(x, y)
    if x.size < 2 or n_draw <= 0:
        return float("nan")
    sx, sy = _noise(se_x, x.size), _noise(se_y, y.size)
    rng = np.random.default_rng(seed)
    same = [same_best(x + rng.normal(0, sx), y + rng.normal(0, sy), maximize) for _ in range(n_draw)]
    return float(np.mean([s is True for s in same]))


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman ρ (NaN with fewer than two variants or a constant array)."""
    return rank_agreement(x, y).spearman
