"""The one rule that turns a real architecture config into its `profile=tiny` replica.

Widths are divided by `width_div`, depths by `depth_div`, attention heads by
`heads_div` (rounded up, never below one; a connector's heads too, at the LLM's
width), and a vision tower's patch grid by `grid_div` with its patch side divided by
`patch_div`. Every model of a family shrinks
by the same factors, so the family keeps its relative sizes: docs/models.md's table gives
real and tiny parameter counts. A replica LLM's random weights are drawn sqrt(width_div)
times wider than its real model's (`replica_init_std`), so that its layers start with the
real model's gain. `profile=pretrained` and `profile=fullsize` use factors of
1, which leave a config as it is: `fullsize` builds the real architecture with random
weights (and the real vocabulary size), `pretrained` loads the checkpoint.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from src.config.constraints import Constraints, Rule, boolean, one_of, positive_int

PROFILES = ("tiny", "fullsize", "pretrained")
DTYPE_NAMES = ("float32", "bfloat16", "float16")  # src/models/precision.py DTYPES (no torch here)
PROFILE_CONSTRAINTS = Constraints(  # conf/profile/*.yaml
    Rule("name", one_of(*PROFILES), " or ".join(PROFILES)),
    Rule("dtype", one_of(*DTYPE_NAMES), ", ".join(DTYPE_NAMES)),
    Rule("gradient_checkpointing", boolean, "true or false"),
    Rule("depth_div", positive_int, "an integer > 0"),
)
WIDTH_KEYS = ("hidden_size", "intermediate_size")
DEPTH_KEYS = ("num_hidden_layers",)
HEAD_KEYS = ("num_attention_heads", "num_key_value_heads")
INIT_STD = 0.02  # transformers' `initializer_range` default, that of every LLM family here


def loads_checkpoint(profile: Mapping[str, Any]) -> bool:
    """Whether a profile loads each option's real checkpoint (`pretrained`), rather than
    building a replica with random weights from the option's `arch`."""
    return profile["name"] == "pretrained"


def replica_vocab(arch: Mapping[str, Any], profile: Mapping[str, Any], tokenizer_size: int) -> int:
    """The vocabulary of a replica LLM: the tokenizer's at a shrunk width (`tiny`), the real
    one (`fullsize`: the embedding and output layers at their real size, which the word-level
    tokenizer's ids index the start of)."""
    real = int(arch.get("vocab_size") or 0)
    if profile["width_div"] == 1 and real >= tokenizer_size:
        return real
    return tokenizer_size


def shrunk_depth(depth: int, profile: Mapping[str, Any]) -> int:
    """A tower's depth after the profile's `depth_div` (as shrink_arch rounds it)."""
    return _cdiv(depth, profile["depth_div"])


def shrunk_heads(heads: int, profile: Mapping[str, Any]) -> int:
    """An attention layer's heads after the profile's `heads_div` (as shrink_arch rounds
    them): the LLM's, and a connector's (the Perceiver's, the attentive pooler's), which
    works at the LLM's width, so that its heads narrow by the same factor as the LLM's."""
    return _cdiv(heads, profile["heads_div"])


def _cdiv(value: int, div: int) -> int:
    return max(1, math.ceil(value / div))


def shrink_arch(arch: Mapping[str, Any], profile: Mapping[str, Any]) -> dict[str, Any]:
    """Apply the profile's factors to an architecture dict (keys as in transformers configs)."""
    out = dict(arch)
    for key in WIDTH_KEYS:
        if key in out:
            out[key] = _cdiv(out[key], profile["width_div"])
    for key in DEPTH_KEYS:
        if key in out:
            out[key] = _cdiv(out[key], profile["depth_div"])
    for key in HEAD_KEYS:
        if key in out:
            out[key] = shrunk_heads(out[key], profile)
    if "head_dim" in out:  # explicit head sizes (Qwen3) shrink as width / heads does
        out["head_dim"] = _cdiv(out["head_dim"], profile["width_div"] // profile["heads_div"])
    heads = out.get("num_attention_heads")
    if heads and "hidden_size" in out and "head_dim" not in out and out["hidden_size"] % heads:
        raise ValueError(
            f"shrunk hidden_size {out['hidden_size']} is not divisible by {heads} heads: change the profile's factors"
        )
    kv = out.get("num_key_value_heads")
    if heads and kv and heads % kv:
        raise ValueError(f"shrunk heads {heads} are not a multiple of key/value heads {kv}")
    return out


def replica_init_std(arch: Mapping[str, Any], profile: Mapping[str, Any]) -> float:
    """The standard deviation of a replica LLM's random weights: the real model's
    `initializer_range` times sqrt(width_div).

    transformers draws every linear and embedding weight of a Qwen LLM from N(0, 0.02²),
    a scale set for widths near a thousand: a layer's gain, std·sqrt(width), is about 0.6
    at Qwen2-0.5B's 896. Kept at 0.02, a replica 16 times narrower starts with a gain of
    0.15 a layer, nearly the identity, and its attention learns where to look hundreds of
    steps later (measured: docs/results.md, "What the tiny models learn, and how fast").
    Scaled by sqrt(width_div), the replica starts with its real model's gain (the standard
    parametrisation's rule); at factors of 1 the real value stays.
    """
    return float(arch.get("initializer_range", INIT_STD)) * math.sqrt(profile["width_div"])


def shrink_vision_input(input_size: int, patch_size: int, profile: Mapping[str, Any]) -> tuple[int, int]:
    """(input side, patch side) of a vision tower: the patch grid shrinks by `grid_div`. At
    factors of 1 the real input side stays (SigLIP's 384 over 14-pixel patches: a grid of 27,
    the last 6 pixels unused, as the checkpoint does)."""
    if profile["grid_div"] == 1 and profile["patch_div"] == 1:
        return input_size, patch_size
    grid = _cdiv(input_size // patch_size, profile["grid_div"])
    patch = _cdiv(patch_size, profile["patch_div"])
    return grid * patch, patch
