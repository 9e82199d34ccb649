"""Expected GPU memory to train each `llm` option at profile=pretrained: `python -m src.tools.memory`.

An estimate from the architecture, not a measurement. For one GPU, the stage that
trains the whole LLM (AdamW), a micro-batch of one sequence of `--tokens` tokens:

- weights, gradients and AdamW's two moments: 4 copies of every parameter, in the
  weights' dtype (torch's AdamW keeps its moments in the parameter's dtype): 8 bytes a
  parameter with `llm.dtype=bfloat16`, 16 with float32 (Lightning's bf16-mixed then
  keeps float32 weights and computes in bf16);
- activations kept for the backward pass, in bf16 (2 bytes), per layer and token:
  the inputs of the two RMSNorms and of the q/k/v, o, gate/up and down projections,
  q, k and v for the attention kernel (flash / memory-efficient SDPA: no S x S
  scores), and the MLP's gate, up, SiLU and product: `4h + 2q + 2kv + 4i` numbers
  (h: hidden, q: heads x head_dim, kv: key-value heads x head_dim, i: intermediate);
- with gradient checkpointing only each layer's input (`h` per token) is kept, and
  one layer's activations are rebuilt at a time during the backward pass;
- logits: the loss projects only the answer tokens to the vocabulary, so they are
  negligible; the vision encoder (frozen) adds its bf16 weights (SigLIP-SO400M: 0.9 GB).

Not counted: the CUDA context and allocator slack (about 1-2 GB), and the encoder's
activations when a schedule trains it. A larger micro-batch multiplies the activations.
"""

from __future__ import annotations

import argparse
from typing import Any

from src.config.compose import group_options, option_config
from src.config.container import to_dict

GB = 1e9


def activation_numbers(arch: dict[str, Any]) -> tuple[int, int]:
    """(numbers kept per layer and token without checkpointing, with checkpointing)."""
    h, heads, i = arch["hidden_size"], arch["num_attention_heads"], arch["intermediate_size"]
    head_dim = arch.get("head_dim", h // heads)
    q, kv = heads * head_dim, arch.get("num_key_value_heads", heads) * head_dim
    return 4 * h + 2 * q + 2 * kv + 4 * i, h


def estimate(option: str, tokens: int) -> dict[str, float]:
    """GB of one `llm` option: parameters, static (weights + grads + AdamW) and activations."""
    from src.tools.sizes import REAL, llm_params

    arch = to_dict(option_config("llm", option).arch)
    n = llm_params(option, REAL)
    full, kept = activation_numbers(arch)
    layers = arch["num_hidden_layers"]
    act_off = layers * tokens * full * 2 / GB
    act_on = (layers * tokens * kept + tokens * full) * 2 / GB  # inputs kept + one layer rebuilt
    return {
        "params_b": n / 1e9,
        "static_bf16": 8 * n / GB,
        "static_fp32": 16 * n / GB,
        "act_ckpt": act_on,
        "act_full": act_off,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m src.tools.memory", description=__doc__.split("\n")[0])
    p.add_argument("--tokens", type=int, default=4096, help="tokens of one sequence (default 4096)")
    p.add_argument("--encoder-gb", type=float, default=0.9, help="the frozen vision encoder's bf16 weights")
    args = p.parse_args(argv)
    print(
        f"| llm | params | weights+grads+AdamW bf16 / fp32 | activations, {args.tokens} tokens: "
        "checkpointing on / off | total: bf16 + checkpointing | bf16, no checkpointing "
        "| fp32 + checkpointing |"
    )
    print("|---|---|---|---|---|---|---|")
    for option in group_options("llm"):
        e = estimate(option, args.tokens)
        enc = args.encoder_gb
        print(
            f"| {option} | {e['params_b']:.2f} B | {e['static_bf16']:.1f} / {e['static_fp32']:.1f} GB "
            f"| {e['act_ckpt']:.1f} / {e['act_full']:.1f} GB "
            f"| **{e['static_bf16'] + e['act_ckpt'] + enc:.0f} GB** "
            f"| {e['static_bf16'] + e['act_full'] + enc:.0f} GB "
            f"| {e['static_fp32'] + e['act_ckpt'] + enc:.0f} GB |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
