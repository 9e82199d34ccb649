"""A batch of samples as the data make it and the model reads it, and the two special token ids.

Both `src.data` (which collates) and `src.models` (which consumes) import this module;
neither imports the other for it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import torch

from src.cache.features import CacheSlot

IGNORE = -100
MEDIA = -1  # in a sample's token ids: where one media item's tokens go


@dataclass
class Batch:
    """A collated batch of B samples; sample i has its media items and its tokens.

    media: per sample, per media item a uint8 tensor (C, T, H, W, 3) of C clips of T
        frames (a video's sampled clips, an image repeated to one clip); [] for text
    input_ids: per sample, token ids with MEDIA at each media item's place, in order
    labels: per sample, the training targets aligned with input_ids (IGNORE: not trained)
    answer_index: (B,) index of the correct option; -1 where there is none
    num_options: (B,) options of each multiple-choice item (0 for free-form samples)
    modalities: per sample, its kind of media, or the modality an eval item is shown in
        (video, frame, text: the modality audit)
    decode_errors: frames that failed to decode and were replaced, over the batch
    clip_times: per sample, per media item its clips' (C, 2) start and end seconds (a
        video), or None (an image, a single frame): what timestamp integration writes
    skipped: (id, reason) of the samples left out because their media could not be read
    """

    media: list[list[torch.Tensor]]
    input_ids: list[torch.Tensor]
    labels: list[torch.Tensor]
    answer_index: torch.Tensor
    num_options: torch.Tensor
    ids: list[str]
    categories: list[str]
    benchmarks: list[str]
    modalities: list[str] = field(default_factory=list)
    controls: list[str | None] = field(default_factory=list)  # an eval item's control flag
    # circular evaluation: per sample (rotation, options) of an eval item, or None
    rotations: list[tuple[int, int] | None] = field(default_factory=list)
    decode_errors: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    clip_times: list[list[torch.Tensor | None]] = field(default_factory=list)
    # per sample, per media item its slot in the feature cache (src/cache/features.py), or
    # None; a hit's media item holds the encoder's features (C, t, h, w, D), not frames
    cache: list[list[CacheSlot | None]] = field(default_factory=list)

    def pin_memory(self) -> Batch:
        """The batch with every tensor in page-locked memory, so that the copy to the GPU can
        run asynchronously. DataLoader(pin_memory=True) calls this: it pins tensors, lists and
        mappings itself but passes any other object, a dataclass like this one, through unpinned."""
        return dataclasses.replace(
            self,
            media=_pinned(self.media),
            input_ids=_pinned(self.input_ids),
            labels=_pinned(self.labels),
            answer_index=self.answer_index.pin_memory(),
            num_options=self.num_options.pin_memory(),
            clip_times=_pinned(self.clip_times),
        )


def _pinned(value: Any) -> Any:
    """Tensors (in nested lists) pinned; None and anything else as they are."""
    if isinstance(value, torch.Tensor):
        return value.pin_memory()
    if isinstance(value, list):
        return [_pinned(v) for v in value]
    return value
