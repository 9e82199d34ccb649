"""The run record: result.json in each run's directory, written atomically when the run ends."""

from __future__ import annotations

import csv
import json
import math
import os
import platform
import subprocess
import tempfile
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from src.data.manifest import LETTERS

RECORD = "result.json"
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


def write_record(run_dir: str | Path, record: dict[str, Any]) -> Path:
    """Write `record` as run_dir/result.json: to a temporary file, then renamed into place."""
    missing = [k for k in REQUIRED_KEYS if k not in record]
    if missing:
        raise ValueError(f"run record lacks {missing}")
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".result.", suffix=".json", dir=run_dir)
    with os.fdopen(fd, "w") as f:
        json.dump(_finite(record), f, indent=2, default=str, allow_nan=False)
        f.flush()
        os.fsync(f.fileno())
    final = run_dir / RECORD
    os.replace(tmp, final)
    return final


def read_record(run_dir: str | Path) -> dict[str, Any] | None:
    path = Path(run_dir) / RECORD
    if not path.is_file():
        return None
    with open(path) as f:
        return json.load(f)


def is_finished(run_dir: str | Path) -> bool:
    """A finished grid point: a record with status ok."""
    record = read_record(run_dir)
    return record is not None and record.get("status") == "ok"


def write_items(path: Path, run_name: str, results: list[dict[str, Any]]) -> None:
    """Per-question correctness, beside the record: one row per item per eval modality.

    `seconds` is the item's share of its batch's wall time; `control` (only where the
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
                    *([r.get("control") or ""] if flagged else []),
                    *([r.get("rotations", ""), r.get("rotations_right", "")] if circular else []),
                ]
            )
