"""The LightningDataModule: training samples (with a mixture) and multiple-choice eval items."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import lightning as L
from torch.utils.data import DataLoader

from src.data.dataset import SampleDataset, collate
from src.data.errors import ManifestError
from src.data.manifest import MEDIA_TAG, ReadReport, Sample, modality_counts, read_manifest
from src.data.mixture import MixtureSampler


class VideoQADataModule(L.LightningDataModule):
    """A training manifest (multiple-choice or LLaVA-style) and a multiple-choice eval split.

    With `synthetic` set (a SyntheticSpec's fields), the benchmark is generated under
    `root` on first use, and `train` / `eval` default to its two splits. `mixture` (the
    `mixture` config group) sets the shares of text, image, multi-image and video
    samples in each training epoch; without shares, every training sample once an epoch.
    """

    def __init__(self, name: str, root: str, batch_size: int = 8, eval_batch_size: int = 16,
                 num_workers: int = 0, synthetic: Mapping[str, Any] | None = None,
                 train: str | None = None, eval: str | None = None,
                 media_root: str | None = None, mixture: Mapping[str, Any] | None = None,
                 seed: int = 0) -> None:
        super().__init__()
        self.name = name
        self.root = Path(root)
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.num_workers = num_workers
        self.synthetic = dict(synthetic) if synthetic else None
        self.train_path = Path(train) if train else None
        self.eval_path = Path(eval) if eval else None
        self.media_root = media_root
        self.mixture = dict(mixture or {"name": "natural", "shares": None})
        self.seed = seed
        self.sampler: Callable | None = None
        self.tokenizer: Any = None
        self.train_samples: list[Sample] = []
        self.eval_samples: list[Sample] = []
        self.reports: dict[str, ReadReport] = {}
        self.train_sampler: MixtureSampler | None = None

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
        self.train_samples, self.reports["train"] = read_manifest(
            self.train_path, self.name, media_root=self.media_root)
        self.eval_samples, self.reports["eval"] = read_manifest(
            self.eval_path, self.name, mcq_only=True, media_root=self.media_root)
        if self.mixture.get("shares"):
            self.train_sampler = MixtureSampler(
                [s.modality for s in self.train_samples], self.mixture["shares"],
                self.mixture.get("epoch_size"), seed=self.seed,
                name=f"mixture={self.mixture.get('name')}")

    def corpus(self) -> Iterator[str]:
        """Every text the model will read or write: what the tiny tokenizer is built from."""
        for sample in (*self.train_samples, *self.eval_samples):
            for _, text in sample.turns:
                yield MEDIA_TAG.sub(" ", text)
        yield "user assistant system"

    @property
    def epoch_size(self) -> int:
        return len(self.train_sampler) if self.train_sampler else len(self.train_samples)

    def report(self) -> dict[str, Any]:
        """What the data was, for the run record: rows read and skipped, modalities, mixture."""
        out: dict[str, Any] = {split: r.as_dict() for split, r in self.reports.items()}
        out["train"]["modalities"] = modality_counts(self.train_samples)
        out["eval"]["modalities"] = modality_counts(self.eval_samples)
        out["mixture"] = {"name": self.mixture.get("name"), "epoch_size": self.epoch_size,
                          "shares": self.train_sampler.shares if self.train_sampler else None,
                          "epoch_counts": (self.train_sampler.counts if self.train_sampler
                                           else out["train"]["modalities"])}
        return out

    def attach(self, sampler: Callable, tokenizer: Any) -> None:
        self.sampler = sampler
        self.tokenizer = tokenizer

    def _loader(self, samples: list[Sample], batch_size: int, train: bool) -> DataLoader:
        if self.sampler is None:
            raise RuntimeError("attach() a sampler and a tokenizer before loading data")
        dataset = SampleDataset(samples, self.sampler, self.tokenizer, train=train)
        order = self.train_sampler if train else None
        return DataLoader(dataset, batch_size=batch_size, shuffle=train and order is None,
                          sampler=order, num_workers=self.num_workers, collate_fn=collate,
                          persistent_workers=self.num_workers > 0)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_samples, self.batch_size, train=True)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.eval_samples, self.eval_batch_size, train=False)
