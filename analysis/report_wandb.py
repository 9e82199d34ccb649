"""Log a report's figures and tables to W&B: online, or offline into a folder to sync later.

    python -m analysis.report_wandb outputs/sweeps/demo    # after analysis.report

Online means WANDB_MODE is not `offline`, `disabled` or `dryrun`, a key is there
(WANDB_API_KEY or ~/.netrc) and the server answers. The report is one W&B run of
job type `report` in the sweep's group, so it sits beside the sweep's training runs.
With WANDB_MODE=offline and a `save_dir`, the run is written there (`wandb sync` sends it
with the runs'). Anything else - no key, no route, an error from wandb - is one line saying
why nothing was logged; the report on disk never depends on it.

The command line does both halves of a sweep's W&B workspace: every finished run's items
table, results artifact and summary (src/run/loggers.py's `log_results`, into the run's own
W&B run), then the report run (the PNGs of SWEEP/report/figures, the tables results.csv,
scaling/*.csv and correlations/*.csv), offline in SWEEP/report/wandb unless W&B is online.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import pandas as pd

from analysis.wandb_runs import WandbUnavailable, base_url, check_reachable, key_available

OFFLINE_MODES = {"offline", "disabled", "dryrun"}


def online() -> str | None:
    """None when W&B is online; otherwise why not, in a few words."""
    mode = os.environ.get("WANDB_MODE", "").strip().lower()
    if mode in OFFLINE_MODES:
        return f"WANDB_MODE={mode}"
    url = base_url()
    if not key_available(url):
        return f"no W&B API key for {url}"
    try:
        check_reachable(url)
    except WandbUnavailable as err:
        return str(err)
    return None


def log_report(
    sweep: str,
    images: dict[str, Path],
    tables: dict[str, pd.DataFrame],
    project: str | None = "apollo-lab",
    entity: str | None = None,
    save_dir: str | Path | None = None,
) -> str:
    """Log every image and table as one W&B run when online, or offline into `save_dir`
    (WANDB_MODE=offline); return one line saying what happened."""
    why = online()
    offline = why is not None and os.environ.get("WANDB_MODE", "").strip().lower() == "offline" and save_dir
    if why is not None and not offline:
        return f"W&B: report not logged ({why})"
    import wandb

    try:
        with tempfile.TemporaryDirectory() as tmp:  # online: no wandb/ folder left in the sweep
            if offline:
                Path(save_dir).mkdir(parents=True, exist_ok=True)  # type: ignore[arg-type]
            run = wandb.init(
                project=project,
                entity=entity,
                group=sweep,
                job_type="report",
                name=f"report-{sweep}",
                dir=str(save_dir) if offline else tmp,
                mode="offline" if offline else None,
                reinit="finish_previous",
            )
            run.log({f"report/{name}": wandb.Image(str(path)) for name, path in images.items()})
            run.log(
                {
                    f"report/{name}": wandb.Table(dataframe=frame.reset_index(drop=True).astype(str))
                    for name, frame in tables.items()
                }
            )
            url = None if offline else getattr(run, "url", None)
            run.finish()
    except Exception as err:  # noqa: BLE001 - W&B trouble must not lose the report on disk
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        return f"W&B: report not logged ({type(err).__name__}: {first})"
    where = f"{save_dir}/wandb (offline; wandb sync)" if offline else url or project
    return f"W&B: logged {len(images)} figures and {len(tables)} tables to {where}"


def sweep_runs(sweep_dir: Path) -> list[Path]:
    """The run directories of a sweep: folders holding a result.json (not src.eval's evals/)."""
    return sorted(p.parent for p in sweep_dir.rglob("result.json") if "evals" not in p.relative_to(sweep_dir).parts)


def main(argv: list[str] | None = None) -> int:
    from src.run.loggers import log_results

    p = argparse.ArgumentParser(prog="python -m analysis.report_wandb", description=__doc__.split("\n")[0])
    p.add_argument("sweep_dir", type=Path, help="a sweep's folder, after analysis.report (outputs/sweeps/demo)")
    args = p.parse_args(argv)
    runs = sweep_runs(args.sweep_dir) if args.sweep_dir.is_dir() else []
    if not runs:
        print(f"error: {args.sweep_dir}: no runs (result.json) beneath it", file=sys.stderr)
        return 2
    logger: dict = {}
    for run in runs:
        print(log_results(run))
        record = json.loads((run / "result.json").read_text())
        logger = logger or ((record.get("config") or {}).get("logger") or {})
    sweep = str(logger.get("group") or args.sweep_dir.name)
    report = args.sweep_dir / "report"
    images = {f"figures/{f.stem}": f for f in sorted((report / "figures").glob("*.png"))}
    tables = {}
    for csv in [args.sweep_dir / "results.csv", *sorted(args.sweep_dir.glob("scaling/*.csv"))]:
        if csv.is_file():
            tables[csv.relative_to(args.sweep_dir).with_suffix("").as_posix()] = pd.read_csv(csv)
    for csv in sorted(args.sweep_dir.glob("correlations/*.csv")):
        tables[csv.relative_to(args.sweep_dir).with_suffix("").as_posix()] = pd.read_csv(csv)
    project = logger.get("project") or "apollo-lab"
    print(log_report(sweep, images, tables, project=project, entity=logger.get("entity"), save_dir=report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
