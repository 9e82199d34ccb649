"""trainer=fsdp end to end on a CPU: FSDP2 over 2 gloo processes, every stage of c_vc_cl,
killed mid-stage and resumed from its one-file checkpoint, ending as the uninterrupted run."""

from __future__ import annotations

import csv
import subprocess
from pathlib import Path

import pytest
import torch

from src.models.wrap import decoder_blocks, shard
from tests.helpers import ROOT, TINY_DATA, records, train_cmd, train_env
from tests.run.test_resume import _kill_when

FSDP = [
    "trainer=fsdp",
    "trainer.accelerator=cpu",
    "trainer.devices=2",
    "trainer.precision=32-true",  # this CPU computes bf16 6x slower than float32
    "schedule=c_vc_cl",
    "checkpoint.every_steps=1",
    "logger=none",
    *TINY_DATA,
    # 13 eval items in batches of 2: 4 batches on one rank, 3 on the other (gathered, no hang)
    "data.synthetic.n_eval=13",
    "eval.batch_size=2",
]


def _run(data_dir: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        train_cmd(*FSDP, *extra),
        cwd=ROOT,
        env=train_env(data_dir, out),
        capture_output=True,
        text=True,
        timeout=900,
    )


def _items(rec: dict) -> list[tuple[str, str]]:
    rows = csv.DictReader((Path(rec["run_dir"]) / "items.csv").open())
    return [(r["item"], r["chosen"]) for r in rows]


@pytest.mark.slow
def test_fsdp_trains_every_stage_and_resumes_mid_stage(data_dir: Path, tmp_path: Path) -> None:
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    done = _run(data_dir, whole)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "FSDP: the model sharded in" in done.stdout + done.stderr
    [a] = records(whole)
    assert a["status"] == "ok" and a["precision"]["sharded"] is True
    assert [s["name"] for s in a["schedule"]["stages"]] == ["stage1_c", "stage2_vc", "stage3_cl"]

    _kill_when(data_dir, killed, stage=2, step=1, args=FSDP)  # in the middle of stage 3
    again = _run(data_dir, killed)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "resuming stage stage3_cl" in again.stdout + again.stderr
    [b] = records(killed)
    assert b["status"] == "ok" and b["schedule"]["resumed_mid_stage"]
    assert b["metrics"]["train/loss"] == pytest.approx(a["metrics"]["train/loss"], abs=1e-5)
    assert _items(b) == _items(a) and len(_items(a)) == 13

    # the checkpoint is one file of whole tensors that loads without FSDP (src.eval, analysis)
    ckpt = torch.load(Path(a["run_dir"]) / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    state = ckpt["state_dict"]
    assert any(k.startswith("model.llm.") for k in state) and any(k.startswith("model.encoder.") for k in state)
    assert all(type(v) is torch.Tensor for v in state.values())


def test_shard_refuses_an_llm_without_known_decoder_layers() -> None:
    class NoLayers(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.llm = torch.nn.Linear(2, 2)

    assert decoder_blocks()  # Qwen2 and Qwen3 in the installed transformers
    with pytest.raises(ValueError, match="no known decoder layer"):
        shard(NoLayers(), mesh=None, bf16=False)
