"""`OmegaConf.to_container`, typed as what a config node turns into: a dict or a list.

OmegaConf types the result as any container or scalar; a mapping node (DictConfig) always
becomes a dict and a sequence node (ListConfig) a list.
"""

from __future__ import annotations

from typing import Any, cast

from omegaconf import OmegaConf


def to_dict(node: Any, resolve: bool = False) -> dict[str, Any]:
    """A mapping node as plain dicts and lists (`resolve`: interpolations resolved)."""
    return cast("dict[str, Any]", OmegaConf.to_container(node, resolve=resolve))


def to_list(node: Any, resolve: bool = False) -> list[Any]:
    """A sequence node as plain lists and dicts (`resolve`: interpolations resolved)."""
    return cast("list[Any]", OmegaConf.to_container(node, resolve=resolve))
