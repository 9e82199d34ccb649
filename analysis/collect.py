"""Gather run records (`result.json`) into one tidy table, one row per run.

    python -m analysis.collect outputs/sweeps/default -o results.csv
    python -m analysis.collect wandb:ENTITY/PROJECT [--group SWEEP] -o results.csv

Arguments are run directories, sweep directories (searched recursively), result.json
files, or W&B projects (`wandb:ENTITY/PROJECT`, read through the public API by
analysis.wandb_runs into the same records; `--group` keeps one sweep). Nothing is
dropped silently: failed runs are rows with status "failed" and their
reason (also listed on stderr), and directories that look like run directories (they hold
`.hydra/`, `ckpt` or `wandb/`) but have no result.json are rows with status "missing"
(also listed on stderr; their choices are read from `.hydra/overrides.yaml` if present).

Columns: run_dir, status, reason, sweep; one column per config-group choice named by its
group (encoder, llm, ...) and the run's `seed`; llm_size_b; the other design numbers as `design.<key>`
(nested dicts flattened, e.g. `design.params.llm`); costs as `costs.<key>`; one column per
metric named by its key (`test/synthetic/overall`), and its 95% interval as
`ci_lo/<key>` and `ci_hi/<key>` (from the record's `intervals`, else computed from the
`items.csv` beside it: Wilson per category, a bootstrap stratified by category for overall).
`run_dir` is where the record is now; a record that was moved keeps the directory it was
written in as `moved_from`. When some runs repeat a design with another `seed`, the
per-design means over seeds, their spread (`sd/<key>`) and interval go to
`<out>_by_design.csv` as well (see `analysis.variants.average_seeds`).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from analysis import intervals, items
from analysis.lmms_logs import collect_records, is_lmms_output
from analysis.variants import average_seeds
from analysis.wandb_runs import PREFIX, WandbUnavailable, fetch_records, parse_source

RESULT_FILE = "result.json"
BASE_COLUMNS = ["run_dir", "status", "reason", "sweep"]
MOVED = "moved_from"  # only in tables where some record was moved
SIZE_COLUMN = "llm_size_b"
# Entries whose presence marks a directory as a run directory even without a result.
RUN_DIR_MARKERS = (".hydra", "ckpt", "wandb")


class CollectError(Exception):
    """A problem with the inputs or the output path, reported as one line by the CLI."""


def looks_like_run_dir(path: Path) -> bool:
    """True for a directory holding `.hydra/`, `wandb/` or a `ckpt` entry."""
    try:
        names = os.listdir(path)
    except OSError:
        return False
    return any(n in RUN_DIR_MARKERS for n in names)


def find_runs(paths: Iterable[str | Path]) -> tuple[list[Path], list[Path]]:
    """(result.json files, run directories without one) under the given paths.

    A directory is searched recursively. The subtree of a finished run is not searched
    further; a directory that merely looks like a run (say a sweep directory holding a
    shared `wandb/`) counts as missing only if no run is found beneath it.
    """
    results: list[Path] = []
    candidates: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_file():
            results.append(path)
            continue
        if not path.is_dir():
            raise CollectError(f"no such file or directory: {path}")
        for root, dirs, files in os.walk(path):
            dirs.sort()
            here = Path(root)
            if RESULT_FILE in files:
                results.append(here / RESULT_FILE)
                dirs[:] = []
            elif looks_like_run_dir(here):
                candidates.append(here)
                dirs[:] = [d for d in dirs if d not in RUN_DIR_MARKERS]
    found = [p.parent.resolve() for p in results] + [c.resolve() for c in candidates]
    missing = [c for c in candidates if not any(c.resolve() in f.parents for f in found)]
    return _unique(results), _unique(missing)


def _unique(paths: list[Path]) -> list[Path]:
    seen: dict[Path, Path] = {}
    for p in paths:
        seen.setdefault(p.resolve(), p)
    return list(seen.values())


def sweep_of(path: Path) -> str | None:
    """The sweep name from a path like `.../sweeps/<sweep>/...`, if there is one."""
    parts = path.resolve().parts
    for i, part in enumerate(parts[:-1]):
        if part == "sweeps":
            return parts[i + 1]
    return None


def read_overrides(run_dir: Path) -> list[str]:
    """The Hydra overrides of a run (`.hydra/overrides.yaml`, a list of `key=value`)."""
    file = run_dir / ".hydra" / "overrides.yaml"
    if not file.is_file():
        return []
    lines = file.read_text().splitlines()
    return [ln.strip()[2:].strip().strip("'\"") for ln in lines if ln.strip().startswith("- ")]


def missing_record(run_dir: Path) -> dict[str, Any]:
    """The record of a run directory with no result.json (a run still going, or killed)."""
    overrides = read_overrides(run_dir)
    choices = {}
    for item in overrides:
        key, sep, value = item.partition("=")
        if sep and key.isidentifier():  # a group choice, not `trainer.max_epochs=3` or `+x=1`
            choices[key] = value
    return {
        "status": "missing",
        "reason": f"no {RESULT_FILE}",
        "sweep": sweep_of(run_dir),
        "run_dir": str(run_dir),
        "overrides": overrides,
        "choices": choices,
    }


def read_record(file: Path) -> dict[str, Any]:
    """One result.json; an unreadable one becomes a failed record rather than an error."""
    try:
        record = json.loads(file.read_text())
        if not isinstance(record, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError) as err:
        record = {"status": "failed", "reason": f"unreadable {file.name}: {err}"}
    record.setdefault("run_dir", str(file.parent))
    record.setdefault("sweep", sweep_of(file.parent))
    record.setdefault("status", "failed" if record.get("reason") else "ok")
    return record


def load_records(paths: Iterable[str | Path]) -> list[dict[str, Any]]:
    """All run records under `paths`: those read from result.json, then the missing runs."""
    results, missing = find_runs(paths)
    return [located(read_record(f), f) for f in results] + [missing_record(d) for d in missing]


def located(record: dict[str, Any], file: Path) -> dict[str, Any]:
    """The record with `run_dir` where it is now (the old one as `moved_from`) and its intervals."""
    here = str(file.parent.resolve())
    written = record.get("run_dir")
    if written and Path(str(written)).resolve() != Path(here):
        record["moved_from"] = str(written)
    record["run_dir"] = here
    if record.get("status") == "ok" and not record.get("intervals"):
        table = file.parent / items.TABLE_NAME
        try:
            rows = items.read_table(table).to_dict("records") if table.is_file() else []
        except items.ItemsError as err:
            print(f"warning: no intervals for {here}: {err}", file=sys.stderr)
            rows = []
        if rows:
            record["intervals"] = intervals.accuracy_intervals(rows)
    return record


def load_sources(sources: Iterable[str], group: str | None = None) -> list[dict[str, Any]]:
    """Records of local paths and of `wandb:ENTITY/PROJECT` sources, in the order given."""
    sources = list(sources)
    remote = [s for s in sources if s.startswith(PREFIX)]
    if group is not None and not remote:
        raise CollectError(f"--group {group} applies to wandb: sources only; none given")
    local = [s for s in sources if not s.startswith(PREFIX)]
    lmms = [s for s in local if is_lmms_output(s)]  # lmms-eval's samples logs: analysis/lmms_logs.py
    records = load_records([s for s in local if s not in lmms]) if len(lmms) < len(local) else []
    records += [r for s in lmms for r in collect_records(s, CollectError)]
    for source in remote:
        fetched = fetch_records(parse_source(source), group)
        if not fetched:
            raise CollectError(f"no runs in {source}" + (f" with group {group!r}" if group else ""))
        records += fetched
    return records


def flatten(mapping: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    """`{"a": {"b": 1}}` with prefix "design" -> `{"design.a.b": 1}`."""
    flat: dict[str, Any] = {}
    for key, value in mapping.items():
        name = f"{prefix}.{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, name))
        else:
            flat[name] = value
    return flat


def record_to_row(record: Mapping[str, Any]) -> dict[str, Any]:
    """One record as a flat row (column name -> value), in the table's column order."""
    row: dict[str, Any] = {k: record.get(k) for k in BASE_COLUMNS}
    if record.get(MOVED):
        row[MOVED] = record[MOVED]
    row.update({str(k): v for k, v in (record.get("choices") or {}).items()})
    config = record.get("config") or {}
    if "seed" in config:  # repeats of one grid point differ only in it
        row["seed"] = config["seed"]
    design = dict(record.get("design") or {})
    row[SIZE_COLUMN] = design.pop(SIZE_COLUMN, None)
    row.update(flatten(design, "design"))
    row.update(flatten(record.get("costs") or {}, "costs"))
    for key, value in (record.get("metrics") or {}).items():
        row[f"metrics.{key}" if key in row else key] = value  # never overwrite a setting
    for key, (lo, hi) in (record.get("intervals") or {}).items():
        if key in (record.get("metrics") or {}):
            row[intervals.LO + key], row[intervals.HI + key] = lo, hi
    return row


def records_to_frame(records: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """The tidy table: one row per record, columns grouped as in the module docstring."""
    rows = [record_to_row(r) for r in records]
    groups: dict[str, list[str]] = {"base": [], "choice": [], "design": [], "costs": [], "metric": []}
    for row in rows:
        for col in row:
            kind = _column_kind(col)
            if col not in groups[kind]:
                groups[kind].append(col)
    moved = [MOVED] if MOVED in groups["base"] else []
    columns = [*BASE_COLUMNS, *moved, *groups["choice"], SIZE_COLUMN, *groups["design"], *groups["costs"]]
    columns += sorted(groups["metric"])
    return pd.DataFrame(rows, columns=columns)


def _column_kind(col: str) -> str:
    if col in BASE_COLUMNS or col in (SIZE_COLUMN, MOVED):
        return "base"
    if col.startswith("design."):
        return "design"
    if col.startswith("costs."):
        return "costs"
    if "/" in col or col.startswith("metrics."):
        return "metric"
    return "choice"


def write_table(frame: pd.DataFrame, out: str | Path) -> Path:
    """Write `.csv` (or `.parquet` when pyarrow is importable) and return the path."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".csv":
        frame.to_csv(out, index=False)
    elif out.suffix == ".parquet":
        if importlib.util.find_spec("pyarrow") is None:
            raise CollectError(f"cannot write {out}: parquet needs pyarrow (pip install pyarrow) - or write .csv")
        frame.to_parquet(out, index=False)
    else:
        raise CollectError(f"cannot write {out}: unknown suffix {out.suffix!r} (use .csv or .parquet)")
    return out


def summary(frame: pd.DataFrame, out: Path) -> str:
    """`N ok, M failed, K missing -> path` (plus any other status seen)."""
    counts = frame["status"].value_counts(dropna=False).to_dict() if len(frame) else {}
    parts = [f"{counts.pop(s, 0)} {s}" for s in ("ok", "failed", "missing")]
    parts += [f"{n} {s}" for s, n in counts.items()]
    return f"{', '.join(parts)} -> {out}"


def report_problems(frame: pd.DataFrame) -> list[str]:
    """One line per run that is not ok: its status, directory and reason."""
    bad = frame[frame["status"] != "ok"]
    return [f"{r.status}: {r.run_dir}: {r.reason}" for r in bad.itertuples(index=False)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m analysis.collect", description=__doc__.split("\n")[0])
    parser.add_argument("paths", nargs="+", help="run or sweep directories, result.json files, or wandb:ENTITY/PROJECT")
    parser.add_argument("--group", default=None, help="wandb: sources: only this W&B group (sweep)")
    parser.add_argument("-o", "--out", default="results.csv", help="output table (.csv or .parquet)")
    args = parser.parse_args(argv)
    try:
        records = load_sources(args.paths, args.group)
        if not records:
            raise CollectError(f"no {RESULT_FILE} and no run directories under: {' '.join(args.paths)}")
        frame = records_to_frame(records)
        out = write_table(frame, args.out)
        designs = average_seeds(frame)
        by_design = None
        if designs is not None:
            by_design = write_table(designs, out.with_name(f"{out.stem}_by_design{out.suffix}"))
    except (CollectError, WandbUnavailable) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for line in report_problems(frame):
        print(line, file=sys.stderr)
    if MOVED in frame.columns:
        moved = frame[frame[MOVED].notna()]
        for run_dir, old in zip(moved["run_dir"], moved[MOVED], strict=True):
            print(f"moved: {run_dir} (its record was written in {old})", file=sys.stderr)
    print(summary(frame, out))
    if designs is not None and by_design is not None:
        repeated = int((designs["n_seeds"] > 1).sum())
        print(f"{repeated} design(s) repeated over seeds: means and spread -> {by_design}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
