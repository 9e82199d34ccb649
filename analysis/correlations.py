"""Benchmark correlations: how alike do benchmarks and categories rank the runs?

    python -m analysis.correlations results.csv [--method pearson] [--out DIR]

After Apollo (arXiv 2412.10360, Fig. 2 right): every metric column `test/<benchmark>/<category>`
of the ok runs is a vector over runs (models); this prints the matrix of correlations
between those vectors. Two categories that correlate near 1 measure the same thing, and
one of them can go. `overall` columns are left out by default, being means of the others.
A column with fewer than 3 runs or no spread has no correlation: it is listed, not dropped
silently. With fewer than two such columns (one run, or runs that all score alike) there is
no matrix: the CLI says why in one line, exits 2 and writes nothing. `--out DIR` writes
`correlations.csv`, `correlations.json` and `correlations.png`.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from analysis import plots
from analysis.scaling import ScalingError, read_table

METRIC = re.compile(r"^test/[^/]+/[^/]+$")
METHODS = ("pearson", "spearman", "kendall")


@dataclass
class Correlations:
    """The matrix, the runs it is computed over, and the columns left out and why."""

    method: str
    columns: list[str]
    matrix: pd.DataFrame
    runs: int
    left_out: dict[str, str] = field(default_factory=dict)


def metric_columns(frame: pd.DataFrame, pattern: str | None = None, overall: bool = False) -> list[str]:
    """`test/<benchmark>/<category>` columns (or those matching `pattern`), in table order."""
    rx = re.compile(pattern) if pattern else METRIC
    cols = [c for c in frame.columns if rx.search(str(c))]
    return cols if overall else [c for c in cols if not str(c).endswith("/overall")]


def correlations(frame: pd.DataFrame, columns: list[str], method: str = "pearson") -> Correlations:
    """Correlation of every pair of `columns` over the ok rows (pairwise complete)."""
    if method not in METHODS:
        raise ScalingError(f"--method {method!r} is not one of {', '.join(METHODS)}")
    if "status" in frame.columns:
        frame = frame[frame["status"] == "ok"]
    left_out: dict[str, str] = {}
    keep = []
    for col in columns:
        values = pd.to_numeric(frame[col], errors="coerce").dropna()
        if len(values) < 3:
            left_out[col] = f"{len(values)} run(s) with a value; needs 3"
        elif values.nunique() < 2:
            left_out[col] = f"the same value ({values.iloc[0]:g}) in every run"
        else:
            keep.append(col)
    numeric = frame[keep].apply(pd.to_numeric, errors="coerce")
    matrix = numeric.corr(method=method, min_periods=3)
    runs = frame[columns].apply(pd.to_numeric, errors="coerce").notna().any(axis=1).sum() if columns else 0
    return Correlations(method, keep, matrix, int(runs), left_out)


def short(col: str) -> str:
    """`test/synthetic/spatial` -> `synthetic/spatial`: the label on the figure's axes."""
    return col.removeprefix("test/")


def write_outputs(result: Correlations, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    result.matrix.to_csv(out / "correlations.csv")
    payload = {
        "method": result.method,
        "runs": result.runs,
        "columns": result.columns,
        "matrix": [[None if pd.isna(v) else float(v) for v in row] for row in result.matrix.values],
        "left_out": result.left_out,
    }
    (out / "correlations.json").write_text(json.dumps(payload, indent=2) + "\n")
    fig = plots.heatmap_figure(
        result.matrix.values,
        [short(c) for c in result.columns],
        title=f"{result.method.capitalize()} correlation over {result.runs} runs",
    )
    png = plots.save_figure(fig, out / "correlations.png")
    return [out / "correlations.csv", out / "correlations.json", png]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m analysis.correlations", description=__doc__.split("\n")[0])
    p.add_argument("results", type=Path, help="table from analysis.collect (.csv or .parquet)")
    p.add_argument("--method", default="pearson", help=f"one of {', '.join(METHODS)}")
    p.add_argument("--columns", default=None, help="regex of metric columns (default: test/<benchmark>/<category>)")
    p.add_argument("--overall", action="store_true", help="keep the */overall columns")
    p.add_argument("--out", type=Path, default=None, help="folder for correlations.csv/.json/.png")
    args = p.parse_args(argv)
    try:
        frame = read_table(args.results)
        try:
            columns = metric_columns(frame, args.columns, args.overall)
        except re.error as err:
            raise ScalingError(f"--columns {args.columns!r} is not a regular expression: {err}") from None
        if not columns:
            raise ScalingError(f"no metric columns in {args.results} match {args.columns or METRIC.pattern}")
        result = correlations(frame, columns, args.method)
        if len(result.columns) < 2:
            raise ScalingError(
                f"no correlation to compute: {len(result.columns)} metric column(s) vary over 3 or more ok runs "
                f"({result.runs} ok run(s) in {args.results}); a correlation needs two columns over 3+ runs"
            )
    except ScalingError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for col, why in result.left_out.items():
        print(f"left out {col}: {why}", file=sys.stderr)
    print(f"{result.method} correlation of {len(result.columns)} metrics over {result.runs} ok runs")
    shown = result.matrix.rename(index=short, columns=short)
    print(shown.to_string(float_format=lambda v: f"{v:6.3f}", na_rep="     -"))
    if args.out is not None:
        written = write_outputs(result, args.out)
        print(f"wrote {len(written)} files to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
