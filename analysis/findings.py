"""What a sweep found, and how sure: the best option of each swept axis at each LLM size.

For every design axis that varies among the ok runs (a choice column other than the LLM
and the seed), at each LLM size: each option's score (the mean over its runs) with a 95%
interval, the best option, and its margin over every other option, paired over the eval
items both were scored on (`items.csv` beside each run: a paired bootstrap stratified by
category, McNemar when each option is one run; the seeds' spread, where a design was run
with several seeds, widens the interval). A margin whose interval holds 0 is *within
noise*. Then whether each smaller size picks the same best option as the largest, and,
for designs run with several seeds, how far apart the seeds land. Without `items.csv`
(W&B records) the margins are unpaired, from each run's interval columns.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from analysis import intervals, items
from analysis import report_render as rr
from analysis.intervals import Paired, paired_difference
from analysis.variants import _keys, choice_columns, item_se


@dataclass
class Option:
    """One option of an axis at one size: its runs' mean score and 95% interval."""

    name: str
    score: float
    lo: float
    hi: float
    runs: int


@dataclass
class Margin:
    """Best option minus another, at one size."""

    best: str
    other: str
    diff: float
    lo: float
    hi: float
    how: str  # "paired over N items" / "unpaired"
    p_mid: float | None = None

    @property
    def known(self) -> bool:
        """Whether there is an interval at all (items.csv, or the runs' interval columns)."""
        return math.isfinite(self.lo) and math.isfinite(self.hi)

    @property
    def within_noise(self) -> bool:
        """The interval holds 0 (False without an interval: unknown is not 'within noise')."""
        return self.known and self.lo <= 0 <= self.hi


@dataclass
class AxisFindings:
    axis: str
    options: dict[float, list[Option]] = field(default_factory=dict)  # size -> best first
    margins: dict[float, list[Margin]] = field(default_factory=dict)


def _metric_parts(metric: str) -> tuple[str, str, str]:
    prefix, bench, cat = [*metric.split("/"), "", "", ""][:3]
    modality = {v: k for k, v in intervals.PREFIX.items()}.get(prefix, "video")
    return modality, bench, cat


def load_items(frame: pd.DataFrame, metric: str) -> dict[str, pd.DataFrame]:
    """run_dir -> its items scored for `metric` (index: item; columns: category, correct)."""
    modality, bench, cat = _metric_parts(metric)
    out: dict[str, pd.DataFrame] = {}
    for run_dir in frame["run_dir"].astype(str):
        path = Path(run_dir) / items.TABLE_NAME
        if not path.is_file():
            continue
        try:
            t = items.read_table(path)
        except items.ItemsError:
            continue
        t = t[(t["modality"] == modality) & (t["benchmark"].isin([bench, ""]))]
        if cat != "overall":
            t = t[t["category"] == cat]
        out[run_dir] = t.set_index("item")[["category", "correct"]]
    return out


def _seed_var(runs: pd.DataFrame, design: list[str]) -> float:
    """Pooled variance of the score between runs of one design (seeds); NaN without repeats."""
    if "seed" not in runs.columns or runs.empty:
        return math.nan
    cells = runs.groupby(_keys(runs, design).apply(lambda r: "\x1f".join(r), axis=1))["score"]
    var = cells.var(ddof=1).dropna()
    return float(var.mean()) if len(var) else math.nan


def _option(name: str, runs: pd.DataFrame, metric: str, seed_var: float) -> Option:
    score = float(runs["score"].mean())
    parts = []
    ise = item_se(runs, metric).dropna()
    if len(ise):
        parts.append(float((ise**2).mean()))
    if math.isfinite(seed_var):
        parts.append(seed_var / len(runs))
    se = math.sqrt(sum(parts)) if parts else math.nan
    z = intervals.z_value()
    return Option(name, score, score - z * se, score + z * se, len(runs))


def _pooled(runs: pd.DataFrame, table: dict[str, pd.DataFrame]) -> pd.DataFrame | None:
    """Per item: category and correctness averaged over the runs (items all of them have)."""
    parts = [table[str(r)] for r in runs["run_dir"] if str(r) in table]
    if not parts or len(parts) < len(runs):
        return None
    common = parts[0].index
    for p in parts[1:]:
        common = common.intersection(p.index)
    if common.empty:
        return None
    correct = np.mean([p.loc[common, "correct"].to_numpy(float) for p in parts], axis=0)
    return pd.DataFrame({"category": parts[0].loc[common, "category"], "correct": correct}, index=common)


def margin(best: Option, other: Option, a: pd.DataFrame | None, b: pd.DataFrame | None, extra_se: float) -> Margin:
    """best - other: paired over the items both have, else from the two intervals."""
    if a is not None and b is not None:
        common = a.index.intersection(b.index)
        if len(common):
            p: Paired = paired_difference(
                a.loc[common, "correct"].to_numpy(float),
                b.loc[common, "correct"].to_numpy(float),
                a.loc[common, "category"].to_numpy(),
                extra_se=extra_se if math.isfinite(extra_se) else 0.0,
            )
            return Margin(best.name, other.name, p.diff, p.lo, p.hi, f"paired over {p.n_items} items", p.p_mid)
    z = intervals.z_value()
    se = math.hypot((best.hi - best.lo) / (2 * z), (other.hi - other.lo) / (2 * z))
    diff = best.score - other.score
    return Margin(best.name, other.name, diff, diff - z * se, diff + z * se, "unpaired")


def axis_findings(
    frame: pd.DataFrame, metric: str, axis: str, design: list[str], table: dict[str, pd.DataFrame]
) -> AxisFindings:
    """Options, best and margins of one axis at each LLM size."""
    rows = frame.dropna(subset=["llm_size_b"])
    found = AxisFindings(axis)
    seed_var = _seed_var(rows, design)
    for size, at in rows.groupby("llm_size_b", sort=True):
        opts = {str(o): runs for o, runs in at.groupby(at[axis].astype(str), sort=True)}
        if len(opts) < 2:
            continue
        ranked = sorted((_option(o, r, metric, seed_var) for o, r in opts.items()), key=lambda o: -o.score)
        found.options[float(size)] = ranked
        best = ranked[0]
        pooled = {o: _pooled(r, table) for o, r in opts.items()}
        found.margins[float(size)] = [
            margin(best, o, pooled[best.name], pooled[o.name], math.sqrt(seed_var / best.runs + seed_var / o.runs))
            for o in ranked[1:]
        ]
    return found


def scored_rows(frame: pd.DataFrame, metric: str) -> pd.DataFrame:
    """The ok rows with a finite score (as column `score`)."""
    ok = frame[frame["status"] == "ok"] if "status" in frame.columns else frame
    ok = ok.assign(score=pd.to_numeric(ok[metric], errors="coerce"))
    return ok[np.isfinite(ok["score"])]


def swept_axes(rows: pd.DataFrame) -> list[str]:
    """Choice columns (not the LLM, not the seed) with two or more values among `rows`."""
    return [c for c in choice_columns(rows, "llm_size_b", "score") if rows[c].astype(str).nunique() > 1]


@dataclass
class SeedSpread:
    """One design run with several seeds: the spread and the paired difference of two of them."""

    design: str
    seeds: list[str]
    scores: list[float]
    margin: Margin | None


def seed_spreads(
    rows: pd.DataFrame, design: list[str], table: dict[str, pd.DataFrame], metric: str
) -> list[SeedSpread]:
    """Designs with two or more seeds: their scores and the first two seeds compared, paired."""
    if "seed" not in rows.columns:
        return []
    out = []
    labels = _keys(rows, design).apply(lambda r: ",".join(f"{c}={r[c]}" for c in design), axis=1)
    for label, runs in rows.groupby(labels, sort=True):
        if len(runs) < 2:
            continue
        runs = runs.sort_values("seed")
        one, two = (_option(f"seed {s}", runs.iloc[[i]], metric, math.nan) for i, s in enumerate(runs["seed"].iloc[:2]))
        a, b = table.get(str(runs["run_dir"].iloc[1])), table.get(str(runs["run_dir"].iloc[0]))
        out.append(
            SeedSpread(
                str(label),
                [str(s) for s in runs["seed"]],
                [float(v) for v in runs["score"]],
                margin(two, one, a, b, math.nan),
            )
        )
    return out


def _signed(m: Margin) -> str:
    if not m.known:
        return f"{m.diff:+.3f} (no items.csv and no interval columns: noise unknown)"
    test = f", McNemar mid-p {m.p_mid:.2g}" if m.p_mid is not None else ""
    verdict = "within noise" if m.within_noise else "beyond noise"
    return f"{m.diff:+.3f} [{m.lo:+.3f}, {m.hi:+.3f}] ({m.how}{test}): {verdict}"


def _size(size: float) -> str:
    return f"{size:g}B"


def blocks(frame: pd.DataFrame, metric: str) -> list[rr.Block]:
    """The report's first section: per axis and size the best option and its margins; seeds."""
    rows = scored_rows(frame, metric)
    out: list[rr.Block] = [
        rr.Heading("Findings"),
        rr.Para(
            f"Scores of {metric}, each with its 95% interval. A margin is the best option's score minus "
            "another's at the same LLM size, paired over the eval items both answered (bootstrap over "
            "items stratified by category, widened by the seeds' spread where designs were repeated; "
            "McNemar's mid-p where each option is one run). A margin whose interval holds 0 is within noise."
        ),
    ]
    if rows.empty:
        return [*out, rr.Para("No ok run has a score: nothing to compare.")]
    table = load_items(rows, metric)
    design = [*choice_columns(rows, "llm_size_b", "score")] + (["llm"] if "llm" in rows.columns else [])
    if len(table) < len(rows):
        out.append(
            rr.Para(f"{len(rows) - len(table)} of {len(rows)} runs have no items.csv: their margins are unpaired.")
        )
    axes = swept_axes(rows)
    noise: list[str] = []
    unknown = 0
    if not axes:
        out.append(rr.Para("No design axis varies among the ok runs: there is no option to pick."))
    for axis in axes:
        f = axis_findings(rows, metric, axis, design, table)
        lines = []
        for size, opts in f.options.items():
            best = opts[0]
            lines.append(
                f"{_size(size)}: best {axis}={best.name}, "
                f"{intervals.interval_text(best.score, best.lo, best.hi)} over {best.runs} run(s); "
                + "; ".join(f"minus {m.other}: {_signed(m)}" for m in f.margins[size])
            )
            noise += [f"{axis} at {_size(size)}: {m.best} vs {m.other}" for m in f.margins[size] if m.within_noise]
            unknown += sum(not m.known for m in f.margins[size])
        if len(f.options) >= 2:
            largest = max(f.options)
            top = f.options[largest][0].name
            by_other = {m.other: m for m in f.margins[largest]}
            for size in [s for s in f.options if s != largest]:
                pick = f.options[size][0].name
                tied = [o.name for o in f.options[size] if o.score == f.options[size][0].score]
                if len(tied) > 1:
                    lines.append(
                        f"{_size(size)} ties {', '.join(tied)}: no pick to compare with {_size(largest)}'s {top}."
                    )
                elif pick == top:
                    lines.append(f"{_size(size)} picks the same best as {_size(largest)} ({top}).")
                else:
                    m = by_other[pick]
                    lines.append(
                        f"{_size(size)} picks {pick}, {_size(largest)} picks {top}: at {_size(largest)} "
                        f"{top} minus {pick} is {_signed(m)}"
                        + (
                            " - the flip may be noise."
                            if m.within_noise or not m.known
                            else " - the small model would pick wrong."
                        )
                    )
        elif f.options:
            lines.append("One LLM size: whether a smaller model picks the same is not measured.")
        out += [rr.Heading(f"{axis}", 3), rr.Bullets(lines or [f"{axis} has two options at no LLM size."])]
    spreads = seed_spreads(rows, design, table, metric)
    if spreads:
        lines = []
        for sp in spreads:
            sm = sp.margin
            spread = float(np.std(sp.scores, ddof=1))
            lines.append(
                f"{sp.design}: seeds {', '.join(sp.seeds)} score {', '.join(f'{v:.3f}' for v in sp.scores)} "
                f"(sd {spread:.3f})" + (f"; {sm.best} minus {sm.other}: {_signed(sm)}" if sm else "")
            )
            if sm is not None and sm.within_noise:
                noise.append(f"seeds of {sp.design}")
        out += [rr.Heading("Seeds", 3), rr.Bullets(lines)]
    closing = "Within noise: " + "; ".join(noise) + "." if noise else "No compared difference is within noise."
    if unknown:
        closing += f" {unknown} difference(s) have no interval (no items.csv, no interval columns): noise unknown."
    out.append(rr.Para(closing))
    return out
