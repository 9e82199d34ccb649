"""The precision policy: weights that train stay in float32 (bf16 compute), frozen parts may
stay bf16, and a trainer precision that would cast trained weights to bf16 is refused."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
import torch

from src.config.errors import ConfigError
from src.config.validate import validate
from src.models.precision import policy, recompute_while_frozen, weight_dtypes
from src.run.build import build_module, build_parts
from src.run.updates import UpdateCheck
from tests.helpers import TINY_DATA, cfg_with

RATE = 1e-5  # the paper's LLM rate at 7B; its vision rate is 5e-6


def _changed_share(dtype: torch.dtype, lr: float) -> tuple[float, float]:
    """AdamW on a N(0, 0.02) weight and a vector of ones in `dtype`, 10 steps of the same
    gradients: the share of elements that ever changed, of each."""
    g = torch.Generator().manual_seed(0)
    w = (torch.randn(256, 256, generator=g) * 0.02).to(dtype).requires_grad_()
    ones = torch.ones(256, dtype=dtype, requires_grad=True)
    w0, ones0 = w.detach().clone(), ones.detach().clone()
    opt = torch.optim.AdamW([w, ones], lr=lr, weight_decay=0.0)
    for _ in range(10):
        w.grad = torch.randn(w.shape, generator=g).to(dtype)
        ones.grad = torch.randn(ones.shape, generator=g).to(dtype)
        opt.step()
    return float((w != w0).float().mean()), float((ones != ones0).float().mean())


def test_bf16_weights_lose_adamw_steps_at_the_papers_rates() -> None:
    """Why the policy exists: measured, not assumed (the issue's numbers, in pure torch)."""
    w_bf16, ones_bf16 = _changed_share(torch.bfloat16, RATE)
    w_fp32, ones_fp32 = _changed_share(torch.float32, RATE)
    assert w_fp32 == ones_fp32 == 1.0
    assert w_bf16 < 0.5 and ones_bf16 == 0.0  # most weights, and every norm weight, never move


def test_parts_that_train_in_any_stage_keep_float32_weights() -> None:
    cl = cfg_with("profile=pretrained", "schedule=cl")  # connector and LLM train; vision frozen throughout
    assert weight_dtypes(cl) == {"vision": "bfloat16", "connector": "float32", "llm": "float32"}
    full = cfg_with("profile=fullsize")  # c_vc_cl: the encoder trains in stage 2, the LLM in 3
    assert weight_dtypes(full) == {"vision": "float32", "connector": "float32", "llm": "float32"}
    said = policy(cfg_with("profile=fullsize", "trainer=gpu"))
    assert said["trained_in_float32"] == ["connector", "llm", "vision"]
    assert said["compute"].startswith("bfloat16 (autocast)") and said["trainer_precision"] == "bf16-mixed"
    assert policy(cfg_with("trainer=fsdp"))["sharded"] is True


def test_a_half_precision_trainer_is_refused_when_weights_train() -> None:
    with pytest.raises(ConfigError, match=r"trainer.precision=bf16-true is invalid.*bf16-mixed"):
        validate(cfg_with("profile=pretrained", "trainer.precision=bf16-true"))
    validate(cfg_with("profile=pretrained", "trainer.precision=bf16-mixed"))


def _deltas(data_dir: Path, *overrides: str) -> tuple[dict[str, torch.Tensor], dict[str, dict[str, float]]]:
    """Each trainable parameter's change after a few steps at RATE, every part training."""
    cfg = cfg_with(
        *TINY_DATA,
        f"paths.data_dir={data_dir}",
        "cache.features=false",
        "schedule=vcl",
        f"profile.lr.vision={RATE}",
        f"profile.lr.connector={RATE}",
        f"profile.lr.llm={RATE}",
        "+trainer.max_steps=3",
        "logger=none",
        *overrides,
    )
    L.seed_everything(0, verbose=False)
    parts = build_parts(cfg)
    module = build_module(cfg, parts.model, parts.option_token_ids)
    before = {n: p.detach().float().clone() for n, p in module.named_parameters() if p.requires_grad}
    trainer = L.Trainer(
        accelerator="cpu",
        devices=1,
        max_steps=3,
        precision=cfg.trainer.precision,
        gradient_clip_val=cfg.trainer.gradient_clip_val,  # clipped at 1.0 with the fused AdamW, as trainer=gpu
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        use_distributed_sampler=False,
        callbacks=[UpdateCheck()],
    )
    trainer.fit(module, datamodule=parts.datamodule)
    weights = dict(module.named_parameters())
    assert all(weights[n].dtype == torch.float32 for n in before)  # the policy: trained in float32
    return {n: weights[n].detach().float() - before[n] for n in before}, module.updates


@pytest.mark.usefixtures("one_thread")
def test_every_trained_weight_moves_under_the_pretrained_precision_as_in_float32(data_dir: Path) -> None:
    """The pretrained settings (bf16 weights configured, bf16 autocast) against an all-float32
    reference, at lr 1e-5: every trainable parameter moves, as much as in the reference and
    in the same direction, within bf16 compute noise."""
    ref, _ = _deltas(data_dir, "profile.dtype=float32", "trainer.precision=32-true")
    got, updates = _deltas(data_dir, "profile.dtype=bfloat16", "trainer.precision=bf16-mixed")
    assert ref.keys() == got.keys() and ref
    # what every run records: nearly every sampled weight of every part moved
    assert set(updates["stage1_vcl"]) == {"vision", "connector", "llm"}
    assert all(share > 0.9 for share in updates["stage1_vcl"].values()), updates
    parts = {n.split(".")[1] for n in got}
    assert {"encoder", "connector", "llm"} <= parts  # every part trained
    bad = []
    for name, delta in got.items():
        moved, moved_ref = float((delta != 0).float().mean()), float((ref[name] != 0).float().mean())
        if moved < 0.9 * moved_ref:
            bad.append(f"{name}: {moved:.2f} of its elements moved (float32: {moved_ref:.2f})")
        if name.endswith("k_proj.bias"):  # its true gradient is 0 (softmax ignores a shift of every
            continue  # score of a query): its updates are rounding noise, in float32 too
        cos = float(torch.nn.functional.cosine_similarity(delta.flatten(), ref[name].flatten(), dim=0))
        if cos < 0.8:
            bad.append(f"{name}: its update points elsewhere than in float32 (cosine {cos:.2f})")
    assert not bad, "\n".join(bad)


def test_a_frozen_llm_recomputes_its_layers_when_checkpointing_is_on(data_dir: Path) -> None:
    """Stage 1 of the paper's schedules trains the connector: the loss's gradient passes
    through the frozen LLM, which must still recompute rather than keep every activation."""
    cfg = cfg_with(
        *TINY_DATA, f"paths.data_dir={data_dir}", "profile.gradient_checkpointing=true", "schedule=c_cl", "logger=none"
    )
    parts = build_parts(cfg)
    module = build_module(cfg, parts.model, parts.option_token_ids)  # c_cl's stage 1: the LLM frozen
    module.on_train_epoch_start()
    llm = parts.model.llm
    assert not llm.training and not any(p.requires_grad for p in llm.parameters())
    layers = llm.get_decoder().layers
    calls: list[int] = []
    down = layers[0].mlp.down_proj
    forward = down.forward  # counted by wrapping: module hooks do not fire when checkpointing recomputes

    def counted(x: torch.Tensor) -> torch.Tensor:
        calls.append(1)
        return forward(x)

    down.forward = counted
    batch = next(iter(parts.datamodule.train_dataloader()))
    parts.model.loss(batch).backward()
    assert len(calls) == 2  # its forward, and its recomputation in the backward pass
    assert recompute_while_frozen(llm) == len(layers)
    assert not any(m.training for m in layers[0].children())  # its dropouts stay in eval mode


class _Bf16Module(L.LightningModule):
    """A weight trained in bf16, as before the policy: what UpdateCheck exists to catch."""

    def __init__(self) -> None:
        super().__init__()
        self.llm = torch.nn.Linear(64, 64).to(torch.bfloat16)
        self.stage = {"name": "stage1"}
        self.updates: dict[str, dict[str, float]] = {}

    def parts(self) -> dict[str, torch.nn.Module]:
        return {"llm": self.llm}

    def training_step(self, batch: list[torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self.llm(batch[0]).float().pow(2).mean()

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.AdamW(self.parameters(), lr=RATE)


def test_the_update_check_flags_weights_that_do_not_move(caplog: pytest.LogCaptureFixture) -> None:
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(12, 64).bfloat16()), batch_size=4)
    module = _Bf16Module()
    trainer = L.Trainer(
        accelerator="cpu",
        max_epochs=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[UpdateCheck()],
    )
    trainer.fit(module, train_dataloaders=data)
    assert module.updates["stage1"]["llm"] < 0.5
    assert any("of the llm's sampled weights changed" in r.message for r in caplog.records)


def test_a_finished_stage_frees_its_gradients_and_optimizer_state(data_dir: Path) -> None:
    """The next stage must not carry this one's gradients and AdamW moments (at real size,
    c_vc_cl's LLM stage would carry the vision encoder's: 5 GB for SigLIP)."""
    import weakref

    from src.run.stages import release

    cfg = cfg_with(*TINY_DATA, f"paths.data_dir={data_dir}", "schedule=vc_cl", "logger=none")
    parts = build_parts(cfg)
    module = build_module(cfg, parts.model, parts.option_token_ids)
    trainer = L.Trainer(
        accelerator="cpu",
        max_steps=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        use_distributed_sampler=False,
    )
    trainer.fit(module, datamodule=parts.datamodule)
    optimizer = weakref.ref(trainer.optimizers[0])
    assert any(p.grad is not None for p in module.parameters())
    release(trainer, module)
    assert optimizer() is None  # its state went with it
    assert all(p.grad is None for p in module.parameters())
