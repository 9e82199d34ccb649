"""What a curated benchmark is worth: model scores, correlation with the full set, cost, controls.

Pure functions over the tables of `analysis.curate`; a number that is not defined (too
few models, a constant score, nothing dropped) is None with a note, never an exception.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sps

MIN_MODELS = 3  # two models always correlate perfectly, or not at all


def set_scores(matrix: pd.DataFrame, category: pd.Series, items: pd.Index) -> pd.DataFrame:
    """Each model's score on `items`: `category_mean`, the mean over the categories present
    of the category accuracy (ApolloBench), and `item_mean`, the plain accuracy."""
    sub = matrix.loc[items]
    if sub.empty:
        return pd.DataFrame({"category_mean": np.nan, "item_mean": np.nan}, index=matrix.columns)
    by_cat = sub.groupby(category.loc[items]).mean()
    return pd.DataFrame({"category_mean": by_cat.mean(axis=0), "item_mean": sub.mean(axis=0)})


def correlations(full: pd.Series, curated: pd.Series) -> dict[str, Any]:
    """Spearman and Pearson, across models, between scores on the curated and the full set."""
    x, y = full.to_numpy(dtype=float), curated.reindex(full.index).to_numpy(dtype=float)
    note = None
    if len(x) < MIN_MODELS:
        note = f"{len(x)} models; a correlation needs {MIN_MODELS} or more"
    elif not (np.isfinite(x).all() and np.isfinite(y).all()):
        note = "a model has no score on the curated set"
    elif np.ptp(x) == 0 or np.ptp(y) == 0:
        note = "every model has the same score on one of the sets"
    if note:
        return {"spearman": None, "pearson": None, "models": len(x), "note": note}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {
            "spearman": float(sps.spearmanr(x, y).statistic),
            "pearson": float(sps.pearsonr(x, y).statistic),
            "models": len(x),
        }


def cost_reduction(
    frame: pd.DataFrame, full: pd.Index, kept: pd.Index, run_seconds: dict[str, float]
) -> dict[str, Any]:
    """Items full / kept, and seconds full / kept per model where they are known.

    Seconds come from the tables' `seconds` column (each model's video rows, summed over
    the full and the curated set, then averaged over the models that have every one), or
    else from the run records (`run_seconds`: a model's video eval seconds, spread evenly
    over its items, so that the seconds shrink as the items do).
    """
    out: dict[str, Any] = {
        "items_full": len(full),
        "items_kept": len(kept),
        "items_reduction": len(full) / len(kept) if len(kept) else None,
        "seconds": None,
    }
    video = frame[(frame["modality"] == "video") & frame["seconds"].notna()]
    per_model = []
    if len(video):
        table = video.pivot_table(index=["benchmark", "item"], columns="model", values="seconds", aggfunc="first")
        table = table.reindex(full)
        for model in table.columns[table.notna().all()]:
            per_model.append((float(table[model].sum()), float(table[model].loc[kept].sum())))
    if per_model:
        total, curated = np.mean(per_model, axis=0)
        out["seconds"] = {
            "full": float(total),
            "kept": float(curated),
            "reduction": float(total / curated) if curated > 0 else None,
            "models": len(per_model),
            "source": "items (per-item seconds)",
        }
        return out
    models = sorted(set(frame["model"]) & set(run_seconds))
    if models and len(kept):
        total = float(np.mean([run_seconds[m] for m in models]))
        curated = total * len(kept) / len(full)
        out["seconds"] = {
            "full": total,
            "kept": curated,
            "reduction": total / curated,
            "models": len(models),
            "source": "run records (eval_seconds, spread evenly over items)",
        }
    return out


def _agreement(dropped: pd.Series, flagged: pd.Series) -> dict[str, Any]:
    hits = int((dropped & flagged).sum())
    n_dropped, n_flagged = int(dropped.sum()), int(flagged.sum())
    return {
        "flagged": n_flagged,
        "dropped": n_dropped,
        "true_positives": hits,
        "precision": hits / n_dropped if n_dropped else None,
        "recall": hits / n_flagged if n_flagged else None,
    }


def control_agreement(
    items: pd.DataFrame, not_audited: dict[str, int] | None = None, total: int | None = None
) -> dict[str, Any]:
    """Precision and recall of the dropped items against the controls the benchmark flags.

    `overall`: dropped for any reason against flagged as any control. Per reason (`text`,
    `frame`): dropped for that reason against flagged as that kind of control. Only the
    items with a known flag count ("" = known not to be a control). `kept`: the flagged
    controls in the curated set all the same (not dropped by the audit, and ranked high
    enough to be kept), by flag.
    """
    known = items[items["control"].notna()]
    flag = known["control"]
    kept = flag[(flag != "") & known["kept"]]
    unaudited = [r for r, n in (not_audited or {}).items() if total and n >= total]
    out: dict[str, Any] = {
        "items_with_flags": len(known),
        "flagged": {str(k): int(v) for k, v in flag[flag != ""].value_counts().sort_index().items()},
        "kept": {"overall": len(kept), **{r: int((kept == r).sum()) for r in ("text", "frame")}},
        "overall": _agreement(known["dropped"], flag != ""),
        "text": _agreement(known["drop_text"], flag == "text"),
        "frame": _agreement(known["drop_frame"], flag == "frame"),
    }
    # a reason nobody was evaluated for has no precision or recall: nothing was audited
    for reason in unaudited:
        out[reason] |= {"precision": None, "recall": None, "note": f"not audited: no {reason} rows"}
    if unaudited and len(unaudited) == len(not_audited or {}):
        out["overall"] |= {"precision": None, "recall": None, "note": "not audited: no frame or text rows"}
    return out
