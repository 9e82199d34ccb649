"""Manifests: the files that list samples. Two formats, each read into `Sample`s.

Multiple-choice JSONL, one question per line, with the fields lmms-eval's video MCQ tasks
carry, so that Video-MME, MLVU, PerceptionTest, NExT-QA, TempCompass or LongVideoBench
convert to it field for field (training and evaluation)::

    {"id": "q1", "video": "videos/a.mp4", "question": "...", "options": ["...", "..."],
     "answer": "B", "category": "temporal", "benchmark": "videomme"}

`question_id` may stand for `id`; options may carry their letters ("A. cat"); the answer
may be the text of an option. Other fields (kind, control, duration ...) are kept in
`Sample.meta`.

LLaVA-style JSON (a list) or JSONL, the format of LLaVA-Video-178K and LLaVA-OneVision
(training)::

    {"id": "s1", "video": "v/a.mp4", "conversations": [
        {"from": "human", "value": "<video>\\nWhat happens?"}, {"from": "gpt", "value": "..."}]}

with `video`, `image` (a path or a list of paths) or no media (a text-only sample). A
`<video>` or `<image>` tag marks where the media go (LLaVA-Video-178K writes `<image>` for
its videos; both are read as "the next media item"); without any tag, the media go
before the first human turn, as LLaVA does.

Paths are relative to `media_root` (default: the manifest's folder). A malformed row, or
one whose media file is missing or empty, is skipped: a warning names file and line,
and the `ReadReport` counts it by reason, for the run record. Nothing is dropped
silently; a manifest with no usable row at all is a `ManifestError`.
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from src.data.errors import ManifestError

log = logging.getLogger(__name__)
LETTERS = "ABCDEFGHIJ"
MEDIA_TAG = re.compile(r"<video>|<image>")
MODALITIES = ("text", "image", "multi_image", "video")
EVAL_MODALITIES = ("video", "frame", "text")  # the modality audit: how an eval item is shown
ROLES = {"human": "user", "gpt": "assistant"}
MCQ_REQUIRED = ("video", "question", "options", "answer", "category")
LOGGED_SKIPS = 10  # per file: the first ones one by one, then a summary


@dataclass
class Sample:
    """One training sample or evaluation item, whatever the manifest's format."""

    id: str
    # ("video" | "image", absolute path), in the order of the tags; "frame": a video shown as its
    # centre frame only (src.data.dataset.shown_as), which counts as an image
    media: list[tuple[str, str]]
    turns: list[tuple[str, str]]  # ("user" | "assistant", text with one media tag per media item)
    category: str
    benchmark: str
    options: list[str] | None = None  # multiple-choice items only
    answer: str | None = None  # the correct option's letter
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def modality(self) -> str:
        kinds = [k for k, _ in self.media]
        if not kinds:
            return "text"
        if "video" in kinds:
            return "video"
        return "image" if len(kinds) == 1 else "multi_image"


@dataclass
class ReadReport:
    """What reading one manifest kept and skipped, for the run record."""

    path: str
    rows: int = 0
    skipped: Counter = field(default_factory=Counter)  # reason -> rows

    @property
    def kept(self) -> int:
        return self.rows - sum(self.skipped.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "rows": self.rows,
            "kept": self.kept,
            "skipped": sum(self.skipped.values()),
            "skipped_by_reason": dict(self.skipped),
        }


class RowSkip(Exception):
    """A row that cannot be used: `reason` is the counted category, `detail` the story."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail or reason


def mcq_prompt(question: str, options: list[str], tag: str = "<video>") -> str:
    """The user turn, in the lmms-eval / LLaVA-Video multiple-choice format."""
    lines = [tag, question, *(f"{LETTERS[i]}. {o}" for i, o in enumerate(options))]
    lines.append("Answer with the option's letter from the given choices directly.")
    return "\n".join(line for line in lines if line)


def binary_check(path: Path) -> None:
    """A ManifestError for a file that is not text (an mp4 given where a manifest is expected):
    a NUL byte in its first 8 KiB, which no UTF-8 text manifest holds."""
    with open(path, "rb") as f:
        head = f.read(8192)
    if b"\0" in head:
        raise ManifestError(f"{path}: a binary file, not a manifest (expected JSONL or JSON text)")


def _undecodable(data: bytes, e: UnicodeDecodeError) -> str:
    return f"not valid UTF-8 (byte 0x{data[e.start]:02x} at column {e.start + 1})"


def text_lines(path: Path) -> Iterator[tuple[int, str | RowSkip]]:
    """(line number, text) of each non-blank line of a text file, or a `RowSkip` for a line that is
    not UTF-8: the other lines are still read. Line numbers count every line, blank ones too."""
    binary_check(path)
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                yield lineno, RowSkip("not valid UTF-8", _undecodable(raw, e))
                continue
            if line.strip():
                yield lineno, line


def parse_jsonl(path: Path) -> Iterator[tuple[int, Any]]:
    """(line number, row) of each non-blank line of a JSONL file; the row is a `RowSkip` (with the
    reason) for a line that is not UTF-8 or not JSON."""
    for lineno, line in text_lines(path):
        if isinstance(line, RowSkip):
            yield lineno, line
            continue
        try:
            yield lineno, json.loads(line.rstrip("\r\n"))
        except json.JSONDecodeError as e:
            yield lineno, RowSkip("not valid JSON", f"not valid JSON ({e.msg} at column {e.colno})")


def parse_json(path: Path) -> Any:
    """The whole of a .json file; ManifestError (file, line and why) when it is not UTF-8 JSON."""
    binary_check(path)
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        column = e.start - (data.rfind(b"\n", 0, e.start) + 1)
        raise ManifestError(
            f"{path}:{line}: not valid UTF-8 (byte 0x{data[e.start]:02x} at column {column + 1})"
        ) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ManifestError(f"{path}:{e.lineno}: not valid JSON ({e.msg} at column {e.colno})") from None


def _rows(path: Path) -> Iterator[tuple[str, Any]]:
    """(where, row): "FILE:LINE" in a JSONL file, "FILE row N" in a JSON file holding a list."""
    if path.suffix == ".json":
        data = parse_json(path)
        if not isinstance(data, list):
            raise ManifestError(f"{path}: a .json manifest must hold a list of rows")
        for k, row in enumerate(data, 1):
            yield f"{path} row {k}", row
        return
    for lineno, row in parse_jsonl(path):
        yield f"{path}:{lineno}", row


def _media_path(root: Path, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise RowSkip("bad media path", f"a media path must be a non-empty string, got {value!r}")
    path = root / value
    try:
        size = path.stat().st_size
    except OSError:
        raise RowSkip("media file missing", f"media file missing: {path}") from None
    if size == 0:
        raise RowSkip("media file empty", f"media file empty: {path}")
    return str(path.resolve())


def _options(row: dict[str, Any]) -> tuple[list[str], str]:
    """The options without letter prefixes, and the answer as a letter."""
    options = row["options"]
    if not (
        isinstance(options, list) and 2 <= len(options) <= len(LETTERS) and all(isinstance(o, str) for o in options)
    ):
        raise RowSkip("bad options", f"options must be a list of 2 to {len(LETTERS)} strings")
    prefixed = [re.match(rf"^\(?{LETTERS[i]}[.):]\s*", o) for i, o in enumerate(options)]
    if all(prefixed):  # "A. cat", "(B) dog": the letters are ours to add
        options = [o[m.end() :] for o, m in zip(options, prefixed) if m is not None]
    answer = row["answer"]
    if isinstance(answer, str) and answer.strip() in options and answer.strip() not in LETTERS:
        answer = LETTERS[options.index(answer.strip())]
    if isinstance(answer, str):
        answer = answer.strip().rstrip(".").strip("()")
    if answer not in LETTERS[: len(options)]:
        raise RowSkip("bad answer", f"answer {row['answer']!r} is not one of the {len(options)} option letters")
    return options, answer


def _mcq(row: dict[str, Any], root: Path, benchmark: str) -> Sample:
    missing = [k for k in MCQ_REQUIRED if k not in row]
    if "id" not in row and "question_id" not in row:
        missing.insert(0, "id")
    if missing:
        raise RowSkip("missing fields", f"missing field(s) {', '.join(missing)}")
    options, answer = _options(row)
    if not isinstance(row["question"], str) or not row["question"].strip():
        raise RowSkip("bad question", "question must be a non-empty string")
    known = {"id", "question_id", "video", "question", "options", "answer", "category", "benchmark"}
    return Sample(
        id=str(row.get("id", row.get("question_id"))),
        media=[("video", _media_path(root, row["video"]))],
        turns=[("user", mcq_prompt(row["question"], options)), ("assistant", answer)],
        category=str(row["category"]),
        benchmark=str(row.get("benchmark") or benchmark),
        options=options,
        answer=answer,
        meta={"question_id": row.get("question_id", row.get("id")), **{k: v for k, v in row.items() if k not in known}},
    )


def _llava(row: dict[str, Any], root: Path, benchmark: str, where: str) -> Sample:
    conv = row["conversations"]
    if not (isinstance(conv, list) and len(conv) >= 2):
        raise RowSkip("bad conversations", "conversations must be a list of at least 2 turns")
    turns = []
    for k, turn in enumerate(conv):
        who = turn.get("from") if isinstance(turn, dict) else None
        text = turn.get("value") if isinstance(turn, dict) else None
        expected = "human" if k % 2 == 0 else "gpt"
        if who != expected or not isinstance(text, str):
            raise RowSkip(
                "bad conversations",
                f"turn {k} must be {{'from': '{expected}', 'value': <text>}}; turns alternate human, gpt",
            )
        turns.append((ROLES[who], text))
    if turns[-1][0] != "assistant":
        raise RowSkip("bad conversations", "the last turn must be from gpt")
    if "video" in row and "image" in row:
        raise RowSkip("both video and image", "a row has a video or images, not both")
    if "video" in row:
        media = [("video", _media_path(root, row["video"]))]
    elif "image" in row:
        images = row["image"] if isinstance(row["image"], list) else [row["image"]]
        if not images:
            raise RowSkip("bad media path", "image: [] lists no image")
        media = [("image", _media_path(root, p)) for p in images]
    else:
        media = []
    tags = sum(len(MEDIA_TAG.findall(text)) for role, text in turns if role == "user")
    if any(MEDIA_TAG.search(text) for role, text in turns if role == "assistant"):
        raise RowSkip("media tags do not match media", "a gpt turn holds a media tag")
    if tags == 0 and media:  # LLaVA's convention: the media come first
        turns[0] = ("user", "\n".join(["<image>"] * len(media) + [turns[0][1]]))
    elif tags != len(media):
        raise RowSkip("media tags do not match media", f"{tags} <video>/<image> tag(s) for {len(media)} media item(s)")
    return Sample(
        id=str(row.get("id", where)),
        media=media,
        turns=turns,
        category=str(row.get("category", "none")),
        benchmark=str(row.get("benchmark") or benchmark),
        meta={
            k: v for k, v in row.items() if k not in {"id", "video", "image", "conversations", "category", "benchmark"}
        },
    )


def read_manifest(
    path: str | Path, benchmark: str = "eval", mcq_only: bool = False, media_root: str | Path | None = None
) -> tuple[list[Sample], ReadReport]:
    """The usable samples of a manifest, and what was skipped and why.

    `mcq_only`: every row must be a multiple-choice row (an evaluation split).
    """
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"{path}: no such manifest file")
    root = Path(media_root) if media_root is not None else path.parent
    report = ReadReport(str(path))
    samples: list[Sample] = []
    seen: set[str] = set()
    for where, row in _rows(path):
        report.rows += 1
        try:
            if isinstance(row, RowSkip):
                raise row
            if not isinstance(row, dict):
                raise RowSkip("not an object", "a row must be a JSON object")
            if "conversations" in row and not mcq_only:
                sample = _llava(row, root, benchmark, where)
            elif "conversations" in row:
                raise RowSkip(
                    "not multiple-choice", "an evaluation row needs question, options and answer, not conversations"
                )
            else:
                sample = _mcq(row, root, benchmark)
            if sample.id in seen:
                raise RowSkip("duplicate id", f"id {sample.id!r} appears twice")
        except RowSkip as skip:
            report.skipped[skip.reason] += 1
            n = sum(report.skipped.values())
            if n <= LOGGED_SKIPS:
                log.warning("%s: skipped: %s", where, skip.detail)
            continue
        seen.add(sample.id)
        samples.append(sample)
    n_skipped = sum(report.skipped.values())
    if n_skipped > LOGGED_SKIPS:
        log.warning(
            "%s: %d rows skipped in all (%s)",
            path,
            n_skipped,
            ", ".join(f"{r}: {c}" for r, c in report.skipped.most_common()),
        )
    if not samples:
        why = f"; skipped {n_skipped}: {dict(report.skipped)}" if n_skipped else ""
        raise ManifestError(f"{path}: no usable rows ({report.rows} read{why})")
    if n_skipped:
        log.info("%s: %d of %d rows used", path, report.kept, report.rows)
    return samples, report


def modality_counts(samples: list[Sample]) -> dict[str, int]:
    counts = Counter(s.modality for s in samples)
    return {m: counts[m] for m in MODALITIES if counts[m]}
