"""The loading benchmark runs and prints one row per source, sampler, decode mode and worker count."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import loading
from src.data.synthetic import SyntheticSpec, ensure


def test_loading_benchmark_prints_its_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = ensure(SyntheticSpec(n_train=8, n_eval=1, min_duration=2, max_duration=3, n_image=0,
                                  n_multi_image=0, n_text=0), tmp_path, progress=False)
    assert loading.main(["--manifest", str(folder / "train.jsonl"), "--videos", "4", "--batch", "2",
                         "--seconds", "0.2", "--workers", "0", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = [ln.split() for ln in lines[2:]]
    assert len(rows) == 2 * 2 * 2 * 2  # sources x samplers x decode modes x worker counts
    for row in rows:
        videos, clips, frames = map(float, row[-3:])
        assert videos > 0 and clips >= videos and frames == clips  # image encoders: 1 frame a clip
    # uniform sampling takes 8 frames of every video (rates are printed to 0.1)
    uniform = [r for r in rows if "uniform" in r]
    assert len(uniform) == 8
    assert all(float(r[-2]) == pytest.approx(8 * float(r[-3]), abs=0.5) for r in uniform)
