"""`trainer=ddp` on the CPU: 2 processes (gloo), one run directory, one record, every item scored."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from src.launch.dist import is_main_process
from tests.helpers import TINY_DATA, records, run_train

DDP = ["trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2", "logger=csv"]


@pytest.mark.slow
def test_two_cpu_processes_make_one_run_dir_and_one_record(data_dir: Path, tmp_path: Path) -> None:
    # a multirun of two grid points: the children of each DDP job run that job, not the sweep
    proc = run_train([*DDP, "llm=qwen0.5b,qwen1.5b", "sweep=ddp", *TINY_DATA], data_dir, tmp_path, multirun=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    sweep = tmp_path / "sweeps" / "ddp"
    run_dirs = sorted(p for p in sweep.iterdir() if p.is_dir())
    assert len(run_dirs) == 2  # one per grid point; the second rank made none
    recs = records(sweep)
    assert len(recs) == 2 and all(r["status"] == "ok" for r in recs)
    assert "All distributed processes registered. Starting with 2 processes" in proc.stdout + proc.stderr
    for rec in recs:
        run_dir = Path(rec["run_dir"])
        assert (run_dir / "ddp_rank1.log").is_file()  # rank 1 ran in the same directory
        rows = list(csv.DictReader((run_dir / "items.csv").open()))
        # each rank scored half of the 12 items; the record has all of them, once
        assert sorted(r["item"] for r in rows) == sorted({r["item"] for r in rows}) and len(rows) == 12
        assert 0 <= rec["metrics"]["test/synthetic/overall"] <= 1


def test_rank_zero_is_the_main_process(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("RANK", "SLURM_PROCID", "NODE_RANK", "LOCAL_RANK"):
        monkeypatch.delenv(var, raising=False)
    assert is_main_process()
    monkeypatch.setenv("LOCAL_RANK", "0")
    assert is_main_process()
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert not is_main_process()
    monkeypatch.setenv("LOCAL_RANK", "0")
    monkeypatch.setenv("SLURM_PROCID", "3")
    assert not is_main_process()
