"""Scaling Consistency: do design choices rank the same at a small and a large LLM?

    python -m analysis.scaling results.csv --metric test/synthetic/overall --out scaling/

After Apollo (arXiv 2412.10360, Sec. 2.2): a *variant* is a design (every choice except the
LLM, e.g. encoder=siglip,resampler=perceiver); its score at each model size is the mean of
its ok runs there (replicates such as seeds are averaged). For every pair of sizes this
reports R² between the per-variant scores (with a bootstrap 95% interval over variants,
and one that also draws each variant's score from its own noise: its items' interval and
its seeds' spread, `analysis.variants.score_se`), Spearman ρ (with the noisy interval),
Kendall τ, whether both sizes pick the same best variant (and in what share of noise
draws they do), and how often noise alone gives an R² as high (`noise_p`; above 0.05 the
R² is said to be explainable by noise). With three or more smaller sizes it fits
R²(size, largest) ≈ a·ln(size) + b (a curve through two points says nothing).
`--data-col design.train_set_size` adds R² of every (size, training-set size) against the
largest of both (Fig. 3 right; the pairs then use the largest training set). `--out DIR`
writes `scaling.json`, `r2_curve.png` (with two or more R² values), one
`scatter_<a>_vs_<b>.png` per pair and, with `--data-col`, `r2_data.png`.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import asdict, dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis import plots, stats
from analysis.data_scaling import analyse_data, curve_cis, curves
from analysis.variants import (
    choice_columns,
    hidden_design_columns,
    missing_cells,
    score_se,
    variant_labels,
    variant_scores,
)

MIN_FIT_POINTS = 3  # a log curve through two points fits them exactly
NOISE_P = 0.05


class ScalingError(Exception):
    """Bad input (a missing column, an unreadable table); the CLI prints it as one line."""


@dataclass
class PairResult:
    """Agreement of the per-variant scores at `size_a` (smaller) and `size_b` (larger)."""

    size_a: float
    size_b: float
    n: int
    r2: float
    ci: tuple[float, float]
    spearman: float
    kendall: float
    same_best: bool | None
    note: str | None = None
    ci_noise: tuple[float, float] = (math.nan, math.nan)  # variants resampled and scores drawn from their noise
    spearman_ci: tuple[float, float] = (math.nan, math.nan)
    same_best_rate: float = math.nan  # share of noise draws in which the two sizes pick the same best
    noise_p: float = math.nan  # P(R² >= observed) from noise alone
    noise_note: str | None = None


@dataclass
class ScalingResult:
    """Everything `scaling.json` holds."""

    metric: str
    size_col: str
    variant_cols: list[str]
    sizes: list[float]
    pairs: list[PairResult] = field(default_factory=list)
    log_fit: dict[str, Any] = field(default_factory=dict)
    missing: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    data_scaling: dict[str, Any] = field(default_factory=dict)
    noise: pd.DataFrame | None = field(default=None, repr=False)  # standard error of each score

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict with NaN as None."""
        doc = asdict(self)
        doc.pop("noise")
        return _nan_to_none(doc)


def _nan_to_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _nan_to_none(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_nan_to_none(v) for v in value]
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer | np.bool_):
        return value.item()
    return value


def check_columns(frame: pd.DataFrame, names: dict[str, list[str]], source: str) -> None:
    """Raise a one-line ScalingError naming the first absent column and the available ones."""
    for option, cols in names.items():
        for col in cols:
            if col not in frame.columns:
                raise ScalingError(
                    f"no column {col!r} ({option}) in {source}; available: {', '.join(map(str, frame.columns))}"
                )


def compare_pair(
    x: np.ndarray,
    y: np.ndarray,
    size_a: float,
    size_b: float,
    n_boot: int,
    seed: int | None,
    maximize: bool = True,
    se_x: np.ndarray | None = None,
    se_y: np.ndarray | None = None,
) -> PairResult:
    """R², its intervals, the rank agreement of two score vectors, and what their noise allows.

    `se_x`, `se_y`: each score's standard error (NaN or None: unknown, taken as exact).
    """
    note = stats.r2_note(x, y)
    r2 = stats.r2(x, y)
    ci = stats.bootstrap_ci(x, y, n_boot=n_boot, seed=seed) if note is None else (math.nan, math.nan)
    ranks = stats.rank_agreement(x, y, maximize)
    pair = PairResult(size_a, size_b, int(x.size), r2, ci, ranks.spearman, ranks.kendall, ranks.same_best, note)
    known = se_x is not None and se_y is not None and np.isfinite(se_x).any() and np.isfinite(se_y).any()
    if not known:
        pair.noise_note = "no item intervals or seeds in the table: the intervals cover the variants only"
        return pair
    pair.same_best_rate = stats.same_best_rate(x, y, se_x, se_y, maximize, max(n_boot, 200), seed)
    if note is None and n_boot > 0:
        pair.ci_noise = stats.noisy_interval(x, y, se_x, se_y, stats.r2, n_boot, seed)
        pair.spearman_ci = stats.noisy_interval(x, y, se_x, se_y, stats.spearman, n_boot, seed)
        pair.noise_p = stats.noise_only_p(x, y, se_x, se_y, observed=r2, n_draw=n_boot, seed=seed)
        if math.isfinite(pair.noise_p) and pair.noise_p > NOISE_P:
            pair.noise_note = (
                f"noise alone could explain this R²: with every variant equally good, noise gives "
                f"R² >= {r2:.3f} in {pair.noise_p:.0%} of draws"
            )
    return pair


def analyse(
    frame: pd.DataFrame,
    metric: str,
    size_col: str = "llm_size_b",
    variant_cols: list[str] | None = None,
    n_boot: int = 1000,
    seed: int | None = 0,
    maximize: bool = True,
    data_col: str | None = None,
) -> tuple[ScalingResult, pd.DataFrame]:
    """The scaling analysis of the ok rows of `frame`, and the per-variant score table.

    Without `variant_cols`, the variants are the choice columns plus any design number
    that differs within one of their cells (a note says which). With `data_col` (a
    training-set size column), the model-size pairs use the rows at its largest value, and
    `data_scaling` holds R² of every (size, data size) against the largest of both.
    """
    if "status" in frame.columns:
        ok = frame[frame["status"] == "ok"]
        dropped = len(frame) - len(ok)
        notes = [f"left out {dropped} of {len(frame)} rows whose status is not ok"] if dropped else []
    else:
        ok, notes = frame, ["no status column: every row used"]
    ok = ok[ok[size_col].notna()]
    cols = list(variant_cols) if variant_cols is not None else choice_columns(frame, size_col, metric)
    exclude = {data_col} if data_col else set()
    hidden = hidden_design_columns(ok, size_col, [c for c in cols if c != data_col], exclude)
    if hidden and variant_cols is None:
        cols += hidden
        notes.append(
            f"runs with the same choices differ in {', '.join(hidden)}: "
            "added to the variant columns (--variant-cols to choose them yourself)"
        )
    elif hidden:
        notes.append(f"runs of one variant differ in {', '.join(hidden)}: averaged as replicates")
    data_scaling: dict[str, Any] = {}
    if data_col is not None:
        cols = [c for c in cols if c != data_col]
        data_scaling = analyse_data(ok, metric, size_col, data_col, cols, n_boot, seed)
        ok = ok[pd.to_numeric(ok[data_col], errors="coerce") == data_scaling["reference"]["data_size"]]
        notes.append(
            f"model-size pairs use the rows at the largest {data_col} ({data_scaling['reference']['data_size']:g})"
        )
    scores = variant_scores(ok, metric, size_col, cols)
    noise = score_se(ok, metric, size_col, cols).reindex(index=scores.index, columns=scores.columns)
    sizes = [float(s) for s in scores.columns]
    result = ScalingResult(
        metric, size_col, cols, sizes, missing=missing_cells(scores), notes=notes, data_scaling=data_scaling
    )
    for a, b in combinations(sizes, 2):
        both = scores[[a, b]].dropna()
        x, y = both[a].to_numpy(float), both[b].to_numpy(float)
        se = noise.loc[both.index]
        pair = compare_pair(x, y, a, b, n_boot, seed, maximize, se[a].to_numpy(float), se[b].to_numpy(float))
        result.pairs.append(pair)
    result.log_fit = fit_curve(result.pairs, sizes)
    if len(sizes) < 2:
        result.notes.append(f"only {len(sizes)} size(s) in {size_col}: nothing to compare")
    cells = int(scores.notna().to_numpy().sum())
    if len(ok) > cells:
        result.notes.append(f"averaged replicates: {len(ok)} ok rows -> {cells} cells")
        spread = replicate_spread(ok, metric, size_col, cols)
        if spread is not None:
            result.notes.append(
                f"spread between replicates (seeds): sd {spread[0]:.3f} pooled over {spread[1]} repeated cells; "
                "in each score's noise as sd/sqrt(k)"
            )
    result.noise = noise
    return result, scores


def replicate_spread(ok: pd.DataFrame, metric: str, size_col: str, cols: list[str]) -> tuple[float, int] | None:
    """(pooled sd between the runs of one cell, number of cells with two or more runs), or None."""
    labels = variant_labels(ok, cols) + "@" + ok[size_col].astype(str)
    var = pd.to_numeric(ok[metric], errors="coerce").groupby(labels).var(ddof=1).dropna()
    return (math.sqrt(float(var.mean())), len(var)) if len(var) else None


def fit_curve(pairs: list[PairResult], sizes: list[float]) -> dict[str, Any]:
    """a·ln(size) + b fitted to R² with the largest size, over three or more smaller sizes."""
    reference = max(sizes) if sizes else None
    points = [(p.size_a, p.r2) for p in pairs if p.size_b == reference and math.isfinite(p.r2)]
    slope, intercept = math.nan, math.nan
    if len(points) >= MIN_FIT_POINTS:
        slope, intercept = stats.log_fit(np.array([s for s, _ in points]), np.array([r for _, r in points]))
    note = None
    if reference is None:
        note = "no sizes"
    elif not math.isfinite(slope):
        note = (
            f"needs a finite R² at {MIN_FIT_POINTS} or more sizes below the largest ({reference:g}); got {len(points)}"
        )
    return {
        "reference": reference,
        "slope": slope,
        "intercept": intercept,
        "points": [[s, r] for s, r in points],
        "note": note,
    }


def _num(value: float | None, spec: str = ".3f") -> str:
    return "-" if value is None or not math.isfinite(value) else format(value, spec)


def ci_text(ci: tuple[float, float]) -> str:
    """`[0.120, 0.870]`, or '-' without an interval."""
    return f"[{_num(ci[0])}, {_num(ci[1])}]" if math.isfinite(ci[0]) and math.isfinite(ci[1]) else "-"


def format_table(result: ScalingResult) -> str:
    """The pairs as a fixed-width text table."""
    head = (
        f"{'size_a':>8} {'size_b':>8} {'n':>4} {'R²':>7} {'95% CI variants':>16} {'+ noise':>16} "
        f"{'Spearman':>9} {'+ noise':>16} {'Kendall':>8}  same best"
    )
    lines = [head]
    for p in result.pairs:
        best = {True: "yes", False: "no", None: "-"}[p.same_best]
        rate = f" ({p.same_best_rate:.0%} of draws)" if math.isfinite(p.same_best_rate) else ""
        line = (
            f"{p.size_a:>8g} {p.size_b:>8g} {p.n:>4d} {_num(p.r2):>7} {ci_text(p.ci):>16} {ci_text(p.ci_noise):>16} "
            f"{_num(p.spearman):>9} {ci_text(p.spearman_ci):>16} {_num(p.kendall):>8}  {best}{rate}"
        )
        lines.append(line + (f"   ({p.note})" if p.note else ""))
        if p.noise_note:
            lines.append(f"    {p.noise_note}")
    fit = result.log_fit
    if fit.get("reference") is not None:
        curve = (
            f"R² with {fit['reference']:g} ≈ {fit['slope']:.3f}·ln(size) + {fit['intercept']:.3f}"
            if fit["note"] is None
            else f"log fit: none ({fit['note']})"
        )
        lines.append(curve)
    return "\n".join(lines)


def format_data(data: dict[str, Any]) -> str:
    """R² of each (size, data size) cell with the reference cell, as text lines."""
    ref = data["reference"]
    if ref["size"] is None:
        return f"R² against {data['data_col']}: none ({data['note']})"
    lines = [f"R² with size {ref['size']:g} at {data['data_col']}={ref['data_size']:g}:"]
    for p in data["points"]:
        line = f"  size {p['size']:g}, {data['data_col']}={p['data_size']:g}: R² {_num(p['r2'])} (n={p['n']})"
        lines.append(line + (f"   ({p['note']})" if p["note"] else ""))
    return "\n".join(lines + ([data["note"]] if data["note"] else []))


def write_outputs(result: ScalingResult, scores: pd.DataFrame, out: Path) -> list[Path]:
    """`scaling.json`, `r2_curve.png` (with two or more sizes) and one scatter per pair."""
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "scaling.json"]
    written[0].write_text(json.dumps(result.to_json(), indent=2, allow_nan=False) + "\n")
    fit = result.log_fit
    if len(fit["points"]) >= 2:  # one R² is a number, not a curve
        sizes, r2s = zip(*fit["points"], strict=True)
        by_size = {p.size_a: p for p in result.pairs if p.size_b == fit["reference"]}
        cis = [by_size[s].ci_noise if math.isfinite(by_size[s].ci_noise[0]) else by_size[s].ci for s in sizes]
        fig = plots.r2_curve_figure(
            sizes,
            r2s,
            cis=cis,
            reference=fit["reference"],
            slope=fit["slope"],
            intercept=fit["intercept"],
            size_col=result.size_col,
            metric=result.metric,
        )
        written.append(plots.save_figure(fig, out / "r2_curve.png"))
    noise = result.noise if result.noise is not None else scores * math.nan
    for p in result.pairs:
        both = scores[[p.size_a, p.size_b]].dropna()
        se = noise.loc[both.index]
        fig = plots.scatter_figure(
            both[p.size_a],
            both[p.size_b],
            xerr=1.96 * se[p.size_a].to_numpy(float),
            yerr=1.96 * se[p.size_b].to_numpy(float),
            size_a=p.size_a,
            size_b=p.size_b,
            r2=p.r2,
            size_col=result.size_col,
            metric=result.metric,
            labels=[str(v) for v in both.index],
        )
        written.append(plots.save_figure(fig, out / f"scatter_{p.size_a:g}_vs_{p.size_b:g}.png"))
    lines = curves(result.data_scaling) if result.data_scaling else {}
    if lines:
        ref = result.data_scaling["reference"]
        fig = plots.r2_data_figure(
            lines,
            cis=curve_cis(result.data_scaling),
            ref_size=ref["size"],
            ref_data=ref["data_size"],
            size_col=result.size_col,
            data_col=result.data_scaling["data_col"],
            metric=result.metric,
        )
        written.append(plots.save_figure(fig, out / "r2_data.png"))
    return written


def read_table(path: Path) -> pd.DataFrame:
    """A results table written by analysis.collect (.csv or .parquet)."""
    if not path.is_file():
        raise ScalingError(f"no such file: {path}")
    try:
        return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    except (ImportError, ValueError, OSError) as err:
        raise ScalingError(f"cannot read {path}: {str(err).splitlines()[0]}") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m analysis.scaling", description=__doc__.split("\n")[0])
    parser.add_argument("results", type=Path, help="table from analysis.collect (.csv or .parquet)")
    parser.add_argument("--metric", required=True, help="metric column, e.g. test/synthetic/overall")
    parser.add_argument("--size-col", default="llm_size_b", help="model-size column (numeric)")
    parser.add_argument(
        "--variant-cols",
        nargs="+",
        default=None,
        help="columns that define a variant (default: every choice column but llm)",
    )
    parser.add_argument(
        "--data-col", default=None, help="training-set size column (e.g. design.train_set_size): R² against it"
    )
    parser.add_argument("--out", type=Path, default=None, help="folder for scaling.json and PNGs")
    parser.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples (0: none)")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    parser.add_argument("--lower-is-better", action="store_true", help="for losses: best = lowest")
    args = parser.parse_args(argv)
    try:
        frame = read_table(args.results)
        check_columns(
            frame,
            {
                "--metric": [args.metric],
                "--size-col": [args.size_col],
                "--variant-cols": args.variant_cols or [],
                "--data-col": [args.data_col] if args.data_col else [],
            },
            str(args.results),
        )
        numeric = [("--metric", args.metric), ("--size-col", args.size_col), ("--data-col", args.data_col)]
        for option, col in [(o, c) for o, c in numeric if c is not None]:
            values = frame[col].dropna()
            if not pd.api.types.is_numeric_dtype(values):
                raise ScalingError(f"column {col!r} ({option}) is not numeric")
        if args.variant_cols and {args.size_col, args.metric} & set(args.variant_cols):
            raise ScalingError("--variant-cols must not include the size or the metric column")
        result, scores = analyse(
            frame,
            args.metric,
            args.size_col,
            args.variant_cols,
            args.bootstrap,
            args.seed,
            not args.lower_is_better,
            args.data_col,
        )
    except ScalingError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for note in result.notes:
        print(note, file=sys.stderr)
    for cell in result.missing:
        print(
            f"missing: {cell['variant']} has no ok score at {args.size_col}={cell['size']:g}; "
            "left out of pairs with that size",
            file=sys.stderr,
        )
    print(
        f"{args.metric}: {len(scores)} variants by {', '.join(result.variant_cols) or '(none)'}; "
        f"{args.size_col} = {', '.join(f'{s:g}' for s in result.sizes) or '(none)'}"
    )
    if len(result.sizes) < 2:
        print(f"only {len(result.sizes)} size(s) of {args.size_col} among ok rows: no pairs to compare")
    else:
        print(format_table(result))
    if result.data_scaling:
        print(format_data(result.data_scaling))
    if args.out is not None:
        written = write_outputs(result, scores, args.out)
        print(f"wrote {len(written)} files to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
