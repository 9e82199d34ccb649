"""Assembling one run from its composed config: data, tokenizer, model, logger, trainer."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from src.data.manifest import LETTERS, MODALITIES
from src.models.connectors.connector import Connector
from src.models.llm import build_llm, build_tokenizer
from src.models.videolmm import VideoLMM


@dataclass
class Parts:
    datamodule: Any
    tokenizer: Any
    model: VideoLMM
    sampler: Any
    option_token_ids: list[int]


def count_params(module: Any, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def option_token_ids(tokenizer: Any, n: int) -> list[int]:
    """The token of each option letter, as the answer's first token."""
    ids = [tokenizer.encode(letter, add_special_tokens=False) for letter in LETTERS[:n]]
    bad = [LETTERS[i] for i, t in enumerate(ids) if len(t) != 1]
    if bad:
        raise ValueError(f"the tokenizer splits option letter(s) {bad} into several tokens")
    return [t[0] for t in ids]


def build_parts(cfg: DictConfig) -> Parts:
    """Data first (the tiny tokenizer is built from its text), then the model's components."""
    mixture = OmegaConf.to_container(cfg.mixture, resolve=True) if "mixture" in cfg else None
    datamodule = instantiate(cfg.data, mixture=mixture, seed=cfg.seed)
    datamodule.prepare_data()
    tokenizer = build_tokenizer(cfg.llm, cfg.profile, datamodule.corpus())
    encoder = instantiate(cfg.encoder)
    llm = build_llm(cfg.llm, cfg.profile, vocab_size=len(tokenizer))
    width = int(llm.config.hidden_size)
    connector = Connector(instantiate(cfg.projector)(input_dim=encoder.embed_dim, output_dim=width),
                          instantiate(cfg.resampler)(dim=width))
    model = VideoLMM(encoder, connector, llm, pad_token_id=tokenizer.pad_token_id)
    sampler = instantiate(cfg.sampler)
    datamodule.attach(sampler, tokenizer)
    max_options = max(len(s.options or ()) for s in (*datamodule.train_samples, *datamodule.eval_samples))
    return Parts(datamodule, tokenizer, model, sampler, option_token_ids(tokenizer, max_options))


def design(cfg: DictConfig, parts: Parts) -> dict[str, Any]:
    """The numbers that place this run in the design space."""
    from src.data.samplers import tokens_design

    model = parts.model
    fps = OmegaConf.select(cfg, "sampler.fps")
    epochs = sum(int(s.epochs) for s in cfg.schedule.stages)
    data = parts.datamodule
    train_size = len(data.train_samples)
    counts = data.report()["mixture"]["epoch_counts"]
    return {
        "encoder": cfg.encoder.name,
        "llm": cfg.llm.name,
        "llm_size_b": float(cfg.llm.size_b),
        "fps": None if fps is None else float(fps),
        "num_frames": OmegaConf.select(cfg, "sampler.num_frames"),  # uniform sampling's N
        **tokens_design(fps, model.encoder.frames_per_clip, model.connector.tokens_per_clip),
        "frames_per_clip": model.encoder.frames_per_clip,
        "train_set_size": train_size,
        "training_samples": data.epoch_size * epochs,
        # each modality's share of an epoch's samples (the mixture's, or what the data holds)
        "mixture": {m: round(counts.get(m, 0) / data.epoch_size, 4) for m in MODALITIES},
        "params": {
            "encoder": count_params(model.encoder),
            "connector": count_params(model.connector),
            "llm": count_params(model.llm),
            "total": count_params(model),
        },
    }


def run_id(sweep: str, run_name: str) -> str:
    """A stable W&B run id: a re-run of the same grid point logs to the same W&B run."""
    return hashlib.sha1(f"{sweep}/{run_name}".encode()).hexdigest()[:16]


def build_logger(cfg: DictConfig, run_dir: Path, run_name: str, choices: dict[str, str]) -> Any:
    """The experiment logger of `logger=`, or False for `logger=none`."""
    if "_target_" not in cfg.logger:
        return False
    kind = cfg.logger.name
    if kind == "wandb":
        tags = [f"{group}={choice}" for group, choice in sorted(choices.items())][:64]
        logger = instantiate(cfg.logger, save_dir=str(run_dir), group=cfg.sweep, name=run_name,
                             id=run_id(cfg.sweep, run_name), resume="allow", tags=tags,
                             job_type="train")
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
        return logger
    return instantiate(cfg.logger, save_dir=str(run_dir))
