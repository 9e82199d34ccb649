"""The seven schedules of the paper's Table 12: stages, what trains, on which data, how long."""

from __future__ import annotations

import csv
from typing import Any

import pytest
import torch

from src.config.compose import group_options
from src.config.container import to_list
from src.config.errors import ConfigError
from src.config.validate import validate
from src.models.module import VideoLMMModule, WarmupCosine
from tests.helpers import ROOT, cfg_with

TABLE12 = list(csv.DictReader((ROOT / "analysis/reference/apollo_2412.10360/table12_training_schedules.csv").open()))
PARTS = {"vision": "v", "connector": "c", "llm": "l"}


def trained_parts(row: dict, k: int) -> str:
    """'vcl'-style letters of what trains in stage k of a Table 12 row (lr > 0)."""
    return "".join(PARTS[p] for p in PARTS if float(row[f"s{k}_lr_{p}"].split("(")[0]) > 0)


def paper_schedules() -> dict[str, set[str]]:
    """Schedule name (stages' letters joined by _) -> the Table 12 rows it stands for."""
    out: dict[str, set[str]] = {}
    for row in TABLE12:
        name = "_".join(trained_parts(row, k) for k in range(1, int(row["n_stages"]) + 1))
        out.setdefault(name, set()).add(row["row"])
    return out


def test_the_seven_schedules_of_table_12_are_options() -> None:
    assert len(paper_schedules()) == 7
    assert set(paper_schedules()) <= set(group_options("schedule"))  # more may be added


# the paper's schedules; every option (any other too) passes start-up validation in test_configs
@pytest.mark.parametrize("option", sorted(paper_schedules()))
def test_each_stage_trains_what_the_name_says_on_the_papers_data(option: str) -> None:
    cfg = cfg_with(f"schedule={option}")
    validate(cfg)
    stages = to_list(cfg.schedule.stages, resolve=True)
    assert len(stages) == len(option.split("_"))
    for stage, letters in zip(stages, option.split("_")):
        assert "".join(PARTS[p] for p in PARTS if stage["lr"][p] > 0) == letters
        # the paper's rule: video only while the LLM is frozen; the mixture when it trains
        assert stage["data"] == ("mixture" if "l" in letters else "video")
        assert stage["epochs"] == (cfg.profile.epochs if "l" in letters else cfg.profile.align_epochs)
    assert cfg.schedule.warmup_ratio == 0.03


def test_pretrained_defaults_to_the_papers_best_schedule_with_its_rates() -> None:
    cfg = cfg_with("profile=pretrained", "llm=qwen2.5-7b")
    assert cfg.schedule.name == "c_vc_cl"
    stages = to_list(cfg.schedule.stages, resolve=True)
    assert [s["lr"] for s in stages] == [
        {"vision": 0.0, "connector": 1e-4, "llm": 0.0},
        {"vision": 5e-6, "connector": 1e-4, "llm": 0.0},  # Table 12, row 13
        {"vision": 0.0, "connector": 1e-4, "llm": cfg.llm.lr},
    ]
    sizes = {o: cfg_with("profile=pretrained", f"llm={o}") for o in ("qwen2.5-1.5b", "qwen2.5-3b", "qwen2.5-7b")}
    assert [c.profile.lr.llm for c in sizes.values()] == [5e-5, 2e-5, 1e-5]
    assert cfg_with("profile=pretrained", "schedule=vcl").schedule.name == "vcl"  # the command line wins
    assert cfg_with().schedule.name == "cl"  # tiny: one stage


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ("schedule.stages.0.data=audio", "schedule.stages[0].data='audio' is invalid; valid: mixture, video"),
        ("checkpoint.every_minutes=0", "checkpoint.every_minutes=0 is invalid"),
        ("checkpoint.every_steps=-2", "checkpoint.every_steps=-2 is invalid"),
    ],
)
def test_bad_stage_and_checkpoint_settings_are_one_line(override: str, needle: str) -> None:
    with pytest.raises(ConfigError, match="^" + needle.replace("[", r"\[").replace("]", r"\]")):
        validate(cfg_with(override))


class _Tiny(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.encoder, self.connector, self.llm = (torch.nn.Linear(2, 2) for _ in range(3))
        self.integration = torch.nn.Identity()


def test_a_stage_freezes_what_it_does_not_train_and_groups_the_rest() -> None:
    model: Any = _Tiny()  # a stand-in for a VideoLMM: its four parts only
    module = VideoLMMModule(model, [0, 1], {"lr": {"vision": 0.0, "connector": 1e-3, "llm": 0.0}})
    assert not any(p.requires_grad for p in module.model.encoder.parameters())
    assert all(p.requires_grad for p in module.model.connector.parameters())
    module.apply_stage({"lr": {"vision": 5e-6, "connector": 1e-4, "llm": 0.0}}, index=1)
    assert module.stage_index == 1 and not module.stage_done
    assert all(p.requires_grad for p in module.model.encoder.parameters())
    assert not any(p.requires_grad for p in module.model.llm.parameters())


def test_warmup_then_cosine_to_zero() -> None:
    f = WarmupCosine(total=100, ratio=0.03)
    assert [round(f(s), 4) for s in (0, 1, 2)] == [0.3333, 0.6667, 1.0]
    assert f(3) == pytest.approx(1.0) and f(100) == pytest.approx(0.0, abs=1e-9)
    assert f(3 + 97 // 2) == pytest.approx(0.5, abs=0.02)
    assert f.__dict__ == {"total": 100, "warmup": 3}  # plain numbers: checkpoints load weights_only
