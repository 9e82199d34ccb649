"""Running a run's schedule, stage after stage, and resuming where a killed run stopped.

Each stage is one `trainer.fit`: the parts with a learning rate of 0 frozen, the data of
the stage (video samples only, or the mixture), the `optimizer` group's optimizer (AdamW)
with one parameter group per component, cosine decay after a 3% warm-up, gradients
clipped at 1.0 (conf/trainer).

Resume: when the run directory holds a checkpoint (src/run/checkpoints.py) and
`checkpoint.resume` is true, the stages it finished are skipped (their weights loaded),
and a stage it stopped in the middle of is continued from the checkpoint, at the same
step and the same place in the same epoch: started again after a SIGKILL, a run ends
with the weights and metrics of a run that was never interrupted.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lightning as L
from hydra.utils import instantiate
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig, OmegaConf

from src.config.constraints import Constraints, Rule, positive_int
from src.config.container import to_dict
from src.config.errors import ConfigError
from src.data.manifest import EVAL_MODALITIES
from src.launch.dist import Processes
from src.models.module import VideoLMMModule
from src.run import checkpoints, signals
from src.run.throughput import Costs, Throughput
from src.run.updates import UpdateCheck

log = logging.getLogger("src.train")


def make_trainer(
    cfg: DictConfig,
    run_dir: Path,
    logger: Any,
    processes: Processes,
    epochs: int = 1,
    callbacks: list[L.Callback] | None = None,
) -> L.Trainer:
    trainer = instantiate(
        cfg.trainer, max_epochs=epochs, logger=logger, default_root_dir=str(run_dir), callbacks=callbacks or []
    )
    processes.adopt(trainer)
    return trainer


def resume_point(cfg: DictConfig, run_dir: Path, module: VideoLMMModule) -> tuple[int, Path | None]:
    """(first stage to run, checkpoint to continue it from) after what earlier attempts saved."""
    last = checkpoints.last_checkpoint(run_dir) if cfg.checkpoint.resume else None
    if last is None:
        return 0, None
    saved = checkpoints.load(last)
    progress = saved["apollo"]
    names = [s["name"] for s in cfg.schedule.stages]
    if progress["stage_done"]:
        module.load_state_dict(saved["state_dict"])
        module.restore_progress(progress)
        nxt = progress["stage"] + 1
        log.info(
            "resuming: stage %s done (checkpoint %s); %s",
            names[progress["stage"]],
            last,
            f"next {names[nxt]}" if nxt < len(names) else "every stage done, evaluating",
        )
        return nxt, None
    log.info("resuming stage %s from checkpoint %s (step %s)", names[progress["stage"]], last, saved.get("global_step"))
    return progress["stage"], last


def release(trainer: L.Trainer, module: VideoLMMModule) -> None:
    """Free what a finished stage held and the next does not need: its gradients and its
    optimizer's state (AdamW's two moments of every weight it trained). Kept, they would sit
    under the next stage's own: at real size, c_vc_cl's last stage (the LLM's) would carry
    the vision encoder's gradients and moments (5 GB for SigLIP in float32)."""
    import gc

    import torch

    module.zero_grad(set_to_none=True)
    trainer.strategy.optimizers = []
    trainer.strategy.lr_scheduler_configs = []
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def train_schedule(
    cfg: DictConfig,
    module: VideoLMMModule,
    datamodule: Any,
    logger: Any,
    run_dir: Path,
    processes: Processes,
    costs: Costs | None = None,
) -> dict[str, Any]:
    """Train every stage not yet done; returns what the record says of the schedule.
    `costs` gathers each stage's step times, tokens, memory and FLOPs (src/run/throughput.py)."""
    costs = costs if costs is not None else Costs()
    stages = [to_dict(s, resolve=True) for s in cfg.schedule.stages]
    start, resume_from = resume_point(cfg, run_dir, module)
    ck = cfg.checkpoint
    for i in range(start, len(stages)):
        stage = stages[i]
        log.info(
            "stage %d/%d %s: learning rates %s, %s data, %s epoch(s)",
            i + 1,
            len(stages),
            stage["name"],
            stage["lr"],
            stage["data"],
            stage["epochs"],
        )
        module.apply_stage(stage, index=i)
        datamodule.use_stage(i, stage["data"])
        periodic = checkpoints.PeriodicCheckpoint(run_dir, ck.every_minutes, ck.every_steps)
        callbacks: list[L.Callback] = [periodic, Throughput(costs, stage["name"]), UpdateCheck(seed=cfg.seed)]
        trainer = make_trainer(cfg, run_dir, logger, processes, stage["epochs"], callbacks)
        with signals.training():  # a SIGTERM now: a checkpoint at the next step, then Interrupted
            try:
                trainer.fit(
                    module, datamodule=datamodule, ckpt_path=resume_from if i == start else None, weights_only=True
                )
            except SIGTERMException:
                # Lightning's own handler (it calls ours too) between the fit's start and
                # PeriodicCheckpoint.on_train_start: no step was taken, the last checkpoint holds all
                stop = signals.requested()
                if stop is None:
                    raise
                raise signals.Interrupted(stop) from None
        module.stage_done = True
        checkpoints.save(trainer, run_dir)
        stop_after_stage(trainer)
        release(trainer, module)
    return {
        "name": cfg.schedule.name,
        "stages": [{k: s[k] for k in ("name", "lr", "data", "epochs")} for s in stages],
        "resumed_at_stage": None if start == 0 and resume_from is None else start,
        "resumed_mid_stage": resume_from is not None,
    }


def stop_after_stage(trainer: L.Trainer) -> None:
    """A signal noted after a stage's last step (no step left to act on it) stops the run
    now that the stage's end is saved. With several ranks, rank 0's decides for all, as in
    PeriodicCheckpoint (saving and stopping hold barriers)."""
    stop = signals.requested()
    if trainer.world_size > 1:
        stop = trainer.strategy.broadcast(stop, src=0)
    if stop is not None:
        raise signals.Interrupted(stop)


def evaluate(
    cfg: DictConfig, module: VideoLMMModule, datamodule: Any, logger: Any, run_dir: Path, processes: Processes
) -> None:
    """Score the eval split; with several ranks, each scores its share and all gather the rest.

    Circular evaluation scores each rotation of an item as its own row, and the ranks share
    rows, not items: only once every rank's rows are here are an item's rotations merged
    into its one row (`merge_rotations`), which `items.csv` and the metrics are made of.
    """
    import torch.distributed as dist

    from src.models.module import accuracy_metrics, merge_rotations

    trainer = make_trainer(cfg, run_dir, logger, processes)
    with finite_scores(module) as bad:
        trainer.test(module, datamodule=datamodule, verbose=False)
    check_scores(bad)
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        shards: list[Any] = [None] * dist.get_world_size()
        dist.all_gather_object(shards, (module.results, module.skipped["test"], module.decode_errors["test"]))
        module.results = [r for results, _, _ in shards for r in results]
        module.skipped["test"] = {k: v for _, skipped, _ in shards for k, v in skipped.items()}
        module.decode_errors["test"] = sum(n for _, _, n in shards)
        module.metrics = accuracy_metrics(module.results)
    module.results = merge_rotations(module.results)  # after the gather: see the docstring
    if logger:
        logger.log_metrics(module.metrics, step=trainer.global_step)


class NonFiniteScores(FloatingPointError):
    """Evaluation scored an option NaN or infinite (diverged weights): the run failed."""


@contextlib.contextmanager
def finite_scores(module: VideoLMMModule) -> Iterator[list[int]]:
    """While `module` is tested: yields, filled in at the end, [items with a NaN or infinite
    score among their options, items scored] (VideoLMMModule.test_step counts them)."""
    counts = [0, 0]
    try:
        yield counts
    finally:
        counts[:] = module.nonfinite


def check_scores(counts: list[int]) -> None:
    """Raise NonFiniteScores when any rank scored an item NaN or infinite."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        shards: list[Any] = [None] * dist.get_world_size()
        dist.all_gather_object(shards, counts)
        counts = [sum(c[0] for c in shards), sum(c[1] for c in shards)]
    if counts[0]:
        raise NonFiniteScores(
            f"{counts[0]} of {counts[1]} eval items have a NaN or infinite option score "
            "(the weights diverged: a lower learning rate, or bf16/fp32 precision); no metrics recorded"
        )


def _distinct_modalities(v: Any, empty: bool) -> bool:
    return (
        OmegaConf.is_list(v)
        and (empty or len(v) > 0)
        and len(set(v)) == len(v)
        and all(m in EVAL_MODALITIES for m in v)
    )


EVAL_CONSTRAINTS = Constraints(
    Rule("batch_size", positive_int, "an integer > 0"),
    Rule(
        "modalities",
        lambda v: _distinct_modalities(v, empty=False),
        f"a list of distinct {', '.join(EVAL_MODALITIES)}, e.g. eval.modalities=[video,frame,text]",
    ),
    Rule(
        "circular",
        lambda v: _distinct_modalities(v, empty=True),
        f"a list of distinct {', '.join(EVAL_MODALITIES)} (or []), e.g. eval.circular=[frame,text]",
    ),
)
PARTS = ("vision", "connector", "llm")


def check_stages(schedule: DictConfig, key: str, root: DictConfig) -> None:
    """At least one stage; each trains some part at a rate >= 0, on known data, for >= 1 epoch."""
    stages = schedule.stages
    if not stages:
        raise ConfigError(f"{key}.stages=[] is invalid; valid: at least one stage")
    for i, stage in enumerate(stages):
        for part in PARTS:
            lr = stage.lr.get(part)
            if not isinstance(lr, (int, float)) or lr < 0:
                raise ConfigError(f"{key}.stages[{i}].lr.{part}={lr!r} is invalid; valid: a number >= 0")
        if not any(stage.lr[p] > 0 for p in PARTS):
            raise ConfigError(
                f"{key}.stages[{i}].lr={dict(stage.lr)} is invalid; valid: at least one part with a learning rate > 0"
            )
        if stage.get("data", "mixture") not in ("mixture", "video"):
            raise ConfigError(
                f"{key}.stages[{i}].data={stage.data!r} is invalid; valid: mixture, video (video samples only)"
            )
        if not isinstance(stage.epochs, int) or stage.epochs < 1:
            raise ConfigError(f"{key}.stages[{i}].epochs={stage.epochs!r} is invalid; valid: an integer >= 1")


SCHEDULE_CONSTRAINTS = Constraints(Rule("stages", OmegaConf.is_list, "a list of stages"), check=check_stages)
