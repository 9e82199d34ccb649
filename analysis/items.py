"""Per-item score tables (models × items × modality): reading, checking, flags, costs.

The input of `analysis.curate`. A table is CSV (also `.csv.gz`, `.tsv`) or Parquet, long
or wide:

- long: one row per (model, item) with the columns `model`, `item` and `correct` (or
  `score`): a score in [0, 1] (0/1 for right/wrong; a win probability, a judge rating or
  an F1 as they are); an empty cell is a missing answer (NaN: counted and logged, never
  fatal). Optional: `category` (without it every item is in category `all`), `modality`
  (`video`, `frame` or `text`; a row without one counts as video), `benchmark`,
  `options` (the item's number of answer options, for the chance-aware audit),
  `seconds` (the item's evaluation time) and `control` (a benchmark's control flag).
- wide: one row per model (`model` column), one column per item holding its score (a
  public leaderboard's models × items matrix). An item table (`item` and any of
  `category`, `options`, `benchmark`) gives the items' facts: named with `--item-info`,
  or found beside the table as `<name>_items.csv`.

The `items.csv` that `src.train` writes beside each run record is read as it is: its
`run` column names the model when there is no `model` column. Directories are searched
for `items.csv` files (a run directory, or a sweep of them).

Items are keyed by (`benchmark`, `item`): the same id in two benchmarks is two items.
Every problem is an `ItemsError` with one line naming the file and what is wrong.
`read_table` and `read_items` are the entry points; every reader returns `COLUMNS`, with
`correct` a float in [0, 1] and NaN for a missing answer.
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
REQUIRED = ("model", "item", "correct")
AUDIT_MODALITIES = ("video", "frame", "text")
TABLE_NAME = "items.csv"
RECORD_NAME = "result.json"
NO_CATEGORY = "all"
ID_COLUMNS = ("model", "run", "benchmark", "modality")  # the columns of a wide table that are not items
COLUMNS = [
    "model",
    "benchmark",
    "item",
    "category",
    "modality",
    "correct",
    "seconds",
    "control",
    "options",
    "source",
]
FORMATS = (".csv", ".tsv", ".csv.gz", ".tsv.gz", ".parquet")


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


def _format(path: Path) -> str:
    return next((f for f in sorted(FORMATS, key=len, reverse=True) if path.name.endswith(f)), path.suffix)


def _load(path: Path) -> pd.DataFrame:
    fmt = _format(path)
    if fmt == ".parquet" and importlib.util.find_spec("pyarrow") is None:
        raise ItemsError(f"{path}: reading parquet needs pyarrow (pip install pyarrow); or give a .csv")
    try:
        if fmt == ".parquet":
            return pd.read_parquet(path)
        if fmt in FORMATS:
            # ids stay text ("007" is not 7); missing values stay empty strings
            sep = "\t" if fmt.startswith(".tsv") else ","
            return pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False)
    except Exception as e:  # noqa: BLE001 - a malformed file: one line naming it
        raise ItemsError(f"{path}: cannot read the table ({' '.join(str(e).split())})") from None
    raise ItemsError(f"{path}: unknown table format {path.suffix!r}; valid: {', '.join(FORMATS)}")


def _text(col: pd.Series) -> pd.Series:
    """Stripped text, "" for a missing value; each distinct value is converted once (fast
    on millions of rows with few distinct ids)."""
    codes, uniques = pd.factorize(col, use_na_sentinel=True)
    text = np.array([str(u).strip() for u in uniques] + [""], dtype=object)
    return pd.Series(text[codes], index=col.index, dtype=object)


def _scores(raw: pd.Series, path: Path) -> pd.Series:
    """Scores as floats in [0, 1], NaN for an empty cell; anything else is an ItemsError."""
    codes, uniques = pd.factorize(_text(raw))
    names = pd.Series(uniques, dtype=object).str.lower()
    names = names.mask(names == "true", "1").mask(names == "false", "0")
    values = pd.to_numeric(names.replace({"": np.nan, "nan": np.nan, "na": np.nan}), errors="coerce")
    invalid = values.isna() & ~names.isin(["", "nan", "na"]) | (values < 0) | (values > 1)
    score = pd.Series(values.to_numpy()[codes], index=raw.index)
    bad = pd.Series(invalid.to_numpy()[codes], index=raw.index)
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise ItemsError(
            f"{path}: correct={raw.iloc[row]!r} is invalid (row {row + 1}); valid: 0 or 1, "
            f"or a score in [0, 1] (empty = missing)"
        )
    return score.astype(float)


def _sibling_info(path: Path) -> Path | None:
    stem = path.name[: -len(_format(path))] if _format(path) in FORMATS else path.stem
    info = path.with_name(f"{stem}_items.csv")
    return info if info.is_file() else None


def read_item_info(path: str | Path) -> pd.DataFrame:
    """An item table: `item` and any of `category`, `options`, `benchmark` (text columns)."""
    path = Path(path)
    if not path.is_file():
        raise ItemsError(f"{path}: no such item table")
    raw = _load(path)
    if "item" not in raw.columns:
        raise ItemsError(f"{path}: an item table needs an 'item' column (and any of category, options, benchmark)")
    keep = [c for c in ("benchmark", "item", "category", "options") if c in raw.columns]
    info = pd.DataFrame({c: _text(raw[c]) for c in keep})
    if info.duplicated([c for c in ("benchmark", "item") if c in keep]).any():
        raise ItemsError(f"{path}: an item is listed twice")
    return info


def _melt(raw: pd.DataFrame, path: Path) -> pd.DataFrame:
    """A wide table (one row per model, one column per item) as long rows."""
    ids = [c for c in raw.columns if c in ID_COLUMNS]
    items = [c for c in raw.columns if c not in ID_COLUMNS]
    if not items:
        raise ItemsError(f"{path}: a wide table needs one column per item besides 'model'")
    long = raw.melt(id_vars=ids, value_vars=items, var_name="item", value_name="correct")
    log.info("%s: wide table, %d models x %d items", path, len(raw), len(items))
    return long


def read_table(path: str | Path, item_info: str | Path | None = None) -> pd.DataFrame:
    """One table as `COLUMNS`: correct as floats in [0, 1] (NaN missing), modality filled in."""
    path = Path(path)
    raw = items_table(path, ItemsError) if is_samples_log(path) else _load(path)  # analysis/lmms_logs.py
    if "model" not in raw.columns and "run" in raw.columns:
        raw = raw.rename(columns={"run": "model"})
    if "correct" not in raw.columns and "score" in raw.columns:
        raw = raw.rename(columns={"score": "correct"})
    if "model" in raw.columns and "item" not in raw.columns and "correct" not in raw.columns:
        raw = _melt(raw, path)
        info_path = item_info or _sibling_info(path)
    else:
        info_path = item_info
    missing = [c for c in REQUIRED if c not in raw.columns]
    if missing:
        what = "model (or run)" if missing[0] == "model" else missing[0]
        raise ItemsError(
            f"{path}: missing column '{what}'; needs {', '.join(REQUIRED)} (long), or 'model' and one "
            f"column per item (wide); optionally category, modality, benchmark, options, seconds, control"
        )
    out = pd.DataFrame({c: _text(raw[c]) for c in ("model", "item")})
    out["benchmark"] = _text(raw["benchmark"]) if "benchmark" in raw.columns else ""
    out["category"] = _text(raw["category"]) if "category" in raw.columns else ""
    out["options"] = _text(raw["options"]) if "options" in raw.columns else ""
    if info_path is not None:
        out = _join_info(out, read_item_info(info_path), path)
    modality = _text(raw["modality"]) if "modality" in raw.columns else pd.Series("", index=raw.index)
    out["modality"] = modality.replace("", "video").to_numpy()
    bad = sorted(set(out["modality"].unique()) - set(AUDIT_MODALITIES))
    if bad:
        raise ItemsError(
            f"{path}: modality {bad[0]!r} is invalid; valid: {', '.join(AUDIT_MODALITIES)} (or empty, read as video)"
        )
    out["correct"] = _scores(raw["correct"], path).to_numpy()
    for col in ("model", "item"):
        if (out[col] == "").any():
            row = int(np.flatnonzero((out[col] == "").to_numpy())[0])
            raise ItemsError(f"{path}: row {row + 1} has an empty '{col}'")
    if (out["category"] == "").any():
        n = int((out["category"] == "").sum())
        if "category" in raw.columns or info_path is not None:
            log.info("%s: %d row(s) without a category: category %r", path, n, NO_CATEGORY)
        out["category"] = out["category"].replace("", NO_CATEGORY)
    out["options"] = _options(out["options"], path)
    if "seconds" in raw.columns:
        out["seconds"] = pd.to_numeric(_text(raw["seconds"]).replace("", np.nan), errors="coerce").to_numpy()
    else:
        out["seconds"] = np.nan
    out["control"] = _text(raw["control"]).to_numpy() if "control" in raw.columns else None
    out["source"] = str(path)
    empty = int(out["correct"].isna().sum())
    if empty:
        log.info("%s: %d empty score cell(s) read as missing answers", path, empty)
    return out[COLUMNS]


def _options(col: pd.Series, path: Path) -> pd.Series:
    codes, uniques = pd.factorize(col)
    if len(uniques) < len(col) // 2:  # few distinct values: convert each once
        return pd.Series(_options(pd.Series(uniques, dtype=object), path).to_numpy()[codes], index=col.index)
    num = pd.to_numeric(col.replace("", np.nan), errors="coerce")
    bad = (num.isna() & (col != "")) | (num.notna() & ((num < 2) | (num != num.round())))
    if bad.any():
        value = col[bad].iloc[0]
        raise ItemsError(f"{path}: options={value!r} is invalid; valid: an integer >= 2 (or empty)")
    return num


def _join_info(out: pd.DataFrame, info: pd.DataFrame, path: Path) -> pd.DataFrame:
    on = ["benchmark", "item"] if "benchmark" in info.columns else ["item"]
    facts = [c for c in ("category", "options") if c in info.columns]
    merged = out.merge(info[on + facts], on=on, how="left", suffixes=("", "_info"), validate="many_to_one")
    for c in facts:
        merged[c] = merged[c].where(merged[c] != "", merged[f"{c}_info"].fillna(""))
    unknown = merged[merged[facts[0]].eq("")]["item"].nunique() if facts else 0
    if unknown:
        log.warning("%s: %d item(s) are not in the item table", path, unknown)
    return merged[out.columns]


def read_items(paths: Iterable[str | Path], item_info: str | Path | None = None) -> tuple[pd.DataFrame, list[Path]]:
    """All tables under `paths` as one frame, and the tables read.

    The same (model, item, modality) in several tables (a run's own `items.csv` and its
    `evals/*/items.csv` from `src.eval`, say) is one row when they agree on `correct`
    (merged, and logged); when they disagree it is an error naming the files.
    """
    tables = find_tables(paths)
    if not tables:
        raise ItemsError("no input tables")
    frame = pd.concat([read_table(t, item_info) for t in tables], ignore_index=True)
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
        values = sorted(set(frame[same & (frame["modality"] == first["modality"])]["correct"]))
        how = (
            "once right and once wrong"
            if set(values) <= {0.0, 1.0}
            else f"with scores {values[0]:g} and {values[-1]:g}"
        )
        raise ItemsError(
            f"{' and '.join(sorted(set(frame[same]['source'])))}: model {first['model']!r} "
            f"has item {first['item']!r} ({first['modality']}) twice, {how}; "
            f"name the tables to use, or give each model one name"
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


def read_options(path: str | Path) -> dict[tuple[str, str], int]:
    """(benchmark, id) -> number of answer options, from a JSONL manifest whose rows carry
    `options` (a list, or a count); rows without it are left out."""
    path = Path(path)
    out: dict[tuple[str, str], int] = {}
    with open(path, errors="replace") as f:
        for line in f:
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue  # read_flags has named the bad line already
            if not isinstance(row, dict) or row.get("options") is None:
                continue
            opts = row["options"]
            count = len(opts) if isinstance(opts, (list, tuple)) else opts
            key = row.get("id", row.get("question_id"))
            if isinstance(count, int) and count >= 2 and key is not None:
                out[str(row.get("benchmark") or ""), str(key)] = count
    return out


def apply_options(frame: pd.DataFrame, options: dict[tuple[str, str], int]) -> pd.DataFrame:
    """`frame` with `options` filled from `options` where the tables have none."""
    by_id = {key: n for (bench, key), n in options.items() if not bench}
    keys = frame[["benchmark", "item"]].itertuples(index=False)
    found = pd.Series([options.get((b, i), by_id.get(i)) for b, i in keys], index=frame.index, dtype=float)
    return frame.assign(options=frame["options"].fillna(found))


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
