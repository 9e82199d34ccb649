"""The precision policy, and the switches applied when a model is built: weights' dtype and
gradient checkpointing.

`llm.dtype` / `llm.gradient_checkpointing` set the LLM's, `profile.dtype` /
`profile.gradient_checkpointing` the defaults of both the LLM and the vision encoder
(`profile=pretrained` and `fullsize`: bfloat16 and on; `profile=tiny`: float32 and off).

The policy (`weight_dtypes`, `policy`): a part that trains in any stage of the schedule
keeps float32 weights for the whole run, whatever its `dtype` says: an AdamW step at the
paper's rates (1e-5, 5e-6) is smaller than half the spacing of bfloat16 numbers near most
weights, so bf16 weights would not move (tests/run/test_precision.py measures it). Compute
is in bf16 where the trainer says so: `trainer.precision=bf16-mixed` (autocast; trainer=gpu,
fsdp) or FSDP's mixed-precision policy (bf16 all-gathers, float32 gradient reduction), as
prismatic-vlms and LLaVA's DeepSpeed bf16 do. Parts frozen throughout stay in their
`dtype` (half the memory). `trainer.precision=bf16-true` / `16-true` would cast the trained
weights back to half precision, so a schedule that trains anything refuses them at start-up.
The run record's `precision` says what was used. The README gives the memory each LLM
size needs under it (`python -m src.tools.memory`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, TypeVar

import torch
from torch import nn

from src.config.constraints import Constraints
from src.config.errors import ConfigError

log = logging.getLogger(__name__)

M = TypeVar("M", bound=nn.Module)

DTYPES: dict[str, torch.dtype] = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
PARTS = ("vision", "connector", "llm")  # the schedule's parts (conf/schedule)
# trainer precisions that cast every weight to half precision (Lightning's "-true")
HALF_TRUE = ("bf16-true", "16-true", "bf16", "16", "half")
# trainer precisions that compute in bf16 under autocast; FSDP gets the same in its policy
BF16_COMPUTE = ("bf16-mixed", "bf16")


def trained_parts(stages: Any) -> set[str]:
    """The parts (vision, connector, llm) with a learning rate > 0 in some stage."""
    return {part for stage in stages for part in PARTS if float(stage["lr"][part]) > 0}


def weight_dtypes(cfg: Any) -> dict[str, str]:
    """Each part's weight dtype for the whole run: float32 for a part that trains in any
    stage (its master weights), else its configured `dtype` (the connector is always new
    weights in float32)."""
    trained = trained_parts(cfg.schedule.stages)
    configured = {"vision": str(cfg.profile.dtype), "connector": "float32", "llm": str(cfg.llm.dtype)}
    return {part: "float32" if part in trained else dtype for part, dtype in configured.items()}


def policy(cfg: Any) -> dict[str, Any]:
    """What the run record says of precision: weights per part, where compute runs in bf16."""
    precision = str(cfg.trainer.get("precision", "32-true"))
    fsdp = is_fsdp(cfg.trainer)
    bf16 = precision in BF16_COMPUTE
    if fsdp and bf16:
        compute = "bfloat16 (FSDP mixed precision: bf16 parameters gathered, float32 gradients reduced)"
    elif bf16:
        compute = "bfloat16 (autocast)"
    else:
        compute = "each part's weight dtype (no autocast)"
    return {
        "trainer_precision": precision,
        "weights": weight_dtypes(cfg),
        "trained_in_float32": sorted(trained_parts(cfg.schedule.stages)),
        "compute": compute,
        "sharded": fsdp,
    }


def is_fsdp(trainer: Mapping[str, Any]) -> bool:
    """Whether a trainer config shards the model (trainer=fsdp)."""
    strategy = trainer.get("strategy")
    target = strategy.get("_target_", "") if isinstance(strategy, Mapping) else str(strategy or "")
    return "fsdp" in str(target).lower() or "ModelParallel" in str(target)


def check_trainer(node: Any, key: str, root: Any) -> None:
    """A trainer precision that casts every weight to half precision cannot train: refused."""
    precision = str(node.get("precision", "32-true"))
    if precision in HALF_TRUE and trained_parts(root.schedule.stages):
        raise ConfigError(
            f"{key}.precision={precision} is invalid: it casts the weights that train to half precision, "
            "where AdamW steps at the schedule's rates are lost; valid: bf16-mixed (float32 weights, bf16 "
            "compute) or 32-true"
        )


TRAINER_CONSTRAINTS = Constraints(check=check_trainer)  # conf/trainer (src/config/validate.py OWNERS)


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
        kwargs = {"use_reentrant": False}
        if hasattr(m, "activation_checkpointing_enable"):  # transformers >= 5.2x
            m.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
        else:  # the name before (the GPU machines' transformers 5.17 among them)
            m.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
        if hasattr(m.config, "use_cache"):
            m.config.use_cache = False
        done.update(id(sub) for sub in m.modules())  # its inner models are done with it
        calls += 1
    if not calls:
        log.warning("gradient checkpointing: the %s holds no model that supports it; left off", what)
    return calls


def recompute_while_frozen(module: nn.Module) -> int:
    """Keep gradient checkpointing on in a frozen part that gradients still pass through.

    transformers recomputes a layer only in training mode, and a frozen part runs in eval
    mode; yet in the stages that train the connector, the loss's gradient flows back through
    the frozen LLM, and without checkpointing every layer's activations are kept. Only the
    checkpointed layers' own flag is set (their dropouts and other children stay in eval
    mode, so the outputs do not change). Returns how many layers it set.
    """
    from transformers.modeling_layers import GradientCheckpointingLayer

    layers = [m for m in module.modules() if isinstance(m, GradientCheckpointingLayer) and m.gradient_checkpointing]
    for m in layers:
        m.training = True
    return len(layers)


def apply_switches(module: M, dtype: str, gradient_checkpointing: bool, what: str) -> M:
    """Cast `module`'s weights to `dtype` and turn on gradient checkpointing if asked."""
    module.to(torch_dtype(dtype))
    if gradient_checkpointing:
        enable_gradient_checkpointing(module, what)
    return module
