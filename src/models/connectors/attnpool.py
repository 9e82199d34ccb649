"""Attentive pooling as a resampler: learned queries read a clip's tokens in one cross-attention."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from src.config.constraints import Constraints, Rule, positive_int


class AttnPoolResampler(nn.Module):
    """(N, t, h, w, D) -> (N, tokens_per_clip, D): one multi-head cross-attention, no feed-forward.

    The attentional pooler of CoCa (Yu et al., 2022), also V-JEPA's attentive probe:
    `tokens_per_clip` learned queries attend once to the clip's t·h·w tokens. It is the
    Perceiver Resampler cut to its core (one layer, queries that do not attend to
    themselves, no feed-forward stack), so it shows what the Perceiver's depth buys. As in
    the Perceiver, a learned embedding of each token's frame within the clip keeps time order.
    """

    CONSTRAINTS: ClassVar[Constraints] = Constraints(
        Rule("tokens_per_clip", positive_int, "an integer > 0"),
        Rule("heads", positive_int, "an integer > 0"),
    )

    def __init__(
        self, dim: int, tokens_per_clip: int = 16, heads: int = 8, max_frames: int = 64, name: str = "attnpool"
    ) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"attnpool width {dim} is not divisible by heads={heads}")
        self.name = name
        self.tokens_per_clip = tokens_per_clip
        self.queries = nn.Parameter(torch.randn(tokens_per_clip, dim) * 0.02)
        self.frame_embed = nn.Parameter(torch.zeros(max_frames, dim))
        self.norm_x = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, bias=False, batch_first=True)
        self.norm = nn.LayerNorm(dim)

    def forward(self, grid: torch.Tensor) -> torch.Tensor:
        n, t, h, w, d = grid.shape
        x = self.norm_x((grid + self.frame_embed[:t, None, None]).reshape(n, t * h * w, d))
        q = self.queries.expand(n, -1, -1)
        out, _ = self.attn(q, x, x, need_weights=False)
        return self.norm(q + out)
