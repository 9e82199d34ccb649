"""Benchmark curation after ApolloBench: drop what text or one frame answers, keep what separates.

    python -m analysis.curate ITEMS... --out DIR [--budget 400] [--rank entropy|pointbiserial|anchor|anchor-irt]
        [--audit-rule chance|share] [--level 0.05] [--threshold 0.5] [--flags MANIFEST.jsonl]
        [--item-info ITEMS.csv] [--estimator auto] [--folds 5] [--seed 0] [--irt-dim 1] [--per-benchmark]

ITEMS are per-item score tables (analysis/items.py: long or wide, scores in [0, 1], empty
cells missing; our runs' `items.csv`), or run / sweep directories holding them. Nothing
here is specific to video: any models × items table works, and the audit steps are
skipped (and said to be) for items nobody evaluated without the video.

The rules, in order:

1. The full set is every item answered with the video (`video` rows). A missing answer
   is missing: it counts neither way, and the items with one are counted
   (`incomplete`). Benchmarks with different model sets are refused in one line naming
   the models that differ, or curated one at a time with `--per-benchmark`.
2. Audit (analysis/curation_checks.py): an item is dropped for `text` when the models
   given the text alone are right significantly more often than chance (binomial test
   against 1 / options at `--level`; `--audit-rule share`: more than `--threshold` of
   them right), for `frame` likewise from one frame. An item dropped for both counts
   once in `dropped` and in each of `dropped_text`, `dropped_frame`, `dropped_both`.
3. Rank the rest by how well they separate the models: `entropy` (Apollo's: the binary
   entropy of the share of models right) or `pointbiserial` (the correlation across
   models of the item's score with the models' mean score). Ties are broken at random
   (`--seed`), never by item id. Or choose anchor points instead (`anchor`, `anchor-irt`,
   analysis/subsets.py): `budget` clusters, one item each, its `score` the weight.
4. Keep the best `budget`, balanced across categories (water-filling: an equal share
   each; a category short of its share gives all it has, the rest goes to the others).
5. Held-out validation (analysis/heldout.py): the models are split into `--folds`
   (seeded); on each fold steps 2-4 are redone on the other models only, and each
   held-out model's full score is estimated from the chosen items (`mean`, and
   `--estimator`: `irt`, `pirt`, `gpirt`, tinyBenchmarks' estimators on a 2PL fit);
   reported: MAE of that estimate, Kendall tau and Spearman across held-out models (mean
   and sd over folds), beside a random subset of the same size (the baseline to beat),
   and beside the selection without the audit and without the balance (what those
   steps cost or gain).

A model's score on a set is the mean over its categories of the category score
(ApolloBench's convention; the headline), and also the plain mean over items; their
correlations between the curated and the full set over all models are in-sample (the
models chose the items) and labelled so. `curation.json` also holds counts kept and
dropped per category and reason, the cost reduction, the controls' precision and recall
where flagged, and `warnings` for results not to trust (also printed).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis import irt
from analysis.curate_output import summary, write_outputs
from analysis.curation_checks import RULES, audit_counts, drop_mask, warnings_for
from analysis.curation_metrics import control_agreement, correlations, cost_reduction, set_scores
from analysis.heldout import Method, validate
from analysis.items import (
    ItemsError,
    apply_flags,
    apply_options,
    read_flags,
    read_items,
    read_options,
    record_seconds,
)
from analysis.subsets import ESTIMATORS, Fit, balanced_quotas, binary_entropy, item_scores, point_biserial
from analysis.subsets import select as subsets_select

__all__ = ["balanced_quotas", "binary_entropy", "curate", "main", "point_biserial"]
log = logging.getLogger("analysis.curate")
RANKS = ("entropy", "pointbiserial", "anchor", "anchor-irt")
ANCHORS = ("anchor", "anchor-irt")
KEY = ["benchmark", "item"]
REASONS = ("text", "frame")
IRT_CELLS = 1_000_000  # --estimator auto fits the 2PL (5 folds x 3 fits) up to this many models x items


def check_model_sets(frame: pd.DataFrame) -> dict[str, list[str]]:
    """Benchmark -> its models (video rows); an ItemsError naming the models that differ
    when two benchmarks have different model sets."""
    video = frame[frame["modality"] == "video"]
    sets = {str(b): sorted(map(str, g.unique())) for b, g in video.groupby("benchmark")["model"]}
    names = sorted(sets)
    for other in names[1:]:
        a, b = set(sets[names[0]]), set(sets[other])
        if a != b:
            only_a, only_b = sorted(a - b)[:5], sorted(b - a)[:5]
            raise ItemsError(
                f"benchmarks {names[0]!r} and {other!r} have different models (only in {names[0]!r}: "
                f"{', '.join(only_a) or 'none'}; only in {other!r}: {', '.join(only_b) or 'none'}); "
                f"curate them one at a time with --per-benchmark"
            )
    return sets


def video_matrix(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series, int]:
    """(items × models scores on the video, NaN missing; each item's category; items with
    a missing answer)."""
    video = frame[frame["modality"] == "video"]
    if video.empty:
        raise ItemsError("no video rows: nothing to curate (rows without a modality count as video)")
    pairs = video[[*KEY, "category"]].drop_duplicates()
    mixed = pairs[pairs.duplicated(KEY, keep=False)]
    if len(mixed):
        bench, item = mixed.iloc[0]["benchmark"], mixed.iloc[0]["item"]
        names = mixed[(mixed["benchmark"] == bench) & (mixed["item"] == item)]["category"]
        raise ItemsError(
            f"item {item!r}{f' of {bench}' if bench else ''} has several categories: {', '.join(sorted(names))}"
        )
    cats = pairs.set_index(KEY)["category"]
    matrix = video.pivot(index=KEY, columns="model", values="correct").astype(float).sort_index()
    answered = matrix.notna().any(axis=1)
    matrix = matrix[answered]
    incomplete = int(matrix.isna().any(axis=1).sum())
    return matrix, cats.loc[matrix.index], incomplete


def audit_table(frame: pd.DataFrame, index: pd.Index, rule: str, threshold: float, level: float) -> pd.DataFrame:
    """Per item of `index`: `<reason>_accuracy`, `<reason>_pvalue` and `drop_<reason>`."""
    options = frame.dropna(subset=["options"]).groupby(KEY)["options"].first()
    out = pd.DataFrame(index=index)
    for reason in REASONS:
        counts = audit_counts(frame[frame["modality"] == reason], KEY).reindex(index)
        tested = counts.dropna(subset=["answered"])
        mask = drop_mask(tested, options, rule, threshold, level).reindex(index)
        out[f"{reason}_accuracy"] = counts["share"]
        out[f"{reason}_pvalue"] = mask["pvalue"]
        out[f"drop_{reason}"] = mask["drop"].fillna(False).astype(bool)
        out[f"{reason}_rule"] = mask["rule"]
    return out


def rank_scores(matrix: pd.DataFrame, method: str) -> pd.Series:
    """How well each item (row) separates the models (columns): higher is better."""
    if method not in RANKS:
        raise ValueError(f"rank={method!r} is invalid; valid: {', '.join(RANKS)}")
    if method in ANCHORS:  # anchor points have weights, not scores
        return pd.Series(np.nan, index=matrix.index, name="score")
    return pd.Series(item_scores(matrix.to_numpy(dtype=float).T, method), index=matrix.index, name="score")


def select(candidates: pd.DataFrame, budget: int, seed: int = 0) -> tuple[pd.DataFrame, int]:
    """(the best `budget` of `candidates` (index KEY; columns category, score), balanced,
    with `rank` (1 = best) within each category; kept items tied with an item left out)."""
    ordered = candidates.reset_index()
    ordered["_tie"] = np.random.default_rng(seed).permutation(len(ordered))
    ordered = ordered.sort_values(["score", "_tie"], ascending=[False, True], kind="mergesort")
    ranked = {c: g["score"].tolist() for c, g in ordered.groupby("category")}
    quota = balanced_quotas(ranked, budget)
    ordered["rank"] = ordered.groupby("category").cumcount() + 1
    chosen = ordered["rank"] <= ordered["category"].map(quota)
    left = ordered[~chosen].groupby("category")["score"].max()
    cut = ordered[chosen]["category"].map(left)
    tied = int((np.isclose(ordered[chosen]["score"], cut) & cut.notna()).sum())
    kept = ordered[chosen].drop(columns="_tie")
    return kept.sort_values(["category", "rank"]).set_index(KEY), tied


def select_anchors(matrix: pd.DataFrame, items: pd.DataFrame, budget: int, seed: int, rank: str) -> pd.DataFrame:
    """The anchor points among the items not dropped (index KEY; columns category, score =
    the anchor's weight, its cluster's share of the items; rank by weight)."""
    fit = Fit(matrix.to_numpy(dtype=float).T)
    if rank == "anchor-irt":
        fit.theta, fit.items = irt.fit(fit.train, seed=seed)
    eligible = ~items["dropped"].to_numpy()
    idx, weights = subsets_select(rank, fit, budget, np.random.default_rng(seed), eligible=eligible)
    kept = items.iloc[idx][["category"]].assign(score=weights)
    kept["rank"] = kept.groupby("category")["score"].rank(ascending=False, method="first").astype(int)
    return kept.sort_values(["category", "rank"])


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


def heldout_report(
    frame: pd.DataFrame,
    matrix: pd.DataFrame,
    category: pd.Series,
    n_items: int,
    settings: dict[str, Any],
) -> dict[str, Any] | None:
    """Held-out numbers of the curation and its baselines (analysis/heldout.py), or None
    with too few models to hold any out."""
    y = matrix.to_numpy(dtype=float).T  # models x items
    models = list(matrix.columns)
    if len(models) < 4 or n_items < 1:
        return None
    rank, est = settings["rank"], settings["estimator"]
    audited = frame["modality"].isin(REASONS).any()
    several = category.nunique() > 1 and rank not in ANCHORS
    methods = [Method("random", "random"), Method("curated", rank, balance=several, audit=audited)]
    if audited:
        methods.append(Method("curated, no audit", rank, balance=several))
    if several:
        methods.append(Method("curated, no balance", rank, audit=audited))
    if est != "mean":
        methods += [Method(f"random + {est}", "random", est), Method(f"curated + {est}", rank, est, several, audited)]

    def eligible(train: np.ndarray) -> np.ndarray:
        held = set(np.asarray(models, dtype=object)[np.setdiff1d(np.arange(len(models)), train)])
        audit = audit_table(
            frame[~frame["model"].isin(held)],
            matrix.index,
            settings["audit_rule"],
            settings["threshold"],
            settings["level"],
        )
        return ~(audit["drop_text"] | audit["drop_frame"]).to_numpy()

    cats = category.loc[matrix.index].to_numpy()
    keep = eligible if audited else None
    out = validate(y, methods, n_items, settings["folds"], settings["seed"], cats, keep, settings["irt_dim"])
    return out


def curate(
    frame: pd.DataFrame,
    budget: int = 400,
    threshold: float = 0.5,
    rank: str = "entropy",
    run_seconds: dict[str, float] | None = None,
    *,
    audit_rule: str = "chance",
    level: float = 0.05,
    estimator: str = "mean",
    folds: int = 5,
    seed: int = 0,
    validation: bool = True,
    irt_dim: int = 1,
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """(kept items, every full-set item with its fate, the report written as curation.json)."""
    if budget < 1:
        raise ValueError(f"budget={budget} is invalid; valid: an integer >= 1")
    if not 0 <= threshold < 1:
        raise ValueError(f"threshold={threshold} is invalid; valid: 0 <= threshold < 1")
    if audit_rule not in RULES:
        raise ValueError(f"audit_rule={audit_rule!r} is invalid; valid: {', '.join(RULES)}")
    if estimator not in ("auto", *ESTIMATORS):
        raise ValueError(f"estimator={estimator!r} is invalid; valid: auto, {', '.join(ESTIMATORS)}")
    check_model_sets(frame)
    matrix, category, incomplete = video_matrix(frame)
    if estimator == "auto":
        estimator = "gpirt" if matrix.size <= IRT_CELLS else "mean"
        if estimator == "mean":
            log.info(
                "%d models x %d items: held-out IRT estimates skipped (--estimator gpirt fits them)",
                *matrix.shape[::-1],
            )
    items = pd.DataFrame({"category": category, "accuracy": matrix.mean(axis=1)})
    items = items.join(audit_table(frame, items.index, audit_rule, threshold, level))
    items["score"] = rank_scores(matrix, rank)
    items["dropped"] = items["drop_text"] | items["drop_frame"]
    if rank in ANCHORS:
        kept, tied = select_anchors(matrix, items, budget, seed, rank), 0
    else:
        kept, tied = select(items[~items["dropped"]][["category", "score"]], budget, seed)
    items["kept"] = items.index.isin(kept.index)
    kept = kept.join(items[["accuracy", "text_accuracy", "frame_accuracy"]])
    flags = item_flags(frame)
    if flags is not None:
        items["control"] = flags.reindex(items.index)
        kept["control"] = items["control"].reindex(kept.index)
    if incomplete:
        log.warning("%d item(s) have a missing answer: scored on the models that answered", incomplete)
    full, curated = set_scores(matrix, category, matrix.index), set_scores(matrix, category, kept.index)
    settings = {
        "budget": budget,
        "rank": rank,
        "audit_rule": audit_rule,
        "level": level,
        "threshold": threshold,
        "estimator": estimator,
        "folds": folds,
        "seed": seed,
        "irt_dim": irt_dim,
    }
    not_audited = {r: int(items[f"{r}_accuracy"].isna().sum()) for r in REASONS}
    share_rule = int(sum((items[f"{r}_rule"] == "share").sum() for r in REASONS)) if audit_rule == "chance" else 0
    report: dict[str, Any] = {
        "settings": settings,
        "models": sorted(map(str, matrix.columns)),
        "items": _counts(items)
        | {
            "incomplete": incomplete,
            "missing_answers": int(matrix.isna().to_numpy().sum()),
            "not_audited": not_audited,
            "tied_at_cut": tied,
        },
        "audit": {"rule": audit_rule, "share_rule_items": share_rule},
        "categories": {c: _counts(g) for c, g in items.groupby("category")},
        "headline": "category_mean",
        "correlation": {
            conv: correlations(full[conv], curated[conv]) | {"in_sample": True}
            for conv in ("category_mean", "item_mean")
        },
        "heldout": heldout_report(frame, matrix, category, len(kept), settings) if validation and folds else None,
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
        "controls": None if flags is None else control_agreement(items, not_audited, len(items)),
    }
    if share_rule:
        log.warning("%d audited item(s) have no known number of options: tested by the share rule", share_rule)
    report["warnings"] = warnings_for(report, curated["category_mean"])
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


def _check_args(args: argparse.Namespace) -> None:
    if args.budget < 1:
        raise ItemsError(f"--budget={args.budget} is invalid; valid: an integer >= 1")
    if not 0 <= args.threshold < 1:
        raise ItemsError(f"--threshold={args.threshold} is invalid; valid: 0 <= threshold < 1")
    if not 0 < args.level < 1:
        raise ItemsError(f"--level={args.level} is invalid; valid: 0 < level < 1")
    if args.irt_dim < 1:
        raise ItemsError(f"--irt-dim={args.irt_dim} is invalid; valid: an integer >= 1")
    if args.folds != 0 and args.folds < 2:
        raise ItemsError(f"--folds={args.folds} is invalid; valid: 0 (no held-out validation) or an integer >= 2")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m analysis.curate", description=__doc__.split("\n")[0])
    parser.add_argument("items", nargs="+", help="items tables (.csv, .csv.gz, .parquet) or run/sweep directories")
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--budget", type=int, default=400, help="items to keep (default 400)")
    parser.add_argument("--rank", choices=RANKS, default="entropy", help="how items are ranked")
    parser.add_argument("--audit-rule", choices=RULES, default="chance", help="text/frame drop rule (default chance)")
    parser.add_argument("--level", type=float, default=0.05, help="the chance rule's test level (default 0.05)")
    parser.add_argument(
        "--threshold", type=float, default=0.5, help="the share rule: drop above this share of models right"
    )
    parser.add_argument("--flags", help="JSONL manifest: each item's `control` flag and `options`")
    parser.add_argument("--item-info", help="item table (item, category, options, benchmark) for wide tables")
    parser.add_argument(
        "--estimator",
        choices=("auto", *ESTIMATORS),
        default="auto",
        help=f"held-out full-score estimator beside the mean (auto: gpirt up to {IRT_CELLS:,} cells, else mean)",
    )
    parser.add_argument("--folds", type=int, default=5, help="held-out folds over models (0: none; default 5)")
    parser.add_argument("--seed", type=int, default=0, help="seed of tie-breaks, folds and random baselines")
    parser.add_argument("--irt-dim", type=int, default=1, help="dimensions of the 2PL (default 1)")
    parser.add_argument("--per-benchmark", action="store_true", help="curate each benchmark on its own")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        _check_args(args)
        frame, tables = read_items(args.items, args.item_info)
        if args.flags:
            frame, unknown = apply_flags(frame, read_flags(args.flags))
            if unknown:
                log.warning("%d item(s) are not in %s: no control flag for them", unknown, args.flags)
            frame = apply_options(frame, read_options(args.flags))
        groups = list(frame.groupby("benchmark")) if args.per_benchmark else [("", frame)]
        seconds = record_seconds(tables)
        outputs = []
        for bench, part in groups:
            out = Path(args.out) / str(bench) if args.per_benchmark else Path(args.out)
            kept, items, report = curate(
                part,
                args.budget,
                args.threshold,
                args.rank,
                seconds,
                audit_rule=args.audit_rule,
                level=args.level,
                estimator=args.estimator,
                folds=args.folds,
                seed=args.seed,
                validation=args.folds > 0,
                irt_dim=args.irt_dim,
            )
            report["inputs"] = [str(t) for t in tables]
            report["flags"] = args.flags or ("items" if report["controls"] else None)
            outputs.append((bench, out, kept, items, report))
    except ItemsError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for bench, out, kept, items, report in outputs:
        write_outputs(out, kept, items, report)
        print((f"== {bench}\n" if args.per_benchmark else "") + summary(report, out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
