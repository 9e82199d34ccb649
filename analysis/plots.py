"""Figures of the scaling analysis: the R²-against-size curve and per-pair scatters.

Each `*_figure` function returns a matplotlib `Figure` built without pyplot (so no GUI
backend and no global state; tests can read its axes before saving), and `save_figure`
writes it as a PNG through the Agg canvas.

- `r2_curve_figure`: R² of each size with the largest against size, log x axis, with its
  95% interval as bars and the fitted a·ln(x) + b curve when there is one (Apollo, arXiv
  2412.10360, Fig. 3 left).
- `scatter_figure`: per-variant scores at two sizes with their 95% interval bars, R² in
  the title and, with three or more variants, the least-squares line (Apollo, Fig. 15).
- `r2_data_figure`: R² with the reference (largest model, largest training set) against
  training-set size, one line per model size, with interval bars (Apollo, Fig. 3 right).
- `heatmap_figure`: a correlation matrix between benchmarks or categories (Apollo, Fig. 2 right).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from analysis.stats import MIN_VARIANTS, least_squares_line


def new_figure(width: float, height: float) -> Figure:
    """An empty constrained-layout Figure on an Agg canvas (no pyplot, no GUI)."""
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)  # an Agg canvas: renders and saves PNGs without any GUI backend
    return fig


def _fmt(value: float | None, spec: str = ".3f") -> str:
    return "n/a" if value is None or not math.isfinite(value) else format(value, spec)


def r2_curve_figure(
    sizes: Sequence[float],
    r2s: Sequence[float],
    *,
    reference: float,
    slope: float | None,
    intercept: float | None,
    cis: Sequence[tuple[float, float]] | None = None,
    size_col: str = "llm_size_b",
    metric: str = "",
) -> Figure:
    """R² with the `reference` (largest) size against size, its 95% intervals, the a·ln(x) + b fit."""
    fig = new_figure(5.0, 3.6)
    ax = fig.subplots()
    x = np.asarray(sizes, dtype=float)
    y = np.asarray(r2s, dtype=float)
    err = None
    if cis is not None:
        ci = np.asarray(cis, dtype=float).reshape(-1, 2)
        err = np.vstack([y - ci[:, 0], ci[:, 1] - y]).clip(min=0)
        err = np.where(np.isfinite(err), err, 0.0)
    ax.errorbar(x, y, yerr=err, fmt="o", color="C0", capsize=3, label="R² per size (95% interval)")
    if slope is not None and intercept is not None and math.isfinite(slope) and math.isfinite(intercept):
        grid = np.geomspace(float(np.nanmin(x)), float(np.nanmax(x)), 100)  # no extrapolation
        ax.plot(grid, slope * np.log(grid) + intercept, "-", color="C1", label=f"{slope:.3f}·ln(x) + {intercept:.3f}")
    ax.set_xscale("log")
    ax.set_xticks(x, [f"{v:g}" for v in x])  # sizes as plain numbers, not 6e-1
    ax.minorticks_off()
    ax.set_xlabel(size_col)
    ax.set_ylabel(f"R² with {size_col}={reference:g}")
    ax.set_title(f"Scaling consistency{': ' + metric if metric else ''}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right", fontsize="small")
    return fig


def scatter_figure(
    x: Sequence[float],
    y: Sequence[float],
    *,
    size_a: float,
    size_b: float,
    r2: float | None,
    xerr: Sequence[float] | None = None,
    yerr: Sequence[float] | None = None,
    size_col: str = "llm_size_b",
    metric: str = "score",
    labels: Sequence[str] | None = None,
) -> Figure:
    """Per-variant scores at `size_a` (x) against `size_b` (y); bars are ± `xerr`, `yerr`.

    The least-squares line is drawn with three or more variants only: any two fit a line.
    """
    fig = new_figure(5.0, 4.6)
    ax = fig.subplots()
    xs = np.asarray(x, dtype=float)
    ys = np.asarray(y, dtype=float)

    def bars(e: Sequence[float] | None) -> np.ndarray | None:
        if e is None:
            return None
        arr = np.asarray(e, dtype=float)
        return np.where(np.isfinite(arr), arr, 0.0) if np.isfinite(arr).any() else None

    ax.errorbar(xs, ys, xerr=bars(xerr), yerr=bars(yerr), fmt="o", color="C0", capsize=3, zorder=3)
    line = least_squares_line(xs, ys) if xs.size >= MIN_VARIANTS else None
    if line is not None:
        grid = np.linspace(xs.min(), xs.max(), 2)
        ax.plot(grid, line[0] * grid + line[1], "-", color="C1", label="least squares")
        ax.legend(loc="best", fontsize="small")
    for xi, yi, text in zip(xs, ys, labels or (), strict=False):
        note = ax.annotate(text, (xi, yi), fontsize=5, alpha=0.7, xytext=(3, 3), textcoords="offset points")
        note.set_in_layout(False)  # long labels must not squeeze the axes
    ax.set_xlabel(f"{metric} at {size_col}={size_a:g}")
    ax.set_ylabel(f"{metric} at {size_col}={size_b:g}")
    ax.set_title(f"{size_col} {size_a:g} vs {size_b:g}: R² = {_fmt(r2)} (n={xs.size})")
    ax.grid(True, alpha=0.3)
    return fig


def r2_data_figure(
    lines: dict[float, tuple[np.ndarray, np.ndarray]],
    *,
    cis: dict[float, np.ndarray] | None = None,
    ref_size: float,
    ref_data: float,
    size_col: str = "llm_size_b",
    data_col: str = "design.train_set_size",
    metric: str = "",
) -> Figure:
    """Per model size, R² with (ref_size, ref_data) against training-set size, log x axis."""
    fig = new_figure(5.0, 3.6)
    ax = fig.subplots()
    ticks: set[float] = set()
    for i, (size, (data, r2s)) in enumerate(lines.items()):
        err = None
        if cis is not None and size in cis:
            err = np.vstack([r2s - cis[size][0], cis[size][1] - r2s]).clip(min=0)
            err = np.where(np.isfinite(err), err, 0.0)
        ax.errorbar(data, r2s, yerr=err, fmt="o-", color=f"C{i}", capsize=3, label=f"{size_col}={size:g}")
        ticks.update(float(d) for d in data)
    ax.set_xscale("log")
    ax.set_xticks(sorted(ticks), [f"{v:g}" for v in sorted(ticks)])
    ax.minorticks_off()
    ax.set_xlabel(data_col)
    ax.set_ylabel(f"R² with {size_col}={ref_size:g} at {ref_data:g}")
    ax.set_title(f"R² against training-set size{': ' + metric if metric else ''}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right", fontsize="small")
    return fig


def heatmap_figure(matrix: np.ndarray, labels: Sequence[str], *, title: str) -> Figure:
    """A correlation matrix in [-1, 1] with its values written in the cells (Apollo, Fig. 2 right)."""
    n = len(labels)
    side = max(4.0, 0.7 * n + 2.0)
    fig = new_figure(side + 1.0, side)
    ax = fig.add_subplot()
    image = ax.imshow(np.asarray(matrix, dtype=float), vmin=-1, vmax=1, cmap="RdBu_r")
    ax.set_xticks(range(n), labels, rotation=45, ha="right")
    ax.set_yticks(range(n), labels)
    for i in range(n):
        for j in range(n):
            value = float(matrix[i][j])
            ax.text(
                j,
                i,
                _fmt(value, ".2f"),
                ha="center",
                va="center",
                fontsize=8,
                color="white" if math.isfinite(value) and abs(value) > 0.6 else "black",
            )
    fig.colorbar(image, ax=ax, label="correlation")
    ax.set_title(title)
    return fig


def save_figure(fig: Figure, path: str | Path, dpi: int = 150) -> Path:
    """Write `fig` as a PNG (Agg canvas, no display needed), creating the folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    return path
