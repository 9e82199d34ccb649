"""Real and tiny parameter counts of every `llm` and `encoder` option: `python -m src.tools.sizes`.

Real models are built on the meta device (no memory, no download); tiny ones for real,
with the vocabulary of the default synthetic benchmark's tokenizer (given as an
argument, since it depends on the data). Prints a Markdown table (docs/models.md).
"""

from __future__ import annotations

import argparse
from typing import Any

import torch
from hydra.utils import get_class, instantiate
from omegaconf import OmegaConf

from src.config.compose import CONF_DIR, group_options, option_config
from src.config.container import to_dict
from src.models.shrink import shrink_arch

TINY = to_dict(OmegaConf.load(CONF_DIR / "profile" / "tiny.yaml"))
REAL = to_dict(OmegaConf.load(CONF_DIR / "profile" / "pretrained.yaml"))


def _count(model_class: str, config_class: str, arch: dict[str, Any], meta: bool) -> int:
    config = get_class(config_class)(**arch)
    with torch.device("meta" if meta else "cpu"):
        model = get_class(model_class)(config)
    return sum(p.numel() for p in model.parameters())


def llm_params(option: str, profile: dict[str, Any], vocab_size: int | None = None) -> int:
    cfg = to_dict(option_config("llm", option))
    arch = shrink_arch(cfg["arch"], profile)
    if vocab_size is not None:
        arch["vocab_size"] = vocab_size
    return _count(cfg["model_class"], cfg["config_class"], arch, meta=profile["name"] != "tiny")


def encoder_params(option: str, profile: dict[str, Any]) -> int:
    """Built by the option's own class, from its architecture shrunk by `profile` (never loaded:
    the pretrained profile's factors, all 1, give the real architecture); a pair: its members' sum.
    """
    if "+" in option:
        return sum(encoder_params(member, profile) for member in option.split("+"))
    cfg = OmegaConf.load(CONF_DIR / "encoder" / f"{option}.yaml")
    cfg.profile = {**profile, "name": "architecture"}  # any name but `pretrained`: build, not load
    with torch.device("meta" if profile["name"] != "tiny" else "cpu"):
        encoder = instantiate(cfg)
    return sum(p.numel() for p in encoder.parameters())


def _fmt(n: int) -> str:
    return f"{n / 1e9:.2f} B" if n >= 1e9 else f"{n / 1e6:.2f} M"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m src.tools.sizes", description=__doc__.split("\n")[0])
    p.add_argument("--vocab", type=int, default=None, help="tiny vocabulary size (default: keep the real one)")
    args = p.parse_args(argv)
    print("| option | real params | tiny params | real / tiny |")
    print("|---|---|---|---|")
    for group, count in (("llm", llm_params), ("encoder", encoder_params)):
        for option in group_options(group):
            if "+" in option:  # a pair of encoders counts its members' sum
                continue
            kwargs = {"vocab_size": args.vocab} if group == "llm" else {}
            real = count(option, REAL)
            tiny = count(option, TINY, **kwargs)
            print(f"| {group}={option} | {_fmt(real)} | {_fmt(tiny)} | {real / tiny:,.0f} |")
    print("\nA pair of encoders (`encoder=a+b`) has the sum of its members' parameters.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
