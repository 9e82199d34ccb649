"""Helpers the tests share: the real config composed, the one tiny-model builder, small data, runs.

Imported by test modules (`from tests.helpers import cfg_with`); pytest's own set-up
(environment, fixtures) is in conftest.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from src.batch import IGNORE, MEDIA, Batch
from src.config import resolvers
from src.config.compose import CONF_DIR
from src.launch.grid import grid as expand_grid
from src.launch.grid import sweeper_params
from src.models.llm import build_word_tokenizer
from src.models.videolmm import VideoLMM
from src.run.build import build_model

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
VIDEOS = FIXTURES / "videos"

# the smallest data and training that still run every step of the path
TINY_DATA = [
    "data.synthetic.n_train=24",
    "data.synthetic.n_eval=12",
    "data.synthetic.n_image=4",
    "data.synthetic.n_multi_image=4",
    "data.synthetic.n_text=4",
    "data.synthetic.min_duration=2",
    "data.synthetic.max_duration=3",
    "profile.epochs=1",
]


def checkpoint_progress(ckpt: Path) -> tuple[int, bool, int] | None:
    """(stage, stage done, global step) of a checkpoint; None while it is not there or half written."""
    try:
        saved = torch.load(ckpt, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # noqa: BLE001 - not there yet
        return None
    return saved["apollo"]["stage"], saved["apollo"]["stage_done"], saved["global_step"]


def cfg_with(*overrides: str, hydra: bool = False) -> DictConfig:
    """conf/train.yaml composed with `overrides`, as `python -m src.train` composes it;
    `hydra`: with its `hydra` node (the launcher, the runtime choices)."""
    resolvers.register()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("train", overrides=list(overrides), return_hydra_config=hydra)


def compose_sweep(sweep: Path, point: list[str]) -> DictConfig:
    """A grid point of a sweep file, as `--config-dir sweeps --config-name <sweep>` composes it:
    the sweep file is the primary config and finds `train` (its first default) in conf/."""
    resolvers.register()
    with initialize_config_dir(config_dir=str(sweep.parent), version_base="1.3"):
        return compose(
            sweep.stem, overrides=[f"hydra.searchpath=[file://{CONF_DIR}]", *point], return_hydra_config=True
        )


def grid(sweep: Path) -> list[list[str]]:
    """Every grid point of a sweep file, as overrides, expanded as Hydra's sweeper does."""
    return expand_grid([], sweeper_params(compose_sweep(sweep, [])))


def tiny_model(tokenizer: Any, *overrides: str, cfg: DictConfig | None = None) -> VideoLMM:
    """The VideoLMM of the composed config (`overrides`, or `cfg`), built as a run builds it."""
    return build_model(cfg if cfg is not None else cfg_with(*overrides), tokenizer)


def tiny_batch(tok: Any, clips: int = 3) -> Batch:
    """One video sample of `clips` random clips, with an answer to train on."""
    ids = [
        *tok.encode("<|im_start|> user", add_special_tokens=False),
        MEDIA,
        *tok.encode("what ? <|im_end|> <|im_start|> assistant", add_special_tokens=False),
    ]
    answer = tok.encode("B <|im_end|>", add_special_tokens=False)
    return Batch(
        media=[[torch.randint(0, 255, (clips, 1, 32, 32, 3), dtype=torch.uint8)]],
        input_ids=[torch.tensor(ids + answer)],
        labels=[torch.tensor([IGNORE] * len(ids) + answer)],
        answer_index=torch.tensor([1]),
        num_options=torch.tensor([2]),
        ids=["x"],
        categories=["c"],
        benchmarks=["b"],
    )


def text_only_batch(tok: Any) -> Batch:
    """One text-only sample (no media at all), with an answer to train on: the mixture's text share."""
    ids = tok.encode("<|im_start|> user what ? <|im_end|> <|im_start|> assistant", add_special_tokens=False)
    answer = tok.encode("B <|im_end|>", add_special_tokens=False)
    labels = [torch.tensor([IGNORE] * len(ids) + answer)]
    return replace(tiny_batch(tok), media=[[]], input_ids=[torch.tensor(ids + answer)], labels=labels)


def word_tokenizer(samples: Any, *text: str, chat: str = "chatml") -> Any:
    """The tiny word-level tokenizer of `samples`' turns (and `text`), with the chat roles."""
    return build_word_tokenizer([*(t for s in samples for _, t in s.turns), "user assistant", *text], chat)


def records(root: Path) -> list[dict]:
    """Every run record under `root`, in path order."""
    return [json.loads(p.read_text()) for p in sorted(root.rglob("result.json"))]


def train_cmd(*overrides: str, multirun: bool = False) -> list[str]:
    return [sys.executable, "-m", "src.train", *(["-m"] if multirun else []), *overrides]


def train_env(data_dir: Path, out_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a `python -m src.train` subprocess: data and outputs in these folders."""
    return {**os.environ, "APOLLO_DATA_DIR": str(data_dir), "APOLLO_OUTPUT_DIR": str(out_dir), **extra}


def run_train(
    overrides: list[str], data_dir: Path, out_dir: Path, multirun: bool = False, timeout: int = 900
) -> subprocess.CompletedProcess:
    """`python -m src.train` in a subprocess, data and outputs in the given folders."""
    return subprocess.run(
        train_cmd(*overrides, multirun=multirun),
        cwd=ROOT,
        env=train_env(data_dir, out_dir, HYDRA_FULL_ERROR="1"),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def write_mp4(path: Path, colours: list[tuple[int, int, int]], start_pts: int = 0, fps: int = 10) -> Path:
    """A 64x64 h264 mp4 of solid colours, one per frame, its first frame at start_pts / fps s."""
    if "libx264" not in av.codecs_available:
        pytest.skip("PyAV built without libx264")
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        stream.options = {"crf": "0"}  # near-lossless, so only the RGB<->YUV rounding remains
        for i, colour in enumerate(colours):
            frame = av.VideoFrame.from_ndarray(np.full((64, 64, 3), colour, np.uint8), format="rgb24")
            frame.pts, frame.time_base = start_pts + i, Fraction(1, fps)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path
