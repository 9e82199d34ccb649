"""The connector: a projector to the LLM's width, then a resampler to a fixed token count."""

from __future__ import annotations

from typing import cast

import torch
from torch import nn


class Connector(nn.Module):
    """(N, t, h, w, D_in) feature grid of N clips -> (N, tokens_per_clip, D_llm) tokens.

    The projector maps every grid cell to the LLM's width; the resampler takes the
    projected grid (N, t, h, w, D_llm) to tokens_per_clip tokens.
    """

    def __init__(self, projector: nn.Module, resampler: nn.Module) -> None:
        super().__init__()
        self.projector = projector
        self.resampler = resampler
        self.tokens_per_clip = cast(int, resampler.tokens_per_clip)  # every resampler's int

    def forward(self, grid: torch.Tensor) -> torch.Tensor:
        return self.resampler(self.projector(grid))
