"""Token integration: timestamp text and learned start/end tokens around each clip, labels untouched."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate

from src.batch import IGNORE
from src.config.compose import group_options
from src.data.dataset import SampleDataset, collate
from src.data.manifest import Sample, mcq_prompt
from src.data.samplers import FpsSampler
from src.models.integration import CLIP, END, START, ClipIntegration, mmss, timestamp_corpus, timestamp_text
from src.models.module import VideoLMMModule
from tests.helpers import TINY_DATA, cfg_with, records, run_train, tiny_model, word_tokenizer

TEMPLATE = "clip from {start}-{end}:"
OPTIONS = group_options("integration")


def template(option: str) -> str | None:
    """The timestamp text an option puts before each clip (None: none)."""
    return cfg_with(f"integration={option}").integration.timestamps


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory, rgb_video: Path) -> list[Sample]:
    from PIL import Image

    d = tmp_path_factory.mktemp("integration")
    Image.fromarray(np.full((32, 32, 3), 90, np.uint8)).save(d / "i.png")
    return [
        Sample(
            "v",
            [("video", str(rgb_video))],  # 30 frames, 3 s
            [("user", mcq_prompt("Which colour?", ["red", "green"])), ("assistant", "B")],
            "perception",
            "toy",
            options=["red", "green"],
            answer="B",
        ),
        Sample(
            "i",
            [("image", str(d / "i.png"))],
            [("user", "<image>\nWhat is it?"), ("assistant", "a card")],
            "none",
            "toy",
        ),
    ]


@pytest.fixture(scope="module")
def tok(samples: list[Sample]):
    # the words of every option's timestamps
    stamps = (w for o in OPTIONS for w in timestamp_corpus(template(o)))
    return word_tokenizer(samples, *timestamp_corpus(TEMPLATE), *stamps)


@pytest.fixture(scope="module")
def batch(samples: list[Sample], tok):
    ds = SampleDataset(samples, FpsSampler(fps=1), tok)  # 3 s at 1 fps: 3 clips of 1 s
    return collate([ds[0], ds[1]])


def integration(option: str, tok, dim: int = 8) -> ClipIntegration:
    return instantiate(cfg_with(f"integration={option}").integration)(dim=dim, tokenizer=tok)


def test_timestamp_text_spans_the_clip() -> None:
    assert mmss(0) == "00:00" and mmss(75.9) == "01:15" and mmss(4500) == "75:00"
    assert timestamp_text(TEMPLATE, 0.0, 0.5) == "clip from 00:00-00:01:"  # start down, end up
    assert timestamp_text(TEMPLATE, 61.2, 63.0000000001) == "clip from 01:01-01:03:"  # float noise
    assert timestamp_text(TEMPLATE, 2.0, 4.0) == "clip from 00:02-00:04:"


def test_timestamp_words_are_in_the_tiny_vocabulary(tok) -> None:
    assert timestamp_corpus(None) == []
    ids = tok.encode(timestamp_text(TEMPLATE, 3599, 3601), add_special_tokens=False)
    assert tok.unk_token_id not in ids
    assert tok.decode(ids) == "clip from 59 : 59 - 60 : 01 :"  # the word-level tokenizer splits on punctuation


def test_the_batch_carries_each_clip_time(batch) -> None:
    video, image = batch.clip_times[0][0], batch.clip_times[1][0]
    assert video.tolist() == [[0.0, 1.0], [1.0, 2.0], [2.0, 3.0]] and image is None
    assert [len(m) for m in batch.media[0]] == [3]


@pytest.mark.parametrize("option", OPTIONS)
def test_layout_of_one_item(option: str, tok) -> None:
    integ, text = integration(option, tok), template(option)
    times = torch.tensor([[0.0, 1.0], [1.0, 2.5]])
    ts = [tok.encode(timestamp_text(text, *t), add_special_tokens=False) if text else [] for t in times.tolist()]
    se = cfg_with(f"integration={option}").integration.start_end_tokens
    expected: list[int] = []
    for c in range(2):
        expected += ts[c] + [START] * se + [CLIP] * 3 + [END] * se
    assert integ.layout(2, 3, times) == expected
    # an image: no timestamp, the separators all the same
    assert integ.layout(1, 3, None) == [START] * se + [CLIP] * 3 + [END] * se


@pytest.mark.parametrize("option", OPTIONS)
def test_sequences_hold_the_timestamps_and_labels_stay_on_the_answer(option: str, tok, batch) -> None:
    integ, stamp = integration(option, tok), template(option)
    got, lab = integ.expand(batch.input_ids[0].tolist(), batch.labels[0].tolist(), [3], batch.clip_times[0], 4)
    ids, labels = torch.tensor(got), torch.tensor(lab)
    text = tok.decode(ids[ids >= 0].tolist())
    if stamp:  # e.g. "clip from 00 : 01 - 00 : 02 :", the word-level tokenizer's spacing
        stamps = [
            tok.decode(tok.encode(timestamp_text(stamp, s, s + 1.0), add_special_tokens=False)) for s in (0.0, 1.0, 2.0)
        ]
        at = [text.index(s) for s in stamps]
        assert at == sorted(at) and all(text.count(s) == 1 for s in stamps)  # one per clip, in order
    else:  # the prompt's own words only
        prompt = batch.input_ids[0]
        assert text == tok.decode(prompt[prompt >= 0].tolist())
    assert int((ids == CLIP).sum()) == 3 * 4
    starts, ends = (ids == START).nonzero().flatten(), (ids == END).nonzero().flatten()
    if cfg_with(f"integration={option}").integration.start_end_tokens:
        clip_at = (ids == CLIP).nonzero().flatten().view(3, 4)
        assert (starts == clip_at[:, 0] - 1).all() and (ends == clip_at[:, -1] + 1).all()  # around each clip
    else:
        assert len(starts) == len(ends) == 0
    # whatever the layout, the trained tokens are the answer and its end of turn only
    assert tok.decode(ids[labels != IGNORE].tolist()) == "B <|im_end|>"
    assert (labels[ids < 0] == IGNORE).all()


def test_learned_tokens_and_clips_sit_where_the_layout_says(tok, batch) -> None:
    model = tiny_model(tok, "integration=both").eval()
    x, mask, y, _ = model._sequences(batch)
    clips = model.clip_tokens(batch.media[0])[0]  # (3 clips * tokens_per_clip, D)
    integ = model.integration
    laid, _ = integ.expand(
        batch.input_ids[0].tolist(), batch.labels[0].tolist(), [3], batch.clip_times[0], model.connector.tokens_per_clip
    )
    ids = torch.tensor(laid)
    row = x[0, : len(ids)]
    assert integ.start is not None and integ.end is not None
    assert int(mask[0].sum()) == len(ids)
    assert torch.allclose(row[ids == START], integ.start.expand(3, -1))
    assert torch.allclose(row[ids == END], integ.end.expand(3, -1))
    assert torch.allclose(row[ids == CLIP], clips, atol=1e-6)
    text = ids >= 0
    assert torch.equal(row[text], model.llm.get_input_embeddings()(ids[text]))


def test_learned_tokens_train_with_the_connector(tok, batch) -> None:
    model = tiny_model(tok, "integration=tokens")
    model.loss(batch).backward()
    start, end = model.integration.start, model.integration.end
    assert start is not None and start.grad is not None and end is not None and end.grad is not None
    assert start.grad.abs().sum() > 0 and end.grad.abs().sum() > 0
    module = VideoLMMModule(
        model,
        [tok.convert_tokens_to_ids("A"), tok.convert_tokens_to_ids("B")],
        {"name": "s", "lr": {"vision": 0.0, "connector": 1e-3, "llm": 0.0}, "epochs": 1},
    )
    connector_params = {id(p) for p in module.parts()["connector"].parameters()}
    assert id(start) in connector_params and start.requires_grad
    module.apply_stage({"name": "s", "lr": {"vision": 0.0, "connector": 0.0, "llm": 1e-3}, "epochs": 1})
    assert not end.requires_grad  # frozen with the connector


def test_eval_scores_with_timestamps_do_not_depend_on_the_batch(samples, tok) -> None:
    model = tiny_model(tok, "integration=both").eval()
    ev = SampleDataset(samples[:1], FpsSampler(fps=1), tok, train=False)
    train = SampleDataset(samples, FpsSampler(fps=1), tok)
    letters = torch.tensor([tok.convert_tokens_to_ids(c) for c in "AB"])
    alone = model.option_scores(collate([ev[0]]), letters)
    mixed = model.option_scores(collate([ev[0], train[1]]), letters)[:1]
    assert torch.isfinite(alone).all() and torch.allclose(alone, mixed, atol=1e-5)


def test_misconfigured_integration_fails_clearly() -> None:
    with pytest.raises(ValueError, match="must hold"):
        ClipIntegration(tokenizer=object(), timestamps="clip at {start}")
    with pytest.raises(ValueError, match="needs the tokenizer"):
        ClipIntegration(timestamps=TEMPLATE)
    with pytest.raises(ValueError, match="LLM's width"):
        ClipIntegration(start_end_tokens=True)


@pytest.mark.slow
def test_a_run_with_timestamps_writes_its_record(data_dir: Path, tmp_path: Path) -> None:
    args = ["resampler=perceiver", "integration=timestamps", "logger=none", *TINY_DATA]
    proc = run_train(args, data_dir, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    [rec] = records(tmp_path)
    assert rec["status"] == "ok", rec["reason"]
    assert rec["choices"]["integration"] == "timestamps" and rec["choices"]["connector"] == "parts"
    p = rec["design"]["params"]
    assert p["total"] == p["encoder"] + p["connector"] + p["integration"] + p["llm"]
    assert p["connector"] == p["projector"] + p["resampler"] and min(p["projector"], p["resampler"]) > 0
    assert p["integration"] == 0  # timestamps are text: no weights of their own
    assert 0 <= rec["metrics"]["test/synthetic/overall"] <= 1
