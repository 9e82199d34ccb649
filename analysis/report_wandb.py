"""Log a report's figures and tables to W&B, only when W&B is online.

Online means WANDB_MODE is not `offline`, `disabled` or `dryrun`, a key is there
(WANDB_API_KEY or ~/.netrc) and the server answers. The report is one W&B run of
job type `report` in the sweep's group, so it sits beside the sweep's training runs.
Anything else - offline, no key, no route, an error from wandb - is one line saying
why nothing was logged; the report on disk never depends on it.
"""

from __future__ import annotations

import os
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
) -> str:
    """Log every image and table as one W&B run when online; return one line saying what happened."""
    why = online()
    if why is not None:
        return f"W&B: report not logged ({why})"
    import wandb

    try:
        with tempfile.TemporaryDirectory() as tmp:  # no wandb/ folder left in the sweep
            run = wandb.init(
                project=project,
                entity=entity,
                group=sweep,
                job_type="report",
                name=f"report-{sweep}",
                dir=tmp,
                reinit="finish_previous",
            )
            run.log({f"report/{name}": wandb.Image(str(path)) for name, path in images.items()})
            run.log(
                {
                    f"report/{name}": wandb.Table(dataframe=frame.reset_index(drop=True).astype(str))
                    for name, frame in tables.items()
                }
            )
            url = getattr(run, "url", None)
            run.finish()
    except Exception as err:  # noqa: BLE001 - W&B trouble must not lose the report on disk
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        return f"W&B: report not logged ({type(err).__name__}: {first})"
    return f"W&B: logged {len(images)} figures and {len(tables)} tables to {url or project}"
