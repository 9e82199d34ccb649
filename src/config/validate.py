"""Checks on the command line and the composed config, before any data or model loads.

Every problem is one line that names the key, the bad value and what is valid.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from src.config.compose import CONF_DIR, canonical_pair, config_groups, group_options
from src.config.errors import ConfigError
from src.data.manifest import EVAL_MODALITIES
from src.models.chat import FORMATS


def check_overrides(args: Sequence[str], conf_dir: Path = CONF_DIR,
                    extra_dirs: Sequence[Path] = ()) -> None:
    """Every group choice on the command line (sweeps included) names an existing option,
    of conf/ or of a `--config-dir` (`extra_dirs`: the groups local to sweeps/)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    dirs = [conf_dir, *extra_dirs]
    groups = {g for d in dirs for g in config_groups(d)}
    candidates = [a for a in args if "=" in a and not a.startswith("-")]
    try:
        overrides = OverridesParser.create().parse_overrides(candidates)
    except Exception as e:  # hydra's own message, squeezed to one line
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
                    raise ConfigError(f"{group}={v} is not an option of '{group}'; a pair has one name "
                                      f"(video encoder first, else alphabetical): {group}={pair}")
            if v not in valid:
                raise ConfigError(f"{group}={v} is not an option of '{group}'; "
                                  f"valid choices: {', '.join(valid)}")


DTYPE_NAMES = ("float32", "bfloat16", "float16")  # src/models/precision.py DTYPES (no torch here)
CHAT_FORMATS = tuple(FORMATS)
Rule = tuple[str, Callable[[Any], bool], str]
RULES: list[Rule] = [
    ("sampler.fps", lambda v: v is None or v > 0, "> 0"),
    ("sampler.tokens_per_second", lambda v: v is None or v > 0, "> 0, or null"),
    ("sampler.num_frames", lambda v: v is None or (isinstance(v, int) and v > 0), "an integer > 0"),
    ("sampler.max_clips", lambda v: v is None or (isinstance(v, int) and v > 0), "an integer > 0, or null"),
    ("encoder.frames_per_clip", lambda v: isinstance(v, int) and v > 0, "an integer > 0"),
    ("resampler.tokens_per_clip", lambda v: isinstance(v, int) and v > 0, "an integer > 0"),
    ("resampler.depth", lambda v: v is None or (isinstance(v, int) and v > 0), "an integer > 0"),
    ("resampler.heads", lambda v: v is None or (isinstance(v, int) and v > 0), "an integer > 0"),
    ("data.batch_size", lambda v: isinstance(v, int) and v > 0, "an integer > 0"),
    ("data.num_workers", lambda v: isinstance(v, int) and v >= 0, "an integer >= 0"),
    ("data.train_limit", lambda v: v is None or (isinstance(v, int) and v > 0), "an integer > 0, or null"),
    ("data.eval_limit", lambda v: v is None or (isinstance(v, int) and v > 0), "an integer > 0, or null"),
    ("mixture.epoch_size", lambda v: v is None or (isinstance(v, int) and v > 0), "an integer > 0, or null"),
    ("eval.batch_size", lambda v: isinstance(v, int) and v > 0, "an integer > 0"),
    ("llm.lr", lambda v: isinstance(v, (int, float)) and v > 0, "a number > 0"),
    ("llm.chat_template", lambda v: v in CHAT_FORMATS, " or ".join(CHAT_FORMATS)),
    ("llm.dtype", lambda v: v in DTYPE_NAMES, ", ".join(DTYPE_NAMES)),
    ("profile.dtype", lambda v: v in DTYPE_NAMES, ", ".join(DTYPE_NAMES)),
    ("llm.gradient_checkpointing", lambda v: isinstance(v, bool), "true or false"),
    ("profile.gradient_checkpointing", lambda v: isinstance(v, bool), "true or false"),
    ("integration.timestamps", lambda v: v is None or (isinstance(v, str) and "{start}" in v
                                                     and "{end}" in v),
     "null, or a text holding {start} and {end}"),
    ("checkpoint.every_minutes", lambda v: v is None or (isinstance(v, (int, float)) and v > 0),
     "a number of minutes > 0, or null"),
    ("checkpoint.every_steps", lambda v: v is None or (isinstance(v, int) and v > 0),
     "an integer > 0, or null"),
    ("checkpoint.resume", lambda v: isinstance(v, bool), "true or false"),
    ("eval.modalities", lambda v: OmegaConf.is_list(v) and len(v) > 0 and len(set(v)) == len(v)
     and all(m in EVAL_MODALITIES for m in v),
     f"a list of distinct {', '.join(EVAL_MODALITIES)}, e.g. eval.modalities=[video,frame,text]"),
    ("eval.circular", lambda v: OmegaConf.is_list(v) and len(set(v)) == len(v)
     and all(m in EVAL_MODALITIES for m in v),
     f"a list of distinct {', '.join(EVAL_MODALITIES)} (or []), e.g. eval.circular=[frame,text]"),
    ("profile.name", lambda v: v in ("tiny", "pretrained"), "tiny or pretrained"),
    ("seed", lambda v: isinstance(v, int), "an integer"),
    ("cache.features", lambda v: isinstance(v, bool), "true or false"),
    ("cache.dir", lambda v: isinstance(v, str) and v.strip() != "", "a directory path"),
    ("cache.max_gb", lambda v: v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)
                                             and v > 0), "a number of GB > 0, or null (no limit)"),
]



def validate(cfg: DictConfig) -> None:
    """Raise ConfigError on the first invalid value of the composed config."""
    for key, ok, valid in RULES:
        if OmegaConf.select(cfg, key, default="__absent__") == "__absent__":
            continue
        value = OmegaConf.select(cfg, key)
        try:
            good = ok(value)
        except TypeError:
            good = False
        if not good:
            raise ConfigError(f"{key}={value!r} is invalid; valid: {valid}")
    rates = [OmegaConf.select(cfg, k) for k in ("sampler.fps", "sampler.tokens_per_second")]
    if "tokens_per_second" in cfg.sampler and (rates[0] is None) == (rates[1] is None):
        raise ConfigError(f"sampler.tokens_per_second={rates[1]!r} is invalid with sampler.fps="
                          f"{rates[0]!r}; valid: exactly one of the two set (sampler.fps=null "
                          "sampler.tokens_per_second=16 samples at 16 tokens a second)")
    for split in ("train", "eval"):  # a value the option leaves to the user (`???`)
        if split in cfg.data.keys() and OmegaConf.is_missing(cfg.data, split):
            raise ConfigError(f"data.{split} is not set; valid: the path of a JSON or JSONL manifest "
                              f"(data.{split}=DIR/{split}.jsonl)")
    shares = OmegaConf.select(cfg, "mixture.shares")
    if shares is not None:
        from src.data.errors import DataError
        from src.data.mixture import check_shares

        try:
            check_shares(OmegaConf.to_container(shares), "mixture")
        except DataError as e:
            raise ConfigError(str(e)) from None
    dropout = OmegaConf.select(cfg, "data.modality_dropout")
    if dropout is not None:
        from src.data.errors import DataError
        from src.data.mixture import check_dropout

        try:
            check_dropout(OmegaConf.to_container(dropout) if OmegaConf.is_dict(dropout) else dropout)
        except DataError as e:
            raise ConfigError(str(e)) from None
    if cfg.resampler.get("name") == "avgpool":  # pools space to a side x side grid
        n = cfg.resampler.tokens_per_clip
        if math.isqrt(n) ** 2 != n:
            near = sorted({max(1, math.isqrt(n)) ** 2, (math.isqrt(n) + 1) ** 2})
            raise ConfigError(f"resampler.tokens_per_clip={n} is invalid for resampler=avgpool; valid: "
                              f"a square (1, 4, 9, 16, ...), e.g. {' or '.join(map(str, near))}")
    for part in ("projector", "resampler"):  # a connector option sets both; nothing may undo it
        fixed = OmegaConf.select(cfg, f"connector.{part}")
        if fixed is not None and cfg[part].name != fixed:
            raise ConfigError(f"{part}={cfg[part].name} contradicts connector={cfg.connector.name}, "
                              f"which sets {part}={fixed}; valid: leave {part}= out, or connector=parts")
    check_encoder(cfg)
    stages = cfg.schedule.stages
    if not stages:
        raise ConfigError("schedule.stages=[] is invalid; valid: at least one stage")
    for i, stage in enumerate(stages):
        for part in ("vision", "connector", "llm"):
            lr = stage.lr.get(part)
            if not isinstance(lr, (int, float)) or lr < 0:
                raise ConfigError(f"schedule.stages[{i}].lr.{part}={lr!r} is invalid; valid: a number >= 0")
        if not any(stage.lr[p] > 0 for p in ("vision", "connector", "llm")):
            raise ConfigError(f"schedule.stages[{i}].lr={dict(stage.lr)} is invalid; valid: "
                              "at least one part with a learning rate > 0")
        if stage.get("data", "mixture") not in ("mixture", "video"):
            raise ConfigError(f"schedule.stages[{i}].data={stage.data!r} is invalid; valid: mixture, "
                              "video (video samples only)")
        if not isinstance(stage.epochs, int) or stage.epochs < 1:
            raise ConfigError(f"schedule.stages[{i}].epochs={stage.epochs!r} is invalid; "
                              "valid: an integer >= 1")


def check_encoder(cfg: DictConfig) -> None:
    """Remote code needs the user's consent; `select_layer` names a layer the tiny tower has.

    An option that loads its checkpoint's own code says so with a `trust_remote_code` key
    (a pair passes its value on to such a member).
    """
    enc = cfg.encoder
    if cfg.profile.name == "pretrained" and enc.get("trust_remote_code") is False:
        raise ConfigError(f"encoder.trust_remote_code=false is invalid with profile=pretrained: "
                          f"encoder={enc.name} runs its checkpoint's own Python code; valid: true "
                          f"(set encoder.trust_remote_code=true to allow it)")
    if cfg.profile.name != "tiny":  # a checkpoint's depth is known once it loads
        return
    nodes = {"encoder": enc, **{f"encoder.members.{k}": v for k, v in (enc.get("members") or {}).items()}}
    for key, node in nodes.items():
        layer, depth = node.get("select_layer"), OmegaConf.select(node, "arch.num_hidden_layers")
        if layer is None or depth is None:
            continue
        depth = -(-depth // cfg.profile.depth_div)  # as src/models/shrink.py rounds
        if not isinstance(layer, int) or not -(depth + 1) <= layer <= depth:
            raise ConfigError(f"{key}.select_layer={layer!r} is invalid; valid: an integer from "
                              f"{-(depth + 1)} to {depth} (the tiny {node.name} has {depth} layers)")


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
            raise ConfigError(f"trainer.devices={devices} does not match hydra.launcher.tasks_per_node="
                              f"{tasks} {named}; valid: trainer.devices={tasks} (one task per device)")
        if accelerator in ("gpu", "cuda") and gpus != tasks:
            raise ConfigError(f"hydra.launcher.gpus_per_node={gpus} {named} does not match "
                              f"tasks_per_node={tasks} and trainer.devices={devices}; valid: {tasks}")
        if accelerator not in ("gpu", "cuda", "auto") and gpus:
            raise ConfigError(f"hydra.launcher.gpus_per_node={gpus} {named} reserves GPUs for "
                              f"trainer.accelerator={accelerator}; valid: trainer=gpu, or "
                              "hydra/launcher=slurm_cpu")
        if nodes != num_nodes:
            raise ConfigError(f"trainer.num_nodes={num_nodes} does not match hydra.launcher.nodes="
                              f"{nodes} {named}; valid: trainer.num_nodes={nodes}")
    elif target.endswith(("LocalLauncher", "LocalParallelLauncher")):
        if devices != 1 or launcher.get("tasks_per_node", 1) != 1:
            raise ConfigError(f"trainer.devices={devices} is invalid with hydra/launcher={choice}, "
                              "which starts one process per run; valid: trainer.devices=1, or "
                              "hydra/launcher=basic (Lightning starts the ranks) or a SLURM preset")
