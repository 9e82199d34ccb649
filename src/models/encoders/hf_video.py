"""Video encoders from transformers (VideoMAE, V-JEPA 2): a clip of frames in, a space-time grid out."""

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


class HFVideoEncoder(VisionEncoder):
    """A transformers video tower, tiny (random weights, shrunk config) or pretrained.

    forward: (N, T, C, S, S) -> (N, T / tubelet, h, w, D) with h = w = S / patch: the tokens
    of hidden state `select_layer` (-2: the penultimate layer's output), which are laid out
    time-major in these models, so they reshape straight into the grid.
    The config names the model's own keys for the input side (`size_key`: VideoMAE's
    `image_size`, V-JEPA 2's `crop_size`) and the clip length (`frames_key`);
    `fixed_frames` says the model's position table is built for exactly that many frames
    (VideoMAE's sine table), so a checkpoint's clip length must match `frames_per_clip`.
    `drop_modules` removes pretraining heads that the features never pass through (V-JEPA 2's
    predictor), so they neither count as encoder parameters nor sit idle in the optimiser;
    the tower is cut at `select_layer` likewise (`cut_tower`): its last hidden state is that one.
    The shrink rule never touches time: frames per clip and the tubelet stay the real ones.
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
        frames_per_clip: int,
        select_layer: int = -2,
        size_key: str = "image_size",
        frames_key: str = "num_frames",
        fixed_frames: bool = False,
        forward_kwargs: Mapping[str, Any] | None = None,
        drop_modules: Sequence[str] = (),
    ) -> None:
        super().__init__()
        missing: list[str] = []
        self.name = name
        self.frames_per_clip = frames_per_clip
        self.select_layer = select_layer
        self.image_mean = tuple(image_mean)
        self.image_std = tuple(image_std)
        self.forward_kwargs = dict(forward_kwargs or {})
        if loads_checkpoint(profile):
            model_type = cast("type[PreTrainedModel]", get_class(model_class))
            self.model, missing = load_tower(partial(model_type.from_pretrained, pretrained))
        else:
            cfg = shrink_arch(arch, profile)
            size, patch = shrink_vision_input(input_size, cfg["patch_size"], profile)
            cfg.update({size_key: size, "patch_size": patch, frames_key: frames_per_clip})
            self.model = get_class(model_class)(get_class(config_class)(**cfg))
        for module in drop_modules:
            delattr(self.model, module)
        config = self.model.config
        self.input_size = int(getattr(config, size_key))
        self.patch_size = int(config.patch_size)
        self.tubelet = int(config.tubelet_size)
        self.embed_dim = int(config.hidden_size)
        self.grid = self.input_size // self.patch_size
        if frames_per_clip % self.tubelet:
            raise ValueError(
                f"encoder {name}: frames_per_clip={frames_per_clip} is not a multiple of "
                f"its tubelet of {self.tubelet} frames"
            )
        if fixed_frames and int(getattr(config, frames_key)) != frames_per_clip:
            raise ValueError(
                f"encoder {name}: the checkpoint is built for {getattr(config, frames_key)} "
                f"frames per clip, not frames_per_clip={frames_per_clip}"
            )
        self.layers_kept = cut_tower(self.model, select_layer, name, missing=missing)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        n, t = frames.shape[:2]
        inputs = {self.model.main_input_name: frames}
        out = self.model(**inputs, **self.forward_kwargs)
        hidden = out.last_hidden_state  # hidden state select_layer (the tower is cut there)
        return hidden.reshape(n, t // self.tubelet, self.grid, self.grid, self.embed_dim)
