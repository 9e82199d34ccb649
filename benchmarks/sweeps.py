"""Running a sweep of `python -m src.train` as a subprocess and reading its records back:
what the sweep benchmarks (feature cache, start-up) share."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def small_data(n_train: int, n_eval: int, epochs: int) -> list[str]:
    """Overrides for a smaller synthetic benchmark (the same kinds of videos and questions)."""
    return [
        f"data.synthetic.n_train={n_train}",
        f"data.synthetic.n_eval={n_eval}",
        f"data.synthetic.n_image={max(1, n_train // 10)}",
        f"data.synthetic.n_multi_image={max(1, n_train // 10)}",
        f"data.synthetic.n_text={max(1, n_train // 10)}",
        f"profile.epochs={epochs}",
    ]


def prepare_data(overrides: list[str], data_dir: Path) -> Path:
    """Generate the benchmark the overrides name before any clock starts."""
    from hydra import compose, initialize_config_dir

    from src.config.container import to_dict
    from src.data.synthetic import SyntheticSpec, ensure

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=[*overrides, f"paths.data_dir={data_dir}"])
    spec = SyntheticSpec.from_dict(to_dict(cfg.data.synthetic, resolve=True))
    return ensure(spec, cfg.data.root, progress=False)


def run_sweep(
    args: list[str], data_dir: Path, out_dir: Path, threads: int | None = None, log: Path | None = None
) -> tuple[float, float]:
    """Run `python -m src.train -m ARGS`; returns its wall time and its CPU time (user +
    system, its DataLoader workers included) in seconds; raises on failure.

    On a machine shared with other work the CPU time is the steadier measure: the wall
    time also counts whatever else ran meanwhile."""
    env = {
        **os.environ,
        "APOLLO_DATA_DIR": str(data_dir),
        "APOLLO_OUTPUT_DIR": str(out_dir),
        "HF_HUB_OFFLINE": "1",
        "WANDB_MODE": "offline",
        "TOKENIZERS_PARALLELISM": "false",
    }
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "src.train", "-m", *args], cwd=ROOT, env=env, capture_output=True, text=True
    )
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        raise RuntimeError(f"sweep {' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    return seconds, cpu


def records(folder: Path) -> dict[str, dict[str, Any]]:
    """Run name -> record, of every run under `folder`."""
    out = {}
    for path in sorted(folder.rglob("result.json")):
        rec = json.loads(path.read_text())
        out[rec["run_name"]] = rec
    return out


def choices(run_dir: Path) -> list[tuple[str, str]]:
    """(item, chosen letter) of every eval row of a run's items.csv."""
    import csv

    with open(run_dir / "items.csv", newline="") as f:
        return [(r["item"] + "/" + r["modality"], r["chosen"]) for r in csv.DictReader(f)]
