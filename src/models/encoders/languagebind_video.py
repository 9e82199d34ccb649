"""LanguageBind's video tower, written here: no class of it in transformers.

After PKU-YuanGroup's `LanguageBindVideo` (languagebind/video/modeling_video.py): a CLIP
ViT-L/14 at 224 px whose every encoder layer gains, before its spatial self-attention, a
temporal step over the clip's 8 frames: a learned per-layer temporal embedding added to
the residual stream, then pre-norm self-attention across time at each patch position
(`temporal_layer_norm1`, `temporal_attn`; no temporal MLP). Frames stay separate time
steps, so a clip of 8 frames gives an (8, 16, 16) grid (CLS dropped). Parameter names
follow the official ones (`vision_model.encoder.layers.N.temporal_attn...`). Left out:
the text tower, the projection to the joint space, patch dropout and LoRA (training-time
options). The spatial parts are transformers' own CLIP modules. The file imports only
torch and transformers, so a model saved from it carries it as its remote code.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import PretrainedConfig
from transformers import initialization as init
from transformers.modeling_outputs import BaseModelOutputWithPooling
from transformers.models.clip.modeling_clip import (
    CLIPAttention,
    CLIPEncoderLayer,
    CLIPPreTrainedModel,
    CLIPVisionEmbeddings,
)


class LanguageBindVideoConfig(PretrainedConfig):
    """CLIP vision sizes plus the clip length; defaults are LanguageBind-Video (CLIP-L/14, 8 frames)."""

    model_type = "apollo_languagebind_video"

    def __init__(
        self,
        hidden_size: int = 1024,
        intermediate_size: int = 4096,
        num_hidden_layers: int = 24,
        num_attention_heads: int = 16,
        image_size: int = 224,
        patch_size: int = 14,
        num_frames: int = 8,
        num_channels: int = 3,
        hidden_act: str = "quick_gelu",
        layer_norm_eps: float = 1e-5,
        attention_dropout: float = 0.0,
        initializer_range: float = 0.02,
        initializer_factor: float = 1.0,
        **kwargs,
    ) -> None:
        self.hidden_size = hidden_size
        self.intermediate_size = intermediate_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.image_size = image_size
        self.patch_size = patch_size
        self.num_frames = num_frames
        self.num_channels = num_channels
        self.hidden_act = hidden_act
        self.layer_norm_eps = layer_norm_eps
        self.attention_dropout = attention_dropout
        self.initializer_range = initializer_range
        self.initializer_factor = initializer_factor
        super().__init__(**kwargs)


class LanguageBindVideoLayer(CLIPEncoderLayer):
    """A CLIP encoder layer with LanguageBind's temporal attention in front: ((B T), N, D) -> same."""

    def __init__(self, config: LanguageBindVideoConfig) -> None:
        # (transformers types CLIP's modules with CLIP's configs; this one has the same fields)
        super().__init__(config)  # type: ignore[arg-type]
        self.num_frames = config.num_frames
        self.temporal_embedding = nn.Parameter(torch.zeros(1, config.num_frames, config.hidden_size))
        self.temporal_attn = CLIPAttention(config)  # type: ignore[arg-type]
        self.temporal_layer_norm1 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(
        self, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None = None, **kwargs
    ) -> torch.Tensor:
        bt, n, d = hidden_states.shape
        t = self.num_frames
        # every patch position attends over the clip's frames: (b t) n d -> (b n) t d
        x = hidden_states.view(bt // t, t, n, d).transpose(1, 2).reshape(-1, t, d)
        if t > 1:  # as the official layer: no time embedding on a single frame
            x = x + self.temporal_embedding[:, :t]
        attended, _ = self.temporal_attn(self.temporal_layer_norm1(x))
        x = x + attended
        x = x.view(bt // t, n, t, d).transpose(1, 2).reshape(bt, n, d)
        return super().forward(x, attention_mask, **kwargs)  # type: ignore[arg-type]  # None: no mask


class _Encoder(nn.Module):
    def __init__(self, config: LanguageBindVideoConfig) -> None:
        super().__init__()
        self.layers = nn.ModuleList(LanguageBindVideoLayer(config) for _ in range(config.num_hidden_layers))


class _VisionTransformer(nn.Module):
    def __init__(self, config: LanguageBindVideoConfig) -> None:
        super().__init__()
        self.embeddings = CLIPVisionEmbeddings(config)  # type: ignore[arg-type]
        self.pre_layrnorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.encoder = _Encoder(config)
        self.post_layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)


class LanguageBindVideoModel(CLIPPreTrainedModel):
    """forward: video (B, 3, T, H, W) -> hidden states ((B T), 1 + h*w, D), CLS first per frame."""

    config: LanguageBindVideoConfig  # type: ignore[assignment]  # CLIP's fields, not a CLIPConfig
    config_class = LanguageBindVideoConfig
    main_input_name = "pixel_values"
    input_modalities = ("video",)  # type: ignore[assignment]  # CLIP's are ("image", "text")

    def __init__(self, config: LanguageBindVideoConfig) -> None:
        super().__init__(config)
        self.vision_model = _VisionTransformer(config)
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        if isinstance(module, LanguageBindVideoLayer):
            init.normal_(module.temporal_embedding, std=self.config.hidden_size**-0.5)

    def forward(
        self, pixel_values: torch.Tensor, output_hidden_states: bool = False, **kwargs
    ) -> BaseModelOutputWithPooling:
        b, c, t, h, w = pixel_values.shape
        vm = self.vision_model
        frames = pixel_values.transpose(1, 2).reshape(b * t, c, h, w)
        x = vm.pre_layrnorm(vm.embeddings(frames))
        states = [x]
        for layer in vm.encoder.layers:
            x = layer(x, None)
            states.append(x)
        # the official pooled output: the post-normed CLS, averaged over the frames
        pooled = vm.post_layernorm(x[:, 0]).view(b, t, -1).mean(1)
        return BaseModelOutputWithPooling(
            last_hidden_state=x, pooler_output=pooled, hidden_states=tuple(states) if output_hidden_states else None
        )
