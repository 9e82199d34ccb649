"""The real path, checked before anyone rents a cluster: `python -m benchmarks.gpu_check`.

One script, no network, a few minutes on one GPU: `profile=fullsize` (every option's real
architecture, random weights) SigLIP + Qwen2.5-1.5B and + Qwen2.5-7B, a few optimizer steps
of each stage of `c_vc_cl` (connector; vision + connector; connector + LLM), under
`trainer=gpu` and `trainer=fsdp` on one device, each a real `python -m src.train` run on a
small synthetic set. Per stage it prints the step time, tokens a second, MFU, the peak
memory next to the memory model's estimate (`src/tools/memory.py`), and the precision
check: the share of each trained part's sampled weights that moved (`src/run/updates.py`;
near 1.0 when the weights that train are float32 masters, near 0 when bf16 weights lose
their updates). A run that fails (out of memory, say) is a row that says why.

`--cpu`: the same on a CPU with the small members (SigLIP + Qwen2-0.5B, float32: this CPU
kind has no fast bf16) under `trainer=cpu` (`--runs qwen0.5b:fsdp` adds FSDP on 2 gloo
processes, about 20 GB): how the script is tested where no GPU is lent
(tests/benchmarks/test_gpu_check.py).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
GPU_RUNS = [("qwen2.5-1.5b", "gpu"), ("qwen2.5-1.5b", "fsdp"), ("qwen2.5-7b", "gpu"), ("qwen2.5-7b", "fsdp")]
# one process: two fullsize ranks of FSDP need about 20 GB of a CPU machine (`--runs qwen0.5b:fsdp`)
CPU_RUNS = [("qwen0.5b", "cpu")]


def overrides(llm: str, trainer: str, steps: int, cpu: bool, frames: int, eval_items: int = 4) -> list[str]:
    """The run's command line: fullsize, c_vc_cl, `steps` optimizer steps a stage, few eval items."""
    batch = 1 if cpu else 2
    out = [
        "profile=fullsize",
        "encoder=siglip",
        f"llm={llm}",
        f"trainer={trainer}",
        "schedule=c_vc_cl",
        "logger=none",
        "cache.features=false",
        "checkpoint.every_minutes=null",
        "profile.epochs=1",
        "profile.align_epochs=1",
        f"data.batch_size={batch}",
        f"data.train_limit={steps * batch}",
        f"data.eval_limit={eval_items}",
        "eval.batch_size=2",
        "eval.modalities=[video]",
        "eval.circular=[]",
        # short clips, `frames` frames each: the encoder's real 384x384 input
        "data.synthetic.n_train=16",
        "data.synthetic.n_eval=4",
        "data.synthetic.n_image=0",
        "data.synthetic.n_multi_image=0",
        "data.synthetic.n_text=4",
        "data.synthetic.min_duration=2",
        "data.synthetic.max_duration=2",
        f"sampler.fps={frames / 2}",
    ]
    if trainer == "fsdp":
        out += ["trainer.devices=2", "trainer.accelerator=cpu"] if cpu else ["trainer.devices=1"]
    if cpu:
        out += ["profile.dtype=float32", "trainer.precision=32-true", "profile.gradient_checkpointing=false"]
    return out


def estimates(args: list[str], frames: int, text_tokens: int) -> dict[str, float | None]:
    """The memory model's total GB per stage of this command line, for samples of `frames`
    frames and `text_tokens` text tokens (None where it cannot say)."""
    from hydra import compose, initialize_config_dir

    from src.config import resolvers
    from src.config.compose import CONF_DIR
    from src.tools.memory import estimate

    resolvers.register()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", overrides=args)
    out: dict[str, float | None] = {}
    for i, stage in enumerate(cfg.schedule.stages):
        try:
            parts = estimate(cfg, i, frames=frames, text_tokens=text_tokens)
            out[stage.name] = round(parts["total"] if "total" in parts else sum(parts.values()), 2)
        except Exception:  # noqa: BLE001 - a model the estimate does not know: no number, the run still reported
            out[stage.name] = None
    return out


def run_one(
    llm: str, trainer: str, steps: int, cpu: bool, frames: int, out: Path, timeout: float, eval_items: int = 4
) -> dict[str, Any]:
    """One `python -m src.train` run; its record, or why there is none."""
    args = overrides(llm, trainer, steps, cpu, frames, eval_items)
    run_dir = out / f"{llm}-{trainer}"
    env = {
        **os.environ,
        "APOLLO_DATA_DIR": str(out / "data"),
        "HF_HUB_OFFLINE": "1",
        "WANDB_MODE": "offline",
        "PYTHONPATH": str(ROOT),
    }
    start = time.perf_counter()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "src.train", *args, f"hydra.run.dir={run_dir}"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        tail = (done.stdout + done.stderr)[-2000:]
    except subprocess.TimeoutExpired:
        tail = f"timed out after {timeout:.0f} s"
    record_path = run_dir / "result.json"
    record: dict[str, Any] = (
        json.loads(record_path.read_text()) if record_path.is_file() else {"status": "failed", "reason": tail}
    )
    record["wall_seconds"] = round(time.perf_counter() - start, 1)
    costs: dict[str, Any] = record.get("costs") or {}
    design: dict[str, Any] = record.get("design") or {}
    per_sample = (costs.get("tokens") or 0) / max(1, costs.get("samples") or 1)
    clip_tokens = frames * float(design.get("tokens_per_frame") or 0)
    record["estimates"] = estimates(args, frames, max(1, round(per_sample - clip_tokens)))
    return record


def rows(llm: str, trainer: str, record: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per stage: what the record says of its cost and its updates."""
    if record.get("status") != "ok":
        reason = str(record.get("reason") or "no record").strip().splitlines()
        return [
            {"llm": llm, "trainer": trainer, "stage": "-", "status": f"FAILED: {reason[-1][:150] if reason else ''}"}
        ]
    costs = record.get("costs", {}).get("stages", {})
    updates = record.get("precision", {}).get("updates", {})
    out = []
    for stage, estimate in record["estimates"].items():
        c = costs.get(stage, {})
        moved = updates.get(stage, {})
        out.append(
            {
                "llm": llm,
                "trainer": trainer,
                "stage": stage,
                "status": "ok",
                "step_s": c.get("step_seconds_median"),
                "tokens_per_s": c.get("tokens_per_second"),
                "mfu": c.get("mfu"),
                "peak_gb": c.get("peak_memory_gb"),
                "estimate_gb": estimate,
                "moved": " ".join(f"{part} {share:.2f}" for part, share in sorted(moved.items())),
            }
        )
    return out


def table(all_rows: list[dict[str, Any]]) -> str:
    keys = ["llm", "trainer", "stage", "status", "step_s", "tokens_per_s", "mfu", "peak_gb", "estimate_gb", "moved"]
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    for r in all_rows:
        lines.append("| " + " | ".join("" if r.get(k) is None else str(r.get(k)) for k in keys) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.gpu_check", description=__doc__.split("\n")[0])
    p.add_argument("--cpu", action="store_true", help="the small members on a CPU (float32), 2-process FSDP on gloo")
    p.add_argument("--runs", default=None, help="llm:trainer pairs, comma-separated (default: by --cpu)")
    p.add_argument("--steps", type=int, default=3, help="optimizer steps a stage")
    p.add_argument("--frames", type=int, default=None, help="frames a sample (default: 8 on a GPU, 1 on a CPU)")
    p.add_argument("--eval-items", type=int, default=4, help="eval items scored after training")
    p.add_argument("--out", type=Path, default=ROOT / "outputs" / "gpu_check")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds a run may take")
    args = p.parse_args(argv)
    pairs = (
        [tuple(pair.split(":")) for pair in args.runs.split(",")] if args.runs else (CPU_RUNS if args.cpu else GPU_RUNS)
    )
    frames = args.frames or (1 if args.cpu else 8)
    args.out.mkdir(parents=True, exist_ok=True)
    all_rows: list[dict[str, Any]] = []
    for llm, trainer in pairs:
        record = run_one(llm, trainer, args.steps, args.cpu, frames, args.out, args.timeout, args.eval_items)
        new = rows(llm, trainer, record)
        all_rows += new
        print(table(new).splitlines()[-1] if len(new) == 1 else table(new), flush=True)
    print()
    print(table(all_rows))
    (args.out / "gpu_check.json").write_text(json.dumps(all_rows, indent=1))
    return 0 if all(r["status"] == "ok" for r in all_rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
