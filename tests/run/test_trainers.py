"""The trainer options: what runs on this CPU builds a Trainer; FSDP builds its strategy."""

from __future__ import annotations

import pytest
from hydra.utils import instantiate
from lightning.pytorch.strategies import DDPStrategy, FSDPStrategy, SingleDeviceStrategy
from transformers.models.qwen2.modeling_qwen2 import Qwen2DecoderLayer

from tests.helpers import cfg_with


@pytest.mark.parametrize(
    ("overrides", "strategy"),
    [
        (["trainer=cpu"], SingleDeviceStrategy),
        (["trainer=ddp", "trainer.accelerator=cpu"], DDPStrategy),
    ],
)
def test_cpu_trainers_build(overrides: list[str], strategy: type) -> None:
    trainer = instantiate(cfg_with(*overrides).trainer, logger=False)
    assert isinstance(trainer.strategy, strategy)
    assert trainer.gradient_clip_val == 1.0
    # the run's own samplers split and resume the data; Lightning must not wrap them
    assert trainer._accelerator_connector.use_distributed_sampler is False


def test_fsdp_shards_every_transformer_block_in_bf16() -> None:
    cfg = cfg_with("trainer=fsdp")
    assert cfg.trainer.precision == "bf16-mixed" and cfg.trainer.accelerator == "gpu"
    strategy = instantiate(cfg.trainer.strategy)
    assert isinstance(strategy, FSDPStrategy)
    assert Qwen2DecoderLayer in strategy.kwargs["auto_wrap_policy"]._module_classes
