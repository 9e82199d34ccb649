"""profile=fullsize: every option's real architecture, random weights, nothing downloaded."""

from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate

from src.config.compose import group_options
from src.config.validate import validate
from src.models.llm import build_llm
from src.models.shrink import loads_checkpoint, replica_vocab
from tests.helpers import cfg_with


def test_fullsize_is_pretrained_without_the_download() -> None:
    full, pre = cfg_with("profile=fullsize"), cfg_with("profile=pretrained")
    assert not loads_checkpoint(full.profile) and loads_checkpoint(pre.profile)
    assert {k: v for k, v in full.profile.items() if k != "name"} == {
        k: v for k, v in pre.profile.items() if k != "name"
    }
    assert full.schedule.name == pre.schedule.name == "c_vc_cl"
    validate(full)


def test_the_real_vocabulary_unless_the_width_shrinks() -> None:
    arch = {"vocab_size": 151936}
    assert replica_vocab(arch, cfg_with("profile=fullsize").profile, 300) == 151936
    assert replica_vocab(arch, cfg_with().profile, 300) == 300  # tiny: the word-level tokenizer's


@pytest.mark.parametrize("option", ["qwen0.5b", "qwen2.5-7b", "qwen3-8b"])
def test_llms_build_at_their_real_size(option: str) -> None:
    cfg = cfg_with("profile=fullsize", f"llm={option}")
    with torch.device("meta"):
        model = build_llm(cfg.llm, cfg.profile, vocab_size=300, dtype="bfloat16")
    n = sum(p.numel() for p in model.parameters()) / 1e9
    assert n == pytest.approx(float(cfg.llm.size_b), rel=0.25)
    assert model.config.vocab_size >= 151936 and model.config.hidden_size == cfg.llm.arch.hidden_size


@pytest.mark.parametrize("option", [o for o in group_options("encoder") if "+" not in o])
def test_encoders_build_at_their_real_size(option: str) -> None:
    cfg = cfg_with("profile=fullsize", f"encoder={option}")
    validate(cfg)
    with torch.device("meta"):
        encoder = instantiate(cfg.encoder)
    assert encoder.input_size == cfg.encoder.input_size  # the real patch grid
    assert encoder.embed_dim == cfg.encoder.arch.hidden_size
