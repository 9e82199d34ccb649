"""Choosing a subset of a benchmark's items, and estimating a model's full score from it.

Selections (each on a models x items table of scores in [0, 1], NaN for missing; each
returns item indices and weights summing to 1):

- `random`: a uniform sample, the baseline to beat.
- `entropy`: Apollo's criterion, the binary entropy of the share of models right.
- `pointbiserial`: the correlation across models of the item's score with the models'
  mean score.
- `anchor`: tinyBenchmarks' anchor points: the items clustered (k-means, k = the budget)
  by their pattern of scores across the models; from each cluster the item nearest its
  centre, weighted by the cluster's share of the items.
- `anchor-irt`: the same, clustering the items' fitted IRT parameters (discrimination,
  difficulty) instead of their raw patterns.

Ties in a ranking are broken at random (seeded), never by item id. With `categories`
and `balance`, the ranked selections keep an equal share per category (water-filling).

Estimators of a model's full score (its mean over every item) from its scores `y` on
the chosen items (after tinyBenchmarks, Maia Polo et al. 2024):

- `mean`: the weighted mean of `y` (the plain mean with equal weights).
- `irt`: the mean over all items of the 2PL probability at the ability fitted on `y`.
- `pirt`: `y` where seen, the IRT probability elsewhere, averaged over all items.
- `gpirt`: lambda * mean + (1 - lambda) * pirt, per model, with lambda = b^2 / (b^2 + v):
  v the model-based variance of the weighted mean, b^2 the mean squared error of p-IRT on
  half of the training models with the 2PL fitted on the other half (out of sample; the
  in-sample error, optimistic, where no such check was fitted). After a ranked
  selection (entropy, point-biserial) the mean is biased by design, and gp-IRT is p-IRT.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analysis import irt

SELECTIONS = ("random", "entropy", "pointbiserial", "anchor", "anchor-irt")
ESTIMATORS = ("mean", "irt", "pirt", "gpirt")
RANKED = ("entropy", "pointbiserial")


def binary_entropy(p: np.ndarray) -> np.ndarray:
    """-p log2 p - (1-p) log2 (1-p), 0 at p = 0 and p = 1."""
    p = np.asarray(p, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -(p * np.log2(p) + (1 - p) * np.log2(1 - p))
    return np.where((p <= 0) | (p >= 1), 0.0, h)


def point_biserial(correct: np.ndarray, totals: np.ndarray) -> np.ndarray:
    """Per row of `correct` (items x models, scores; NaN missing), its Pearson correlation
    with `totals` (one per model) over the models it has; 0 where nothing varies."""
    x = np.asarray(correct, dtype=float)
    t = np.broadcast_to(np.asarray(totals, dtype=float), x.shape)
    seen = np.isfinite(x)
    cnt = np.maximum(seen.sum(axis=1, keepdims=True), 1)
    xm = np.where(seen, x, 0.0).sum(axis=1, keepdims=True) / cnt
    tm = np.where(seen, t, 0.0).sum(axis=1, keepdims=True) / cnt
    dx, dt = np.where(seen, x - xm, 0.0), np.where(seen, t - tm, 0.0)
    denom = np.sqrt((dx**2).sum(axis=1) * (dt**2).sum(axis=1))
    with np.errstate(divide="ignore", invalid="ignore"):
        r = (dx * dt).sum(axis=1) / denom
    return np.where(denom > 1e-12, r, 0.0)


def item_scores(y: np.ndarray, method: str) -> np.ndarray:
    """How well each item (column of `y`, models x items) separates the models: higher is better."""
    if method == "entropy":
        return binary_entropy(np.nanmean(y, axis=0))
    if method == "pointbiserial":
        return point_biserial(y.T, np.nanmean(y, axis=1))
    raise ValueError(f"rank={method!r} is invalid; valid: {', '.join(RANKED)}")


def balanced_quotas(ranked: dict[str, list[float]], budget: int) -> dict[str, int]:
    """Items to keep per category, from each category's candidate scores (best first)."""
    quota: dict[str, int] = {}
    active = sorted(ranked)
    left = budget
    while active and left >= len(active):
        share = left // len(active)
        short = [c for c in active if len(ranked[c]) <= share]
        if not short:
            break
        for c in short:
            quota[c] = len(ranked[c])
            left -= len(ranked[c])
        active = [c for c in active if c not in short]
    if active:
        share, extra = divmod(left, len(active))
        quota.update(dict.fromkeys(active, share))
        # each active category has more than `share` candidates: its next one exists
        for c in sorted(active, key=lambda c: (-ranked[c][share], c))[:extra]:
            quota[c] += 1
    return {c: quota[c] for c in sorted(quota)}


def top(scores: np.ndarray, k: int, rng: np.random.Generator, categories: np.ndarray | None = None) -> np.ndarray:
    """Indices of the `k` best `scores` (ties at random), balanced across `categories` if given."""
    order = np.lexsort((rng.permutation(len(scores)), -scores))
    if categories is None:
        return order[:k]
    cats = categories[order]
    ranked = {str(c): scores[order][cats == c].tolist() for c in np.unique(cats)}
    quota = balanced_quotas(ranked, k)
    rank_in_cat = np.zeros(len(order), dtype=int)
    for c in ranked:
        at = cats == c
        rank_in_cat[at] = np.arange(at.sum())
    keep = rank_in_cat < np.array([quota[str(c)] for c in cats])
    return order[keep]


def kmeans(x: np.ndarray, k: int, rng: np.random.Generator, iters: int = 50) -> np.ndarray:
    """Cluster labels of the rows of `x` (k-means++ start, Lloyd's iterations)."""
    n = len(x)
    centres = [x[rng.integers(n)]]
    d2 = ((x - centres[0]) ** 2).sum(1)
    for _ in range(1, k):
        p = d2 / d2.sum() if d2.sum() > 0 else np.full(n, 1 / n)
        centres.append(x[rng.choice(n, p=p)])
        d2 = np.minimum(d2, ((x - centres[-1]) ** 2).sum(1))
    c = np.array(centres)
    labels = np.zeros(n, dtype=int)
    for it in range(iters):
        dist = (x**2).sum(1)[:, None] - 2 * x @ c.T + (c**2).sum(1)[None, :]
        new = dist.argmin(1)
        if it and (new == labels).all():
            break
        labels = new
        for j in range(k):
            members = labels == j
            if members.any():
                c[j] = x[members].mean(0)
    return labels


def anchors(x: np.ndarray, k: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(anchor rows, weights): per k-means cluster of the rows of `x`, the row nearest its
    centre, weighted by the cluster's share of the rows."""
    labels = kmeans(x, k, rng)
    idx, weights = [], []
    for j in np.unique(labels):
        members = np.flatnonzero(labels == j)
        centre = x[members].mean(0)
        idx.append(members[((x[members] - centre) ** 2).sum(1).argmin()])
        weights.append(len(members) / len(x))
    return np.array(idx), np.array(weights)


@dataclass
class Fit:
    """What a selection or an estimator learns from the training models."""

    train: np.ndarray  # models x items
    items: irt.Items | None = None
    theta: np.ndarray | None = None
    # gp-IRT's check of p-IRT's bias: item parameters fitted on part of the training
    # models, and the other part's scores (so the bias is measured out of sample)
    check: tuple[irt.Items, np.ndarray] | None = None


def select(
    method: str,
    fit: Fit,
    k: int,
    rng: np.random.Generator,
    eligible: np.ndarray | None = None,
    categories: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(item indices, weights summing to 1): `k` items of the `eligible` ones by `method`."""
    n = fit.train.shape[1]
    pool = np.flatnonzero(eligible) if eligible is not None else np.arange(n)
    k = min(k, len(pool))
    if k < 1:
        return np.array([], dtype=int), np.array([])
    if method == "random":
        chosen = rng.choice(pool, size=k, replace=False)
    elif method in RANKED:
        cats = categories[pool] if categories is not None else None
        chosen = pool[top(item_scores(fit.train[:, pool], method), k, rng, cats)]
    elif method in ("anchor", "anchor-irt"):
        if method == "anchor":
            y = fit.train[:, pool]
            x = np.where(np.isfinite(y), y, np.nanmean(y, axis=0)).T
        else:
            assert fit.items is not None, "anchor-irt needs an IRT fit"
            x = np.column_stack([fit.items.a[pool], fit.items.b[pool]])
        rows, weights = anchors(np.nan_to_num(x), k, rng)
        return pool[rows], weights
    else:
        raise ValueError(f"selection={method!r} is invalid; valid: {', '.join(SELECTIONS)}")
    return np.asarray(chosen), np.full(len(chosen), 1 / len(chosen))


def weighted_mean(y: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Per model (row), the mean of `y` weighted by `weights`, renormalised over the cells it has."""
    seen = np.isfinite(y)
    w = np.where(seen, weights, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (np.where(seen, y, 0.0) * w).sum(1) / w.sum(1)


def _pirt(y: np.ndarray, p: np.ndarray, idx: np.ndarray) -> np.ndarray:
    full = p.copy()
    seen = np.isfinite(y)
    full[:, idx] = np.where(seen, y, p[:, idx])
    return full.mean(1)


def estimate(
    method: str, fit: Fit, idx: np.ndarray, weights: np.ndarray, y: np.ndarray, unbiased: bool = True
) -> np.ndarray:
    """Each model's (row of `y`: its scores on items `idx`) estimated mean over all items.

    `unbiased`: whether the weighted mean of the chosen items estimates the full score
    without bias (random and anchor selections); gp-IRT is p-IRT where it does not."""
    if method == "mean":
        return weighted_mean(y, weights)
    if method not in ESTIMATORS:
        raise ValueError(f"estimator={method!r} is invalid; valid: {', '.join(ESTIMATORS)}")
    assert fit.items is not None, f"{method} needs an IRT fit"
    theta = irt.abilities(y, fit.items.subset(idx))
    p = irt.probabilities(theta, fit.items)
    if method == "irt":
        return p.mean(1)
    pirt = _pirt(y, p, idx)
    if method == "pirt" or not unbiased:
        return pirt
    # gp-IRT: p-IRT's squared error on training models, against each model's variance
    items, rows = fit.check if fit.check is not None else (fit.items, fit.train)
    train_y = rows[:, idx]
    train_p = irt.probabilities(irt.abilities(train_y, items.subset(idx)), items)
    bias2 = float(np.mean((_pirt(train_y, train_p, idx) - np.nanmean(rows, axis=1)) ** 2))
    ps = p[:, idx]
    var = (weights**2 * ps * (1 - ps)).sum(1)
    lam = bias2 / (bias2 + var + 1e-12)
    return lam * weighted_mean(y, weights) + (1 - lam) * pirt
