"""The modality gap: how much of a benchmark a model answers without the video (Apollo Fig. 2 left).

    python -m analysis.modality results.csv [--categories] [--out DIR]

The modality audit evaluates every question three ways: with the video
(`test/<benchmark>/<category>`), with one frame (`test_frame/...`) and with the text
alone (`test_text/...`), each with an `/overall`. Per benchmark (and, with `--categories`
or when there is only one benchmark, per category) this averages each over the ok runs
and reports the gaps video − frame and video − text: a small gap means the questions do
not need the video. `--out DIR` writes `modality_gap.csv`, `modality_gap.json` and
`modality_gap.png`.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import pandas as pd

from analysis import figure_plots, plots
from analysis.scaling import ScalingError, read_table

PREFIXES = {"test": "video", "test_frame": "frame", "test_text": "text"}
COLUMN = re.compile(r"^(test|test_frame|test_text)/([^/]+)/([^/]+)$")


def audit_columns(frame: pd.DataFrame) -> dict[str, tuple[str, str, str]]:
    """Metric column -> (modality, benchmark, category) for `test*/<benchmark>/<category>`."""
    out = {}
    for col in frame.columns:
        m = COLUMN.match(str(col))
        if m:
            out[str(col)] = (PREFIXES[m.group(1)], m.group(2), m.group(3))
    return out


def has_audit(frame: pd.DataFrame) -> bool:
    """True when the table holds frame-only or text-only metrics."""
    return any(mod != "video" for mod, _, _ in audit_columns(frame).values())


def gap_table(frame: pd.DataFrame, categories: bool | None = None) -> pd.DataFrame:
    """Tidy: one row per (group, modality) with mean, min, max and n over the ok runs.

    `group` is `<benchmark>` for the overall score and `<benchmark>/<category>` for a
    category (categories included when asked, or when there is a single benchmark).
    """
    rows = frame[frame["status"] == "ok"] if "status" in frame.columns else frame
    cols = audit_columns(rows)
    benchmarks = {b for _, b, _ in cols.values()}
    with_cats = len(benchmarks) == 1 if categories is None else categories
    records = []
    for col, (modality, bench, cat) in cols.items():
        if cat != "overall" and not with_cats:
            continue
        values = pd.to_numeric(rows[col], errors="coerce").dropna()
        if values.empty:
            continue
        records.append(
            {
                "group": bench if cat == "overall" else f"{bench}/{cat}",
                "benchmark": bench,
                "category": cat,
                "modality": modality,
                "mean": values.mean(),
                "min": values.min(),
                "max": values.max(),
                "n": len(values),
            }
        )
    table = pd.DataFrame(records, columns=["group", "benchmark", "category", "modality", "mean", "min", "max", "n"])
    order = {"video": 0, "frame": 1, "text": 2}
    return (
        table.assign(_o=table["category"].ne("overall"), _m=table["modality"].map(order))
        .sort_values(["benchmark", "_o", "group", "_m"])
        .drop(columns=["_o", "_m"])
        .reset_index(drop=True)
    )


def gaps(table: pd.DataFrame) -> pd.DataFrame:
    """Per group: video, frame and text means, and the gaps video − frame, video − text."""
    wide = table.pivot_table(index="group", columns="modality", values="mean", sort=False)
    wide = wide.reindex(columns=[m for m in ("video", "frame", "text") if m in wide.columns])
    for m in ("frame", "text"):
        if "video" in wide.columns and m in wide.columns:
            wide[f"video-{m}"] = wide["video"] - wide[m]
    return wide.reset_index()


def write_outputs(table: pd.DataFrame, out: Path) -> list[Path]:
    """`modality_gap.csv` (the gaps), `.json` (the tidy table and the gaps), `.png`."""
    out.mkdir(parents=True, exist_ok=True)
    wide = gaps(table)
    wide.to_csv(out / "modality_gap.csv", index=False)
    payload = {"table": table.to_dict(orient="records"), "gaps": wide.to_dict(orient="records")}
    (out / "modality_gap.json").write_text(json.dumps(payload, indent=2, default=float) + "\n")
    png = plots.save_figure(figure_plots.modality_figure(table), out / "modality_gap.png")
    return [out / "modality_gap.csv", out / "modality_gap.json", png]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m analysis.modality", description=__doc__.split("\n")[0])
    p.add_argument("results", type=Path, help="table from analysis.collect (.csv or .parquet)")
    p.add_argument("--categories", action="store_true", default=None, help="per category too")
    p.add_argument("--out", type=Path, default=None, help="folder for modality_gap.csv/.json/.png")
    args = p.parse_args(argv)
    try:
        frame = read_table(args.results)
        if not has_audit(frame):
            raise ScalingError(
                f"no test_frame/<benchmark>/... or test_text/... columns in {args.results}: "
                "these runs were evaluated without the modality audit"
            )
        table = gap_table(frame, args.categories)
        if table.empty:
            raise ScalingError(f"no ok run in {args.results} has a modality-audit score")
    except ScalingError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    shown = gaps(table)
    print(f"modality gap over {int(table['n'].max())} ok runs (accuracy; video-frame, video-text: the gaps)")
    print(shown.to_string(index=False, float_format=lambda v: f"{v:6.3f}", na_rep="     -"))
    if args.out is not None:
        written = write_outputs(table, args.out)
        print(f"wrote {len(written)} files to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
