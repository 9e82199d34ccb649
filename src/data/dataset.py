"""Samples as model inputs: media decoded and sampled into clips, conversations tokenized.

A video becomes the clips of the frame sampler; an image is repeated to fill one clip
of `frames_per_clip` frames (the paper's unified encoding, so that one encoder path
serves both); a multi-image sample has one clip per image; a text-only sample none.

An evaluation item can be shown in one of three `EVAL_MODALITIES` (the modality audit):
`video`, its media as they are; `frame`, each video's centre frame only, repeated to fill
one clip as an image is; `text`, no media at all and the prompt without its media tags,
so the model sees the question and the options only.

The token ids of a sample hold `MEDIA` (-1) where each media item's tokens go, and the
labels train the assistant turns only. A sample whose media cannot be read (a corrupt
or unsupported file) is not dropped silently: it comes out as a skip marker that
`collate` counts in `Batch.skipped`, and the run record reports it.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from src.data.manifest import EVAL_MODALITIES, LETTERS, MEDIA_TAG, Sample
from src.models.videolmm import IGNORE, MEDIA, Batch

log = logging.getLogger(__name__)
# a media tag and the line break or space after it: what the text-only prompt leaves out
_TAG_AND_SPACE = re.compile(rf"(?:{MEDIA_TAG.pattern})[^\S\n]*\n?")


def load_image(path: str) -> np.ndarray:
    """(H, W, 3) uint8 RGB; an image with alpha is laid on black, a palette image expanded."""
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


class SampleDataset(Dataset):
    """One item = a sample's media as clips and its tokens and labels.

    `train=True`: the whole conversation, labels on the assistant turns. `train=False`:
    a multiple-choice item's prompt only, to score the option letters at its end.
    `modality` (evaluation only): one of `EVAL_MODALITIES`; the items then report it as
    their `modality`, instead of the kind of media the sample holds.
    """

    def __init__(self, samples: list[Sample], sampler: Callable, tokenizer: Any,
                 train: bool = True, modality: str | None = None) -> None:
        if modality is not None and (train or modality not in EVAL_MODALITIES):
            raise ValueError(f"modality={modality!r} is invalid; valid: one of "
                             f"{', '.join(EVAL_MODALITIES)}, for an evaluation dataset only")
        self.samples = samples
        self.sampler = sampler
        self.tokenizer = tokenizer
        self.train = train
        self.modality = modality
        self.frames_per_clip = int(getattr(sampler, "frames_per_clip", 1))
        # token ids per distinct conversation: benchmarks repeat their question templates,
        # and rendering a chat template costs as much as decoding a short video
        self._tokens: dict[tuple[tuple[str, str], ...], tuple[list[int], list[int]]] = {}

    def __len__(self) -> int:
        return len(self.samples)

    def _ids(self, text: str) -> list[int]:
        """Token ids of a text, with MEDIA in place of each media tag."""
        ids: list[int] = []
        for k, piece in enumerate(MEDIA_TAG.split(text)):
            if k:
                ids.append(MEDIA)
            if piece:
                ids.extend(self.tokenizer.encode(piece, add_special_tokens=False))
        return ids

    def _render(self, turns: list[tuple[str, str]], generation_prompt: bool) -> str:
        messages = [{"role": role, "content": text} for role, text in turns]
        # enable_thinking=False: Qwen3's own template then writes its non-thinking answer
        # prefix (an empty <think></think>) into the generation prompt; other templates ignore it
        return self.tokenizer.apply_chat_template(messages, tokenize=False,
                                                  add_generation_prompt=generation_prompt,
                                                  enable_thinking=False)

    def tokens(self, sample: Sample) -> tuple[list[int], list[int]]:
        """(ids, labels): labels are the ids on assistant turns and IGNORE elsewhere."""
        turns = sample.turns if self.train else sample.turns[:1]
        key = tuple(turns)
        if key in self._tokens:
            return self._tokens[key]
        ids: list[int] = []
        labels: list[int] = []
        done = ""  # the rendered conversation so far
        for k, (role, _) in enumerate(turns):
            if role != "assistant":
                continue
            before = self._render(turns[:k], generation_prompt=True)
            after = self._render(turns[: k + 1], generation_prompt=False)
            if not (before.startswith(done) and after.startswith(before)):
                raise ValueError("the chat template does not render a conversation turn by turn; "
                                 "cannot tell the assistant's tokens apart")
            prompt, answer = self._ids(before[len(done):]), self._ids(after[len(before):])
            ids += prompt + answer
            labels += [IGNORE] * len(prompt) + answer
            done = after
        if not self.train:
            prompt = self._ids(self._render(turns, generation_prompt=True))
            ids, labels = prompt, [IGNORE] * len(prompt)
        if ids.count(MEDIA) != len(sample.media):
            raise ValueError(f"sample {sample.id}: the chat template kept {ids.count(MEDIA)} of "
                             f"{len(sample.media)} media tags")
        self._tokens[key] = (ids, labels)
        return ids, labels

    def read_frames(self, video: Any, indices: list[int]) -> np.ndarray:
        """(len(indices), H, W, 3) uint8: only the sampled frames are decoded."""
        return video.get(indices)

    def _media(self, sample: Sample) -> tuple[list[torch.Tensor], list[torch.Tensor | None], int]:
        """Each media item as uint8 clips (C, T, H, W, 3); each video's (C, 2) clip start and
        end in seconds (the sampler's plan; None for an image or a single frame, which have no
        times); and the frames that failed to decode."""
        from src.data.video import open_video

        out, times, decode_errors = [], [], 0
        for kind, path in sample.media:
            span = None  # an image or a single frame has no clip times
            if kind == "video" and self.modality == "frame":
                with open_video(path) as video:  # the frame shown at the middle of its duration
                    frame = self.read_frames(video, [video.num_frames // 2])
                    decode_errors += video.decode_errors
                clips = np.repeat(frame[None], self.frames_per_clip, axis=1)
            elif kind == "video":
                with open_video(path) as video:
                    plan = self.sampler(video.num_frames, video.fps, video.start_time)
                    frames = self.read_frames(video, plan.flat.tolist())
                    decode_errors += video.decode_errors
                clips = frames.reshape(*plan.indices.shape, *frames.shape[1:])
                span = torch.from_numpy(np.stack([plan.starts, plan.ends], axis=1))
            else:
                image = load_image(path)
                clips = np.repeat(image[None, None], self.frames_per_clip, axis=1)
            out.append(torch.from_numpy(np.ascontiguousarray(clips)))
            times.append(span)
        return out, times, decode_errors

    def __getitem__(self, i: int) -> dict[str, Any]:
        sample = self.samples[i]
        if self.modality == "text":  # the question and its options, nothing to see
            sample = dataclasses.replace(sample, media=[], turns=[
                (role, _TAG_AND_SPACE.sub("", text)) for role, text in sample.turns])
        try:
            media, clip_times, decode_errors = self._media(sample)
        except Exception as e:  # noqa: BLE001 - any unreadable file: a counted skip, not a crash
            reason = f"{type(e).__name__}: {e}"
            log.warning("skipped sample %s: %s", sample.id, reason)
            return {"skip": reason, "id": sample.id}
        ids, labels = self.tokens(sample)
        answer = LETTERS.index(sample.answer) if sample.answer else -1
        return {
            "media": media,
            "clip_times": clip_times,
            "input_ids": torch.tensor(ids, dtype=torch.long),
            "labels": torch.tensor(labels, dtype=torch.long),
            "answer_index": answer,
            "num_options": len(sample.options or ()),
            "id": sample.id,
            "category": sample.category,
            "benchmark": sample.benchmark,
            "modality": self.modality or sample.modality,
            # the benchmark's flag of a control item ("frame", "text"), "" for an item that is
            # not one, None where the manifest does not flag controls at all
            "control": str(sample.meta["control"] or "") if "control" in sample.meta else None,
            "decode_errors": decode_errors,
        }


def collate(items: list[dict[str, Any]]) -> Batch:
    kept = [it for it in items if "skip" not in it]
    return Batch(
        media=[it["media"] for it in kept],
        clip_times=[it["clip_times"] for it in kept],
        input_ids=[it["input_ids"] for it in kept],
        labels=[it["labels"] for it in kept],
        answer_index=torch.tensor([it["answer_index"] for it in kept], dtype=torch.long),
        num_options=torch.tensor([it["num_options"] for it in kept], dtype=torch.long),
        ids=[it["id"] for it in kept],
        categories=[it["category"] for it in kept],
        benchmarks=[it["benchmark"] for it in kept],
        modalities=[it["modality"] for it in kept],
        controls=[it.get("control") for it in kept],
        decode_errors=sum(it["decode_errors"] for it in kept),
        skipped=[(it["id"], it["skip"]) for it in items if "skip" in it],
    )
