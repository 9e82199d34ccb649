"""The experiment logger of a run (`logger=wandb|csv|none`), with the W&B conventions.

W&B, as set in conf/logger/wandb.yaml: project from the config; group = the sweep's name;
job type = the ablation axis (the config keys the sweep varies, e.g. `encoder+llm`; for a
single run, the keys set on its command line; `train` with none); name = the run's
overrides; tags = the choice of every config group; config = the resolved config with
secrets redacted; the parameter count of every component. The run id is derived from the
sweep and the run's name and kept in `<run_dir>/wandb_id`: a run started again (resumed
after a kill or a requeue) logs to the same W&B run, never to a duplicate. Offline unless
WANDB_MODE says otherwise.

`log_results(run_dir)` adds a finished run's results to that same W&B run (resumed by its
id): its eval items as the table `eval/items` (item, benchmark, category, modality,
question, options, answer, chosen, correct, and for the first `frames_of` items the frames
the run's sampler takes, as images), the record and `items.csv` as an artifact of type
`results`, and the headline metrics (`*/overall`, `train/loss`, costs) in the run summary.
`python -m analysis.report_wandb SWEEP_DIR` calls it for every run of a sweep.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from src.config.redact import redact, redact_override

AXIS_ENV = "APOLLO_AXIS"
ID_FILE = "wandb_id"


def wandb_id(run_dir: Path, sweep: str, run_name: str) -> str:
    """The run's W&B id: read from `<run_dir>/wandb_id`, or derived and written there."""
    path = Path(run_dir) / ID_FILE
    if path.is_file() and path.read_text().strip():
        return path.read_text().strip()
    run_id = hashlib.sha1(f"{sweep}/{run_name}".encode()).hexdigest()[:16]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(run_id + "\n")
    return run_id


def ablation_axis(keys: list[str]) -> str:
    """`encoder+llm` from the keys a sweep varies; `train` when it varies none."""
    return "+".join(sorted(dict.fromkeys(k.lstrip("+~") for k in keys))) or "train"


def wandb_settings(cfg: DictConfig, run_dir: Path, run_name: str, choices: Mapping[str, str]) -> dict[str, Any]:
    """The arguments of the W&B run besides those in conf/logger/wandb.yaml."""
    return {
        "name": run_name,
        "id": wandb_id(run_dir, cfg.sweep, run_name),
        "resume": "allow",
        "save_dir": str(run_dir),
        "tags": [f"{group}={choice}" for group, choice in sorted(choices.items())][:64],
    }


def build_logger(cfg: DictConfig, run_dir: Path, run_name: str, choices: Mapping[str, str]) -> Any:
    """The experiment logger of `logger=`, or False for `logger=none`."""
    if "_target_" not in cfg.logger:
        return False
    if cfg.logger.name != "wandb":
        return instantiate(cfg.logger, save_dir=str(run_dir))
    logger = instantiate(cfg.logger, **wandb_settings(cfg, run_dir, run_name, choices))
    argv = sys.argv
    sys.argv = [redact_override(a) for a in argv]  # W&B keeps the command line in the run's metadata
    try:
        logger.log_hyperparams(redact(OmegaConf.to_container(cfg, resolve=True)))  # starts the run
    finally:
        sys.argv = argv
    return logger


def finish(cfg: DictConfig) -> None:
    """Close the W&B run, whatever happened (a no-op without one)."""
    if cfg.logger.get("name") == "wandb":
        import wandb

        wandb.finish()


def set_axis(keys: list[str]) -> None:
    """Called once by the entry point, before Hydra: every job (and DDP rank) inherits it."""
    os.environ[AXIS_ENV] = ablation_axis(keys)


def manifest_rows(path: str | Path | None) -> dict[tuple[str, str], dict[str, Any]]:
    """(benchmark, id) -> the eval manifest's row (question, options, answer, video), {} without one."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    if not path or not Path(path).is_file():
        return rows
    with open(path) as f:
        for line in f:
            try:
                row = json.loads(line)
                key = str(row.get("id", row.get("question_id")))
            except (json.JSONDecodeError, AttributeError):
                continue  # the run read this manifest already, and counted its bad rows
            if isinstance(row.get("video"), str):
                row["video"] = str(Path(path).parent / row["video"])
            rows[str(row.get("benchmark") or ""), key] = row
    return rows


def sampled_frames(sampler_cfg: Mapping[str, Any], video: str) -> Any:
    """The frames the run's sampler takes from `video`, side by side as one (H, W·n, 3) uint8 strip."""
    import numpy as np

    from src.data.video import open_video

    sampler = instantiate(dict(sampler_cfg))
    v = open_video(video)
    try:
        plan = sampler(v.num_frames, v.fps, v.start_time)
        indices = sorted(dict.fromkeys(int(i) for i in plan.indices.reshape(-1)))[:16]
        frames = v.get(indices)
    finally:
        v.close()
    return np.concatenate(list(frames), axis=1)


def log_results(run_dir: str | Path, frames_of: int = 4) -> str:
    """Log a finished run's items table, results artifact and summary to its W&B run; one line back."""
    run_dir = Path(run_dir)
    record_file, items_file = run_dir / "result.json", run_dir / "items.csv"
    if not record_file.is_file() or not items_file.is_file():
        return f"W&B: {run_dir}: no result.json and items.csv to log"
    record = json.loads(record_file.read_text())
    config = record.get("config") or {}
    settings = config.get("logger") or {}
    if settings.get("name") != "wandb" or not (run_dir / ID_FILE).is_file():
        return f"W&B: {run_dir}: not a W&B run (logger={settings.get('name', 'none')})"
    import wandb

    manifest = manifest_rows(((record.get("data") or {}).get("eval") or {}).get("path"))
    columns = ["item", "benchmark", "category", "modality", "question", "options", "answer", "chosen", "correct"]
    table = wandb.Table(columns=[*columns, "frames"])
    with items_file.open() as f:
        for k, r in enumerate(csv.DictReader(f)):
            row = manifest.get((r["benchmark"], r["item"]), {})
            frames = None
            if k < frames_of and row.get("video") and r["modality"] == "video" and config.get("sampler"):
                try:
                    frames = wandb.Image(sampled_frames(config["sampler"], row["video"]), caption=r["item"])
                except Exception:  # noqa: BLE001 - an unreadable video: the row without its frames
                    frames = None
            options = row.get("options") or []
            table.add_data(
                r["item"],
                r["benchmark"],
                r["category"],
                r["modality"],
                row.get("question", ""),
                "\n".join(f"{chr(65 + i)}. {o}" for i, o in enumerate(options)),
                row.get("answer", ""),
                r["chosen"],
                float(r["correct"]),
                frames,
            )
    metrics = record.get("metrics") or {}
    headline = {k: v for k, v in metrics.items() if k.endswith("/overall") or k == "train/loss"}
    headline.update({f"costs/{k}": v for k, v in (record.get("costs") or {}).items() if isinstance(v, int | float)})
    run_id = (run_dir / ID_FILE).read_text().strip()
    run = wandb.init(
        project=settings.get("project"),
        entity=settings.get("entity"),
        group=settings.get("group"),
        job_type=settings.get("job_type"),
        name=record.get("run_name"),
        id=run_id,
        resume="allow",
        dir=str(run_dir),
        mode=cast(Any, os.environ.get("WANDB_MODE") or settings.get("mode") or "offline"),
        reinit="finish_previous",
    )
    try:
        run.log({"eval/items": table})
        artifact = wandb.Artifact(f"results-{run_id}", type="results", metadata={"run_dir": str(run_dir)})
        artifact.add_file(str(record_file))
        artifact.add_file(str(items_file))
        run.log_artifact(artifact)
        run.summary.update(headline)
    finally:
        run.finish()
    return f"W&B: {run_dir.name}: {len(table.data)} items, the results artifact and {len(headline)} summary values"
