"""Who owns a run directory: one process trains a grid point at a time.

A run's directory is named by its sweep and its overrides, so the same grid point
launched twice (the same sweep started twice in the same second, or again while the
first is still running) lands in the same directory. The first process claims it by
creating `.owner.json` (exclusively), keeps the file's mtime fresh from a background
thread, and removes it when the run ends. A second process waits for the owner to end,
then goes on; `src.train` then finds the finished record and skips, or resumes from the
checkpoint. An owner is gone when its process is dead (same host), when it is this very
SLURM job before a requeue, or when its heartbeat is older than `stale_s`.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

OWNER = ".owner.json"
log = logging.getLogger(__name__)


def me() -> dict[str, Any]:
    """This process, as written into the claim."""
    return {"host": socket.gethostname(), "pid": os.getpid(), "slurm_job": slurm_job_id(), "since": time.time()}


def slurm_job_id() -> str | None:
    """The SLURM job (array task included); a requeued job keeps it."""
    if os.environ.get("SLURM_ARRAY_JOB_ID"):
        return f"{os.environ['SLURM_ARRAY_JOB_ID']}_{os.environ.get('SLURM_ARRAY_TASK_ID', '')}"
    return os.environ.get("SLURM_JOB_ID")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def owner_gone(owner: dict[str, Any], age_s: float, stale_s: float) -> bool:
    """Whether a claim's owner can no longer be running this grid point."""
    mine = me()
    if owner.get("slurm_job") and owner.get("slurm_job") == mine["slurm_job"]:
        return True  # this job, before SLURM or submitit requeued it
    if owner.get("host") == mine["host"] and not _pid_alive(int(owner.get("pid", -1))):
        return True
    return age_s > stale_s


def read_owner(run_dir: str | Path) -> dict[str, Any] | None:
    """The claim on a run directory, or None when nobody holds it."""
    try:
        return json.loads((Path(run_dir) / OWNER).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


class Claim:
    """A held run directory; `release()` (or the process's end) gives it up."""

    def __init__(self, path: Path, heartbeat_s: float) -> None:
        self.path = path
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, args=(heartbeat_s,), daemon=True, name="rundir-heartbeat")
        self._thread.start()

    def _beat(self, every_s: float) -> None:
        while not self._stop.wait(every_s):
            try:
                os.utime(self.path)
            except FileNotFoundError:  # taken over after a long stall; nothing left to keep
                return

    def release(self) -> None:
        self._stop.set()
        owner = read_owner(self.path.parent)
        if owner and owner.get("pid") == os.getpid() and owner.get("host") == socket.gethostname():
            self.path.unlink(missing_ok=True)


def _remove_if_gone(path: Path, stale_s: float) -> dict[str, Any] | None:
    """Remove a claim whose owner is gone; return the live owner otherwise (None: free now).

    The look and the removal happen under a lock, so that of several waiters that saw the
    same dead owner, none removes the claim that another has just made.
    """
    with open(path.with_name(OWNER + ".lock"), "w") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)
        try:
            age = time.time() - path.stat().st_mtime
        except FileNotFoundError:
            return None
        owner = read_owner(path.parent)
        if owner is None and age < 2.0:  # being written right now
            return {"host": "?", "pid": "?", "writing": True}
        if owner is None or owner_gone(owner, age, stale_s):
            path.unlink(missing_ok=True)
            return None
        return owner


def claim(
    run_dir: str | Path,
    stale_s: float = 120.0,
    poll_s: float = 5.0,
    timeout_s: float | None = None,
    on_wait: Callable[[dict[str, Any]], None] | None = None,
) -> Claim:
    """Own `run_dir`, waiting while another live process owns it.

    Raises TimeoutError after `timeout_s` (None: wait as long as the owner lives).
    """
    path = Path(run_dir) / OWNER
    path.parent.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    told = False
    while True:
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            owner = _remove_if_gone(path, stale_s)
            if owner is None:
                continue
            if timeout_s is not None and time.monotonic() - start > timeout_s:
                raise TimeoutError(f"{run_dir} is owned by {owner}") from None
            if not told and "writing" not in owner:
                (on_wait or (lambda o: log.info("waiting: %s is running this grid point", o)))(owner)
                told = True
            time.sleep(min(poll_s, 0.1) if "writing" in owner else poll_s)
            continue
        with os.fdopen(fd, "w") as f:
            json.dump(me(), f)
        return Claim(path, heartbeat_s=max(stale_s / 4, 0.05))


def _overridden(overrides: list[str]) -> set[str]:
    """The keys (or config groups) that command-line overrides set."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    return {o.key_or_group for o in OverridesParser.create().parse_overrides(overrides)}


def _flat(node: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for k, v in node.items():
            out.update(_flat(v, f"{prefix}{k}."))
        return out or {prefix[:-1]: {}}
    return {prefix[:-1]: node}


def sweep_conflict(old: Any, new: Any) -> str | None:
    """How the sweep in a sweep folder (`old`, its multirun.yaml) and a new launch into the
    same folder (`new`) differ, apart from what their overrides set; None when they agree.

    Overrides name each run's directory, so they never mix runs; anything else (the sweep
    file's settings, the defaults of conf/) does not, and would silently mix two studies.
    """
    from src.config.container import to_dict

    skip = set(new.hydra.job.config.override_dirname.exclude_keys)
    skip |= _overridden(list(old.hydra.overrides.task)) | _overridden(list(new.hydra.overrides.task))

    def job(cfg: Any) -> dict[str, Any]:
        tree = to_dict(cfg, resolve=False)
        tree.pop("hydra", None)
        return {k: v for k, v in _flat(tree).items() if not any(k == s or k.startswith(s + ".") for s in skip)}

    a, b = job(old), job(new)
    # a key only one side has is a setting added (or removed) by a change of the code, whose
    # default keeps the old behaviour; a value both have and disagree on is another study
    for key in sorted(a.keys() & b.keys()):
        if a[key] != b[key]:
            return f"{key}={a[key]!r} there, {key}={b[key]!r} now"
    return None


def _choices(hydra_node: Any) -> dict[str, str]:
    """A composed config's group choices, not Hydra's own nor a pair's members."""
    choices = hydra_node.runtime.choices if hydra_node is not None else {}
    return {str(k): str(v) for k, v in choices.items() if not str(k).startswith("hydra") and "@" not in str(k)}


def run_conflict(run_dir: str | Path, new: Any, most: int = 4) -> str | None:
    """How the run in `run_dir` (its `.hydra/`, as it trained) and a new launch into the same
    directory (`new`, the composed config with its `hydra` node) differ; None when they agree.

    Group choices first (`encoder=siglip there, encoder=dinov2 now`), then the keys outside
    those groups; the keys that say where and how a run goes (the run name's exclude_keys:
    sweep, overwrite, logger, paths) are no difference. As in `sweep_conflict`, a key only one
    side has is a setting a change of the code added, not another configuration.
    """
    from omegaconf import OmegaConf

    from src.config.container import to_dict

    saved = Path(run_dir) / ".hydra"
    if not (saved / "config.yaml").is_file():
        return None
    old_hydra = OmegaConf.load(saved / "hydra.yaml").hydra if (saved / "hydra.yaml").is_file() else None
    skip = set(new.hydra.job.config.override_dirname.exclude_keys)
    diffs = []
    a, b = _choices(old_hydra), _choices(new.hydra)
    groups = sorted(k for k in a.keys() & b.keys() if a[k] != b[k] and k not in skip)
    diffs += [f"{g}={a[g]} there, {g}={b[g]} now" for g in groups]
    skip |= {g.replace("/", ".") for g in groups}
    old_cfg = to_dict(OmegaConf.load(saved / "config.yaml"), resolve=False)
    new_cfg = to_dict(new, resolve=False)
    new_cfg.pop("hydra", None)
    old_flat, new_flat = _flat(old_cfg), _flat(new_cfg)
    for key in sorted(old_flat.keys() & new_flat.keys()):
        if old_flat[key] != new_flat[key] and not any(key == s or key.startswith(s + ".") for s in skip):
            diffs.append(f"{key}={old_flat[key]!r} there, {key}={new_flat[key]!r} now")
    if not diffs:
        return None
    return "; ".join(diffs[:most]) + (f"; and {len(diffs) - most} more" if len(diffs) > most else "")
