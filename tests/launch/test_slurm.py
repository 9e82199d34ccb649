"""On a real SLURM cluster: a 2x2 sweep through `hydra/launcher=slurm_cpu`, and a job requeued
in the middle of training that resumes from its checkpoint.

The session fixture uses a running cluster, or starts one with scripts/slurm_up.sh (root on
Linux with apt-get: Debian's slurm-wlm, munge, slurmdbd with MariaDB) and stops it at the
end. Where it cannot, the tests skip with the reason; in CI (CI=true) they fail instead.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import ROOT, TINY_DATA, train_cmd, train_env

pytestmark = pytest.mark.slurm
IN_CI = os.environ.get("CI", "").lower() == "true"


def _up() -> bool:
    if not shutil.which("sinfo"):
        return False
    out = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=20).stdout
    return any(s.startswith(("idle", "mixed", "allocated")) for s in out.split())


def _cannot_start() -> str | None:
    if sys.platform != "linux":
        return f"not Linux ({sys.platform})"
    if os.geteuid() != 0:
        return "not root"
    if not shutil.which("apt-get"):
        return "no apt-get"
    return None


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"the SLURM tests must run in CI, but: {reason}")
    pytest.skip(f"no SLURM cluster here: {reason} (as root: make slurm-up)")


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[None]:
    if _up():
        yield  # someone's cluster (make slurm-up): used, and left running
        return
    why = _cannot_start()
    if why:
        _unavailable(why)
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "slurm_up.sh")], capture_output=True, text=True, timeout=900)
    if proc.returncode != 0 or not _up():
        _unavailable(f"scripts/slurm_up.sh failed ({proc.returncode}): {(proc.stdout + proc.stderr)[-1500:]}")
    yield
    subprocess.run(["bash", str(ROOT / "scripts" / "slurm_down.sh")], capture_output=True, timeout=300)


def _jobs(sweep_dir: Path) -> list[str]:
    """The SLURM job ids of a sweep's runs (array tasks), from their submitit folders."""
    return sorted(
        p.name
        for p in sweep_dir.glob(".submitit/*/*")
        if re.fullmatch(r"\d+(_\d+)?", p.name) and list(p.glob("*_submitted.pkl"))
    )


def _sacct(job: str) -> list[str]:
    """The states of a job's attempts (requeued ones included), once accounting has them all."""
    for _ in range(60):  # slurmdbd hears of a job's end a moment after the job ends
        out = subprocess.run(
            ["sacct", "-n", "-X", "-D", "-j", job, "-o", "State"], capture_output=True, text=True, timeout=30
        ).stdout.split()
        if out and out[-1] not in ("RUNNING", "PENDING", "COMPLETING"):
            break
        time.sleep(0.5)
    return out


@pytest.mark.slow
def test_a_2x2_sweep_through_slurm_makes_four_records(slurm_cluster: None, data_dir: Path, tmp_path: Path) -> None:
    args = [
        "hydra/launcher=slurm_cpu",
        "encoder=siglip,dinov2",
        "llm=qwen0.5b,qwen1.5b",
        "logger=none",
        "sweep=slurm",
        *TINY_DATA,
    ]
    proc = subprocess.run(
        train_cmd(*args, multirun=True),
        cwd=ROOT,
        env=train_env(data_dir, tmp_path),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    sweep = tmp_path / "sweeps" / "slurm"
    recs = [json.loads(p.read_text()) for p in sweep.glob("*/result.json")]
    assert len(recs) == 4 and all(r["status"] == "ok" for r in recs)
    assert {(r["choices"]["encoder"], r["choices"]["llm"]) for r in recs} == {
        (e, m) for e in ("siglip", "dinov2") for m in ("qwen0.5b", "qwen1.5b")
    }
    # four SLURM jobs, finished as accounting saw them, submitted with the preset's options
    jobs = _jobs(sweep)
    assert len(jobs) == 4 and all(_sacct(j)[-1] == "COMPLETED" for j in jobs), [(j, _sacct(j)) for j in jobs]
    [script] = {p.read_text() for p in sweep.glob(".submitit/**/*_submission.sh")}
    for line in (
        "#SBATCH --partition=debug",
        "#SBATCH --cpus-per-task=1",
        "#SBATCH --ntasks-per-node=1",
        "#SBATCH --signal=USR2@120",
        "#SBATCH --array=0-3%4",
    ):
        assert line in script.splitlines(), script
    status = subprocess.run(
        [sys.executable, "-m", "src.sweep", "status", str(sweep)], cwd=ROOT, capture_output=True, text=True, timeout=120
    ).stdout
    assert status.strip().splitlines()[-1] == (
        "4 grid points: 4 done, 0 failed, 0 running, 0 interrupted, 0 queued, 0 missing"
    )


@pytest.mark.slow
def test_a_job_requeued_mid_training_resumes_and_finishes_once(
    slurm_cluster: None, data_dir: Path, tmp_path: Path
) -> None:
    # long enough to be caught in the middle: a checkpoint every step, a few short epochs
    args = [
        "hydra/launcher=slurm_cpu",
        "sweep=requeue",
        "seed=0",
        "checkpoint.every_steps=1",
        *[a for a in TINY_DATA if not a.startswith("profile.epochs")],
        "profile.epochs=4",
    ]
    sweep = tmp_path / "sweeps" / "requeue"
    launcher = subprocess.Popen(
        train_cmd(*args, multirun=True),
        cwd=ROOT,
        env=train_env(data_dir, tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 300
        while not list(sweep.glob("*/checkpoints/last.ckpt")):
            assert launcher.poll() is None and time.monotonic() < deadline, "no checkpoint before the end"
            time.sleep(0.2)
        [job] = _jobs(sweep)
        subprocess.run(["scontrol", "requeue", job], check=True, timeout=30)
        # SLURM holds a requeued job for two minutes (its begin time); let it start now
        while (
            subprocess.run(
                ["squeue", "-h", "-j", job, "-o", "%T"], capture_output=True, text=True, timeout=30
            ).stdout.strip()
            != "PENDING"
        ):
            assert time.monotonic() < deadline
            time.sleep(0.2)
        subprocess.run(["scontrol", "update", f"JobId={job}", "StartTime=now"], check=True, timeout=30)
        out = launcher.communicate(timeout=600)[0]
    finally:
        if launcher.poll() is None:
            launcher.kill()
    assert launcher.returncode == 0, out[-3000:]
    assert _sacct(job) == ["REQUEUED", "COMPLETED"], _sacct(job)
    [run_dir] = [p.parent for p in sweep.glob("*/result.json")]
    rec = json.loads((run_dir / "result.json").read_text())
    assert rec["status"] == "ok" and rec["schedule"]["resumed_mid_stage"] is True, rec["reason"]
    log = (run_dir / "train.log").read_text()
    assert "resuming stage" in log and "was requeued or preempted" in log
    # one W&B run: every attempt (an offline folder each) logs to the same run id
    attempts = sorted((run_dir / "wandb").glob("offline-run-*"))
    assert len(attempts) == 2 and len({p.name.rsplit("-", 1)[1] for p in attempts}) == 1


def _allocation(job: str) -> tuple[int, int]:
    """(CPUs allocated to the job, most tasks of one of its steps), from accounting."""
    _sacct(job)  # wait for accounting to have the job's end
    out = subprocess.run(
        ["sacct", "-n", "-P", "-j", job, "-o", "JobID,AllocCPUS,NTasks"], capture_output=True, text=True, timeout=30
    ).stdout
    rows = [r.split("|") for r in out.strip().splitlines()]
    cpus = int(next(r[1] for r in rows if "." not in r[0]))
    tasks = max((int(r[2]) for r in rows if "." in r[0] and r[2].isdigit()), default=0)
    return cpus, tasks


@pytest.mark.slow
def test_slurm_auto_gives_each_llm_size_its_own_allocation_and_trainer(
    slurm_cluster: None, data_dir: Path, tmp_path: Path
) -> None:
    # CPUs stand in for GPUs; the site pins the larger LLM to two devices (two DDP tasks, gloo)
    args = [
        "hydra/launcher=slurm_auto",
        "hydra.launcher.partition=debug",
        "hydra.launcher.max_num_timeout=3",
        "hydra.launcher.site.accelerator=cpu",
        "hydra.launcher.site.cpus_per_device=1",
        "hydra.launcher.site.mem_gb_per_device=null",
        "hydra.launcher.site.max_time_h=1",
        "+hydra.launcher.site.options.qwen4b.devices=2",
        "llm=qwen0.5b,qwen4b",
        "logger=none",
        "sweep=auto",
        *TINY_DATA,
    ]
    proc = subprocess.run(
        train_cmd(*args, multirun=True),
        cwd=ROOT,
        env=train_env(data_dir, tmp_path),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    sweep = tmp_path / "sweeps" / "auto"
    recs = {r["choices"]["llm"]: r for r in (json.loads(p.read_text()) for p in sweep.glob("*/result.json"))}
    assert sorted(recs) == ["qwen0.5b", "qwen4b"] and all(r["status"] == "ok" for r in recs.values())
    assert (recs["qwen0.5b"]["choices"]["trainer"], recs["qwen4b"]["choices"]["trainer"]) == ("cpu", "ddp")
    # the run directories are the points' own: named and recorded by the points' overrides, no trainer
    for run_dir in (p.parent for p in sweep.glob("*/result.json")):
        overrides = (run_dir / ".hydra" / "overrides.yaml").read_text()
        assert "trainer" not in run_dir.name and "trainer" not in overrides and "llm=qwen" in overrides
    # two arrays of one job each, allocated as planned: 1 CPU and 1 task; 2 CPUs and 2 tasks
    jobs = _jobs(sweep)
    assert len(jobs) == 2 and all(_sacct(j)[-1] == "COMPLETED" for j in jobs), [(j, _sacct(j)) for j in jobs]
    assert sorted(_allocation(j) for j in jobs) == [(1, 1), (2, 2)], [(j, _allocation(j)) for j in jobs]
    scripts = {p.read_text() for p in sweep.glob(".submitit/**/*_submission.sh")}
    tasks = sorted(ln for s in scripts for ln in s.splitlines() if ln.startswith("#SBATCH --ntasks-per-node"))
    assert tasks == ["#SBATCH --ntasks-per-node=1", "#SBATCH --ntasks-per-node=2"], scripts
    assert all("#SBATCH --time=60" in s.splitlines() and "#SBATCH --cpus-per-task=1" in s.splitlines() for s in scripts)
    status = subprocess.run(
        [sys.executable, "-m", "src.sweep", "status", str(sweep)], cwd=ROOT, capture_output=True, text=True, timeout=120
    ).stdout
    assert status.strip().splitlines()[-1] == (
        "2 grid points: 2 done, 0 failed, 0 running, 0 interrupted, 0 queued, 0 missing"
    )


@pytest.mark.slow
def test_a_requeued_two_task_ddp_job_of_slurm_auto_resumes_and_finishes_once(
    slurm_cluster: None, data_dir: Path, tmp_path: Path
) -> None:
    # the larger group of the test above (two DDP tasks), requeued in the middle of training
    args = [
        "hydra/launcher=slurm_auto",
        "hydra.launcher.partition=debug",
        "hydra.launcher.max_num_timeout=3",
        "hydra.launcher.site.accelerator=cpu",
        "hydra.launcher.site.cpus_per_device=1",
        "hydra.launcher.site.mem_gb_per_device=null",
        "hydra.launcher.site.max_time_h=1",
        "+hydra.launcher.site.options.qwen4b.devices=2",
        "llm=qwen4b",
        "logger=none",
        "sweep=auto_requeue",
        "seed=0",
        "checkpoint.every_steps=1",
        *[a for a in TINY_DATA if not a.startswith("profile.epochs")],
        "profile.epochs=4",
    ]
    sweep = tmp_path / "sweeps" / "auto_requeue"
    launcher = subprocess.Popen(
        train_cmd(*args, multirun=True),
        cwd=ROOT,
        env=train_env(data_dir, tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 400
        while not list(sweep.glob("*/checkpoints/last.ckpt")):
            assert launcher.poll() is None and time.monotonic() < deadline, "no checkpoint before the end"
            time.sleep(0.2)
        [job] = _jobs(sweep)
        subprocess.run(["scontrol", "requeue", job], check=True, timeout=30)
        while (
            subprocess.run(
                ["squeue", "-h", "-j", job, "-o", "%T"], capture_output=True, text=True, timeout=30
            ).stdout.strip()
            != "PENDING"
        ):
            assert time.monotonic() < deadline
            time.sleep(0.2)
        subprocess.run(["scontrol", "update", f"JobId={job}", "StartTime=now"], check=True, timeout=30)
        out = launcher.communicate(timeout=700)[0]
    finally:
        if launcher.poll() is None:
            launcher.kill()
    assert launcher.returncode == 0, out[-3000:]
    assert _sacct(job) == ["REQUEUED", "COMPLETED"], _sacct(job)
    assert _allocation(job) == (2, 2)
    [run_dir] = [p.parent for p in sweep.glob("*/result.json")]
    rec = json.loads((run_dir / "result.json").read_text())
    assert rec["status"] == "ok" and rec["choices"]["trainer"] == "ddp", rec["reason"]
    assert rec["schedule"]["resumed_mid_stage"] is True
    log = (run_dir / "train.log").read_text()
    assert "resuming stage" in log and "was requeued or preempted" in log
