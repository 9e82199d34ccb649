"""Every table and figure of one sweep in one report: report.md and a self-contained report.html.

    python -m analysis.report outputs/sweeps/demo [--metric COL] [--paper] [--out DIR]

Opens with the findings (analysis.findings: per swept axis, the best option at each LLM
size with its paired margin and 95% interval, whether smaller sizes pick the same best as
the largest, what is within noise, how far seeds land), then runs the whole analysis over
the sweep's run directories: collect (the results table, each score with its interval;
failed and missing runs listed with their reasons), Scaling Consistency (with two or more
LLM sizes; R² against training-set size when `design.train_set_size` varies), benchmark
correlations, the modality gap (when the runs carry the modality audit) and the figures of
the paper's axes (each drawn when the sweep varies what it needs; the rest listed with
why). Writes into SWEEP_DIR/report/ (or --out): results.csv, one folder per analysis,
report.md (PNG links) and report.html (PNGs embedded). The figures and tables are also
logged to W&B when it is online (WANDB_MODE neither offline nor disabled, and a key).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from analysis import axes, correlations, figures, findings, intervals, modality, scaling
from analysis import report_render as rr
from analysis.collect import CollectError, load_records, records_to_frame, write_table
from analysis.report_wandb import log_report
from analysis.variants import choice_columns


@dataclass
class Report:
    """The blocks of the page, plus the images and tables to log elsewhere."""

    title: str
    sweep: str = ""
    wandb: dict[str, str | None] = field(default_factory=dict)  # project and entity of the runs
    blocks: list[rr.Block] = field(default_factory=list)
    images: dict[str, Path] = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)

    def image(self, out: Path, path: Path, caption: str) -> None:
        self.blocks.append(rr.Image(path.relative_to(out).as_posix(), caption))
        self.images[path.relative_to(out).with_suffix("").as_posix()] = path

    def table(self, name: str, frame: pd.DataFrame, caption: str = "") -> None:
        self.blocks.append(rr.Table(frame, caption))
        self.tables[name] = frame


# design numbers worth a column in the runs table when they differ between runs
DESIGN_SHOWN = (
    "design.fps",
    "design.num_frames",
    "design.tokens_per_frame",
    "design.tokens_per_second",
    "design.train_set_size",
    "design.mixture.text",
)


def runs_section(rep: Report, frame: pd.DataFrame, metric: str | None) -> None:
    """Every run: status, the choices that vary, size and the test/ scores; then the problems."""
    choices = choice_columns(frame, "llm_size_b") + (["llm"] if "llm" in frame.columns else [])
    varying = [c for c in choices if frame[c].astype(str).nunique() > 1]
    varying += [c for c in DESIGN_SHOWN if c in frame.columns and frame[c].astype(str).nunique() > 1]
    fixed = {c: frame[c].dropna().iloc[0] for c in choices if c not in varying and frame[c].notna().any()}
    scores = sorted(c for c in frame.columns if str(c).startswith("test/"))
    names = frame["run_dir"].map(lambda p: Path(str(p)).name)
    # Hydra names a run by its overrides: long names are left to results.csv and the list below
    shown = ["run_dir"] if names.str.len().max() <= 40 else []
    table = frame[[*shown, "status", *varying, "llm_size_b", *scores]].copy()
    if shown:
        table["run_dir"] = names
    if metric is not None and metric in table.columns and intervals.LO + metric in frame.columns:
        lo, hi = frame[intervals.LO + metric], frame[intervals.HI + metric]
        table.insert(
            table.columns.get_loc(metric) + 1,
            "95% interval",
            [f"[{rr.cell(a)}, {rr.cell(b)}]" if pd.notna(a) else "-" for a, b in zip(lo, hi, strict=True)],
        )
    counts = frame["status"].value_counts().to_dict()
    rep.blocks += [
        rr.Heading("Runs"),
        rr.Para(
            f"{len(frame)} runs: {counts.get('ok', 0)} ok, {counts.get('failed', 0)} failed, "
            f"{counts.get('missing', 0)} missing. Metric of the analyses: {metric or 'none'}. "
            f"Same in every run: {', '.join(f'{k}={v}' for k, v in fixed.items()) or 'nothing'}."
        ),
    ]
    rep.table("runs", table.rename(columns=lambda c: str(c).removeprefix("test/")))
    bad = frame[frame["status"] != "ok"]
    rep.blocks += [
        rr.Heading("Failed and missing runs", 3),
        rr.Bullets([f"{r.status}: {r.run_dir}: {r.reason}" for r in bad.itertuples(index=False)])
        if len(bad)
        else rr.Para("None: every run finished."),
    ]


def scaling_section(rep: Report, frame: pd.DataFrame, metric: str, out: Path, n_boot: int) -> None:
    rep.blocks.append(rr.Heading("Scaling Consistency (Fig. 3, Fig. 15)"))
    ok = frame[frame["status"] == "ok"]
    sizes = sorted(pd.to_numeric(ok.get("llm_size_b"), errors="coerce").dropna().unique())
    if len(sizes) < 2:
        rep.blocks.append(rr.Para(f"Skipped: the ok runs have {len(sizes)} LLM size(s); R² needs two."))
        return
    data_col = "design.train_set_size"
    varies = data_col in ok.columns and ok[data_col].nunique() > 1
    result, scores = scaling.analyse(frame, metric, n_boot=n_boot, data_col=data_col if varies else None)
    written = scaling.write_outputs(result, scores, out / "scaling")
    pairs = pd.DataFrame(
        [
            {
                "size_a": p.size_a,
                "size_b": p.size_b,
                "n": p.n,
                "R²": p.r2,
                "95% CI (variants)": scaling.ci_text(p.ci),
                "95% CI (+ score noise)": scaling.ci_text(p.ci_noise),
                "noise alone ≥ R²": p.noise_p,
                "Spearman": p.spearman,
                "Spearman 95% CI": scaling.ci_text(p.spearman_ci),
                "Kendall": p.kendall,
                "same best": p.same_best,
                "same best under noise": p.same_best_rate,
                "note": p.note,
            }
            for p in result.pairs
        ]
    )
    by = [c for c in result.variant_cols if ok[c].astype(str).nunique() > 1]
    rep.blocks.append(
        rr.Para(
            f"Variants by {', '.join(by) or '(none: one variant)'}; "
            f"{len(scores)} variants; scores of {metric}. Two variants always fit a "
            "line, so R² needs three or more."
        )
    )
    rep.table(
        "scaling_pairs",
        pairs,
        "R² and Spearman with intervals over variants and, where the table has each score's "
        "interval or seeds, over each score's noise too; 'noise alone ≥ R²': the share of draws "
        "in which noise alone, every variant equally good, gives an R² as high",
    )
    rep.table(
        "variant_scores",
        scores.reset_index().rename(columns=lambda c: f"{c:g}" if isinstance(c, float) else c),
        "Mean score per variant (rows) and LLM size (columns)",
    )
    if result.data_scaling:
        rep.blocks.append(rr.Para(scaling.format_data(result.data_scaling)))
    notes = [f"{p.size_a:g} vs {p.size_b:g}: {p.noise_note}" for p in result.pairs if p.noise_note]
    notes += result.notes + [f"missing: {m['variant']} at {m['size']:g}" for m in result.missing]
    if notes:
        rep.blocks.append(rr.Bullets(notes))
    captions = {
        "r2_curve": "R² with the largest LLM against LLM size (Fig. 3 left)",
        "r2_data": "R² against training-set size (Fig. 3 right)",
    }
    for path in written[1:]:
        pair = path.stem.removeprefix("scatter_").replace("_vs_", " vs ")
        rep.image(out, path, captions.get(path.stem, f"per-variant scores at LLM sizes {pair} (Fig. 15)"))


def correlations_section(rep: Report, frame: pd.DataFrame, out: Path) -> None:
    rep.blocks.append(rr.Heading("Benchmark correlations (Fig. 2 right)"))
    cols = correlations.metric_columns(frame)
    if not cols:
        rep.blocks.append(rr.Para("Skipped: no test/<benchmark>/<category> columns."))
        return
    result = correlations.correlations(frame, cols)
    if result.left_out:
        rep.blocks.append(rr.Bullets([f"left out {c}: {why}" for c, why in result.left_out.items()]))
    if len(result.columns) < 2:
        rep.blocks.append(
            rr.Para(
                f"Skipped: {len(result.columns)} category(ies) with scores that vary over "
                "three or more ok runs; a correlation needs two."
            )
        )
        return
    written = correlations.write_outputs(result, out / "correlations")
    matrix = result.matrix.rename(index=correlations.short, columns=correlations.short)
    rep.table("correlations", matrix.reset_index(names=""), f"{result.method} over {result.runs} ok runs")
    rep.image(out, written[-1], "correlation between categories across runs")


def modality_section(rep: Report, frame: pd.DataFrame, out: Path) -> None:
    rep.blocks.append(rr.Heading("Modality gap (Fig. 2 left)"))
    table = modality.gap_table(frame) if modality.has_audit(frame) else pd.DataFrame()
    if table.empty:
        rep.blocks.append(
            rr.Para("Skipped: the runs carry no test_frame/ or test_text/ scores (the modality audit was not run).")
        )
        return
    written = modality.write_outputs(table, out / "modality")
    rep.table("modality_gap", modality.gaps(table), "mean accuracy over ok runs by input; the gaps")
    rep.image(out, written[-1], "accuracy with the video, one frame, the text only")


def figures_section(rep: Report, frame: pd.DataFrame, metric: str, out: Path, with_paper: bool) -> None:
    rep.blocks.append(rr.Heading("The paper's axes (Figs. 4, 5, 6, 10)"))
    figs = figures.make_figures(frame, metric, with_paper)
    written = figures.save_figures(figs, out / "figures")
    for name, path in written.items():
        rep.image(out, path, figures.TITLES[name])
    skipped = [f"{figures.FILES[n]}: skipped, {why}" for n, why in figs.skipped.items()]
    if skipped or figs.notes:
        rep.blocks.append(rr.Bullets(skipped + figs.notes))


def build(
    sweep_dir: Path, out: Path, metric: str | None = None, with_paper: bool = False, n_boot: int = 1000
) -> Report:
    """Collect the sweep and run every analysis it supports, writing files under `out`."""
    records = load_records([sweep_dir])
    if not records:
        raise CollectError(f"no result.json and no run directories under {sweep_dir}")
    frame = records_to_frame(records)
    out.mkdir(parents=True, exist_ok=True)
    write_table(frame, out / "results.csv")
    ok = frame[frame["status"] == "ok"]
    metric = metric or (axes.default_metric(frame) if len(ok) else None)
    if metric is not None and metric not in frame.columns:
        raise axes.AxesError(f"no column {metric!r} (--metric) in the results of {sweep_dir}")
    sweep = next((s for s in frame["sweep"].dropna()), sweep_dir.name)
    loggers = [(r.get("config") or {}).get("logger") or {} for r in records]
    logger = next((lg for lg in loggers if lg.get("name") == "wandb"), {})
    rep = Report(
        f"Sweep report: {sweep}",
        str(sweep),
        {"project": logger.get("project") or "apollo-lab", "entity": logger.get("entity")},
    )
    rep.blocks += [
        rr.Heading(rep.title, 1),
        rr.Para(
            f"Sweep directory {sweep_dir}; results table results.csv (one row per run). "
            "Figures are PNGs beside this report; ours are means over ok runs with 95% interval bars."
        ),
    ]
    if metric is not None:
        rep.blocks += findings.blocks(frame, metric)
    runs_section(rep, frame, metric)
    if metric is None:
        rep.blocks.append(rr.Para("No ok run has a score: nothing to analyse yet."))
        return rep
    scaling_section(rep, frame, metric, out, n_boot)
    correlations_section(rep, frame, out)
    modality_section(rep, frame, out)
    figures_section(rep, frame, metric, out, with_paper)
    return rep


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m analysis.report", description=__doc__.split("\n")[0])
    p.add_argument("sweep_dir", type=Path, help="a sweep's folder, e.g. outputs/sweeps/demo")
    p.add_argument("--out", type=Path, default=None, help="report folder (default SWEEP_DIR/report)")
    p.add_argument("--metric", default=None, help="metric column (default test/synthetic/overall)")
    p.add_argument("--paper", action="store_true", help="draw the paper's numbers beside ours")
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples of R²")
    args = p.parse_args(argv)
    out = args.out or args.sweep_dir / "report"
    try:
        if not args.sweep_dir.is_dir():
            raise CollectError(f"no such directory: {args.sweep_dir}")
        rep = build(args.sweep_dir, out, args.metric, args.paper, args.bootstrap)
    except (CollectError, axes.AxesError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    (out / "report.md").write_text(rr.to_markdown(rep.blocks))
    (out / "report.html").write_text(rr.to_html(rep.blocks, out, rep.title))
    print(f"{len(rep.images)} figures, {len(rep.tables)} tables -> {out / 'report.html'} (and report.md)")
    print(log_report(rep.sweep, rep.images, rep.tables, **rep.wandb))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
