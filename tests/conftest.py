"""Shared test set-up: no network, offline W&B, and small synthetic data made once per session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

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


@pytest.fixture(scope="module")
def one_thread() -> Iterator[None]:
    """Tiny models on a shared 2-core machine: threads only contend (`usefixtures` it)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session")
def rgb_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 3 s mp4 at 10 fps: red, green, blue frames in turn (30 frames)."""
    from tests.helpers import write_mp4

    return write_mp4(
        tmp_path_factory.mktemp("rgb") / "v.mp4", [(200, 30, 30), (30, 200, 30), (30, 30, 200)] * 10, fps=10
    )
