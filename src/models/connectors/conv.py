"""The 2-layer convolutional projector: vision features to the LLM's width, frame by frame."""

from __future__ import annotations

import torch
from torch import nn


class ConvProjector(nn.Module):
    """(N, t, h, w, D_in) -> (N, t, h, w, D_llm): `depth` k x k convolutions over each frame's grid.

    The "2-layer 2D Conv" of Apollo's Table 1 (paired there with average pooling): unlike
    the MLP projector, each output cell mixes its k x k neighbourhood of the frame's
    h x w grid. Padding keeps the grid's size, so a resampler after it sees the same
    grid; a GELU sits between the convolutions, as between the MLP's layers.
    """

    def __init__(
        self, input_dim: int, output_dim: int, depth: int = 2, kernel_size: int = 3, name: str = "conv2"
    ) -> None:
        super().__init__()
        if kernel_size % 2 == 0:
            raise ValueError(f"conv projector kernel_size={kernel_size} must be odd (to keep the grid size)")
        self.name = name
        layers: list[nn.Module] = [nn.Conv2d(input_dim, output_dim, kernel_size, padding=kernel_size // 2)]
        for _ in range(depth - 1):
            layers += [nn.GELU(), nn.Conv2d(output_dim, output_dim, kernel_size, padding=kernel_size // 2)]
        self.net = nn.Sequential(*layers)

    def forward(self, grid: torch.Tensor) -> torch.Tensor:
        if grid.dim() != 5:
            raise ValueError(f"the conv projector needs a (N, t, h, w, D) grid, got {tuple(grid.shape)}")
        n, t, h, w, d = grid.shape
        x = self.net(grid.reshape(n * t, h, w, d).permute(0, 3, 1, 2))  # (N*t, D_llm, h, w)
        return x.permute(0, 2, 3, 1).reshape(n, t, h, w, -1)
