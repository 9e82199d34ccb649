"""The performance benchmarks run with tiny settings and print what they measure
(benchmarks/: feature_cache, startup, data_wait, eval_speed, decoders). Numbers, not
speed assertions: the tests check that each compares what it says it compares, on the
data its functions return where it has them, and that its command prints its table."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import numpy as np
import pytest

from benchmarks import data_wait, decoders, encode_batching, eval_speed, feature_cache, startup
from src.data.samplers import FpsSampler
from tests.helpers import TINY_DATA

SMALL = [o for o in TINY_DATA if not o.startswith("profile.epochs")]


def table(out: str, header: str) -> list[list[str]]:
    """The rows after the line that starts with `header`, up to the next blank line (for the
    benchmarks whose numbers exist only in what main prints)."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.lstrip().startswith(header)) + 1
    rows = []
    for line in lines[start:]:
        if not line.strip():
            break
        rows.append(line.split())
    return rows


def test_every_decoder_way_returns_our_frames() -> None:
    ways = decoders.available()
    assert {"ours", "decord", "pyav", "torchcodec"} <= set(ways)
    sampler = FpsSampler(fps=2.0)
    ours = decoders.ours(decoders.VIDEO, sampler)
    assert ours.shape == (19, 360, 640, 3)  # 2 fps of the 9.6 s clip
    runnable = {k: f for k, f in ways.items() if callable(f)}
    assert {"ours", "decord", "pyav"} <= set(runnable)
    for name, way in runnable.items():
        frames = way(decoders.VIDEO, sampler)
        assert frames.shape == ours.shape and frames.dtype == np.uint8, name
        assert np.abs(frames.astype(int) - ours).mean() <= 1.0, name  # the same frames (up to rounding)


def test_decoders_prints_a_row_per_way(capsys: pytest.CaptureFixture[str]) -> None:
    assert decoders.main(["--rounds", "1", "--seconds", "0.05"]) == 0
    out = capsys.readouterr().out
    assert all(re.search(rf"^{way}\s", out, re.M) for way in decoders.available())
    assert re.search(r"ours / best library: [\d.]+ by wall time, [\d.]+ by CPU time", out)
    assert "same shape everywhere: True" in out


@pytest.mark.slow
def test_eval_speed_scores_each_way_with_the_same_answers(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
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
@pytest.mark.parametrize("workers", [0, 1])
def test_data_wait_profiles_the_loop(workers: int, data_dir: Path) -> None:
    wait, step, encoder = data_wait.measure(
        [f"paths.data_dir={data_dir}", "logger=none", "cache.features=false", f"data.num_workers={workers}", *SMALL],
        batches=3,
    )
    assert wait >= 0 and step > 0 and 0 < encoder <= step  # the encoder's time is part of the step's


def test_data_wait_prints_a_row_per_worker_count(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[list[str]] = []

    def measure(overrides: list[str], batches: int) -> tuple[float, float, float]:
        asked.append(overrides)
        return 0.01, 0.1, 0.05

    monkeypatch.setattr(data_wait, "measure", measure)
    assert data_wait.main(["--batches", "3", "--workers", "0", "2"]) == 0
    assert [o[-1] for o in asked] == ["data.num_workers=0", "data.num_workers=2"]
    assert len(table(capsys.readouterr().out, "workers")) == 2


@pytest.mark.slow
def test_feature_cache_benchmark_runs_a_sweep_both_ways(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    args = argparse.Namespace(
        n_train=8,
        n_eval=4,
        epochs=2,
        workers=0,
        threads=None,
        warm=False,
        out=tmp_path,
        data_dir=tmp_path / "data",
        extra=[],
    )
    result = feature_cache.bench("resampler", feature_cache.SWEEPS["resampler"], args)
    off, on = result["passes"]["off"], result["passes"]["on"]
    assert set(result["passes"]) == {"off", "on"} and result["runs"] == 3
    assert (off["hits"], off["misses"]) == (0, 0)
    assert on["seconds"] > 0 and on["cpu"] > 0  # wall and CPU seconds
    assert on["misses"] > 0 and on["hits"] > 2 * on["misses"]  # the first run's first epoch misses; the rest hit
    # every run's metrics and answers identical with and without the cache
    assert (on["same"], on["why"]) == (True, "identical")
    # the command prints a row per pass, and exits 0 when every pass is identical
    monkeypatch.setattr(feature_cache, "bench", lambda *_: result)
    capsys.readouterr()
    assert feature_cache.main(["--sweeps", "resampler", "--out", str(tmp_path)]) == 0
    assert len(table(capsys.readouterr().out, "sweep")) == 2


@pytest.mark.slow
def test_startup_prints_help_compose_and_per_run_overhead(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        startup.main(
            ["--repeats", "1", "--runs", "2", "--batches", "1", "--logger", "none", "--data-dir", str(data_dir), *SMALL]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert re.search(r"python -m src.train --help\s+wall best\s+[\d.]+ s", out)
    assert re.search(r"python -m src.train --cfg job\s+wall best", out)
    assert re.search(r"per-run overhead in a multirun: -?[\d.]+ s", out)


@pytest.mark.slow
def test_encode_batching_compares_both_ways_on_the_same_items(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert encode_batching.main(["--batches", "2", "--data-dir", str(data_dir), *SMALL]) == 0
    rows = {r[0]: r for r in table(capsys.readouterr().out, "encoder")}
    assert set(rows) == {"siglip", "dinov2"}
    for r in rows.values():  # CPU ms both ways; items whose features differ, of those encoded
        assert float(r[2]) > 0 and float(r[3]) > 0 and 0 <= int(r[4]) <= round(2 * float(r[1]))
        assert float(r[5]) < 1e-3  # any difference is in the last bits
