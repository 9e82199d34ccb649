"""Reduced benchmarks on real result tables, judged on models never seen in the choice.

    python -m benchmarks.curation [TABLE.csv.gz ...] [--sizes 25 50 100 200] [--seeds 5]
        [--dim 1] [--methods NAME ...] [--scale ROWS]

TABLEs are wide models x items tables (analysis/items.py); by default the two in
analysis/reference/item_matrices (ARC-Challenge from the Open LLM Leaderboard, 212 x 1172,
0/1; AlpacaEval 2.0, 57 x 805, win probabilities in [0, 1]). For each seed the models are
split 80/20 (the first of 5 seeded folds); items are chosen, and the 2PL fitted, on the
80 % only; each held-out model's full score is estimated from its scores on the chosen
items. Printed per table: method x size, the MAE of that estimate and the Kendall tau
across held-out models (mean ± sd over seeds), the random subset's plain mean first (the
baseline to beat). `--scale ROWS` instead times `analysis.curate` end to end on a
synthetic long table of about ROWS rows (wall time and peak memory).
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.heldout import Method, fold_metrics, summarise
from analysis.items import read_items

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "analysis" / "reference" / "item_matrices"
TABLES = [REFERENCE / "arc_challenge.csv.gz", REFERENCE / "alpaca_eval2.csv.gz"]
METHODS = [
    Method("random, mean (baseline)", "random"),
    Method("random, IRT", "random", "irt"),
    Method("random, p-IRT", "random", "pirt"),
    Method("random, gp-IRT", "random", "gpirt"),
    Method("anchor, weighted mean", "anchor"),
    Method("anchor, gp-IRT", "anchor", "gpirt"),
    Method("anchor-IRT, weighted mean", "anchor-irt"),
    Method("anchor-IRT, gp-IRT", "anchor-irt", "gpirt"),
    Method("entropy, mean", "entropy"),
    Method("entropy, p-IRT", "entropy", "pirt"),
    Method("entropy balanced, mean", "entropy", balance=True),
    Method("entropy balanced, p-IRT", "entropy", "pirt", balance=True),
    Method("point-biserial, mean", "pointbiserial"),
    Method("point-biserial, p-IRT", "pointbiserial", "pirt"),
]


def matrix(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(models x items scores, NaN missing; each item's category) of a table."""
    frame, _ = read_items([path])
    wide = frame.pivot(index="model", columns=["benchmark", "item"], values="correct")
    cats = frame.drop_duplicates(["benchmark", "item"]).set_index(["benchmark", "item"])["category"]
    return wide.to_numpy(dtype=float), cats.reindex(wide.columns).to_numpy()


def table(path: Path, methods: list[Method], sizes: list[int], seeds: int, dim: int) -> pd.DataFrame:
    """Method x size: MAE and Kendall tau on held-out models, mean and sd over seeds."""
    y, cats = matrix(path)
    per: dict[tuple[str, int], list[dict[str, float]]] = {}
    for seed in range(seeds):
        got = fold_metrics(y, methods, sizes, folds=5, seed=seed, categories=cats, irt_dim=dim, splits=1)
        for key, folds in got.items():
            per.setdefault(key, []).extend(folds)
    rows = []
    for (name, k), folds in per.items():
        s = summarise(folds)
        rows.append({"method": name, "items": k, **{c: s[c] for c in ("mae", "mae_sd", "tau", "tau_sd")}})
    return pd.DataFrame(rows)


def show(name: str, frame: pd.DataFrame, n_models: int, n_items: int, seeds: int) -> str:
    cell = frame.assign(
        cell=[
            f"{r.mae:.3f}±{r.mae_sd:.3f} {r.tau:.2f}±{r.tau_sd:.2f}"
            if pd.notna(r.mae_sd)
            else f"{r.mae:.3f} {r.tau:.2f}"
            for r in frame.itertuples()
        ]
    )
    wide = cell.pivot(index="method", columns="items", values="cell").reindex(frame["method"].unique())
    wide.columns = [f"{k} items: MAE, tau" for k in wide.columns]
    head = f"{name}: {n_models} models x {n_items} items; held-out 20 % of models, {seeds} seeds (mean ± sd)"
    return head + "\n" + wide.to_string()


def scale(rows: int, extra: list[str]) -> None:
    """Time `analysis.curate` on a synthetic long table of about `rows` rows (a 2PL population)."""
    rng = np.random.default_rng(0)
    models = 500
    items = rows // models
    theta, a, b = rng.normal(size=models), rng.lognormal(0, 0.3, items), rng.normal(size=items)
    y = (rng.random((models, items)) < 1 / (1 + np.exp(-(np.outer(theta, a) - b)))).astype(int)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.csv"
        pd.DataFrame(
            {
                "model": np.repeat([f"m{i:03d}" for i in range(models)], items),
                "item": np.tile([f"q{j:05d}" for j in range(items)], models),
                "category": np.tile([f"c{j % 8}" for j in range(items)], models),
                "correct": y.ravel(),
            }
        ).to_csv(path, index=False)
        start = time.perf_counter()
        cmd = [sys.executable, "-m", "analysis.curate", str(path), "--out", f"{tmp}/out", "--budget", "100", *extra]
        done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        wall = time.perf_counter() - start
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        peak, cpu = usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime
    print(done.stdout[-3000:] or done.stderr[-3000:])
    shape = f"{models * items} rows ({models} models x {items} items)"
    print(f"analysis.curate on {shape}: {wall:.1f} s wall, {cpu:.1f} s CPU, peak {peak:.0f} MB")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.curation", description=__doc__.split("\n")[0])
    p.add_argument("tables", nargs="*", type=Path, default=TABLES)
    p.add_argument("--sizes", type=int, nargs="+", default=[25, 50, 100, 200])
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--dim", type=int, default=1, help="IRT dimensions (default 1)")
    p.add_argument("--methods", nargs="+", help="only these methods (names as printed)")
    p.add_argument("--scale", type=int, help="instead: time analysis.curate on about this many rows")
    p.add_argument("--curate-args", default="", help="with --scale: more arguments for analysis.curate")
    args = p.parse_args(argv)
    if args.scale:
        scale(args.scale, args.curate_args.split())
        return 0
    methods = [m for m in METHODS if not args.methods or m.name in args.methods]
    for path in args.tables:
        y, _ = matrix(path)
        result = table(path, methods, args.sizes, args.seeds, args.dim)
        print(show(path.name, result, y.shape[0], y.shape[1], args.seeds), flush=True)
        print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
