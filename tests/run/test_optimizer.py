"""The optimizer, injected: the `optimizer` group's partial, called by the module with one
parameter group per part the stage trains, each with the stage's learning rate."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from src.models.module import VideoLMMModule, stepping_batches
from src.run.build import build_module
from tests.helpers import TINY_DATA, cfg_with, records, run_train


# another optimizer, whole: its target, AdamW's keys it does not take removed, one of its own
SGD = ["optimizer._target_=torch.optim.SGD", "~optimizer.betas", "~optimizer.eps",
       "+optimizer.momentum=0.9"]


class _Tiny(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.encoder, self.connector, self.llm = (torch.nn.Linear(2, 2) for _ in range(3))
        self.integration = torch.nn.Identity()


def _rates(opt: torch.optim.Optimizer) -> dict[str, float]:
    return {g["name"]: g["lr"] for g in opt.param_groups}


def test_adamw_by_default_with_the_schedules_weight_decay() -> None:
    cfg = cfg_with("schedule.weight_decay=0.1")  # as a sweep may set it
    module = build_module(cfg, _Tiny(), [0, 1])
    opt = module.optimizer_factory(module.param_groups())
    assert type(opt) is torch.optim.AdamW
    assert opt.defaults["weight_decay"] == 0.1 and opt.defaults["fused"] is True
    assert opt.defaults["betas"] == (0.9, 0.999) and opt.defaults["eps"] == 1e-8
    # a module built without one (tests, tools) has the same AdamW, without decay
    bare = VideoLMMModule(_Tiny(), [0, 1], {"lr": {"vision": 0.0, "connector": 1e-3, "llm": 1e-3}})
    assert type(bare.optimizer_factory(bare.param_groups())) is torch.optim.AdamW


@pytest.mark.parametrize(("overrides", "kind"), [
    (["optimizer._target_=torch.optim.Adam"], torch.optim.Adam),
    (SGD, torch.optim.SGD),
])
def test_another_optimizer_by_override(overrides: list[str], kind: type) -> None:
    module = build_module(cfg_with(*overrides), _Tiny(), [0, 1])
    opt = module.optimizer_factory(module.param_groups())
    assert type(opt) is kind
    assert _rates(opt) == {"connector": 1e-3, "llm": 3e-4}  # the stage's, whatever the optimizer


@pytest.mark.parametrize("schedule", ["c_vc_vcl", "vc_cl"])
def test_param_groups_carry_each_stages_per_part_rates(schedule: str) -> None:
    cfg = cfg_with(f"schedule={schedule}")
    stages = OmegaConf.to_container(cfg.schedule.stages, resolve=True)
    module = build_module(cfg, _Tiny(), [0, 1])
    for i, stage in enumerate(stages):
        module.apply_stage(stage, index=i)  # as src.run.stages moves from stage to stage
        opt = module.optimizer_factory(module.param_groups())
        assert _rates(opt) == {part: lr for part, lr in stage["lr"].items() if lr > 0}
        frozen = [part for part, lr in stage["lr"].items() if lr == 0]
        trained = {id(p) for g in opt.param_groups for p in g["params"]}
        assert not any(id(p) in trained for part in frozen for p in module.parts()[part].parameters())


def test_stepping_batches_follow_the_trainers_limits() -> None:
    assert stepping_batches(10, 1.0, 1, 3) == 30  # the default: every batch
    assert stepping_batches(10, 0.5, 1, 2) == 10 and stepping_batches(10, 4, 1, 2) == 8
    assert stepping_batches(10, 1.0, 3, 1) == 4  # accumulation: a step every 3 batches, the last short
    assert stepping_batches(10, 1.0, 1, 3, max_steps=1) == 1  # debug=fast
    assert stepping_batches(0, 1.0, 1, 1) == 1


@pytest.mark.slow
def test_a_run_trains_with_the_configured_optimizer(data_dir: Path, tmp_path: Path) -> None:
    proc = run_train(["debug=fast", "schedule=vc_cl", "logger=none", *SGD, *TINY_DATA], data_dir, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    [rec] = records(tmp_path)
    last = Path(rec["run_dir"]) / "checkpoints" / "last.ckpt"
    ckpt = torch.load(last, weights_only=True, map_location="cpu")
    [state] = ckpt["optimizer_states"]  # of the last stage: connector + LLM
    assert all(g["momentum"] == 0.9 and "betas" not in g for g in state["param_groups"])
    assert {g["name"]: g["initial_lr"] for g in state["param_groups"]} == {"connector": 1e-3, "llm": 3e-4}
