"""Train and evaluate one video LMM: `python -m src.train [group=option ...] [-m for a sweep]`.

The command line is checked (every override parses, every group choice names an option)
before Hydra composes; each composed grid point is checked for `+key`s that nothing reads
and for a trainer this machine cannot run (no CUDA device), then runs `src.run.train.run`:
validate, skip if done, build, train the schedule's stages, evaluate, write the record.
"""

from __future__ import annotations

import os
import sys
from typing import NoReturn

import hydra
from omegaconf import DictConfig

from src.config import resolvers
from src.config.checks import check_machine
from src.config.compose import axis_keys, command_line_dirs, config_groups, sweep_file_overrides
from src.config.errors import ConfigError
from src.config.keys import check_added_keys
from src.config.validate import check_overrides
from src.run.loggers import set_axis
from src.run.train import FAILURES, run

# here, at import, not in main(): a SLURM worker unpickles `_hydra_main` (this module) and
# resolves its run directory, `${apollo.run_name:...}`, before any function of ours runs
resolvers.register()


def _fail(e: ConfigError) -> NoReturn:
    print(f"error: {e}", file=sys.stderr)
    raise SystemExit(2) from None


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
def _hydra_main(cfg: DictConfig) -> float | None:
    from hydra.core.hydra_config import HydraConfig

    # what only the composed config shows, before the run validates it and anything loads:
    # a `+key` nothing reads; a trainer this machine (where the run trains) cannot run
    hc = HydraConfig.get()
    try:
        check_added_keys(cfg, list(hc.overrides.task), groups={*hc.runtime.choices, *config_groups()})
        check_machine(cfg, hc.runtime.choices.get("trainer"))
    except ConfigError as e:
        _fail(e)
    return run(cfg)


def main() -> None:
    # A W&B service inherited from a parent process (a notebook or a script that called
    # wandb.init, then started this) would hold this run's stream after a kill, and the run
    # started again to resume would be refused ("run ID ... is in use"): a run has its own.
    os.environ.pop("WANDB_SERVICE", None)
    args = sys.argv[1:]
    try:
        local = command_line_dirs(args)
        check_overrides(args, extra_dirs=local)
        check_overrides(sweep_file_overrides(args), extra_dirs=local)
        set_axis(axis_keys(args))
    except ConfigError as e:
        _fail(e)
    _hydra_main()
    if FAILURES:  # a multirun went on past its failed runs; say so, and exit non-zero
        print(
            f"error: {len(FAILURES)} run(s) failed: " + "; ".join(f"{name}: {why}" for name, why in FAILURES),
            file=sys.stderr,
        )
        raise SystemExit(1)


if __name__ == "__main__":
    main()
