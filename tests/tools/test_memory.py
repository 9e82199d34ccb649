"""The memory estimate (`python -m src.tools.memory`): four copies of every parameter,
activations with and without checkpointing, one row per `llm` option."""

from __future__ import annotations

import pytest

from src.config.compose import group_options
from src.tools import memory
from src.tools.memory import activation_numbers, estimate
from src.tools.sizes import REAL, llm_params


def test_memory_estimate_counts_four_copies_and_checkpointing_saves() -> None:
    e = estimate("qwen2.5-7b", tokens=4096)
    assert e["static_bf16"] == pytest.approx(8 * llm_params("qwen2.5-7b", REAL) / 1e9)  # w, grad, 2 moments
    assert e["static_fp32"] == 2 * e["static_bf16"] and e["act_ckpt"] < e["act_full"] / 10
    full, kept = activation_numbers(
        {"hidden_size": 8, "num_attention_heads": 2, "num_key_value_heads": 1, "intermediate_size": 20}
    )
    assert (full, kept) == (4 * 8 + 2 * 8 + 2 * 4 + 4 * 20, 8)


def test_the_command_prints_a_row_per_llm_option(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[tuple[str, int]] = []
    fake = {"params_b": 1.0, "static_bf16": 8.0, "static_fp32": 16.0, "act_ckpt": 1.0, "act_full": 20.0}

    def estimate(option: str, tokens: int) -> dict[str, float]:
        asked.append((option, tokens))
        return fake

    monkeypatch.setattr(memory, "estimate", estimate)
    assert memory.main(["--tokens", "1024", "--encoder-gb", "1"]) == 0
    out = capsys.readouterr().out
    assert asked == [(o, 1024) for o in group_options("llm")]
    assert all(f"| {o} |" in out for o in group_options("llm"))
    assert out.count("**10 GB**") == len(group_options("llm"))  # bf16 + checkpointing + the encoder
