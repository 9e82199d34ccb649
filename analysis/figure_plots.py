"""Drawing the paper's axes: sampling, fps × tokens, encoders, mixtures, trends, modality gap.

Each `*_figure` takes the summary tables of analysis.axes (ours: `mean`, `min`, `max`,
`n` per setting, and `lo`, `hi`: the 95% interval of the mean, drawn as the bars) and,
optionally, analysis.paper's tables of the same shape, and returns
a matplotlib Figure (no pyplot, no global state) with "ours" on the left axes and the
paper's numbers on the right. Ours are in the metric's own units (accuracy 0-1); the
paper's are ApolloBench overall in %, so the two never share an axis.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from analysis.paper import SOURCE
from analysis.plots import new_figure

PAPER_Y = "ApolloBench overall (%)"
SAMPLER_COLORS = {"fps": "C2", "uniform": "C3"}


def _axes(
    paper: bool, width: float = 5.0, height: float = 3.8, rows: int = 1, cols: int = 1
) -> tuple[Figure, np.ndarray]:
    """A figure with `cols` axes of ours, doubled (paper's to the right or below) with `paper`."""
    shape = (rows * (2 if paper and cols > 1 else 1), cols * (2 if paper and cols == 1 else 1))
    fig = new_figure(width * shape[1], height * shape[0])
    return fig, np.atleast_1d(fig.subplots(*shape, squeeze=False)).ravel()


def _errors(t: pd.DataFrame) -> np.ndarray | None:
    """Bars: the 95% interval (lo, hi) where known, else min-max over several runs (the paper's tables)."""
    if "lo" in t.columns and t["lo"].notna().any():
        err = np.vstack([t["mean"] - t["lo"], t["hi"] - t["mean"]]).clip(min=0)
        return np.where(np.isfinite(err), err, 0.0)
    if "min" not in t.columns or (t["n"] <= 1).all():
        return None
    return np.vstack([t["mean"] - t["min"], t["max"] - t["mean"]]).clip(min=0)


def _tops(t: pd.DataFrame, err: np.ndarray | None) -> pd.Series:
    return t["mean"] if err is None else t["mean"] + pd.Series(err[1], index=t.index)


def _bars(ax: Axes, labels: list[str], t: pd.DataFrame, colors: list[str], horizontal: bool = False) -> None:
    pos = np.arange(len(labels))
    err = _errors(t)
    if horizontal:
        ax.barh(pos, t["mean"], xerr=err, color=colors, capsize=3)
        ax.set_yticks(pos, labels)
        ax.invert_yaxis()  # best on top
        ax.margins(x=0.15)
    else:
        ax.bar(pos, t["mean"], yerr=err, color=colors, capsize=3)
        ax.set_xticks(pos, labels, rotation=20, ha="right")
        ax.margins(y=0.1)
    tops = _tops(t, err)  # the label goes past the error bar
    for p, v, top in zip(pos, t["mean"], tops, strict=True):
        xy = (top, p) if horizontal else (p, top)
        align: dict[str, Any] = {"va": "center"} if horizontal else {"ha": "center", "va": "bottom"}
        ax.annotate(
            f"{v:.3g}", xy, fontsize=7, xytext=(3, 0) if horizontal else (0, 2), textcoords="offset points", **align
        )


def sampling_figure(ours: pd.DataFrame, metric: str, paper: pd.DataFrame | None = None) -> Figure:
    """Fig. 4 left: the metric per sampling setting; the paper's uniform-N, tested two ways."""
    fig, axes = _axes(paper is not None)
    kinds = sorted(ours["sampler"].astype(str).unique())
    # fps green and uniform red in both panels, as in the paper's legend; other samplers blue...
    colors = [SAMPLER_COLORS.get(str(s), f"C{4 + kinds.index(str(s))}") for s in ours["sampler"]]
    _bars(axes[0], [f"{s} (n={n})" for s, n in zip(ours["setting"], ours["n"], strict=True)], ours, colors)
    axes[0].set(xlabel="sampling", ylabel=metric, title="Ours: uniform vs fps sampling")
    if paper is not None:
        ax = axes[1]
        frames = sorted(paper["train_frames"].unique())
        for i, (tested, t) in enumerate(paper.groupby("tested", sort=True)):
            t = t.set_index("train_frames").reindex(frames)
            color = SAMPLER_COLORS["fps" if "fps" in str(tested) else "uniform"]
            ax.bar(np.arange(len(frames)) + (i - 0.5) * 0.4, t["mean"], width=0.4, label=str(tested), color=color)
        ax.set_xticks(np.arange(len(frames)), [str(f) for f in frames])
        ax.set(xlabel="frames sampled uniformly in training", ylabel=PAPER_Y, title=f"{SOURCE}, Table 11")
        ax.set_ylim(0, paper["mean"].max() * 1.25)  # room for the legend above the bars
        ax.legend(fontsize="small", loc="upper left", ncols=2)
    return fig


def _log_edges(values: np.ndarray) -> np.ndarray:
    """Cell edges on a log axis: geometric midpoints, padded by half a step at each end."""
    v = np.log(np.sort(np.unique(values)))
    mid = (v[1:] + v[:-1]) / 2
    return np.exp(np.concatenate([[v[0] - (mid[0] - v[0])], mid, [v[-1] + (v[-1] - mid[-1])]]))


def _heat(ax: Axes, t: pd.DataFrame, label: str, fig: Figure) -> None:
    fps, tps = np.sort(t["fps"].unique()), np.sort(t["tps"].unique())
    grid = np.full((fps.size, tps.size), np.nan)
    for r in t.itertuples(index=False):
        grid[np.searchsorted(fps, r.fps), np.searchsorted(tps, r.tps)] = r.mean
    xe, ye = _log_edges(tps), _log_edges(fps)
    mesh = ax.pcolormesh(xe, ye, np.ma.masked_invalid(grid), cmap="viridis")
    fig.colorbar(mesh, ax=ax, label=label)
    for i, f in enumerate(fps):
        for j, s in enumerate(tps):
            if np.isfinite(grid[i, j]):
                ax.text(s, f, f"{grid[i, j]:.3g}", ha="center", va="center", fontsize=6, color="white")
    line = np.geomspace(ye[0], ye[-1], 50)
    for tpf in sorted(t["tpf"].unique()):  # iso tokens-per-frame: tps = tpf · fps
        ax.plot(tpf * line, line, "--", color="white", lw=0.8, alpha=0.8)
        if xe[0] <= tpf * line[-1] <= xe[-1]:
            ax.annotate(
                f"{tpf:g}/frame",
                (tpf * line[-1], line[-1]),
                fontsize=6,
                color="white",
                ha="right",
                va="top",
                annotation_clip=True,
            )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(xe[0], xe[-1])
    ax.set_ylim(ye[0], ye[-1])
    ax.set_xticks(tps, [f"{v:g}" for v in tps])
    ax.set_yticks(fps, [f"{v:g}" for v in fps])
    ax.minorticks_off()
    ax.set(xlabel="tokens per second", ylabel="frames per second")


def fps_tps_figure(ours: pd.DataFrame, metric: str, paper: pd.DataFrame | None = None) -> Figure:
    """Fig. 4 right: heat maps of fps × tokens per second with iso tokens-per-frame lines."""
    fig, axes = _axes(paper is not None, width=5.5)
    _heat(axes[0], ours, metric, fig)
    axes[0].set_title("Ours: fps × tokens per second")
    if paper is not None:
        _heat(axes[1], paper, PAPER_Y, fig)
        axes[1].set_title(f"{SOURCE}, Table 10")
    return fig


def encoders_figure(
    ours: pd.DataFrame, metric: str, paper: pd.DataFrame | None = None, highlight: Collection[str] = ()
) -> Figure:
    """Fig. 5: the metric per encoder (best on top); the paper's 19, ours in its list outlined."""
    bars = len(paper) if paper is not None else len(ours)
    fig, axes = _axes(paper is not None, height=max(3.0, 0.3 * bars + 1))
    colors = ["C1" if "+" in str(e) else "C0" for e in ours["encoder"]]
    _bars(axes[0], [f"{e} (n={n})" for e, n in zip(ours["encoder"], ours["n"], strict=True)], ours, colors, True)
    axes[0].set(xlabel=metric, ylabel="vision encoder", title="Ours: vision encoders")
    if paper is not None:
        ax = axes[1]
        colors = ["C1" if k == 2 else "C0" for k in paper["n_encoders"]]
        _bars(ax, list(paper["encoder"]), paper, colors, True)
        for patch, name in zip(ax.patches, paper["encoder"], strict=True):
            if name in highlight:
                patch.set_edgecolor("black")
                patch.set_linewidth(2)
        ax.set(xlabel=PAPER_Y, ylabel="vision encoder(s)")
        # right-aligned: centred over these narrow axes, the long title would run off the figure
        ax.set_title(f"{SOURCE}, Table 9\n(orange: pairs; outlined: in this sweep)", loc="right")
    return fig


def _scatter_shares(ax: Axes, t: pd.DataFrame, highlight: Collection[str]) -> None:
    err = _errors(t)
    ax.errorbar(t["text"], t["mean"], yerr=err, fmt="o", color="C0", capsize=3)
    for r in t.itertuples(index=False):
        bold = r.mixture in highlight
        ax.annotate(
            str(r.mixture),
            (r.text, r.mean),
            fontsize=7,
            xytext=(3, 3),
            textcoords="offset points",
            fontweight="bold" if bold else "normal",
            color="C3" if bold else "black",
        )
    ax.set_xlabel("text share of the training mixture")


def mixtures_figure(ours: pd.DataFrame, metric: str, paper: pd.DataFrame | None = None) -> Figure:
    """Fig. 6: the metric per mixture against its text share; the paper's 13, ours in red."""
    fig, axes = _axes(paper is not None)
    _scatter_shares(axes[0], ours, ())
    axes[0].set(ylabel=metric, title="Ours: data mixtures")
    if paper is not None:
        _scatter_shares(axes[1], paper, set(ours["mixture"].astype(str)))
        axes[1].set(ylabel=PAPER_Y, title=f"{SOURCE}, Table 13")
    return fig


def _trend(ax: Axes, t: pd.DataFrame, col: str, label: str) -> None:
    x = t[col].astype(float)
    err = _errors(t)
    ax.errorbar(x, t["mean"], yerr=err, fmt="o-", capsize=3)
    ax.set_xscale("log")
    ax.set_xticks(x, [f"{v:g}" for v in x])
    ax.minorticks_off()
    ax.set_xlabel(label)
    ax.grid(True, alpha=0.3)


def trends_figure(
    ours: dict[str, pd.DataFrame], metric: str, labels: dict[str, str], paper: dict[str, pd.DataFrame] | None = None
) -> Figure:
    """Fig. 10: the metric against fps, tokens per second, tokens per frame (one panel each)."""
    cols = list(ours)
    fig, axes = _axes(paper is not None, width=4.0, height=3.4, cols=len(cols))
    for i, col in enumerate(cols):
        _trend(axes[i], ours[col], col, labels[col])
        axes[i].set(ylabel=metric, title=f"Ours: by {labels[col]}")
        if paper is not None:
            ax = axes[len(cols) + i]
            _trend(ax, paper[col], col, labels[col])
            ax.set(ylabel=PAPER_Y, title=f"{SOURCE}, Table 10")
    return fig


def modality_figure(table: pd.DataFrame, title: str = "Accuracy by input modality") -> Figure:
    """Fig. 2 left: per benchmark (or category), mean accuracy from video, one frame, text only."""
    groups = list(dict.fromkeys(table["group"]))
    modalities = [m for m in ("video", "frame", "text") if m in set(table["modality"])]
    fig = new_figure(max(5.0, 1.0 * len(groups) + 2), 3.8)
    ax = fig.subplots()
    width = 0.8 / len(modalities)
    for i, m in enumerate(modalities):
        t = table[table["modality"] == m].set_index("group").reindex(groups)
        pos = np.arange(len(groups)) + (i - (len(modalities) - 1) / 2) * width
        err = _errors(t) if {"lo", "hi"} <= set(t.columns) else None  # a 95% interval, where the table has one
        ax.bar(pos, t["mean"], width=width, label=m, color=f"C{i}", yerr=err, capsize=2)
    ax.set_xticks(np.arange(len(groups)), groups, rotation=20, ha="right")
    ax.set(xlabel="benchmark / category", ylabel="accuracy (mean over runs)", title=title)
    ax.legend(title="input", fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.grid(True, axis="y", alpha=0.3)
    return fig
