"""Assembling one run from its composed config: data, tokenizer, model, its LightningModule."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from src.cache.features import FeatureCache
from src.config.container import to_dict
from src.data.manifest import LETTERS, MODALITIES
from src.models.connectors.connector import build_connector
from src.models.integration import timestamp_corpus
from src.models.llm import build_llm, build_tokenizer
from src.models.module import VideoLMMModule
from src.models.precision import apply_switches, weight_dtypes
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


def build_feature_cache(cfg: DictConfig) -> FeatureCache | None:
    """The frozen encoder's feature cache (`cache.features`), or None when it is off (and for
    a config from before it existed)."""
    if not OmegaConf.select(cfg, "cache.features", default=False):
        return None
    cache = FeatureCache(cfg.cache.dir, cfg.cache.max_gb)
    cache.store.evict()  # a lowered limit applies from the start
    return cache


def build_model(cfg: DictConfig, tokenizer: Any, feature_cache: FeatureCache | None = None) -> VideoLMM:
    """The VideoLMM of a composed config: encoder, connector (projector, resampler), token
    integration and LLM, each from its group, the LLM's width passed to those that need it.
    Weights in the dtypes of the precision policy (src/models/precision.py): float32 for the
    parts the schedule trains."""
    dtypes = weight_dtypes(cfg)
    encoder = apply_switches(instantiate(cfg.encoder), dtypes["vision"], cfg.profile.gradient_checkpointing, "encoder")
    llm = build_llm(cfg.llm, cfg.profile, vocab_size=len(tokenizer), dtype=dtypes["llm"])
    width = int(llm.config.hidden_size)
    connector = build_connector(cfg, encoder.embed_dim, width)
    integration = instantiate(cfg.integration)(dim=width, tokenizer=tokenizer)
    return VideoLMM(
        encoder,
        connector,
        llm,
        pad_token_id=tokenizer.pad_token_id,
        integration=integration,
        feature_cache=feature_cache,
    )


def build_module(cfg: DictConfig, model: VideoLMM, option_token_ids: list[int], stage: int = 0) -> VideoLMMModule:
    """The LightningModule at stage `stage` of the schedule, with the `optimizer` group's
    optimizer (a partial it calls with its per-part parameter groups). A run composed before
    the group existed has none: the module's default, the AdamW of conf/optimizer/adamw.yaml."""
    optimizer = instantiate(cfg.optimizer) if "optimizer" in cfg else None
    return VideoLMMModule(
        model,
        option_token_ids,
        to_dict(cfg.schedule.stages[stage], resolve=True),
        optimizer=optimizer,
        warmup_ratio=cfg.schedule.warmup_ratio,
    )


def build_parts(cfg: DictConfig, tokenizer: Any = None) -> Parts:
    """Data first (the tiny tokenizer is built from its text), then the model's components.

    `tokenizer`: the one a run trained with (src.eval), instead of building it again.
    """
    mixture = OmegaConf.to_container(cfg.mixture, resolve=True) if "mixture" in cfg else None
    datamodule = instantiate(cfg.data, mixture=mixture, seed=cfg.seed)
    datamodule.prepare_data()
    # with timestamp integration, its words too: the tiny word-level tokenizer must know them
    corpus = itertools.chain(datamodule.corpus(), timestamp_corpus(cfg.integration.timestamps))
    tokenizer = tokenizer or build_tokenizer(cfg.llm, cfg.profile, corpus)
    cache = build_feature_cache(cfg)
    model = build_model(cfg, tokenizer, feature_cache=cache)
    sampler = instantiate(cfg.sampler)
    datamodule.attach(sampler, tokenizer, encoder=model.encoder, feature_cache=cache)
    max_options = max(len(s.options or ()) for s in (*datamodule.train_samples, *datamodule.eval_samples))
    return Parts(datamodule, tokenizer, model, sampler, option_token_ids(tokenizer, max_options))


def design(cfg: DictConfig, parts: Parts) -> dict[str, Any]:
    """The numbers that place this run in the design space."""
    from src.data.samplers import sampling_design

    model = parts.model
    stages = cfg.schedule.stages
    data = parts.datamodule
    train_size = len(data.train_samples)
    counts = data.report()["mixture"]["epoch_counts"]
    return {
        "encoder": cfg.encoder.name,
        "llm": cfg.llm.name,
        "llm_size_b": float(cfg.llm.size_b),
        # fps (also when a token rate sets it) or uniform's N; tokens per frame, clip, second
        **sampling_design(parts.sampler, model.encoder.frames_per_clip, model.connector.tokens_per_clip),
        "frames_per_clip": model.encoder.frames_per_clip,
        "train_set_size": train_size,
        "schedule": cfg.schedule.name,
        # each part's highest learning rate over the stages (0: frozen throughout), so that runs
        # that differ in a rate only (Table 12's vision rates) are told apart in the analysis
        "lr": {part: max(float(st.lr[part]) for st in stages) for part in ("vision", "connector", "llm")},
        "stages": len(stages),
        "training_samples": sum(int(s.epochs) * data.epoch_size_of(s.data) for s in stages),
        # each modality's share of an epoch's samples (the mixture's, or what the data holds)
        "mixture": {m: round(counts.get(m, 0) / data.epoch_size, 4) for m in MODALITIES},
        "params": {
            "encoder": count_params(model.encoder),
            "connector": count_params(model.connector),
            "projector": count_params(model.connector.projector),
            "resampler": count_params(model.connector.resampler),
            "integration": count_params(model.integration),
            "llm": count_params(model.llm),
            "total": count_params(model),
        },
    }
