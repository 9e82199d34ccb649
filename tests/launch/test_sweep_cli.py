"""`python -m src.sweep dry-run` (the runs of a command, nothing run) and `status` (where every
grid point of a launched sweep stands)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from src.launch.grid import compose_points, grid
from src.launch.rundir import OWNER, claim
from src.launch.status import Point, sweep_points
from src.run.records import write_record
from tests.helpers import ROOT


def sweep_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "src.sweep", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )


def test_the_grid_is_hydras_sweep_file_axes_first_then_the_command_line() -> None:
    assert grid(["llm=a,b", "seed=1"], {"encoder": "x,y"}) == [
        ["encoder=x", "llm=a", "seed=1"],
        ["encoder=x", "llm=b", "seed=1"],
        ["encoder=y", "llm=a", "seed=1"],
        ["encoder=y", "llm=b", "seed=1"],
    ]
    # the command line's value of an axis replaces the sweep file's
    assert grid(["encoder=z"], {"encoder": "x,y"}) == [["encoder=z"]]


def test_dry_run_prints_the_runs_their_dirs_and_configs_and_runs_nothing(tmp_path: Path) -> None:
    proc = sweep_cli(
        "dry-run", "encoder=siglip,dinov2", "sampler.fps=1,2", "sweep=dry", env={"APOLLO_OUTPUT_DIR": str(tmp_path)}
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == f"sweep dry: 4 runs into {tmp_path}/sweeps/dry (hydra/launcher=basic)"
    heads = [ln for ln in lines if ln.startswith("#")]
    assert heads == [
        "#0 encoder=siglip sampler.fps=1",
        "#1 encoder=siglip sampler.fps=2",
        "#2 encoder=dinov2 sampler.fps=1",
        "#3 encoder=dinov2 sampler.fps=2",
    ]
    assert f"   dir: {tmp_path}/sweeps/dry/encoder=dinov2,sampler.fps=2" in lines
    # each run's composed config, resolved: the option's own values, the override applied
    first = proc.stdout.split("#1 ")[0]
    assert "   encoder:" in first and "name: siglip" in first and "fps: 1" in first
    assert not tmp_path.exists() or not any(tmp_path.iterdir())


def test_dry_run_of_a_sweep_file_and_its_mistakes(tmp_path: Path) -> None:
    proc = sweep_cli("dry-run", "--brief", "--config-dir", "sweeps", "--config-name", "demo")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("sweep demo: 4 runs into ") and proc.stdout.count("\n#") == 4
    assert "encoder:" not in proc.stdout  # --brief: no configs
    for args, needles in (
        (["encoder=siglip,sigclip"], ["sigclip", "dinov2"]),
        (["hydra/launcher=slurm_8gpu", "trainer=gpu"], ["tasks_per_node=8", "trainer.devices=1"]),
        (["sampler.fps=-1,2"], ["sampler.fps=-1"]),
    ):
        bad = sweep_cli("dry-run", *args)
        errors = [ln for ln in bad.stderr.splitlines() if ln.startswith("error:")]
        assert bad.returncode == 2 and len(errors) == 1 and "Traceback" not in bad.stderr, bad.stderr
        assert all(n in errors[0] for n in needles), errors[0]


def _launched(tmp_path: Path) -> Path:
    """A sweep folder as a launch of `-m encoder=siglip,dinov2 llm=qwen0.5b,qwen1.5b seed=3` leaves it."""
    launch, points = compose_points(["encoder=siglip,dinov2", "llm=qwen0.5b,qwen1.5b", "seed=3", "sweep=st"])
    sweep_dir = tmp_path / "st"
    sweep_dir.mkdir()
    OmegaConf.save(launch, sweep_dir / "multirun.yaml")
    for point, _, run_dir in points:
        d = sweep_dir / run_dir.name
        (d / ".hydra").mkdir(parents=True)
        OmegaConf.save(OmegaConf.create(point), d / ".hydra" / "overrides.yaml")
    return sweep_dir


def _dir(point: Point) -> Path:
    assert point.run_dir is not None
    return point.run_dir


def _record(run_dir: Path, status: str, reason: str | None = None, /, **metrics: float) -> None:
    write_record(
        run_dir,
        {
            "status": status,
            "reason": reason,
            "sweep": "st",
            "choices": {},
            "config": {},
            "design": {},
            "metrics": metrics,
            "costs": {},
            "versions": {},
        },
    )


def test_status_names_every_grid_point_done_failed_running_interrupted_missing(tmp_path: Path) -> None:
    sweep_dir = _launched(tmp_path)
    runs = {p.overrides[0] + " " + p.overrides[1]: _dir(p) for p in sweep_points(sweep_dir)}
    _record(runs["encoder=siglip llm=qwen0.5b"], "ok", **{"test/synthetic/overall": 0.4375})
    _record(runs["encoder=siglip llm=qwen1.5b"], "failed", "RuntimeError: loss is nan\nmore")
    held = claim(runs["encoder=dinov2 llm=qwen0.5b"])  # a live process runs it
    (runs["encoder=dinov2 llm=qwen1.5b"] / "checkpoints").mkdir()
    (runs["encoder=dinov2 llm=qwen1.5b"] / "checkpoints" / "last.ckpt").write_bytes(b"")  # killed mid-run
    extra = sweep_dir / "encoder=siglip,llm=qwen4b,seed=3"  # from an earlier launch's grid
    (extra / ".hydra").mkdir(parents=True)
    OmegaConf.save(OmegaConf.create(["encoder=siglip", "llm=qwen4b", "seed=3"]), extra / ".hydra" / "overrides.yaml")
    _record(extra, "ok")
    try:
        proc = sweep_cli("status", str(sweep_dir))
    finally:
        held.release()
    assert proc.returncode == 0, proc.stderr
    rows = {ln[12:].split("  ")[0].strip(): (ln[:12].strip(), ln) for ln in proc.stdout.splitlines()[2:]}
    assert (
        rows["encoder=siglip llm=qwen0.5b"][0] == "done"
        and "test/synthetic/overall 0.438" in rows["encoder=siglip llm=qwen0.5b"][1]
    )
    assert rows["encoder=siglip llm=qwen1.5b"][0] == "failed" and rows["encoder=siglip llm=qwen1.5b"][1].endswith(
        "RuntimeError: loss is nan"
    )
    assert (
        rows["encoder=dinov2 llm=qwen0.5b"][0] == "running"
        and f":{os.getpid()}" in rows["encoder=dinov2 llm=qwen0.5b"][1]
    )
    assert (
        rows["encoder=dinov2 llm=qwen1.5b"][0] == "interrupted"
        and "checkpoints/last.ckpt" in rows["encoder=dinov2 llm=qwen1.5b"][1]
    )
    assert "-- not in the grid of the last launch:" in proc.stdout and rows["encoder=siglip llm=qwen4b"][0] == "done"
    assert proc.stdout.splitlines()[0].endswith("4 grid points (all with seed=3 sweep=st)")
    assert proc.stdout.splitlines()[-1] == (
        "4 grid points: 1 done, 1 failed, 1 running, 1 interrupted, 0 queued, 0 missing"
    )


def test_status_counts_missing_points_and_a_dead_owner_is_not_running(tmp_path: Path) -> None:
    sweep_dir = _launched(tmp_path)
    points = sweep_points(sweep_dir)
    for p in points[2:]:  # never started
        for f in sorted(_dir(p).rglob("*"), reverse=True):
            f.unlink() if f.is_file() else f.rmdir()
        _dir(p).rmdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (_dir(points[0]) / OWNER).write_text(json.dumps({"host": os.uname().nodename, "pid": dead.pid, "slurm_job": None}))
    states = [p.state for p in sweep_points(sweep_dir)]
    assert states == ["interrupted", "interrupted", "missing", "missing"]


def test_a_point_whose_slurm_job_waits_in_the_queue_is_queued(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pickle

    from submitit.core.utils import DelayedSubmission

    import src.launch.status

    sweep_dir = _launched(tmp_path)
    points = sweep_points(sweep_dir)
    for p in points:  # nothing started
        for f in sorted(_dir(p).rglob("*"), reverse=True):
            f.unlink() if f.is_file() else f.rmdir()
        _dir(p).rmdir()
    launch = sweep_dir / ".submitit" / "2026-12-02_10-00-00"
    for job, point, ended in (("77_0", points[0], False), ("77_1", points[1], True), ("77_2", points[2], False)):
        (launch / job).mkdir(parents=True)
        # as hydra-submitit-launcher submits: the launcher, then the run's overrides first
        with open(launch / job / f"{job}_submitted.pkl", "wb") as out:
            pickle.dump(DelayedSubmission(print, list(reversed(point.overrides)), "hydra.sweep.dir", 0), out)
        if ended:
            (launch / job / f"{job}_0_result.pkl").write_bytes(b"")
    queue = {"77_0": "PENDING", "77_1": "RUNNING"}  # 77_2 has left the queue (cancelled)
    monkeypatch.setattr(src.launch.status, "_slurm_state", queue.get)
    got = [(p.state, p.detail) for p in sweep_points(sweep_dir)]
    assert got == [("queued", "SLURM job 77_0 PENDING"), ("missing", ""), ("missing", ""), ("missing", "")]


def test_status_of_a_folder_that_is_no_sweep_is_one_line(tmp_path: Path) -> None:
    proc = sweep_cli("status", str(tmp_path))
    assert proc.returncode == 2 and proc.stderr.startswith("error: ") and "multirun.yaml" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("args", [["status"], ["frobnicate"]])
def test_bad_subcommands_are_usage_errors(args: list[str]) -> None:
    assert sweep_cli(*args).returncode == 2


def test_an_unreadable_record_counts_as_missing_and_is_named(tmp_path: Path) -> None:
    sweep_dir = _launched(tmp_path)
    points = sweep_points(sweep_dir)
    cut, stopped = _dir(points[0]), _dir(points[1])
    _record(cut, "ok", **{"test/synthetic/overall": 0.5})
    (cut / "result.json").write_text((cut / "result.json").read_text()[:40])  # a cut write
    _record(stopped, "failed", "interrupted: stopped by SIGTERM")
    record = json.loads((stopped / "result.json").read_text())
    (stopped / "result.json").write_text(json.dumps({**record, "interrupted": "SIGTERM"}))
    proc = sweep_cli("status", str(sweep_dir))
    assert proc.returncode == 0, proc.stderr
    rows = proc.stdout.splitlines()[2:-1]
    assert rows[0].startswith("missing") and "unreadable result.json (JSONDecodeError" in rows[0]
    assert rows[1].startswith("interrupted") and "stopped by SIGTERM" in rows[1]
    [warning] = proc.stderr.strip().splitlines()
    assert warning == f"warning: 1 unreadable result.json, counted as missing: {cut}"
    assert proc.stdout.splitlines()[-1].endswith("3 interrupted, 0 queued, 1 missing")  # the others: no record
