"""The LightningDataModule: the synthetic benchmark (or JSONL manifests) through a frame sampler."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import lightning as L
from torch.utils.data import DataLoader

from src.data.dataset import VideoQADataset, collate, prompt_text, read_manifest
from src.data.errors import ManifestError


class VideoQADataModule(L.LightningDataModule):
    """Train and eval splits of multiple-choice video QA.

    With `synthetic` set (a SyntheticSpec's fields), the benchmark is generated under
    `root` on first use, and `train` / `eval` default to its two splits.
    """

    def __init__(self, name: str, root: str, batch_size: int = 8, eval_batch_size: int = 16,
                 num_workers: int = 0, synthetic: Mapping[str, Any] | None = None,
                 train: str | None = None, eval: str | None = None) -> None:
        super().__init__()
        self.name = name
        self.root = Path(root)
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.num_workers = num_workers
        self.synthetic = dict(synthetic) if synthetic else None
        self.train_path = Path(train) if train else None
        self.eval_path = Path(eval) if eval else None
        self.sampler: Callable | None = None
        self.tokenizer: Any = None
        self.train_rows: list[dict[str, Any]] = []
        self.eval_rows: list[dict[str, Any]] = []

    def prepare_data(self) -> None:
        if self.train_rows:  # Lightning calls this again at fit and test
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
        self.train_rows = read_manifest(self.train_path)
        self.eval_rows = read_manifest(self.eval_path)

    def corpus(self) -> Iterator[str]:
        """Every text the model will read or write: what the tiny tokenizer is built from."""
        for row in (*self.train_rows, *self.eval_rows):
            yield prompt_text(row["question"], row["options"])
            yield "user assistant system"

    def attach(self, sampler: Callable, tokenizer: Any) -> None:
        self.sampler = sampler
        self.tokenizer = tokenizer

    def _loader(self, rows: list[dict[str, Any]], batch_size: int, shuffle: bool) -> DataLoader:
        if self.sampler is None:
            raise RuntimeError("attach() a sampler and a tokenizer before loading data")
        dataset = VideoQADataset(rows, self.sampler, self.tokenizer, benchmark=self.name)
        return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, num_workers=self.num_workers,
                          collate_fn=collate,
                          persistent_workers=self.num_workers > 0)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_rows, self.batch_size, shuffle=True)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.eval_rows, self.eval_batch_size, shuffle=False)
