"""Average pooling as a resampler: the grid pooled to a fixed number of tokens per clip."""

from __future__ import annotations

import math

import torch
from torch import nn


class AvgPoolResampler(nn.Module):
    """(N, t, h, w, D) -> (N, tokens_per_clip, D): time averaged, space adaptively pooled.

    `tokens_per_clip` must be a square (1, 4, 9, 16, ...): the clip's frames are
    averaged and the h x w grid is pooled to sqrt(tokens) x sqrt(tokens) cells, so each
    token keeps where in the frame it came from.
    """

    def __init__(self, dim: int, tokens_per_clip: int = 16, name: str = "avgpool") -> None:
        super().__init__()
        side = math.isqrt(tokens_per_clip)
        if side * side != tokens_per_clip:
            raise ValueError(f"avgpool needs a square tokens_per_clip, got {tokens_per_clip}")
        self.name = name
        self.tokens_per_clip = tokens_per_clip
        self.pool = nn.AdaptiveAvgPool2d(side)

    def forward(self, grid: torch.Tensor) -> torch.Tensor:
        n, t, h, w, d = grid.shape
        x = grid.mean(1).permute(0, 3, 1, 2)  # (N, D, h, w)
        return self.pool(x).flatten(2).transpose(1, 2)
