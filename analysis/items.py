"""Per-item correctness tables (models × items × modality): reading, checking, flags, costs.

The input of `analysis.curate`. A table is CSV or Parquet with the columns `model`, `item`,
`category` and `correct` (0/1), and optionally `modality` (`video`, `frame` or `text`; a
row without one, or a table without the column, counts as video), `benchmark`, `seconds`
(the item's evaluation time) and `control` (a benchmark's flag of a control item). The
`items.csv` that `src.train` writes beside each run record is read as it is: its `run`
column names the model when there is no `model` column. Directories are searched for
`items.csv` files (a run directory, or a sweep of them).

Items are keyed by (`benchmark`, `item`): the same id in two benchmarks is two items.
Every problem is an `ItemsError` with one line naming the file and what is wrong.
"""

from __future__ import annotations

import importlib.util
import json
import logging
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.lmms_logs import find_logs, is_samples_log, items_table

log = logging.getLogger("analysis.items")
REQUIRED = ("model", "item", "category", "correct")
AUDIT_MODALITIES = ("video", "frame", "text")
TABLE_NAME = "items.csv"
RECORD_NAME = "result.json"
COLUMNS = ["model", "benchmark", "item", "category", "modality", "correct", "seconds", "control", "source"]


class ItemsError(Exception):
    """A bad input table or path: the message is one line naming the file."""


def find_tables(paths: Iterable[str | Path]) -> list[Path]:
    """The tables named, and every `items.csv` beneath the directories named."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_file():
            found.append(path)
        elif path.is_dir():
            tables = sorted(path.rglob(TABLE_NAME)) + find_logs(path)  # lmms-eval's logs too
            if not tables:
                raise ItemsError(f"{path}: no {TABLE_NAME} beneath this directory")
            found += tables
        else:
            raise ItemsError(f"{path}: no such file or directory")
    return list(dict.fromkeys(found))


def _load(path: Path) -> pd.DataFrame:
    if path.suffix == ".parquet" and importlib.util.find_spec("pyarrow") is None:
        raise ItemsError(f"{path}: reading parquet needs pyarrow (pip install pyarrow); or give a .csv")
    try:
        if path.suffix == ".parquet":
            return pd.read_parquet(path)
        if path.suffix in (".csv", ".tsv"):
            # ids stay text ("007" is not 7); missing values stay empty strings
            return pd.read_csv(path, sep="\t" if path.suffix == ".tsv" else ",", dtype=str, keep_default_na=False)
    except Exception as e:  # noqa: BLE001 - a malformed file: one line naming it
        raise ItemsError(f"{path}: cannot read the table ({' '.join(str(e).split())})") from None
    raise ItemsError(f"{path}: unknown table format {path.suffix!r}; valid: .csv, .tsv, .parquet")


def _text(col: pd.Series) -> pd.Series:
    return col.map(lambda v: "" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v).strip())


def read_table(path: str | Path) -> pd.DataFrame:
    """One table as `COLUMNS`: correct as 0/1 ints, modality filled in, seconds as floats."""
    path = Path(path)
    raw = items_table(path, ItemsError) if is_samples_log(path) else _load(path)  # analysis/lmms_logs.py
    if "model" not in raw.columns and "run" in raw.columns:
        raw = raw.rename(columns={"run": "model"})
    missing = [c for c in REQUIRED if c not in raw.columns]
    if missing:
        what = "model (or run)" if missing[0] == "model" else missing[0]
        raise ItemsError(
            f"{path}: missing column '{what}'; needs {', '.join(REQUIRED)} "
            f"(and optionally modality, benchmark, seconds, control)"
        )
    out = pd.DataFrame({c: _text(raw[c]) for c in ("model", "item", "category")})
    out["benchmark"] = _text(raw["benchmark"]) if "benchmark" in raw.columns else ""
    modality = _text(raw["modality"]) if "modality" in raw.columns else pd.Series("", index=raw.index)
    out["modality"] = modality.replace("", "video")
    bad = sorted(set(out["modality"]) - set(AUDIT_MODALITIES))
    if bad:
        raise ItemsError(
            f"{path}: modality {bad[0]!r} is invalid; valid: {', '.join(AUDIT_MODALITIES)} (or empty, read as video)"
        )
    correct = _text(raw["correct"]).str.lower().map({"1": 1, "0": 0, "1.0": 1, "0.0": 0, "true": 1, "false": 0})
    if correct.isna().any():
        value = raw["correct"][correct.isna()].iloc[0]
        raise ItemsError(f"{path}: correct={value!r} is invalid; valid: 0 or 1")
    out["correct"] = correct.astype(int)
    for col in ("model", "item", "category"):
        if (out[col] == "").any():
            row = int(np.flatnonzero(out[col] == "")[0])
            raise ItemsError(f"{path}: row {row + 1} has an empty '{col}'")
    seconds = _text(raw["seconds"]) if "seconds" in raw.columns else pd.Series("", index=raw.index)
    out["seconds"] = pd.to_numeric(seconds.replace("", np.nan), errors="coerce")
    out["control"] = _text(raw["control"]) if "control" in raw.columns else None
    out["source"] = str(path)
    return out[COLUMNS]


def read_items(paths: Iterable[str | Path]) -> tuple[pd.DataFrame, list[Path]]:
    """All tables under `paths` as one frame, and the tables read.

    The same (model, item, modality) in several tables (a run's own `items.csv` and its
    `evals/*/items.csv` from `src.eval`, say) is one row when they agree on `correct`
    (merged, and logged); when they disagree it is an error naming the files.
    """
    tables = find_tables(paths)
    if not tables:
        raise ItemsError("no input tables")
    frame = pd.concat([read_table(t) for t in tables], ignore_index=True)
    key = ["model", "benchmark", "item", "modality"]
    repeated = frame.duplicated([*key, "correct"])
    if repeated.any():
        log.info(
            "%d row(s) repeat another table's answer for the same model, item and modality: read once",
            int(repeated.sum()),
        )
        frame = frame[~repeated].reset_index(drop=True)
    dup = frame.duplicated(key, keep=False)
    if dup.any():
        first = frame[dup].iloc[0]
        same = dup & (frame["model"] == first["model"]) & (frame["item"] == first["item"])
        raise ItemsError(
            f"{' and '.join(sorted(set(frame[same]['source'])))}: model {first['model']!r} "
            f"has item {first['item']!r} ({first['modality']}) twice, once right and "
            f"once wrong; name the tables to use, or give each model one name"
        )
    return frame, tables


def read_flags(path: str | Path) -> dict[tuple[str, str], str]:
    """(benchmark, id) -> control flag ("" for an item that is not a control) from a JSONL
    manifest whose rows carry `id` (or `question_id`) and optionally `control`, `benchmark`."""
    path = Path(path)
    if not path.is_file():
        raise ItemsError(f"{path}: no such flags manifest")
    flags: dict[tuple[str, str], str] = {}
    with open(path) as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                key = row.get("id", row.get("question_id"))
            except (json.JSONDecodeError, AttributeError):
                raise ItemsError(f"{path}:{lineno}: not a JSON object") from None
            if key is None:
                raise ItemsError(f"{path}:{lineno}: a row needs an 'id' (or 'question_id')")
            flags[str(row.get("benchmark") or ""), str(key)] = str(row.get("control") or "")
    return flags


def apply_flags(frame: pd.DataFrame, flags: dict[tuple[str, str], str]) -> tuple[pd.DataFrame, int]:
    """`frame` with its `control` column from `flags`, and how many items the flags lack.

    An item is looked up by (benchmark, id), then, for a manifest without benchmarks, by id.
    Items the manifest does not list get no flag (counted, not guessed).
    """
    by_id = {key: flag for (bench, key), flag in flags.items() if not bench}
    keys = frame[["benchmark", "item"]].itertuples(index=False)
    control = [flags.get((b, i), by_id.get(i)) for b, i in keys]
    out = frame.assign(control=control)
    unknown = out[out["control"].isna()][["benchmark", "item"]].drop_duplicates()
    return out, len(unknown)


def record_seconds(tables: Iterable[Path]) -> dict[str, float]:
    """model -> its video items' eval seconds, from the run records beside `items.csv` files.

    A record's `costs.eval_seconds` covers every modality evaluated; the video share is
    estimated as its share of the table's rows (every row taken to cost the same).
    """
    out: dict[str, float] = {}
    for table in tables:
        record = table.parent / RECORD_NAME
        if table.name != TABLE_NAME or not record.is_file():
            continue
        try:
            seconds = json.loads(record.read_text()).get("costs", {}).get("eval_seconds")
        except (json.JSONDecodeError, AttributeError):
            continue
        if not isinstance(seconds, (int, float)):
            continue
        rows = read_table(table)
        for model, group in rows.groupby("model"):
            out[str(model)] = float(seconds) * float((group["modality"] == "video").sum()) / len(rows)
    return out
