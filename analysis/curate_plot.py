"""The figure of a curation: models' scores curated vs full, and each category's items by fate.

Built from `curation.json`'s report alone (no tables), without pyplot, as analysis/plots.py does.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.figure import Figure

from analysis.plots import _fmt, new_figure

FATES = (
    ("kept", "kept", "C2"),
    ("not_selected", "not selected", "C7"),
    ("text_only", "dropped: text", "C0"),
    ("frame_only", "dropped: frame", "C1"),
    ("dropped_both", "dropped: both", "C3"),
)


def _fates(counts: dict[str, int]) -> dict[str, int]:
    both = counts["dropped_both"]
    return {
        "kept": counts["kept"],
        "not_selected": counts["not_selected"],
        "text_only": counts["dropped_text"] - both,
        "frame_only": counts["dropped_frame"] - both,
        "dropped_both": both,
    }


def curation_figure(report: dict[str, Any]) -> Figure:
    """Left: per model, the headline score on the full set (x) and the curated set (y).
    Right: per category, its items kept, not selected, and dropped by reason."""
    fig = new_figure(10.0, 4.2)
    left, right = fig.subplots(1, 2)
    scores = report["scores"]
    x = np.array([s["full"] for s in scores.values()], dtype=float)
    y = np.array([s["curated"] for s in scores.values()], dtype=float)
    left.scatter(x, y, color="C0", zorder=3)
    ends = [np.nanmin([x, y]), np.nanmax([x, y])] if len(x) else [0, 1]
    left.plot(ends, ends, "--", color="grey", lw=1, label="curated = full")
    corr = report["correlation"][report["headline"]]
    n = report["items"]
    left.set_title(
        f"{n['kept']} of {n['full']} items: Spearman {_fmt(corr['spearman'])}, Pearson {_fmt(corr['pearson'])}",
        fontsize="medium",
    )
    left.set_xlabel("score on the full set (mean of categories)")
    left.set_ylabel("score on the curated set")
    left.grid(True, alpha=0.3)
    left.legend(loc="best", fontsize="small")
    cats = sorted(report["categories"])
    bottom = np.zeros(len(cats))
    for key, label, colour in FATES:
        counts = np.array([_fates(report["categories"][c])[key] for c in cats], dtype=float)
        right.bar(cats, counts, bottom=bottom, color=colour, label=label)
        bottom += counts
    right.set_ylabel("items")
    right.set_title(
        f"by category (budget {report['settings']['budget']}, threshold {report['settings']['threshold']:g})",
        fontsize="medium",
    )
    right.tick_params(axis="x", labelrotation=30)
    right.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small")
    return fig
