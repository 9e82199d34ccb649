"""Benchmark correlations: hand-computed values, columns left out with a reason, the figure."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis import correlations as corr
from analysis import plots


def table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "status": ["ok", "ok", "ok", "ok", "failed"],
            "test/b/x": [0.1, 0.2, 0.3, 0.4, 0.9],
            "test/b/y": [0.2, 0.4, 0.6, 0.8, 0.0],  # 2x: +1 with x
            "test/b/z": [0.4, 0.3, 0.2, 0.1, 0.5],  # reversed: -1 with x
            "test/b/w": [0.1, 0.3, 0.2, 0.4, 0.0],  # hand-computed below
            "test/b/flat": [0.5, 0.5, 0.5, 0.5, 0.1],
            "test/b/overall": [0.3, 0.3, 0.3, 0.4, 0.2],
            "llm": ["a", "b", "c", "d", "e"],
        }
    )


def test_values_match_hand_computation() -> None:
    frame = table()
    cols = corr.metric_columns(frame)
    assert cols == ["test/b/x", "test/b/y", "test/b/z", "test/b/w", "test/b/flat"]  # no overall
    result = corr.correlations(frame, cols)
    assert result.runs == 4  # the failed run is not a model to compare
    m = result.matrix
    assert m.loc["test/b/x", "test/b/y"] == pytest.approx(1.0)
    assert m.loc["test/b/x", "test/b/z"] == pytest.approx(-1.0)
    # x = (1,2,3,4)/10, w = (1,3,2,4)/10: deviations (-1.5,-.5,.5,1.5) and (-1.5,.5,-.5,1.5)
    # -> cov sum 2.25-.25-.25+2.25 = 4, var sums 5 and 5 -> r = 0.8
    assert m.loc["test/b/x", "test/b/w"] == pytest.approx(0.8)
    assert "test/b/flat" in result.left_out and "same value" in result.left_out["test/b/flat"]
    spearman = corr.correlations(frame, cols, "spearman").matrix
    assert spearman.loc["test/b/x", "test/b/w"] == pytest.approx(0.8)  # ranks equal the values here


def test_too_few_runs_are_reported() -> None:
    frame = table().iloc[:2]
    result = corr.correlations(frame, ["test/b/x", "test/b/y"])
    assert result.columns == [] and set(result.left_out) == {"test/b/x", "test/b/y"}


def test_heatmap_has_labels_and_values() -> None:
    fig = plots.heatmap_figure(np.array([[1.0, 0.8], [0.8, 1.0]]), ["b/x", "b/w"], title="t")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["b/x", "b/w"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["b/x", "b/w"]
    assert sorted(t.get_text() for t in ax.texts) == ["0.80", "0.80", "1.00", "1.00"]
    assert ax.get_title() == "t"


def test_cli_writes_outputs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    table().to_csv(tmp_path / "results.csv", index=False)
    assert corr.main([str(tmp_path / "results.csv"), "--out", str(tmp_path / "c")]) == 0
    out, err = capsys.readouterr()
    assert "over 4 ok runs" in out and "left out test/b/flat" in err
    for name in ("correlations.csv", "correlations.json", "correlations.png"):
        assert (tmp_path / "c" / name).stat().st_size > 0


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--method", "cosine"], "--method"),
        (["--columns", "^nothing"], "no metric columns"),
        (["--columns", "("], "not a regular expression"),
    ],
)
def test_cli_bad_input_is_one_line(
    args: list[str], needle: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    table().to_csv(tmp_path / "results.csv", index=False)
    assert corr.main([str(tmp_path / "results.csv"), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and needle in err[0]


def test_cli_one_run_refuses_in_one_line_and_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    table().iloc[:1].to_csv(tmp_path / "results.csv", index=False)
    assert corr.main([str(tmp_path / "results.csv"), "--out", str(tmp_path / "c")]) == 2
    out, err = capsys.readouterr()
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "0 metric column(s) vary over 3 or more ok runs (1 ok run(s)" in lines[0]
    assert "over 0 ok runs" not in out and not (tmp_path / "c").exists()
