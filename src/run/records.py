"""The run record: result.json in each run's directory, written atomically when the run ends."""

from __future__ import annotations

import csv
import json
import math
import os
import platform
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from src.data.manifest import LETTERS

RECORD = "result.json"
TMP_PREFIX = ".result."  # a record being written: .result.<pid>.<random>.json
REQUIRED_KEYS = ("status", "reason", "sweep", "choices", "config", "design", "metrics", "costs", "versions")
PACKAGES = (
    "torch",
    "lightning",
    "transformers",
    "tokenizers",
    "hydra-core",
    "omegaconf",
    "decord",
    "av",
    "wandb",
    "numpy",
)


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def versions() -> dict[str, str | None]:
    """Python, the packages a result depends on, and the git commit of the code."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for pkg in PACKAGES:
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = None
    try:
        out["git"] = (
            subprocess.run(
                ["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=Path(__file__).parent, timeout=5
            ).stdout.strip()
            or None
        )
    except (OSError, subprocess.SubprocessError):
        out["git"] = None
    return out


def _finite(value: Any) -> Any:
    """NaN and infinities become null, so that the record is strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


class UnreadableRecord(ValueError):
    """A result.json that is there but cannot be read (a cut write, a full disk): it counts
    as no record (the grid point is trained again); the message names it, in one line."""


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _atomic_write(final: Path, data: bytes) -> None:
    """`data` into `final`, all or nothing: written to a temporary file beside it (created
    0666 less the umask, as `open` creates files), synced, then renamed into place; the
    temporary file is removed when any step fails."""
    tmp = final.with_name(f"{TMP_PREFIX}{os.getpid()}.{uuid.uuid4().hex[:8]}.json")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        try:
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _least(record: dict[str, Any], error: OSError) -> dict[str, Any]:
    """The smallest record that still says the run failed, and why (a full disk)."""
    cause = f"the record could not be written ({type(error).__name__}: {error})"
    reason = f"{record.get('reason')}; {cause}" if record.get("status") != "ok" and record.get("reason") else cause
    least: dict[str, Any] = {k: {} for k in REQUIRED_KEYS}
    least.update(status="failed", reason=reason, sweep=record.get("sweep"), run_name=record.get("run_name"))
    return least


def write_record(run_dir: str | Path, record: dict[str, Any]) -> Path | None:
    """Write `record` as run_dir/result.json, atomically (`_atomic_write`).

    Where it does not fit (a full disk), a record of a few hundred bytes that says the run
    failed, and why, is written instead (the grid point is then trained again); where not
    even that fits, stderr says so, and None is returned.
    """
    missing = [k for k in REQUIRED_KEYS if k not in record]
    if missing:
        raise ValueError(f"run record lacks {missing}")
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    final = run_dir / RECORD
    try:
        _atomic_write(final, json.dumps(_finite(record), indent=2, default=str, allow_nan=False).encode())
        return final
    except OSError as e:
        least = _least(record, e)
    try:
        _atomic_write(final, json.dumps(least, default=str).encode())
    except OSError as e:
        print(
            f"error: {final}: no record written ({type(e).__name__}: {e}); the run {record.get('status')}"
            + (f": {record.get('reason')}" if record.get("reason") else ""),
            file=sys.stderr,
        )
        return None
    print(f"error: {final}: {least['reason']}; a failed record written in its place", file=sys.stderr)
    return final


def remove_temporary(run_dir: str | Path) -> list[Path]:
    """Remove the temporary records a killed write left in `run_dir`; returns them."""
    stale = sorted(Path(run_dir).glob(f"{TMP_PREFIX}*.json"))
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def read_record(run_dir: str | Path) -> dict[str, Any] | None:
    """The run's record; None when it has none. Raises UnreadableRecord for a damaged one."""
    path = Path(run_dir) / RECORD
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_bytes())
    except (OSError, ValueError) as e:  # JSONDecodeError, UnicodeDecodeError are ValueErrors
        raise UnreadableRecord(f"{path}: unreadable ({type(e).__name__}: {e})") from None
    if not isinstance(record, dict):
        raise UnreadableRecord(f"{path}: unreadable (not a JSON object)")
    return record


def is_finished(run_dir: str | Path) -> bool:
    """A finished grid point: a record with status ok (an unreadable record is none)."""
    try:
        record = read_record(run_dir)
    except UnreadableRecord:
        return False
    return record is not None and record.get("status") == "ok"


def write_items(path: Path, run_name: str, results: list[dict[str, Any]]) -> None:
    """Per-question correctness, beside the record: one row per item per eval modality.

    `seconds` is the item's share of its batch's wall time; `options` its number of answer
    options (what the audit's chance test takes as 1 / options); `control` (only where the
    eval manifest flags controls) the item's flag, "frame", "text" or empty;
    `rotations` and `rotations_right` (only where some modality was scored circularly,
    eval.circular) how many rotations of its options the item was asked in and how many it
    got right, empty for a modality scored once.
    """
    flagged = any(r.get("control") is not None for r in results)
    circular = any("rotations" in r for r in results)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(
            [
                "run",
                "item",
                "benchmark",
                "category",
                "modality",
                "correct",
                "chosen",
                "seconds",
                "options",
                *(["control"] if flagged else []),
                *(["rotations", "rotations_right"] if circular else []),
            ]
        )
        for r in results:
            w.writerow(
                [
                    run_name,
                    r["item"],
                    r["benchmark"],
                    r["category"],
                    r["modality"],
                    r["correct"],
                    LETTERS[r["chosen"]],
                    "" if r.get("seconds") is None else round(r["seconds"], 6),
                    r.get("options", ""),
                    *([r.get("control") or ""] if flagged else []),
                    *([r.get("rotations", ""), r.get("rotations_right", "")] if circular else []),
                ]
            )
