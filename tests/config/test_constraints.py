"""Start-up validation as the components state it: every constraint names keys that exist,
each component's own rules are found and applied, and a bad value is one line."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
from omegaconf import DictConfig, OmegaConf

from src.config.compose import config_groups, group_options
from src.config.constraints import Constraints, Rule, nullable, positive_int
from src.config.errors import ConfigError
from src.config.validate import OWNERS, constrained_nodes, validate
from tests.helpers import cfg_with

ALL = [(g, o) for g in config_groups() for o in group_options(g)]


@pytest.mark.parametrize(("group", "option"), ALL)
def test_every_rule_names_a_key_of_the_composed_config(group: str, option: str) -> None:
    cfg = cfg_with(f"{group}={option}")
    for key, node, constraints in constrained_nodes(cfg):
        for rule in constraints.rules:
            if not rule.optional:
                assert OmegaConf.select(node, rule.key, default="<absent>") != "<absent>", (
                    f"{group}={option}: {key}'s rule names {rule.key!r}, which is not in the config"
                )
    for split in ("train", "eval"):  # manifests an option leaves to the user (`???`)
        if split in cfg.data.keys() and OmegaConf.is_missing(cfg.data, split):  # noqa: SIM118 - `in` skips ???
            cfg.data[split] = f"DIR/{split}.jsonl"
    validate(cfg)  # and every option is valid as shipped


def test_every_owner_names_a_node_of_the_config() -> None:
    cfg = cfg_with()
    found = {key for key, _, _ in constrained_nodes(cfg)}
    assert set(OWNERS) <= found
    # every group with a `_target_` of ours is checked by its class, not by a table
    assert {"encoder", "resampler", "sampler", "data", "integration"} <= found


@pytest.mark.parametrize(
    ("override", "says"),
    [
        ("resampler.heads=0", "resampler.heads=0 is invalid; valid: an integer > 0"),
        ("resampler.tokens_per_clip=-1", "resampler.tokens_per_clip=-1 is invalid; valid: an integer > 0"),
        ("sampler.max_clips=0", "sampler.max_clips=0 is invalid; valid: an integer > 0, or null"),
        ("data.batch_size=0", "data.batch_size=0 is invalid; valid: an integer > 0"),
        ("data.num_workers=-1", "data.num_workers=-1 is invalid; valid: an integer >= 0, or auto (null: auto)"),
        ("data.num_workers=many", "data.num_workers='many' is invalid; valid: an integer >= 0, or auto (null: auto)"),
        ("data.pin_memory=yes", "data.pin_memory='yes' is invalid; valid: auto, true or false"),
        ("llm.chat_template=alpaca", "llm.chat_template='alpaca' is invalid; valid: chatml"),
        ("llm.lr=0", "llm.lr=0 is invalid; valid: a number > 0"),
        ("profile.dtype=int8", "profile.dtype='int8' is invalid; valid: float32, bfloat16, float16"),
        ("seed=1.5", "seed=1.5 is invalid; valid: an integer"),
        ("eval.batch_size=0", "eval.batch_size=0 is invalid; valid: an integer > 0"),
        ("integration.timestamps='{start}'", "integration.timestamps='{start}' is invalid; valid: null, or a text"),
        (
            "encoder=internvideo2+siglip encoder.members.siglip.frames_per_clip=0",
            "encoder.members.siglip.frames_per_clip=0 is invalid; valid: an integer > 0",
        ),
    ],
)
def test_a_bad_value_is_one_line_naming_key_value_and_what_is_valid(override: str, says: str) -> None:
    with pytest.raises(ConfigError) as e:
        validate(cfg_with(*override.split()))
    assert str(e.value).startswith(says) and "\n" not in str(e.value)


class Pooler:
    """A component as a user would add one: its constraints beside its code."""

    CONSTRAINTS: ClassVar[Constraints] = Constraints(
        Rule("tokens_per_clip", positive_int, "an integer > 0"),
        Rule("stride", nullable(positive_int), "an integer > 0, or null", optional=True),
        check=lambda node, key, root: _even(node, key),
    )


def _even(node: DictConfig, key: str) -> None:
    if node.tokens_per_clip % 2:
        raise ConfigError(f"{key}.tokens_per_clip={node.tokens_per_clip} is invalid; valid: an even number")


def _with_pooler(**values: Any) -> DictConfig:
    cfg = cfg_with()
    cfg.resampler = OmegaConf.create({"_target_": f"{__name__}.Pooler", **values})
    return cfg


def test_a_new_component_is_checked_by_its_own_class() -> None:
    validate(_with_pooler(tokens_per_clip=4))
    validate(_with_pooler(tokens_per_clip=4, stride=2))
    with pytest.raises(ConfigError, match=r"^resampler.tokens_per_clip=0 is invalid; valid: an integer > 0$"):
        validate(_with_pooler(tokens_per_clip=0))
    with pytest.raises(ConfigError, match=r"^resampler.stride=0 is invalid"):
        validate(_with_pooler(tokens_per_clip=4, stride=0))
    with pytest.raises(ConfigError, match=r"^resampler.tokens_per_clip=3 is invalid; valid: an even number$"):
        validate(_with_pooler(tokens_per_clip=3))


def test_a_target_that_does_not_import_is_one_line() -> None:
    cfg = cfg_with()
    cfg.resampler = OmegaConf.create({"_target_": "src.models.connectors.nowhere.Pooler", "tokens_per_clip": 4})
    with pytest.raises(
        ConfigError,
        match=r"^resampler._target_='src.models.connectors.nowhere.Pooler' is invalid; "
        r"valid: an importable name",
    ):
        validate(cfg)


def test_other_libraries_targets_are_left_to_them() -> None:
    keys = {key for key, _, _ in constrained_nodes(cfg_with("trainer=ddp"))}
    assert not any(k.startswith("logger") for k in keys)
    # the trainer node only through OWNERS (our precision check), never its strategy or plugins
    assert {k for k in keys if k.startswith("trainer")} == {"trainer"}
