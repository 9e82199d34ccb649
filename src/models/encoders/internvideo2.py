"""InternVideo2's video ViT (the 1B vision encoder), written here: no class of it in transformers.

After OpenGVLab's `PretrainInternVideo2` (InternVideo2/multi_modality/models/backbones/
internvideo2/internvideo2.py), the encoder the Apollo paper uses (InternVideo2-1B, 4 frames
at 224 px). What is kept, module for module and with the official parameter names:
  - a 3-D patch embedding, Conv3d with kernel (tubelet 1, 14, 14): every frame is its own
    time step, so a clip of T frames gives a (T, 16, 16) grid;
  - a CLS token and one joint space-time position embedding (1 + T*h*w positions),
    initialised with 3-D sine-cosine tables as in the official code;
  - 40 pre-norm blocks (width 1408, 16 heads, MLP ratio 48/11 = 6144) with RMSNorm, no qkv
    bias, query/key RMSNorm over the full width (qk_normalization), LayerScale (1e-5);
  - `forward(video, x_vis_return_idx, x_vis_only=True)`: the official call, returning the
    tokens (CLS first) after block `depth + x_vis_return_idx` (-2: the penultimate block).
What is left out: the attention-pooling head (`clip_projector`) and the CLIP-distillation
decoders, pretraining heads that are not on the path to the patch features a video LMM
uses; and drop path (0 at inference). The file imports only torch and transformers, so a
model saved from it carries it as its remote code.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PretrainedConfig, PreTrainedModel
from transformers import initialization as init
from transformers.modeling_layers import GradientCheckpointingLayer


class InternVideo2Config(PretrainedConfig):
    """Sizes of the ViT; defaults are InternVideo2-1B at 224 px, 4 frames."""

    model_type = "apollo_internvideo2"
    # the official config's names for the same numbers
    attribute_map: ClassVar[dict[str, str]] = {
        "d_model": "hidden_size",
        "img_size": "image_size",
        "depth": "num_hidden_layers",
    }

    def __init__(
        self,
        hidden_size: int = 1408,
        intermediate_size: int = 6144,
        num_hidden_layers: int = 40,
        num_attention_heads: int = 16,
        image_size: int = 224,
        patch_size: int = 14,
        num_frames: int = 4,
        tubelet_size: int = 1,
        qkv_bias: bool = False,
        qk_normalization: bool = True,
        layerscale_init: float = 1e-5,
        rms_norm_eps: float = 1e-6,
        initializer_range: float = 0.02,
        **kwargs,
    ) -> None:
        self.hidden_size = hidden_size
        self.intermediate_size = intermediate_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.image_size = image_size
        self.patch_size = patch_size
        self.num_frames = num_frames
        self.tubelet_size = tubelet_size
        self.qkv_bias = qkv_bias
        self.qk_normalization = qk_normalization
        self.layerscale_init = layerscale_init
        self.rms_norm_eps = rms_norm_eps
        self.initializer_range = initializer_range
        super().__init__(**kwargs)


def _sincos_1d(width: int, positions: torch.Tensor) -> torch.Tensor:
    """(len(positions), width) sine-cosine table; an odd width drops the last cosine."""
    half = max(1, math.ceil(width / 2))
    omega = 1.0 / 10000 ** (torch.arange(half, dtype=torch.float64) / half)
    angles = positions.double()[:, None] * omega[None]
    return torch.cat([angles.sin(), angles.cos()], dim=1)[:, :width].float()


def sincos_3d(width: int, t: int, h: int, w: int) -> torch.Tensor:
    """(1 + t*h*w, width): a zero row for the CLS token, then time, height, width tables.

    As in InternVideo2 (after MAE-ST): a quarter of the channels encode time, the rest
    space, split evenly between rows and columns.
    """
    w_t = width // 4
    w_h = (width - w_t) // 2
    w_w = width - w_t - w_h
    tt, hh, ww = torch.meshgrid(torch.arange(t), torch.arange(h), torch.arange(w), indexing="ij")
    table = torch.cat(
        [_sincos_1d(w_t, tt.flatten()), _sincos_1d(w_h, hh.flatten()), _sincos_1d(w_w, ww.flatten())], dim=1
    )
    return torch.cat([torch.zeros(1, width), table])


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        x = x.float()
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x.to(dtype)


class LayerScale(nn.Module):
    def __init__(self, dim: int, value: float) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.full((dim,), value))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


class Attention(nn.Module):
    def __init__(self, config: InternVideo2Config) -> None:
        super().__init__()
        dim = config.hidden_size
        self.num_heads = config.num_attention_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=config.qkv_bias)
        self.proj = nn.Linear(dim, dim)
        # the official query/key norm works on the whole width, before the split into heads
        norm = RMSNorm if config.qk_normalization else None
        self.q_norm = norm(dim, config.rms_norm_eps) if norm else nn.Identity()
        self.k_norm = norm(dim, config.rms_norm_eps) if norm else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        q, k = self.q_norm(q), self.k_norm(k)
        q, k, v = (y.view(b, n, self.num_heads, -1).transpose(1, 2) for y in (q, k, v))
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(b, n, c))


class Mlp(nn.Module):
    def __init__(self, config: InternVideo2Config) -> None:
        super().__init__()
        self.fc1 = nn.Linear(config.hidden_size, config.intermediate_size)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(config.intermediate_size, config.hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(GradientCheckpointingLayer):
    def __init__(self, config: InternVideo2Config, index: int) -> None:
        super().__init__()
        dim, eps = config.hidden_size, config.rms_norm_eps
        self.norm1 = RMSNorm(dim, eps)
        self.attn = Attention(config)
        self.ls1 = LayerScale(dim, config.layerscale_init)
        self.norm2 = RMSNorm(dim, eps)
        self.mlp = Mlp(config)
        self.ls2 = LayerScale(dim, config.layerscale_init)
        # the official init shrinks the residual branches' output projections with depth
        # (a plain float attribute: torch's stubs type a module's attributes as tensors or modules)
        for linear in (self.attn.proj, self.mlp.fc2):
            linear.init_scale = 1.0 / math.sqrt(2.0 * (index + 1))  # type: ignore[assignment]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.ls1(self.attn(self.norm1(x)))
        return x + self.ls2(self.mlp(self.norm2(x)))


class PatchEmbed(nn.Module):
    def __init__(self, config: InternVideo2Config) -> None:
        super().__init__()
        kernel = (config.tubelet_size, config.patch_size, config.patch_size)
        self.proj = nn.Conv3d(3, config.hidden_size, kernel_size=kernel, stride=kernel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, T, H, W) -> (B, t*h*w, D), time-major."""
        return self.proj(x).flatten(2).transpose(1, 2)


class InternVideo2Model(PreTrainedModel):
    """forward: video (B, 3, T, H, W) -> tokens (B, 1 + t*h*w, D), CLS first."""

    config_class = InternVideo2Config
    base_model_prefix = "internvideo2"
    main_input_name = "pixel_values"
    supports_gradient_checkpointing = True

    def __init__(self, config: InternVideo2Config) -> None:
        super().__init__(config)
        grid = config.image_size // config.patch_size
        self.grid_thw = (config.num_frames // config.tubelet_size, grid, grid)
        self.patch_embed = PatchEmbed(config)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, config.hidden_size))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + math.prod(self.grid_thw), config.hidden_size))
        self.blocks = nn.ModuleList(Block(config, i) for i in range(config.num_hidden_layers))
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        std = self.config.initializer_range
        if isinstance(module, nn.Linear):
            init.trunc_normal_(module.weight, std=std * getattr(module, "init_scale", 1.0))
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.Conv3d):
            init.trunc_normal_(module.weight, std=std)
            if module.bias is not None:  # the patch embedding's has one
                init.zeros_(module.bias)
        elif isinstance(module, RMSNorm):
            init.ones_(module.weight)
        elif isinstance(module, LayerScale):
            init.constant_(module.gamma, self.config.layerscale_init)
        elif isinstance(module, InternVideo2Model):
            init.trunc_normal_(module.cls_token, std=std)
            init.copy_(module.pos_embed, sincos_3d(self.config.hidden_size, *module.grid_thw)[None])

    def forward(self, pixel_values: torch.Tensor, x_vis_return_idx: int = -1, x_vis_only: bool = True) -> torch.Tensor:
        if not x_vis_only:
            raise NotImplementedError(
                "the attention-pooling and CLIP-distillation heads are not "
                "part of this implementation: call with x_vis_only=True"
            )
        x = self.patch_embed(pixel_values.to(self.patch_embed.proj.weight.dtype))
        x = torch.cat([self.cls_token.expand(len(x), -1, -1), x], dim=1) + self.pos_embed
        stop = len(self.blocks) + x_vis_return_idx  # the last block to run; -1: none
        for block in self.blocks[: stop + 1]:
            x = block(x)
        return x
