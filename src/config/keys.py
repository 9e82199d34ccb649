"""Keys a command line adds (`+key=value`): refused at start-up unless something reads them.

Hydra adds any `+key` to the config, and a run would train and record a key that nothing
reads (`+foo=1`), or a typo of a key it does read (`+sampler.fsp=2`, meant `sampler.fps=2`).
A `+key` passes when
- it chooses a config group (`+debug=fast`), or is Hydra's own (`+hydra.launcher.x=1`);
- the nearest node the config ships above it has a `_target_` whose callable takes the next
  part of the key as an argument (`+trainer.limit_train_batches=2`: Lightning's Trainer;
  `+optimizer.momentum=0.9` with `optimizer._target_=torch.optim.SGD`), or any (`**kwargs`);
- it is one of OPTIONAL_KEYS, keys that no option ships and the code reads;
- its last part names a secret (`+hf_token=...`): never recorded (src/config/redact.py).
Otherwise one line names the node, its keys, and the closest of them. `++key` (force) is
left to the user who forces it: after composing, an added key and a changed one look alike.
"""

from __future__ import annotations

import difflib
import fnmatch
import importlib
import inspect
from collections.abc import Collection, Iterable, Sequence
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from src.config.constraints import join
from src.config.errors import ConfigError
from src.config.redact import is_secret_key

_ABSENT = object()
# Keys that no option ships but the code reads, so that `+key=value` is how they are given;
# `*` stands for a key of a node whose reader checks its keys itself (or passes them on).
OPTIONAL_KEYS = (
    "perf.peak_tflops",  # src/run/train.py: the device's peak, for MFU (docs/training.md)
    "llm.resources.*",  # src/launch/resources.py checks them (its PINS)
    "mixture.shares.*",  # src/data/mixture.py checks the modalities
    "data.synthetic.*",  # SyntheticSpec's fields, checked at start-up (src/config/checks.py)
    "llm.arch.*",  # a transformers config's own arguments
    "encoder.arch.*",
    "encoder.members.*.arch.*",
)


def import_ref(ref: str, key: str) -> Any:
    """The object a `_target_` ("pkg.mod.Name") or an OWNERS entry ("pkg.mod:NAME") names."""
    module, sep, attr = ref.partition(":")
    if not sep:
        module, _, attr = ref.rpartition(".")
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as e:
        raise ConfigError(f"{key}={ref!r} is invalid; valid: an importable name ({type(e).__name__}: {e})") from None


def closest(word: str, choices: Iterable[str]) -> str | None:
    """The choice closest to `word` (a typo's key), or None where none is close."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return close[0] if close else None


def _leaves(node: DictConfig | ListConfig, path: str) -> Iterable[str]:
    """Every key path under `node`; a list is one leaf."""
    if not isinstance(node, DictConfig):
        yield path
        return
    for k in node:
        child = node._get_node(k)
        if isinstance(child, DictConfig) and not child._is_interpolation():
            yield from _leaves(child, join(path, str(k)))
        else:
            yield join(path, str(k))


def _added_by(path: str, added: Collection[str]) -> bool:
    return any(path == a or path.startswith(a + ".") for a in added)


def _created(node: DictConfig, path: str, added: Collection[str]) -> bool:
    """Whether the node at `path` is only what `+` overrides put there (`+perf.peak_tflops`
    makes `perf`), not a node the config ships."""
    return all(_added_by(leaf, added) for leaf in _leaves(node, path))


def _arguments(target: str) -> list[str] | None:
    """The keyword arguments the callable `target` names takes; None: any (`**kwargs`), or
    what it takes cannot be read."""
    obj = import_ref(target, "_target_")
    try:
        params = inspect.signature(obj).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    return [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def unknown_key(cfg: DictConfig, key: str, value: str, added: Collection[str]) -> str | None:
    """Why `+key=value` adds what nothing reads (one line), or None where something reads it."""
    if any(fnmatch.fnmatchcase(key, p) for p in OPTIONAL_KEYS) or is_secret_key(key):
        return None
    parts = key.split(".")
    for depth in range(len(parts) - 1, -1, -1):
        path = ".".join(parts[:depth])
        node = cfg if depth == 0 else OmegaConf.select(cfg, path, default=None)
        if not isinstance(node, DictConfig) or (depth and _created(node, path, added)):
            continue
        name, target = parts[depth], node.get("_target_")
        if isinstance(target, str):
            takes = _arguments(target)
            if takes is None or name in takes:
                return None
            where = f"{path} ({target})"
            known = [k for k in takes if k != "self"]
        else:
            where = path or "the config"
            known = [str(k) for k in node if not _added_by(join(path, str(k)), added)]
        shown = ", ".join(known[:12]) + (", ..." if len(known) > 12 else "")
        hint = ""
        if (near := closest(name, known)) is not None:
            meant = join(path, near)
            shipped = OmegaConf.select(cfg, meant, default=_ABSENT) is not _ABSENT and not _added_by(meant, added)
            hint = f"; did you mean {'' if shipped else '+'}{meant}={value}?"
        return f"{where} has no key '{name}' that anything reads; valid: {shown}{hint}"
    return None


def check_added_keys(cfg: DictConfig, overrides: Sequence[str], groups: Collection[str] = ()) -> None:
    """Raise ConfigError on the first `+key=value` of `overrides` that adds a key nothing reads.

    `cfg` is the config composed with `overrides`; `groups`: the config groups (a `+group=option`
    chooses an option, which the override check has seen)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = [o for o in OverridesParser.create().parse_overrides(list(overrides)) if o.is_add()]
    added = [o.key_or_group for o in parsed]
    for o in parsed:
        key = o.key_or_group
        if key in groups or "/" in key or o.package is not None or key.split(".")[0] == "hydra":
            continue
        line = str(o.input_line)  # set by the parser
        why = unknown_key(cfg, key, line.split("=", 1)[1], added)
        if why:
            raise ConfigError(f"{line}: {why}")
