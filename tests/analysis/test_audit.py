"""The modality audit: eval items as video, centre frame or text only; scores per modality."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path
from typing import cast

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from src.batch import IGNORE, MEDIA
from src.config.errors import ConfigError
from src.config.validate import validate
from src.data.datamodule import VideoQADataModule, drop_modalities
from src.data.dataset import SampleDataset, collate, shown_as
from src.data.errors import DataError
from src.data.manifest import Sample, mcq_prompt
from src.data.samplers import FpsSampler
from src.models.llm import build_word_tokenizer
from src.models.module import VideoLMMModule, accuracy_metrics
from tests.helpers import TINY_DATA, cfg_with, run_train, tiny_model, word_tokenizer, write_mp4

RED, GREEN, BLUE = (220, 20, 20), (20, 220, 20), (20, 20, 220)


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("audit")
    # 21 frames at 10 fps: frame 10, shown at the middle of the 2.1 s, is the only blue one
    write_mp4(d / "centre.mp4", [RED] * 10 + [BLUE] + [GREEN] * 10, fps=10)
    for k in range(1, 6):  # different lengths: different clip counts, so padding in a batch
        write_mp4(d / f"v{k}.mp4", [RED, GREEN, BLUE] * (2 * k), fps=10)
    return d


def item(d: Path, name: str, video: str, options: list[str], answer: str, **meta: object) -> Sample:
    return Sample(
        name,
        [("video", str(d / video))],
        [("user", mcq_prompt(f"What colour is {name}?", options)), ("assistant", answer)],
        "perception" if len(options) > 2 else "spatial",
        "toy",
        options=options,
        answer=answer,
        meta=dict(meta),
    )


def items(d: Path) -> list[Sample]:
    four = ["red", "green", "blue", "grey"]
    return [
        item(d, "centre", "centre.mp4", four, "C", control="frame"),
        item(d, "one", "v1.mp4", ["red", "green"], "A", control=None),
        item(d, "two", "v2.mp4", four, "B", control="text"),
        item(d, "three", "v3.mp4", four, "D", control=None),
        item(d, "four", "v4.mp4", ["red", "green"], "B", control=None),
        item(d, "five", "v5.mp4", four, "A", control=None),
    ]


@pytest.fixture(scope="module")
def tokenizer(media: Path):
    return word_tokenizer(items(media))


def test_video_frame_and_text_items(media: Path, tokenizer) -> None:
    sampler = FpsSampler(fps=2, frames_per_clip=2)
    video, frame, text = (
        SampleDataset(items(media), sampler, tokenizer, train=False, modality=m)[0] for m in ("video", "frame", "text")
    )
    # video: the sampler's clips (2.1 s at 2 fps: 4 frames, 2 clips of 2)
    assert [tuple(m.shape) for m in video["media"]] == [(2, 2, 64, 64, 3)]
    # frame: one clip of the centre frame, repeated to fill the clip as an image is
    [clip] = frame["media"]
    assert tuple(clip.shape) == (1, 2, 64, 64, 3) and clip.dtype == torch.uint8
    assert torch.equal(clip[0, 0], clip[0, 1])
    assert np.abs(clip[0, 0].float().mean((0, 1)).numpy() - BLUE).max() < 8  # the blue one
    # text: no media, and the prompt without its tag
    assert text["media"] == [] and (text["input_ids"] == MEDIA).sum() == 0
    assert (video["input_ids"] == MEDIA).sum() == 1 and (frame["input_ids"] == MEDIA).sum() == 1
    words = tokenizer.decode(text["input_ids"].tolist())
    assert "What colour is centre ?" in words or "What colour is centre?" in words
    assert all(o in words for o in ("red", "green", "blue", "grey")) and "<video>" not in words
    # the same words as the video prompt, less the media slot (a word tokenizer drops "\n")
    assert text["input_ids"].tolist() == [t for t in video["input_ids"].tolist() if t != MEDIA]
    # every item reports the modality it was shown in, and the manifest's control flag
    assert [x["modality"] for x in (video, frame, text)] == ["video", "frame", "text"]
    assert video["control"] == frame["control"] == text["control"] == "frame"
    assert all(x["answer_index"] == 2 and x["num_options"] == 4 for x in (video, frame, text))


def test_text_prompt_loses_tag_and_its_line_break() -> None:
    tok = build_word_tokenizer(["Which one? A. x B. y Look user assistant"])
    turns = [("user", "<video>\nWhich one?\nA. x\nB. y"), ("assistant", "A")]
    samples = [
        Sample("s", [("video", "/nowhere.mp4")], turns, "c", "b", options=["x", "y"], answer="A"),
        Sample(
            "t",
            [("video", "/nowhere.mp4")],
            [("user", "Look: <video> Which one?")],
            "c",
            "b",
            options=["x", "y"],
            answer="B",
        ),
    ]
    ds = SampleDataset(samples, FpsSampler(fps=1), tok, train=False, modality="text")
    seen: list[Sample] = []
    tokens = ds.tokens

    def tokens_seen(sample: Sample) -> tuple[list[int], list[int]]:
        seen.append(sample)
        return tokens(sample)

    ds.tokens = tokens_seen  # type: ignore[method-assign]
    first, second = ds[0], ds[1]  # the missing video is never opened: no media to read
    assert "skip" not in first and first["media"] == [] and second["media"] == []
    assert [s.turns[0][1] for s in seen] == ["Which one?\nA. x\nB. y", "Look: Which one?"]
    assert all(s.media == [] for s in seen) and samples[0].turns == turns  # the item is untouched


def test_controls_and_unflagged_manifests(media: Path, tokenizer) -> None:
    ds = SampleDataset(items(media), FpsSampler(fps=2), tokenizer, train=False, modality="frame")
    batch = collate([ds[k] for k in range(3)])
    assert batch.controls == ["frame", "", "text"] and batch.modalities == ["frame"] * 3
    plain = [Sample(s.id, s.media, s.turns, s.category, s.benchmark, s.options, s.answer) for s in items(media)[:2]]
    ds = SampleDataset(plain, FpsSampler(fps=2), tokenizer, train=False, modality="video")
    assert collate([ds[0], ds[1]]).controls == [None, None]  # no flag at all, not "not a control"


@pytest.mark.parametrize(("modality", "train"), [("audio", False), ("frame", True)])
def test_a_bad_modality_is_refused(media: Path, tokenizer, modality: str, train: bool) -> None:
    with pytest.raises(ValueError, match="valid: one of video, frame, text"):
        SampleDataset(items(media), FpsSampler(fps=2), tokenizer, train=train, modality=modality)


def test_one_test_loader_per_modality(media: Path, tokenizer) -> None:
    dm = VideoQADataModule("toy", str(media), eval_batch_size=2, eval_modalities=["text", "video"])
    dm.eval_samples = items(media)
    dm.attach(FpsSampler(fps=2), tokenizer)
    loaders = dm.test_dataloader()
    assert [cast(SampleDataset, ld.dataset).modality for ld in loaders] == ["text", "video"]
    assert [ld.batch_size for ld in loaders] == [2, 2]
    assert VideoQADataModule("toy", str(media)).eval_modalities == ["video"]
    with pytest.raises(ValueError, match="eval_modalities"):
        VideoQADataModule("toy", str(media), eval_modalities=["video", "sound"])


@pytest.mark.parametrize("value", ["[video,sound]", "video", "[]", "[video,video]"])
def test_eval_modalities_are_checked_at_start_up(value: str) -> None:
    with pytest.raises(
        ConfigError,
        match=r"^eval\.modalities=.* is invalid; valid: a list of "
        r"distinct video, frame, text",
    ):
        validate(cfg_with(f"eval.modalities={value}"))
    validate(cfg_with("eval.modalities=[text,video,frame]"))
    assert list(cfg_with().data.eval_modalities) == ["video"]


def test_metrics_are_namespaced_by_modality() -> None:
    rows = [
        ("video", "a", 1),
        ("video", "a", 0),
        ("video", "b", 1),
        ("frame", "a", 1),
        ("frame", "b", 0),
        ("frame", "b", 0),
        ("text", "a", 0),
    ]
    results = [{"modality": m, "benchmark": "toy", "category": c, "correct": k} for m, c, k in rows]
    assert accuracy_metrics(results) == {
        "test/toy/a": 0.5,
        "test/toy/b": 1.0,
        "test/toy/overall": 0.75,
        "test_frame/toy/a": 1.0,
        "test_frame/toy/b": 0.0,
        "test_frame/toy/overall": 0.5,
        "test_text/toy/a": 0.0,
        "test_text/toy/overall": 0.0,
    }


@pytest.mark.parametrize("modality", ["video", "frame", "text"])
def test_scores_do_not_depend_on_the_batch_size(media: Path, tokenizer, modality: str) -> None:
    torch.manual_seed(0)
    model = tiny_model(tokenizer)
    letters = torch.tensor([tokenizer.convert_tokens_to_ids(c) for c in "ABCD"])
    ds = SampleDataset(items(media), FpsSampler(fps=2), tokenizer, train=False, modality=modality)
    by_size = {}
    for size in (1, 5):
        loader = DataLoader(ds, batch_size=size, collate_fn=collate)
        by_size[size] = torch.cat([model.option_scores(b, letters) for b in loader])
    one, five = by_size[1], by_size[5]
    assert one.shape == (6, 4) and torch.isinf(one[[1, 4], 2:]).all()  # 2-option items
    assert torch.equal(one.argmax(-1), five.argmax(-1))
    finite = torch.isfinite(one)
    assert torch.equal(finite, torch.isfinite(five))
    assert torch.allclose(one[finite], five[finite], atol=1e-5, rtol=0)
    # and through the LightningModule's test step: the same choices, one row per item
    module = VideoLMMModule(model, letters.tolist(), {"lr": {"vision": 0, "connector": 1, "llm": 1}})
    chosen = {}
    for size in (1, 5):
        module.on_test_epoch_start()
        for k, b in enumerate(DataLoader(ds, batch_size=size, collate_fn=collate)):
            module.test_step(b, k)
        chosen[size] = [(r["item"], r["chosen"], r["modality"]) for r in module.results]
        assert all(r["seconds"] > 0 for r in module.results)
    assert chosen[1] == chosen[5] and len(chosen[1]) == 6
    assert chosen[1][0][1] == int(one[0].argmax())


def test_training_videos_shown_as_a_frame_or_as_text(media: Path, tokenizer) -> None:
    image = Sample(
        "img", [("image", str(media / "x.png"))], [("user", "<image>\nHi?"), ("assistant", "A")], "perception", "toy"
    )
    text = Sample("txt", [], [("user", "Hi?"), ("assistant", "B")], "reasoning", "toy")
    samples = [*(items(media) * 40), image, text]  # 240 videos
    shown, counts = drop_modalities(samples, {"frame": 0.25, "text": 0.5}, seed=3)
    kinds = Counter(s.modality for s in shown[:240])
    assert counts == {"frame": kinds["image"], "text": kinds["text"]}
    assert 40 <= counts["frame"] <= 80 and 95 <= counts["text"] <= 145
    assert kinds["video"] == 240 - sum(counts.values())
    assert shown[240:] == [image, text]  # only videos are ever shown otherwise
    again, _ = drop_modalities(samples, {"frame": 0.25, "text": 0.5}, seed=3)
    assert [s.modality for s in again] == [s.modality for s in shown]  # the same for the same seed
    other, _ = drop_modalities(samples, {"frame": 0.25, "text": 0.5}, seed=4)
    assert [s.modality for s in other] != [s.modality for s in shown]
    assert drop_modalities(samples, {"frame": 0.0, "text": 0.0}, seed=3) == (samples, {"frame": 0, "text": 0})
    # a video shown as its frame trains on exactly what the audit's `frame` scores
    sampler = FpsSampler(fps=2, frames_per_clip=2)
    centre = items(media)[0]
    as_frame = SampleDataset([shown_as(centre, "frame")], sampler, tokenizer, train=True)[0]
    scored = SampleDataset([centre], sampler, tokenizer, train=False, modality="frame")[0]
    assert len(as_frame["media"]) == 1 and torch.equal(as_frame["media"][0], scored["media"][0])
    assert as_frame["clip_times"] == [None] and as_frame["modality"] == "image"
    # ... and as text: no media, no tag, the answer still trained
    as_text = SampleDataset([shown_as(centre, "text")], sampler, tokenizer, train=True)[0]
    assert as_text["media"] == [] and (as_text["input_ids"] == MEDIA).sum() == 0
    trained = as_text["labels"][as_text["labels"] != IGNORE].tolist()
    assert tokenizer.convert_tokens_to_ids("C") in trained and as_text["modality"] == "text"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("{frame: 0.6, text: 0.5}", r"their sum below 1"),
        ("{frame: -0.1}", r"each share in \[0, 1\)"),
        ("{text: 1.0}", r"each share in \[0, 1\)"),
        ("{text: lots}", r"valid: numbers"),
    ],
)
def test_modality_dropout_is_checked_at_start_up(value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=r"^data\.modality_dropout.*" + message):
        validate(cfg_with(f"data.modality_dropout={value}"))
    validate(cfg_with("data.modality_dropout.text=0.2"))
    with pytest.raises(DataError, match="their sum below 1"):
        VideoQADataModule("toy", ".", modality_dropout={"frame": 0.5, "text": 0.5})
    with pytest.raises(DataError, match=r"unknown modality \['audio'\]; valid: frame, text"):
        VideoQADataModule("toy", ".", modality_dropout={"audio": 0.1})  # (Hydra refuses the key itself)


def test_the_record_counts_what_modality_dropout_showed(media: Path, tokenizer, tmp_path: Path) -> None:
    manifest = tmp_path / "train.jsonl"
    rows = [
        {
            "id": f"s{k}",
            "video": str(media / "v1.mp4"),
            "conversations": [{"from": "human", "value": "<video>\nWhat colour?"}, {"from": "gpt", "value": "A"}],
        }
        for k in range(50)
    ]
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    evals = tmp_path / "eval.jsonl"
    evals.write_text(
        json.dumps(
            {
                "id": "q",
                "video": str(media / "v1.mp4"),
                "question": "What colour?",
                "options": ["red", "green"],
                "answer": "A",
                "category": "c",
            }
        )
        + "\n"
    )
    dm = VideoQADataModule("toy", str(tmp_path), train=str(manifest), eval=str(evals), modality_dropout={"text": 0.3})
    dm.prepare_data()
    got = dm.report()["train"]
    assert got["modality_dropout"]["shares"] == {"frame": 0.0, "text": 0.3}
    n = got["modality_dropout"]["samples"]["text"]
    assert 5 <= n <= 25 and got["modalities"]["text"] == n and got["modalities"]["video"] == 50 - n
    assert got["modality_dropout"]["samples"]["frame"] == 0


@pytest.mark.slow
def test_a_tiny_run_evaluates_every_modality(data_dir: Path, tmp_path: Path) -> None:
    proc = run_train(
        [
            "logger=none",
            "eval.modalities=[video,frame,text]",
            *TINY_DATA,
            "data.modality_dropout.frame=0.3",
            "data.modality_dropout.text=0.3",
        ],
        data_dir,
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    [path] = tmp_path.rglob("result.json")
    rec = json.loads(path.read_text())
    assert rec["status"] == "ok", rec["reason"]
    # training showed some of its videos as their centre frame, some as their text only
    dropped = rec["data"]["train"]["modality_dropout"]
    assert dropped["shares"] == {"frame": 0.3, "text": 0.3} and min(dropped["samples"].values()) > 0
    with open(path.parent / "items.csv") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == [
        "run",
        "item",
        "benchmark",
        "category",
        "modality",
        "correct",
        "chosen",
        "seconds",
        "options",
        "control",
        "rotations",
        "rotations_right",
    ]
    # frame and text are scored circularly by default (eval.circular): every rotation of 4 options
    assert {(r["modality"], r["rotations"]) for r in rows} == {("video", ""), ("frame", "4"), ("text", "4")}
    assert Counter(r["modality"] for r in rows) == {"video": 12, "frame": 12, "text": 12}
    assert {r["options"] for r in rows} == {"4"}
    ids = {m: sorted(r["item"] for r in rows if r["modality"] == m) for m in ("video", "frame", "text")}
    assert ids["video"] == ids["frame"] == ids["text"] and len(set(ids["video"])) == 12
    assert all(float(r["seconds"]) > 0 for r in rows)
    # the synthetic benchmark flags its controls: 1 in 10 of 12 items, the same in every modality
    flags = Counter((r["modality"], r["control"]) for r in rows if r["control"])
    assert sum(flags.values()) == 3 and len({c for _, c in flags}) == 1
    m = rec["metrics"]
    for prefix, modality in (("test", "video"), ("test_frame", "frame"), ("test_text", "text")):
        mine = [r for r in rows if r["modality"] == modality]
        cats = sorted({r["category"] for r in mine})
        for c in cats:
            right = [int(r["correct"]) for r in mine if r["category"] == c]
            assert m[f"{prefix}/synthetic/{c}"] == pytest.approx(sum(right) / len(right))
        assert m[f"{prefix}/synthetic/overall"] == pytest.approx(
            sum(m[f"{prefix}/synthetic/{c}"] for c in cats) / len(cats)
        )
