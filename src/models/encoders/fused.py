"""Two (or more) vision encoders on the same clip, their grids fused into one: `encoder=a+b`.

As in the Apollo paper (section 5) and its release: every member encodes the clip in its
own way (its own resize and normalisation, its own grid), each grid is interpolated
trilinearly to one common (t, h, w), the largest of the members' along each axis, and the
grids are concatenated along channels, so D is the sum of the members' widths.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from src.models.encoders.base import VisionEncoder


def resample(grid: torch.Tensor, size: tuple[int, int, int]) -> torch.Tensor:
    """(N, t, h, w, D) -> (N, *size, D), trilinear (the identity when the size already fits)."""
    if tuple(grid.shape[1:4]) == tuple(size):
        return grid
    x = grid.permute(0, 4, 1, 2, 3).float()
    x = F.interpolate(x, size=size, mode="trilinear", align_corners=False)
    return x.to(grid.dtype).permute(0, 2, 3, 4, 1)


class FusedEncoder(VisionEncoder):
    """encode: uint8 (N, T, H, W, C) -> (N, t, h, w, sum of the members' D).

    T is `frames_per_clip`, the longest member clip (the video encoder's, next to an image
    encoder); it must be a multiple of every member's. A video encoder with a shorter clip
    encodes the T frames as consecutive clips of its own length, whose grids follow each
    other in time. The common grid takes the video members' time steps (t; T when there
    is none) and the largest h and w; as in Apollo's release, an image encoder (1 frame
    per clip) encodes t of the T frames, evenly spaced (every second frame next to a
    tubelet-2 encoder), rather than encoding all T to have them averaged away.
    Members are injected (built from their own options' configs) and keep their own
    preprocessing; `trust_remote_code` is read by the members that need it (the pair's
    YAML passes it on) and is kept here so that `encoder.trust_remote_code=true` reads the
    same for a pair as for one encoder.
    """

    def __init__(
        self, members: Mapping[str, VisionEncoder], name: str, frames_per_clip: int, trust_remote_code: bool = False
    ) -> None:
        super().__init__()
        if len(members) < 2:
            raise ValueError(f"encoder {name}: a fused encoder needs two or more members, got {list(members)}")
        self.members = nn.ModuleDict(dict(members))
        self.name = name
        self.frames_per_clip = frames_per_clip
        for key, member in self._members().items():
            if frames_per_clip % member.frames_per_clip:
                raise ValueError(
                    f"encoder {name}: frames_per_clip={frames_per_clip} is not a multiple of "
                    f"member {key}'s {member.frames_per_clip}"
                )
        self.embed_dim = sum(m.embed_dim for m in self._members().values())
        self.grid = self.grid_shape(frames_per_clip)[1]

    def _members(self) -> dict[str, VisionEncoder]:
        """The members by key, as the encoders they are (an nn.ModuleDict types them as modules)."""
        return cast("dict[str, VisionEncoder]", dict(self.members.items()))

    def _time_steps(self, frames: int) -> int:
        """t of the common grid: the video members' (the longest), or `frames` without one."""
        steps = [self.member_shape(k, frames)[0] for k, m in self._members().items() if m.frames_per_clip > 1]
        return max(steps, default=frames)

    def member_shape(self, key: str, frames: int) -> tuple[int, int, int]:
        """(t, h, w) of one member's grid for a clip of `frames` frames, before resampling."""
        member = self._members()[key]
        if member.frames_per_clip == 1:
            return member.grid_shape(self._time_steps(frames))
        t, h, w = member.grid_shape(member.frames_per_clip)
        return frames // member.frames_per_clip * t, h, w

    def grid_shape(self, frames: int) -> tuple[int, int, int]:
        shapes = [self.member_shape(k, frames) for k in self.members]
        return self._time_steps(frames), max(s[1] for s in shapes), max(s[2] for s in shapes)

    def preprocess(self, frames: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError(
            "a fused encoder has no one preprocessing: each member preprocesses the frames in encode()"
        )

    def member_grids(self, frames: torch.Tensor) -> dict[str, torch.Tensor]:
        """Each member's own grid of the clips, (N, t_i, h_i, w_i, D_i), before resampling."""
        n, t = frames.shape[:2]
        steps = self._time_steps(t)
        grids = {}
        for key, member in self._members().items():
            f = member.frames_per_clip
            if f == 1:  # `steps` frames, evenly spaced: frame i * t / steps
                pick = torch.arange(steps, device=frames.device) * t // steps
                grids[key] = member.encode(frames[:, pick])
            elif f == t:
                grids[key] = member.encode(frames)
            else:  # consecutive clips of the member's own length, back in time order
                grid = member.encode(frames.reshape(n * (t // f), f, *frames.shape[2:]))
                grids[key] = grid.reshape(n, -1, *grid.shape[2:])
        return grids

    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        t = frames.shape[1]
        if t % self.frames_per_clip:
            raise ValueError(
                f"encoder {self.name}: clips of {t} frames; expected a multiple of "
                f"frames_per_clip={self.frames_per_clip}"
            )
        size = self.grid_shape(t)
        return torch.cat([resample(g, size) for g in self.member_grids(frames).values()], dim=-1)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.encode(frames)
