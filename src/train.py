"""Train and evaluate one video LMM: `python -m src.train [group=option ...] [-m for a sweep]`.

The path of one run: validate the composed config (before anything loads), skip the
grid point if it already has a finished record, build data and model, train the
stages of the schedule, evaluate on the eval split, and write `result.json` (status
ok, or failed with the reason) in the run's directory.
"""

from __future__ import annotations

import csv
import logging
import sys
import time
import traceback
import warnings
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

from src.config import ConfigError, check_overrides, config_groups, sweep_file_overrides, validate
from src.data.errors import DataError
from src.records import is_finished, now, read_record, versions, write_record

log = logging.getLogger("src.train")


def _run_name(override_dirname: str) -> str:
    return override_dirname.replace("/", "_") or "base"


OmegaConf.register_new_resolver("apollo.run_name", _run_name, replace=True)


def _choices() -> dict[str, str]:
    from hydra.core.hydra_config import HydraConfig

    groups = set(config_groups())
    return {k: str(v) for k, v in HydraConfig.get().runtime.choices.items() if k in groups}


def _resolved(cfg: DictConfig) -> dict[str, Any]:
    try:
        return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
    except Exception:  # an unresolvable value: keep the config as written
        return OmegaConf.to_container(cfg, resolve=False)  # type: ignore[return-value]


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


def train_and_evaluate(cfg: DictConfig, run_dir: Path, run_name: str,
                       choices: dict[str, str]) -> dict[str, Any]:
    """Build, train every stage, evaluate. Returns the record's design, metrics and costs."""
    import lightning as L
    from hydra.utils import instantiate

    from src.build import build_logger, build_parts, design
    from src.models.module import VideoLMMModule

    _one_log_stream()
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    parts = build_parts(cfg)
    stages = [OmegaConf.to_container(s, resolve=True) for s in cfg.schedule.stages]
    module = VideoLMMModule(parts.model, parts.option_token_ids, stages[0],
                            weight_decay=cfg.schedule.weight_decay,
                            warmup_ratio=cfg.schedule.warmup_ratio)
    logger = build_logger(cfg, run_dir, run_name, choices)
    info = design(cfg, parts)
    if logger:
        # the design numbers too, so that analysis.collect reads the same row from W&B
        logger.log_hyperparams({"params": info["params"], "design": info})
    train_seconds = 0.0
    trainer = None
    try:
        for stage in stages:
            log.info("stage %s: learning rates %s, %s epoch(s)", stage["name"], stage["lr"], stage["epochs"])
            module.apply_stage(stage)
            trainer = instantiate(cfg.trainer, max_epochs=stage["epochs"], logger=logger,
                                  default_root_dir=str(run_dir))
            start = time.perf_counter()
            trainer.fit(module, datamodule=parts.datamodule)
            train_seconds += time.perf_counter() - start
        train_loss = float(trainer.callback_metrics.get("train/loss", float("nan")))
        start = time.perf_counter()
        trainer.test(module, datamodule=parts.datamodule, verbose=False)
        eval_seconds = time.perf_counter() - start
    finally:
        if logger and cfg.logger.name == "wandb":
            import wandb

            wandb.finish()
    write_items(run_dir / "items.csv", run_name, module.results)
    return {
        "design": info,
        "metrics": {**module.metrics, "train/loss": train_loss},
        "costs": {"train_seconds": round(train_seconds, 2), "eval_seconds": round(eval_seconds, 2)},
        "data": {**parts.datamodule.report(), "issues": module.data_issues()},
    }


def write_items(path: Path, run_name: str, results: list[dict[str, Any]]) -> None:
    """Per-question correctness, beside the record: one row per item per eval modality.

    `seconds` is the item's share of its batch's wall time; `control` (only where the
    eval manifest flags controls) the item's flag, "frame", "text" or empty.
    """
    from src.data.manifest import LETTERS

    flagged = any(r.get("control") is not None for r in results)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["run", "item", "benchmark", "category", "modality", "correct", "chosen",
                    "seconds", *(["control"] if flagged else [])])
        for r in results:
            w.writerow([run_name, r["item"], r["benchmark"], r["category"], r["modality"],
                        r["correct"], LETTERS[r["chosen"]],
                        "" if r.get("seconds") is None else round(r["seconds"], 6),
                        *([r.get("control") or ""] if flagged else [])])


def run(cfg: DictConfig) -> float | None:
    """One grid point, from a composed config; always leaves a record."""
    from hydra.core.hydra_config import HydraConfig

    hc = HydraConfig.get()
    run_dir = Path(hc.runtime.output_dir)
    run_name = _run_name(hc.job.override_dirname)
    choices = _choices()
    record: dict[str, Any] = {
        "status": "failed", "reason": None, "sweep": cfg.sweep, "run_dir": str(run_dir.resolve()),
        "run_name": run_name, "overrides": list(hc.overrides.task), "choices": choices,
        "config": _resolved(cfg), "design": {}, "metrics": {}, "costs": {}, "data": {},
        "versions": versions(), "started_at": now(),
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
    log.info("run %s in %s", run_name, run_dir)
    try:
        record.update(train_and_evaluate(cfg, run_dir, run_name, choices), status="ok")
    except BaseException as e:  # noqa: BLE001 - every failure is recorded, then re-raised
        record["reason"] = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
        if isinstance(e, DataError):  # the user's data, not a bug: one line, no traceback
            print(f"error: {e}", file=sys.stderr)
            raise SystemExit(2) from None
        log.error("run failed: %s\n%s", record["reason"], traceback.format_exc())
        raise
    finally:
        record["finished_at"] = now()
        write_record(run_dir, record)
    overall = record["metrics"].get(f"test/{cfg.data.name}/overall")
    if overall is None:  # the eval rows name other benchmarks than data.name
        log.info("done: record %s", run_dir / "result.json")
    else:
        log.info("done: overall accuracy %.3f; record %s", overall, run_dir / "result.json")
    return overall


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
def _hydra_main(cfg: DictConfig) -> float | None:
    return run(cfg)


def main() -> None:
    try:
        check_overrides(sys.argv[1:])
        check_overrides(sweep_file_overrides(sys.argv[1:]))
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    _hydra_main()


if __name__ == "__main__":
    main()
