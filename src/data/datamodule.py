"""The LightningDataModule: training samples (with a mixture) and multiple-choice eval items."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import lightning as L
import numpy as np
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DataLoader

from src.cache.features import FeatureCache, FeatureLookup
from src.config.constraints import Constraints, Rule, boolean, join, nullable, positive_int
from src.config.container import to_dict
from src.config.errors import ConfigError
from src.data.dataset import EVAL_MODALITIES, SampleDataset, collate, shown_as
from src.data.errors import DataError, ManifestError
from src.data.frames import loader_size
from src.data.manifest import MEDIA_TAG, ReadReport, Sample, modality_counts, read_manifest
from src.data.mixture import DROPOUT_MODALITIES, MixtureSampler, check_dropout
from src.data.order import Order, ResumableLoader, Shard, Shuffled
from src.data.workers import AUTO, pins, resolve_workers, valid_workers


def drop_modalities(
    samples: list[Sample], shares: Mapping[str, float], seed: int
) -> tuple[list[Sample], dict[str, int]]:
    """The samples with a seeded share of the video ones shown as their centre frame or as
    text only (`shown_as`), and how many of each. One uniform draw per video sample, in
    manifest order, from a generator of its own: the same samples for the same seed."""
    counts = dict.fromkeys(DROPOUT_MODALITIES, 0)
    if not any(shares.values()):
        return samples, counts
    rng = np.random.default_rng([seed, 0x6D6F64])  # a stream of its own ("mod")
    out = []
    for sample in samples:
        if sample.modality == "video":
            u, edge = rng.random(), 0.0
            for m in DROPOUT_MODALITIES:
                edge += shares[m]
                if u < edge:
                    sample = shown_as(sample, m)
                    counts[m] += 1
                    break
        out.append(sample)
    return out, counts


def check_data(node: DictConfig, key: str, root: DictConfig) -> None:
    """Manifests the option leaves to the user (`???`) are given; modality dropout is valid."""
    for split in ("train", "eval"):
        if split in node.keys() and OmegaConf.is_missing(node, split):  # noqa: SIM118 - `in` skips a ??? value
            raise ConfigError(
                f"{join(key, split)} is not set; valid: the path of a JSON or JSONL manifest "
                f"({join(key, split)}=DIR/{split}.jsonl)"
            )
    dropout = node.get("modality_dropout")
    if dropout is not None:
        try:
            check_dropout(to_dict(dropout) if OmegaConf.is_dict(dropout) else dropout)
        except DataError as e:
            raise ConfigError(str(e)) from None


class VideoQADataModule(L.LightningDataModule):
    """A training manifest (multiple-choice or LLaVA-style) and a multiple-choice eval split.

    With `synthetic` set (a SyntheticSpec's fields), the benchmark is generated under
    `root` on first use, and `train` / `eval` default to its two splits. `mixture` (the
    `mixture` config group) sets the shares of text, image, multi-image and video
    samples in each training epoch; without shares, every training sample once an epoch.
    `eval_modalities` (the modality audit): each eval item is scored once per modality
    named, `video`, `frame` (the centre frame) or `text` (no media), one test dataloader each.
    `eval_circular`: the modalities scored circularly (each item once per rotation of its
    options, right only if right under all: src/data/circular.py); the others once.
    `modality_dropout` ({"frame": p, "text": q}): a seeded, fixed share p of the training
    video samples is shown as its centre frame only and a share q as text only (as the
    audit's `frame` and `text` show eval items), so that a model learns to answer what one
    frame or the question alone answers; they then count as image and text samples.
    `train_limit` (debug=overfit): each stage trains on the first N samples of its data only,
    the same N every epoch (a mixture's shares then do not apply); `eval_limit` (debug=fast):
    the first N eval items are scored; null: all. The tokenizer still reads every sample.
    `num_workers`: loader processes per rank; `auto` (or null): by the launcher's CPUs
    (src/data/workers.py). `pin_memory`: `auto` pins batches when the trainer runs on a
    CUDA GPU. `resize_in_workers`: the workers resize frames to the attached encoder's
    input size (src/data/frames.py), so batches carry frames at that size; conf/data sets it
    true, and its default here, false, keeps a run saved before the key existed (src.eval)
    on the whole frames it was trained on.
    """

    name: str  # (LightningDataModule's may be None; this one always has one)

    CONSTRAINTS: ClassVar[Constraints] = Constraints(
        Rule("batch_size", positive_int, "an integer > 0"),
        Rule("num_workers", valid_workers, "an integer >= 0, or auto (null: auto)"),
        Rule("pin_memory", lambda v: v in (None, AUTO) or boolean(v), "auto, true or false"),
        Rule("resize_in_workers", boolean, "true or false"),
        Rule("train_limit", nullable(positive_int), "an integer > 0, or null"),
        Rule("eval_limit", nullable(positive_int), "an integer > 0, or null"),
        check=check_data,
    )

    def __init__(
        self,
        name: str,
        root: str,
        batch_size: int = 8,
        eval_batch_size: int = 16,
        num_workers: int | str | None = 0,
        pin_memory: bool | str | None = AUTO,
        resize_in_workers: bool = False,
        synthetic: Mapping[str, Any] | None = None,
        train: str | None = None,
        eval: str | None = None,
        media_root: str | None = None,
        mixture: Mapping[str, Any] | None = None,
        seed: int = 0,
        eval_modalities: Sequence[str] = ("video",),
        eval_circular: Sequence[str] = (),
        modality_dropout: Mapping[str, float] | None = None,
        train_limit: int | None = None,
        eval_limit: int | None = None,
    ) -> None:
        super().__init__()
        if not valid_workers(num_workers):
            raise ValueError(f"num_workers={num_workers!r} is invalid; valid: an integer >= 0, auto or null")
        pins(pin_memory, None)  # a bad value fails here, not at the first loader
        self.train_limit, self.eval_limit = train_limit, eval_limit
        self.modality_dropout = check_dropout(modality_dropout)
        bad = [m for m in eval_modalities if m not in EVAL_MODALITIES]
        if bad or not eval_modalities:
            raise ValueError(
                f"eval_modalities={list(eval_modalities)} is invalid; valid: a "
                f"non-empty list of {', '.join(EVAL_MODALITIES)}"
            )
        if any(m not in EVAL_MODALITIES for m in eval_circular):
            raise ValueError(
                f"eval_circular={list(eval_circular)} is invalid; valid: a list of {', '.join(EVAL_MODALITIES)}"
            )
        self.eval_modalities = list(dict.fromkeys(eval_modalities))
        self.eval_circular = set(eval_circular)
        self.name = name
        self.root = Path(root)
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.num_workers = num_workers  # as set: an integer, or auto / None
        self.pin_memory = pin_memory
        self.resize_in_workers = resize_in_workers
        self.frame_size: int | None = None  # the side the workers resize frames to (attach)
        self.loading: dict[str, Any] | None = None  # what the last loader made used (report)
        self.synthetic = dict(synthetic) if synthetic else None
        self.train_path = Path(train) if train else None
        self.eval_path = Path(eval) if eval else None
        self.media_root = media_root
        self.mixture = dict(mixture or {"name": "natural", "shares": None})
        self.seed = seed
        self.sampler: Callable | None = None
        self.tokenizer: Any = None
        self.encoder: Any = None
        self.feature_cache: FeatureCache | None = None
        self.train_samples: list[Sample] = []
        self.dropped: dict[str, int] = dict.fromkeys(DROPOUT_MODALITIES, 0)
        self.eval_samples: list[Sample] = []
        self.reports: dict[str, ReadReport] = {}
        self.train_sampler: MixtureSampler | None = None
        self.stage_data = "mixture"  # what a stage trains on: "mixture", or "video" samples only
        self.stage_index = 0

    def prepare_data(self) -> None:
        if self.train_samples:  # Lightning calls this again at fit and test
            return
        if self.synthetic is not None:
            from src.data.synthetic import SyntheticSpec, ensure

            spec = SyntheticSpec.from_dict(self.synthetic)
            folder = ensure(spec, self.root)
            self.train_path = self.train_path or folder / "train.jsonl"
            self.eval_path = self.eval_path or folder / "eval.jsonl"
        for split, path in (("train", self.train_path), ("eval", self.eval_path)):
            if path is None or not path.is_file():
                raise ManifestError(f"data.{split}={path}: no such manifest file")
        assert self.train_path is not None and self.eval_path is not None  # checked just above
        self.train_samples, self.reports["train"] = read_manifest(
            self.train_path, self.name, media_root=self.media_root
        )
        self.eval_samples, self.reports["eval"] = read_manifest(
            self.eval_path, self.name, mcq_only=True, media_root=self.media_root
        )
        self.train_samples, self.dropped = drop_modalities(self.train_samples, self.modality_dropout, self.seed)
        if self.mixture.get("shares"):
            self.train_sampler = MixtureSampler(
                [s.modality for s in self.train_samples],
                self.mixture["shares"],
                self.mixture.get("epoch_size"),
                seed=self.seed,
                name=f"mixture={self.mixture.get('name')}",
            )

    def corpus(self) -> Iterator[str]:
        """Every text the model will read or write: what the tiny tokenizer is built from."""
        for sample in (*self.train_samples, *self.eval_samples):
            for _, text in sample.turns:
                yield MEDIA_TAG.sub(" ", text)
        yield "user assistant system"

    @property
    def epoch_size(self) -> int:
        """Samples in an epoch of the mixture (all of the training data, or the mixture's draw)."""
        return self.train_sampler.epoch_size if self.train_sampler else len(self.train_samples)

    def epoch_size_of(self, data: str) -> int:
        """Samples in an epoch of a stage that trains on `data` ("mixture" or "video")."""
        if self.train_limit is not None:
            return len(self._limited(data))
        return self.epoch_size if data == "mixture" else len(self._video_indices())

    def _limited(self, data: str) -> list[int]:
        """The first `train_limit` samples of a stage's data, in manifest order."""
        pool = self._video_indices() if data == "video" else range(len(self.train_samples))
        return list(pool)[: self.train_limit]

    def _video_indices(self) -> list[int]:
        return [i for i, s in enumerate(self.train_samples) if s.modality == "video"]

    def use_stage(self, index: int, data: str) -> None:
        """The next training loader serves stage `index` of the schedule, on `data`:
        the mixture, or its video samples only (Apollo trains on video alone while the
        LLM is frozen)."""
        if data not in ("mixture", "video"):
            raise DataError(f"a stage's data={data!r} is invalid; valid: mixture, video")
        if data == "video" and not self._video_indices():
            raise DataError("a stage trains on video samples only, but the training data has no video")
        self.stage_index, self.stage_data = index, data

    def train_order(self) -> Order:
        """A fresh order for the current stage: epoch 0, seeded by the run's seed and the stage."""
        seed = self.seed + 7919 * self.stage_index
        if self.train_limit is not None:
            return Shuffled(self._limited(self.stage_data), seed=seed)
        if self.stage_data == "video":
            return Shuffled(self._video_indices(), seed=seed)
        if self.train_sampler is not None:
            return MixtureSampler(
                [s.modality for s in self.train_samples],
                self.train_sampler.shares,
                self.train_sampler.epoch_size,
                seed=seed,
                name=f"mixture={self.mixture.get('name')}",
            )
        return Shuffled(range(len(self.train_samples)), seed=seed)

    def train_batches(self) -> int:
        """Batches in an epoch of the current stage, on this rank."""
        return -(-len(self.train_order()) // self.batch_size)

    def _trained_batches(self) -> int:
        """Batches of the current epoch the model has trained on (for the loader's checkpoint state)."""
        # asked while Lightning fits (a trainer is attached); its progress trackers are loosely typed
        return int(self.trainer.fit_loop.epoch_loop.batch_progress.current.processed)  # type: ignore[union-attr]

    def report(self) -> dict[str, Any]:
        """What the data was, for the run record: rows read and skipped, modalities, mixture."""
        out: dict[str, Any] = {split: r.as_dict() for split, r in self.reports.items()}
        out["train"]["modalities"] = modality_counts(self.train_samples)
        out["train"]["modality_dropout"] = {"shares": self.modality_dropout, "samples": self.dropped}
        out["eval"]["modalities"] = modality_counts(self.eval_samples)
        out["mixture"] = {
            "name": self.mixture.get("name"),
            "epoch_size": self.epoch_size,
            "shares": self.train_sampler.shares if self.train_sampler else None,
            "epoch_counts": (self.train_sampler.counts if self.train_sampler else out["train"]["modalities"]),
        }
        out["feature_cache"] = self.feature_cache.stats() if self.feature_cache else {"enabled": False}
        out["loader"] = self.loading or self.loader_settings()
        return out

    def _trainer_devices(self) -> tuple[int, str | None]:
        """(devices on this node, device type) of the attached trainer; (1, None) without one."""
        trainer = self.trainer  # LightningDataModule's: None until a trainer runs this datamodule
        if trainer is None:
            return 1, None
        return int(trainer.num_devices), trainer.strategy.root_device.type

    def loader_settings(self) -> dict[str, Any]:
        """What a loader made now uses: workers (resolved from `auto` by the environment and
        the trainer's devices), pinned memory (by the trainer's device), the frame size."""
        devices, device_type = self._trainer_devices()
        return {
            "num_workers": resolve_workers(self.num_workers, devices=devices),
            "num_workers_setting": self.num_workers if self.num_workers is not None else AUTO,
            "pin_memory": pins(self.pin_memory, device_type),
            "frame_size": self.frame_size,
        }

    def attach(
        self, sampler: Callable, tokenizer: Any, encoder: Any = None, feature_cache: FeatureCache | None = None
    ) -> None:
        """The sampler and tokenizer the datasets use; with `feature_cache`, the loaders look
        the features of `encoder` up while it is frozen (and at evaluation)."""
        self.sampler = sampler
        self.tokenizer = tokenizer
        self.encoder = encoder
        self.feature_cache = feature_cache
        self.frame_size = loader_size(encoder) if self.resize_in_workers and encoder is not None else None

    def _features(self, train: bool) -> FeatureLookup | None:
        """The cache lookup for a new loader: its keys name the encoder as it is now, so a
        training loader gets one only while no encoder weight trains."""
        if self.feature_cache is None or self.encoder is None:
            return None
        if train and any(p.requires_grad for p in self.encoder.parameters()):
            # this loader's fit changes the weights, and a fused optimizer's step does not
            # bump their version counters: the next bind must hash them again
            self.feature_cache.forget_encoder()
            return None
        return self.feature_cache.bind(self.encoder)

    def _loader(self, samples: list[Sample], batch_size: int, train: bool, modality: str | None = None) -> DataLoader:
        if self.sampler is None:
            raise RuntimeError("attach() a sampler and a tokenizer before loading data")
        dataset = SampleDataset(
            samples,
            self.sampler,
            self.tokenizer,
            train=train,
            modality=modality,
            features=self._features(train),
            circular=not train and modality in self.eval_circular,
            frame_size=self.frame_size,
        )
        self.loading = settings = self.loader_settings()
        workers = settings["num_workers"]
        common: dict[str, Any] = {
            "batch_size": batch_size,
            "num_workers": workers,
            "collate_fn": collate,
            "persistent_workers": workers > 0,
            "pin_memory": settings["pin_memory"],
        }
        if train:
            return ResumableLoader(dataset, order=self.train_order(), trained=self._trained_batches, **common)
        return DataLoader(dataset, sampler=Shard(len(dataset)), **common)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_samples, self.batch_size, train=True)

    def test_dataloader(self) -> list[DataLoader]:
        """One loader per eval modality, in the order of `eval_modalities`. Each shards its
        entries over the ranks, so the rotations of a circular item may be scored on several:
        they are merged after the ranks' results are gathered (src.run.stages.evaluate)."""
        items = self.eval_samples[: self.eval_limit]  # all of them while eval_limit is None
        return [self._loader(items, self.eval_batch_size, train=False, modality=m) for m in self.eval_modalities]
