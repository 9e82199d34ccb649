"""Token integration: how each clip's tokens are laid out in the LLM's input.

Apollo (arXiv 2412.10360, Table 2) compares four layouts of a video's clips:

| option | each clip becomes |
|---|---|
| `none` | `<clip tokens>` |
| `tokens` | `<start> <clip tokens> <end>` (two learned embeddings, trained) |
| `timestamps` | `clip from MM:SS-MM:SS: <clip tokens>` (text, through the tokenizer) |
| `both` | `clip from MM:SS-MM:SS: <start> <clip tokens> <end>` |

The times are each clip's start and end in the video (the sampler's `ClipPlan`),
start rounded down and end rounded up to the second, so the text spans the clip. An
image (or a video shown as one frame) has no times: it gets no timestamp text, but
the start/end tokens all the same, since it is one clip of the same encoder path.

Layout works on token ids: a sample's `MEDIA` slot is replaced by the ids of its
items' timestamp texts and by markers (`CLIP` for each of a clip's tokens, `START`,
`END`) that `fill` replaces with the clip tokens and the learned embeddings.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from torch import nn

from src.batch import IGNORE, MEDIA
from src.config.constraints import Constraints, Rule, boolean

CLIP = -2  # one of a clip's tokens_per_clip tokens
START = -3  # the learned clip-start embedding
END = -4  # the learned clip-end embedding
_EPS = 1e-6  # a clip ending at 2.0000000001 s ends at 00:02, not 00:03


def mmss(seconds: float) -> str:
    """`MM:SS` of a whole number of seconds; minutes run past 59 (a 75-minute video: 75:00)."""
    s = max(0, int(seconds))
    return f"{s // 60:02d}:{s % 60:02d}"


def timestamp_text(template: str, start: float, end: float) -> str:
    """The text before a clip: start rounded down, end rounded up to the second."""
    return template.format(start=mmss(math.floor(start + _EPS)), end=mmss(math.ceil(end - _EPS)))


def timestamp_corpus(template: str | None) -> list[str]:
    """Texts holding every word a timestamp can use (for the tiny word-level tokenizer).

    Two-digit minutes and seconds (00 to 99) and the template's own words; `[]` when the
    integration writes no timestamps, so that the tokenizer is the same as without one.
    """
    if not template:
        return []
    return [template.format(start=f"{i:02d}:{i:02d}", end=f"{i:02d}:{i:02d}") for i in range(100)]


class ClipIntegration(nn.Module):
    """Lays out the clips of each media item in the token sequence (see the module docstring).

    dim: the LLM's width (for the learned start/end embeddings)
    tokenizer: tokenizes the timestamp texts (needed when `timestamps` is set)
    start_end_tokens: wrap each clip in learned start and end embeddings
    timestamps: the text before each clip, with `{start}` and `{end}` (`MM:SS`); None for none
    """

    CONSTRAINTS: ClassVar[Constraints] = Constraints(
        Rule(
            "timestamps",
            lambda v: v is None or (isinstance(v, str) and "{start}" in v and "{end}" in v),
            "null, or a text holding {start} and {end}",
        ),
        Rule("start_end_tokens", boolean, "true or false"),
    )

    def __init__(
        self,
        dim: int | None = None,
        tokenizer: Any = None,
        name: str = "none",
        start_end_tokens: bool = False,
        timestamps: str | None = None,
    ) -> None:
        super().__init__()
        if start_end_tokens and not dim:
            raise ValueError("learned start/end tokens need the LLM's width (dim)")
        if timestamps and tokenizer is None:
            raise ValueError("timestamp text needs the tokenizer")
        if timestamps and not ("{start}" in timestamps and "{end}" in timestamps):
            raise ValueError(f"integration.timestamps={timestamps!r} must hold {{start}} and {{end}}")
        self.name = name
        self.tokenizer = tokenizer
        self.timestamps = timestamps or None
        # new embeddings, at the scale of a fresh LLM's (initializer_range 0.02)
        self.start = nn.Parameter(torch.randn(dim) * 0.02) if start_end_tokens and dim else None
        self.end = nn.Parameter(torch.randn(dim) * 0.02) if start_end_tokens and dim else None
        self._text_ids: dict[str, list[int]] = {}  # few distinct texts: tokenize each once

    def text_ids(self, start: float, end: float) -> list[int]:
        """Token ids of the timestamp text of a clip from `start` to `end` seconds."""
        assert self.timestamps is not None  # asked only with timestamps
        text = timestamp_text(self.timestamps, start, end)
        if text not in self._text_ids:
            self._text_ids[text] = self.tokenizer.encode(text, add_special_tokens=False)
        return self._text_ids[text]

    def layout(self, num_clips: int, tokens_per_clip: int, times: torch.Tensor | None) -> list[int]:
        """One media item's ids: per clip, [timestamp ids] [START] CLIP * tokens_per_clip [END].

        times: (num_clips, 2) start and end seconds of each clip, or None (an image)
        """
        if times is not None and len(times) != num_clips:
            raise ValueError(f"{len(times)} clip times for {num_clips} clips")
        ids: list[int] = []
        for c in range(num_clips):
            if self.timestamps and times is not None:
                ids += self.text_ids(float(times[c, 0]), float(times[c, 1]))
            se = self.start is not None
            ids += [START] * se + [CLIP] * tokens_per_clip + [END] * se
        return ids

    def expand(
        self,
        ids: Sequence[int],
        labels: Sequence[int],
        clips: Sequence[int],
        times: Sequence[torch.Tensor | None],
        tokens_per_clip: int,
    ) -> tuple[list[int], list[int]]:
        """A sample's ids and labels with each `MEDIA` slot laid out; the layout is never trained.

        clips: the number of clips of each media item, in order; times: each item's clip times
        """
        slots = [k for k, t in enumerate(ids) if t == MEDIA]
        if len(slots) != len(clips) or len(times) != len(clips):
            raise ValueError(f"{len(slots)} media slots for {len(clips)} media items and {len(times)} clip times")
        out_ids: list[int] = []
        out_labels: list[int] = []
        prev = 0
        for s, c, t in zip(slots, clips, times):
            item = self.layout(c, tokens_per_clip, t)
            out_ids += [*ids[prev:s], *item]
            out_labels += [*labels[prev:s], *[IGNORE] * len(item)]
            prev = s + 1
        return out_ids + list(ids[prev:]), out_labels + list(labels[prev:])

    def fill(self, ids: torch.Tensor, x: torch.Tensor, clip_rows: torch.Tensor) -> torch.Tensor:
        """(L,) laid-out ids, (L, D) their text embeddings, (R, D) clip tokens -> (L, D) input.

        The CLIP positions take the clip tokens in order; START and END the learned embeddings.
        """
        clip = (ids == CLIP)[:, None]
        if int(clip.sum()) != len(clip_rows):
            raise ValueError(f"{int(clip.sum())} clip-token positions for {len(clip_rows)} clip tokens")
        x = x.masked_scatter(clip, clip_rows.to(x.dtype))
        if self.start is not None and self.end is not None:  # both or neither
            x = torch.where((ids == START)[:, None], self.start.to(x.dtype), x)
            x = torch.where((ids == END)[:, None], self.end.to(x.dtype), x)
        return x
