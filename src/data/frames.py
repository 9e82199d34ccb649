"""Frames resized to the encoder's input in the loader's workers, not on the accelerator.

At real size a 720p frame is 2.8 MB of uint8 and a 1080p one 6.2 MB; SigLIP reads 384 x 384
(0.44 MB). `VisionEncoder.preprocess` resizes whatever it is given (bilinear, antialiased,
the aspect ratio squashed to a square) and skips the resize when the frames already have its
size, so the workers can do that resize on their CPUs: the batch then carries 6 to 14 times
fewer bytes through shared memory, pinned memory and the host-to-device copy, and the
accelerator's resize is skipped.

The worker's resize is torch's uint8 bilinear antialiased kernel, the same filter as the
encoder's float one; its result is rounded to uint8, so a pixel can differ from the float
path by less than one level (measured: at most 0.97/255, mean 0.28/255 on uniform noise;
tests/data/test_frames.py). Features of worker-resized frames are therefore not the same
bits as features of full frames, and the feature cache keys them apart (`FeatureCache.feature_key`
takes the loader's size).

Which size (`loader_size`): an encoder whose preprocessing is `VisionEncoder.preprocess`
gets its `input_size`; a pair (`FusedEncoder`) whose members all have that preprocessing and
one input size gets it; a pair of members of different sizes (e.g. InternVideo2 at 224 with
SigLIP at 384) keeps full frames, so that each member resizes once from the original, as
before: resizing to the larger size first and again to the smaller would filter twice.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F


def resize_frames(frames: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 (..., H, W, 3) -> uint8 (..., size, size, 3), bilinear with antialiasing (the
    encoder's filter, on the CPU's uint8 kernel); frames already of that size come back as they are."""
    *lead, h, w, c = frames.shape
    if (h, w) == (size, size) or frames.numel() == 0:
        return frames
    x = frames.reshape(-1, h, w, c).permute(0, 3, 1, 2)  # channels-last in memory: the fast uint8 path
    y = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return y.permute(0, 2, 3, 1).reshape(*lead, size, size, c).contiguous()


def _base_size(encoder: Any) -> int | None:
    """An encoder's `input_size` when its preprocessing is the base one (resize, then
    normalise); None for one that preprocesses otherwise, whose frames must stay whole."""
    from src.models.encoders.base import VisionEncoder

    if not isinstance(encoder, VisionEncoder) or type(encoder).preprocess is not VisionEncoder.preprocess:
        return None
    size = getattr(encoder, "input_size", None)
    return size if isinstance(size, int) and size > 0 else None


def loader_size(encoder: Any) -> int | None:
    """The side the loader resizes frames to for `encoder`, or None to send them whole."""
    members = getattr(encoder, "members", None)
    if members is None:
        return _base_size(encoder)
    sizes = {_base_size(m) for m in members.values()}
    return sizes.pop() if len(sizes) == 1 else None  # {None} pops None: whole frames
