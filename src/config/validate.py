"""Checks on the command line and the composed config, before any data or model loads.

Every problem is one line that names the key, the bad value and what is valid.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from src.config.compose import CONF_DIR, canonical_pair, config_groups, group_options
from src.config.constraints import Constraints, join
from src.config.errors import ConfigError
from src.config.keys import check_added_keys, import_ref


def check_overrides(args: Sequence[str], conf_dir: Path = CONF_DIR, extra_dirs: Sequence[Path] = ()) -> None:
    """Every group choice on the command line (sweeps included) names an existing option,
    of conf/ or of a `--config-dir` (`extra_dirs`: the groups local to sweeps/)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    dirs = [conf_dir, *extra_dirs]
    groups = {g for d in dirs for g in config_groups(d)}
    candidates = [a for a in args if "=" in a and not a.startswith("-")]
    parser = OverridesParser.create()
    try:
        overrides = parser.parse_overrides(candidates)
    except Exception as e:  # which override, and what is wrong with it, in one line
        for c in candidates:
            try:
                parser.parse_overrides([c])
            except Exception as one:  # noqa: BLE001 - the parser's errors have no common base
                raise ConfigError(unreadable(c, one)) from None
        raise ConfigError(" ".join(str(e).split())) from None
    for o in overrides:
        group = o.key_or_group
        if group not in groups or o.package is not None or o.is_delete():
            continue
        values = list(o.sweep_string_iterator()) if o.is_sweep_override() else [o.get_value_element_as_str()]
        valid = sorted({o for d in dirs if (d / group).is_dir() for o in group_options(group, d)})
        for v in values:
            if v not in valid and group == "encoder" and "+" in v:  # a pair in the other order
                pair = canonical_pair(v, conf_dir)
                if pair in valid:
                    raise ConfigError(
                        f"{group}={v} is not an option of '{group}'; a pair has one name "
                        f"(video encoder first, else alphabetical): {group}={pair}"
                    )
            if v not in valid:
                raise ConfigError(f"{group}={v} is not an option of '{group}'; valid choices: {', '.join(valid)}")


PAIRS = {"[": "]", "{": "}", "(": ")"}


def unreadable(override: str, error: Exception) -> str:
    """What is wrong with an override Hydra's parser refuses, in one line naming it."""
    key, _, value = override.partition("=")
    items = value.split(",")
    if len(items) > 1 and not any(c in value for c in "[{('\"") and not all(items):
        given = [i for i in items if i]
        example = f"{key}={','.join(given)}" if len(given) > 1 else f"{key}={given[0] if given else 'VALUE'}"
        return (
            f"{override}: a value of the comma-separated list is empty; valid: values separated by commas, "
            f"none empty (with -m, a sweep over them), e.g. {example}"
        )
    for opening, closing in PAIRS.items():
        if value.count(opening) != value.count(closing):
            return (
                f"{override}: '{opening}' and '{closing}' do not pair up; "
                f"valid: {key}=[a,b] (a list), {key}={{a: 1}} (a dict)"
            )
    for quote in "'\"":
        if value.count(quote) % 2:
            return f"{override}: an unclosed {quote}; valid: {key}={quote}a value{quote}"
    said = " ".join(str(error).split()).split(" See https://")[0]
    return (
        f"{override} is not an override Hydra reads ({said}); valid: key=value, key=a,b (a sweep, with -m), "
        "key=[a,b] (a list); quote a value that holds spaces, commas, brackets or '='"
    )


# Config nodes that no `_target_` names (a function reads them, or several
# modules do), and the `Constraints` that state their rules ("module:attribute"). A node
# with a `_target_` is checked by that class's own CONSTRAINTS.
OWNERS = {
    "": "src.run.train:RUN_CONSTRAINTS",  # seed
    "eval": "src.run.stages:EVAL_CONSTRAINTS",
    "checkpoint": "src.run.checkpoints:CONSTRAINTS",
    "cache": "src.cache.features:CONSTRAINTS",
    "profile": "src.models.shrink:PROFILE_CONSTRAINTS",
    "llm": "src.models.llm:CONSTRAINTS",
    "connector": "src.models.connectors.connector:CHOICE_CONSTRAINTS",
    "mixture": "src.data.mixture:CONSTRAINTS",
    "schedule": "src.run.stages:SCHEDULE_CONSTRAINTS",
    "trainer": "src.models.precision:TRAINER_CONSTRAINTS",  # its _target_ is Lightning's
}
# Rules the config states on a node beside its component's own CONSTRAINTS: what one group's
# value must be for another's, and a spec the component validates as a dataclass
# (src/config/checks.py); applied after the component's own.
CHECKS = {
    "sampler": "src.config.checks:SAMPLER_CONSTRAINTS",
    "data.synthetic": "src.config.checks:SYNTHETIC_CONSTRAINTS",
}
# libraries that check their own arguments: their `_target_`s are not imported at start-up
LIBRARIES = ("lightning.", "torch.", "transformers.", "hydra.")


def _targets(node: Any, path: str) -> Iterator[tuple[str, DictConfig]]:
    """Every dict node under `node` (itself included) with a `_target_`, in order; values
    that are interpolations (`encoder.profile: ${profile}`) are the nodes they point to,
    which are visited where they live."""
    if isinstance(node, DictConfig):
        if "_target_" in node:
            yield path, node
        keys = list(node.keys())
    elif isinstance(node, ListConfig):
        keys = list(range(len(node)))
    else:
        return
    for k in keys:
        if path == "" and k == "hydra":
            continue
        child = node._get_node(k)
        if isinstance(child, (DictConfig, ListConfig)) and not child._is_interpolation():
            yield from _targets(child, f"{path}[{k}]" if isinstance(k, int) else join(path, str(k)))


def constrained_nodes(cfg: DictConfig) -> list[tuple[str, DictConfig, Constraints]]:
    """(key, node, its constraints) of every node of the config that has some: OWNERS' nodes
    first, then each `_target_` (but the libraries') whose class declares CONSTRAINTS."""
    found = []
    for path, ref in OWNERS.items():
        node = cfg if path == "" else OmegaConf.select(cfg, path, default=None)
        if isinstance(node, DictConfig):
            found.append((path, node, import_ref(ref, f"OWNERS[{path!r}]")))
    for path, node in _targets(cfg, ""):
        target = node.get("_target_")
        if isinstance(target, str) and not target.startswith(LIBRARIES):
            constraints = getattr(import_ref(target, join(path, "_target_")), "CONSTRAINTS", None)
            if isinstance(constraints, Constraints):
                found.append((path, node, constraints))
    for path, ref in CHECKS.items():
        node = OmegaConf.select(cfg, path, default=None)
        if isinstance(node, DictConfig):
            found.append((path, node, import_ref(ref, f"CHECKS[{path!r}]")))
    return found


def validate(cfg: DictConfig) -> None:
    """Raise ConfigError on the first invalid value of the composed config, as the component
    that owns the value states it (its CONSTRAINTS); nothing is built, no data is read.

    A config composed with its `hydra` node (a dry run's) has its overrides: a `+key` that
    nothing reads is refused too (src/config/keys.py; a run's entry point checks its own)."""
    task = OmegaConf.select(cfg, "hydra.overrides.task", default=None)
    if task is not None:
        choices = OmegaConf.select(cfg, "hydra.runtime.choices", default=None) or {}
        check_added_keys(cfg, [str(o) for o in task], groups={*choices, *config_groups()})
    for path, node, constraints in constrained_nodes(cfg):
        constraints.apply(node, path, cfg)


def check_launcher(cfg: DictConfig) -> None:
    """The launcher starts as many processes per node as the trainer has devices.

    `cfg` is the composed config with its `hydra` node (a Hydra callback's, or a dry run's).
    On SLURM every task is one rank: tasks per node = GPUs per node = trainer.devices,
    nodes = trainer.num_nodes. The local launchers start one process per run.
    """
    launcher = OmegaConf.select(cfg, "hydra.launcher")
    if launcher is None:
        return
    choice = (OmegaConf.select(cfg, "hydra.runtime.choices") or {}).get("hydra/launcher", "?")
    target = str(launcher.get("_target_", ""))
    devices = OmegaConf.select(cfg, "trainer.devices", default=1)
    accelerator = OmegaConf.select(cfg, "trainer.accelerator", default="cpu")
    num_nodes = OmegaConf.select(cfg, "trainer.num_nodes", default=1)
    named = f"(hydra/launcher={choice})"
    if target.endswith(".SlurmLauncher"):
        tasks, gpus, nodes = launcher.tasks_per_node, launcher.gpus_per_node, launcher.nodes
        if tasks != devices:
            raise ConfigError(
                f"trainer.devices={devices} does not match hydra.launcher.tasks_per_node="
                f"{tasks} {named}; valid: trainer.devices={tasks} (one task per device)"
            )
        if accelerator in ("gpu", "cuda") and gpus != tasks:
            raise ConfigError(
                f"hydra.launcher.gpus_per_node={gpus} {named} does not match "
                f"tasks_per_node={tasks} and trainer.devices={devices}; valid: {tasks}"
            )
        if accelerator not in ("gpu", "cuda", "auto") and gpus:
            raise ConfigError(
                f"hydra.launcher.gpus_per_node={gpus} {named} reserves GPUs for "
                f"trainer.accelerator={accelerator}; valid: trainer=gpu, or "
                "hydra/launcher=slurm_cpu"
            )
        if nodes != num_nodes:
            raise ConfigError(
                f"trainer.num_nodes={num_nodes} does not match hydra.launcher.nodes="
                f"{nodes} {named}; valid: trainer.num_nodes={nodes}"
            )
    elif target.endswith(("LocalLauncher", "LocalParallelLauncher")) and (
        devices != 1 or launcher.get("tasks_per_node", 1) != 1
    ):
        raise ConfigError(
            f"trainer.devices={devices} is invalid with hydra/launcher={choice}, "
            "which starts one process per run; valid: trainer.devices=1, or "
            "hydra/launcher=basic (Lightning starts the ranks) or a SLURM preset"
        )
