"""The performance benchmarks run with tiny settings and print what they measure
(benchmarks/: feature_cache, startup, data_wait, eval_speed, decoders). Numbers, not
speed assertions: the tests check that each compares what it says it compares."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from benchmarks import data_wait, decoders, encode_batching, eval_speed, feature_cache, startup
from tests.helpers import TINY_DATA


SMALL = [o for o in TINY_DATA if not o.startswith("profile.epochs")]


def table(out: str, header: str) -> list[list[str]]:
    """The rows after the line that starts with `header`, up to the next blank line."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.lstrip().startswith(header)) + 1
    rows = []
    for line in lines[start:]:
        if not line.strip():
            break
        rows.append(line.split())
    return rows


def test_decoders_compares_ours_with_each_library(capsys: pytest.CaptureFixture[str]) -> None:
    assert decoders.main(["--rounds", "1", "--seconds", "0.05"]) == 0
    out = capsys.readouterr().out
    rows = {r[0]: r for r in table(out, "way") if r[1] != "/"}  # not the summary line
    assert {"ours", "decord", "pyav", "torchcodec"} <= set(rows)
    for way in ("ours", "decord", "pyav"):
        assert float(rows[way][1]) > 0 and float(rows[way][3]) > 0
    assert "19 frames of 640x360" in out  # 2 fps of the 9.6 s clip, the same frames everywhere
    assert re.search(r"ours / best library: [\d.]+ by wall time, [\d.]+ by CPU time", out)
    assert "same shape everywhere: True" in out


@pytest.mark.slow
def test_eval_speed_scores_each_way_with_the_same_answers(data_dir: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert eval_speed.main(["--workers", "0", "--data-dir", str(data_dir), *SMALL]) == 0
    rows = {" ".join(r[:-5]): r[-5:] for r in table(capsys.readouterr().out, "way")}
    items = {int(r[0]) for r in rows.values()}
    assert items == {12}  # every way scored the whole eval split
    batches = int(rows["per item, no cache"][3])
    assert batches == 1  # one LLM pass scores every option of every item of a batch
    assert int(rows["one pass per option"][3]) == 4 * batches  # 4 options, 4 passes
    # every way chose the same answers: the cache and per-item encoding change no result
    assert all(r[4] == "same" for r in rows.values()), rows


@pytest.mark.slow
def test_data_wait_profiles_the_loop_by_worker_count(data_dir: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert data_wait.main(["--batches", "3", "--workers", "0", "1", "--data-dir", str(data_dir),
                           *SMALL]) == 0
    rows = table(capsys.readouterr().out, "workers")
    assert [int(r[0]) for r in rows] == [0, 1]
    assert all(float(r[1]) >= 0 and float(r[2]) > 0 for r in rows)


@pytest.mark.slow
def test_feature_cache_benchmark_runs_a_sweep_both_ways(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    code = feature_cache.main(["--sweeps", "resampler", "--n-train", "8", "--n-eval", "4", "--epochs", "2",
                               "--out", str(tmp_path), "--workers", "0"])
    out = capsys.readouterr().out
    assert code == 0, out  # 0: every run's metrics and answers identical with and without the cache
    rows = {r[2]: r for r in table(out, "sweep")}
    assert set(rows) == {"off", "on"} and rows["on"][1] == "3"
    assert (int(rows["off"][7]), int(rows["off"][8])) == (0, 0)
    assert float(rows["on"][3]) > 0 and float(rows["on"][5]) > 0  # wall and CPU seconds
    hits, misses = int(rows["on"][7]), int(rows["on"][8])
    assert misses > 0 and hits > 2 * misses  # the first run's first epoch misses; the rest hit
    assert rows["on"][9] == "identical"


@pytest.mark.slow
def test_startup_prints_help_compose_and_per_run_overhead(data_dir: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert startup.main(["--repeats", "1", "--runs", "2", "--batches", "1", "--logger", "none",
                         "--data-dir", str(data_dir), *SMALL]) == 0
    out = capsys.readouterr().out
    assert re.search(r"python -m src.train --help\s+wall best\s+[\d.]+ s", out)
    assert re.search(r"python -m src.train --cfg job\s+wall best", out)
    assert re.search(r"per-run overhead in a multirun: -?[\d.]+ s", out)


@pytest.mark.slow
def test_encode_batching_compares_both_ways_on_the_same_items(data_dir: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert encode_batching.main(["--batches", "2", "--data-dir", str(data_dir), *SMALL]) == 0
    rows = {r[0]: r for r in table(capsys.readouterr().out, "encoder")}
    assert set(rows) == {"siglip", "dinov2"}
    for r in rows.values():  # CPU ms both ways; items whose features differ, of those encoded
        assert float(r[2]) > 0 and float(r[3]) > 0 and 0 <= int(r[4]) <= round(2 * float(r[1]))
        assert float(r[5]) < 1e-3  # any difference is in the last bits
