"""Design variants of a results table: which rows are one design, and their mean scores.

A *variant* is the set of runs that agree on every variant column (by default every
config-group choice except the LLM). Runs of one variant at one size are replicates
(seeds) and are averaged. A design number that differs between the runs of one such
cell (say `design.fps`, changed by an override such as `sampler.fps=1` rather than by a
group choice) marks different designs hiding behind the same choices:
`hidden_design_columns` finds them so that they can be separated rather than averaged.
Pure functions over pandas tables; nothing here reads files or draws.

The noise of a cell's mean score (`score_se`) adds two parts in quadrature: the item noise
of one run (from its 95% interval, `ci_lo/`/`ci_hi/` columns: half-width / 1.96, averaged
over the cell's runs and not shrunk by their number, since the seeds answer the same
items) and the seeds' spread (the variance between the runs of a cell, pooled over the
cells with two or more, divided by the cell's k runs).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from analysis.intervals import HI, LO, z_value

# Columns that never distinguish designs: bookkeeping, the LLM (the size axis), and the
# seed (replicates of one design are averaged).
NOT_CHOICES = {"run_dir", "status", "reason", "sweep", "moved_from", "llm", "llm_size_b", "seed", "n_seeds", "seeds"}
# design numbers that follow from the LLM or count what a run saw, not design choices
NOT_DESIGN = ("design.params.", "design.llm", "design.encoder", "design.training_samples")


def choice_columns(frame: pd.DataFrame, size_col: str, metric: str | None = None) -> list[str]:
    """The plain-named columns that are design choices, minus the LLM, its size and the seed.

    Names with '.' (design numbers, costs) or '/' (metrics) are not choices.
    """
    skip = NOT_CHOICES | {size_col, metric}
    return [c for c in frame.columns if c not in skip and "." not in c and "/" not in c]


def _keys(frame: pd.DataFrame, cols: list[str]) -> pd.DataFrame:
    """The columns as strings, missing values as '-', so that they group and print alike."""
    sub = frame[cols].astype(object)
    return sub.where(sub.notna(), "-").astype(str)


def hidden_design_columns(
    frame: pd.DataFrame, size_col: str, variant_cols: list[str], exclude: set[str] | None = None
) -> list[str]:
    """`design.*` columns that take two or more values within one (variant, size) cell."""
    skip = set(variant_cols) | (exclude or set()) | {size_col}
    design = [
        c for c in frame.columns if str(c).startswith("design.") and c not in skip and not str(c).startswith(NOT_DESIGN)
    ]
    if not design or frame.empty:
        return []
    keys = _keys(frame, [*variant_cols, size_col]) if variant_cols else _keys(frame, [size_col])
    cell = keys.apply(lambda r: "\x1f".join(r), axis=1)
    values = _keys(frame, design)
    return [c for c in design if values[c].groupby(cell).nunique().max() > 1]


def variant_labels(frame: pd.DataFrame, variant_cols: list[str]) -> pd.Series:
    """`col=value,...` per row, naming only the variant columns that vary (short, unique)."""
    if not variant_cols:
        return pd.Series("all", index=frame.index, dtype=object)
    keys = _keys(frame, variant_cols)
    varying = [c for c in variant_cols if keys[c].nunique() > 1]
    if not varying:
        return pd.Series("all", index=frame.index, dtype=object)
    return keys[varying].apply(lambda r: ",".join(f"{c}={r[c]}" for c in varying), axis=1)


def variant_scores(frame: pd.DataFrame, metric: str, size_col: str, variant_cols: list[str]) -> pd.DataFrame:
    """Mean score per variant (rows, labelled `col=value,...`) and size (columns, ascending).

    A variant with no finite score at a size has NaN there.
    """
    data = pd.DataFrame(
        {
            "variant": variant_labels(frame, variant_cols),
            "size": frame[size_col].astype(float),
            "score": pd.to_numeric(frame[metric], errors="coerce"),
        }
    )
    table = data.groupby(["variant", "size"])["score"].mean().unstack("size")
    return table.reindex(columns=sorted(table.columns)).sort_index()


def missing_cells(scores: pd.DataFrame) -> list[dict[str, Any]]:
    """Each (variant, size) with no score: the variant is left out of pairs with that size."""
    return [
        {"variant": str(v), "size": float(s)}
        for v, row in scores.iterrows()
        for s, x in row.items()
        if not np.isfinite(x)
    ]


def item_se(frame: pd.DataFrame, metric: str) -> pd.Series:
    """Each row's standard error of `metric` from its 95% interval columns (NaN without them)."""
    if LO + metric not in frame.columns or HI + metric not in frame.columns:
        return pd.Series(np.nan, index=frame.index, dtype=float)
    lo = pd.to_numeric(frame[LO + metric], errors="coerce")
    hi = pd.to_numeric(frame[HI + metric], errors="coerce")
    return (hi - lo) / (2 * z_value())


def _cell_se(scores: pd.Series, items: pd.Series) -> float:
    parts = []
    if items.notna().any():
        parts.append(float((items.dropna() ** 2).mean()))
    k = int(scores.notna().sum())
    if k >= 2:
        parts.append(float(scores.var(ddof=1)) / k)
    return math.sqrt(sum(parts)) if parts else math.nan


def score_se(frame: pd.DataFrame, metric: str, size_col: str, variant_cols: list[str]) -> pd.DataFrame:
    """The standard error of each `variant_scores` cell: item noise and seed spread, see above.

    The seeds' variance is pooled over the cells run with two or more seeds and applies to
    every cell (divided by its number of runs): a design run once is as noisy as one seed.
    """
    data = pd.DataFrame(
        {
            "variant": variant_labels(frame, variant_cols),
            "size": frame[size_col].astype(float),
            "score": pd.to_numeric(frame[metric], errors="coerce"),
            "item_var": item_se(frame, metric) ** 2,
        }
    )
    cells = data.groupby(["variant", "size"])
    k = cells["score"].count()
    seed_var = cells["score"].var(ddof=1).dropna()
    pooled = float(seed_var.mean()) if len(seed_var) else math.nan
    item_var = cells["item_var"].mean()
    parts = pd.concat([item_var, pooled / k], axis=1)
    se = np.sqrt(parts.sum(axis=1, min_count=1))
    table = se.unstack("size")
    return table.reindex(columns=sorted(table.columns)).sort_index()


def metric_names(frame: pd.DataFrame) -> list[str]:
    """The score columns (`test/...`, `test_frame/...`): keys with '/', not intervals or spreads."""
    return [c for c in frame.columns if "/" in str(c) and not str(c).startswith((LO, HI, "sd/", "train/"))]


def average_seeds(frame: pd.DataFrame) -> pd.DataFrame | None:
    """One row per design (every choice and the LLM; the ok runs that differ only in `seed`).

    Columns: the design's choices, llm_size_b, n_seeds, seeds, and per metric its mean over
    the seeds, `sd/<metric>` (their spread; NaN for one seed) and `ci_lo/`, `ci_hi/` (the
    mean ± 1.96 · `score_se`). None when no design was run with two or more seeds.
    """
    if "seed" not in frame.columns or "status" not in frame.columns:
        return None
    ok = frame[frame["status"] == "ok"]
    keys = choice_columns(ok, "llm_size_b")
    keys += [c for c in ("llm", "llm_size_b") if c in ok.columns]
    if ok.empty or not keys:
        return None
    label = _keys(ok, keys).apply(lambda r: "\x1f".join(r), axis=1)
    if label.value_counts().max() < 2:
        return None
    rows = []
    z = z_value()
    for _, runs in ok.groupby(label, sort=True):
        row: dict[str, Any] = {k: runs[k].iloc[0] for k in keys}
        row["n_seeds"] = len(runs)
        row["seeds"] = ",".join(str(s) for s in runs["seed"].tolist())
        for m in metric_names(ok):
            scores = pd.to_numeric(runs[m], errors="coerce")
            mean, se = float(scores.mean()), _cell_se(scores, item_se(runs, m))
            row[m] = mean
            row["sd/" + m] = float(scores.std(ddof=1)) if scores.notna().sum() >= 2 else math.nan
            row[LO + m], row[HI + m] = mean - z * se, mean + z * se
        rows.append(row)
    return pd.DataFrame(rows)
