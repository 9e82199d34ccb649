"""Sharding for `trainer=fsdp`: FSDP2 (`fully_shard`) under Lightning's ModelParallelStrategy.

The units: every decoder layer of the LLM is one; the root unit holds the rest (the vision
encoder, the connector and integration, the LLM's embeddings, final norm and output layer).
The root's parameters are gathered once per call of `loss` or `option_scores` (registered as
forward methods), so nothing inside them issues a collective: the frozen encoder may run once
per item, hit the feature cache on one rank and not on another, or not run at all on a batch
of text only, and the ranks still issue the same collectives (one per unit per step). The
encoder's layers are not units of their own for that reason; the LLM's layers are, and every
rank runs every one of them once a step.

Parameters keep the dtypes of the precision policy (src/models/precision.py: float32 for the
parts that train); with `trainer.precision=bf16-mixed` FSDP gathers them in bf16 and reduces
gradients in float32. Sharded parameters take `requires_grad` changes between stages as they
are. Evaluation gathers every unit once (`gather_for_eval`), so that ranks with more eval
batches than others issue no collective the others would wait for.
"""

from __future__ import annotations

import importlib
from typing import Any

import torch
from torch import nn

BLOCKS = {
    "transformers.models.qwen2.modeling_qwen2": "Qwen2DecoderLayer",
    "transformers.models.qwen3.modeling_qwen3": "Qwen3DecoderLayer",
}


def decoder_blocks() -> tuple[type[nn.Module], ...]:
    """The LLMs' decoder-layer classes present in the installed transformers."""
    found: list[type[nn.Module]] = []
    for module, name in BLOCKS.items():
        try:
            found.append(getattr(importlib.import_module(module), name))
        except (ImportError, AttributeError):
            continue
    return tuple(found)


def is_sharded(model: nn.Module) -> bool:
    from torch.distributed.fsdp import FSDPModule

    return isinstance(model, FSDPModule)


def shard(model: nn.Module, mesh: Any, bf16: bool) -> int:
    """Shard a VideoLMM over `mesh` (its data-parallel dimension): each LLM decoder layer, then
    the root. Returns the number of units. A model sharded already is left as it is (the next
    stage's fit calls this again)."""
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard, register_fsdp_forward_method

    if is_sharded(model):
        return 0
    policy = MixedPrecisionPolicy(param_dtype=torch.bfloat16 if bf16 else None, reduce_dtype=torch.float32)
    blocks = decoder_blocks()
    llm = model.get_submodule("llm")
    layers = [m for m in llm.modules() if isinstance(m, blocks)]
    if not layers:
        raise ValueError(f"trainer=fsdp: the LLM {type(llm).__name__} has no known decoder layer to shard")
    for layer in layers:
        fully_shard(layer, mesh=mesh, mp_policy=policy)
    fully_shard(model, mesh=mesh, mp_policy=policy)
    for method in ("loss", "option_scores"):
        register_fsdp_forward_method(model, method)
    return len(layers) + 1


def gather_for_eval(model: nn.Module) -> None:
    """Gather every unit's full parameters once and keep them: evaluation then runs without
    collectives, however many batches each rank scores. Every rank must call it."""
    from torch.distributed.fsdp import FSDPModule

    units = [m for m in model.modules() if isinstance(m, FSDPModule)]
    for unit in units:
        unit.set_reshard_after_forward(False, recurse=False)
        unit.unshard()


def release_after_eval(model: nn.Module) -> None:
    """Back to sharded parameters after `gather_for_eval` (training may follow)."""
    from torch.distributed.fsdp import FSDPModule

    for unit in (m for m in model.modules() if isinstance(m, FSDPModule)):
        unit.reshard()
        unit.set_reshard_after_forward(True, recurse=False)
