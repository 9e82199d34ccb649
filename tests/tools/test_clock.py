"""The speed question needs the video's clock: its ceiling per sampler, and the sweep's verdict."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from src.data.samplers import FpsSampler, UniformSampler
from src.data.synthetic import SyntheticSpec, schedule
from src.tools.clock import SWEEP_SPEC, ceiling, eval_ceiling, main
from tests.helpers import ROOT


def test_fps_sampling_can_read_the_period_and_uniform_sampling_cannot() -> None:
    # the best any model can do from the sampled frames of the sampling_speed sweep's videos
    fps, uniform = ceiling(FpsSampler(fps=2.0, max_clips=64), draws=4000), ceiling(UniformSampler(8), draws=4000)
    assert fps > 0.97 and 0.3 < uniform < 0.6, (fps, uniform)


def test_the_ceiling_on_the_benchmarks_own_eval_questions() -> None:
    # rebuilt from their seeds: the sweep's 200 eval questions, as its runs see them
    spec = SyntheticSpec(scenes=("speed",), max_duration=20.0, control_share=0.0, n_eval=200)
    fps, n = eval_ceiling(FpsSampler(fps=2.0, max_clips=64), spec, draws=8000)
    uniform, _ = eval_ceiling(UniformSampler(8), spec, draws=8000)
    assert n == 200 and fps > 0.97 and 0.4 < uniform < 0.6, (fps, uniform)
    # other kinds and controls are not speed questions: only the speed items count
    mixed = SyntheticSpec(n_eval=50)
    speed_items = [k for k, control in schedule(mixed, 50) if k == "speed" and control is None]
    assert 0 < len(speed_items) < 50
    assert eval_ceiling(UniformSampler(8), mixed, draws=500)[1] == len(speed_items)


def test_uniform_sampling_of_videos_of_one_length_reads_the_period() -> None:
    # what uniform sampling lacks is the clock, not frames: at one known length it reads it
    fixed = SyntheticSpec(scenes=("speed",), min_duration=10.0, max_duration=10.0, control_share=0.0)
    assert ceiling(UniformSampler(8), fixed, draws=2000) > 0.97


def test_a_single_frame_says_nothing_of_the_period() -> None:
    # one frame a video: the ideal observer is at chance (the first colour is uniform)
    assert ceiling(UniformSampler(1), SWEEP_SPEC, draws=4000) < 0.3


def _record(root: Path, sampler: str, seed: int, acc: float | None, status: str = "ok") -> None:
    run = root / f"sampler={sampler},seed={seed}"
    run.mkdir(parents=True)
    metrics = {} if acc is None else {"test/synthetic/perception": acc, "test/synthetic/overall": acc}
    design = {"fps": 2.0, "num_frames": None} if sampler == "fps" else {"fps": None, "num_frames": 8}
    rec = {
        "status": status,
        "choices": {"sampler": sampler},
        "metrics": metrics,
        "design": design,
        "config": {
            "seed": seed,
            "sampler": {"max_clips": 64} if sampler == "fps" else {},
            "data": {"synthetic": {"scenes": ["speed"], "max_duration": 10.0, "n_eval": 40, "control_share": 0.0}},
        },
    }
    (run / "result.json").write_text(json.dumps(rec))


def test_the_sweep_verdict_per_seed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for seed, (f, u) in enumerate([(0.9, 0.4), (0.8, 0.45), (0.95, 0.5)]):
        _record(tmp_path, "fps", seed, f)
        _record(tmp_path, "uniform", seed, u)
    _record(tmp_path, "fps", 3, None, status="failed")  # a failed run is left out
    assert main([str(tmp_path), "--draws", "400"]) == 0
    out = capsys.readouterr().out
    assert "| 1 | 0.800 | 0.450 | +0.350 |" in out and "fps beats uniform on 3 of 3 seeds" in out
    assert "ceiling on these 40 speed questions" in out  # the runs' own eval questions
    _record(tmp_path, "uniform", 4, 0.6)
    _record(tmp_path, "fps", 4, 0.55)
    assert main([str(tmp_path), "--draws", "400"]) == 1
    assert "fps beats uniform on 3 of 4 seeds" in capsys.readouterr().out


def test_the_verdict_needs_pairs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _record(tmp_path, "fps", 0, 0.9)
    assert main([str(tmp_path), "--draws", "400"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {tmp_path}: no seed with finished runs of both")
    assert main([str(tmp_path / "absent")]) == 2
    assert "no such sweep folder" in capsys.readouterr().err


def test_the_ceiling_is_for_the_sweeps_own_videos() -> None:
    from omegaconf import OmegaConf

    from src.config.container import to_dict

    sweep = OmegaConf.load(ROOT / "sweeps" / "sampling_speed.yaml").data.synthetic
    spec = SyntheticSpec.from_dict(to_dict(sweep))
    assert (spec.scenes, spec.min_duration, spec.max_duration, spec.native_fps) == (
        SWEEP_SPEC.scenes,
        SWEEP_SPEC.min_duration,
        SWEEP_SPEC.max_duration,
        SWEEP_SPEC.native_fps,
    )
