"""R² against training-set size: how much data does a small study need? (Apollo Fig. 3 right)

The paper trains its design variants on growing amounts of data and finds that R² with
the full-size reference stops improving beyond about 500K samples. Here every
(model size, training-set size) cell holds the per-variant mean scores; each cell is
compared with the reference cell, the largest model at the largest training set, by the
same R² (squared Pearson correlation over the variants both have) as the model-size pairs,
with its bootstrap interval. Pure: a table in, a JSON-ready dict out.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from analysis import stats
from analysis.variants import variant_labels


def cell_scores(
    frame: pd.DataFrame, metric: str, size_col: str, data_col: str, variant_cols: list[str]
) -> pd.DataFrame:
    """Mean score per variant (rows) and (size, data size) cell (columns, ascending)."""
    data = pd.DataFrame(
        {
            "variant": variant_labels(frame, variant_cols),
            "size": pd.to_numeric(frame[size_col], errors="coerce"),
            "data": pd.to_numeric(frame[data_col], errors="coerce"),
            "score": pd.to_numeric(frame[metric], errors="coerce"),
        }
    ).dropna(subset=["size", "data"])
    table = data.groupby(["variant", "size", "data"])["score"].mean().unstack(["size", "data"])
    return table.reindex(columns=sorted(table.columns)).sort_index()


def analyse_data(
    frame: pd.DataFrame,
    metric: str,
    size_col: str,
    data_col: str,
    variant_cols: list[str],
    n_boot: int = 1000,
    seed: int | None = 0,
) -> dict[str, Any]:
    """R² of every (size, data size) cell with the (largest size, largest data size) one.

    Returns `{"data_col", "reference": {"size", "data_size"}, "points": [{"size",
    "data_size", "n", "r2", "ci", "note"}, ...], "note"}`; the reference itself is not a point.
    """
    scores = cell_scores(frame, metric, size_col, data_col, variant_cols)
    out: dict[str, Any] = {
        "data_col": data_col,
        "reference": {"size": None, "data_size": None},
        "points": [],
        "note": None,
    }
    if scores.empty:
        out["note"] = f"no ok row has a number in both {size_col} and {data_col}"
        return out
    size = max(s for s, _ in scores.columns)
    data_size = max(d for s, d in scores.columns if s == size)
    out["reference"] = {"size": float(size), "data_size": float(data_size)}
    reference = scores[(size, data_size)]
    for s, d in scores.columns:
        if (s, d) == (size, data_size):
            continue
        both = pd.concat([scores[(s, d)], reference], axis=1).dropna()
        x, y = both.iloc[:, 0].to_numpy(float), both.iloc[:, 1].to_numpy(float)
        note = stats.r2_note(x, y)
        ci = stats.bootstrap_ci(x, y, n_boot=n_boot, seed=seed) if note is None else (math.nan, math.nan)
        out["points"].append(
            {
                "size": float(s),
                "data_size": float(d),
                "n": int(x.size),
                "r2": stats.r2(x, y),
                "ci": list(ci),
                "note": note,
            }
        )
    if len({d for _, d in scores.columns}) < 2:
        out["note"] = f"only one value of {data_col}: R² against training-set size needs two or more"
    return out


def curve_cis(result: dict[str, Any]) -> dict[float, np.ndarray]:
    """Per model size: the (2, n) lower and upper 95% interval of each point `curves` draws."""
    by_size: dict[float, list[tuple[float, float, float]]] = {}
    for p in result.get("points", []):
        if p["r2"] is not None and math.isfinite(p["r2"]):
            lo, hi = (math.nan, math.nan) if p["ci"] is None else (p["ci"][0], p["ci"][1])
            by_size.setdefault(p["size"], []).append((p["data_size"], lo, hi))
    return {
        s: np.array([[lo for _, lo, _ in sorted(v)], [hi for _, _, hi in sorted(v)]], dtype=float)
        for s, v in by_size.items()
    }


def curves(result: dict[str, Any]) -> dict[float, tuple[np.ndarray, np.ndarray]]:
    """Per model size: (data sizes, R²) of its finite points, ascending, for drawing."""
    by_size: dict[float, list[tuple[float, float]]] = {}
    for p in result.get("points", []):
        if p["r2"] is not None and math.isfinite(p["r2"]):
            by_size.setdefault(p["size"], []).append((p["data_size"], p["r2"]))
    return {
        s: (np.array([d for d, _ in sorted(v)]), np.array([r for _, r in sorted(v)]))
        for s, v in sorted(by_size.items())
    }
