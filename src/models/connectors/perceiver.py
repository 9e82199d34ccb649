"""The Perceiver Resampler: a fixed number of tokens per clip, whatever the grid."""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar, cast

import torch
from torch import nn

from src.config.constraints import Constraints, Rule, positive_int


def _feed_forward(dim: int, mult: int = 4) -> nn.Module:
    return nn.Sequential(
        nn.LayerNorm(dim), nn.Linear(dim, dim * mult, bias=False), nn.GELU(), nn.Linear(dim * mult, dim, bias=False)
    )


class PerceiverAttention(nn.Module):
    """Latents attend to [features; latents] (Flamingo's layout)."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"perceiver width {dim} is not divisible by heads={heads}")
        self.heads = heads
        self.norm_x = nn.LayerNorm(dim)
        self.norm_latents = nn.LayerNorm(dim)
        self.to_q = nn.Linear(dim, dim, bias=False)
        self.to_kv = nn.Linear(dim, 2 * dim, bias=False)
        self.to_out = nn.Linear(dim, dim, bias=False)

    def forward(self, x: torch.Tensor, latents: torch.Tensor) -> torch.Tensor:
        """x (N, L, D), latents (N, n, D) -> (N, n, D)."""
        x, latents = self.norm_x(x), self.norm_latents(latents)
        n, q_len, d = latents.shape
        q = self.to_q(latents)
        k, v = self.to_kv(torch.cat([x, latents], dim=1)).chunk(2, dim=-1)
        split = lambda t: t.view(n, t.shape[1], self.heads, d // self.heads).transpose(1, 2)  # noqa: E731
        out = nn.functional.scaled_dot_product_attention(split(q), split(k), split(v))
        return self.to_out(out.transpose(1, 2).reshape(n, q_len, d))


class PerceiverResampler(nn.Module):
    """(N, t, h, w, D) -> (N, tokens_per_clip, D): the t·h·w tokens of a clip resampled.

    The open_flamingo resampler, per clip: `tokens_per_clip` learned latents cross-attend
    to the clip's tokens (plus themselves) through `depth` attention + feed-forward
    blocks. A learned embedding of each token's frame within the clip keeps time order.
    """

    CONSTRAINTS: ClassVar[Constraints] = Constraints(
        Rule("tokens_per_clip", positive_int, "an integer > 0"),
        Rule("depth", positive_int, "an integer > 0"),
        Rule("heads", positive_int, "an integer > 0"),
    )

    def __init__(
        self,
        dim: int,
        tokens_per_clip: int = 16,
        depth: int = 2,
        heads: int = 8,
        max_frames: int = 64,
        name: str = "perceiver",
    ) -> None:
        super().__init__()
        self.name = name
        self.tokens_per_clip = tokens_per_clip
        self.latents = nn.Parameter(torch.randn(tokens_per_clip, dim) * 0.02)
        self.frame_embed = nn.Parameter(torch.zeros(max_frames, dim))
        self.layers = nn.ModuleList(
            nn.ModuleList([PerceiverAttention(dim, heads), _feed_forward(dim)]) for _ in range(depth)
        )
        self.norm = nn.LayerNorm(dim)

    def forward(self, grid: torch.Tensor) -> torch.Tensor:
        n, t, h, w, d = grid.shape
        x = (grid + self.frame_embed[:t, None, None]).reshape(n, t * h * w, d)
        latents = self.latents.expand(n, -1, -1)
        for attn, ff in cast("Iterable[nn.ModuleList]", self.layers):  # [attention, feed-forward] each
            latents = latents + attn(x, latents)
            latents = latents + ff(latents)
        return self.norm(latents)
