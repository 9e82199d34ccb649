"""Expected memory of training, per part and stage: `python -m src.tools.memory`.

An estimate from the architecture, not a measurement (`--measure` measures one step).
Two tables, and a function:

- `estimate(cfg, stage)`: GB by part of one stage of a composed config (encoder, llm,
  projector + resampler, sampler frames, data.batch_size, schedule, checkpointing), under
  the precision policy: parts that train in any stage of the schedule keep float32 weights
  for the whole run (master weights); parts frozen throughout keep `profile.dtype`
  (`llm.dtype` for the LLM); gradients (float32) and AdamW's two moments (float32) for
  the parameters the stage trains; compute in bf16 autocast with `trainer=gpu`
  (bf16-mixed: the trained weights' bf16 copies are cached for the step), float32 with
  `trainer=cpu` (32-true). The parts:
  - weights of the encoder, the connector (projector and resampler at the LLM's width)
    and the LLM; gradients; AdamW; autocast's bf16 copies;
  - LLM activations, kept whenever gradients flow through it: always, since every stage
    trains a part below the loss. Per layer and token, trained: the inputs of the two
    RMSNorms and of the q/k/v, o, gate/up and down projections, q, k and v for the
    attention kernel (flash / memory-efficient SDPA: no S x S scores), the MLP's gate,
    up, SiLU and product: `4h + 2q + 2kv + 4i` numbers (h: hidden, q: heads x head_dim,
    kv: key-value heads x head_dim, i: intermediate); frozen, gradients passing through
    (no weight gradients, so no projection inputs): `2h + 2q + 2kv + 3i`; with gradient
    checkpointing only each layer's input (`h`) and one layer rebuilt at a time;
  - encoder activations when the stage trains it: a ViT layer keeps `9h + 2i` numbers a
    token (LayerNorm inputs, q/k/v, attention output, MLP input, its GELU's input and
    output), each of the clip's frames' grid cells a token; when it is frozen, its forward
    runs one layer at a time without autograd, cut at the selected layer (`encoder_forward`:
    a layer's working set, one media item at a time, in the encoder weights' dtype), freed
    before the LLM runs;
  - connector activations, when gradients flow through it: traced exactly on the meta
    device (the tensors autograd saves for the backward pass), over every cell of the
    frame grid (e.g. 64 frames x 27 x 27 SigLIP cells);
  - total: weights and AdamW's moments (held all step long), plus the larger of the
    forward's peak (autocast's copies, and the larger of `encoder_forward` and the kept
    activations) and the gradients (the backward frees the activations as they come):
    a step after the first, when the moments exist.
  Tokens of a sample: the clips' tokens (`--frames` frames, default `sampler.max_clips`
  clips) plus `--text-tokens` of text; logits only for the answer tokens (negligible).
- the first table (no arguments): the whole LLM trained with AdamW, one sequence of
  `--tokens` tokens, weights in the dtype of the row (the table of docs/models.md);
- the second (`--stages`): each LLM option's total per stage of `profile=pretrained`'s
  schedule with the policy above.

Not counted: the CUDA context and allocator slack (about 1-2 GB), the integration's few
learned embeddings, a frozen encoder's per-layer working set, the data loader.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from src.config.compose import group_options, option_config
from src.config.container import to_dict, to_list
from src.models.precision import weight_dtypes

GB = 1e9
BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}
PARTS = ("vision", "connector", "llm")


def activation_numbers(arch: dict[str, Any]) -> tuple[int, int]:
    """(numbers kept per layer and token without checkpointing, with checkpointing)."""
    h, heads, i = arch["hidden_size"], arch["num_attention_heads"], arch["intermediate_size"]
    head_dim = arch.get("head_dim", h // heads)
    q, kv = heads * head_dim, arch.get("num_key_value_heads", heads) * head_dim
    return 4 * h + 2 * q + 2 * kv + 4 * i, h


def frozen_activation_numbers(arch: dict[str, Any]) -> int:
    """Numbers a frozen layer keeps per token for gradients that pass through it: no
    projection's input (those serve weight gradients only)."""
    h, heads, i = arch["hidden_size"], arch["num_attention_heads"], arch["intermediate_size"]
    head_dim = arch.get("head_dim", h // heads)
    q, kv = heads * head_dim, arch.get("num_key_value_heads", heads) * head_dim
    return 2 * h + 2 * q + 2 * kv + 3 * i


def llm_estimate(option: str, tokens: int) -> dict[str, float]:
    """GB of one `llm` option trained whole: parameters, static (weights + grads + AdamW) and activations."""
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


@dataclass
class Model:
    """What the estimate reads of a composed config's model, built on the meta device."""

    encoder: Any  # a VisionEncoder
    connector: Any  # a Connector
    llm: Any  # a transformers PreTrainedModel

    def params(self, part: str) -> int:
        return sum(p.numel() for p in getattr(self, "encoder" if part == "vision" else part).parameters())


def _no_loading(node: Any) -> Any:
    """A config dict whose every `profile` builds its architecture instead of loading a checkpoint."""
    if isinstance(node, dict):
        out = {k: _no_loading(v) for k, v in node.items()}
        if isinstance(out.get("profile"), dict) and out["profile"].get("name") == "pretrained":
            out["profile"] = {**out["profile"], "name": "architecture"}
        return out
    if isinstance(node, list):
        return [_no_loading(v) for v in node]
    return node


def meta_model(cfg: DictConfig) -> Model:
    """The config's encoder, connector and LLM on the meta device: shapes, no memory, no download."""
    from hydra.utils import get_class, instantiate

    from src.models.connectors.connector import build_connector
    from src.models.shrink import shrink_arch

    llm_cfg = to_dict(cfg.llm, resolve=True)
    with torch.device("meta"):
        encoder = instantiate(OmegaConf.create(_no_loading(to_dict(cfg.encoder, resolve=True))))
        arch = shrink_arch(llm_cfg["arch"], to_dict(cfg.profile, resolve=True))
        llm = get_class(llm_cfg["model_class"])(get_class(llm_cfg["config_class"])(**arch))
        width = int(llm.config.hidden_size)
        connector = build_connector(cfg, encoder.embed_dim, width)
    return Model(encoder, connector, llm)


def saved_bytes(fn: Any, params: Sequence[torch.Tensor]) -> int:
    """Bytes of the tensors autograd saves for the backward pass while `fn()` runs (on the
    meta device), the weights (`params`, and views of them) and repeats of a storage not counted."""
    seen: set[int] = set()
    own = {p.untyped_storage()._cdata for p in params}
    kept: list[torch.Tensor] = []  # alive, so that no storage id is reused while counting

    def pack(t: torch.Tensor) -> torch.Tensor:
        key = t.untyped_storage()._cdata
        if key not in own and key not in seen:
            seen.add(key)
            kept.append(t)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return sum(t.untyped_storage().nbytes() for t in kept)


def _leaf_encoders(encoder: nn.Module) -> list[Any]:
    """The towers of an encoder: itself, or each member of a pair."""
    from src.models.encoders.base import VisionEncoder

    leaves = [
        m
        for m in encoder.modules()
        if isinstance(m, VisionEncoder) and not any(isinstance(c, VisionEncoder) for c in list(m.modules())[1:])
    ]
    return leaves or [encoder]


def _tower_arch(tower: nn.Module) -> dict[str, int] | None:
    """hidden_size, intermediate_size and num_hidden_layers of a tower's transformers config."""
    for m in tower.modules():
        c = getattr(m, "config", None)
        if c is not None and all(hasattr(c, k) for k in ("hidden_size", "intermediate_size", "num_hidden_layers")):
            return {k: int(getattr(c, k)) for k in ("hidden_size", "intermediate_size", "num_hidden_layers")}
    return None


def encoder_activations(encoder: nn.Module, frames: int, samples: int, trained: bool, checkpointing: bool) -> float:
    """Numbers an encoder keeps for the backward pass (trained), or its forward's hidden
    states of one media item (frozen), over the cells of `frames` frames of `samples` items."""
    total = 0.0
    for tower in _leaf_encoders(encoder):
        arch = _tower_arch(tower)
        if arch is None:  # a tower without a transformers config: not counted (said in the docstring)
            continue
        t, gh, gw = tower.grid_shape(tower.frames_per_clip)
        tokens = frames / tower.frames_per_clip * t * gh * gw + getattr(tower, "prefix_tokens", 0)
        h, i, layers = arch["hidden_size"], arch["intermediate_size"], arch["num_hidden_layers"]
        if not trained:
            # no autograd, the tower cut at select_layer and read from its last hidden state:
            # one layer's working set at a time (residual, norm output, the MLP's two
            # intermediates), one item at a time. Measured: 0.61 GB for fullsize SigLIP over
            # 16 frames in float32 (this estimate: 0.51; every hidden state kept: 1.50)
            total += tokens * (2 * h + 2 * i)
        elif checkpointing:
            total += samples * tokens * (layers * h + 9 * h + 2 * i)
        else:
            total += samples * tokens * layers * (9 * h + 2 * i)
    return total


def estimate(
    cfg: DictConfig, stage: int, frames: int | None = None, text_tokens: int = 256, model: Model | None = None
) -> dict[str, float]:
    """GB by part of training stage `stage` of a composed config (see the module's docstring);
    `frames`: frames a sample (default: `sampler.max_clips` clips), `text_tokens` of text a sample;
    `model`: the config's `meta_model`, when it is at hand."""
    model = model or meta_model(cfg)
    stages = to_list(cfg.schedule.stages, resolve=True)
    if not 0 <= stage < len(stages):
        raise ValueError(f"stage={stage} is not a stage of schedule={cfg.schedule.name} (0 to {len(stages) - 1})")
    trains = {p: stages[stage]["lr"][p] > 0 for p in PARTS}
    dtypes = weight_dtypes(cfg)  # the precision policy's, as the run builds them
    params = {p: model.params(p) for p in PARTS}
    out = {f"{p}_weights": params[p] * BYTES[dtypes[p]] / GB for p in PARTS}
    trained = sum(params[p] for p in PARTS if trains[p])
    bf16 = "bf16" in str(cfg.trainer.precision) or "16-mixed" in str(cfg.trainer.precision)
    act = 2 if bf16 else 4  # bytes of a kept activation
    out["gradients"] = 4 * trained / GB
    out["adamw"] = 8 * trained / GB
    out["autocast_copies"] = 2 * trained / GB if bf16 else 0.0

    enc = model.encoder
    clips = OmegaConf.select(cfg, "sampler.max_clips", default=64)
    frames = frames if frames is not None else clips * enc.frames_per_clip
    batch = int(cfg.data.batch_size)
    enc_ckpt = bool(cfg.profile.gradient_checkpointing)
    enc_numbers = encoder_activations(enc, frames, batch, trains["vision"], enc_ckpt)
    # a frozen encoder's hidden states are its residual stream: in its weights' dtype (an fp32
    # residual promotes autocast's bf16 outputs back to fp32)
    enc_bytes = act if trains["vision"] else max(act, BYTES[dtypes["vision"]])
    out["encoder_activations" if trains["vision"] else "encoder_forward"] = enc_numbers * enc_bytes / GB
    out.setdefault("encoder_activations", 0.0)
    out.setdefault("encoder_forward", 0.0)

    n_clips = math.ceil(frames / enc.frames_per_clip)
    t, gh, gw = enc.grid_shape(enc.frames_per_clip)
    connector = model.connector
    for p in PARTS:
        getattr(model, "encoder" if p == "vision" else p).requires_grad_(trains[p])
    grid = torch.empty(batch * n_clips, t, gh, gw, enc.embed_dim, device="meta", requires_grad=trains["vision"])
    conn = saved_bytes(lambda: connector(grid), list(connector.parameters()))
    out["connector_activations"] = conn * act / 4 / GB  # traced in float32

    arch = {k: getattr(model.llm.config, k) for k in ("hidden_size", "num_attention_heads", "intermediate_size")}
    arch["num_key_value_heads"] = getattr(model.llm.config, "num_key_value_heads", arch["num_attention_heads"])
    if getattr(model.llm.config, "head_dim", None):
        arch["head_dim"] = model.llm.config.head_dim
    full, kept = activation_numbers(arch)
    per_layer = full if trains["llm"] else frozen_activation_numbers(arch)
    layers = int(model.llm.config.num_hidden_layers)
    tokens = batch * (n_clips * int(connector.tokens_per_clip) + text_tokens)
    if cfg.llm.gradient_checkpointing:
        llm_numbers = tokens * (layers * kept + per_layer)
    else:
        llm_numbers = tokens * layers * per_layer
    out["llm_activations"] = (llm_numbers + tokens * arch["hidden_size"]) * act / GB  # + the input embeddings

    held = sum(out[f"{p}_weights"] for p in PARTS) + out["adamw"]  # all step long
    kept_acts = out["encoder_activations"] + out["connector_activations"] + out["llm_activations"]
    forward = out["autocast_copies"] + max(out["encoder_forward"], kept_acts)
    out["total"] = held + max(forward, out["gradients"])  # the backward frees activations as gradients come
    return out


def measure(cfg: DictConfig, stage: int, steps: int = 2) -> dict[str, Any]:
    """`steps` training steps of stage `stage` on one batch, built as a run builds it, and the
    memory the last one took: on a GPU the allocator's peak, on a CPU the peak resident set,
    less what was there before the model was built (a fresh process gives the truest
    number). The estimate is of a step after the first (AdamW's moments exist from the first
    step's end). Steps by hand: forward, backward, the stage's AdamW step (no Trainer)."""
    import lightning as L

    from src.run.build import build_module, build_parts
    from src.run.throughput import cpu_rss_gb, peak_memory_gb, reset_peak_memory

    gpu = str(cfg.trainer.accelerator) == "gpu"
    device = torch.device("cuda" if gpu else "cpu")
    L.seed_everything(cfg.seed, verbose=False)
    before = torch.cuda.memory_allocated() / GB if gpu else cpu_rss_gb()
    start = time.perf_counter()
    parts = build_parts(cfg)
    module = build_module(cfg, parts.model, parts.option_token_ids, stage=stage).to(device)
    module.apply_stage(to_dict(cfg.schedule.stages[stage], resolve=True), index=stage)
    data = parts.datamodule
    data.use_stage(stage, cfg.schedule.stages[stage].data)
    batch = next(iter(data.train_dataloader()))
    optimizer = module.optimizer_factory(module.param_groups())
    built = torch.cuda.memory_allocated() / GB if gpu else cpu_rss_gb()
    build_seconds, start = time.perf_counter() - start, time.perf_counter()
    for _ in range(steps):
        optimizer.zero_grad(set_to_none=True)
        reset_peak_memory(device)
        with torch.autocast(device.type, torch.bfloat16, enabled=gpu and "bf16" in str(cfg.trainer.precision)):
            loss = module.model.loss(batch)
        loss.backward()
        optimizer.step()
    peak = peak_memory_gb(device)
    step_seconds = (time.perf_counter() - start) / steps
    return {
        "peak_gb": round(peak - before, 3),
        "built_gb": round(built - before, 3),
        "memory": "cuda_max_allocated" if gpu else "cpu_peak_rss",
        "samples": len(batch.ids),
        "frames": sum(int(m.shape[0] * m.shape[1]) for ms in batch.media for m in ms),
        "build_seconds": round(build_seconds, 1),
        "step_seconds": round(step_seconds, 1),
    }


def _gb(x: float) -> str:
    return f"{x:.1f}"


def compose_cfg(overrides: Sequence[str]) -> DictConfig:
    """conf/train.yaml composed with `overrides`, as `python -m src.train` composes it."""
    from hydra import compose, initialize_config_dir

    from src.config.compose import CONF_DIR
    from src.config.resolvers import register

    register()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("train", overrides=list(overrides))


def stage_table(cfg: DictConfig, frames: int | None, text_tokens: int) -> None:
    """Each part's GB per stage of one composed config."""
    names = [s.name for s in cfg.schedule.stages]
    model = meta_model(cfg)
    rows = [estimate(cfg, i, frames, text_tokens, model) for i in range(len(names))]
    print(f"| part | {' | '.join(names)} |")
    print("|---|" + "---|" * len(names))
    for key in rows[0]:
        cells = [f"**{_gb(r[key])}**" if key == "total" else _gb(r[key]) for r in rows]
        print(f"| {key} | {' | '.join(cells)} |")


SIZES = ("profile=pretrained", "trainer=gpu", "data.batch_size=1")  # the paper's schedule, one sample a step


def sizes_table(frames: int | None, text_tokens: int) -> None:
    """Each LLM option's total GB per stage of `profile=pretrained`'s schedule on a GPU."""
    first = compose_cfg(SIZES)
    names = [s.name for s in first.schedule.stages]
    print(f"| llm | {' | '.join(names)} | weights, stage 1: encoder / connector / llm |")
    print("|---|" + "---|" * len(names) + "---|")
    for option in group_options("llm"):
        cfg = compose_cfg([*SIZES, f"llm={option}"])
        model = meta_model(cfg)
        rows = [estimate(cfg, i, frames, text_tokens, model) for i in range(len(names))]
        w = rows[0]
        totals = " | ".join(f"{r['total']:.0f} GB" for r in rows)
        print(
            f"| {option} | {totals} "
            f"| {_gb(w['vision_weights'])} / {_gb(w['connector_weights'])} / {_gb(w['llm_weights'])} GB |"
        )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m src.tools.memory", description=__doc__.split("\n")[0])
    p.add_argument("--tokens", type=int, default=4096, help="tokens of one sequence (default 4096)")
    p.add_argument("--encoder-gb", type=float, default=0.9, help="the frozen vision encoder's bf16 weights")
    p.add_argument("overrides", nargs="*", help="config overrides (group=option ...): a table by part and stage")
    p.add_argument("--frames", type=int, default=None, help="frames a sample (default: sampler.max_clips clips)")
    p.add_argument("--text-tokens", type=int, default=256, help="text tokens a sample (default 256)")
    p.add_argument("--measure", type=int, default=None, metavar="STAGE", help="measure a step of this stage")
    p.add_argument("--steps", type=int, default=2, help="steps --measure takes; the last one's peak (default 2)")
    p.add_argument("--stages", action="store_true", help="each llm option's total per stage (profile=pretrained)")
    args = p.parse_args(argv)
    if args.measure is not None:
        print(json.dumps(measure(compose_cfg(args.overrides), args.measure, args.steps)))
        return 0
    if args.overrides:
        stage_table(compose_cfg(args.overrides), args.frames, args.text_tokens)
        return 0
    if args.stages:
        sizes_table(args.frames, args.text_tokens)
        return 0
    print(
        f"| llm | params | weights+grads+AdamW bf16 / fp32 | activations, {args.tokens} tokens: "
        "checkpointing on / off | total: bf16 + checkpointing | bf16, no checkpointing "
        "| fp32 + checkpointing |"
    )
    print("|---|---|---|---|---|---|---|")
    for option in group_options("llm"):
        e = llm_estimate(option, args.tokens)
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
    sys.exit(main())
