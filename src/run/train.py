"""Train and evaluate one video LMM: `python -m src.train [group=option ...] [-m for a sweep]`.

The path of one run: validate the composed config (before anything loads), skip the
grid point if it already has a finished record, build data and model, train the
stages of the schedule, evaluate on the eval split, and write `result.json` (status
ok, or failed with the reason) in the run's directory.
"""

from __future__ import annotations

import logging
import sys
import time
import traceback
import warnings
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from analysis.intervals import accuracy_intervals
from src.config.constraints import Constraints, Rule, is_int
from src.config.container import to_dict
from src.config.errors import ConfigError
from src.config.resolvers import run_name as name_of_run
from src.config.validate import validate
from src.data.errors import DataError
from src.run import signals
from src.run.records import (
    UnreadableRecord,
    is_finished,
    now,
    read_record,
    remove_temporary,
    versions,
    write_items,
    write_record,
)

log = logging.getLogger("src.train")
RUN_CONSTRAINTS = Constraints(Rule("seed", is_int, "an integer"))
FAILURES: list[tuple[str, str]] = []  # (run, reason) of this process's failed runs


def _choices() -> dict[str, str]:
    from hydra.core.hydra_config import HydraConfig

    # every group's choice, those local to a sweep's --config-dir too; not Hydra's own, nor
    # the members a pair of encoders pulls in (`encoder@encoder.members.siglip`)
    return {
        k: str(v)
        for k, v in HydraConfig.get().runtime.choices.items()
        if not k.startswith("hydra") and "@" not in k and v is not None
    }


def _resolved(cfg: DictConfig) -> dict[str, Any]:
    try:
        return to_dict(cfg, resolve=True)
    except Exception:  # an unresolvable value: keep the config as written
        return to_dict(cfg, resolve=False)


class _DropTips(logging.Filter):
    """Lightning's advertisements ("Tip: ... try installing litlogger") are not run logs."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Tip:" not in str(record.msg)


def _one_log_stream() -> None:
    """Lightning adds its own console handler; Hydra's root handlers (console and the
    run's train.log) already take its records, so drop it rather than print each twice."""
    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler):
                logger.removeHandler(handler)
        logger.propagate = True
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, _DropTips) for f in handler.filters):
            handler.addFilter(_DropTips())
    # raised inside Lightning's own code at every fit; nothing a user can act on
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")
    # frozen parts run in eval mode on purpose (VideoLMMModule.on_train_epoch_start)
    warnings.filterwarnings("ignore", message=r"Found \d+ module\(s\) in eval mode")


def train_and_evaluate(cfg: DictConfig, run_dir: Path, run_name: str, choices: dict[str, str]) -> dict[str, Any]:
    """Build, train the stages not yet done, evaluate. Returns the record's design, metrics, costs."""
    import lightning as L

    from src.launch.dist import Processes, is_main_process, launch_children_as_this_job
    from src.models.precision import policy as precision_policy
    from src.run.build import build_module, build_parts, design
    from src.run.loggers import build_logger, finish
    from src.run.stages import evaluate, train_schedule
    from src.run.throughput import Costs

    _one_log_stream()
    launch_children_as_this_job()
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    parts = build_parts(cfg)
    module = build_module(cfg, parts.model, parts.option_token_ids)
    main = is_main_process()
    if main:  # src.eval scores the run later with the very tokenizer it trained with
        parts.tokenizer.save_pretrained(run_dir / "tokenizer")
    logger: Any = build_logger(cfg, run_dir, run_name, choices) if main else False
    info = design(cfg, parts)
    if logger:
        # the design numbers too, so that analysis.collect reads the same row from W&B
        logger.log_hyperparams({"params": info["params"], "design": info})
    processes = Processes()
    costs = Costs(peak_tflops=OmegaConf.select(cfg, "perf.peak_tflops", default=None))
    try:
        schedule = train_schedule(cfg, module, parts.datamodule, logger, run_dir, processes, costs)
        start = time.perf_counter()
        evaluate(cfg, module, parts.datamodule, logger, run_dir, processes)
        eval_seconds = time.perf_counter() - start
    finally:
        finish(cfg)
        processes.close()
    if main:
        write_items(run_dir / "items.csv", run_name, module.results)
    return {
        "design": info,
        # the policy, and per stage the share of each trained part's weights that moved
        "precision": {**precision_policy(cfg), "updates": module.updates},
        "schedule": schedule,
        "metrics": {**module.metrics, "train/loss": module.train_loss},
        "intervals": accuracy_intervals(module.results),  # 95%, per metric: [lo, hi]
        "costs": {
            "train_seconds": round(module.train_seconds, 2),
            "eval_seconds": round(eval_seconds, 2),
            **costs.record(),
        },
        "data": {**parts.datamodule.report(), "issues": module.data_issues()},
    }


def signal_name(signum: int) -> str:
    import signal

    return signal.Signals(signum).name


def _clean(run_dir: Path, main_rank: bool) -> None:
    """What an earlier attempt left half-written: temporary records and checkpoints, and a
    record that cannot be read (it counts as none: the grid point is trained again)."""
    from src.run import checkpoints

    if not main_rank:
        return
    for path in [*remove_temporary(run_dir), checkpoints.remove_temporary(run_dir)]:
        if path is not None:
            log.warning("removed %s, left half-written by an earlier attempt", path)
    try:
        read_record(run_dir)
    except UnreadableRecord as e:
        log.warning("%s; it counts as no record: training this grid point again", e)


def run(cfg: DictConfig) -> float | None:
    """One grid point, from a composed config; always leaves a record."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from src.config.redact import redact, redact_override
    from src.launch.dist import is_main_process, preempted

    hc = HydraConfig.get()
    run_dir = Path(hc.runtime.output_dir)
    run_name = name_of_run(hc.job.override_dirname)
    choices = _choices()
    main_rank = is_main_process()  # DDP: only rank 0 writes the record
    record: dict[str, Any] = {
        "status": "failed",
        "reason": None,
        "sweep": cfg.sweep,
        "run_dir": str(run_dir.resolve()),
        "run_name": run_name,
        "overrides": [redact_override(o) for o in hc.overrides.task],
        "choices": choices,
        "config": redact(_resolved(cfg)),
        "design": {},
        "metrics": {},
        "costs": {},
        "data": {},
        "versions": versions(),
        "started_at": now(),
    }
    try:
        validate(cfg)
    except ConfigError as e:
        record.update(reason=f"invalid config: {e}", finished_at=now())
        write_record(run_dir, record)
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    if not cfg.overwrite and is_finished(run_dir):
        log.info("skipping %s: it has a finished record (overwrite=true to train again)", run_dir)
        return read_record(run_dir)["metrics"].get(f"test/{cfg.data.name}/overall")  # type: ignore[index]
    _clean(run_dir, main_rank)
    log.info("run %s in %s", run_name, run_dir)
    failed = False
    signals.install()  # SIGTERM, SIGINT: a checkpoint, then a non-zero exit (not in a SLURM job)
    try:
        with signals.running():
            record.update(train_and_evaluate(cfg, run_dir, run_name, choices), status="ok")
    except BaseException as e:  # noqa: BLE001 - every failure is recorded, then re-raised
        failed = True
        record["reason"] = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
        FAILURES.append((run_name, record["reason"]))
        if isinstance(e, signals.Interrupted):  # not the run's fault: it resumes where it stopped
            record["reason"] = f"interrupted: {e}; the same command resumes it from {run_dir / 'checkpoints'}"
            record["interrupted"] = signal_name(e.signum)
            print(f"error: run {run_name} {e}; run the same command again to resume it", file=sys.stderr)
        elif isinstance(e, DataError):  # the user's data, not a bug: one line, no traceback
            print(f"error: {e}", file=sys.stderr)
        else:
            log.error("run failed: %s\n%s", record["reason"], traceback.format_exc())
        if hc.mode != RunMode.MULTIRUN or isinstance(e, (KeyboardInterrupt, signals.Interrupted)):
            if isinstance(e, DataError):
                raise SystemExit(2) from None
            if isinstance(e, signals.Interrupted):  # a sweep stops too, after this run
                raise SystemExit(e.exit_status) from None
            raise
    finally:
        record["finished_at"] = now()
        if failed and preempted():  # SIGTERM in a SLURM job: not a failure; the requeued job resumes
            log.warning(
                "preempted: no record written; the run resumes from %s when its job restarts", run_dir / "checkpoints"
            )
        elif main_rank or failed:  # a rank that fails says why; rank 0 may be killed for it
            write_record(run_dir, record)
    if failed:  # a multirun goes on with its next run
        log.error("run %s failed; the sweep goes on (record: %s)", run_name, run_dir / "result.json")
        return None
    overall = record["metrics"].get(f"test/{cfg.data.name}/overall")
    if not main_rank:
        return overall
    if overall is None:  # the eval rows name other benchmarks than data.name
        log.info("done: record %s", run_dir / "result.json")
    else:
        log.info("done: overall accuracy %.3f; record %s", overall, run_dir / "result.json")
    return overall
