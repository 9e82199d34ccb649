"""The costs a run records (src/run/throughput.py): FLOPs by the PaLM rule, the device's peak,
and a tiny stage's steps, samples, tokens, memory and logged `perf/*` numbers."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch
from torch import nn

from src.launch.dist import Processes
from src.run.build import build_module, build_parts
from src.run.stages import train_schedule
from src.run.throughput import PEAK_ENV, Costs, FlopCounter, device_peak
from tests.helpers import TINY_DATA, cfg_with


def flops_of(fn: Any) -> float:
    with FlopCounter() as counter:
        fn()
    return counter.flops


def test_a_linear_costs_2n_forward_2n_per_gradient_that_flows() -> None:
    layer = nn.Linear(8, 4, bias=False)
    rows, n = 5, 8 * 4
    x = torch.randn(rows, 8)
    assert flops_of(lambda: layer(x)) == 4 * n * rows  # trained, no gradient for its input: forward + weights'
    layer.requires_grad_(False)
    assert flops_of(lambda: layer(x)) == 2 * n * rows  # frozen, forward only (the encoder)
    assert flops_of(lambda: layer(x.requires_grad_())) == 4 * n * rows  # frozen, gradients pass through
    layer.requires_grad_(True)
    assert flops_of(lambda: layer(x)) == 6 * n * rows  # trained, gradients flow on


def test_attention_counts_both_products_and_their_backward() -> None:
    q, k = torch.randn(2, 3, 10, 4), torch.randn(2, 3, 7, 4)
    fwd = 2 * 3 * (2 * 10 * 7 * 4) * 2  # batch x heads x (q k^T and weights v)
    sdpa = nn.functional.scaled_dot_product_attention
    assert flops_of(lambda: sdpa(q, k, k)) == fwd
    assert flops_of(lambda: sdpa(q.requires_grad_(), k, k)) == 3 * fwd


def test_the_peak_is_the_devices_unless_overridden(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PEAK_ENV, raising=False)
    assert device_peak("NVIDIA H100 80GB HBM3") == (989.0, None)
    assert device_peak("NVIDIA H100 PCIe")[0] == 756.0 and device_peak("NVIDIA A100-SXM4-80GB")[0] == 312.0
    peak, why = device_peak("Tesla T4")
    assert peak is None and why is not None and "unknown device 'Tesla T4'" in why
    assert device_peak(None)[0] is None
    monkeypatch.setenv(PEAK_ENV, "100")
    assert device_peak("Tesla T4") == (100.0, None) and device_peak(None, override=50) == (50.0, None)


@pytest.mark.usefixtures("one_thread")
def test_a_stage_records_its_steps_tokens_memory_and_logs_them(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PEAK_ENV, "1")  # a CPU with a made-up peak: the MFU path runs too
    steps = ["+trainer.limit_train_batches=3", "trainer.log_every_n_steps=1"]
    cfg = cfg_with(*TINY_DATA, f"paths.data_dir={data_dir}", "cache.features=false", *steps)
    L.seed_everything(0, verbose=False)
    parts = build_parts(cfg)
    module = build_module(cfg, parts.model, parts.option_token_ids)
    masks: list[int] = []  # the tokens the model lays out for training, seen from the model's side
    sequences = parts.model._sequences

    def spy(batch: Any) -> Any:
        out = sequences(batch)
        if torch.is_grad_enabled():
            masks.append(int(out[1].sum()))
        return out

    monkeypatch.setattr(parts.model, "_sequences", spy)
    logger = L.pytorch.loggers.CSVLogger(tmp_path, name="csv")
    costs = Costs()
    train_schedule(cfg, module, parts.datamodule, logger, tmp_path, Processes(), costs)
    rec = costs.record()
    stage = rec["stages"]["stage1_cl"]
    assert rec["steps"] == stage["steps"] == 3 and len(masks) == 3
    assert stage["tokens"] == sum(masks) and stage["padded_tokens"] >= stage["tokens"]
    assert stage["samples"] == 3 * cfg.data.batch_size
    assert stage["step_seconds_median"] > 0 and stage["tokens_per_second"] > stage["samples_per_second"] > 0
    assert rec["device"] == "cpu" and rec["memory"].startswith("cpu_peak_rss") and rec["peak_memory_gb"] > 0.1
    assert rec["peak_tflops"] == 1.0 and rec["model_tflops"] > 0 and rec["mfu"] > 0
    logger.finalize("success")
    rows = list(csv.DictReader((Path(logger.log_dir) / "metrics.csv").open()))
    logged = {k for r in rows for k, v in r.items() if v}
    assert {"perf/step_seconds", "perf/tokens_per_second", "perf/stage1_cl/mfu"} <= logged
