"""Image encoders from transformers (SigLIP, DINOv2, CLIP): every frame encoded on its own."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any, cast

import torch
from hydra.utils import get_class

from src.models.encoders.base import VisionEncoder, cut_tower, load_tower
from src.models.shrink import loads_checkpoint, shrink_arch, shrink_vision_input

if TYPE_CHECKING:
    from transformers import PreTrainedModel


class HFImageEncoder(VisionEncoder):
    """A transformers vision tower, tiny (random weights, shrunk config) or pretrained.

    forward: (N, T, C, S, S) -> (N, T, h, w, D) with h = w = S / patch, taken from the
    hidden states of layer `select_layer` (the paper's -2, the penultimate layer), with
    the `prefix_tokens` (CLS, registers) dropped. The tower is cut there when it is built
    (`cut_tower`): its last hidden state is that one, and nothing after it is kept.
    """

    def __init__(
        self,
        name: str,
        model_class: str,
        config_class: str,
        pretrained: str,
        arch: Mapping[str, Any],
        input_size: int,
        image_mean: Sequence[float],
        image_std: Sequence[float],
        profile: Mapping[str, Any],
        frames_per_clip: int = 1,
        select_layer: int = -2,
        prefix_tokens: int = 0,
        arch_extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        missing: list[str] = []
        self.name = name
        self.frames_per_clip = frames_per_clip
        self.select_layer = select_layer
        self.prefix_tokens = prefix_tokens
        self.image_mean = tuple(image_mean)
        self.image_std = tuple(image_std)
        if loads_checkpoint(profile):
            model_type = cast("type[PreTrainedModel]", get_class(model_class))
            self.model, missing = load_tower(partial(model_type.from_pretrained, pretrained))
            self.input_size = input_size
        else:
            cfg = shrink_arch(arch, profile)
            size, patch = shrink_vision_input(input_size, cfg["patch_size"], profile)
            cfg.update(image_size=size, patch_size=patch, **(arch_extra or {}))
            self.model = get_class(model_class)(get_class(config_class)(**cfg))
            self.input_size = size
        self.patch_size = int(self.model.config.patch_size)
        self.embed_dim = int(self.model.config.hidden_size)
        self.grid = self.input_size // self.patch_size
        self.layers_kept = cut_tower(self.model, select_layer, name, missing=missing)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        n, t = frames.shape[:2]
        out = self.model(pixel_values=frames.flatten(0, 1))
        hidden = out.last_hidden_state[:, self.prefix_tokens :]  # hidden state select_layer (cut there)
        return hidden.reshape(n, t, self.grid, self.grid, self.embed_dim)
