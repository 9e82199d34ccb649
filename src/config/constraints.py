"""Constraints a component states on its own config node, checked at start-up.

A component declares them beside its code, as a class attribute of the `_target_` class
(or, for a node that no `_target_` names, a module attribute that src/config/validate.py's
OWNERS points to):

    class AvgPoolResampler(nn.Module):
        CONSTRAINTS = Constraints(Rule("tokens_per_clip", positive_int, "an integer > 0"),
                                  check=square_token_count)

A rule names a key of the node (relative: `tokens_per_clip`, `lr.vision`), a predicate on
its value and what is valid, in words; `check` sees the whole node (and the root config)
for what involves several keys. Every problem is one line: `key=value is invalid; valid: ...`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, OmegaConf

from src.config.errors import ConfigError

_ABSENT = object()


def is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def positive_int(v: Any) -> bool:
    return is_int(v) and v > 0


def non_negative_int(v: Any) -> bool:
    return is_int(v) and v >= 0


def positive_number(v: Any) -> bool:
    return is_number(v) and v > 0


def boolean(v: Any) -> bool:
    return isinstance(v, bool)


def nullable(ok: Callable[[Any], bool]) -> Callable[[Any], bool]:
    """`ok`, or null."""
    return lambda v: v is None or ok(v)


def one_of(*choices: Any) -> Callable[[Any], bool]:
    return lambda v: v in choices


@dataclass(frozen=True)
class Rule:
    """One key of a node: `ok(value)` must hold. `optional`: the key may be absent from an
    option of the class (a test checks that every other rule's key is in every option)."""

    key: str
    ok: Callable[[Any], bool]
    valid: str
    optional: bool = False

    def apply(self, node: DictConfig, prefix: str) -> None:
        value = OmegaConf.select(node, self.key, default=_ABSENT)
        if value is _ABSENT:  # a config saved before the key existed (src.eval reads old runs)
            return
        try:
            good = self.ok(value)
        except TypeError:
            good = False
        if not good:
            raise ConfigError(f"{join(prefix, self.key)}={value!r} is invalid; valid: {self.valid}")


# check(node, key of the node, root config): raises ConfigError on what several keys make invalid
NodeCheck = Callable[[DictConfig, str, DictConfig], None]


class Constraints:
    """The rules of a node's keys, then an optional check of the whole node."""

    def __init__(self, *rules: Rule, check: NodeCheck | None = None) -> None:
        self.rules = rules
        self.check = check

    def apply(self, node: DictConfig, prefix: str, root: DictConfig) -> None:
        for rule in self.rules:
            rule.apply(node, prefix)
        if self.check is not None:
            self.check(node, prefix, root)


def join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key
