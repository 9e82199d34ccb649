"""Projectors: vision features to the LLM's width, token by token."""

from __future__ import annotations

import torch
from torch import nn


class MLPProjector(nn.Module):
    """LLaVA's `mlp{depth}x_gelu`: (N, L, D_in) -> (N, L, D_llm)."""

    def __init__(self, input_dim: int, output_dim: int, depth: int = 2, name: str = "mlp") -> None:
        super().__init__()
        self.name = name
        layers: list[nn.Module] = [nn.Linear(input_dim, output_dim)]
        for _ in range(depth - 1):
            layers += [nn.GELU(), nn.Linear(output_dim, output_dim)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
