"""How sure is an accuracy, and is one run better than another? Intervals and paired tests.

Pure functions over per-item correctness (arrays, or the rows of `items.csv`); nothing
here reads files or draws.

- One proportion: `wilson` (score interval) and `clopper_pearson` (exact binomial).
- A benchmark's `overall` is the mean of its categories' accuracies (src.models.module),
  so its interval is a bootstrap stratified by category (`stratified_bootstrap`), whose
  standard error has the closed form `macro_se`: sqrt(sum_c p_c(1-p_c)/n_c) / C; widened
  where needed to the Agresti-Coull normal interval (`macro_interval`), so that categories
  all right or all wrong do not give an interval of width 0.
- Two runs on the same items: `paired_difference` (the difference of their scores, a
  paired bootstrap interval over items stratified as the score is, and McNemar's exact and
  mid-p tests on the items one got right and the other wrong).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats as sps

LEVEL = 0.95
N_BOOT = 2000
# items.csv modality -> the metric prefix it is scored under (as src.models.module does)
PREFIX = {"video": "test", "frame": "test_frame", "text": "test_text"}
LO, HI = "ci_lo/", "ci_hi/"  # column prefixes of a metric's interval in the results table


def z_value(level: float = LEVEL) -> float:
    """The standard normal quantile of a two-sided `level` interval (1.96 at 0.95)."""
    return float(sps.norm.ppf(0.5 + level / 2))


def wilson(k: int, n: int, level: float = LEVEL) -> tuple[float, float]:
    """Wilson score interval of k successes in n trials; (NaN, NaN) for n = 0."""
    if n <= 0:
        return math.nan, math.nan
    z = z_value(level)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def clopper_pearson(k: int, n: int, level: float = LEVEL) -> tuple[float, float]:
    """Exact (Clopper-Pearson) binomial interval of k successes in n trials."""
    if n <= 0:
        return math.nan, math.nan
    alpha = 1 - level
    lo = 0.0 if k == 0 else float(sps.beta.ppf(alpha / 2, k, n - k + 1))
    hi = 1.0 if k == n else float(sps.beta.ppf(1 - alpha / 2, k + 1, n - k))
    return lo, hi


def macro_se(groups: Sequence[np.ndarray]) -> float:
    """Standard error of the mean over groups of each group's mean (items resampled within groups).

    sqrt(sum_g var_g / n_g) / G with var_g the population variance of group g: the exact
    standard deviation of the stratified bootstrap's statistic.
    """
    groups = [np.asarray(g, dtype=float) for g in groups if len(g)]
    if not groups:
        return math.nan
    return math.sqrt(sum(float(g.var()) / g.size for g in groups)) / len(groups)


def stratified_bootstrap(
    groups: Sequence[np.ndarray], n_boot: int = N_BOOT, seed: int | None = 0, level: float = LEVEL
) -> tuple[float, float, np.ndarray]:
    """Percentile interval of the mean of group means, resampling items within each group.

    Returns (lo, hi, draws). The same seed gives the same interval.
    """
    groups = [np.asarray(g, dtype=float) for g in groups if len(g)]
    if not groups or n_boot <= 0:
        return math.nan, math.nan, np.array([])
    rng = np.random.default_rng(seed)
    draws = np.zeros(n_boot)
    for g in groups:
        draws += g[rng.integers(0, g.size, size=(n_boot, g.size))].mean(axis=1)
    draws /= len(groups)
    tail = 100 * (1 - level) / 2
    lo, hi = np.percentile(draws, [tail, 100 - tail])
    return float(lo), float(hi), draws


def agresti_coull_se(groups: Sequence[np.ndarray], level: float = LEVEL) -> float:
    """Standard error of the mean of group accuracies with each p_g as Agresti-Coull's.

    p~ = (k + z²/2) / (n + z²), var = p~(1-p~) / (n + z²): unlike the plain binomial one,
    not 0 for a group all right or all wrong.
    """
    groups = [np.asarray(g, dtype=float) for g in groups if len(g)]
    if not groups:
        return math.nan
    z2 = z_value(level) ** 2
    var = 0.0
    for g in groups:
        p = (g.sum() + z2 / 2) / (g.size + z2)
        var += p * (1 - p) / (g.size + z2)
    return math.sqrt(var) / len(groups)


def macro_interval(groups: Sequence[np.ndarray], level: float = LEVEL, seed: int | None = 0) -> tuple[float, float]:
    """Interval of the mean of group accuracies: the stratified bootstrap's, never narrower than
    the normal interval with Agresti-Coull variances (so that 12 items all wrong are not
    an interval of width 0), within [0, 1]."""
    lo, hi, _ = stratified_bootstrap(groups, seed=seed, level=level)
    mean = float(np.mean([np.mean(g) for g in groups]))
    half = z_value(level) * agresti_coull_se(groups, level)
    return max(0.0, min(lo, mean - half)), min(1.0, max(hi, mean + half))


def accuracy_intervals(rows: Iterable[Mapping[str, Any]], level: float = LEVEL) -> dict[str, list[float]]:
    """`{metric: [lo, hi]}` for every metric that `accuracy_metrics` makes of the same rows.

    A category's interval is Wilson's; `overall` (the mean of the categories) is
    `macro_interval`'s, or Wilson's when there is one category. Rows are dicts with
    benchmark, category, correct and optionally modality (items.csv, or a module's results).
    """
    by_cat: dict[tuple[str, str], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        prefix = PREFIX.get(str(r.get("modality") or "video"), "test")
        by_cat[prefix, str(r.get("benchmark") or "")][str(r["category"])].append(float(r["correct"]))
    out: dict[str, list[float]] = {}
    for (prefix, bench), cats in by_cat.items():
        for cat, values in sorted(cats.items()):
            out[f"{prefix}/{bench}/{cat}"] = list(wilson(int(sum(values)), len(values), level))
        groups = [np.array(v) for _, v in sorted(cats.items())]
        if len(groups) == 1:
            out[f"{prefix}/{bench}/overall"] = out[f"{prefix}/{bench}/{next(iter(cats))}"]
        else:
            out[f"{prefix}/{bench}/overall"] = list(macro_interval(groups, level))
    return out


def mcnemar(b: int, c: int) -> tuple[float, float]:
    """McNemar's exact two-sided p and its mid-p, from b and c, the two kinds of discordant items.

    Exact: 2·P(X <= min(b, c)) with X ~ Binomial(b + c, 1/2), capped at 1; mid-p subtracts
    P(X = min(b, c)) from it (Fagerland et al. 2013). No discordant item gives (1, 1).
    """
    n, k = b + c, min(b, c)
    if n == 0:
        return 1.0, 1.0
    exact = min(1.0, 2 * float(sps.binom.cdf(k, n, 0.5)))
    mid = min(1.0, 2 * float(sps.binom.cdf(k, n, 0.5)) - float(sps.binom.pmf(k, n, 0.5)))
    return exact, mid


@dataclass(frozen=True)
class Paired:
    """Score of a minus score of b on the same items, with its interval and tests."""

    diff: float
    lo: float
    hi: float
    se: float  # closed-form standard error over items (macro_se of the paired differences)
    n_items: int
    b: int | None = None  # items a got right and b wrong (None when the scores are not 0/1)
    c: int | None = None  # items b got right and a wrong
    p_exact: float | None = None  # McNemar
    p_mid: float | None = None

    @property
    def within_noise(self) -> bool:
        """True when the interval holds 0 (or there is none)."""
        return not (self.lo > 0 or self.hi < 0)


def paired_difference(
    a: np.ndarray,
    b: np.ndarray,
    groups: np.ndarray | None = None,
    n_boot: int = N_BOOT,
    seed: int | None = 0,
    level: float = LEVEL,
    extra_se: float = 0.0,
) -> Paired:
    """mean_g(mean(a - b) over the items of group g): the difference of two macro-averaged scores.

    `a` and `b` hold each item's correctness in two runs (0/1, or a mean over seeds), in the
    same item order; `groups` each item's category (None: one group). The interval is the
    paired bootstrap over items, stratified by group; `extra_se` (say, the seeds' spread)
    widens it: the half-widths add in quadrature. McNemar's tests are given for 0/1 items.
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"a and b must score the same items, got {a.size} and {b.size}")
    g = np.zeros(a.size, dtype=int) if groups is None else np.unique(np.asarray(groups), return_inverse=True)[1]
    d = a - b
    parts = [d[g == k] for k in np.unique(g)]
    diff = float(np.mean([p.mean() for p in parts])) if parts else math.nan
    se = macro_se(parts)
    lo, hi, _ = stratified_bootstrap(parts, n_boot, seed, level)
    if extra_se > 0 and math.isfinite(lo):
        z = z_value(level)
        lo = diff - math.hypot(diff - lo, z * extra_se)
        hi = diff + math.hypot(hi - diff, z * extra_se)
    binary = bool(np.isin(a, (0, 1)).all() and np.isin(b, (0, 1)).all())
    if not binary:
        return Paired(diff, lo, hi, se, int(a.size))
    n_b, n_c = int(((a == 1) & (b == 0)).sum()), int(((a == 0) & (b == 1)).sum())
    exact, mid = mcnemar(n_b, n_c)
    return Paired(diff, lo, hi, se, int(a.size), n_b, n_c, exact, mid)


def interval_text(value: float, lo: float, hi: float) -> str:
    """`0.432 [0.371, 0.494]`, or the value alone without an interval."""
    if not math.isfinite(value):
        return "-"
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return f"{value:.3f}"
    return f"{value:.3f} [{lo:.3f}, {hi:.3f}]"
