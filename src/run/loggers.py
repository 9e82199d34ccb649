"""The experiment logger of a run (`logger=wandb|csv|none`), with the W&B conventions.

W&B, as set in conf/logger/wandb.yaml: project from the config; group = the sweep's name;
job type = the ablation axis (the config keys the sweep varies, e.g. `encoder+llm`; for a
single run, the keys set on its command line; `train` with none); name = the run's
overrides; tags = the choice of every config group; config = the resolved config with
secrets redacted; the parameter count of every component. The run id is derived from the
sweep and the run's name and kept in `<run_dir>/wandb_id`: a run started again (resumed
after a kill or a requeue) logs to the same W&B run, never to a duplicate. Offline unless
WANDB_MODE says otherwise.
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

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
