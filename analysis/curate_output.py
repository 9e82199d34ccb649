"""What `analysis.curate` writes and prints: the output tables, curation.json, and the terminal summary."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


def write_outputs(out: Path, kept: pd.DataFrame, items: pd.DataFrame, report: dict[str, Any]) -> None:
    """DIR/curated.csv (kept items), DIR/audit.csv (every item's fate), DIR/curation.json,
    and DIR/curation.png (scores curated vs full; items by category and fate)."""
    from analysis.curate_plot import curation_figure
    from analysis.plots import save_figure

    out.mkdir(parents=True, exist_ok=True)
    drop_bench = not (kept.index.get_level_values("benchmark") != "").any()
    for name, table in (("curated.csv", kept), ("audit.csv", items)):
        table = table.reset_index()
        table.drop(columns=["benchmark"] if drop_bench else []).to_csv(out / name, index=False)
    (out / "curation.json").write_text(json.dumps(report, indent=2, default=_plain) + "\n")
    save_figure(curation_figure(report), out / "curation.png")


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON: {type(value).__name__}")


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _fmt_metric(row: dict[str, Any], key: str) -> str:
    mean, sd = row.get(key), row.get(f"{key}_sd")
    return "n/a" if mean is None else f"{mean:.3f}" + (f" ± {sd:.3f}" if sd is not None else "")


def heldout_lines(held: dict[str, dict[str, Any]] | None, folds: int) -> list[str]:
    """The held-out table: one line per method (MAE, Kendall tau, Spearman; mean ± sd)."""
    if not held:
        return ["held-out: not run (fewer than 4 models, or --folds 0)"]
    first = next(iter(held.values()))
    lines = [
        f"held-out ({first['folds']} folds over models; {first['items']} items; mean ± sd over folds): "
        f"MAE of the full score, Kendall tau, Spearman"
    ]
    width = max(len(n) for n in held)
    for name, row in held.items():
        lines.append(
            f"  {name:<{width}}  MAE {_fmt_metric(row, 'mae')}  tau {_fmt_metric(row, 'tau')}  "
            f"Spearman {_fmt_metric(row, 'spearman')}"
        )
    return lines


def summary(report: dict[str, Any], out: Path) -> str:
    """A few lines for the terminal: counts, held-out table, in-sample correlation, cost,
    controls and warnings."""
    n, corr, cost = report["items"], report["correlation"]["category_mean"], report["cost"]
    lines = [
        f"{n['full']} items, {len(report['models'])} models: dropped {n['dropped']} "
        f"(text {n['dropped_text']}, frame {n['dropped_frame']}, both {n['dropped_both']}), "
        f"kept {n['kept']}: {_num(cost['items_reduction'])}x fewer items"
        + (f", {_num(cost['seconds']['reduction'])}x fewer seconds" if cost["seconds"] else ""),
    ]
    if all(v >= n["full"] for v in n["not_audited"].values()):
        lines.append("audit: nothing audited (no frame or text rows): no item dropped for text or frame")
    lines += heldout_lines(report["heldout"], report["settings"]["folds"])
    lines.append(
        f"in-sample (the models that chose the items), curated vs full, mean of categories: "
        f"Spearman {_num(corr['spearman'])}, Pearson {_num(corr['pearson'])}"
        + (f" ({corr['note']})" if corr.get("note") else "")
    )
    if report["controls"]:
        for reason in ("overall", "text", "frame"):
            c = report["controls"][reason]
            if c.get("note"):
                lines.append(f"dropped vs flagged controls ({reason}): {c['note']} ({c['flagged']} flagged)")
                continue
            lines.append(
                f"dropped vs flagged controls ({reason}): precision {_num(c['precision'])}, "
                f"recall {_num(c['recall'])} ({c['true_positives']} of {c['dropped']} "
                f"dropped, of {c['flagged']} flagged)"
            )
        kept = report["controls"]["kept"]
        lines.append(
            f"flagged controls in the curated set: {kept['overall']} (text {kept['text']}, frame {kept['frame']})"
        )
    lines += [f"warning: {w}" for w in report["warnings"]]
    lines.append(f"-> {out}/curated.csv, curation.json, audit.csv, curation.png")
    return "\n".join(lines)
