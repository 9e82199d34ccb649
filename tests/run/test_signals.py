"""SIGTERM ends a run with a checkpoint and a non-zero status; the same command resumes it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.helpers import ROOT, TINY_DATA, checkpoint_progress, records, train_cmd, train_env

# three stages (the last of 4 epochs of 5 steps: the signal lands well within it), a checkpoint
# every 2 steps: one at an odd step is the stop's
ARGS = [
    "schedule=c_vc_cl",
    "checkpoint.every_steps=2",
    "checkpoint.every_minutes=null",
    "logger=none",
    *[a for a in TINY_DATA if not a.startswith("profile.epochs=")],
    "profile.epochs=4",
]


@pytest.mark.slow
def test_sigterm_saves_a_checkpoint_exits_non_zero_and_the_rerun_resumes(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    log = tmp_path / "run.log"
    with open(log, "w") as sink:
        proc = subprocess.Popen(
            train_cmd(*ARGS), cwd=ROOT, env=train_env(data_dir, out), stdout=sink, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and proc.poll() is None:
            got = next((g for c in out.rglob("last.ckpt") if (g := checkpoint_progress(c))), None)
            if got is not None and got[0] == 2 and not got[1] and got[2] >= 2:  # in the last stage
                proc.send_signal(signal.SIGTERM)
                break
            time.sleep(0.05)
        rc = proc.wait(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    text = log.read_text()
    assert rc == 128 + signal.SIGTERM, text[-3000:]
    errors = [ln for ln in text.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "stopped by SIGTERM" in errors[0] and "again to resume" in errors[0]
    [rec] = records(out)
    assert rec["status"] == "failed" and rec["interrupted"] == "SIGTERM"
    assert "the same command resumes it" in rec["reason"]
    run_dir = Path(rec["run_dir"])
    stage, done, step = checkpoint_progress(run_dir / "checkpoints" / "last.ckpt")  # type: ignore[misc]
    assert stage == 2 and not done and step >= 3  # saved at the stop, after the last periodic one
    assert not list(run_dir.rglob("*.tmp"))
    again = subprocess.run(
        train_cmd(*ARGS), cwd=ROOT, env=train_env(data_dir, out), capture_output=True, text=True, timeout=600
    )
    assert again.returncode == 0, again.stderr[-3000:]
    rec = json.loads((run_dir / "result.json").read_text())
    assert rec["status"] == "ok" and rec["schedule"]["resumed_at_stage"] == 2 and rec["schedule"]["resumed_mid_stage"]


def test_a_signal_noted_while_a_stage_trains_still_stops_the_run_after_its_last_step(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A SIGTERM after a stage's last step (no step left to act on it) stops the run once the
    stage's end is saved (src/run/stages.py stop_after_stage), not at the end of the run."""
    from types import SimpleNamespace

    from src.run import signals
    from src.run.stages import stop_after_stage

    one_rank = SimpleNamespace(world_size=1)
    before = {s: signal.getsignal(s) for s in signals.SIGNALS}
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    monkeypatch.setattr(signals, "_requested", None)
    monkeypatch.setattr(signals, "_active", False)
    try:
        stop_after_stage(one_rank)  # type: ignore[arg-type]  # nothing asked: nothing happens
        assert signals.install()
        with signals.training():
            os.kill(os.getpid(), signal.SIGTERM)  # only noted while a stage trains
            deadline = time.monotonic() + 5
            while signals.requested() is None and time.monotonic() < deadline:
                time.sleep(0.01)
        assert signals.requested() == signal.SIGTERM
        with pytest.raises(signals.Interrupted) as stopped:
            stop_after_stage(one_rank)  # type: ignore[arg-type]
        assert stopped.value.exit_status == 143
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)
