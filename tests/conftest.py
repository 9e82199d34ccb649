"""Shared test set-up: no network, offline W&B, and small synthetic data made once per session."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _no_shared_wandb_service(monkeypatch: pytest.MonkeyPatch) -> None:
    """A test that called wandb.init in this process leaves WANDB_SERVICE set; runs started
    by later tests must not attach to that service (a killed run's stream stays held there)."""
    monkeypatch.delenv("WANDB_SERVICE", raising=False)


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """APOLLO_DATA_DIR for the session: every test that generates data shares it."""
    return tmp_path_factory.mktemp("data")


def train_cmd(*overrides: str, multirun: bool = False) -> list[str]:
    return [sys.executable, "-m", "src.train", *(["-m"] if multirun else []), *overrides]


def run_train(overrides: list[str], data_dir: Path, out_dir: Path, multirun: bool = False,
              timeout: int = 900) -> subprocess.CompletedProcess:
    env = {**os.environ, "APOLLO_DATA_DIR": str(data_dir), "APOLLO_OUTPUT_DIR": str(out_dir),
           "HYDRA_FULL_ERROR": "1"}
    return subprocess.run(train_cmd(*overrides, multirun=multirun), cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)
