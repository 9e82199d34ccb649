"""`trainer=ddp` on the CPU: 2 processes (gloo), one run directory, one record, every item scored."""

from __future__ import annotations

import csv
import os
import socket
import time
from datetime import timedelta
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from src.batch import Batch
from src.config.compose import group_options
from src.launch.dist import is_main_process
from src.models.llm import build_word_tokenizer
from src.models.videolmm import VideoLMM
from tests.helpers import TINY_DATA, records, run_train, text_only_batch, tiny_batch, tiny_model

DDP = ["trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2", "logger=csv"]
SCHEDULES = sorted(group_options("schedule"))


@pytest.mark.slow
def test_two_cpu_processes_make_one_run_dir_and_one_record(data_dir: Path, tmp_path: Path) -> None:
    # a multirun of two grid points: the children of each DDP job run that job, not the sweep
    proc = run_train([*DDP, "llm=qwen0.5b,qwen1.5b", "sweep=ddp", *TINY_DATA], data_dir, tmp_path, multirun=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    sweep = tmp_path / "sweeps" / "ddp"
    run_dirs = sorted(p for p in sweep.iterdir() if p.is_dir())
    assert len(run_dirs) == 2  # one per grid point; the second rank made none
    recs = records(sweep)
    assert len(recs) == 2 and all(r["status"] == "ok" for r in recs)
    assert "All distributed processes registered. Starting with 2 processes" in proc.stdout + proc.stderr
    for rec in recs:
        run_dir = Path(rec["run_dir"])
        assert (run_dir / "ddp_rank1.log").is_file()  # rank 1 ran in the same directory
        rows = list(csv.DictReader((run_dir / "items.csv").open()))
        # each rank scored half of the 12 items; the record has all of them, once
        assert sorted(r["item"] for r in rows) == sorted({r["item"] for r in rows}) and len(rows) == 12
        assert 0 <= rec["metrics"]["test/synthetic/overall"] <= 1


@pytest.mark.slow
def test_every_schedule_trains_under_ddp_text_only_batches_included(data_dir: Path, tmp_path: Path) -> None:
    # one multirun over conf/schedule: every stage kind trains its parts (the vision tower in
    # vc, vcl) for 2 steps a stage (DDP finds an unused parameter at the second); batches of
    # one sample with half the videos shown as text only, so ranks meet text-only batches
    fast = ["debug=fast", "trainer.max_steps=2", "data.batch_size=1", "data.modality_dropout.text=0.5"]
    overrides = [*DDP, f"schedule={','.join(SCHEDULES)}", "sweep=ddp_schedules", *fast, "data.eval_limit=2"]
    proc = run_train([*overrides, *TINY_DATA], data_dir, tmp_path, multirun=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    recs = records(tmp_path / "sweeps" / "ddp_schedules")
    assert sorted(r["choices"]["schedule"] for r in recs) == SCHEDULES
    assert all(r["status"] == "ok" for r in recs), [(r["choices"]["schedule"], r["status"]) for r in recs]


class _Loss(nn.Module):
    """The model's loss as a forward, as Lightning's DDP wrapper calls training_step."""

    def __init__(self, model: VideoLMM) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch: Batch) -> torch.Tensor:
        return self.model.loss(batch)


def _two_steps(rank: int, port: int) -> None:
    """Rank 0 trains on a video sample, rank 1 on a text-only one; every part trains."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2, timeout=timedelta(seconds=60))  # no hang
    try:
        torch.set_num_threads(1)
        torch.manual_seed(0)
        tok = build_word_tokenizer(["what ? B"])
        model = tiny_model(tok, "encoder=siglip", "integration=tokens").requires_grad_(True)
        ddp = DistributedDataParallel(_Loss(model))  # find_unused_parameters=False, as trainer=ddp
        batch = tiny_batch(tok) if rank == 0 else text_only_batch(tok)
        for _ in range(2):  # DDP finds the parameters a step left out at the next one
            ddp.zero_grad()
            ddp(batch).backward()
        grads = torch.cat([p.grad.flatten() for p in model.encoder.parameters() if p.grad is not None])
        assert len(grads) == sum(p.numel() for p in model.encoder.parameters())
        same = [torch.zeros_like(grads) for _ in range(2)]
        dist.all_gather(same, grads)  # averaged across ranks: rank 0's media gradient, halved, on both
        assert torch.equal(same[0], same[1]) and grads.any()
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_a_rank_with_a_text_only_batch_takes_part_in_every_ddp_step() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    ranks = mp.spawn(_two_steps, args=(port,), nprocs=2, join=False)
    deadline = time.monotonic() + 240  # a rank left out of a step's all-reduce waits forever
    while not ranks.join(timeout=5):  # a failure on either rank raises here
        if time.monotonic() > deadline:
            for process in ranks.processes:
                process.kill()
            pytest.fail("the two ranks hung: one waited for the other's gradients")


def test_rank_zero_is_the_main_process(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("RANK", "SLURM_PROCID", "NODE_RANK", "LOCAL_RANK"):
        monkeypatch.delenv(var, raising=False)
    assert is_main_process()
    monkeypatch.setenv("LOCAL_RANK", "0")
    assert is_main_process()
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert not is_main_process()
    monkeypatch.setenv("LOCAL_RANK", "0")
    monkeypatch.setenv("SLURM_PROCID", "3")
    assert not is_main_process()
