"""Run directories never collide: one owner per grid point, one sweep per sweep folder, and
concurrent launches of the same sweep train each grid point once (DDP ranks: tests/launch/test_ddp.py)."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from omegaconf import OmegaConf, open_dict

from src.launch.grid import compose_points
from src.launch.rundir import OWNER, claim, read_owner, sweep_conflict
from tests.helpers import ROOT, TINY_DATA, compose_sweep, run_train, train_cmd, train_env


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _owner(run_dir: Path, **fields: object) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / OWNER).write_text(
        json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "slurm_job": None, "since": 0, **fields})
    )


def test_a_claim_is_exclusive_until_released(tmp_path: Path) -> None:
    held = claim(tmp_path)
    owner = read_owner(tmp_path)
    assert owner is not None and owner["pid"] == os.getpid()
    with pytest.raises(TimeoutError):
        claim(tmp_path, poll_s=0.05, timeout_s=0.3)  # this very process is alive
    held.release()
    assert read_owner(tmp_path) is None
    claim(tmp_path, timeout_s=1).release()


def test_a_dead_owner_is_taken_over(tmp_path: Path) -> None:
    _owner(tmp_path, pid=_dead_pid())
    claim(tmp_path, timeout_s=1).release()


def test_the_same_slurm_job_after_a_requeue_takes_its_own_claim(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLURM_JOB_ID", "41")
    monkeypatch.delenv("SLURM_ARRAY_JOB_ID", raising=False)
    _owner(tmp_path, host="another-node", pid=1, slurm_job="41")
    claim(tmp_path, timeout_s=1).release()


def test_an_owner_elsewhere_holds_while_its_heartbeat_is_fresh(tmp_path: Path) -> None:
    _owner(tmp_path, host="another-node", pid=1, slurm_job="7")
    with pytest.raises(TimeoutError):
        claim(tmp_path, stale_s=60, poll_s=0.05, timeout_s=0.3)
    old = time.time() - 120
    os.utime(tmp_path / OWNER, (old, old))  # no heartbeat for two minutes: gone
    claim(tmp_path, stale_s=60, timeout_s=1).release()


def test_the_heartbeat_keeps_a_long_run_owned(tmp_path: Path) -> None:
    held = claim(tmp_path, stale_s=0.4)
    time.sleep(1.0)  # more than stale_s: only the heartbeat keeps the claim fresh
    with pytest.raises(TimeoutError):
        _claim_from_elsewhere(tmp_path)
    held.release()


def _claim_from_elsewhere(run_dir: Path) -> None:
    """A claim as another host would try it (no pid to look at: only the heartbeat counts)."""
    import src.launch.rundir as rundir

    real = rundir.me
    rundir.me = lambda: {**real(), "host": "elsewhere"}
    try:
        claim(run_dir, stale_s=0.4, poll_s=0.05, timeout_s=0.3)
    finally:
        rundir.me = real


def _worker(run_dir: str, log: str) -> None:
    held = claim(run_dir, poll_s=0.02)
    with open(log, "a") as f:
        f.write(f"start {os.getpid()}\n")
    time.sleep(0.2)
    with open(log, "a") as f:
        f.write(f"end {os.getpid()}\n")
    held.release()


def test_racing_processes_own_the_directory_one_at_a_time(tmp_path: Path) -> None:
    log = tmp_path / "log"
    procs = [mp.get_context("spawn").Process(target=_worker, args=(str(tmp_path / "run"), str(log))) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    lines = log.read_text().split()
    events = list(zip(lines[::2], lines[1::2]))
    assert len(events) == 8
    for (kind_a, pid_a), (kind_b, pid_b) in zip(events[::2], events[1::2]):
        assert (kind_a, kind_b) == ("start", "end") and pid_a == pid_b  # never interleaved


def _sweep_file(folder: Path, name: str, body: str) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(f"defaults:\n  - train\n  - _self_\nsweep: shared\n{body}")
    return path


def test_a_different_sweep_under_the_same_name_is_a_conflict(tmp_path: Path) -> None:
    a = _sweep_file(
        tmp_path,
        "a",
        "data:\n  synthetic: {n_train: 24}\nhydra:\n  sweeper:\n    params:\n      encoder: siglip,dinov2\n",
    )
    b = _sweep_file(
        tmp_path,
        "b",
        "data:\n  synthetic: {n_train: 48}\nhydra:\n  sweeper:\n    params:\n      encoder: siglip,dinov2\n",
    )
    old = compose_sweep(a, [])
    assert sweep_conflict(old, compose_sweep(a, [])) is None
    # other overrides (they name each run's folder), another logger: the same sweep
    assert sweep_conflict(old, compose_sweep(a, ["llm=qwen4b", "logger=csv", "data.batch_size=2"])) is None
    differs = sweep_conflict(old, compose_sweep(b, []))
    assert differs and "data.synthetic.n_train=24" in differs and "data.synthetic.n_train=48" in differs
    # a setting the code added since (its default keeps the old behaviour) is no conflict
    newer = _sweep_file(tmp_path, "a2", a.read_text().split("sweep: shared\n", 1)[1] + "brand_new: {option: 1}\n")
    assert sweep_conflict(old, compose_sweep(newer, [])) is None


def test_a_conflicting_launch_stops_with_one_line(tmp_path: Path) -> None:
    a = _sweep_file(tmp_path, "a", "seed: 1\nhydra:\n  sweeper:\n    params:\n      encoder: siglip,dinov2\n")
    _sweep_file(tmp_path, "b", "seed: 2\nhydra:\n  sweeper:\n    params:\n      encoder: siglip,dinov2\n")
    out = tmp_path / "out"
    sweep_dir = out / "sweeps" / "shared"
    sweep_dir.mkdir(parents=True)
    OmegaConf.save(compose_sweep(a, []), sweep_dir / "multirun.yaml")  # what Hydra wrote when `a` ran
    proc = run_train(
        ["--config-dir", str(tmp_path), "--config-name", "b"], tmp_path / "data", out, multirun=True, timeout=120
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "seed=1" in errors[0] and "seed=2" in errors[0] and "sweep=NAME" in errors[0]
    assert sorted(p.name for p in sweep_dir.iterdir()) == ["multirun.yaml"]  # nothing launched


def test_two_sweeps_never_share_a_run_directory(tmp_path: Path) -> None:
    # folders are named by sweep and overrides, never by the clock
    sweeps = [
        ["sweep=one", "encoder=siglip,dinov2"],
        ["sweep=two", "encoder=siglip,dinov2"],
        ["sweep=one", "encoder=siglip,dinov2", "seed=3"],
    ]
    dirs = [{str(d) for _, _, d in compose_points(args)[1]} for args in sweeps]
    assert all(len(d) == 2 for d in dirs)
    assert not (dirs[0] & dirs[1]) and not (dirs[0] & dirs[2]) and not (dirs[1] & dirs[2])
    assert dirs[0] == {str(d) for _, _, d in compose_points(sweeps[0])[1]}  # and again the same


@pytest.mark.slow
def test_the_same_sweep_started_twice_at_once_trains_each_point_once(data_dir: Path, tmp_path: Path) -> None:
    args = ["sweep=twice", "logger=none", "seed=0", *TINY_DATA]
    env = train_env(data_dir, tmp_path)
    procs = [
        subprocess.Popen(
            train_cmd(*args, multirun=True),
            cwd=ROOT,
            env=env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs[0][-2000:] + outs[1][-2000:]
    [run_dir] = [p.parent for p in (tmp_path / "sweeps" / "twice").rglob("result.json")]
    assert json.loads((run_dir / "result.json").read_text())["status"] == "ok"
    both = "\n".join(outs)
    assert both.count("done: ") == 1 and both.count("skipping") == 1  # one trained it, one skipped
    assert "waiting:" in both and not (run_dir / OWNER).exists()


def _finished_run(run_dir: Path, *overrides: str) -> dict[str, bytes]:
    """A finished run in `run_dir`, as `python -m src.train hydra.run.dir=... *overrides` leaves it;
    returns its `.hydra/` files' bytes."""
    from src.run.records import REQUIRED_KEYS, write_record
    from tests.helpers import cfg_with

    cfg = cfg_with(*overrides, hydra=True)
    saved = run_dir / ".hydra"
    saved.mkdir(parents=True)
    hydra = cfg.hydra
    with open_dict(cfg):
        del cfg["hydra"]
    OmegaConf.save(cfg, saved / "config.yaml")
    OmegaConf.save(
        OmegaConf.create({"hydra": {"runtime": {"choices": dict(hydra.runtime.choices)}}}), saved / "hydra.yaml"
    )
    OmegaConf.save(OmegaConf.create(list(overrides)), saved / "overrides.yaml")
    write_record(run_dir, {k: {} for k in REQUIRED_KEYS} | {"status": "ok", "reason": None, "sweep": "default"})
    return {p.name: p.read_bytes() for p in saved.iterdir()}


def test_a_finished_run_directory_refuses_another_configuration(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    base = ["logger=none", *TINY_DATA]
    before = _finished_run(run_dir, *base)
    for extra, needles in (
        (["seed=1"], ["seed=0 there, seed=1 now"]),
        (["encoder=dinov2"], ["encoder=siglip there, encoder=dinov2 now"]),
    ):
        proc = run_train([*base, f"hydra.run.dir={run_dir}", *extra], tmp_path / "data", tmp_path / "out", timeout=120)
        assert proc.returncode == 2, proc.stderr[-2000:]
        errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
        assert len(errors) == 1 and all(n in errors[0] for n in needles) and "overwrite=true" in errors[0], errors
    # the same configuration (another logger is no other configuration): skipped, its .hydra/ as it trained
    proc = run_train(["logger=csv", *TINY_DATA, f"hydra.run.dir={run_dir}"], tmp_path / "data", tmp_path / "out")
    assert proc.returncode == 0 and "skipping" in proc.stdout + proc.stderr, proc.stderr[-2000:]
    assert {p.name: p.read_bytes() for p in (run_dir / ".hydra").iterdir()} == before
