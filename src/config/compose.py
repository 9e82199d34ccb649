"""Where the config lives and what a command line asks of it: groups, options, sweeps, axes.

The config tree is the registry: a group is a folder of conf/ (or of a sweep's
`--config-dir`), an option one YAML file of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from src.config.container import to_dict
from src.config.errors import ConfigError

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"
SEP = "+"  # between the members of a pair of encoders: `encoder=internvideo2+siglip`


def group_options(group: str, conf_dir: Path = CONF_DIR) -> list[str]:
    # the folder's own files only: a subfolder holds what options share (conf/llm/family/)
    return sorted(p.stem for p in (conf_dir / group).glob("*.yaml"))


def option_config(group: str, option: str) -> DictConfig:
    """One option's node as a run composes it, unresolved: an option file may be only what it
    adds to the base it pulls in (`defaults: [family/qwen2@_here_]`), so read it through Hydra."""
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("train", overrides=[f"{group}={option}"])[group]


# conf/hydra/ holds Hydra's own groups (launchers); conf/local/ the site's git-ignored settings
NOT_GROUPS = ("hydra", "local")


def config_groups(conf_dir: Path = CONF_DIR) -> list[str]:
    return sorted(
        p.name for p in conf_dir.iterdir() if p.is_dir() and p.name not in NOT_GROUPS and any(p.glob("*.yaml"))
    )


def command_line_dirs(args: Sequence[str]) -> list[Path]:
    """The `--config-dir`s of a command line: sweep files may bring groups of their own."""
    dirs, it = [], iter(args)
    for a in it:
        if a in ("--config-dir", "-cd"):
            dirs.append(Path(next(it, "")))
        elif a.startswith("--config-dir="):
            dirs.append(Path(a.split("=", 1)[1]))
    return [d for d in dirs if d.is_dir()]


def sweep_file_overrides(args: Sequence[str]) -> list[str]:
    """The `hydra.sweeper.params` of the file named by `--config-dir D --config-name N`,
    as `key=values` overrides, so a sweep file's choices are checked like the command line's.
    """
    opts: dict[str, str] = {}
    it = iter(args)
    for a in it:
        for flag, short in (("--config-dir", "-cd"), ("--config-name", "-cn")):
            if a in (flag, short):
                opts[flag] = next(it, "")
            elif a.startswith(flag + "="):
                opts[flag] = a.split("=", 1)[1]
    if "--config-name" not in opts:
        return []
    name = opts["--config-name"].removesuffix(".yaml")
    dirs = [Path(opts["--config-dir"])] if "--config-dir" in opts else []
    found = [d / f"{name}.yaml" for d in (*dirs, CONF_DIR) if (d / f"{name}.yaml").is_file()]
    if not found:
        raise ConfigError(f"--config-name={name}: no file {(dirs or [CONF_DIR])[0] / f'{name}.yaml'}")
    path = found[0]
    try:
        params = OmegaConf.select(OmegaConf.load(path), "hydra.sweeper.params", default=None)
    except Exception as e:  # a YAML syntax error: one line naming the file
        raise ConfigError(f"{path}: {' '.join(str(e).split())}") from None
    return [f"{k}={v}" for k, v in (params or {}).items()]


def run_name_excluded(conf_dir: Path = CONF_DIR) -> list[str]:
    """The override keys left out of run names: said once, in conf/train.yaml
    (`hydra.job.config.override_dirname.exclude_keys`), where Hydra reads them too."""
    cfg = OmegaConf.load(conf_dir / "train.yaml")
    return list(OmegaConf.select(cfg, "hydra.job.config.override_dirname.exclude_keys"))


# overrides that say where and how a run goes, not what it is: never an ablation axis. A seed
# is a repeat, not an axis either, but stays in the run's name: each seed its own folder
NOT_AXES = {*run_name_excluded(), "seed"}


def axis_keys(args: Sequence[str]) -> list[str]:
    """The keys a command varies: with -m, those given several values (on the command line
    or in the sweep file's params); for a single run, those it sets. Seeds are repeats."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    multirun = any(a in ("-m", "--multirun") for a in args)
    candidates = [a for a in args if "=" in a and not a.startswith("-")]
    overrides = OverridesParser.create().parse_overrides([*candidates, *sweep_file_overrides(args)])
    keys = [
        o.key_or_group
        for o in overrides
        if not o.key_or_group.startswith("hydra") and (o.is_sweep_override() or not multirun)
    ]
    return [k for k in keys if k not in NOT_AXES]


def single_options(conf_dir: Path = CONF_DIR) -> dict[str, dict[str, Any]]:
    """The single encoder options and their raw (unresolved) configs."""
    return {
        name: to_dict(OmegaConf.load(conf_dir / "encoder" / f"{name}.yaml"))
        for name in group_options("encoder", conf_dir)
        if SEP not in name
    }


def pair_name(a: str, b: str, singles: dict[str, dict[str, Any]]) -> str:
    """The one name of the pair {a, b}: video encoder (more than one frame per clip) first."""
    first, second = sorted((a, b), key=lambda n: (singles[n]["frames_per_clip"] == 1, n))
    return f"{first}{SEP}{second}"


def canonical_pair(value: str, conf_dir: Path = CONF_DIR) -> str | None:
    """The option name of a pair written in another order (`siglip+internvideo2`), or None."""
    parts = value.split(SEP)
    singles = single_options(conf_dir)
    if len(parts) != 2 or not all(p in singles for p in parts) or parts[0] == parts[1]:
        return None
    return pair_name(parts[0], parts[1], singles)
