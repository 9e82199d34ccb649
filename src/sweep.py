"""Sweeps before and after: `python -m src.sweep dry-run ...` and `python -m src.sweep status DIR`.

  python -m src.sweep dry-run --config-dir sweeps --config-name demo   # or: encoder=a,b llm=c,d
      the number of runs, then each run's overrides, directory and composed config; nothing
      runs, nothing is written. `--brief`: no configs. `--resources` (always with
      hydra/launcher=slurm_auto): each run's GPUs, trainer, time, and the GPU-hours by group.
  python -m src.sweep status outputs/sweeps/demo
      one line per grid point: done, failed (with the reason), running, interrupted
      (started, no record, nobody running it: the next launch resumes it), queued (its SLURM
      job waits in the queue) or missing.

The grid is expanded as Hydra's basic sweeper does (`hydra.sweeper.params` of the sweep
file first, then the command line's overrides); `status` reads it from the sweep folder's
multirun.yaml, which Hydra writes at every launch.
"""

from __future__ import annotations

import argparse
import signal
from pathlib import Path

from src.launch.grid import dry_run
from src.launch.status import status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m src.sweep", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser("dry-run", help="the runs of a sweep command, without running them")
    d.add_argument("--brief", action="store_true", help="overrides and directories only")
    d.add_argument(
        "--resources",
        action="store_true",
        help="each run's GPUs, trainer and time (src/launch/resources.py; always with hydra/launcher=slurm_auto)",
    )
    s = sub.add_parser("status", help="done / failed / running / interrupted / queued / missing grid points")
    s.add_argument("sweep_dir", type=Path)
    ns, rest = parser.parse_known_args(argv)
    if ns.command == "dry-run":
        return dry_run(rest, brief=ns.brief, resources=ns.resources)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    return status(ns.sweep_dir)


if __name__ == "__main__":
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `| head` ends the listing quietly
    raise SystemExit(main())
