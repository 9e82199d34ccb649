"""The trainer options: what runs on this CPU builds a Trainer (FSDP too, on gloo)."""

from __future__ import annotations

import pytest
from hydra.utils import instantiate
from lightning.pytorch.strategies import DDPStrategy, ModelParallelStrategy, SingleDeviceStrategy
from transformers.models.qwen2.modeling_qwen2 import Qwen2DecoderLayer

from src.models.wrap import decoder_blocks
from tests.helpers import cfg_with


@pytest.mark.parametrize(
    ("overrides", "strategy"),
    [
        (["trainer=cpu"], SingleDeviceStrategy),
        (["trainer=ddp", "trainer.accelerator=cpu"], DDPStrategy),
        (["trainer=fsdp", "trainer.accelerator=cpu", "trainer.precision=32-true"], ModelParallelStrategy),
    ],
)
def test_cpu_trainers_build(overrides: list[str], strategy: type) -> None:
    trainer = instantiate(cfg_with(*overrides).trainer, logger=False)
    assert isinstance(trainer.strategy, strategy)
    assert trainer.gradient_clip_val == 1.0
    # the run's own samplers split and resume the data; Lightning must not wrap them
    assert trainer._accelerator_connector.use_distributed_sampler is False


def test_fsdp_shards_every_process_in_bf16() -> None:
    """FSDP2: data parallel over every process (8 GPUs of a node by default), no tensor
    parallelism, bf16 compute, a checkpoint of whole tensors; each LLM layer is a unit."""
    cfg = cfg_with("trainer=fsdp", "trainer.devices=4", "trainer.num_nodes=2")
    assert cfg.trainer.precision == "bf16-mixed"
    strategy = instantiate(cfg.trainer.strategy)
    assert isinstance(strategy, ModelParallelStrategy)
    assert strategy._data_parallel_size == 8 and strategy._tensor_parallel_size == 1
    assert strategy._save_distributed_checkpoint is False
    assert Qwen2DecoderLayer in decoder_blocks()
