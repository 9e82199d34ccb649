"""Benchmark curation after ApolloBench: drop what text or one frame answers, keep what separates.

    python -m analysis.curate ITEMS... --out DIR [--budget 400] [--threshold 0.5]
        [--rank entropy|pointbiserial] [--flags MANIFEST.jsonl]

ITEMS are per-item correctness tables (analysis/items.py: `model`, `item`, `category`,
`modality`, `correct`; our runs' `items.csv`), or run / sweep directories holding them.
Nothing here is specific to video: any models × items table works, and the audit steps
are skipped for items nobody evaluated without the video.

The rules, in order:

1. The full set is every item that every model answered with the video (the `video`
   rows). An item some model lacks is left out of everything and counted (`incomplete`).
2. Audit: an item is dropped for `text` when more than `threshold` of the models that
   answered it from the text alone got it right, and for `frame` likewise from the centre
   frame. An item can be dropped for both: it then counts once in `dropped` and once in
   each of `dropped_text` and `dropped_frame` (and in `dropped_both`), so the two reasons
   are reported separately and the total is not double-counted.
3. Rank the rest by how well it separates the models: `entropy`, the binary entropy (bits)
   of the share p of models right on the video, -p log2 p - (1-p) log2 (1-p), Apollo's
   criterion; or `pointbiserial`, the Pearson correlation across models of the item's
   0/1 correctness with each model's plain accuracy on the full set (an item every model
   answers alike scores 0). Ties go to the smaller (benchmark, item).
4. Keep the best `budget`, balanced across categories: every category gets an equal share;
   a category with fewer candidates than its share gives all it has and its unused share
   goes to the others, again equally (water-filling); a remainder that does not divide
   goes one item each to the categories whose next candidate scores highest.

A model's score on a set is the mean over its categories of the category accuracy
(ApolloBench's convention; the headline), and also the plain mean over items.
`curation.json` holds counts kept and dropped per category and reason, the Spearman and
Pearson correlations across models between the curated and the full set, the cost
reduction (items, and seconds where known), and with control flags (a `control` column
or `--flags`) the precision and recall of the dropped items against them, and how many
controls are in the curated set all the same.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis.curation_metrics import control_agreement, correlations, cost_reduction, set_scores
from analysis.items import ItemsError, apply_flags, read_flags, read_items, record_seconds

log = logging.getLogger("analysis.curate")
RANKS = ("entropy", "pointbiserial")
KEY = ["benchmark", "item"]
REASONS = ("text", "frame")


def video_matrix(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series, int]:
    """(items × models 0/1 on the video, each item's category, items some model lacks)."""
    video = frame[frame["modality"] == "video"]
    if video.empty:
        raise ItemsError("no video rows: nothing to curate (rows without a modality count as video)")
    cats = video.groupby(KEY)["category"].unique()
    mixed = cats[cats.map(len) > 1]
    if len(mixed):
        (bench, item), names = mixed.index[0], mixed.iloc[0]
        raise ItemsError(
            f"item {item!r}{f' of {bench}' if bench else ''} has several categories: {', '.join(sorted(names))}"
        )
    matrix = video.pivot(index=KEY, columns="model", values="correct")
    complete = matrix.notna().all(axis=1)
    matrix = matrix[complete].astype(int).sort_index()
    return matrix, cats.map(lambda c: c[0]).loc[matrix.index], int((~complete).sum())


def audit_shares(frame: pd.DataFrame, modality: str) -> pd.Series:
    """Per item, the share of the models that answered it in `modality` that got it right."""
    rows = frame[frame["modality"] == modality]
    return rows.groupby(KEY)["correct"].mean()


def binary_entropy(p: np.ndarray) -> np.ndarray:
    """-p log2 p - (1-p) log2 (1-p), 0 at p = 0 and p = 1."""
    p = np.asarray(p, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -(p * np.log2(p) + (1 - p) * np.log2(1 - p))
    return np.where((p <= 0) | (p >= 1), 0.0, h)


def point_biserial(correct: np.ndarray, totals: np.ndarray) -> np.ndarray:
    """Per row of `correct` (items × models, 0/1), its Pearson correlation with `totals`
    (one per model); 0 where the item or the totals do not vary."""
    x = np.asarray(correct, dtype=float)
    t = np.asarray(totals, dtype=float)
    dx = x - x.mean(axis=1, keepdims=True)
    dt = t - t.mean()
    denom = np.sqrt((dx**2).sum(axis=1) * (dt**2).sum())
    with np.errstate(divide="ignore", invalid="ignore"):
        r = (dx @ dt) / denom
    return np.where(denom > 0, r, 0.0)


def rank_scores(matrix: pd.DataFrame, method: str) -> pd.Series:
    """How well each item (row) separates the models (columns): higher is better."""
    if method == "entropy":
        values = binary_entropy(matrix.mean(axis=1).to_numpy())
    elif method == "pointbiserial":
        values = point_biserial(matrix.to_numpy(), matrix.mean(axis=0).to_numpy())
    else:
        raise ValueError(f"rank={method!r} is invalid; valid: {', '.join(RANKS)}")
    return pd.Series(values, index=matrix.index, name="score")


def balanced_quotas(ranked: dict[str, list[float]], budget: int) -> dict[str, int]:
    """Items to keep per category, from each category's candidate scores (best first)."""
    quota: dict[str, int] = {}
    active = sorted(ranked)
    left = max(0, budget)
    while active:  # categories with fewer candidates than an equal share give all they have
        share = left // len(active)
        small = [c for c in active if len(ranked[c]) <= share]
        if not small:
            break
        for c in small:
            quota[c] = len(ranked[c])
            left -= quota[c]
            active.remove(c)
    if active:
        share, extra = divmod(left, len(active))
        quota.update(dict.fromkeys(active, share))
        # each active category has more than `share` candidates: its next one exists
        for c in sorted(active, key=lambda c: (-ranked[c][share], c))[:extra]:
            quota[c] += 1
    return {c: quota[c] for c in sorted(quota)}


def select(candidates: pd.DataFrame, budget: int) -> pd.DataFrame:
    """The best `budget` of `candidates` (index KEY; columns category, score), balanced,
    with `rank` (1 = best) within each category."""
    ordered = candidates.reset_index().sort_values(["score", *KEY], ascending=[False, True, True], kind="mergesort")
    ranked = {c: g["score"].tolist() for c, g in ordered.groupby("category")}
    quota = balanced_quotas(ranked, budget)
    ordered["rank"] = ordered.groupby("category").cumcount() + 1
    kept = ordered[ordered["rank"] <= ordered["category"].map(quota)]
    return kept.sort_values(["category", "rank"]).set_index(KEY)


def item_flags(frame: pd.DataFrame) -> pd.Series | None:
    """Per item its control flag ("" for none) where the tables carry one; None if none do."""
    if frame["control"].isna().all():
        return None
    known = frame.dropna(subset=["control"])
    flags = known.groupby(KEY)["control"].agg(lambda v: sorted(set(v) - {""}) or [""])
    mixed = flags[flags.map(len) > 1]
    if len(mixed):
        raise ItemsError(f"item {mixed.index[0][1]!r} has conflicting control flags {', '.join(mixed.iloc[0])}")
    return flags.map(lambda v: v[0])


def curate(
    frame: pd.DataFrame,
    budget: int = 400,
    threshold: float = 0.5,
    rank: str = "entropy",
    run_seconds: dict[str, float] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """(kept items, every full-set item with its fate, the report written as curation.json)."""
    if budget < 1:
        raise ValueError(f"budget={budget} is invalid; valid: an integer >= 1")
    if not 0 <= threshold < 1:
        raise ValueError(f"threshold={threshold} is invalid; valid: 0 <= threshold < 1")
    matrix, category, incomplete = video_matrix(frame)
    items = pd.DataFrame({"category": category, "accuracy": matrix.mean(axis=1)})
    for reason in REASONS:
        share = audit_shares(frame, reason).reindex(items.index)
        items[f"{reason}_accuracy"] = share
        items[f"drop_{reason}"] = share > threshold  # NaN (not audited) compares False
    items["score"] = rank_scores(matrix, rank)
    items["dropped"] = items["drop_text"] | items["drop_frame"]
    kept = select(items[~items["dropped"]][["category", "score"]], budget)
    items["kept"] = items.index.isin(kept.index)
    kept = kept.join(items[["accuracy", "text_accuracy", "frame_accuracy"]])
    flags = item_flags(frame)
    if flags is not None:
        items["control"] = flags.reindex(items.index)
        kept["control"] = items["control"].reindex(kept.index)
    if incomplete:
        log.warning("%d item(s) left out: not every model answered them with the video", incomplete)
    full, curated = set_scores(matrix, category, matrix.index), set_scores(matrix, category, kept.index)
    report: dict[str, Any] = {
        "settings": {"budget": budget, "threshold": threshold, "rank": rank},
        "models": sorted(map(str, matrix.columns)),
        "items": _counts(items)
        | {"incomplete": incomplete, "not_audited": {r: int(items[f"{r}_accuracy"].isna().sum()) for r in REASONS}},
        "categories": {c: _counts(g) for c, g in items.groupby("category")},
        "headline": "category_mean",
        "correlation": {conv: correlations(full[conv], curated[conv]) for conv in ("category_mean", "item_mean")},
        "scores": {
            str(m): {
                "full": full.loc[m, "category_mean"],
                "curated": curated.loc[m, "category_mean"],
                "full_item_mean": full.loc[m, "item_mean"],
                "curated_item_mean": curated.loc[m, "item_mean"],
            }
            for m in matrix.columns
        },
        "cost": cost_reduction(frame, matrix.index, kept.index, run_seconds or {}),
        "controls": None if flags is None else control_agreement(items),
    }
    return kept, items, report


def _counts(items: pd.DataFrame) -> dict[str, int]:
    both = items["drop_text"] & items["drop_frame"]
    return {
        "full": len(items),
        "kept": int(items["kept"].sum()),
        "dropped": int(items["dropped"].sum()),
        "dropped_text": int(items["drop_text"].sum()),
        "dropped_frame": int(items["drop_frame"].sum()),
        "dropped_both": int(both.sum()),
        "not_selected": int((~items["dropped"] & ~items["kept"]).sum()),
    }


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


def summary(report: dict[str, Any], out: Path) -> str:
    """A few lines for the terminal: the counts, the headline correlation, cost and controls."""
    n, corr, cost = report["items"], report["correlation"]["category_mean"], report["cost"]
    lines = [
        f"{n['full']} items, {len(report['models'])} models: dropped {n['dropped']} "
        f"(text {n['dropped_text']}, frame {n['dropped_frame']}, both {n['dropped_both']}), "
        f"kept {n['kept']}: {_num(cost['items_reduction'])}x fewer items"
        + (f", {_num(cost['seconds']['reduction'])}x fewer seconds" if cost["seconds"] else ""),
        f"curated vs full, per model (mean of categories): Spearman {_num(corr['spearman'])}, "
        f"Pearson {_num(corr['pearson'])}{' (' + corr['note'] + ')' if corr.get('note') else ''}",
    ]
    if report["controls"]:
        for reason in ("overall", "text", "frame"):
            c = report["controls"][reason]
            lines.append(
                f"dropped vs flagged controls ({reason}): precision {_num(c['precision'])}, "
                f"recall {_num(c['recall'])} ({c['true_positives']} of {c['dropped']} "
                f"dropped, of {c['flagged']} flagged)"
            )
        kept = report["controls"]["kept"]
        lines.append(
            f"flagged controls in the curated set: {kept['overall']} (text {kept['text']}, frame {kept['frame']})"
        )
    lines.append(f"-> {out}/curated.csv, curation.json, audit.csv, curation.png")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m analysis.curate", description=__doc__.split("\n")[0])
    parser.add_argument("items", nargs="+", help="items tables (.csv, .parquet) or run/sweep directories")
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--budget", type=int, default=400, help="items to keep (default 400)")
    parser.add_argument(
        "--threshold",
        type=float,
        default=0.5,
        help="drop an item more than this share of models answer from text or one frame",
    )
    parser.add_argument("--rank", choices=RANKS, default="entropy", help="how items are ranked")
    parser.add_argument("--flags", help="JSONL manifest mapping item id to its `control` flag")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        if args.budget < 1:
            raise ItemsError(f"--budget={args.budget} is invalid; valid: an integer >= 1")
        if not 0 <= args.threshold < 1:
            raise ItemsError(f"--threshold={args.threshold} is invalid; valid: 0 <= threshold < 1")
        frame, tables = read_items(args.items)
        if args.flags:
            frame, unknown = apply_flags(frame, read_flags(args.flags))
            if unknown:
                log.warning("%d item(s) are not in %s: no control flag for them", unknown, args.flags)
        kept, items, report = curate(frame, args.budget, args.threshold, args.rank, record_seconds(tables))
        report["inputs"] = [str(t) for t in tables]
        report["flags"] = args.flags or ("items" if report["controls"] else None)
        write_outputs(Path(args.out), kept, items, report)
    except ItemsError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(summary(report, Path(args.out)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
