"""The connector: a projector to the LLM's width, then a resampler to a fixed token count."""

from __future__ import annotations

from typing import cast

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch import nn

from src.config.constraints import Constraints
from src.config.errors import ConfigError
from src.models.shrink import shrunk_heads


def check_choice(connector: DictConfig, key: str, root: DictConfig) -> None:
    """A connector option of the paper sets both parts; no `projector=`/`resampler=` may undo it."""
    for part in ("projector", "resampler"):
        fixed = connector.get(part)
        chosen = OmegaConf.select(root, f"{part}.name")
        if fixed is not None and chosen != fixed:
            raise ConfigError(
                f"{part}={chosen} contradicts {key}={connector.name}, "
                f"which sets {part}={fixed}; valid: leave {part}= out, or {key}=parts"
            )


CHOICE_CONSTRAINTS = Constraints(check=check_choice)  # conf/connector/*.yaml


class Connector(nn.Module):
    """(N, t, h, w, D_in) feature grid of N clips -> (N, tokens_per_clip, D_llm) tokens.

    The projector maps every grid cell to the LLM's width; the resampler takes the
    projected grid (N, t, h, w, D_llm) to tokens_per_clip tokens.
    """

    def __init__(self, projector: nn.Module, resampler: nn.Module) -> None:
        super().__init__()
        self.projector = projector
        self.resampler = resampler
        self.tokens_per_clip = cast(int, resampler.tokens_per_clip)  # every resampler's int

    def forward(self, grid: torch.Tensor) -> torch.Tensor:
        return self.resampler(self.projector(grid))


def build_connector(cfg: DictConfig, input_dim: int, width: int) -> Connector:
    """The config's projector (encoder features to the LLM's `width`) and resampler. An
    attention resampler works at the LLM's width, so its heads shrink with the LLM's
    (`shrunk_heads`): a replica's connector heads are narrowed as its LLM's are, by
    width_div / heads_div, not by width_div (the real Perceiver's 8 heads at Qwen2-0.5B's
    896: 112 wide, the LLM's 64; the tiny replica's 2 at 56: 28 wide, its LLM's 14)."""
    heads = {"heads": shrunk_heads(int(cfg.resampler.heads), cfg.profile)} if "heads" in cfg.resampler else {}
    return Connector(
        instantiate(cfg.projector)(input_dim=input_dim, output_dim=width),
        instantiate(cfg.resampler)(dim=width, **heads),
    )
