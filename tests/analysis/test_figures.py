"""The paper's figures from a results table: summaries by hand, axes and labels, skips, CLI."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from matplotlib.axes import Axes

from analysis import axes, figures, modality, paper

METRIC = "test/synthetic/overall"


def sweep_table() -> pd.DataFrame:
    """24 ok runs over encoder × mixture × sampling × tokens per frame, plus a failed run.

    score = 0.30 + 0.05·[siglip] + 0.02·[paper02] + 0.03·fps (uniform: 0.015) + 0.01·tpf/4
    """
    rows: list[dict[str, Any]] = []
    grid = itertools.product(
        ["siglip", "dinov2"],
        ["natural", "paper02"],
        [("fps", 1.0, None), ("fps", 2.0, None), ("uniform", None, 8)],
        [4.0, 16.0],
    )
    for i, (enc, mix, (sampler, fps, frames), tpf) in enumerate(grid):
        score = 0.3 + 0.05 * (enc == "siglip") + 0.02 * (mix == "paper02") + 0.03 * (fps or 0.5) + 0.01 * tpf / 4
        rows.append(
            {
                "run_dir": f"/r/{i}",
                "status": "ok",
                "reason": None,
                "encoder": enc,
                "llm": "qwen0.5b",
                "mixture": mix,
                "sampler": sampler,
                "llm_size_b": 0.5,
                "design.fps": fps,
                "design.num_frames": frames,
                "design.tokens_per_frame": tpf,
                "design.tokens_per_second": None if fps is None else fps * tpf,
                "design.mixture.text": 0.1 if mix == "natural" else 0.15,
                METRIC: score,
            }
        )
    rows.append({**rows[0], "run_dir": "/r/failed", "status": "failed", "reason": "boom", METRIC: 0.99})
    return pd.DataFrame(rows)


def drawn(summary: pd.DataFrame | str) -> pd.DataFrame:
    """A summary that has rows (not the reason it has none)."""
    assert not isinstance(summary, str), summary
    return summary


def legend(ax: Axes) -> list[str]:
    found = ax.get_legend()
    assert found is not None
    return [t.get_text() for t in found.get_texts()]


def test_summaries_by_hand() -> None:
    frame = sweep_table()
    enc = drawn(axes.encoders(frame, METRIC)).set_index("encoder")
    # dinov2 mean: 0.30 + 0.01 (mixture) + 0.035 (fps: mean of 0.03, 0.06, 0.015) + 0.025 (tpf: 1, 4) = 0.37
    assert enc.loc["dinov2", "mean"] == pytest.approx(0.37) and enc.loc["siglip", "mean"] == pytest.approx(0.42)
    assert list(enc.index) == ["siglip", "dinov2"] and enc.loc["siglip", "n"] == 12  # failed run left out
    samp = drawn(axes.sampling(frame, METRIC)).set_index("setting")
    assert list(samp.index) == ["fps 1/s", "fps 2/s", "uniform 8 frames"]
    assert samp.loc["uniform 8 frames", "mean"] == pytest.approx(0.3 + 0.025 + 0.01 + 0.015 + 0.025)
    grid = drawn(axes.fps_tps(frame, METRIC))
    assert sorted(zip(grid["fps"], grid["tps"], grid["tpf"])) == [(1, 4, 4), (1, 16, 16), (2, 8, 4), (2, 32, 16)]
    mix = drawn(axes.mixtures(frame, METRIC))
    assert list(mix["mixture"]) == ["natural", "paper02"] and list(mix["text"]) == pytest.approx([0.1, 0.15])
    assert mix["mean"].diff().iloc[1] == pytest.approx(0.02)
    panels, skipped = axes.trends(frame, METRIC)
    assert list(panels) == ["design.fps", "design.tokens_per_second", "design.tokens_per_frame"] and not skipped
    assert list(panels["design.tokens_per_second"]["design.tokens_per_second"]) == [4, 8, 16, 32]


def test_every_figure_has_its_axes_and_labels() -> None:
    figs = figures.make_figures(sweep_table(), with_paper=True)
    assert figs.metric == METRIC and set(figs.made) == set(figures.FILES) and figs.skipped == {}
    ours, ref = figs.made["sampling"].axes
    assert (ours.get_title(), ours.get_xlabel(), ours.get_ylabel()) == (
        "Ours: uniform vs fps sampling",
        "sampling",
        METRIC,
    )
    assert [t.get_text() for t in ours.get_xticklabels()] == [
        "fps 1/s (n=8)",
        "fps 2/s (n=8)",
        "uniform 8 frames (n=8)",
    ]
    assert ref.get_title() == "Apollo (arXiv 2412.10360), Table 11" and ref.get_ylabel() == "ApolloBench overall (%)"
    assert legend(ref) == ["tested at 2 fps", "tested uniform"]
    heat = [a for a in figs.made["fps_tps"].axes if a.get_label() != "<colorbar>"]
    assert [a.get_title() for a in heat] == ["Ours: fps × tokens per second", "Apollo (arXiv 2412.10360), Table 10"]
    assert all(
        (a.get_xlabel(), a.get_ylabel(), a.get_xscale()) == ("tokens per second", "frames per second", "log")
        for a in heat
    )
    assert len(heat[0].get_lines()) == 2 and len(heat[1].get_lines()) == 7  # iso-tpf lines: 4, 16 / 2..128
    cells = sorted(t.get_text() for t in heat[0].texts if "/frame" not in t.get_text())
    assert cells == ["0.375", "0.405", "0.405", "0.435"]
    ours, ref = figs.made["encoders"].axes
    assert [t.get_text() for t in ours.get_yticklabels()] == ["siglip (n=12)", "dinov2 (n=12)"]
    assert ours.get_xlabel() == METRIC and len(ref.patches) == 19
    assert ref.get_title(loc="right").startswith("Apollo (arXiv 2412.10360), Table 9")
    outlined = [t.get_text() for t, p in zip(ref.get_yticklabels(), ref.patches, strict=True) if p.get_linewidth() == 2]
    assert sorted(outlined) == ["DINOv2", "SigLIP-SO400M"]
    ours, ref = figs.made["mixtures"].axes
    assert ours.get_xlabel() == "text share of the training mixture" and ours.get_ylabel() == METRIC
    red = [t.get_text() for t in ref.texts if t.get_fontweight() == "bold"]
    assert red == ["paper02"] and len(ref.texts) == 13
    trend = figs.made["fps_tps_tpf"].axes
    assert len(trend) == 6 and [a.get_xlabel() for a in trend[:3]] == list(axes.TRENDS.values())
    assert [a.get_title() for a in trend[:3]] == [f"Ours: by {v}" for v in axes.TRENDS.values()]


def test_without_the_paper_one_axes_each() -> None:
    figs = figures.make_figures(sweep_table())
    assert len(figs.made["encoders"].axes) == 1 and len(figs.made["fps_tps_tpf"].axes) == 3


def test_figures_without_their_columns_are_skipped_with_reasons() -> None:
    frame = sweep_table()
    one = frame[
        (frame["encoder"] == "siglip")
        & (frame["mixture"] == "natural")
        & (frame["sampler"] == "fps")
        & (frame["design.fps"] == 2.0)
    ].drop(columns=["design.mixture.text"])
    figs = figures.make_figures(one)
    assert set(figs.made) == {"fps_tps_tpf"}  # tpf (and so tps) still take two values
    assert figs.skipped["encoders"] == "'encoder' has 1 value(s) among ok runs with a score (siglip); needs 2"
    assert figs.skipped["sampling"].startswith("'sampler' has 1 value(s)")
    assert "'design.fps' has 1 value(s)" in figs.skipped["fps_tps"]
    assert figs.skipped["mixtures"].startswith("'mixture' has 1 value(s)")
    assert figs.notes == [
        "fps_tps_tpf: no panel for design.fps: 'design.fps' has 1 value(s) among ok runs with a score (2.0); needs 2"
    ]
    bare = figures.make_figures(one.drop(columns=["design.tokens_per_frame", "design.tokens_per_second"]))
    assert bare.made == {} and "no column 'design.tokens_per_frame'" in bare.skipped["fps_tps_tpf"]


def test_paper_tables_and_names() -> None:
    assert len(paper.fps_tps()) == 28 and len(paper.encoders()) == 19 and len(paper.mixtures()) == 13
    assert paper.paper_encoder_name("siglip") == "SigLIP-SO400M"
    assert paper.paper_encoder_name("siglip+internvideo2") == "InternVideo2+SigLIP-SO400M"  # order-free
    assert paper.paper_encoder_name("languagebind_video+dinov2") == "LanguageBind-Video+DINOv2"
    assert paper.paper_encoder_name("dinov2+siglip") is None  # the paper has no such pair
    assert paper.paper_encoder_name("clip") is None  # not in Table 9
    assert paper.paper_encoder_name("nope") is None
    by_fps = paper.trends()["design.fps"].set_index("design.fps")
    assert by_fps.loc[4.0, "n"] == 7 and by_fps.loc[4.0, "min"] == 21.5  # Table 10, rows 1..28 at 4 fps
    assert (paper.REFERENCE / "README.md").read_text().count("2412.10360") >= 1


def test_cli_writes_pngs_and_lists_skips(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    frame = sweep_table().drop(columns=["mixture"])
    frame.to_csv(tmp_path / "r.csv", index=False)
    assert figures.main([str(tmp_path / "r.csv"), "--out", str(tmp_path / "f"), "--paper"]) == 0
    out, printed = capsys.readouterr()
    assert "drew 4 of 5 figures" in out and "skipped fig6_mixtures.png: no column 'mixture'" in printed
    doc = json.loads((tmp_path / "f" / "figures.json").read_text())
    assert doc["skipped"] == {"mixtures": "no column 'mixture'"} and len(doc["drawn"]) == 4
    for name in doc["drawn"].values():
        assert (tmp_path / "f" / name).read_bytes()[:4] == b"\x89PNG"
    assert figures.main([str(tmp_path / "r.csv"), "--out", str(tmp_path / "g"), "--metric", "test/x/y"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: no column 'test/x/y' (--metric)")


# --- the modality gap (Fig. 2 left) ---------------------------------------------------------


def audit_table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "status": ["ok", "ok", "failed"],
            "test/a/overall": [0.6, 0.8, 0.0],
            "test_frame/a/overall": [0.5, 0.5, 0.0],
            "test_text/a/overall": [0.3, 0.2, 0.0],
            "test/a/x": [0.6, 0.8, 0.0],
            "test_frame/a/x": [0.5, 0.5, 0.0],
            "test/b/overall": [0.4, 0.5, 1.0],
            "test_text/b/overall": [0.4, 0.3, 1.0],
        }
    )


def test_modality_gap_by_hand(tmp_path: Path) -> None:
    table = modality.gap_table(audit_table())  # two benchmarks: overall only
    wide = modality.gaps(table).set_index("group")
    assert list(wide.index) == ["a", "b"]
    assert wide.loc["a", "video"] == pytest.approx(0.7) and wide.loc["a", "video-frame"] == pytest.approx(0.2)
    assert wide.loc["a", "video-text"] == pytest.approx(0.45) and wide.loc["b", "video-text"] == pytest.approx(0.1)
    assert pd.isna(wide.loc["b", "frame"])
    with_cats = modality.gap_table(audit_table(), categories=True)
    assert "a/x" in set(with_cats["group"]) and with_cats["n"].max() == 2
    fig = modality.figure_plots.modality_figure(table)
    [ax] = fig.axes
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b"]
    assert legend(ax) == ["video", "frame", "text"]
    assert ax.get_ylabel() == "accuracy (mean over runs)" and len(ax.patches) == 6
    audit_table().to_csv(tmp_path / "r.csv", index=False)
    assert modality.main([str(tmp_path / "r.csv"), "--out", str(tmp_path / "m")]) == 0
    assert {p.name for p in (tmp_path / "m").iterdir()} == {"modality_gap.csv", "modality_gap.json", "modality_gap.png"}


def test_modality_without_the_audit_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sweep_table().to_csv(tmp_path / "r.csv", index=False)
    assert modality.main([str(tmp_path / "r.csv")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no test_frame/" in err[0]


def test_summary_interval_adds_spread_and_item_noise_by_hand() -> None:
    z = 1.959964
    frame = pd.DataFrame(
        {
            "status": ["ok", "ok", "ok"],
            "encoder": ["siglip", "siglip", "dinov2"],
            METRIC: [0.4, 0.5, 0.3],
            f"ci_lo/{METRIC}": [0.4 - z * 0.05, 0.5 - z * 0.05, 0.3 - z * 0.04],
            f"ci_hi/{METRIC}": [0.4 + z * 0.05, 0.5 + z * 0.05, 0.3 + z * 0.04],
        }
    )
    t = axes.encoders(frame, METRIC)
    assert not isinstance(t, str)
    siglip, dinov2 = t.set_index("encoder").loc["siglip"], t.set_index("encoder").loc["dinov2"]
    # siglip: var between runs 0.005, item se² 0.0025: se = sqrt((0.005 + 0.0025) / 2)
    assert siglip["hi"] - siglip["mean"] == pytest.approx(z * (0.0075 / 2) ** 0.5, abs=1e-6)
    assert dinov2["hi"] - dinov2["mean"] == pytest.approx(z * 0.04, abs=1e-6)  # one run: its items only
    fig = figures.make_figures(frame, METRIC).made["encoders"]
    [bars] = [c for c in fig.axes[0].containers if hasattr(c, "errorbar") and c.errorbar is not None]
    assert bars.errorbar is not None  # interval bars drawn
