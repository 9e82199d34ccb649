"""The memory estimate (`python -m src.tools.memory`): the whole-LLM table (four copies of every
parameter, activations with and without checkpointing), the per-part estimate of a stage under
the precision policy, and that estimate against one measured CPU step of the real shapes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from src.config.compose import group_options
from src.tools import memory
from src.tools.memory import activation_numbers, estimate, frozen_activation_numbers, llm_estimate, meta_model
from src.tools.sizes import REAL, llm_params
from tests.helpers import ROOT, cfg_with, train_env

PRETRAINED = ("profile=pretrained", "trainer=gpu", "data.batch_size=1")


def test_memory_estimate_counts_four_copies_and_checkpointing_saves() -> None:
    e = llm_estimate("qwen2.5-7b", tokens=4096)
    assert e["static_bf16"] == pytest.approx(8 * llm_params("qwen2.5-7b", REAL) / 1e9)  # w, grad, 2 moments
    assert e["static_fp32"] == 2 * e["static_bf16"] and e["act_ckpt"] < e["act_full"] / 10
    arch = {"hidden_size": 8, "num_attention_heads": 2, "num_key_value_heads": 1, "intermediate_size": 20}
    assert activation_numbers(arch) == (4 * 8 + 2 * 8 + 2 * 4 + 4 * 20, 8)
    assert frozen_activation_numbers(arch) == 2 * 8 + 2 * 8 + 2 * 4 + 3 * 20  # no projection inputs


def test_the_command_prints_a_row_per_llm_option(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[tuple[str, int]] = []
    fake = {"params_b": 1.0, "static_bf16": 8.0, "static_fp32": 16.0, "act_ckpt": 1.0, "act_full": 20.0}

    def llm_estimate(option: str, tokens: int) -> dict[str, float]:
        asked.append((option, tokens))
        return fake

    monkeypatch.setattr(memory, "llm_estimate", llm_estimate)
    assert memory.main(["--tokens", "1024", "--encoder-gb", "1"]) == 0
    out = capsys.readouterr().out
    assert asked == [(o, 1024) for o in group_options("llm")]
    assert all(f"| {o} |" in out for o in group_options("llm"))
    assert out.count("**10 GB**") == len(group_options("llm"))  # bf16 + checkpointing + the encoder


def test_a_stage_counts_each_part_under_the_precision_policy() -> None:
    cfg = cfg_with(*PRETRAINED, "llm=qwen0.5b")  # c_vc_cl: every part trains in some stage
    m = meta_model(cfg)
    n = {p: m.params(p) for p in ("vision", "connector", "llm")}
    c, vc, cl = (estimate(cfg, i) for i in range(3))
    assert c["llm_weights"] == pytest.approx(4 * n["llm"] / 1e9)  # fp32 masters: it trains in stage 3
    assert c["vision_weights"] == pytest.approx(4 * n["vision"] / 1e9)
    assert c["gradients"] == pytest.approx(4 * n["connector"] / 1e9) and c["adamw"] == 2 * c["gradients"]
    assert vc["adamw"] == pytest.approx(8 * (n["vision"] + n["connector"]) / 1e9)
    assert cl["autocast_copies"] == pytest.approx(2 * (n["llm"] + n["connector"]) / 1e9)  # bf16-mixed
    # the encoder keeps activations only while it trains; frozen, its forward's hidden states
    assert vc["encoder_activations"] > 0 == c["encoder_activations"] == cl["encoder_activations"]
    assert c["encoder_forward"] > 0 == vc["encoder_forward"]
    # 64 frames of 27 x 27 SigLIP cells go through the connector: gradients flow there in every stage
    assert min(c["connector_activations"], cl["connector_activations"]) > 0.1
    assert cl["llm_activations"] > c["llm_activations"] > 0  # a trained LLM keeps more than a frozen one
    frozen = estimate(cfg_with(*PRETRAINED, "schedule=c_cl"), 0)
    assert frozen["vision_weights"] == pytest.approx(2 * n["vision"] / 1e9)  # never trained: bf16
    off = estimate(cfg_with(*PRETRAINED, "llm.gradient_checkpointing=false"), 2)
    assert off["llm_activations"] > 2 * cl["llm_activations"]
    with pytest.raises(ValueError, match=r"^stage=3 is not a stage of schedule=c_vc_cl"):
        estimate(cfg, 3)


def test_the_stage_table_has_a_row_per_part_and_a_column_per_stage(capsys: pytest.CaptureFixture[str]) -> None:
    assert memory.main([*PRETRAINED, "schedule=c_cl", "--frames", "8"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "| part | stage1_c | stage2_cl |"
    assert lines[-1].startswith("| total | **") and len(lines) == 2 + 11


# one sample of one frame: the real SigLIP + Qwen2-0.5B in float32 (this CPU has no fast bf16),
# stage 1 of c_cl (the connector trains, gradients pass through the frozen LLM)
MEASURED = [
    "profile=fullsize",
    "profile.dtype=float32",
    "schedule=c_cl",
    "data.batch_size=1",
    "sampler.fps=0.2",
    "data.num_workers=0",
    "cache.features=false",
    "data.synthetic.n_train=4",
    "data.synthetic.n_eval=4",
    "data.synthetic.n_image=0",
    "data.synthetic.n_multi_image=0",
    "data.synthetic.n_text=0",
    "data.synthetic.min_duration=2",
    "data.synthetic.max_duration=3",
]


@pytest.mark.slow
def test_the_estimate_is_within_a_quarter_of_a_measured_fullsize_cpu_step(tmp_path: Path) -> None:
    args = [*MEASURED, f"paths.data_dir={tmp_path}"]
    # one step: what a second adds (AdamW's moments of the connector, 0.2 GB) is not worth its 1.5 minutes here
    cmd = [sys.executable, "-m", "src.tools.memory", "--measure", "0", "--steps", "1", *args]
    # a fresh process: its peak resident set is this step's, not earlier tests'
    proc = subprocess.Popen(cmd, cwd=ROOT, env=train_env(tmp_path, tmp_path), stdout=subprocess.PIPE, text=True)
    expected = estimate(cfg_with(*args), 0, frames=1, text_tokens=64)["total"]  # while the step runs
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0
    measured = json.loads(out.splitlines()[-1])
    assert measured["samples"] == 1 and measured["frames"] == 1 and measured["memory"] == "cpu_peak_rss"
    assert measured["peak_gb"] == pytest.approx(expected, rel=0.25), (measured, expected)
