"""Checks on the command line and the composed config, before any data or model loads.

Every problem is one line that names the key, the bad value and what is valid.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from src.data.manifest import EVAL_MODALITIES

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"


class ConfigError(ValueError):
    """A user's mistake in the config: the message is the whole story, in one line."""


def group_options(group: str, conf_dir: Path = CONF_DIR) -> list[str]:
    return sorted(p.stem for p in (conf_dir / group).glob("*.yaml"))


def config_groups(conf_dir: Path = CONF_DIR) -> list[str]:
    return sorted(p.name for p in conf_dir.iterdir() if p.is_dir() and any(p.glob("*.yaml")))


def check_overrides(args: Sequence[str], conf_dir: Path = CONF_DIR) -> None:
    """Every group choice on the command line (sweeps included) names an existing option."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    groups = set(config_groups(conf_dir))
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
        valid = group_options(group, conf_dir)
        for v in values:
            if v not in valid:
                raise ConfigError(f"{group}={v} is not an option of '{group}'; "
                                  f"valid choices: {', '.join(valid)}")


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


Rule = tuple[str, Callable[[Any], bool], str]
RULES: list[Rule] = [
    ("sampler.fps", lambda v: v is None or v > 0, "> 0"),
    ("sampler.num_frames", lambda v: v is None or (isinstance(v, int) and v > 0), "an integer > 0"),
    ("sampler.max_clips", lambda v: v is None or (isinstance(v, int) and v > 0), "an integer > 0, or null"),
    ("encoder.frames_per_clip", lambda v: isinstance(v, int) and v > 0, "an integer > 0"),
    ("resampler.tokens_per_clip", lambda v: isinstance(v, int) and v > 0, "an integer > 0"),
    ("resampler.depth", lambda v: v is None or (isinstance(v, int) and v > 0), "an integer > 0"),
    ("resampler.heads", lambda v: v is None or (isinstance(v, int) and v > 0), "an integer > 0"),
    ("data.batch_size", lambda v: isinstance(v, int) and v > 0, "an integer > 0"),
    ("data.num_workers", lambda v: isinstance(v, int) and v >= 0, "an integer >= 0"),
    ("mixture.epoch_size", lambda v: v is None or (isinstance(v, int) and v > 0), "an integer > 0, or null"),
    ("eval.batch_size", lambda v: isinstance(v, int) and v > 0, "an integer > 0"),
    ("eval.modalities", lambda v: OmegaConf.is_list(v) and len(v) > 0 and len(set(v)) == len(v)
     and all(m in EVAL_MODALITIES for m in v),
     f"a list of distinct {', '.join(EVAL_MODALITIES)}, e.g. eval.modalities=[video,frame,text]"),
    ("profile.name", lambda v: v in ("tiny", "pretrained"), "tiny or pretrained"),
    ("seed", lambda v: isinstance(v, int), "an integer"),
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
        if not isinstance(stage.epochs, int) or stage.epochs < 1:
            raise ConfigError(f"schedule.stages[{i}].epochs={stage.epochs!r} is invalid; "
                              "valid: an integer >= 1")
