"""Samples as model inputs: media to clips, conversations to tokens and labels, skips counted."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from src.batch import IGNORE, MEDIA
from src.data.dataset import SampleDataset, collate
from src.data.manifest import Sample, mcq_prompt
from src.data.samplers import FpsSampler
from tests.helpers import VIDEOS, tiny_model, word_tokenizer, write_mp4

COLOURS = [(200, 30, 30), (30, 200, 30), (30, 30, 200), (200, 200, 30)]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("media")
    write_mp4(d / "v.mp4", COLOURS * 5, fps=10)  # 20 frames, 2 s
    Image.fromarray(np.full((40, 56, 4), 90, np.uint8)).save(d / "rgba.png")  # alpha, odd size
    Image.fromarray(np.full((32, 32, 3), 200, np.uint8)).save(d / "b.png")
    (d / "broken.mp4").write_bytes(b"not a video at all")
    return d


def samples(d: Path) -> list[Sample]:
    mcq = mcq_prompt("Which colour?", ["red", "green"])
    return [
        Sample(
            "v",
            [("video", str(d / "v.mp4"))],
            [("user", mcq), ("assistant", "B")],
            "perception",
            "toy",
            options=["red", "green"],
            answer="B",
        ),
        Sample(
            "i",
            [("image", str(d / "rgba.png"))],
            [("user", "<image>\nWhat is it?"), ("assistant", "a grey card")],
            "none",
            "toy",
        ),
        Sample(
            "mi",
            [("image", str(d / "rgba.png")), ("image", str(d / "b.png"))],
            [("user", "<image> <image> Same?"), ("assistant", "no"), ("user", "Sure?"), ("assistant", "yes sure")],
            "none",
            "toy",
        ),
        Sample("t", [], [("user", "Which digit follows 3?"), ("assistant", "4")], "none", "toy"),
        Sample(
            "bad",
            [("video", str(d / "broken.mp4"))],
            [("user", mcq), ("assistant", "A")],
            "perception",
            "toy",
            options=["red", "green"],
            answer="A",
        ),
    ]


@pytest.fixture(scope="module")
def tokenizer(files: Path):
    return word_tokenizer(samples(files))


def test_media_become_clips(files: Path, tokenizer) -> None:
    ds = SampleDataset(samples(files), FpsSampler(fps=2, frames_per_clip=2), tokenizer)
    v, i, mi, t = (ds[k] for k in range(4))
    assert [tuple(m.shape) for m in v["media"]] == [(2, 2, 64, 64, 3)]  # 2 s at 2 fps: 4 frames
    assert [tuple(m.shape) for m in i["media"]] == [(1, 2, 40, 56, 3)]  # one clip, repeated
    assert torch.equal(i["media"][0][0, 0], i["media"][0][0, 1])
    assert [tuple(m.shape) for m in mi["media"]] == [(1, 2, 40, 56, 3), (1, 2, 32, 32, 3)]
    assert t["media"] == [] and t["modality"] == "text" and mi["modality"] == "multi_image"
    assert i["media"][0].dtype == torch.uint8 and int(i["media"][0][0, 0, 0, 0, 0]) == 90


def test_only_assistant_turns_are_trained(files: Path, tokenizer) -> None:
    ds = SampleDataset(samples(files), FpsSampler(fps=2), tokenizer)
    mi = ds[2]
    ids, labels = mi["input_ids"], mi["labels"]
    assert (ids == MEDIA).sum() == 2 and labels[ids == MEDIA].eq(IGNORE).all()
    trained = tokenizer.decode(ids[labels != IGNORE].tolist())
    assert trained.split() == ["no", "<|im_end|>", "yes", "sure", "<|im_end|>"]
    assert "Same" in tokenizer.decode(ids[(labels == IGNORE) & (ids >= 0)].tolist())


def test_eval_items_hold_the_prompt_only(files: Path, tokenizer) -> None:
    ds = SampleDataset(samples(files), FpsSampler(fps=2), tokenizer, train=False)
    v = ds[0]
    assert v["labels"].eq(IGNORE).all() and v["answer_index"] == 1 and v["num_options"] == 2
    text = tokenizer.decode(v["input_ids"][v["input_ids"] >= 0].tolist())
    assert text.rstrip().endswith("<|im_start|> assistant") and "B <|im_end|>" not in text


def test_an_unreadable_video_is_a_counted_skip(files: Path, tokenizer) -> None:
    ds = SampleDataset(samples(files), FpsSampler(fps=2), tokenizer)
    batch = collate([ds[k] for k in range(5)])
    assert batch.ids == ["v", "i", "mi", "t"]
    [(item, reason)] = batch.skipped
    assert item == "bad" and reason.startswith("VideoError") and "broken.mp4" in reason


def test_a_batch_of_every_modality_trains_and_scores(files: Path, tokenizer) -> None:
    model = tiny_model(tokenizer)
    connector = model.connector
    ds = SampleDataset(samples(files), FpsSampler(fps=2), tokenizer)
    batch = collate([ds[k] for k in range(4)])
    loss = model.loss(batch)
    assert torch.isfinite(loss)
    loss.backward()
    assert connector.resampler.latents.grad is not None
    # scoring one item alone or in a batch with others gives the same scores
    ev = SampleDataset(samples(files)[:1], FpsSampler(fps=2), tokenizer, train=False)
    letters = torch.tensor([tokenizer.convert_tokens_to_ids(c) for c in "AB"])
    model.eval()
    alone = model.option_scores(collate([ev[0]]), letters)
    mixed = model.option_scores(collate([ev[0], ds[3], ds[1]]), letters)[:1]
    assert torch.allclose(alone, mixed, atol=1e-5)


@pytest.mark.filterwarnings("ignore:You are trying to `self.log\\(\\)`")
def test_frames_that_fail_to_decode_are_counted_up_to_the_record(
    files: Path, tokenizer, caplog: pytest.LogCaptureFixture
) -> None:
    """A corrupt stream gives the frames that decode, and the count reaches data_issues()
    (the run record's data.issues); an unreadable file is a counted skip."""
    from src.models.module import VideoLMMModule

    corrupt = VIDEOS / "decord__corrupted.mp4"  # 0..27 of 50 decode
    mcq = mcq_prompt("Which colour?", ["red", "green"])
    sample = Sample(
        "c",
        [("video", str(corrupt))],
        [("user", mcq), ("assistant", "A")],
        "perception",
        "toy",
        options=["red", "green"],
        answer="A",
    )
    ds = SampleDataset([sample, samples(files)[4]], FpsSampler(fps=2), tokenizer)
    with caplog.at_level("WARNING", logger="src.data.video"):
        item = ds[0]
    # 5 s at 2 fps: frames 0, 5, ..., 45; 30, 35, 40 and 45 do not decode
    assert item["media"][0].shape[:2] == (10, 1) and item["decode_errors"] == 4
    assert "4 of 10 requested frames failed to decode" in caplog.text and "decord__corrupted.mp4" in caplog.text
    assert torch.equal(item["media"][0][6], item["media"][0][5])  # frame 30 -> nearest decoded (25)

    model = tiny_model(tokenizer)
    module = VideoLMMModule(model, [0, 1], {"lr": {"vision": 0.0, "connector": 1e-3, "llm": 1e-3}})
    module.training_step(collate([ds[0]]), 0)
    module.training_step(collate([ds[1]]), 1)  # only the unreadable file: counted, not trained
    issues = module.data_issues()["train"]
    assert issues["frames_not_decoded"] == 4 and issues["skipped_samples"] == 1
    assert issues["skipped_by_reason"] == {"VideoError": 1}
