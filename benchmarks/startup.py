"""Start-up benchmark: `--help`, composing a config, and the per-run overhead of a multirun.

    python -m benchmarks.startup [--repeats 5] [--runs 3] [--logger wandb] [--reference DIR]

1. Wall time of `python -m src.train --help` and of `python -m src.train --cfg job` (compose
   the config and print it; nothing trains), each as a fresh process, best and median of
   `--repeats`; `python -c "import torch"` beside them for scale. Target: under 2 s.
   Then the time to a refusal (exit 2, one line): an override that does not parse, a `+key`
   nothing reads, a GPU trainer with CUDA hidden, and a value the run's validation refuses
   (it imports the components whose rules it applies), each before any data or model loads;
   and, in this process, the CPU milliseconds the checks of each run take on a composed config.
2. The per-run overhead of a multirun: everything a run costs besides its training and its
   evaluation (composing its config, the checks, building data, tokenizer and model, the
   logger, the trainers, writing the record). Two multiruns on the default data with
   training cut to a few batches (`+trainer.limit_train_batches`), one of 1 run and one of
   `--runs` runs: overhead = wall time minus the runs' train and eval seconds (from their
   records), and the difference of the two, divided by the extra runs, is the overhead of
   one more run (the process's own start-up cancels out). With `--reference` (a sweep
   folder of full tiny runs, e.g. the feature-cache benchmark's) it is set against the mean
   wall time of such a run. Target: under 10%.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from benchmarks.sweeps import ROOT, prepare_data, records, run_sweep


def timed(cmd: list[str], repeats: int, status: int = 0, **env: str) -> tuple[list[float], list[float]]:
    """Wall seconds and CPU seconds (user + system) of each of `repeats` fresh processes,
    each of which must exit with `status`; `env`: more environment.

    CPU time is what the process costs on an idle machine; on a shared one the wall time
    is longer by however much CPU the others take meanwhile."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", **env}
    wall, cpu = [], []
    for _ in range(repeats):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
        if proc.returncode != status:
            raise SystemExit(f"{' '.join(cmd)}: exit status {proc.returncode}, not {status}: {proc.stderr[-500:]}")
        wall.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return wall, cpu


def check_costs(overrides: list[str], repeats: int = 20) -> dict[str, float]:
    """CPU milliseconds of each start-up check of one run, on the config composed with
    `overrides` (the imports done once before: a multirun's later runs find them done)."""
    from hydra import compose, initialize_config_dir

    from src.config import resolvers
    from src.config.checks import check_machine
    from src.config.compose import config_groups
    from src.config.keys import check_added_keys
    from src.config.validate import check_overrides, validate

    resolvers.register()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    checks = {
        "check_overrides (the command line)": lambda: check_overrides(overrides),
        "check_added_keys (its +keys)": lambda: check_added_keys(cfg, overrides, groups=config_groups()),
        "check_machine (the trainer's device)": lambda: check_machine(cfg, None),
        "validate (every component's constraints)": lambda: validate(cfg),
    }
    costs = {}
    for name, check in checks.items():
        check()
        start = time.process_time()
        for _ in range(repeats):
            check()
        costs[name] = 1000 * (time.process_time() - start) / repeats
    return costs


def run_seconds(rec: dict) -> float:
    """A run's wall time from its record (whole seconds: the record's clock)."""
    return (datetime.fromisoformat(rec["finished_at"]) - datetime.fromisoformat(rec["started_at"])).total_seconds()


def overhead(runs: int, extra: list[str], data_dir: Path, threads: int | None) -> tuple[float, float]:
    """(wall seconds, seconds not spent training or evaluating) of a multirun of `runs` seeds."""
    with tempfile.TemporaryDirectory() as out:
        seeds = ",".join(str(s) for s in range(runs))
        wall, _ = run_sweep([f"seed={seeds}", *extra, "sweep=startup"], data_dir, Path(out), threads)
        recs = records(Path(out))
        work = sum(r["costs"]["train_seconds"] + r["costs"]["eval_seconds"] for r in recs.values())
    return wall, wall - work


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.startup", description=__doc__.split("\n")[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--runs", type=int, default=3, help="runs of the larger multirun")
    p.add_argument("--batches", type=int, default=2, help="training batches a run takes here")
    p.add_argument("--logger", default="wandb", help="the runs' logger (the demo's: wandb, offline)")
    p.add_argument("--threads", type=int, help="OMP_NUM_THREADS of the runs")
    p.add_argument("--reference", type=Path, help="a sweep folder of full tiny runs, to compare with")
    p.add_argument("--data-dir", type=Path, help="APOLLO_DATA_DIR (default: ./data, the demo's)")
    p.add_argument("extra", nargs="*", help="more overrides for the multirun (e.g. smaller data)")
    args = p.parse_args(argv)
    print(f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    py = sys.executable
    for label, cmd in (
        ("python -m src.train --help", [py, "-m", "src.train", "--help"]),
        ("python -m src.train --cfg job", [py, "-m", "src.train", "--cfg", "job"]),
        (
            "python -m src.train --cfg job encoder=internvideo2+siglip llm=qwen4b",
            [py, "-m", "src.train", "--cfg", "job", "encoder=internvideo2+siglip", "llm=qwen4b"],
        ),
        ('python -c "import torch" (for scale)', [py, "-c", "import torch"]),
    ):
        wall, cpu = timed(cmd, args.repeats)
        print(
            f"{label:<70} wall best {min(wall):5.2f} s, median {statistics.median(wall):5.2f} s; "
            f"CPU median {statistics.median(cpu):5.2f} s",
            flush=True,
        )
    with tempfile.TemporaryDirectory() as out:  # the refused run's record, if any, goes here
        refusals: tuple[tuple[str, list[str], dict[str, str]], ...] = (
            ("an override that does not parse: -m encoder=siglip,", ["-m", "encoder=siglip,"], {}),
            ("a +key nothing reads: +foo=1", ["+foo=1"], {}),
            ("no CUDA device: trainer=gpu (CUDA hidden)", ["trainer=gpu"], {"CUDA_VISIBLE_DEVICES": ""}),
            ("validation: encoder=videomae sampler=uniform", ["encoder=videomae", "sampler=uniform"], {}),
        )
        for label, overrides, env in refusals:
            wall, cpu = timed([py, "-m", "src.train", *overrides], args.repeats, 2, APOLLO_OUTPUT_DIR=out, **env)
            print(
                f"refused, {label:<61} wall best {min(wall):5.2f} s, median {statistics.median(wall):5.2f} s; "
                f"CPU median {statistics.median(cpu):5.2f} s",
                flush=True,
            )

    data_dir = (args.data_dir or ROOT / "data").resolve()
    limits = [f"+trainer.limit_train_batches={args.batches}", "+trainer.limit_test_batches=1"]
    for name, ms in check_costs([f"logger={args.logger}", *limits, *args.extra]).items():
        print(f"a run's {name:<60} {ms:6.1f} ms CPU", flush=True)
    extra = [
        f"logger={args.logger}",
        "profile.epochs=1",
        *limits,
        *args.extra,
    ]
    prepare_data(args.extra, data_dir)
    wall1, over1 = overhead(1, extra, data_dir, args.threads)
    walln, overn = overhead(args.runs, extra, data_dir, args.threads)
    per_run = (overn - over1) / (args.runs - 1)
    print(
        f"multirun of 1 run: {wall1:.1f} s wall, {over1:.1f} s outside training and evaluation "
        f"(process start-up included)"
    )
    print(f"multirun of {args.runs} runs: {walln:.1f} s wall, {overn:.1f} s outside training and evaluation")
    print(f"per-run overhead in a multirun: {per_run:.1f} s (logger={args.logger})")
    if args.reference:
        recs = [r for r in records(args.reference).values() if r["status"] == "ok"]
        ref = statistics.mean(run_seconds(r) for r in recs)
        print(
            f"a full tiny run ({len(recs)} in {args.reference}): {ref:.0f} s; "
            f"the overhead is {100 * per_run / ref:.1f}% of it"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
