"""Held-out validation of a reduced benchmark: choose on some models, judge on the others.

The models are split into `folds` (seeded); for each fold the items are chosen, and the
IRT model fitted, on the other folds' models only; each held-out model's full score (its
mean over every item) is estimated from its scores on the chosen items alone. Per
method: the mean absolute error of that estimate, and the Kendall tau and Spearman
correlation across the held-out models between estimated and full scores, each as the
mean over folds with its standard deviation over folds.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats as sps

from analysis import irt
from analysis.subsets import RANKED, SELECTIONS, Fit, estimate, select

MIN_HELD_OUT = 3  # a rank correlation needs 3 models or more


@dataclass(frozen=True)
class Method:
    """A way to reduce a benchmark: a selection, an estimator and the ApolloBench steps on."""

    name: str
    selection: str
    estimator: str = "mean"
    balance: bool = False  # equal share per category
    audit: bool = False  # drop what the training models answer from text or one frame

    @property
    def needs_irt(self) -> bool:
        return self.estimator != "mean" or self.selection == "anchor-irt"


def model_folds(n_models: int, folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(training, held-out) model indices for each of `folds` seeded folds."""
    if n_models < 2 * folds and folds > 2:
        folds = max(2, n_models // 2)
    order = np.random.default_rng(seed).permutation(n_models)
    parts = np.array_split(order, folds)
    return [(np.sort(np.concatenate(parts[:i] + parts[i + 1 :])), np.sort(p)) for i, p in enumerate(parts)]


def _fold_metrics(est: np.ndarray, true: np.ndarray) -> dict[str, float]:
    ok = np.isfinite(est) & np.isfinite(true)
    est, true = est[ok], true[ok]
    out = {"mae": float(np.abs(est - true).mean()) if len(est) else np.nan, "tau": np.nan, "spearman": np.nan}
    if len(est) >= MIN_HELD_OUT and np.ptp(est) > 0 and np.ptp(true) > 0:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out["tau"] = float(sps.kendalltau(est, true).statistic)
            out["spearman"] = float(sps.spearmanr(est, true).statistic)
    return out


def summarise(per_fold: list[dict[str, float]]) -> dict[str, Any]:
    """Mean and standard deviation over folds of each metric (NaN folds left out)."""
    out: dict[str, Any] = {"folds": len(per_fold), "items": int(np.median([f["items"] for f in per_fold]))}
    for key in ("mae", "tau", "spearman"):
        vals = np.array([f[key] for f in per_fold], dtype=float)
        vals = vals[np.isfinite(vals)]
        out[key] = float(vals.mean()) if len(vals) else None
        out[f"{key}_sd"] = float(vals.std(ddof=1)) if len(vals) > 1 else None
    return out


def validate(
    y: np.ndarray,
    methods: Sequence[Method],
    n_items: int,
    folds: int = 5,
    seed: int = 0,
    categories: np.ndarray | None = None,
    eligible: Callable[[np.ndarray], np.ndarray] | None = None,
    irt_dim: int = 1,
    irt_iters: int = 150,
    splits: int | None = None,
) -> dict[str, dict[str, Any]]:
    """Per method name, its held-out MAE, Kendall tau and Spearman (mean and sd over folds).

    `y` is models x items (scores in [0, 1], NaN missing). `eligible(train)` gives, from
    the training models' indices, the items the audit keeps (for methods with `audit`).
    `splits`: use only the first of the folds (1: a single split, 80/20 with 5 folds).
    """
    per_fold = fold_metrics(y, methods, [n_items], folds, seed, categories, eligible, irt_dim, irt_iters, splits)
    return {name: summarise(per) for (name, _), per in per_fold.items()}


def fold_metrics(
    y: np.ndarray,
    methods: Sequence[Method],
    sizes: Sequence[int],
    folds: int = 5,
    seed: int = 0,
    categories: np.ndarray | None = None,
    eligible: Callable[[np.ndarray], np.ndarray] | None = None,
    irt_dim: int = 1,
    irt_iters: int = 150,
    splits: int | None = None,
) -> dict[tuple[str, int], list[dict[str, float]]]:
    """(method name, subset size) -> the metrics of each fold (one IRT fit per fold)."""
    results: dict[tuple[str, int], list[dict[str, float]]] = {(m.name, k): [] for m in methods for k in sizes}
    need_irt = any(m.needs_irt for m in methods)
    true_all = np.nanmean(y, axis=1)
    for f, (train, test) in enumerate(model_folds(len(y), folds, seed)[:splits]):
        fit = Fit(y[train])
        if need_irt:
            fit.theta, fit.items = irt.fit(y[train], dim=irt_dim, iters=irt_iters, seed=seed)
        if any(m.estimator == "gpirt" for m in methods) and len(train) >= 8:
            half = np.random.default_rng([seed, f]).permutation(train)
            a, b = half[: len(half) // 2], half[len(half) // 2 :]
            fit.check = (irt.fit(y[a], dim=irt_dim, iters=irt_iters, seed=seed)[1], y[b])
        keep = eligible(train) if eligible is not None else None
        for m in methods:
            for k in sizes:
                rng = np.random.default_rng([seed, f, k, SELECTIONS.index(m.selection)])
                idx, w = select(
                    m.selection,
                    fit,
                    k,
                    rng,
                    eligible=keep if m.audit else None,
                    categories=categories if m.balance else None,
                )
                est = estimate(m.estimator, fit, idx, w, y[test][:, idx], unbiased=m.selection not in RANKED)
                results[m.name, k].append(_fold_metrics(est, true_all[test]) | {"items": len(idx)})
    return results
