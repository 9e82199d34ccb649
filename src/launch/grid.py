"""A sweep's grid as Hydra expands it, and its dry run (`python -m src.sweep dry-run`).

The grid is expanded as Hydra's basic sweeper does (`hydra.sweeper.params` of the sweep
file first, then the command line's overrides).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, cast

from omegaconf import DictConfig, ListConfig, OmegaConf, read_write

from src.config import resolvers
from src.config.compose import CONF_DIR, command_line_dirs, sweep_file_overrides
from src.config.container import to_dict
from src.config.errors import ConfigError
from src.config.validate import check_launcher, check_overrides, validate


def grid(overrides: list[str], sweeper_params: dict[str, Any] | None = None) -> list[list[str]]:
    """Every grid point, as its list of overrides, in the order Hydra launches them."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    args = [f"{k}={v}" for k, v in (sweeper_params or {}).items()] + list(overrides)
    [points] = BasicSweeper.split_arguments(OverridesParser.create().parse_overrides(args), None)
    return [list(p) for p in points]


def _split_args(args: list[str]) -> tuple[Path | None, str, list[str]]:
    """(--config-dir, --config-name, overrides) of a `python -m src.train -m` command line."""
    config_dir, name, rest = None, "train", []
    it = iter(args)
    for a in it:
        flag, _, value = a.partition("=")
        if flag in ("--config-dir", "-cd", "--config-name", "-cn"):
            value = value or next(it, "")
            if flag in ("--config-dir", "-cd"):
                config_dir = Path(value)
            else:
                name = value.removesuffix(".yaml")
        elif a not in ("-m", "--multirun"):
            rest.append(a)
    return config_dir, name, rest


def sweeper_params(cfg: DictConfig | ListConfig) -> dict[str, Any]:
    """`hydra.sweeper.params` of a composed config (a sweep file's axes), or none."""
    params = OmegaConf.select(cfg, "hydra.sweeper.params")
    return to_dict(params) if params is not None else {}


def compose_points(args: list[str]) -> tuple[DictConfig, list[tuple[list[str], DictConfig, Path]]]:
    """The launch's own config (with `hydra`), and every grid point's overrides, composed
    config and run directory."""
    from hydra import compose, initialize_config_dir
    from hydra.core.hydra_config import HydraConfig
    from hydra.core.override_parser.overrides_parser import OverridesParser

    resolvers.register()  # run names

    config_dir, name, overrides = _split_args(args)
    local = command_line_dirs(args)
    check_overrides(overrides, extra_dirs=local)
    check_overrides(sweep_file_overrides(args), extra_dirs=local)
    parsed = OverridesParser.create().parse_overrides(overrides)
    plain = [cast(str, o.input_line) for o in parsed if not o.is_sweep_override()]  # set by the parser
    search = [f"hydra.searchpath=[file://{CONF_DIR}]"] if config_dir else []
    with initialize_config_dir(config_dir=str((config_dir or CONF_DIR).resolve()), version_base="1.3"):
        launch = compose(name, overrides=[*search, *plain], return_hydra_config=True)
        params = sweeper_params(launch)
        task = [o for o in overrides if not o.startswith("hydra.") and not o.startswith("hydra/")]
        hydra_args = [o for o in overrides if o not in task]
        with read_write(launch.hydra):  # as Hydra's multirun holds them: the sweeps' too
            launch.hydra.overrides.task = task
        points = []
        for point in grid(task, params):
            cfg = compose(name, overrides=[*search, *hydra_args, *point], return_hydra_config=True)
            HydraConfig.instance().set_config(cfg)  # ${hydra:...} in the run directory's name
            run_dir = Path(str(cfg.hydra.sweep.dir)) / str(cfg.hydra.sweep.subdir)
            points.append((point, cfg, run_dir))
    return launch, points


def dry_run(args: list[str], brief: bool = False, resources: bool = False) -> int:
    """Print the sweep's runs; with `resources` (always with hydra/launcher=slurm_auto) each
    run's allocation and trainer (src.launch.resources) and the GPU-hours by group."""
    from src.launch.resources import Plan, plan, site_settings

    plans: list[Plan] = []
    try:
        launch, points = compose_points(args)
        check_launcher(launch)
        for _, cfg, _ in points:
            validate(cfg)
            check_launcher(cfg)
        launcher = launch.hydra.runtime.choices.get("hydra/launcher")
        if resources or launcher == "slurm_auto":
            site = site_settings(launch)
            plans = [plan(cfg, site) for _, cfg, _ in points]
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"sweep {launch.sweep}: {len(points)} runs into {launch.hydra.sweep.dir} (hydra/launcher={launcher})")
    common = set.intersection(*(set(p) for p, _, _ in points))
    varying = {o for p, _, _ in points for o in p} - common
    for i, (point, cfg, run_dir) in enumerate(points):
        shown = [o for o in point if o in varying] or point
        print(f"\n#{i} {' '.join(shown)}\n   dir: {run_dir}")
        if plans:
            print(f"   resources: {plans[i].describe()}\n   trainer: {' '.join(plans[i].overrides())}")
        if not brief:
            job = OmegaConf.masked_copy(cfg, [str(k) for k in cfg if k != "hydra"])
            try:
                text = OmegaConf.to_yaml(job, resolve=True)
            except Exception:  # noqa: BLE001 - a value only the run can resolve: show it as written
                text = OmegaConf.to_yaml(job)
            print("   " + text.rstrip().replace("\n", "\n   "))
    if plans:
        print_groups(plans, [p for p, _, _ in points])
    return 0


def print_groups(plans: list[Any], points: list[list[str]]) -> None:
    """The sweep's SLURM arrays (points alike in allocation) and the GPU-hours each asks for."""
    groups: dict[tuple[Any, ...], list[int]] = {}
    for i, p in enumerate(plans):
        groups.setdefault(p.group(), []).append(i)
    unit = "GPU" if plans[0].accelerator == "gpu" else "device"
    print(f"\n{len(groups)} group(s), one SLURM array each:")
    total = 0.0
    for g, members in enumerate(groups.values()):
        first = plans[members[0]]
        hours = sum(plans[i].gpu_hours for i in members)
        total += hours
        limit = max(plans[i].time_h for i in members)
        print(
            f"  group {g}: {len(members)} run(s) (#{', #'.join(str(i) for i in members)}), "
            f"{first.nodes} node(s) x {first.devices} task(s), trainer={first.trainer}, "
            f"{first.cpus_per_task} CPUs/task, time limit {limit} h: {hours:.0f} {unit}-h"
        )
    print(f"total: {total:.0f} {unit}-hours")
