"""Checkpoints of a run: where they live, how they are written, and when.

A run keeps one checkpoint, `<run_dir>/checkpoints/last.ckpt`, replaced atomically (written
to a temporary file, then renamed), so that a process killed at any moment, even while
saving, leaves the previous checkpoint whole. It is written at the end of every stage
of the schedule and, within a stage, every `checkpoint.every_minutes` minutes (or every
`checkpoint.every_steps` optimizer steps). Besides Lightning's own state (weights,
optimizer, scheduler, loop counters, the training loader's place in its epoch) it holds
the schedule's progress under "apollo" (see VideoLMMModule.progress). Everything in it
is tensors and plain types, so it loads with `weights_only=True`.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch

from src.config.constraints import Constraints, Rule, boolean, nullable, positive_int, positive_number
from src.run import signals

log = logging.getLogger(__name__)

CONSTRAINTS = Constraints(  # conf/train.yaml's `checkpoint`
    Rule("every_minutes", nullable(positive_number), "a number of minutes > 0, or null"),
    Rule("every_steps", nullable(positive_int), "an integer > 0, or null"),
    Rule("resume", boolean, "true or false"),
)
CHECKPOINT_DIR = "checkpoints"
LAST = "last.ckpt"
TMP = f".{LAST}.tmp"


def last_checkpoint(run_dir: str | Path) -> Path | None:
    path = Path(run_dir) / CHECKPOINT_DIR / LAST
    return path if path.is_file() else None


def load(path: str | Path) -> dict[str, Any]:
    """A checkpoint's contents, tensors memory-mapped, without running any pickled code."""
    return torch.load(path, map_location="cpu", weights_only=True, mmap=True)


def progress_of(path: str | Path) -> dict[str, Any]:
    """The schedule's progress saved in a checkpoint (its "apollo" entry)."""
    return load(path)["apollo"]


def remove_temporary(run_dir: str | Path) -> Path | None:
    """Remove the half-written checkpoint a killed save left behind; returns it, if any."""
    tmp = Path(run_dir) / CHECKPOINT_DIR / TMP
    if tmp.exists():
        tmp.unlink()
        return tmp
    return None


def save(trainer: L.Trainer, run_dir: str | Path) -> Path:
    """Write the trainer's checkpoint as `last.ckpt`, atomically. Every rank must call it.
    A save that fails (a full disk) leaves the previous `last.ckpt`, and no temporary file."""
    folder = Path(run_dir) / CHECKPOINT_DIR
    final = folder / LAST
    tmp = folder / TMP
    if trainer.is_global_zero:
        folder.mkdir(parents=True, exist_ok=True)
    try:
        trainer.save_checkpoint(tmp, weights_only=False)  # by rank 0 only; a barrier inside
        if trainer.is_global_zero:
            os.replace(tmp, final)
    except BaseException:
        if trainer.is_global_zero:
            tmp.unlink(missing_ok=True)
        raise
    trainer.strategy.barrier("checkpoint saved")
    return final


class PeriodicCheckpoint(L.Callback):
    """Saves `last.ckpt` every `every_minutes` minutes or `every_steps` steps within a stage,
    and, when a signal asked the run to stop (src.run.signals), saves then raises Interrupted.

    Every rank must save at the same step (saving holds a barrier), so the time-based
    decision, and the stop, are rank 0's, broadcast to the others.
    """

    def __init__(self, run_dir: str | Path, every_minutes: float | None = None, every_steps: int | None = None) -> None:
        self.run_dir = Path(run_dir)
        self.every_minutes = every_minutes
        self.every_steps = every_steps
        self._last = time.monotonic()

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._last = time.monotonic()
        signals.take_back()  # from Lightning's handler, which would stop without a checkpoint

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        due = bool(self.every_steps and trainer.global_step % self.every_steps == 0)
        if self.every_minutes is not None:
            due = due or time.monotonic() - self._last >= 60 * self.every_minutes
        stop = signals.requested()
        if trainer.world_size > 1:
            due, stop = trainer.strategy.broadcast((due, stop), src=0)
        if due or stop:
            save(trainer, self.run_dir)
            self._last = time.monotonic()
            log.debug("checkpoint at step %d", trainer.global_step)
        if stop:
            log.warning("%s: checkpoint saved at step %d; stopping", signal.Signals(stop).name, trainer.global_step)
            raise signals.Interrupted(stop)
