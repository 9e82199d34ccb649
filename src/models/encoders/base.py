"""The vision-encoder interface: frames in, a feature grid out."""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from omegaconf import DictConfig, OmegaConf
from torch import nn

from src.config.constraints import Constraints, Rule, join, positive_int
from src.config.errors import ConfigError
from src.models.shrink import loads_checkpoint, shrunk_depth


def check_encoder(node: DictConfig, key: str, root: DictConfig) -> None:
    """Remote code needs the user's consent; `select_layer` names a layer the tower has.

    An option that loads its checkpoint's own code says so with a `trust_remote_code` key
    (a pair passes its value on to such a member, and says so first). A checkpoint's depth
    is known once it loads; a replica's is its option's `arch` after the profile's shrink.
    """
    profile = root.profile
    if loads_checkpoint(profile) and node.get("trust_remote_code") is False:
        raise ConfigError(
            f"{join(key, 'trust_remote_code')}=false is invalid with profile={profile.name}: "
            f"encoder={node.name} runs its checkpoint's own Python code; valid: true "
            f"(set {join(key, 'trust_remote_code')}=true to allow it)"
        )
    layer, depth = node.get("select_layer"), OmegaConf.select(node, "arch.num_hidden_layers")
    if loads_checkpoint(profile) or layer is None or depth is None:
        return
    depth = shrunk_depth(depth, profile)
    if not isinstance(layer, int) or not -(depth + 1) <= layer <= depth:
        raise ConfigError(
            f"{join(key, 'select_layer')}={layer!r} is invalid; valid: an integer from "
            f"{-(depth + 1)} to {depth} (the {profile.name} {node.name} has {depth} layers)"
        )


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

    CONSTRAINTS: ClassVar[Constraints] = Constraints(
        Rule("frames_per_clip", positive_int, "an integer > 0"), check=check_encoder
    )

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
            x = F.interpolate(
                x, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False, antialias=True
            )
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
        raise ValueError(
            f"encoder {name}: select_layer={select_layer} is out of range for its "
            f"{num_layers} layers; valid: {-(num_layers + 1)} to {num_layers}"
        )
