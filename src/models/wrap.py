"""FSDP's wrapping unit for `trainer=fsdp`: every transformer block of the LLMs and encoders.

Sharding block by block keeps one block's full parameters in memory at a time; the
classes are those of the architectures the `llm` and `encoder` options build.
"""

from __future__ import annotations

import importlib

from torch import nn

BLOCKS = {
    "transformers.models.qwen2.modeling_qwen2": "Qwen2DecoderLayer",
    "transformers.models.qwen3.modeling_qwen3": "Qwen3DecoderLayer",
    "transformers.models.siglip.modeling_siglip": "SiglipEncoderLayer",
    "transformers.models.dinov2.modeling_dinov2": "Dinov2Layer",
    "transformers.models.clip.modeling_clip": "CLIPEncoderLayer",
    "transformers.models.videomae.modeling_videomae": "VideoMAELayer",
    "transformers.models.vjepa2.modeling_vjepa2": "VJEPA2Layer",
}


def transformer_blocks() -> set[type[nn.Module]]:
    """The block classes present in the installed transformers (FSDPStrategy's auto_wrap_policy)."""
    found: set[type[nn.Module]] = set()
    for module, name in BLOCKS.items():
        try:
            found.add(getattr(importlib.import_module(module), name))
        except (ImportError, AttributeError):
            continue
    return found
