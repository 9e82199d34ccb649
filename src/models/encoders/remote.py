"""Video encoders without a class in transformers (InternVideo2, LanguageBind-Video).

At `profile=pretrained` they load the checkpoint's own code with
`AutoModel.from_pretrained(..., trust_remote_code=True)`, which runs Python shipped with
the checkpoint: only when the user sets `encoder.trust_remote_code=true`. At
`profile=tiny` they build this project's implementation of the same architecture
(src/models/encoders/internvideo2.py, languagebind_video.py), shrunk by the profile's
rule, which is called exactly as the official code is called.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any, ClassVar

import torch
from hydra.utils import get_class

from src.models.encoders.base import FULL_DEPTH, VisionEncoder, cut_tower, load_tower
from src.models.shrink import loads_checkpoint, shrink_arch, shrink_vision_input


def remote_code_refusal(name: str) -> str:
    """The one line that explains why a remote-code encoder does not load."""
    return (
        f"encoder {name} at profile=pretrained runs the checkpoint's own Python code "
        f"(transformers' trust_remote_code); set encoder.trust_remote_code=true to allow it"
    )


class RemoteCodeEncoder(VisionEncoder):
    """Loading shared by the remote-code encoders; subclasses call the model.

    `pretrained` is a hub id or a local directory, `subfolder` a folder inside it (Apollo's
    release keeps each tower in its own folder). The tiny model is `model_class` built from
    `config_class(**arch)` shrunk, with the clip length `frames_per_clip`. CONFIG_KEYS names
    the attributes of the official config that hold the input side, the width and the depth.
    """

    CONFIG_KEYS: ClassVar[dict[str, str]] = {"size": "image_size", "width": "hidden_size", "depth": "num_hidden_layers"}

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
        trust_remote_code: bool = False,
        subfolder: str | None = None,
    ) -> None:
        super().__init__()
        missing: list[str] = []
        self.name = name
        self.frames_per_clip = frames_per_clip
        self.select_layer = select_layer
        self.image_mean = tuple(image_mean)
        self.image_std = tuple(image_std)
        if loads_checkpoint(profile):
            if not trust_remote_code:
                raise ValueError(remote_code_refusal(name))
            from transformers import AutoModel

            load = partial(AutoModel.from_pretrained, pretrained, subfolder=subfolder or "", trust_remote_code=True)
            self.model, missing = load_tower(load)
        else:
            cfg = shrink_arch(arch, profile)
            size, patch = shrink_vision_input(input_size, cfg["patch_size"], profile)
            cfg.update(image_size=size, patch_size=patch, num_frames=frames_per_clip)
            self.model = get_class(model_class)(get_class(config_class)(**cfg))
        config = self.model.config
        keys = self.CONFIG_KEYS
        self.input_size = int(getattr(config, keys["size"]))
        self.patch_size = int(config.patch_size)
        self.embed_dim = int(getattr(config, keys["width"]))
        self.grid = self.input_size // self.patch_size
        if int(config.num_frames) != frames_per_clip:  # both towers have fixed position tables in time
            raise ValueError(
                f"encoder {name}: the checkpoint is built for {config.num_frames} frames "
                f"per clip, not frames_per_clip={frames_per_clip}"
            )
        # an official config may not state its depth (Apollo's InternVideo2 reads none): the
        # tower's layer list gives it. The tower is cut at select_layer (`cut_tower`).
        self.layers_kept = cut_tower(self.model, select_layer, name, keys["depth"], missing)
        self.num_layers = int(getattr(self.model.config, FULL_DEPTH))


class InternVideo2Encoder(RemoteCodeEncoder):
    """forward: (N, T, C, S, S) -> (N, T / tubelet, h, w, D), CLS dropped.

    Called as Apollo calls the official model: `model(video, x_vis_return_idx=k,
    x_vis_only=True)` on (N, C, T, S, S), which returns the tokens after block `depth + k`;
    the tower is cut after the block `select_layer` names, so k = -1, the last kept block.
    The official config's names (`img_size`, `d_model`, `depth`) are read; this project's
    config answers to them too.
    """

    CONFIG_KEYS: ClassVar[dict[str, str]] = {"size": "img_size", "width": "d_model", "depth": "depth"}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.tubelet = int(self.model.config.tubelet_size)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        n, t = frames.shape[:2]
        # the last kept block's tokens: the tower is cut after block select_layer
        tokens = self.model(frames.transpose(1, 2), x_vis_return_idx=-1, x_vis_only=True)
        return tokens[:, 1:].reshape(n, t // self.tubelet, self.grid, self.grid, self.embed_dim)


class LanguageBindVideoEncoder(RemoteCodeEncoder):
    """forward: (N, T, C, S, S) -> (N, T, h, w, D), each frame's CLS dropped.

    Called as Apollo and Video-LLaVA call the official tower: on (N, C, T, S, S) with
    `output_hidden_states=True`, whose hidden states are ((N T), 1 + h*w, D); the last one
    is hidden state `select_layer` of the whole tower (cut there).
    """

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        n, t = frames.shape[:2]
        out = self.model(frames.transpose(1, 2), output_hidden_states=True)
        hidden = out.hidden_states[-1][:, 1:]
        return hidden.reshape(n, t, self.grid, self.grid, self.embed_dim)
