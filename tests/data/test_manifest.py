"""Manifests: multiple-choice JSONL and LLaVA-style JSON/JSONL, and every way a row is skipped."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from src.data.errors import ManifestError
from src.data.manifest import mcq_prompt, modality_counts, read_manifest


@pytest.fixture
def media(tmp_path: Path) -> Path:
    """A folder with a (fake, non-empty) video, two images and an empty file."""
    for name in ("v.mp4", "a.png", "b.png"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "empty.mp4").write_bytes(b"")
    return tmp_path


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


MCQ = {
    "id": "q1",
    "video": "v.mp4",
    "question": "What moves?",
    "options": ["a cat", "a dog"],
    "answer": "B",
    "category": "perception",
    "benchmark": "toy",
    "kind": "motion",
}


def test_a_multiple_choice_row(media: Path) -> None:
    [s], report = read_manifest(write_jsonl(media / "m.jsonl", [MCQ]), benchmark="mine")
    assert s.id == "q1" and s.media == [("video", str((media / "v.mp4").resolve()))]
    assert s.options == ["a cat", "a dog"] and s.answer == "B" and s.benchmark == "toy"
    assert s.turns == [("user", mcq_prompt("What moves?", ["a cat", "a dog"])), ("assistant", "B")]
    assert s.turns[0][1].startswith("<video>\nWhat moves?\nA. a cat\nB. a dog\n")
    assert s.meta["kind"] == "motion" and s.modality == "video"
    assert report.as_dict() == {
        "path": str(media / "m.jsonl"),
        "rows": 1,
        "kept": 1,
        "skipped": 0,
        "skipped_by_reason": {},
    }


def test_lmms_eval_conventions_are_read(media: Path) -> None:
    """question_id for id, lettered options, an answer given as the option's text."""
    row = {k: v for k, v in MCQ.items() if k not in ("id", "benchmark")}
    row.update(question_id="vme-7", options=["A. a cat", "B. a dog", "C. a bird"], answer="a bird")
    [s], _ = read_manifest(write_jsonl(media / "m.jsonl", [row]), benchmark="videomme")
    assert s.id == "vme-7" and s.options == ["a cat", "a dog", "a bird"] and s.answer == "C"
    assert s.benchmark == "videomme"


def test_llava_rows_of_every_modality(media: Path) -> None:
    conv = [{"from": "human", "value": "Describe."}, {"from": "gpt", "value": "A scene."}]
    rows = [
        {
            "id": "v",
            "video": "v.mp4",
            "conversations": [{"from": "human", "value": "<image>\nWhat happens?"}, {"from": "gpt", "value": "Rain."}],
        },
        {"id": "i", "image": "a.png", "conversations": conv},
        {
            "id": "mi",
            "image": ["a.png", "b.png"],
            "conversations": [
                {"from": "human", "value": "<image> or <image>?"},
                {"from": "gpt", "value": "first"},
                {"from": "human", "value": "Why?"},
                {"from": "gpt", "value": "Brighter."},
            ],
        },
        {"id": "t", "conversations": conv},
    ]
    (media / "l.json").write_text(json.dumps(rows, indent=1))
    for path in (write_jsonl(media / "l.jsonl", rows), media / "l.json"):
        samples, report = read_manifest(path)
        assert [s.modality for s in samples] == ["video", "image", "multi_image", "text"]
        assert modality_counts(samples) == {"text": 1, "image": 1, "multi_image": 1, "video": 1}
        v, i, mi, t = samples
        assert v.turns[0] == ("user", "<image>\nWhat happens?")  # LLaVA-Video writes <image>
        assert i.turns[0] == ("user", "<image>\nDescribe.")  # no tag: the media come first
        assert [role for role, _ in mi.turns] == ["user", "assistant", "user", "assistant"]
        assert t.media == [] and t.turns[0] == ("user", "Describe.") and report.kept == 4


@pytest.mark.parametrize(
    "row, reason",
    [
        ({**MCQ, "answer": "Z"}, "bad answer"),
        ({**MCQ, "options": ["only one"]}, "bad options"),
        ({k: v for k, v in MCQ.items() if k != "question"}, "missing fields"),
        ({**MCQ, "video": "nope.mp4"}, "media file missing"),
        ({**MCQ, "video": "empty.mp4"}, "media file empty"),
        ({**MCQ, "question": " "}, "bad question"),
        ("[1, 2]", "not an object"),
        ('{"id": "broken", ', "not valid JSON"),
        (
            {"id": "c", "conversations": [{"from": "gpt", "value": "hi"}, {"from": "human", "value": "?"}]},
            "bad conversations",
        ),
        ({"id": "c", "conversations": [{"from": "human", "value": "?"}]}, "bad conversations"),
        (
            {
                "id": "c",
                "image": ["a.png", "b.png"],
                "conversations": [{"from": "human", "value": "<image> only one tag"}, {"from": "gpt", "value": "x"}],
            },
            "media tags do not match media",
        ),
        (
            {
                "id": "c",
                "video": "v.mp4",
                "image": "a.png",
                "conversations": [{"from": "human", "value": "?"}, {"from": "gpt", "value": "x"}],
            },
            "both video and image",
        ),
    ],
)
def test_a_malformed_row_is_skipped_counted_and_logged_with_file_and_line(
    media: Path, row: object, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = write_jsonl(media / "m.jsonl", [{**MCQ, "id": "ok"}, row])
    with caplog.at_level(logging.WARNING):
        samples, report = read_manifest(path)
    assert [s.id for s in samples] == ["ok"]
    assert report.rows == 2 and report.kept == 1 and dict(report.skipped) == {reason: 1}
    assert f"{path}:2: skipped" in caplog.text


def test_duplicate_ids_and_eval_rows_that_are_not_multiple_choice(media: Path) -> None:
    llava = {"id": "c", "conversations": [{"from": "human", "value": "?"}, {"from": "gpt", "value": "x"}]}
    path = write_jsonl(media / "m.jsonl", [MCQ, MCQ, llava])
    samples, report = read_manifest(path, mcq_only=True)
    assert len(samples) == 1
    assert dict(report.skipped) == {"duplicate id": 1, "not multiple-choice": 1}


def test_a_manifest_with_nothing_usable_is_an_error_naming_the_file(media: Path) -> None:
    with pytest.raises(ManifestError, match=r"m\.jsonl: no usable rows \(2 read; skipped 2"):
        read_manifest(write_jsonl(media / "m.jsonl", [{**MCQ, "answer": "Z"}, "{"]))
    with pytest.raises(ManifestError, match="no such manifest file"):
        read_manifest(media / "absent.jsonl")
    (media / "bad.json").write_text('[{"id": 1},\n  oops]')
    with pytest.raises(ManifestError, match=r"bad\.json:2: not valid JSON"):
        read_manifest(media / "bad.json")


def test_many_skips_are_summarised_not_each_logged(media: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = write_jsonl(media / "m.jsonl", [MCQ] + ["{"] * 30)
    with caplog.at_level(logging.WARNING):
        _, report = read_manifest(path)
    assert report.skipped["not valid JSON"] == 30
    assert caplog.text.count("skipped: not valid JSON") == 10
    assert "30 rows skipped in all (not valid JSON: 30)" in caplog.text


def test_media_root_resolves_paths(media: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    elsewhere = tmp_path_factory.mktemp("manifests")
    [s], _ = read_manifest(write_jsonl(elsewhere / "m.jsonl", [MCQ]), media_root=media)
    assert s.media[0][1] == str((media / "v.mp4").resolve())


@pytest.mark.parametrize("suffix", [".jsonl", ".json"])
def test_a_non_utf8_byte_names_its_file_and_line(media: Path, suffix: str, caplog: pytest.LogCaptureFixture) -> None:
    bad = (
        json.dumps({**MCQ, "id": "q2", "question": "caf\u00e9?"}, ensure_ascii=False)
        .encode()
        .replace(b"\xc3\xa9", b"\xe9")
    )  # Latin-1
    if suffix == ".jsonl":  # the row is skipped, counted and logged; the others are read
        path = media / "m.jsonl"
        path.write_bytes(json.dumps(MCQ).encode() + b"\n\n" + bad + b"\n" + json.dumps({**MCQ, "id": "q3"}).encode())
        with caplog.at_level(logging.WARNING):
            samples, report = read_manifest(path)
        assert [s.id for s in samples] == ["q1", "q3"]
        assert report.rows == 3 and dict(report.skipped) == {"not valid UTF-8": 1}
        assert f"{path}:3: skipped: not valid UTF-8 (byte 0xe9 at column" in caplog.text
    else:  # one list: the file cannot be read, and the error says where
        path = media / "m.json"
        path.write_bytes(b"[" + json.dumps(MCQ).encode() + b",\n" + bad + b"]")
        with pytest.raises(ManifestError, match=r"m\.json:2: not valid UTF-8 \(byte 0xe9 at column \d+\)$"):
            read_manifest(path)


@pytest.mark.parametrize("name", ["v.mp4", "v.json"])
def test_a_binary_file_given_as_a_manifest_is_one_line(media: Path, name: str) -> None:
    path = media / name
    path.write_bytes(b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41" + bytes(range(256)) * 4)
    with pytest.raises(ManifestError) as info:
        read_manifest(path)
    assert str(info.value) == f"{path}: a binary file, not a manifest (expected JSONL or JSON text)"
