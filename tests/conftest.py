"""Shared test set-up: no network, offline W&B, and small synthetic data made once per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

@pytest.fixture(autouse=True)
def _no_shared_wandb_service(monkeypatch: pytest.MonkeyPatch) -> None:
    """A test that called wandb.init in this process leaves WANDB_SERVICE set; runs started
    by later tests must not attach to that service (a killed run's stream stays held there)."""
    monkeypatch.delenv("WANDB_SERVICE", raising=False)


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """APOLLO_DATA_DIR for the session: every test that generates data shares it."""
    return tmp_path_factory.mktemp("data")
