"""Average pooling as a resampler: the grid pooled to a fixed number of tokens per clip."""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from omegaconf import DictConfig
from torch import nn

from src.config.constraints import Constraints, Rule, is_int, join, positive_int
from src.config.errors import ConfigError


def is_square(n: int) -> bool:
    return math.isqrt(n) ** 2 == n


def check_square(node: DictConfig, key: str, root: DictConfig) -> None:
    """Space is pooled to a side x side grid: the token count is a square."""
    n = node.tokens_per_clip
    if is_int(n) and n > 0 and not is_square(n):
        near = sorted({max(1, math.isqrt(n)) ** 2, (math.isqrt(n) + 1) ** 2})
        raise ConfigError(
            f"{join(key, 'tokens_per_clip')}={n} is invalid for {key}={node.name}; valid: "
            f"a square (1, 4, 9, 16, ...), e.g. {' or '.join(map(str, near))}"
        )


class AvgPoolResampler(nn.Module):
    """(N, t, h, w, D) -> (N, tokens_per_clip, D): time averaged, space adaptively pooled.

    `tokens_per_clip` must be a square (1, 4, 9, 16, ...): the clip's frames are
    averaged and the h x w grid is pooled to sqrt(tokens) x sqrt(tokens) cells, so each
    token keeps where in the frame it came from.
    """

    CONSTRAINTS: ClassVar[Constraints] = Constraints(
        Rule("tokens_per_clip", positive_int, "an integer > 0"), check=check_square
    )

    def __init__(self, dim: int, tokens_per_clip: int = 16, name: str = "avgpool") -> None:
        super().__init__()
        side = math.isqrt(tokens_per_clip)
        if not is_square(tokens_per_clip):
            raise ValueError(f"avgpool needs a square tokens_per_clip, got {tokens_per_clip}")
        self.name = name
        self.tokens_per_clip = tokens_per_clip
        self.pool = nn.AdaptiveAvgPool2d(side)

    def forward(self, grid: torch.Tensor) -> torch.Tensor:
        n, t, h, w, d = grid.shape
        x = grid.mean(1).permute(0, 3, 1, 2)  # (N, D, h, w)
        return self.pool(x).flatten(2).transpose(1, 2)
