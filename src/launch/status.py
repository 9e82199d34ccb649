"""`python -m src.sweep status DIR`: where every grid point of a launched sweep stands.

A grid point is
- done: its record says ok (a new launch skips it);
- failed: its record says failed, with the reason (a new launch trains it again);
- running: a live process owns its directory (src.launch.rundir), or its SLURM job is queued again;
- interrupted: started, no record, nobody running it (killed, preempted), or stopped by
  SIGTERM or SIGINT (its record says so): a new launch resumes it from its checkpoint;
- queued: never started, its SLURM job waiting in the queue (found through the job's
  submission in the folder's .submitit/ and squeue);
- missing: never started, nothing queued (a new launch starts it); or its result.json is
  there but unreadable (a cut write, a full disk): it counts as none, the detail and a
  warning line name it, and a new launch trains it again.
Runs of the folder that the last launch's grid does not hold are listed after it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from src.config.errors import ConfigError
from src.launch.grid import grid, sweeper_params
from src.launch.rundir import OWNER, owner_gone, read_owner
from src.run.records import UnreadableRecord, read_record

STATES = ("done", "failed", "running", "interrupted", "queued", "missing")
UNREADABLE = "unreadable result.json"


@dataclass
class Point:
    overrides: list[str]
    state: str
    detail: str = ""
    run_dir: Path | None = None
    in_grid: bool = True


def _key(overrides: list[str]) -> frozenset[tuple[str, str]]:
    """Overrides compared as (key, value), however they were spelled."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    return frozenset(
        (o.get_key_element(), o.get_value_element_as_str())
        for o in OverridesParser.create().parse_overrides(list(overrides))
    )


def _slurm_state(job: str) -> str | None:
    """The job's state in SLURM's queue (PENDING, RUNNING, ...), None when it is not queued."""
    if not shutil.which("squeue"):
        return None
    try:
        out = subprocess.run(
            ["squeue", "-h", "-j", job, "-o", "%T"], capture_output=True, text=True, timeout=10
        ).stdout.split()
    except (OSError, subprocess.SubprocessError):
        return None
    return out[0] if out else None


def queued_jobs(sweep_dir: Path) -> dict[frozenset[tuple[str, str]], str]:
    """The grid points whose SLURM job is in the queue and has no result yet, each with
    "SLURM job <id> <state>". Submitit keeps each job's submission (the launcher and the
    run's overrides, pickled) in `<sweep>/.submitit/<launch>/<job id>/`."""
    import pickle

    out: dict[frozenset[tuple[str, str]], str] = {}
    for submitted in sorted(sweep_dir.glob(".submitit/*/*/*_submitted.pkl")):
        job = submitted.name[: -len("_submitted.pkl")]
        if list(submitted.parent.glob(f"{job}*_result.pkl")):
            continue  # ended
        state = _slurm_state(job)
        if state is None:
            continue
        try:
            with open(submitted, "rb") as f:
                overrides = pickle.load(f).args[0]
            key = _key([str(o) for o in overrides])
        except Exception as e:  # noqa: BLE001 - another submitit's pickle, a foreign function
            print(f"warning: {submitted}: not read ({type(e).__name__}: {e})", file=sys.stderr)
            continue
        out[key] = f"SLURM job {job} {state}"
    return out


def _checkpoint(run_dir: Path) -> str:
    ckpts = sorted(run_dir.rglob("*.ckpt"), key=lambda p: p.stat().st_mtime)
    return f"checkpoint {ckpts[-1].relative_to(run_dir)}" if ckpts else "no checkpoint"


def classify(run_dir: Path | None, stale_s: float = 120.0) -> tuple[str, str]:
    """(state, detail) of one grid point's directory."""
    if run_dir is None:
        return "missing", ""
    damaged = None
    try:
        record: dict[str, Any] | None = read_record(run_dir)
    except UnreadableRecord as e:  # counts as no record: a new launch trains the point again
        record, damaged = None, str(e).rsplit(": unreadable ", 1)[-1]
    owner = read_owner(run_dir)
    if owner is not None:
        try:
            age = time.time() - (run_dir / OWNER).stat().st_mtime
        except FileNotFoundError:
            age = float("inf")
        queued = _slurm_state(str(owner["slurm_job"])) if owner.get("slurm_job") else None
        if not owner_gone(owner, age, stale_s) or queued:
            where = f"{owner.get('host')}:{owner.get('pid')}"
            if owner.get("slurm_job"):
                where += f", SLURM job {owner['slurm_job']}" + (f" {queued}" if queued else "")
            again = ", again after a failure" if record and record.get("status") == "failed" else ""
            return "running", f"{where}{again}; {_checkpoint(run_dir)}"
    if record is not None and record.get("status") == "ok":
        overall = sorted(k for k in record.get("metrics", {}) if k.endswith("/overall"))
        value = record["metrics"][overall[0]] if overall else None
        return "done", f"{overall[0]} {value:.3f}" if overall and value is not None else "ok"
    if record is not None and record.get("interrupted"):  # SIGTERM, SIGINT: not a failure of the run
        return "interrupted", f"stopped by {record['interrupted']}; {_checkpoint(run_dir)}"
    if record is not None:
        reason = str(record.get("reason") or "no reason recorded").strip().splitlines()
        return "failed", reason[0][:160] if reason else ""
    if damaged is not None:
        return "missing", f"{UNREADABLE} {damaged}; a new launch trains it again; {_checkpoint(run_dir)}"
    return "interrupted", f"no record; {_checkpoint(run_dir)}"


def sweep_points(sweep_dir: Path) -> list[Point]:
    """Every grid point of the folder's last launch, then the folder's runs outside that grid."""

    multirun = sweep_dir / "multirun.yaml"
    if not multirun.is_file():
        raise ConfigError(
            f"{sweep_dir}: no multirun.yaml; valid: the folder of a launched sweep, "
            "outputs/sweeps/<sweep> (python -m src.train -m ...)"
        )
    cfg = OmegaConf.load(multirun)
    points = grid(list(cfg.hydra.overrides.task), sweeper_params(cfg))
    runs: dict[frozenset[tuple[str, str]], tuple[list[str], Path]] = {}
    for d in sorted(p for p in sweep_dir.iterdir() if (p / ".hydra" / "overrides.yaml").is_file()):
        overrides = list(OmegaConf.load(d / ".hydra" / "overrides.yaml"))
        runs[_key(overrides)] = (overrides, d)
    queued = queued_jobs(sweep_dir)
    out = []
    for point in points:
        _, run_dir = runs.pop(_key(point), (None, None))
        state, detail = classify(run_dir)
        if state == "missing" and _key(point) in queued:
            state, detail = "queued", queued[_key(point)]
        out.append(Point(point, state, detail, run_dir=run_dir))
    for overrides, run_dir in runs.values():
        out.append(Point(overrides, *classify(run_dir), run_dir=run_dir, in_grid=False))
    return out


def status(sweep_dir: Path) -> int:
    """Print the table; exit status 0, or 2 when the folder is not a sweep's."""
    try:
        points = sweep_points(sweep_dir)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    grid_points = [p for p in points if p.in_grid]
    common = set.intersection(*(set(p.overrides) for p in grid_points)) if grid_points else set()
    labels = [
        " ".join(o for o in p.overrides if o not in common) or " ".join(p.overrides) or "(no overrides)" for p in points
    ]
    width = max([len(x) for x in labels] + [3])
    print(
        f"{sweep_dir}: {len(grid_points)} grid points" + (f" (all with {' '.join(sorted(common))})" if common else "")
    )
    print(f"{'state':<12}{'run':<{width}}  detail")
    for i, (p, label) in enumerate(zip(points, labels)):
        if not p.in_grid and (i == 0 or points[i - 1].in_grid):
            print("-- not in the grid of the last launch:")
        print(f"{p.state:<12}{label:<{width}}  {p.detail}")
    counts = {s: sum(p.state == s for p in grid_points) for s in STATES}
    damaged = [p for p in points if p.detail.startswith(UNREADABLE)]
    if damaged:
        print(
            f"warning: {len(damaged)} unreadable result.json, counted as missing: "
            + ", ".join(str(p.run_dir) for p in damaged),
            file=sys.stderr,
        )
    print(f"{len(grid_points)} grid points: " + ", ".join(f"{n} {s}" for s, n in counts.items()))
    return 0
