"""Tests of Scaling Consistency: analysis.stats by hand, analysis.scaling, plots and the CLI."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.container import ErrorbarContainer

from analysis import plots, stats
from analysis.data_scaling import curves
from analysis.scaling import analyse, choice_columns
from tests.helpers import ROOT

METRIC = "test/synthetic/overall"
LLMS = {0.5: "qwen0.5b", 1.5: "qwen1.5b", 4.0: "qwen4b"}


# --- analysis.stats, against values worked out by hand ---------------------------------


def test_r2_by_hand() -> None:
    # x = [1,2,3,4], mean 2.5, dx = [-1.5,-.5,.5,1.5]; y = [2,4,5,8], mean 4.75,
    # dy = [-2.75,-.75,.25,3.25]. Sxy = 4.125+.375+.125+4.875 = 9.5, Sxx = 5,
    # Syy = 7.5625+.5625+.0625+10.5625 = 18.75. R² = 9.5² / (5 · 18.75) = 90.25/93.75 = 361/375.
    assert stats.r2(np.array([1, 2, 3, 4]), np.array([2, 4, 5, 8])) == pytest.approx(361 / 375)
    # the R² of the least-squares line is the same number
    x, y = np.array([1.0, 2, 3, 4]), np.array([2.0, 4, 5, 8])
    line = stats.least_squares_line(x, y)
    assert line is not None
    slope, intercept = line
    resid = y - (slope * x + intercept)
    assert 1 - resid @ resid / 18.75 == pytest.approx(361 / 375)


def test_r2_degenerate_is_nan_with_a_note() -> None:
    assert math.isnan(stats.r2(np.array([1.0, 2]), np.array([3.0, 4])))
    note = stats.r2_note(np.array([1.0, 2]), np.array([3.0, 4]))
    assert note is not None and "n=2" in note
    assert math.isnan(stats.r2(np.array([1.0, 1, 1]), np.array([1.0, 2, 3])))
    assert stats.r2_note(np.array([1.0, 1, 1]), np.array([1.0, 2, 3])) == "zero variance in scores"
    assert stats.r2_note(np.array([1.0, 2, 3]), np.array([1.0, 2, 4])) is None


def test_rank_agreement_by_hand() -> None:
    # identical orders: ρ = τ = 1 and the same best variant
    same = stats.rank_agreement(np.array([1, 2, 3, 4]), np.array([2, 4, 5, 8]))
    assert (same.spearman, same.kendall, same.same_best) == (pytest.approx(1), pytest.approx(1), True)
    # y = [1,3,2,4]: rank differences d = [0,1,-1,0], ρ = 1 - 6·2/(4·15) = 0.8;
    # of the 6 pairs only (2,3) is discordant, τ = (5-1)/6 = 2/3; both pick variant 4.
    swap = stats.rank_agreement(np.array([1, 2, 3, 4]), np.array([1, 3, 2, 4]))
    assert swap.spearman == pytest.approx(0.8) and swap.kendall == pytest.approx(2 / 3)
    assert swap.same_best is True
    assert stats.same_best(np.array([3, 1, 2]), np.array([1, 3, 2])) is False
    assert stats.same_best(np.array([3, 1, 2]), np.array([1, 3, 2]), maximize=False) is False
    assert stats.same_best(np.array([1, 3, 2]), np.array([1, 3, 2]), maximize=False) is True
    flat = stats.rank_agreement(np.array([1.0, 1.0]), np.array([1.0, 2.0]))
    assert math.isnan(flat.spearman) and math.isnan(flat.kendall)


def test_log_fit_by_hand() -> None:
    # ln(1, e, e²) = (0, 1, 2) and values .5, .7, .9 lie on 0.2·ln(x) + 0.5 exactly
    slope, intercept = stats.log_fit(np.array([1, math.e, math.e**2]), np.array([0.5, 0.7, 0.9]))
    assert (slope, intercept) == (pytest.approx(0.2), pytest.approx(0.5))
    assert all(math.isnan(v) for v in stats.log_fit(np.array([2.0]), np.array([0.5])))


def test_bootstrap_ci_contains_estimate_and_is_deterministic() -> None:
    rng = np.random.default_rng(1)
    x = np.arange(12.0)
    y = x + rng.normal(0, 2.0, x.size)
    lo, hi = stats.bootstrap_ci(x, y, n_boot=500, seed=7)
    assert lo <= stats.r2(x, y) <= hi and 0 <= lo < hi <= 1
    assert stats.bootstrap_ci(x, y, n_boot=500, seed=7) == (lo, hi)
    assert all(math.isnan(v) for v in stats.bootstrap_ci(x[:2], y[:2], seed=0))


# --- analysis.scaling on tables built here ------------------------------------------------


def make_table(scores: dict[tuple[str, str], dict[float, list[float]]]) -> pd.DataFrame:
    """Rows as analysis.collect writes them: one per (variant, size, replicate)."""
    rows = []
    for (encoder, resampler), by_size in scores.items():
        for size, values in by_size.items():
            for seed, value in enumerate(values):
                rows.append(
                    {
                        "run_dir": f"/r/{encoder}-{resampler}-{size}-{seed}",
                        "status": "ok",
                        "reason": None,
                        "sweep": "demo",
                        "encoder": encoder,
                        "llm": LLMS[size],
                        "resampler": resampler,
                        "llm_size_b": size,
                        "design.params.total": 10,
                        "costs.train_seconds": 1.0,
                        METRIC: value,
                    }
                )
    return pd.DataFrame(rows)


# Four variants; at 0.5 their scores are [1,2,3,4] (variant a/p from two seeds, 0.5 and 1.5),
# at 4 they are [2,4,5,8]: the hand-computed pair above.
HAND = {
    ("a", "p"): {0.5: [0.5, 1.5], 4.0: [2.0]},
    ("b", "p"): {0.5: [2.0], 4.0: [4.0]},
    ("c", "p"): {0.5: [3.0], 4.0: [5.0]},
    ("d", "p"): {0.5: [4.0], 4.0: [8.0]},
}


def test_pairs_average_replicates_and_skip_failed_rows() -> None:
    frame = make_table(HAND)
    failed = frame.iloc[[0]].assign(status="failed", reason="boom", **{METRIC: 99.0})
    result, scores = analyse(pd.concat([frame, failed]), METRIC, n_boot=200, seed=0)
    assert result.variant_cols == ["encoder", "resampler"]
    assert scores.loc["encoder=a", 0.5] == 1.0  # mean of two seeds; the failed 99 not used
    assert "averaged replicates: 9 ok rows -> 8 cells" in result.notes
    # a/p at 0.5 has seeds 0.5 and 1.5: sd sqrt(0.5) = 0.707, the one repeated cell
    assert "spread between replicates (seeds): sd 0.707 pooled over 1 repeated cells" in " ".join(result.notes)
    [pair] = result.pairs
    assert (pair.size_a, pair.size_b, pair.n) == (0.5, 4.0, 4)
    assert pair.r2 == pytest.approx(361 / 375)
    assert pair.spearman == pytest.approx(1.0) and pair.same_best is True
    assert pair.ci[0] <= pair.r2 <= pair.ci[1]
    assert "left out 1 of 10 rows" in result.notes[0]
    assert result.log_fit["slope"] is not None and math.isnan(result.log_fit["slope"])
    assert result.log_fit["note"] and result.to_json()["log_fit"]["slope"] is None


HIDDEN = {
    (e, r): {0.5: [s], 4.0: [2 * s + (0.3 if r == "q" else 0)]}
    for (e, r), s in {
        ("a", "p"): 1.0,
        ("a", "q"): 1.2,
        ("b", "p"): 2.0,
        ("b", "q"): 2.5,
        ("c", "p"): 3.0,
        ("c", "q"): 2.9,
    }.items()
}


def test_variant_column_separates_variants() -> None:
    frame = make_table(HIDDEN)
    assert choice_columns(frame, "llm_size_b", METRIC) == ["encoder", "resampler"]
    by_all, _ = analyse(frame, METRIC, n_boot=0)
    assert by_all.pairs[0].n == 6
    merged, scores = analyse(frame, METRIC, variant_cols=["encoder"], n_boot=0)
    assert merged.pairs[0].n == 3  # a/p and a/q share every setting but resampler: averaged
    assert scores.loc["encoder=a", 0.5] == pytest.approx(1.1)
    assert scores.loc["encoder=b", 4.0] == pytest.approx((4.0 + 5.3) / 2)


def test_missing_variant_is_reported_and_left_out() -> None:
    three = {k: {**v, 1.5: [v[0.5][0] + 0.1 * i]} for i, (k, v) in enumerate(HIDDEN.items())}
    frame = make_table(three)
    frame = frame[~((frame["encoder"] == "c") & (frame["resampler"] == "q") & (frame["llm_size_b"] == 4.0))]
    result, _ = analyse(frame, METRIC, n_boot=50, seed=0)
    assert result.missing == [{"variant": "encoder=c,resampler=q", "size": 4.0}]
    n = {(p.size_a, p.size_b): p.n for p in result.pairs}
    assert n == {(0.5, 1.5): 6, (0.5, 4.0): 5, (1.5, 4.0): 5}
    fit = result.log_fit
    assert fit["reference"] == 4.0 and [s for s, _ in fit["points"]] == [0.5, 1.5]
    # a log curve through two R² values fits them exactly: none is fitted, and the note says why
    assert math.isnan(fit["slope"]) and "3 or more sizes" in fit["note"]


def test_one_size_gives_no_pairs() -> None:
    frame = make_table({k: {0.5: v[0.5]} for k, v in HAND.items()})
    result, _ = analyse(frame, METRIC)
    assert result.pairs == [] and any("only 1 size" in n for n in result.notes)


# --- figures ------------------------------------------------------------------------------


def test_figures_have_labels_and_save(tmp_path: Path) -> None:
    fig = plots.r2_curve_figure([0.5, 1.5], [0.85, 0.95], reference=4.0, slope=0.09, intercept=0.91, metric=METRIC)
    [ax] = fig.axes
    assert ax.get_xscale() == "log" and ax.get_xlabel() == "llm_size_b"
    assert ax.get_ylabel() == "R² with llm_size_b=4" and METRIC in ax.get_title()
    assert len(ax.containers) == 1  # the points with their interval bars
    assert [ln.get_label() for ln in ax.get_lines() if not str(ln.get_label()).startswith("_")] == [
        "0.090·ln(x) + 0.910"
    ]
    fig = plots.scatter_figure(
        [1, 2, 3, 4],
        [2, 4, 5, 8],
        size_a=0.5,
        size_b=4.0,
        r2=stats.r2(np.array([1, 2, 3, 4]), np.array([2, 4, 5, 8])),
        metric=METRIC,
    )
    [ax] = fig.axes
    assert "R² = 0.963" in ax.get_title()
    assert ax.get_xlabel() == f"{METRIC} at llm_size_b=0.5"
    assert ax.get_ylabel() == f"{METRIC} at llm_size_b=4"
    assert [ln.get_label() for ln in ax.get_lines()].count("least squares") == 1
    two = plots.scatter_figure([1, 2], [2, 4], xerr=[0.1, 0.1], yerr=[0.2, 0.2], size_a=0.5, size_b=4.0, r2=None)
    assert "least squares" not in [ln.get_label() for ln in two.axes[0].get_lines()]  # no line through two points
    assert len(two.axes[0].containers) == 1  # the interval bars
    path = plots.save_figure(fig, tmp_path / "sub" / "s.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# --- the CLI --------------------------------------------------------------------------------


def run_scaling(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "analysis.scaling", *args], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


@pytest.fixture()
def three_sizes(tmp_path: Path) -> Path:
    three = {k: {**v, 1.5: [v[0.5][0] * 1.5 + 0.05 * i]} for i, (k, v) in enumerate(HIDDEN.items())}
    path = tmp_path / "results.csv"
    make_table(three).to_csv(path, index=False)
    return path


def test_cli_writes_json_and_figures(three_sizes: Path, tmp_path: Path) -> None:
    out = tmp_path / "scaling"
    proc = run_scaling(str(three_sizes), "--metric", METRIC, "--out", str(out), "--bootstrap", "200", "--seed", "3")
    assert proc.returncode == 0, proc.stderr
    assert "size_a" in proc.stdout and "Spearman" in proc.stdout and "same best" in proc.stdout
    doc = json.loads((out / "scaling.json").read_text())
    assert (doc["metric"], doc["size_col"], doc["variant_cols"]) == (METRIC, "llm_size_b", ["encoder", "resampler"])
    assert [(p["size_a"], p["size_b"]) for p in doc["pairs"]] == [(0.5, 1.5), (0.5, 4.0), (1.5, 4.0)]
    for pair in doc["pairs"]:
        assert set(pair) >= {"r2", "n", "ci", "spearman", "kendall", "same_best"} and pair["n"] == 6
    assert doc["log_fit"]["reference"] == 4.0 and doc["missing"] == []
    for name in ("r2_curve.png", "scatter_0.5_vs_1.5.png", "scatter_0.5_vs_4.png", "scatter_1.5_vs_4.png"):
        assert (out / name).is_file(), name
    again = run_scaling(str(three_sizes), "--metric", METRIC, "--bootstrap", "200", "--seed", "3")
    assert again.stdout.splitlines()[1:] == proc.stdout.splitlines()[1:-1]  # same seed, same CIs


@pytest.mark.parametrize("flag", ["--metric", "--size-col"])
def test_cli_bad_column_is_one_line_exit_2(three_sizes: Path, flag: str) -> None:
    args = {"--metric": METRIC, "--size-col": "llm_size_b", flag: "nope/acc"}
    proc = run_scaling(str(three_sizes), *[x for kv in args.items() for x in kv])
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert "'nope/acc'" in proc.stderr and "available:" in proc.stderr and METRIC in proc.stderr


def test_cli_one_size_exits_0_with_empty_pairs(tmp_path: Path) -> None:
    path = tmp_path / "one.csv"
    make_table({k: {0.5: v[0.5]} for k, v in HAND.items()}).to_csv(path, index=False)
    proc = run_scaling(str(path), "--metric", METRIC, "--out", str(tmp_path / "o"))
    assert proc.returncode == 0, proc.stderr
    assert "only 1 size" in proc.stderr
    assert json.loads((tmp_path / "o" / "scaling.json").read_text())["pairs"] == []


# --- variants that differ only in a design number; R² against training-set size ------------


def design_table(cells: dict[tuple[str, float, float, float], float], col: str) -> pd.DataFrame:
    """Rows (encoder, `col` value, llm size, training-set size) -> score; choices alike otherwise."""
    return pd.DataFrame(
        [
            {
                "run_dir": f"/r/{e}-{v}-{s}-{d}",
                "status": "ok",
                "reason": None,
                "sweep": "s",
                "encoder": e,
                "llm": LLMS[s],
                "resampler": "p",
                "seed": 0,
                "llm_size_b": s,
                "design.params.llm": s * 10,
                "design.train_set_size": d,
                col: v,
                METRIC: score,
            }
            for (e, v, s, d), score in cells.items()
        ]
    )


# Six designs: encoders a, b, c at 4 and 16 tokens per frame (set by an override, so the
# choice columns are the same for both). Scores x = 1..6 at 0.5B, y = 2,1,4,3,6,5 at 4B.
# Hand: dx = dy-permuted (-2.5..2.5), Sxy = 4·3.75 - 2·0.25 = 14.5, Sxx = Syy = 17.5:
# R² = (14.5/17.5)² = 841/1225. Spearman = Pearson here (values are ranks) = 29/35;
# Kendall: 3 of 15 pairs discordant, τ = 9/15; best at 0.5B (c/16) is not best at 4B.
TPF = {
    (e, v): (x, y)
    for (e, v), x, y in zip(
        [("a", 4), ("a", 16), ("b", 4), ("b", 16), ("c", 4), ("c", 16)], range(1, 7), [2, 1, 4, 3, 6, 5], strict=True
    )
}


def test_variants_differing_only_in_a_design_number() -> None:
    cells: dict[tuple[str, float, float, float], float] = {
        (e, v, s, 1000): float(xy[i]) for (e, v), xy in TPF.items() for i, s in enumerate((0.5, 4.0))
    }
    frame = design_table(cells, "design.tokens_per_frame")
    result, scores = analyse(frame, METRIC, n_boot=0)
    assert result.variant_cols == ["encoder", "resampler", "design.tokens_per_frame"]
    assert any("differ in design.tokens_per_frame: added" in n for n in result.notes)
    assert "encoder=c,design.tokens_per_frame=16" in scores.index
    [pair] = result.pairs
    assert pair.n == 6 and pair.r2 == pytest.approx(841 / 1225)
    assert pair.spearman == pytest.approx(29 / 35) and pair.kendall == pytest.approx(0.6)
    assert pair.same_best is False
    # naming the variant columns yourself merges them, with a note: a = (1.5, 1.5),
    # b = (3.5, 3.5), c = (5.5, 5.5) lie on a line, R² = 1
    merged, scores = analyse(frame, METRIC, variant_cols=["encoder"], n_boot=0)
    assert merged.pairs[0].n == 3 and merged.pairs[0].r2 == pytest.approx(1.0)
    assert scores.loc["encoder=b", 4.0] == pytest.approx(3.5)
    assert any("averaged as replicates" in n for n in merged.notes)


def test_seeds_are_replicates_not_variants() -> None:
    frame = make_table(HAND).assign(seed=lambda f: range(len(f)))
    assert "seed" not in choice_columns(frame, "llm_size_b", METRIC)
    result, _ = analyse(frame, METRIC, n_boot=0)
    assert result.pairs[0].n == 4 and result.pairs[0].r2 == pytest.approx(361 / 375)


# Encoders a, b, c; reference (4B, 1000 samples) scores (1, 2, 3). By hand against it:
# (0.5B, 1000): (2, 4, 5): Sxy = 3, Sxx = 14/3, Syy = 2 -> R² = 27/28
# (0.5B, 100):  (1, 1, 2): Sxy = 1, Sxx = 2/3            -> R² = 3/4
# (4B, 100):    (2, 1, 3): Sxy = 1, Sxx = 2              -> R² = 1/4
DATA = {
    ("a", 4.0, 1000): 1,
    ("b", 4.0, 1000): 2,
    ("c", 4.0, 1000): 3,
    ("a", 0.5, 1000): 2,
    ("b", 0.5, 1000): 4,
    ("c", 0.5, 1000): 5,
    ("a", 0.5, 100): 1,
    ("b", 0.5, 100): 1,
    ("c", 0.5, 100): 2,
    ("a", 4.0, 100): 2,
    ("b", 4.0, 100): 1,
    ("c", 4.0, 100): 3,
}


def data_frame() -> pd.DataFrame:
    return design_table({(e, 8, s, d): float(v) for (e, s, d), v in DATA.items()}, "design.tokens_per_frame")


def test_r2_against_training_set_size_by_hand() -> None:
    result, _ = analyse(data_frame(), METRIC, n_boot=0, data_col="design.train_set_size")
    data = result.data_scaling
    assert data["reference"] == {"size": 4.0, "data_size": 1000.0} and data["note"] is None
    got = {(p["size"], p["data_size"]): (p["r2"], p["n"]) for p in data["points"]}
    assert got == {
        (0.5, 100.0): (pytest.approx(0.75), 3),
        (0.5, 1000.0): (pytest.approx(27 / 28), 3),
        (4.0, 100.0): (pytest.approx(0.25), 3),
    }
    [pair] = result.pairs  # model sizes compared at the largest training set
    assert pair.r2 == pytest.approx(27 / 28)
    assert "design.train_set_size" not in result.variant_cols
    lines = curves(data)
    assert list(lines) == [0.5, 4.0] and list(lines[0.5][0]) == [100.0, 1000.0]
    fig = plots.r2_data_figure(lines, ref_size=4.0, ref_data=1000.0, data_col="design.train_set_size")
    [ax] = fig.axes
    assert ax.get_xscale() == "log" and ax.get_xlabel() == "design.train_set_size"
    assert ax.get_ylabel() == "R² with llm_size_b=4 at 1000" and len(ax.get_lines()) == 2
    legend = ax.get_legend()
    assert legend is not None and [t.get_text() for t in legend.get_texts()] == ["llm_size_b=0.5", "llm_size_b=4"]
    # without --data-col the training-set size is a design number that splits cells
    plain, _ = analyse(data_frame(), METRIC, n_boot=0)
    assert "design.train_set_size" in plain.variant_cols


def test_cli_data_col_writes_json_and_figure(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    data_frame().to_csv(path, index=False)
    proc = run_scaling(
        str(path),
        "--metric",
        METRIC,
        "--data-col",
        "design.train_set_size",
        "--bootstrap",
        "0",
        "--out",
        str(tmp_path / "o"),
    )
    assert proc.returncode == 0, proc.stderr
    assert "R² with size 4 at design.train_set_size=1000:" in proc.stdout
    doc = json.loads((tmp_path / "o" / "scaling.json").read_text())
    assert set(doc) >= {"pairs", "log_fit", "data_scaling"}
    assert doc["data_scaling"]["reference"] == {"size": 4.0, "data_size": 1000.0}
    assert (tmp_path / "o" / "r2_data.png").is_file()
    bad = run_scaling(str(path), "--metric", METRIC, "--data-col", "design.n_train")
    assert bad.returncode == 2 and "'design.n_train' (--data-col)" in bad.stderr


def with_noise(frame: pd.DataFrame, se: float) -> pd.DataFrame:
    z = 1.959964
    return frame.assign(**{f"ci_lo/{METRIC}": frame[METRIC] - z * se, f"ci_hi/{METRIC}": frame[METRIC] + z * se})


def test_item_noise_enters_the_intervals_and_can_explain_r2() -> None:
    frame = make_table(HIDDEN)  # six variants, R² about 0.9 between the sizes
    bare, _ = analyse(frame, METRIC, n_boot=200, seed=0)
    [p] = bare.pairs
    assert math.isnan(p.ci_noise[0]) and "cover the variants only" in (p.noise_note or "")
    quiet, _ = analyse(with_noise(frame, 1e-3), METRIC, n_boot=200, seed=0)
    [q] = quiet.pairs
    assert q.ci_noise[0] <= q.r2 <= q.ci_noise[1] and q.noise_p < 0.05 and q.noise_note is None
    assert q.spearman_ci[0] <= q.spearman <= q.spearman_ci[1]
    assert q.same_best is False and q.same_best_rate == 0.0  # c/p best at 0.5, c/q at 4, by more than the noise
    loud, _ = analyse(with_noise(frame, 3.0), METRIC, n_boot=200, seed=0)  # noise far above the spread
    [n] = loud.pairs
    # re-measured with that noise, R² would land far lower; but 0.99 over six variants is not noise
    assert n.r2 == q.r2 and n.ci_noise[1] < q.ci_noise[0] and n.noise_p < 0.05
    # five variants 0.01 apart, each score ± 0.03: R² 0.5 is what noise alone gives often
    close = {
        (e, "p"): {0.5: [x], 4.0: [y]}
        for e, x, y in zip("abcde", [0.40, 0.42, 0.41, 0.43, 0.44], [0.50, 0.52, 0.50, 0.53, 0.51], strict=True)
    }
    weak, _ = analyse(with_noise(make_table(close), 0.03), METRIC, n_boot=300, seed=0)
    [w] = weak.pairs
    assert 0.2 < w.r2 < 0.8 and w.noise_p > 0.05
    assert "noise alone could explain this R²" in (w.noise_note or "")
    assert weak.to_json()["pairs"][0]["noise_p"] == pytest.approx(w.noise_p)


def test_r2_data_figure_carries_interval_bars() -> None:
    lines = {0.5: (np.array([100.0, 1000.0]), np.array([0.6, 0.8]))}
    cis = {0.5: np.array([[0.4, 0.7], [0.7, 0.9]])}
    fig = plots.r2_data_figure(lines, cis=cis, ref_size=4.0, ref_data=1000.0)
    [bars] = fig.axes[0].containers
    assert isinstance(bars, ErrorbarContainer)
    lower = bars.lines[1][0].get_ydata()  # the caps below the points: the interval's lower ends
    assert np.allclose(np.asarray(lower, dtype=float), [0.4, 0.7])
