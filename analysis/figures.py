"""The paper's figures of its design axes, drawn from a sweep's results table.

    python -m analysis.figures results.csv --out DIR [--metric COL] [--paper]

After Apollo (arXiv 2412.10360):
- `fig4_sampling.png`: uniform vs fps sampling (Fig. 4 left) - needs `sampler` with 2 values;
- `fig4_fps_tps.png`: fps × tokens-per-second heat map with iso tokens-per-frame lines
  (Fig. 4 right) - needs 2+ values of `design.fps` and `design.tokens_per_second`, 3+ cells;
- `fig5_encoders.png`: the metric per vision encoder or pair (Fig. 5) - needs `encoder`;
- `fig6_mixtures.png`: the metric per data mixture by its text share (Fig. 6) - needs `mixture`;
- `fig10_fps_tps_tpf.png`: the metric against fps, tokens per second and per frame
  (Fig. 10) - a panel for each of them with 2+ values.
A figure whose columns or variation are missing is skipped, and the reason is printed and
written to `figures.json` with the list of figures drawn. `--paper` draws the paper's own
numbers beside ours (analysis/reference/apollo_2412.10360/).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from analysis import axes, figure_plots, paper, plots
from analysis.scaling import ScalingError, read_table

FILES = {
    "sampling": "fig4_sampling.png",
    "fps_tps": "fig4_fps_tps.png",
    "encoders": "fig5_encoders.png",
    "mixtures": "fig6_mixtures.png",
    "fps_tps_tpf": "fig10_fps_tps_tpf.png",
}
TITLES = {
    "sampling": "Uniform vs fps sampling (Fig. 4 left)",
    "fps_tps": "Frames per second × tokens per second (Fig. 4 right)",
    "encoders": "Vision encoders (Fig. 5)",
    "mixtures": "Data mixtures (Fig. 6)",
    "fps_tps_tpf": "fps, tokens per second, tokens per frame (Fig. 10)",
}


@dataclass
class Figures:
    """The figures made (name -> Figure), those skipped (name -> why), and notes."""

    metric: str
    made: dict[str, Figure] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def make_figures(frame: pd.DataFrame, metric: str | None = None, with_paper: bool = False) -> Figures:
    """Every figure the table supports, as unsaved Figures; the rest with their reasons."""
    metric = metric or axes.default_metric(frame)
    result = Figures(metric)

    def add(name: str, summary: pd.DataFrame | str, draw: Callable[[pd.DataFrame], Figure]) -> None:
        if isinstance(summary, str):
            result.skipped[name] = summary
        else:
            result.made[name] = draw(summary)

    add(
        "sampling",
        axes.sampling(frame, metric),
        lambda t: figure_plots.sampling_figure(t, metric, paper.sampling() if with_paper else None),
    )
    add(
        "fps_tps",
        axes.fps_tps(frame, metric),
        lambda t: figure_plots.fps_tps_figure(t, metric, paper.fps_tps() if with_paper else None),
    )

    def encoders(t: pd.DataFrame) -> Figure:
        names = {n for e in t["encoder"] if (n := paper.paper_encoder_name(str(e))) is not None}
        return figure_plots.encoders_figure(t, metric, paper.encoders() if with_paper else None, names)

    add("encoders", axes.encoders(frame, metric), encoders)
    add(
        "mixtures",
        axes.mixtures(frame, metric),
        lambda t: figure_plots.mixtures_figure(t, metric, paper.mixtures() if with_paper else None),
    )
    panels, missing = axes.trends(frame, metric)
    if panels:
        ref = paper.trends() if with_paper else None
        result.made["fps_tps_tpf"] = figure_plots.trends_figure(panels, metric, axes.TRENDS, ref)
        result.notes += [f"fps_tps_tpf: no panel for {col}: {why}" for col, why in missing.items()]
    else:
        result.skipped["fps_tps_tpf"] = "; ".join(missing.values())
    return result


def save_figures(figs: Figures, out: Path) -> dict[str, Path]:
    """Each made figure as out/<file>.png, and `figures.json` listing drawn and skipped."""
    out.mkdir(parents=True, exist_ok=True)
    written = {name: plots.save_figure(fig, out / FILES[name]) for name, fig in figs.made.items()}
    payload = {
        "metric": figs.metric,
        "drawn": {n: p.name for n, p in written.items()},
        "skipped": figs.skipped,
        "notes": figs.notes,
    }
    (out / "figures.json").write_text(json.dumps(payload, indent=2) + "\n")
    return written


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m analysis.figures", description=__doc__.split("\n")[0])
    p.add_argument("results", type=Path, help="table from analysis.collect (.csv or .parquet)")
    p.add_argument("--out", type=Path, required=True, help="folder for the PNGs and figures.json")
    p.add_argument(
        "--metric",
        default=None,
        help="metric column (default: test/synthetic/overall, else the first test/<benchmark>/overall)",
    )
    p.add_argument("--paper", action="store_true", help="draw the paper's numbers beside ours")
    args = p.parse_args(argv)
    try:
        frame = read_table(args.results)
        figs = make_figures(frame, args.metric, args.paper)
    except (ScalingError, axes.AxesError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    written = save_figures(figs, args.out)
    for name, why in figs.skipped.items():
        print(f"skipped {FILES[name]}: {why}", file=sys.stderr)
    for note in figs.notes:
        print(note, file=sys.stderr)
    print(
        f"{figs.metric}: drew {len(written)} of {len(FILES)} figures in {args.out}"
        + (f": {', '.join(p.name for p in written.values())}" if written else "")
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
