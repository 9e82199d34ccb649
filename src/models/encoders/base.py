"""The vision-encoder interface: frames in, a feature grid out."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class VisionEncoder(nn.Module):
    """A vision tower behind one interface.

    encode: uint8 frames (N, T, H, W, C) -> features (N, t, h, w, D), through
    preprocess (resize and normalise as the checkpoint expects: (N, T, C, S, S) float)
    and forward. N clips of T frames each; image encoders encode every frame on its own
    (t = T), video encoders embed `tubelet` frames per time step (t = T / tubelet).
    Subclasses declare:
      - `frames_per_clip`: T, the clip length the sampler must produce (1: an image encoder);
      - `embed_dim`: D;
      - `grid`: h = w, the side of the patch grid; `tubelet`: frames per time step;
      - `input_size`, `image_mean`, `image_std`: the preprocessing of the checkpoint.
    """

    name: str
    frames_per_clip: int
    embed_dim: int
    grid: int
    tubelet: int = 1
    input_size: int
    image_mean: tuple[float, ...]  # one per channel (3)
    image_std: tuple[float, ...]

    def grid_shape(self, frames: int) -> tuple[int, int, int]:
        """(t, h, w) of the feature grid of one clip of `frames` frames."""
        return frames // self.tubelet, self.grid, self.grid

    def preprocess(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 (N, T, H, W, C) -> normalised float (N, T, C, S, S) at the checkpoint's size."""
        n, t, h, w, c = frames.shape
        x = frames.reshape(n * t, h, w, c).permute(0, 3, 1, 2).float().div_(255.0)
        if (h, w) != (self.input_size, self.input_size):
            x = F.interpolate(x, size=(self.input_size, self.input_size),
                              mode="bilinear", align_corners=False, antialias=True)
        mean = x.new_tensor(self.image_mean).view(1, 3, 1, 1)
        std = x.new_tensor(self.image_std).view(1, 3, 1, 1)
        x = (x - mean) / std
        return x.reshape(n, t, c, self.input_size, self.input_size)

    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 frames (N, T, H, W, C) -> features (N, t, h, w, D), in the weights' dtype."""
        dtype = next(self.parameters()).dtype  # bf16 weights take bf16 pixels (not every model casts)
        return self(self.preprocess(frames).to(dtype))


def check_select_layer(select_layer: int, num_layers: int, name: str) -> None:
    """`select_layer` indexes the L + 1 hidden states (embeddings, then each layer's output)."""
    if not -(num_layers + 1) <= select_layer <= num_layers:
        raise ValueError(f"encoder {name}: select_layer={select_layer} is out of range for its "
                         f"{num_layers} layers; valid: {-(num_layers + 1)} to {num_layers}")
