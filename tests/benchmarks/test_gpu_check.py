"""benchmarks/gpu_check.py where no GPU is lent: the small members at their real size
(profile=fullsize SigLIP + Qwen2-0.5B) through every stage of c_vc_cl on this CPU, one step
each. What it reports must hold: every stage ran, every trained part moved, and the measured
peak memory is within 25% of the memory model's estimate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import gpu_check


@pytest.mark.slow
def test_the_gpu_check_runs_fullsize_on_a_cpu(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = gpu_check.main(["--cpu", "--steps", "1", "--eval-items", "2", "--out", str(tmp_path)])
    printed = capsys.readouterr().out
    rows = json.loads((tmp_path / "gpu_check.json").read_text())
    assert code == 0, printed
    assert [r["stage"] for r in rows] == ["stage1_c", "stage2_vc", "stage3_cl"]
    assert "| qwen0.5b | cpu | stage3_cl | ok |" in printed
    trained = {"stage1_c": {"connector"}, "stage2_vc": {"vision", "connector"}, "stage3_cl": {"connector", "llm"}}
    for r in rows:
        moved = dict(zip(r["moved"].split()[::2], map(float, r["moved"].split()[1::2])))
        assert set(moved) == trained[r["stage"]] and min(moved.values()) > 0.9, r
        assert r["step_s"] > 0 and r["tokens_per_s"] > 0 and r["mfu"] is None  # MFU: GPUs only
        assert r["peak_gb"] == pytest.approx(r["estimate_gb"], rel=0.25), r
    [record] = [json.loads(p.read_text()) for p in tmp_path.glob("*/result.json")]
    assert record["status"] == "ok" and record["design"]["params"]["llm"] > 4e8  # the real Qwen2-0.5B
    assert record["precision"]["weights"] == {"vision": "float32", "connector": "float32", "llm": "float32"}


def test_a_failed_run_is_a_row_that_says_why() -> None:
    record = {"status": "failed", "reason": "Traceback ...\ntorch.OutOfMemoryError: CUDA out of memory"}
    [row] = gpu_check.rows("qwen2.5-7b", "gpu", record)
    assert row["status"] == "FAILED: torch.OutOfMemoryError: CUDA out of memory"
    assert "FAILED" in gpu_check.table([row])


def test_the_gpu_runs_use_one_device_and_bf16() -> None:
    args = gpu_check.overrides("qwen2.5-7b", "fsdp", steps=3, cpu=False, frames=8)
    assert "trainer.devices=1" in args and "profile=fullsize" in args and "schedule=c_vc_cl" in args
    assert not any(a.startswith(("profile.dtype", "trainer.precision")) for a in args)  # the profile's bf16
