"""Evaluation checks its scores: an item whose option scores are NaN is no answer "A"."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from src.models.module import VideoLMMModule
from src.run.stages import NonFiniteScores, check_scores, finite_scores
from tests.helpers import tiny_batch, tiny_model, word_tokenizer

STAGE = {"lr": {"vision": 0, "connector": 1, "llm": 1}}


def _scored(module: VideoLMMModule, batch) -> list[int]:
    with finite_scores(module) as counts:
        module.on_test_epoch_start()
        module.test_step(batch, 0)
    return counts


@pytest.fixture(scope="module")
def parts():
    tok = word_tokenizer([], "what ? B A", "<|im_start|> <|im_end|>")
    torch.manual_seed(0)
    model = tiny_model(tok)
    letters = tok.convert_tokens_to_ids(["A", "B"])
    batch = tiny_batch(tok)
    batch = replace(batch, modalities=["video"] * len(batch.ids))
    return model, letters, batch


def test_finite_scores_pass_and_the_padding_is_no_failure(parts) -> None:
    model, letters, batch = parts
    module = VideoLMMModule(model, letters, STAGE)
    # one item with 2 options of the 2 letters, then the same with 1: its second score is -inf padding
    counts = _scored(module, batch)
    assert counts == [0, 1]
    counts = _scored(module, replace(batch, num_options=torch.tensor([1])))
    assert counts == [0, 1]
    check_scores(counts)  # nothing raised
    assert "option_scores" not in vars(model)  # the model's own method again


def test_nan_weights_fail_the_evaluation_instead_of_answering_a(parts) -> None:
    model, letters, batch = parts
    saved = {k: v.clone() for k, v in model.state_dict().items()}
    try:
        with torch.no_grad():
            for p in model.llm.parameters():
                p.fill_(float("nan"))
        module = VideoLMMModule(model, letters, STAGE)
        counts = _scored(module, batch)
        # unchecked, the argmax of NaN scores is option A: "scored", as the issue found
        assert module.results[0]["chosen"] == 0
        assert counts == [1, 1]
        with pytest.raises(NonFiniteScores, match=r"1 of 1 eval items have a NaN or infinite option score"):
            check_scores(counts)
    finally:
        model.load_state_dict(saved)
