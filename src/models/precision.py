"""GPU switches applied when a model is built: the weights' dtype and gradient checkpointing.

`llm.dtype` / `llm.gradient_checkpointing` set the LLM's, `profile.dtype` /
`profile.gradient_checkpointing` the defaults of both the LLM and the vision encoder
(`profile=pretrained`: bfloat16 and on; `profile=tiny`: float32 and off). The README
gives the memory each LLM size needs under them (`python -m src.tools.memory`).
"""

from __future__ import annotations

import logging
from typing import TypeVar

import torch
from torch import nn

log = logging.getLogger(__name__)

M = TypeVar("M", bound=nn.Module)

DTYPES: dict[str, torch.dtype] = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def torch_dtype(name: str) -> torch.dtype:
    """The torch dtype of a config's `dtype` name (float32, bfloat16, float16)."""
    if name not in DTYPES:
        raise ValueError(f"dtype={name!r} is not one of {', '.join(DTYPES)}")
    return DTYPES[name]


def enable_gradient_checkpointing(module: nn.Module, what: str) -> int:
    """Recompute activations in the backward pass, in every transformers model inside `module`.

    Returns how many models took it (0: `module` holds no transformers model that
    supports it, which is logged). Non-reentrant checkpointing, so that inputs that do not
    need gradients (frozen embeddings, pixels) still let the layers' weights get them;
    the KV cache is off, as training never uses it.
    """
    from transformers import PreTrainedModel

    done: set[int] = set()
    calls = 0
    for m in module.modules():
        if id(m) in done or not (isinstance(m, PreTrainedModel) and m.supports_gradient_checkpointing):
            continue
        m.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        if hasattr(m.config, "use_cache"):
            m.config.use_cache = False
        done.update(id(sub) for sub in m.modules())  # its inner models are done with it
        calls += 1
    if not calls:
        log.warning("gradient checkpointing: the %s holds no model that supports it; left off", what)
    return calls


def apply_switches(module: M, dtype: str, gradient_checkpointing: bool, what: str) -> M:
    """Cast `module`'s weights to `dtype` and turn on gradient checkpointing if asked."""
    module.to(torch_dtype(dtype))
    if gradient_checkpointing:
        enable_gradient_checkpointing(module, what)
    return module
