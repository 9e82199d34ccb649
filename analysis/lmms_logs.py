"""lmms-eval's per-sample logs (`--log_samples`: `<date>_samples_<task>.jsonl`) as our tables.

    python -m analysis.modality LMMS_OUT_DIR ...     # the audit, from lmms-eval runs of any models
    python -m analysis.curate LMMS_OUT_DIR ...       # a curated benchmark from them
    python -m analysis.collect LMMS_OUT_DIR -o results.csv   # scores per task and category

`read_samples(path)` turns one log into the long frame of analysis/items.py (model, benchmark,
item, category, modality, correct): the task is the benchmark (unless the task's per-sample
record names one, as ours do: the eval manifest's, so that the items are those of
`items.csv`), and a `<task>_no_visual` task (lmms-eval's text-only variants) is the same
benchmark's items in the `text` modality. The
model is named by the `<date>_results.json` beside the log: `run=` of model_args (our runs:
the run directory's name, as in their `items.csv`), else `pretrained=`, else the model name.

lmms-eval 0.7.3 drops the document from the log; an item is read from the per-sample metric
record the task's `process_results` returns (our tasks' `item`; Video-MME's `question_id`, and
the like), else it is the log's `doc_id`; its category from `task_category` / `task_type` /
`question_category` / `category` (Video-MME's task types before its domains), else the
task's name; correctness from `correct`, a
prediction and its answer (`pred_answer`/`answer`, `parsed_pred`/`answer`, `pred`/
`ground_truth`), a 0/1 `score`, or a 0/1 metric value. A line none of these reads is skipped,
counted and logged, never dropped in silence.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd

log = logging.getLogger("analysis.lmms_logs")
SAMPLES = re.compile(r"^(?:(?P<stamp>.+)_)?samples_(?P<task>.+)\.jsonl$")
NO_VISUAL = "_no_visual"
ITEM_KEYS = ("item", "question_id", "id")
CATEGORY_KEYS = ("task_category", "task_type", "question_category", "category")  # a task type first
PAIRS = (("pred_answer", "answer"), ("parsed_pred", "answer"), ("pred", "ground_truth"), ("pred_answer", "gt_answer"))
SKIP_METRICS = {"submission"}


class LmmsLogError(ValueError):
    """An lmms-eval log that cannot be read: one line names the file and why."""


def is_samples_log(path: str | Path) -> bool:
    return SAMPLES.match(Path(path).name) is not None


def find_logs(path: str | Path) -> list[Path]:
    """The samples logs named, or beneath a directory."""
    p = Path(path)
    return [p] if p.is_file() else sorted(q for q in p.rglob("*samples_*.jsonl") if is_samples_log(q))


def is_lmms_output(path: str | Path) -> bool:
    """A samples log, or a directory holding some and no run record (`result.json`)."""
    p = Path(path)
    if p.is_file():
        return is_samples_log(p)
    return p.is_dir() and bool(find_logs(p)) and not any(p.rglob("result.json"))


def _arg(model_args: str, key: str) -> str | None:
    """`key`'s value in lmms-eval's model_args: quoted (a run folder holds commas) or up to a comma."""
    m = re.search(rf"""(?:^|,){key}=(?:"([^"]*)"|'([^']*)'|([^,]*))""", model_args)
    return next((g for g in m.groups() if g is not None), None) if m else None


def model_name(log_file: Path) -> str:
    """The model of a log, from its `<date>_results.json` (else the folder's name)."""
    m = SAMPLES.match(log_file.name)
    stamp = m.group("stamp") if m else None
    candidates = [log_file.with_name(f"{stamp}_results.json")] if stamp else []
    candidates += sorted(log_file.parent.glob("*results.json"))
    for results in candidates:
        if results.is_file():
            try:
                config = json.loads(results.read_text()).get("config", {})
            except (json.JSONDecodeError, AttributeError):
                continue
            args = str(config.get("model_args") or "")
            run, pretrained = _arg(args, "run"), _arg(args, "pretrained")
            if run:
                return Path(run.rstrip("/")).name
            return str(pretrained or config.get("model") or log_file.parent.name)
    return log_file.parent.name


def _correct(value: Any) -> float | None:
    if isinstance(value, dict):
        if "correct" in value:
            return _correct(value["correct"])
        for pred, answer in PAIRS:
            if pred in value and answer in value:
                return float(str(value[pred]).strip() == str(value[answer]).strip())
        return _correct(value.get("score"))
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float) and not math.isnan(value) and 0 <= value <= 1:
        return float(value)
    return None


def _record(line: dict[str, Any]) -> tuple[dict[str, Any], float | None]:
    """The line's per-sample metric record (a dict, or {}), and its correctness."""
    record: dict[str, Any] = {}
    correct = None
    for key, value in line.items():
        if key in {"doc_id", "target", "filtered_resps", "resps", "token_counts", "doc_hash", "input"}:
            continue
        if key in SKIP_METRICS or key == "input_media":
            continue
        c = _correct(value)
        if c is not None:
            return (value if isinstance(value, dict) else {}), c
        if isinstance(value, dict) and not record:
            record = value
    return record, correct


def read_samples(path: str | Path) -> pd.DataFrame:
    """One samples log as the frame analysis/items.py reads (and `chosen`, `task`)."""
    path = Path(path)
    m = SAMPLES.match(path.name)
    if m is None:
        raise LmmsLogError(f"{path}: not an lmms-eval samples log (<date>_samples_<task>.jsonl)")
    task = m.group("task")
    benchmark = task.removesuffix(NO_VISUAL)
    modality = "text" if task.endswith(NO_VISUAL) else "video"
    model = model_name(path)
    rows, skipped = [], Counter[str]()
    with path.open() as f:
        for lineno, text in enumerate(f, 1):
            if not text.strip():
                continue
            try:
                line = json.loads(text)
            except json.JSONDecodeError:
                skipped["not JSON"] += 1
                continue
            record, correct = _record(line)
            if correct is None:
                skipped["no 0/1 score"] += 1
                if sum(skipped.values()) <= 3:
                    log.warning("%s:%d: no per-sample score to read; skipped", path, lineno)
                continue
            item = next((record[k] for k in ITEM_KEYS if record.get(k) not in (None, "")), line.get("doc_id"))
            category = next((record[k] for k in CATEGORY_KEYS if record.get(k) not in (None, "")), benchmark)
            rows.append(
                {
                    "model": model,
                    "benchmark": str(record.get("benchmark") or benchmark),
                    "item": str(item),
                    "category": str(category),
                    "modality": modality,
                    "correct": correct,
                    "chosen": record.get("chosen", record.get("pred_answer", record.get("parsed_pred"))),
                    "doc_id": line.get("doc_id"),
                    "task": task,
                }
            )
    if skipped:
        log.warning("%s: %d line(s) skipped (%s)", path, sum(skipped.values()), dict(skipped))
    if not rows:
        raise LmmsLogError(f"{path}: no sample with a per-item score ({dict(skipped) or 'empty file'})")
    frame = pd.DataFrame(rows)
    if frame["item"].duplicated().any():  # ids that are not unique (a video with several questions)
        frame["item"] = frame["doc_id"].astype(str)
    return frame


def read_logs(path: str | Path) -> pd.DataFrame:
    logs = find_logs(path)
    if not logs:
        raise LmmsLogError(f"{path}: no lmms-eval samples logs (*_samples_*.jsonl)")
    return pd.concat([read_samples(p) for p in logs], ignore_index=True)


def records(path: str | Path) -> list[dict[str, Any]]:
    """One run-record-like dict per model of the logs under `path`, for analysis.collect:
    metrics `test/<task>/<category>` and `test/<task>/overall` (the mean of the categories,
    as src.run's), `test_text/...` for the `_no_visual` tasks, `se/...` (binomial standard
    errors; the overall's over its categories) and `n/...` (items)."""
    frame = read_logs(path)
    out = []
    for model, rows in frame.groupby("model", sort=True):
        metrics: dict[str, float] = {}
        for (bench, modality), group in rows.groupby(["benchmark", "modality"], sort=True):
            prefix = "test_text" if modality == "text" else "test"
            cats = group.groupby("category")["correct"].agg(["mean", "size"])
            se = (cats["mean"] * (1 - cats["mean"]) / cats["size"]).pow(0.5)  # binomial standard error
            for cat, (acc, n) in cats.iterrows():
                metrics[f"{prefix}/{bench}/{cat}"] = float(acc)
                metrics[f"se/{prefix}/{bench}/{cat}"] = float(se[cat])
                metrics[f"n/{prefix}/{bench}/{cat}"] = int(n)
            metrics[f"{prefix}/{bench}/overall"] = float(cats["mean"].mean())
            metrics[f"se/{prefix}/{bench}/overall"] = float(se.pow(2).sum() ** 0.5 / len(se))
            metrics[f"n/{prefix}/{bench}/overall"] = int(cats["size"].sum())
        out.append(
            {
                "run_dir": str(Path(path).resolve()),
                "status": "ok",
                "reason": None,
                "sweep": None,
                "choices": {"model": str(model), "evaluator": "lmms-eval"},
                "metrics": metrics,
            }
        )
    return out


def items_table(path: str | Path, error: type[Exception]) -> pd.DataFrame:
    """`read_samples` for analysis/items.py: its errors as `error` (ItemsError; one line)."""
    try:
        return read_samples(path)
    except LmmsLogError as e:
        raise error(str(e)) from None


def collect_records(path: str | Path, error: type[Exception]) -> list[dict[str, Any]]:
    """`records` for analysis.collect: its errors as `error` (CollectError; one line)."""
    try:
        return records(path)
    except LmmsLogError as e:
        raise error(str(e)) from None
