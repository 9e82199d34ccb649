"""Multiple-choice video QA items: read a JSONL manifest, sample clips, tokenize the prompt."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from src.data.errors import ManifestError
from src.models.videolmm import Batch

log = logging.getLogger(__name__)
LETTERS = "ABCDEFGHIJ"
VIDEO = "<video>"
INSTRUCTION = "Answer with the option's letter from the given choices directly."
REQUIRED = ("id", "video", "question", "options", "answer", "category")


def prompt_text(question: str, options: Sequence[str]) -> str:
    """The user turn, in the lmms-eval / LLaVA-Video multiple-choice format."""
    lines = [VIDEO, question, *(f"{LETTERS[i]}. {o}" for i, o in enumerate(options)), INSTRUCTION]
    return "\n".join(lines)


def read_manifest(path: Path) -> list[dict[str, Any]]:
    """Rows of a multiple-choice JSONL file; a malformed row is an error naming file and line."""
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"{path}: no such manifest file")
    rows = []
    with open(path) as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise ManifestError(f"{path}:{lineno}: not valid JSON ({e.msg})") from None
            if not isinstance(row, dict):
                raise ManifestError(f"{path}:{lineno}: a row must be a JSON object")
            missing = [k for k in REQUIRED if k not in row]
            if missing:
                raise ManifestError(f"{path}:{lineno}: missing field(s) {', '.join(missing)}")
            options = row["options"]
            if not (isinstance(options, list) and 2 <= len(options) <= len(LETTERS)):
                raise ManifestError(f"{path}:{lineno}: options must be a list of 2 to "
                                    f"{len(LETTERS)} choices")
            if row["answer"] not in LETTERS[: len(options)]:
                raise ManifestError(f"{path}:{lineno}: answer {row['answer']!r} is not one of "
                                    f"the {len(options)} option letters")
            row["video"] = str((path.parent / row["video"]).resolve())
            rows.append(row)
    if not rows:
        raise ManifestError(f"{path}: no rows")
    return rows


class VideoQADataset(Dataset):
    """One item = the sampled clips of a video and its tokenized question and answer."""

    def __init__(self, rows: list[dict[str, Any]], sampler: Callable, tokenizer: Any,
                 benchmark: str = "eval") -> None:
        self.rows = rows
        self.benchmark = benchmark  # for rows without a "benchmark" field
        self.sampler = sampler
        self.tokenizer = tokenizer
        # the token ids of each distinct (question, options, answer): a benchmark repeats
        # its question templates, and rendering the chat template costs as much as decoding
        self._text: dict[tuple[str, tuple[str, ...], str], tuple[list[int], ...]] = {}

    def __len__(self) -> int:
        return len(self.rows)

    def _ids(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=False)

    def _text_ids(self, row: dict[str, Any]) -> tuple[list[int], ...]:
        """(prefix, suffix, answer) token ids: the prompt around the video, the answer + EOS."""
        key = (row["question"], tuple(row["options"]), row["answer"])
        if key not in self._text:
            chat = [{"role": "user", "content": prompt_text(row["question"], row["options"])}]
            prompt = self.tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
            prefix, suffix = prompt.split(VIDEO, 1)
            eos = self.tokenizer.eos_token or ""
            self._text[key] = (self._ids(prefix), self._ids(suffix), self._ids(row["answer"] + eos))
        return self._text[key]

    def read_frames(self, video: Any, indices: list[int]) -> np.ndarray:
        """(len(indices), H, W, 3) uint8: only the sampled frames are decoded."""
        return video.get(indices)

    def __getitem__(self, i: int) -> dict[str, Any]:
        from src.data.video import open_video

        row = self.rows[i]
        with open_video(row["video"]) as video:
            plan = self.sampler(video.num_frames, video.fps, video.start_time)
            frames = self.read_frames(video, plan.indices.reshape(-1).tolist())
        frames = frames.reshape(*plan.indices.shape, *frames.shape[1:])
        prefix, suffix, answer = self._text_ids(row)
        return {
            "frames": torch.from_numpy(np.ascontiguousarray(frames)),
            "prefix_ids": torch.tensor(prefix, dtype=torch.long),
            "suffix_ids": torch.tensor(suffix, dtype=torch.long),
            "answer_ids": torch.tensor(answer, dtype=torch.long),
            "answer_index": LETTERS.index(row["answer"]),
            "num_options": len(row["options"]),
            "id": str(row["id"]),
            "category": row["category"],
            "benchmark": row.get("benchmark", self.benchmark),
        }


def collate(items: list[dict[str, Any]]) -> Batch:
    return Batch(
        frames=[it["frames"] for it in items],
        prefix_ids=[it["prefix_ids"] for it in items],
        suffix_ids=[it["suffix_ids"] for it in items],
        answer_ids=[it["answer_ids"] for it in items],
        answer_index=torch.tensor([it["answer_index"] for it in items]),
        num_options=torch.tensor([it["num_options"] for it in items]),
        ids=[it["id"] for it in items],
        categories=[it["category"] for it in items],
        benchmarks=[it["benchmark"] for it in items],
    )
