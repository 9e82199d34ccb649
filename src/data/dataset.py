"""Samples as model inputs: media decoded and sampled into clips, conversations tokenized.

A video becomes the clips of the frame sampler; an image is repeated to fill one clip
of `frames_per_clip` frames (the paper's unified encoding, so that one encoder path
serves both); a multi-image sample has one clip per image; a text-only sample none.

An evaluation item can be shown in one of three `EVAL_MODALITIES` (the modality audit):
`video`, its media as they are; `frame`, each video's centre frame only, repeated to fill
one clip as an image is; `text`, no media at all and the prompt without its media tags,
so the model sees the question and the options only.

Under circular evaluation (`circular=True`, src/data/circular.py) each item is asked once
per rotation of its options: the dataset holds K entries for an item of K options, each
with the rotated prompt and the answer moved with its option, and reports its
`rotation` (shift, K) for the module to merge.

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

from src.batch import IGNORE, MEDIA, Batch
from src.cache.features import CacheSlot, FeatureLookup
from src.data.circular import rotate, rotations
from src.data.frames import resize_frames
from src.data.manifest import EVAL_MODALITIES, LETTERS, MEDIA_TAG, Sample

log = logging.getLogger(__name__)
# a media tag and the line break or space after it: what the text-only prompt leaves out
_TAG_AND_SPACE = re.compile(rf"(?:{MEDIA_TAG.pattern})[^\S\n]*\n?")
CENTRE_FRAME = "frame"  # a media kind: a video shown as its centre frame only


def shown_as(sample: Sample, modality: str) -> Sample:
    """The sample as `modality` shows it: `video` as it is; `frame`, each video as its centre
    frame (media kind CENTRE_FRAME, which then counts as an image); `text`, no media and the
    prompt without its media tags."""
    if modality == "text":
        return dataclasses.replace(
            sample, media=[], turns=[(role, _TAG_AND_SPACE.sub("", text)) for role, text in sample.turns]
        )
    if modality == "frame":
        return dataclasses.replace(
            sample, media=[(CENTRE_FRAME if kind == "video" else kind, path) for kind, path in sample.media]
        )
    return sample


def centre_frame(info: dict[str, Any]) -> int:
    """The frame shown at the middle of a video's duration: `num_frames // 2` at a constant rate;
    by its timestamps (`frame_times`) where the rate varies."""
    n = int(info["num_frames"])
    times = info.get("frame_times")
    if times is None:
        return n // 2
    rel = np.asarray(times, dtype=np.float64) - times[0]
    middle = n / float(info["fps"]) / 2  # half the duration
    return int(np.clip(np.searchsorted(rel, middle + 1e-6, side="right") - 1, 0, n - 1))


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
    their `modality`, instead of the kind of media the sample holds. `circular`
    (evaluation only): every item once per rotation of its options (CircularEval).
    `frame_size`: frames are resized to (frame_size, frame_size) here, in the loader's
    workers, as the encoder would resize them (src/data/frames.py); None: sent whole.
    """

    def __init__(
        self,
        samples: list[Sample],
        sampler: Callable,
        tokenizer: Any,
        train: bool = True,
        modality: str | None = None,
        features: FeatureLookup | None = None,
        circular: bool = False,
        frame_size: int | None = None,
    ) -> None:
        if modality is not None and (train or modality not in EVAL_MODALITIES):
            raise ValueError(
                f"modality={modality!r} is invalid; valid: one of "
                f"{', '.join(EVAL_MODALITIES)}, for an evaluation dataset only"
            )
        if circular and train:
            raise ValueError("circular=True is for an evaluation dataset only")
        self.samples = samples
        self.sampler = sampler
        self.tokenizer = tokenizer
        self.train = train
        self.modality = modality
        self.circular = circular
        # (sample, rotation) of each entry: K entries for an item of K options when circular
        self.entries = [(i, r) for i, s in enumerate(samples) for r in range(rotations(s) if circular else 1)]
        self.features = features  # the feature cache, while the encoder is frozen
        self.frame_size = frame_size
        self.frames_per_clip = int(getattr(sampler, "frames_per_clip", 1))
        # token ids per distinct conversation: benchmarks repeat their question templates,
        # and rendering a chat template costs as much as decoding a short video
        self._tokens: dict[tuple[tuple[str, str], ...], tuple[list[int], list[int]]] = {}

    def __len__(self) -> int:
        return len(self.entries)

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
        return self.tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=generation_prompt, enable_thinking=False
        )

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
                raise ValueError(
                    "the chat template does not render a conversation turn by turn; "
                    "cannot tell the assistant's tokens apart"
                )
            prompt, answer = self._ids(before[len(done) :]), self._ids(after[len(before) :])
            ids += prompt + answer
            labels += [IGNORE] * len(prompt) + answer
            done = after
        if not self.train:
            prompt = self._ids(self._render(turns, generation_prompt=True))
            ids, labels = prompt, [IGNORE] * len(prompt)
        if ids.count(MEDIA) != len(sample.media):
            raise ValueError(
                f"sample {sample.id}: the chat template kept {ids.count(MEDIA)} of {len(sample.media)} media tags"
            )
        self._tokens[key] = (ids, labels)
        return ids, labels

    def read_frames(self, video: Any, indices: list[int]) -> np.ndarray:
        """(len(indices), H, W, 3) uint8: only the sampled frames are decoded."""
        return video.get(indices)

    def _media(
        self, sample: Sample
    ) -> tuple[list[torch.Tensor], list[torch.Tensor | None], list[CacheSlot | None], int]:
        """Each media item as uint8 clips (C, T, H, W, 3), or, where the feature cache holds
        them, the encoder's features of those clips (C, t, h, w, D); each video's (C, 2) clip
        start and end in seconds (the sampler's plan; None for an image or a single frame,
        which have no times); each item's place in the cache (None without one); and the
        frames that failed to decode."""
        out, times, slots, decode_errors = [], [], [], 0
        for kind, path in sample.media:
            if kind in ("video", CENTRE_FRAME):
                item, span, slot, errors = self._video(path, centre=kind == CENTRE_FRAME)
            else:
                item, span, slot, errors = self._image(path)
            out.append(item)
            times.append(span)
            slots.append(slot)
            decode_errors += errors
        return out, times, slots, decode_errors

    def _cached(
        self, digest: str, kind: str, indices: np.ndarray
    ) -> tuple[str | None, tuple[torch.Tensor, int] | None]:
        """(key, (features, decode errors) or None) of these frames; (None, None) without a cache."""
        if self.features is None:
            return None, None
        key = self.features.key(digest, kind, indices, self.frame_size)
        return key, self.features.cache.load(key)

    def _video(
        self, path: str, centre: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None, CacheSlot | None, int]:
        """A video's clips: the sampler's, or with `centre` its centre frame repeated to fill
        one clip (the `frame` modality). With the cache, a hit needs neither decoding nor
        even opening the file: its frame count, rate and start time come from the cache's index."""
        from src.data.video import open_video

        cache = self.features.cache if self.features is not None else None
        video = None
        try:
            info = cache.media_info(path) if cache is not None else None
            if info is None:
                video = open_video(path)
                info = {"num_frames": video.num_frames, "fps": video.fps, "start_time": video.start_time}
                if not video.constant_rate:  # frames not evenly spaced: the sampler needs their times
                    info["frame_times"] = video.timestamps().tolist()
                if cache is not None:
                    info = cache.remember(path, **info)
            span = None  # a single frame has no clip times
            frame_times = info.get("frame_times")
            if centre:  # the frame shown at the middle of its duration
                indices = np.full((1, self.frames_per_clip), centre_frame(info), dtype=np.int64)
            else:
                plan = self.sampler(
                    info["num_frames"],
                    info["fps"],
                    info["start_time"],
                    **({} if frame_times is None else {"frame_times": np.asarray(frame_times, dtype=np.float64)}),
                )
                indices = plan.indices
                span = torch.from_numpy(np.stack([plan.starts, plan.ends], axis=1))
            key, found = self._cached(info.get("digest", ""), "video", indices)
            if key is not None and found is not None:
                return found[0], span, CacheSlot(key, True, found[1]), found[1]
            if video is None:
                video = open_video(path)
            if centre:
                frame = self.read_frames(video, [int(indices[0, 0])])
                clips = np.broadcast_to(frame[None], (1, self.frames_per_clip, *frame.shape[1:]))
            else:
                frames = self.read_frames(video, indices.reshape(-1).tolist())
                clips = frames.reshape(*indices.shape, *frames.shape[1:])
            errors = video.decode_errors
        finally:
            if video is not None:
                video.close()
        slot = None if key is None else CacheSlot(key, False, errors)
        return self._sized(clips), span, slot, errors

    def _sized(self, clips: np.ndarray) -> torch.Tensor:
        """uint8 clips (C, T, H, W, 3) as a tensor, resized to `frame_size` when it is set.
        A repeated frame (an image, a centre frame) is resized once, then repeated."""
        if self.frame_size is None:
            return _tensor(clips)
        if clips.shape[0] == 1 and clips.shape[1] > 1 and clips.strides[1] == 0:  # one frame, repeated
            one = resize_frames(_tensor(clips[:1, :1]), self.frame_size)
            return one.expand(*clips.shape[:2], *one.shape[2:]).contiguous()
        return resize_frames(_tensor(clips), self.frame_size)

    def _image(self, path: str) -> tuple[torch.Tensor, None, CacheSlot | None, int]:
        """An image repeated to fill one clip of `frames_per_clip` frames."""
        cache = self.features.cache if self.features is not None else None
        info = cache.media_info(path) if cache is not None else None
        image = None
        if cache is not None and info is None:
            image = load_image(path)  # an unreadable file fails here, as without the cache
            info = cache.remember(path)
        indices = np.zeros((1, self.frames_per_clip), dtype=np.int64)
        key, found = self._cached(info["digest"] if info else "", "image", indices)
        if key is not None and found is not None:
            return found[0], None, CacheSlot(key, True, found[1]), found[1]
        image = load_image(path) if image is None else image
        clips = np.broadcast_to(image[None, None], (1, self.frames_per_clip, *image.shape))
        slot = None if key is None else CacheSlot(key, False, 0)
        return self._sized(clips), None, slot, 0

    def __getitem__(self, i: int) -> dict[str, Any]:
        index, shift = self.entries[i]
        sample = self.samples[index]
        if self.circular:
            try:
                sample = rotate(sample, shift)
            except ValueError as e:  # a prompt without option lines: counted, not scored unrotated
                log.warning("skipped sample %s: %s", sample.id, e)
                return {"skip": f"ValueError: {e}", "id": sample.id}
        if self.modality is not None:
            sample = shown_as(sample, self.modality)
        try:
            media, clip_times, slots, decode_errors = self._media(sample)
        except Exception as e:  # noqa: BLE001 - any unreadable file: a counted skip, not a crash
            reason = f"{type(e).__name__}: {e}"
            log.warning("skipped sample %s: %s", sample.id, reason)
            return {"skip": reason, "id": sample.id}
        ids, labels = self.tokens(sample)
        answer = LETTERS.index(sample.answer) if sample.answer else -1
        return {
            "media": media,
            "clip_times": clip_times,
            "cache": slots,
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
            # (shift, K) under circular evaluation: this entry is rotation `shift` of K
            "rotation": (shift, rotations(sample)) if self.circular else None,
        }


def collate(items: list[dict[str, Any]]) -> Batch:
    kept = [it for it in items if "skip" not in it]
    return Batch(
        media=[it["media"] for it in kept],
        clip_times=[it["clip_times"] for it in kept],
        cache=[it["cache"] for it in kept],
        input_ids=[it["input_ids"] for it in kept],
        labels=[it["labels"] for it in kept],
        answer_index=torch.tensor([it["answer_index"] for it in kept], dtype=torch.long),
        num_options=torch.tensor([it["num_options"] for it in kept], dtype=torch.long),
        ids=[it["id"] for it in kept],
        categories=[it["category"] for it in kept],
        benchmarks=[it["benchmark"] for it in kept],
        modalities=[it["modality"] for it in kept],
        controls=[it.get("control") for it in kept],
        rotations=[it.get("rotation") for it in kept],
        decode_errors=sum(it["decode_errors"] for it in kept),
        skipped=[(it["id"], it["skip"]) for it in items if "skip" in it],
    )


def _tensor(frames: np.ndarray) -> torch.Tensor:
    """A tensor over the frames' memory where it is contiguous and writable, else over a copy
    (torch warns on a read-only array: a decoder's buffer, a broadcast frame)."""
    frames = np.ascontiguousarray(frames)
    return torch.from_numpy(frames if frames.flags.writeable else frames.copy())
