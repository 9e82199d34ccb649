"""A run killed with SIGKILL in the middle of a stage, started again, ends as if never killed."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch

from tests.helpers import ROOT, TINY_DATA, checkpoint_progress, records, train_cmd, train_env

# three stages (connector; vision + connector; connector + LLM), a checkpoint every step
ARGS = ["schedule=c_vc_cl", "checkpoint.every_steps=1", "logger=wandb", *TINY_DATA]


def _kill_when(
    data_dir: Path, out: Path, stage: int, step: int, timeout: float = 600, args: list[str] | None = None
) -> None:
    """Start the run (`args`, default ARGS) and SIGKILL it once its checkpoint is at (stage,
    step), mid-stage; with its children (the other ranks of a multi-process run)."""
    log = out.parent / f"{out.name}-{stage}-{step}.log"
    with open(log, "w") as sink:
        proc = subprocess.Popen(
            train_cmd(*(ARGS if args is None else args)),
            start_new_session=True,
            cwd=ROOT,
            env=train_env(data_dir, out, WANDB_MODE="offline"),
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            assert proc.poll() is None, f"the run ended before it could be killed:\n{log.read_text()[-3000:]}"
            for ckpt in out.rglob("last.ckpt"):
                got = checkpoint_progress(ckpt)
                if got is not None and got[0] == stage and not got[1] and got[2] >= step:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
                    return
            time.sleep(0.1)
        raise AssertionError("the run never reached the point to kill it at")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


def _result(out: Path) -> tuple[dict, list[dict]]:
    [rec] = records(out)
    items = list(csv.DictReader((Path(rec["run_dir"]) / "items.csv").open()))
    return rec, items


@pytest.mark.slow
def test_killed_twice_and_resumed_matches_an_uninterrupted_run(data_dir: Path, tmp_path: Path) -> None:
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    done = subprocess.run(
        train_cmd(*ARGS),
        cwd=ROOT,
        env=train_env(data_dir, whole, WANDB_MODE="offline"),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    # killed in the middle of stage 1 (of 3 steps), then in the middle of stage 3 (of 5)
    _kill_when(data_dir, killed, stage=0, step=1)
    assert not list(killed.rglob("result.json"))
    _kill_when(data_dir, killed, stage=2, step=2)
    again = subprocess.run(
        train_cmd(*ARGS),
        cwd=ROOT,
        env=train_env(data_dir, killed, WANDB_MODE="offline"),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert again.returncode == 0, again.stderr[-3000:]
    assert "resuming stage stage3_cl" in again.stdout + again.stderr

    a, items_a = _result(whole)
    b, items_b = _result(killed)
    assert a["status"] == b["status"] == "ok"
    assert b["schedule"]["resumed_at_stage"] == 2 and b["schedule"]["resumed_mid_stage"]
    assert a["schedule"]["resumed_at_stage"] is None
    # the same weights at the end: the same loss on the last step, the same answers
    assert b["metrics"]["train/loss"] == pytest.approx(a["metrics"]["train/loss"], abs=1e-5)
    assert {k: v for k, v in b["metrics"].items() if k.startswith("test/")} == {
        k: v for k, v in a["metrics"].items() if k.startswith("test/")
    }
    assert [(r["item"], r["chosen"]) for r in items_b] == [(r["item"], r["chosen"]) for r in items_a]
    # one W&B run: its id kept in the run directory, every attempt logged to it
    run_dir = Path(b["run_dir"])
    run_id = (run_dir / "wandb_id").read_text().strip()
    attempts = sorted(p.name for p in (run_dir / "wandb").glob("offline-run-*"))
    assert len(attempts) == 3 and all(name.endswith(run_id) for name in attempts)
    a_ckpt = torch.load(Path(a["run_dir"]) / "checkpoints" / "last.ckpt", weights_only=True, mmap=True)
    b_ckpt = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True, mmap=True)
    for key, value in a_ckpt["state_dict"].items():
        assert torch.allclose(value, b_ckpt["state_dict"][key], atol=1e-6), key
