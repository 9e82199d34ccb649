"""The LightningModule: trains one stage of a schedule and scores multiple-choice items."""

from __future__ import annotations

import logging
import math
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from typing import Any

import lightning as L
import torch
from lightning.pytorch.utilities.types import OptimizerLRSchedulerConfig

from src.batch import Batch
from src.models.videolmm import VideoLMM

log = logging.getLogger(__name__)
COMPONENTS = ("vision", "connector", "llm")
# an optimizer given its parameter groups: the `optimizer` group's partial (conf/optimizer/)
OptimizerFactory = Callable[[list[dict[str, Any]]], torch.optim.Optimizer]
# metric namespace of each audit modality; the full video (and any other) keeps `test`
AUDIT_PREFIX = {"frame": "test_frame", "text": "test_text"}


class VideoLMMModule(L.LightningModule):
    """Wraps a VideoLMM; `stage` gives each component's learning rate (0 = frozen)."""

    option_token_ids: torch.Tensor  # a buffer

    def __init__(
        self,
        model: VideoLMM,
        option_token_ids: list[int],
        stage: Mapping[str, Any],
        optimizer: OptimizerFactory | None = None,
        warmup_ratio: float = 0.03,
    ) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("option_token_ids", torch.tensor(option_token_ids), persistent=False)
        self.stage = dict(stage)
        # the `optimizer` group's, injected (src/run/build.py); it gets the parameter groups
        self.optimizer_factory = optimizer or default_optimizer
        self.warmup_ratio = warmup_ratio
        self.results: list[dict[str, Any]] = []
        self.nonfinite = [0, 0]  # items with a NaN or infinite option score, items scored (test)
        self.metrics: dict[str, float] = {}
        self._tick = time.perf_counter()  # the end of the last test batch: items' eval seconds
        # per split: the samples left out (id -> why) and the frames that failed to decode
        self.skipped: dict[str, dict[str, str]] = {"train": {}, "test": {}}
        self.decode_errors: dict[str, int] = {"train": 0, "test": 0}
        # where the schedule stands, saved in every checkpoint so that a run resumes there
        self.stage_index = 0
        self.stage_done = False
        self.train_seconds = 0.0  # of the stages' fits, over every attempt of the run
        self.train_loss: float | None = None  # of the last training step
        self._last_batch: Batch | None = None  # stands in for a batch with no readable sample
        # per stage, the share of each trained part's sampled weights that changed (src/run/updates.py)
        self.updates: dict[str, dict[str, float]] = {}
        self._fit_clock: float | None = None
        self.apply_stage(stage)

    def parts(self) -> dict[str, torch.nn.Module]:
        # the integration's learned start/end embeddings are new weights, like the
        # connector's: they train (and freeze) with it
        connector = torch.nn.ModuleList([self.model.connector, self.model.integration])
        return {"vision": self.model.encoder, "connector": connector, "llm": self.model.llm}

    def apply_stage(self, stage: Mapping[str, Any], index: int = 0) -> None:
        """Freeze the components whose learning rate is 0; frozen parts run in eval mode."""
        self.stage = dict(stage)
        self.stage_index, self.stage_done = index, False
        for name, part in self.parts().items():
            part.requires_grad_(self.stage["lr"][name] > 0)

    def on_train_start(self) -> None:
        self._fit_clock = time.perf_counter()

    def on_train_end(self) -> None:
        self.train_seconds = self._seconds()
        self._fit_clock = None

    def _seconds(self) -> float:
        running = time.perf_counter() - self._fit_clock if self._fit_clock is not None else 0.0
        return self.train_seconds + running

    def progress(self) -> dict[str, Any]:
        """Where the run stands: saved in its checkpoints (plain types, for weights_only loading)."""
        return {
            "stage": self.stage_index,
            "stage_done": self.stage_done,
            "train_seconds": round(self._seconds(), 3),
            "train_loss": self.train_loss,
            "skipped_train": dict(self.skipped["train"]),
            "frames_not_decoded_train": self.decode_errors["train"],
            "updates": {stage: dict(shares) for stage, shares in self.updates.items()},
        }

    def restore_progress(self, progress: Mapping[str, Any]) -> None:
        self.stage_index, self.stage_done = int(progress["stage"]), bool(progress["stage_done"])
        self.train_seconds, self.train_loss = float(progress["train_seconds"]), progress["train_loss"]
        self.skipped["train"] = dict(progress["skipped_train"])
        self.decode_errors["train"] = int(progress["frames_not_decoded_train"])
        self.updates = {stage: dict(shares) for stage, shares in progress.get("updates", {}).items()}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["apollo"] = self.progress()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.restore_progress(checkpoint["apollo"])
        self._fit_clock = None

    def on_train_epoch_start(self) -> None:
        """Trained parts in training mode, frozen ones in eval mode; but the frozen LLM, which
        the loss's gradient passes through on its way to the connector, keeps recomputing
        its layers in the backward pass when gradient checkpointing is on."""
        from src.models.precision import recompute_while_frozen

        for name, part in self.parts().items():
            trains = self.stage["lr"][name] > 0
            part.train(trains)
            if name == "llm" and not trains:
                recompute_while_frozen(part)

    def _count(self, split: str, batch: Batch) -> None:
        self.skipped[split].update(batch.skipped)
        self.decode_errors[split] += batch.decode_errors

    def data_issues(self) -> dict[str, Any]:
        """For the run record: what was skipped at load time and why, and decode errors."""
        return {
            split: {
                "skipped_samples": len(items),
                "skipped_by_reason": dict(Counter(r.split(":")[0] for r in items.values())),
                "skipped_examples": dict(list(items.items())[:20]),
                "frames_not_decoded": self.decode_errors[split],
            }
            for split, items in self.skipped.items()
        }

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor | None:
        self._count("train", batch)
        if not batch.ids:  # every sample of the batch was unreadable: nothing to learn from
            if self._trainer is None or self._trainer.world_size == 1:  # one process (or no trainer)
                return None
            # the other ranks step and wait for this one's gradients (DDP) and collectives
            # (FSDP): it takes part with its last good batch, weighted 0
            if self._last_batch is None:
                raise RuntimeError("the first training batch of this rank has no readable sample")
            return self.model.loss(self._last_batch) * 0.0
        self._last_batch = batch
        loss = self.model.loss(batch)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss is {loss.item()} at step {self.global_step}")
        self.log("train/loss", loss, prog_bar=True, batch_size=len(batch.ids))
        self.train_loss = float(loss.detach())
        return loss

    def configure_gradient_clipping(
        self,
        optimizer: torch.optim.Optimizer,
        gradient_clip_val: float | None = None,
        gradient_clip_algorithm: str | None = None,
    ) -> None:
        """Clip the gradients' norm at `gradient_clip_val` (1.0) ourselves when no loss scaler is
        in use (32-true, bf16-mixed): Lightning refuses to clip for a fused AdamW under any mixed
        precision (it would unscale fp16 gradients inside its step), which bf16 never needs.
        Sharded gradients (FSDP2's DTensors) give their true norm over every rank."""
        scaler = getattr(self.trainer.precision_plugin, "scaler", None)
        if not gradient_clip_val or scaler is not None or gradient_clip_algorithm not in (None, "norm"):
            self.clip_gradients(optimizer, gradient_clip_val, gradient_clip_algorithm)
            return
        params = [p for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        torch.nn.utils.clip_grad_norm_(params, gradient_clip_val)

    def configure_model(self) -> None:
        """trainer=fsdp (Lightning's ModelParallelStrategy gives a device mesh): shard the model
        with FSDP2 (src/models/wrap.py), once; every stage's fit calls this again."""
        mesh = self.device_mesh
        if mesh is None:
            return
        from src.models.precision import BF16_COMPUTE
        from src.models.wrap import shard

        units = shard(self.model, mesh["data_parallel"], bf16=str(self.trainer.precision) in BF16_COMPUTE)
        if units:
            log.info("FSDP: the model sharded in %d units over %d processes", units, mesh.size())

    def on_test_start(self) -> None:
        from src.models.wrap import gather_for_eval, is_sharded

        if is_sharded(self.model):  # ranks may score unequal numbers of batches
            gather_for_eval(self.model)

    def on_test_end(self) -> None:
        from src.models.wrap import is_sharded, release_after_eval

        if is_sharded(self.model):
            release_after_eval(self.model)

    def param_groups(self) -> list[dict[str, Any]]:
        """One group per part the stage trains, with the stage's learning rate for it."""
        return [
            {"params": [p for p in part.parameters() if p.requires_grad], "lr": self.stage["lr"][name], "name": name}
            for name, part in self.parts().items()
            if self.stage["lr"][name] > 0
        ]

    def configure_optimizers(self) -> OptimizerLRSchedulerConfig:
        opt = self.optimizer_factory(self.param_groups())
        t = self.trainer
        # not trainer.estimated_stepping_batches: it builds the training loader before a
        # checkpoint is restored, and the loader would then miss its place in the epoch
        datamodule = t.datamodule  # type: ignore[attr-defined]  # set by Lightning when it fits
        total = stepping_batches(
            datamodule.train_batches(), t.limit_train_batches, t.accumulate_grad_batches, t.max_epochs or 1, t.max_steps
        )
        sched = torch.optim.lr_scheduler.LambdaLR(opt, WarmupCosine(total, self.warmup_ratio))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    def on_test_epoch_start(self) -> None:
        self.results = []
        self.nonfinite = [0, 0]  # items with a NaN or infinite option score, items scored
        self._tick = time.perf_counter()

    def test_step(self, batch: Batch, batch_idx: int, dataloader_idx: int = 0) -> None:
        """Score one batch of one eval modality (one test dataloader per modality)."""
        self._count("test", batch)
        if not batch.ids:
            return
        scores = self.model.option_scores(batch, self.option_token_ids)
        # an argmax over NaN scores picks option A: such items are counted, and the run fails
        k = torch.arange(scores.shape[1], device=scores.device)
        real = k[None, :] < batch.num_options.to(scores.device)[:, None]  # the padding is -inf
        self.nonfinite[0] += int((real & ~torch.isfinite(scores)).any(-1).sum())
        self.nonfinite[1] += len(scores)
        chosen = scores.argmax(-1).cpu()
        # the wall time since the last batch (loading and scoring), shared equally by the
        # batch's items: what curation's cost reduction weighs items with
        now = time.perf_counter()
        seconds = (now - self._tick) / len(batch.ids)
        self._tick = now
        for i, item in enumerate(batch.ids):
            row = {
                "item": item,
                "benchmark": batch.benchmarks[i],
                "category": batch.categories[i],
                "modality": batch.modalities[i],
                "control": batch.controls[i] if batch.controls else None,
                "chosen": int(chosen[i]),
                "correct": int(chosen[i] == batch.answer_index[i]),
                "seconds": seconds,
                "options": int(batch.num_options[i]),
            }
            rotation = batch.rotations[i] if batch.rotations else None
            if rotation is not None:  # one rotation of a circular item
                row["rotation"], row["of"] = rotation
            self.results.append(row)

    def on_test_epoch_end(self) -> None:
        # this rank's rows only, a circular item's rotations not yet merged (some may be on
        # other ranks): src.run.stages.evaluate gathers every rank's, merges, then logs
        self.metrics = accuracy_metrics(self.results)


def stepping_batches(batches: int, limit: int | float | None, accumulate: int, epochs: int, max_steps: int = -1) -> int:
    """The optimizer steps of a stage's fit, as Lightning will run them: `batches` an epoch,
    cut to `limit` (trainer.limit_train_batches: a count, or a share), `accumulate` batches a
    step, `epochs` epochs, at most `max_steps` (trainer.max_steps; -1: no cap)."""
    if isinstance(limit, float):
        batches = int(batches * limit)
    elif limit is not None:
        batches = min(batches, limit)
    total = -(-batches // accumulate) * epochs
    return max(1, min(total, max_steps) if max_steps >= 0 else total)


def default_optimizer(groups: list[dict[str, Any]]) -> torch.optim.Optimizer:
    """conf/optimizer/adamw.yaml's AdamW, for a module built without one (tests, tools).
    fused: one kernel for all parameters (on a CPU too), a tenth of a small model's step."""
    return torch.optim.AdamW(groups, weight_decay=0.0, fused=True)


class WarmupCosine:
    """The learning-rate factor at a step: linear warm-up over `ratio` of the steps, then
    cosine decay to 0 (Apollo: 3% warm-up). A class, not a closure, so that its state is
    plain numbers in a checkpoint."""

    def __init__(self, total: int, ratio: float = 0.03) -> None:
        self.total = max(1, int(total))
        self.warmup = max(1, int(ratio * self.total))

    def __call__(self, step: int) -> float:
        if step < self.warmup:
            return (step + 1) / self.warmup
        return 0.5 * (1 + math.cos(math.pi * (step - self.warmup) / max(1, self.total - self.warmup)))


def merge_rotations(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per item and modality: the rows of a circular item's rotations made one.

    The item is `correct` only if every one of its K rotations was scored and right;
    `rotations_right` counts the right ones, `rotations` is K; `chosen` is the letter
    chosen in the item's own (unrotated) order; `seconds` sums the rotations' (what
    scoring the item cost). Rows without a rotation pass as they are, so merging merged
    rows changes nothing. Call it on every rank's rows together: the rotations of one
    item may have been scored on different ranks. The order of first appearance is kept.
    """
    out: list[dict[str, Any]] = []
    merged: dict[tuple[str, str, str], dict[str, Any]] = {}
    for r in results:
        if "rotation" not in r:
            out.append(r)
            continue
        key = (r["benchmark"], r["item"], r["modality"])
        m = merged.get(key)
        if m is None:
            m = {k: v for k, v in r.items() if k not in ("rotation", "of", "correct", "chosen")}
            m.update(rotations=r["of"], rotations_right=0, seconds=0.0, _picks={})
            merged[key] = m
            out.append(m)
        m["_picks"][r["rotation"]] = r["chosen"]
        m["rotations_right"] += int(r["correct"])
        m["seconds"] += r.get("seconds") or 0.0
    for m in merged.values():
        picks = m.pop("_picks")
        # under rotation r, option c is the item's option (c + r) mod K
        shift = min(picks)
        m["chosen"] = (picks[shift] + shift) % m["rotations"]
        # a rotation never scored (its sample skipped): the item is not right under every one
        m["correct"] = int(len(picks) == m["rotations"] == m["rotations_right"])
    return out


def accuracy_metrics(results: list[dict[str, Any]]) -> dict[str, float]:
    """`test/<benchmark>/<category>` accuracies, and overall = the mean of the categories.

    Items scored on the centre frame or the text only (the modality audit) go to
    `test_frame/...` and `test_text/...`; the video's keep `test/...`. A circular item
    counts once, right only if right under every rotation (`merge_rotations`).
    """
    by_cat: dict[tuple[str, str], dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for r in merge_rotations(results):
        prefix = AUDIT_PREFIX.get(r.get("modality", "video"), "test")
        by_cat[prefix, r["benchmark"]][r["category"]].append(r["correct"])
    metrics = {}
    for (prefix, bench), cats in by_cat.items():
        accs = {c: sum(v) / len(v) for c, v in sorted(cats.items())}
        metrics.update({f"{prefix}/{bench}/{c}": a for c, a in accs.items()})
        metrics[f"{prefix}/{bench}/overall"] = sum(accs.values()) / len(accs)
    return metrics
