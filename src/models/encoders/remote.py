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
from typing import Any, ClassVar

import torch
from hydra.utils import get_class

from src.models.encoders.base import VisionEncoder, check_select_layer
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
        self.name = name
        self.frames_per_clip = frames_per_clip
        self.select_layer = select_layer
        self.image_mean = tuple(image_mean)
        self.image_std = tuple(image_std)
        if loads_checkpoint(profile):
            if not trust_remote_code:
                raise ValueError(remote_code_refusal(name))
            from transformers import AutoModel

            self.model = AutoModel.from_pretrained(pretrained, subfolder=subfolder or "", trust_remote_code=True)
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
        # an official config may not state its depth (Apollo's InternVideo2 reads none):
        # then only indices from the end, which need no depth, are accepted
        depth = getattr(config, keys["depth"], None)
        self.num_layers = None if depth is None else int(depth)
        if self.num_layers is not None:
            check_select_layer(select_layer, self.num_layers, name)
        elif select_layer >= 0:
            raise ValueError(
                f"encoder {name}: select_layer={select_layer} needs the tower's depth, which "
                f"its config does not give; valid: a negative index (-2: the penultimate layer)"
            )


class InternVideo2Encoder(RemoteCodeEncoder):
    """forward: (N, T, C, S, S) -> (N, T / tubelet, h, w, D), CLS dropped.

    Called as Apollo calls the official model: `model(video, x_vis_return_idx=k,
    x_vis_only=True)` on (N, C, T, S, S), which returns the tokens after block `depth + k`.
    The official config's names (`img_size`, `d_model`, `depth`) are read; this project's
    config answers to them too.
    """

    CONFIG_KEYS: ClassVar[dict[str, str]] = {"size": "img_size", "width": "d_model", "depth": "depth"}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.tubelet = int(self.model.config.tubelet_size)
        # the official index counts from the end only: hidden state k (k >= 0) is block k - 1
        self._return_idx = self.select_layer
        if self.select_layer >= 0:  # num_layers is known whenever select_layer >= 0
            assert self.num_layers is not None
            self._return_idx = self.select_layer - (self.num_layers + 1)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        n, t = frames.shape[:2]
        tokens = self.model(frames.transpose(1, 2), x_vis_return_idx=self._return_idx, x_vis_only=True)
        return tokens[:, 1:].reshape(n, t // self.tubelet, self.grid, self.grid, self.embed_dim)


class LanguageBindVideoEncoder(RemoteCodeEncoder):
    """forward: (N, T, C, S, S) -> (N, T, h, w, D), each frame's CLS dropped.

    Called as Apollo and Video-LLaVA call the official tower: on (N, C, T, S, S) with
    `output_hidden_states=True`, whose hidden states are ((N T), 1 + h*w, D).
    """

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        n, t = frames.shape[:2]
        out = self.model(frames.transpose(1, 2), output_hidden_states=True)
        hidden = out.hidden_states[self.select_layer][:, 1:]
        return hidden.reshape(n, t, self.grid, self.grid, self.embed_dim)
