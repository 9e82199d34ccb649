"""Evaluate trained runs again: `python -m src.eval RUN_DIR... [key=value ...]`.

A run evaluates itself at the end of training; this scores a finished run on another
benchmark, or with the modality audit, without training it again:

    python -m src.eval outputs/sweeps/demo/encoder=dinov2,llm=qwen4b eval.modalities=[video,frame,text]
    python -m src.eval RUN_DIR data.eval=videomme.jsonl data.name=videomme
    python -m src.eval RUN_DIR sampler=fps sampler.fps=2   # trained with uniform, tested at 2 fps

The run is rebuilt from its composed config (`.hydra/config.yaml`, with the overrides given), its
trained weights are loaded from `checkpoints/last.ckpt` (weights_only) and its tokenizer
from `tokenizer/`; multiple-choice items are scored by the likelihood of each option
letter. Results go beside the run's own record, in `evals/<benchmark>-<modalities>/`:
`result.json` (metrics per benchmark, category and modality, each with its 95% interval
under `intervals`; costs) and `items.csv`.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import re
import sys
import time
from pathlib import Path
from typing import Any, cast

from omegaconf import DictConfig, OmegaConf

from analysis.intervals import accuracy_intervals
from src.config import resolvers
from src.config.compose import CONF_DIR, config_groups, group_options, option_config
from src.config.errors import ConfigError
from src.config.validate import check_overrides, validate
from src.data.errors import DataError
from src.run.records import UnreadableRecord, now, read_record, versions, write_items, write_record

log = logging.getLogger("src.eval")


class EvalError(ValueError):
    """A run that cannot be evaluated: the message says which and why, in one line."""


def run_config(run_dir: Path, overrides: list[str]) -> DictConfig:
    """The run's resolved config from its record, with `key=value` overrides applied."""
    try:
        record = read_record(run_dir)
    except UnreadableRecord as e:
        raise EvalError(f"{e}; train the run again (python -m src.train, the same command)") from None
    if record is None:
        raise EvalError(f"{run_dir}: no result.json: not a run directory, or a run that never ended")
    if record.get("status") != "ok":
        raise EvalError(
            f"{run_dir}: the run did not finish (status {record.get('status')}: {record.get('reason')}); train it first"
        )
    composed = run_dir / ".hydra" / "config.yaml"
    # the config as composed (interpolations kept, so that eval.modalities reaches the data),
    # its paths as they resolved when the run trained
    cfg = cast(DictConfig, OmegaConf.load(composed) if composed.is_file() else OmegaConf.create(record["config"]))
    cfg.paths = record["config"]["paths"]
    if "circular" not in cfg.eval:  # a run from before eval.circular: today's default
        cfg.eval.circular = OmegaConf.load(CONF_DIR / "train.yaml").eval.circular
    if "eval_circular" not in cfg.data:  # ... which its data node does not point at yet
        cfg.data.eval_circular = "${eval.circular}"
    try:
        check_overrides(overrides)  # group options, and Hydra's own grammar, as src.train checks them
    except ConfigError as e:
        raise EvalError(str(e)) from None
    groups = set(config_groups())
    keyed = [o for o in overrides if o.split("=", 1)[0] not in groups]
    for o in overrides:  # `sampler=fps`: a group's option replaces the run's (Table 11: uniform-trained, fps-tested)
        group, _, option = o.partition("=")
        if group in groups:
            if option not in group_options(group):
                raise EvalError(f"{o}: not an option of '{group}'; valid choices: {', '.join(group_options(group))}")
            cfg[group] = option_config(group, option)  # with the base it pulls in (conf/llm/family/)
    _check_keys(cfg, keyed)
    try:
        cfg = cast(DictConfig, OmegaConf.merge(cfg, OmegaConf.from_dotlist([o.lstrip("+") for o in keyed])))
    except Exception as e:  # noqa: BLE001 - a malformed override: one line
        raise EvalError(f"bad override in {overrides}: {' '.join(str(e).split())}") from None
    cfg.checkpoint.resume = False
    return cfg


def _check_keys(cfg: DictConfig, keyed: list[str]) -> None:
    """Every `key=value` names a key of the run's config (`+key=value` adds one), as Hydra
    checks src.train's: a typo (`samplr.fps=1`) is an error, not a key nobody reads."""
    import difflib

    for o in keyed:
        key = o.split("=", 1)[0]
        if key.startswith("+") or "=" not in o:
            continue
        parent, _, leaf = key.rpartition(".")
        node = OmegaConf.select(cfg, parent, default=None) if parent else cfg
        if not (OmegaConf.is_dict(node) and leaf in list(node.keys())):  # `in node` is False for a `???`
            known = [parent + "." + str(k) if parent else str(k) for k in node] if OmegaConf.is_dict(node) else []
            close = difflib.get_close_matches(key, known + _keys(cfg), n=1)
            hint = f"did you mean {close[0]}? " if close else ""
            raise EvalError(f"{o}: the run's config has no key '{key}'; {hint}valid: a key of it, or +{o} to add one")


def _keys(cfg: DictConfig, prefix: str = "") -> list[str]:
    """Every key of `cfg`, dotted."""
    out = []
    for k, v in cfg.items_ex(resolve=False) if OmegaConf.is_dict(cfg) else []:
        out.append(prefix + str(k))
        if OmegaConf.is_dict(v):
            out += _keys(cast(DictConfig, v), prefix + str(k) + ".")
    return out


# overrides that change where and how an evaluation runs, not what it scores: not in its folder's name
NOT_IN_NAME = ("eval.batch_size", "eval.modalities", "data.name", "logger", "paths.data_dir", "cache.")


def _named(overrides: list[str]) -> list[str]:
    """The overrides that name an evaluation's folder: group choices first, each sorted."""
    named = [o for o in overrides if not o.lstrip("+").startswith(NOT_IN_NAME)]
    return sorted(named, key=lambda o: ("." in o.split("=", 1)[0], o))


def eval_dir(run_dir: Path, cfg: DictConfig, overrides: list[str]) -> Path:
    """`evals/<benchmark>-<modalities>[-<overrides>]`: one folder per evaluation, named by its
    overrides (sorted; `=` written `_`), with a hash of them where a value had to be
    rewritten to make a folder name (a path) or the name grows long."""
    keyed = _named(overrides)
    parts = [o.replace("=", "_", 1) for o in keyed]
    safe = [re.sub(r"[^\w.,+\-]", "_", p) for p in parts]
    name = "-".join([cfg.data.name, "+".join(cfg.eval.modalities), *safe])
    if safe != parts or len(name) > 120:
        name = f"{name[:100]}-{hashlib.sha1(chr(0).join(keyed).encode()).hexdigest()[:8]}"
    return run_dir / "evals" / name


def _same_evaluation(out: Path, overrides: list[str]) -> None:
    """An evaluation folder holds one evaluation: another one's is never overwritten."""
    try:
        before = read_record(out)
    except UnreadableRecord:
        return  # a cut write of this same evaluation: written again
    if before is None:
        return
    old = _named(before.get("overrides", []))
    if _named(overrides) != old:
        raise EvalError(f"{out} holds another evaluation ({' '.join(old) or 'no overrides'}); it is not overwritten")


def evaluate_run(run_dir: Path, overrides: list[str]) -> dict[str, Any]:
    """Score one finished run; returns (and writes) its eval record."""
    import lightning as L
    from transformers import AutoTokenizer

    from src.launch.dist import Processes
    from src.run import checkpoints
    from src.run.build import build_module, build_parts
    from src.run.stages import NonFiniteScores, evaluate

    cfg = run_config(run_dir, overrides)
    validate(cfg)
    out = eval_dir(run_dir, cfg, overrides)
    _same_evaluation(out, overrides)
    ckpt = checkpoints.last_checkpoint(run_dir)
    if ckpt is None:
        raise EvalError(f"{run_dir}: no checkpoints/last.ckpt to load the trained weights from")
    saved = checkpoints.load(ckpt)
    if not saved["apollo"]["stage_done"] or saved["apollo"]["stage"] != len(cfg.schedule.stages) - 1:
        raise EvalError(f"{ckpt}: the checkpoint is not the end of the schedule")
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    tokenizer = AutoTokenizer.from_pretrained(run_dir / "tokenizer") if (run_dir / "tokenizer").is_dir() else None
    parts = build_parts(cfg, tokenizer=tokenizer)
    module = build_module(cfg, parts.model, parts.option_token_ids, stage=-1)
    module.load_state_dict(saved["state_dict"])
    start = time.perf_counter()
    processes = Processes()
    record = {
        "status": "ok",
        "reason": None,
        "sweep": cfg.sweep,
        "run_dir": str(run_dir.resolve()),
        "overrides": overrides,
        "eval_dir": str(out),
        "choices": read_record(run_dir).get("choices", {}),  # type: ignore[union-attr]
        "config": OmegaConf.to_container(cfg, resolve=True),
        "design": {},
        "metrics": {},
        "intervals": {},
        "costs": {},
        "data": {},
        "versions": versions(),
    }
    try:
        evaluate(cfg, module, parts.datamodule, False, run_dir, processes)
    except NonFiniteScores as e:  # recorded failed, never scored
        write_record(out, {**record, "status": "failed", "reason": f"{type(e).__name__}: {e}", "finished_at": now()})
        raise EvalError(f"{run_dir}: {e}") from None
    finally:
        processes.close()
    record.update(
        metrics=module.metrics,
        intervals=accuracy_intervals(module.results),  # 95%, per metric: [lo, hi]
        costs={"eval_seconds": round(time.perf_counter() - start, 2)},
        data={**parts.datamodule.report(), "issues": module.data_issues()},
        finished_at=now(),
    )
    write_record(out, record)
    write_items(out / "items.csv", run_dir.name, module.results)
    return record


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m src.eval", description=__doc__.split("\n")[0])
    p.add_argument(
        "args",
        nargs="+",
        metavar="RUN_DIR|key=value",
        help="run directories, then config overrides (eval.modalities=[video,frame,text])",
    )
    ns = p.parse_args(argv)
    # run folders are named by their overrides ("encoder=dinov2,llm=qwen4b"): a path is what exists
    runs = [Path(a) for a in ns.args if Path(a).exists() or "=" not in a]
    overrides = [a for a in ns.args if not Path(a).exists() and "=" in a]
    if not runs:
        p.error("name at least one run directory")
    resolvers.register()
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s][%(name)s][%(levelname)s] %(message)s")
    failed = 0
    for run_dir in runs:
        try:
            record = evaluate_run(run_dir, overrides)
        except (EvalError, ConfigError, DataError) as e:
            print(f"error: {e}", file=sys.stderr)
            failed += 1
            continue
        overall = {k: round(v, 4) for k, v in record["metrics"].items() if k.endswith("/overall")}
        print(f"{run_dir}: {overall}; items and record in {record['eval_dir']}")
    return 2 if failed else 0
