"""What each figure of the paper's axes needs from a results table, or why it cannot be drawn.

Pure functions over the tidy table of analysis.collect (a row per run; choices by group
name, design numbers as `design.<key>`, metrics by key). Each returns a small summary
table (the mean, min and max of the metric over the ok runs of each setting, n, and `lo`,
`hi`: the mean's 95% interval, from the runs' spread (sd/sqrt(n)) and their item noise
(the `ci_lo/`, `ci_hi/` columns) in quadrature) or a string: the reason the figure is
skipped. A figure needs its columns and at least two
settings to compare; it is never drawn from one point, and never skipped silently.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from analysis.intervals import z_value
from analysis.variants import item_se

OVERALL = re.compile(r"^test/[^/]+/overall$")
TRENDS = {
    "design.fps": "frames per second",
    "design.tokens_per_second": "tokens per second",
    "design.tokens_per_frame": "tokens per frame",
}


class AxesError(Exception):
    """A metric the table does not have; the CLIs print it as one line."""


def default_metric(frame: pd.DataFrame) -> str:
    """`test/synthetic/overall` if present, else the first `test/<benchmark>/overall` column."""
    if "test/synthetic/overall" in frame.columns:
        return "test/synthetic/overall"
    for col in frame.columns:
        if OVERALL.match(str(col)):
            return str(col)
    raise AxesError("no test/<benchmark>/overall column in the table; name one with --metric")


def scored(frame: pd.DataFrame, metric: str) -> pd.DataFrame:
    """The ok rows with a finite value of `metric`, as column `score`."""
    if metric not in frame.columns:
        raise AxesError(
            f"no column {metric!r} (--metric) in the table; "
            f"metrics: {', '.join(c for c in frame.columns if '/' in str(c)) or 'none'}"
        )
    rows = frame[frame["status"] == "ok"] if "status" in frame.columns else frame
    rows = rows.assign(score=pd.to_numeric(rows[metric], errors="coerce"), score_se=item_se(rows, metric))
    return rows[np.isfinite(rows["score"])]


def need(rows: pd.DataFrame, col: str, at_least: int = 2) -> str | None:
    """Why `col` cannot be an axis (absent, or fewer than `at_least` values), or None."""
    if col not in rows.columns:
        return f"no column {col!r}"
    values = rows[col].dropna().unique()
    if len(values) < at_least:
        shown = ", ".join(sorted(map(str, values))) or "none"
        return f"{col!r} has {len(values)} value(s) among ok runs with a score ({shown}); needs {at_least}"
    return None


def summarize(rows: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Mean, min, max, n and the mean's 95% interval (lo, hi) of `score` per value of `by`."""
    rows = rows.dropna(subset=by)
    table = rows.groupby(by)["score"].agg(["mean", "min", "max", "count", "var"])
    if "score_se" in rows.columns:
        item_var = rows.assign(v=rows["score_se"] ** 2).groupby(by)["v"].mean()
    else:
        item_var = pd.Series(np.nan, index=table.index)
    parts = pd.concat([table["var"].fillna(0.0), item_var.fillna(0.0)], axis=1).sum(axis=1)
    known = table["var"].notna() | item_var.notna()
    se = np.sqrt(parts / table["count"]).where(known)
    table = table.assign(lo=table["mean"] - z_value() * se, hi=table["mean"] + z_value() * se)
    return table.drop(columns="var").rename(columns={"count": "n"}).reset_index()


def sampling_label(row: pd.Series) -> str:
    """`fps 2/s` or `uniform 8 frames`: the sampler and the number that sets it."""
    label = str(row["sampler"])
    frames, fps = row.get("design.num_frames"), row.get("design.fps")
    if frames is not None and pd.notna(frames):
        label += f" {float(frames):g} frames"
    if fps is not None and pd.notna(fps):
        label += f" {float(fps):g}/s"
    return label


def sampling(frame: pd.DataFrame, metric: str) -> pd.DataFrame | str:
    """Fig. 4 left: the metric per sampling setting (uniform N frames vs fps), by sampler."""
    rows = scored(frame, metric)
    if (why := need(rows, "sampler")) is not None:
        return why
    rows = rows.assign(setting=rows.apply(sampling_label, axis=1))
    return summarize(rows, ["sampler", "setting"]).sort_values(["sampler", "setting"], ignore_index=True)


def fps_tps(frame: pd.DataFrame, metric: str) -> pd.DataFrame | str:
    """Fig. 4 right: the metric on the grid of fps × tokens per second (tpf = tps / fps)."""
    rows = scored(frame, metric)
    for col in ("design.fps", "design.tokens_per_second"):
        if (why := need(rows, col)) is not None:
            return why
    grid = summarize(rows, ["design.fps", "design.tokens_per_second"])
    grid = grid.rename(columns={"design.fps": "fps", "design.tokens_per_second": "tps"})
    if len(grid) < 3:
        return f"{len(grid)} (fps, tokens per second) cells among ok runs; a heat map needs 3"
    return grid.assign(tpf=grid["tps"] / grid["fps"])


def encoders(frame: pd.DataFrame, metric: str) -> pd.DataFrame | str:
    """Fig. 5: the metric per vision encoder (or fused pair), best first."""
    rows = scored(frame, metric)
    if (why := need(rows, "encoder")) is not None:
        return why
    return summarize(rows, ["encoder"]).sort_values("mean", ascending=False, ignore_index=True)


def mixtures(frame: pd.DataFrame, metric: str) -> pd.DataFrame | str:
    """Fig. 6: the metric per data mixture, with its text and video shares, by text share."""
    rows = scored(frame, metric)
    for col, at_least in (("mixture", 2), ("design.mixture.text", 1)):
        if (why := need(rows, col, at_least)) is not None:
            return why
    table = summarize(rows, ["mixture"])
    shares = rows.groupby("mixture")[
        [c for c in ("design.mixture.text", "design.mixture.video") if c in rows.columns]
    ].mean()
    table = table.join(shares.rename(columns=lambda c: c.removeprefix("design.mixture.")), on="mixture")
    return table.sort_values(["text", "mixture"], ignore_index=True)


def trends(frame: pd.DataFrame, metric: str) -> tuple[dict[str, pd.DataFrame], dict[str, str]]:
    """Fig. 10: the metric against fps, tokens per second and tokens per frame.

    Returns ({column: summary by its value}, {column: why it has no panel}).
    """
    rows = scored(frame, metric)
    panels: dict[str, pd.DataFrame] = {}
    skipped: dict[str, str] = {}
    for col in TRENDS:
        why = need(rows, col)
        if why is None:
            panels[col] = summarize(rows, [col]).sort_values(col, ignore_index=True)
        else:
            skipped[col] = why
    return panels, skipped
