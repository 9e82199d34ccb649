"""Design variants of a results table: which rows are one design, and their mean scores.

A *variant* is the set of runs that agree on every variant column (by default every
config-group choice except the LLM). Runs of one variant at one size are replicates
(seeds) and are averaged. A design number that differs between the runs of one such
cell (say `design.fps`, changed by an override such as `sampler.fps=1` rather than by a
group choice) marks different designs hiding behind the same choices:
`hidden_design_columns` finds them so that they can be separated rather than averaged.
Pure functions over pandas tables; nothing here reads files or draws.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

# Columns that never distinguish designs: bookkeeping, the LLM (the size axis), and the
# seed (replicates of one design are averaged).
NOT_CHOICES = {"run_dir", "status", "reason", "sweep", "llm", "llm_size_b", "seed"}
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
