"""Circular evaluation: every item once per rotation of its options, right only if right under all."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, cast

import pytest
import torch

from src.batch import MEDIA, Batch
from src.config.errors import ConfigError
from src.config.validate import validate
from src.data.circular import option_lines, rotate, rotations
from src.data.datamodule import VideoQADataModule
from src.data.dataset import SampleDataset, collate
from src.data.manifest import LETTERS, Sample, mcq_prompt
from src.data.samplers import FpsSampler
from src.models.module import VideoLMMModule, accuracy_metrics, merge_rotations
from src.run.train import write_items
from tests.helpers import TINY_DATA, cfg_with, records, run_train, word_tokenizer, write_mp4

COLOURS = ["red", "green", "blue", "yellow"]


def told(name: str, options: list[str], answer: int, control: str | None = "text") -> Sample:
    """A text control: the question states the answer (the video is never opened as text)."""
    question = f"The card is {options[answer]} . What colour is the card ?"
    return Sample(
        name,
        [("video", "/nowhere.mp4")],
        [("user", mcq_prompt(question, options)), ("assistant", LETTERS[answer])],
        "perception",
        "toy",
        options=list(options),
        answer=LETTERS[answer],
        meta={"control": control},
    )


ITEMS = [
    told("a", COLOURS, 0),
    told("b", COLOURS, 1),
    told("c", COLOURS[::-1], 2),
    told("d", COLOURS, 3),
    told("two", ["red", "blue"], 1),
    told("three", COLOURS[:3], 2),
]


@pytest.fixture(scope="module")
def tokenizer():
    return word_tokenizer(ITEMS)


class Stub(torch.nn.Module):
    """A model with the parts the LightningModule freezes, scoring letters by `pick(tokens)`."""

    def __init__(self, tokenizer, pick) -> None:
        super().__init__()
        self.encoder, self.connector, self.integration, self.llm = (torch.nn.Linear(1, 1) for _ in range(4))
        self.tokenizer, self.pick = tokenizer, pick

    def option_scores(self, batch: Batch, option_token_ids: torch.Tensor) -> torch.Tensor:
        scores = torch.full((len(batch.ids), len(option_token_ids)), -9.0)
        for i, ids in enumerate(batch.input_ids):
            words = self.tokenizer.convert_ids_to_tokens([t for t in ids.tolist() if t != MEDIA])
            scores[i, self.pick(words)] = 0.0
        k = torch.arange(scores.shape[1])
        return scores.masked_fill(k[None, :] >= batch.num_options[:, None], -torch.inf)


def options_of(sample: Sample) -> list[str]:
    assert sample.options is not None
    return sample.options


def answer_of(sample: Sample) -> str:
    assert sample.answer is not None
    return sample.answer


def always_c(words: list[str]) -> int:
    return 2  # letter C, where there is one (else the first option, by the stub's -9 tie)


def reads_the_answer(words: list[str]) -> int:
    """The option whose text the question states: "The card is X" ... "L . X"."""
    stated = words[words.index("is") + 1]
    for k in range(len(words) - 2):
        if words[k] in LETTERS and words[k + 1] == "." and words[k + 2] == stated:
            return LETTERS.index(words[k])
    raise AssertionError(f"no option {stated} in {words}")


def score(tokenizer, pick, samples: list[Sample], batch_size: int, ranks: int = 1) -> list[dict]:
    """The rows of a test pass, the dataset's entries shared over `ranks` as Shard does."""
    ds = SampleDataset(samples, FpsSampler(fps=2), tokenizer, train=False, modality="text", circular=True)
    letters = tokenizer.convert_tokens_to_ids(list("ABCD"))
    rows = []
    for rank in range(ranks):
        stub: Any = Stub(tokenizer, pick)  # a stand-in for a VideoLMM
        module = VideoLMMModule(stub, letters, {"lr": {"vision": 0, "connector": 1, "llm": 1}})
        module.on_test_epoch_start()
        mine = list(range(rank, len(ds), ranks))
        for b, start in enumerate(range(0, len(mine), batch_size)):
            module.test_step(collate([ds[j] for j in mine[start : start + batch_size]]), b)
        rows += module.results
    return rows


def test_rotations_move_the_options_and_the_answer() -> None:
    item = told("b", COLOURS, 1)
    turned = [rotate(item, r) for r in range(rotations(item))]
    assert rotations(item) == 4 and rotations(told("two", ["red", "blue"], 0)) == 2
    assert [s.options for s in turned] == [
        COLOURS,
        COLOURS[1:] + COLOURS[:1],
        COLOURS[2:] + COLOURS[:2],
        COLOURS[3:] + COLOURS[:3],
    ]
    # the answer's option keeps its text and takes each letter once: B, A, D, C
    assert [s.answer for s in turned] == ["B", "A", "D", "C"]
    assert all(options_of(s)[LETTERS.index(answer_of(s))] == "green" for s in turned)
    for s in turned:  # the prompt lists the rotated options, the rest of it is the item's own
        assert s.turns[0][1] == mcq_prompt("The card is green . What colour is the card ?", options_of(s))
        assert s.turns[1] == ("assistant", s.answer)
    assert "A. yellow\nB. red" in turned[3].turns[0][1] and option_lines(["x", "y"]) == "A. x\nB. y"
    assert rotate(item, 5).options == turned[1].options and item.options == COLOURS  # untouched


def test_a_prompt_without_option_lines_cannot_be_rotated(tokenizer) -> None:
    odd = Sample("odd", [], [("user", "Pick: red or green?")], "c", "toy", options=["red", "green"], answer="A")
    with pytest.raises(ValueError, match="sample odd: its prompt does not list its options"):
        rotate(odd, 1)
    ds = SampleDataset([odd, ITEMS[0]], FpsSampler(fps=2), tokenizer, train=False, modality="text", circular=True)
    batch = collate([ds[j] for j in range(len(ds))])
    # counted as skipped with the reason, never scored unrotated
    assert len(ds) == 6 and batch.ids == ["a"] * 4 and {i for i, _ in batch.skipped} == {"odd"}
    assert "cannot rotate" in batch.skipped[0][1]


def test_the_dataset_holds_every_rotation_with_its_answer(tokenizer) -> None:
    ds = SampleDataset(ITEMS, FpsSampler(fps=2), tokenizer, train=False, modality="text", circular=True)
    assert len(ds) == 4 * 4 + 2 + 3
    entries = [ds[j] for j in range(len(ds))]
    for e in entries:
        item = next(s for s in ITEMS if s.id == e["id"])
        shift, k = e["rotation"]
        assert k == len(options_of(item)) == e["num_options"]
        assert e["answer_index"] == (LETTERS.index(answer_of(item)) - shift) % k
        # the tokens are the rotated prompt: the answer's text stands at the answer's letter
        words = tokenizer.convert_ids_to_tokens(e["input_ids"].tolist())
        assert reads_the_answer(words) == e["answer_index"]
    assert [e["rotation"] for e in entries[:4]] == [(0, 4), (1, 4), (2, 4), (3, 4)]
    plain = SampleDataset(ITEMS, FpsSampler(fps=2), tokenizer, train=False, modality="text")
    assert len(plain) == len(ITEMS) and plain[1]["rotation"] is None
    with pytest.raises(ValueError, match="evaluation dataset only"):
        SampleDataset(ITEMS, FpsSampler(fps=2), tokenizer, train=True, circular=True)


def test_a_video_item_is_rotated_too(tmp_path: Path, tokenizer) -> None:
    write_mp4(tmp_path / "v.mp4", [(200, 20, 20)] * 12, fps=10)
    item = told("v", COLOURS, 3)
    item.media = [("video", str(tmp_path / "v.mp4"))]
    ds = SampleDataset([item], FpsSampler(fps=2), tokenizer, train=False, modality="video", circular=True)
    assert len(ds) == 4 and [ds[j]["answer_index"] for j in range(4)] == [3, 2, 1, 0]
    assert all(tuple(ds[j]["media"][0].shape[2:]) == (64, 64, 3) for j in range(4))
    assert all((ds[j]["input_ids"] == MEDIA).sum() == 1 for j in range(4))


@pytest.mark.parametrize("batch_size", [1, 3, 32])
def test_a_constant_letter_is_never_right_and_reading_always_is(tokenizer, batch_size: int) -> None:
    constant = merge_rotations(score(tokenizer, always_c, ITEMS, batch_size))
    reader = merge_rotations(score(tokenizer, reads_the_answer, ITEMS, batch_size))
    assert [r["item"] for r in constant] == [s.id for s in ITEMS] == [r["item"] for r in reader]
    assert all(r["correct"] == 0 and r["rotations_right"] <= 1 for r in constant)
    # "C" is right under exactly one rotation of an item with a C; of two options the stub
    # picks A, right under one rotation too
    assert [r["rotations_right"] for r in constant] == [1, 1, 1, 1, 1, 1]
    assert all(r["correct"] == 1 and r["rotations_right"] == r["rotations"] for r in reader)
    assert [r["rotations"] for r in reader] == [4, 4, 4, 4, 2, 3]
    # the letter chosen, in the item's own order: the answer, and C (A of two) for the constant
    assert [r["chosen"] for r in reader] == [LETTERS.index(answer_of(s)) for s in ITEMS]
    assert [r["chosen"] for r in constant] == [2, 2, 2, 2, 0, 2]
    assert all(r["modality"] == "text" and r["control"] == "text" for r in reader)
    assert accuracy_metrics(score(tokenizer, always_c, ITEMS, batch_size)) == {
        "test_text/toy/perception": 0.0,
        "test_text/toy/overall": 0.0,
    }
    assert accuracy_metrics(score(tokenizer, reads_the_answer, ITEMS, batch_size))["test_text/toy/overall"] == 1.0


def test_rotations_scored_on_different_ranks_merge_after_the_gather(tokenizer) -> None:
    one = merge_rotations(score(tokenizer, reads_the_answer, ITEMS, 2))
    gathered = score(tokenizer, reads_the_answer, ITEMS, 2, ranks=2)  # rank 0's rows, then rank 1's
    by_item: dict[str, set[bool]] = {}
    for k, r in enumerate(gathered):
        by_item.setdefault(r["item"], set()).add(k < len(gathered) // 2)
    assert all(len(ranks) == 2 for ranks in by_item.values())  # every item on both ranks
    two = merge_rotations(gathered)
    key = ("item", "correct", "chosen", "rotations", "rotations_right")
    assert sorted(tuple(r[k] for k in key) for r in two) == sorted(tuple(r[k] for k in key) for r in one)
    # merged per rank first, an item would count right on each rank's half: why the gather comes first
    rank0 = merge_rotations(gathered[: len(gathered) // 2])
    assert all(r["rotations"] > r["rotations_right"] for r in rank0) and all(r["correct"] == 0 for r in rank0)


def test_merging_is_idempotent_and_leaves_plain_rows_alone() -> None:
    def row(rot: int | None, correct: int, chosen: int, seconds: float = 0.5) -> dict:
        r = {
            "item": "q",
            "benchmark": "b",
            "category": "c",
            "modality": "frame",
            "control": None,
            "chosen": chosen,
            "correct": correct,
            "seconds": seconds,
        }
        return r if rot is None else {**r, "rotation": rot, "of": 3}

    plain = {**row(None, 1, 0), "modality": "video"}
    rows = [row(2, 1, 0), plain, row(0, 1, 1), row(1, 1, 0, 0.25)]
    merged = merge_rotations(rows)
    assert merged[1] is plain and len(merged) == 2
    m = merged[0]
    assert m == {
        "item": "q",
        "benchmark": "b",
        "category": "c",
        "modality": "frame",
        "control": None,
        "seconds": 1.25,
        "rotations": 3,
        "rotations_right": 3,
        "chosen": 1,
        "correct": 1,
    }
    assert merge_rotations(merged) == merged
    # a rotation never scored (skipped): not right under every rotation, whatever the others say
    partial = merge_rotations([row(1, 1, 0), row(2, 1, 2)])[0]
    assert partial["correct"] == 0 and partial["rotations_right"] == 2
    assert partial["chosen"] == 1  # rotation 1's choice 0 is the item's option 1


def test_items_csv_reports_the_rotations(tokenizer, tmp_path: Path) -> None:
    rows = merge_rotations(score(tokenizer, always_c, ITEMS[:2], 4))
    video = {k: v for k, v in rows[0].items() if not k.startswith("rotations")} | {"modality": "video"}
    write_items(tmp_path / "items.csv", "run1", [video, *rows])
    out = list(csv.DictReader((tmp_path / "items.csv").open()))
    assert list(out[0])[-3:] == ["control", "rotations", "rotations_right"]
    assert [r["options"] for r in out] == ["4", "4", "4"]  # the audit's chance test reads it
    assert [
        (r["item"], r["modality"], r["correct"], r["chosen"], r["rotations"], r["rotations_right"]) for r in out
    ] == [("a", "video", "0", "C", "", ""), ("a", "text", "0", "C", "4", "1"), ("b", "text", "0", "C", "4", "1")]
    write_items(tmp_path / "plain.csv", "run1", [video])  # nothing circular: no such columns
    assert "rotations" not in (tmp_path / "plain.csv").read_text().splitlines()[0]


def test_the_datamodule_scores_the_named_modalities_circularly(tokenizer, tmp_path: Path) -> None:
    dm = VideoQADataModule("toy", str(tmp_path), eval_modalities=["video", "text"], eval_circular=["text"])
    dm.eval_samples = ITEMS
    dm.attach(FpsSampler(fps=2), tokenizer)
    video, text = (cast(SampleDataset, ld.dataset) for ld in dm.test_dataloader())
    assert (video.circular, len(video)) == (False, 6)
    assert (text.circular, len(text)) == (True, 21)
    with pytest.raises(ValueError, match="eval_circular"):
        VideoQADataModule("toy", str(tmp_path), eval_circular=["sound"])


@pytest.mark.parametrize("value", ["[frame,sound]", "frame", "[text,text]"])
def test_eval_circular_is_checked_at_start_up(value: str) -> None:
    with pytest.raises(
        ConfigError,
        match=r"^eval\.circular=.* is invalid; valid: a list of distinct "
        r"video, frame, text \(or \[\]\)",
    ):
        validate(cfg_with(f"eval.circular={value}"))
    for good in ("[]", "[video,frame,text]"):
        validate(cfg_with(f"eval.circular={good}"))
    cfg = cfg_with()
    assert list(cfg.eval.circular) == ["frame", "text"] == list(cfg.data.eval_circular)


@pytest.mark.slow
def test_two_ranks_score_rotations_and_the_record_merges_them(data_dir: Path, tmp_path: Path) -> None:
    # 12 items x 4 rotations as text, shared over 2 processes: rank 0 scores rotations 0 and 2
    # of every item, rank 1 rotations 1 and 3; items.csv and the metrics hold merged items
    proc = run_train(
        [
            "trainer=ddp",
            "trainer.accelerator=cpu",
            "trainer.devices=2",
            "logger=none",
            "eval.modalities=[video,text]",
            "eval.circular=[text]",
            *TINY_DATA,
        ],
        data_dir,
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    [rec] = records(tmp_path)
    assert rec["status"] == "ok", rec["reason"]
    rows = list(csv.DictReader((Path(rec["run_dir"]) / "items.csv").open()))
    text = [r for r in rows if r["modality"] == "text"]
    assert len(text) == 12 == len({r["item"] for r in text}) and len(rows) == 24
    assert all(r["rotations"] == "4" and int(r["correct"]) == (r["rotations_right"] == "4") for r in text)
    assert all(r["rotations"] == "" for r in rows if r["modality"] == "video")
    cats = sorted({r["category"] for r in text})
    for c in cats:
        right = [int(r["correct"]) for r in text if r["category"] == c]
        assert rec["metrics"][f"test_text/synthetic/{c}"] == pytest.approx(sum(right) / len(right))
