"""The audit filters of a curation (text, one frame) and the warnings about results not to trust.

Audit rules (per item and reason, over the models that answered it from the text alone,
or from one frame):

- `chance` (default): dropped when those models are right significantly more often than
  chance, a one-sided binomial test of k right of n against 1 / options at `level`
  (default 0.05). Scores in [0, 1] count as their rounded sum. An item without a known
  number of options cannot be tested against chance: it falls back to the share rule,
  and is counted (`audit.share_rule_items`) and warned about.
- `share` (the old rule): dropped when more than `threshold` of them are right.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sps

RULES = ("chance", "share")
MIN_MODELS = 10
TIE_SHARE = 0.2  # the largest group of models with one score, as a share of the models
GAP = 0.1  # |Spearman - Pearson| beyond which the two disagree


def audit_counts(rows: pd.DataFrame, key: list[str]) -> pd.DataFrame:
    """Per item: `right` (rounded sum of scores), `answered` (cells with a score), `share`."""
    rows = rows.dropna(subset=["correct"])
    grouped = rows.groupby(key)["correct"]
    out = pd.DataFrame({"right": grouped.sum().round(), "answered": grouped.count()})
    out["share"] = grouped.mean()
    return out


def chance_pvalue(right: np.ndarray, answered: np.ndarray, options: np.ndarray) -> np.ndarray:
    """One-sided binomial p-value of `right` of `answered` or more at chance 1 / `options`."""
    p0 = 1.0 / np.asarray(options, dtype=float)
    return sps.binom.sf(np.asarray(right) - 1, np.asarray(answered), p0)


def drop_mask(counts: pd.DataFrame, options: pd.Series, rule: str, threshold: float, level: float) -> pd.DataFrame:
    """Per item of `counts`: `drop` (bool), `pvalue` (NaN where not tested) and `rule` used."""
    opts = options.reindex(counts.index)
    out = pd.DataFrame(index=counts.index)
    by_share = counts["share"] > threshold
    if rule == "share":
        out["drop"], out["pvalue"], out["rule"] = by_share, np.nan, "share"
        return out
    tested = opts.notna()
    pvalue = pd.Series(np.nan, index=counts.index)
    if tested.any():
        c = counts[tested]
        pvalue[tested] = chance_pvalue(c["right"].to_numpy(), c["answered"].to_numpy(), opts[tested].to_numpy())
    out["drop"] = np.where(tested, pvalue < level, by_share)
    out["pvalue"] = pvalue
    out["rule"] = np.where(tested, "chance", "share")
    return out


def largest_tie(scores: pd.Series) -> int:
    """The number of models in the largest group with the same score (to 1e-9)."""
    values = scores.dropna().round(9)
    return int(values.value_counts().max()) if len(values) else 0


def warnings_for(report: dict[str, Any], curated: pd.Series) -> list[str]:
    """Lines about results in `report` that cannot be trusted as they stand."""
    out = []
    n = len(report["models"])
    if n < MIN_MODELS:
        out.append(f"only {n} models (fewer than {MIN_MODELS}): correlations and held-out numbers are rough")
    tie = largest_tie(curated)
    if n and tie > max(2, TIE_SHARE * n):
        out.append(f"{tie} of {n} models have the same score on the curated set: its ranking ties them")
    ties = report["items"].get("tied_at_cut", 0)
    if ties:
        out.append(
            f"{ties} kept item(s) tie with an item left out: chosen at random (seed {report['settings']['seed']})"
        )
    for where, corr in (("in-sample", report["correlation"]["category_mean"]),):
        s, p = corr.get("spearman"), corr.get("pearson")
        if s is not None and p is not None and abs(s - p) > GAP:
            out.append(f"{where} Spearman {s:.3f} and Pearson {p:.3f} are far apart: outliers or ties drive one")
    emptied = [c for c, k in report["categories"].items() if k["full"] and not k["kept"]]
    if emptied:
        out.append(f"categories with no item kept: {', '.join(emptied)}")
    held = report.get("heldout") or {}
    base, cur = held.get("random"), held.get("curated")
    if base and cur and base.get("tau") is not None and cur.get("tau") is not None and cur["tau"] < base["tau"]:
        out.append(
            f"on held-out models the curated set ranks worse than {cur['items']} random items "
            f"(Kendall tau {cur['tau']:.3f} vs {base['tau']:.3f})"
        )
    return out
