"""Feature-cache benchmark: the same sweep without and with the cache, wall times and results.

    python -m benchmarks.feature_cache [--sweeps demo resampler] [--n-train 1000 --n-eval 250
        --epochs 3] [--threads 1] [--warm] [--out DIR]

For each sweep (`demo`: encoder=siglip,dinov2 x llm=qwen0.5b,qwen4b, make demo's grid;
`resampler`: resampler=perceiver,avgpool,attnpool), it generates the synthetic benchmark
first (not timed), then runs the whole sweep as `python -m src.train -m ...` twice, in one
go: with `cache.features=false`, and with the cache on, starting from an empty cache folder
(so the misses of the first runs are paid for). `--warm` adds a third pass that finds the
cache full, as a later sweep over the same videos and encoders would. It prints each
pass's wall time, the speed-up, the cache's hits and misses from the run records, each
run's train and eval seconds, and whether every run's metrics and every eval item's chosen
answer are identical across the passes.
"""

from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path
from typing import Any

from benchmarks.sweeps import ROOT, choices, prepare_data, records, run_sweep, small_data

SWEEPS = {
    "demo": ["encoder=siglip,dinov2", "llm=qwen0.5b,qwen4b"],
    "resampler": ["resampler=perceiver,avgpool,attnpool"],
}


def cache_counts(recs: dict[str, dict[str, Any]]) -> dict[str, int]:
    total = {"hits": 0, "misses": 0}
    for rec in recs.values():
        fc = rec["data"].get("feature_cache", {})
        for split in ("train", "test"):
            for k in total:
                total[k] += fc.get(split, {}).get(k, 0)
    return total


def same_results(a: dict[str, dict[str, Any]], b: dict[str, dict[str, Any]]) -> tuple[bool, str]:
    """Every run's metrics (train loss included) and every eval item's answer equal, exactly."""
    if set(a) != set(b):
        return False, f"different runs: {sorted(set(a) ^ set(b))}"
    for name in a:
        if a[name]["status"] != "ok" or b[name]["status"] != "ok":
            return False, f"{name}: a run failed"
        if a[name]["metrics"] != b[name]["metrics"]:
            diff = {
                k: (v, b[name]["metrics"].get(k))
                for k, v in a[name]["metrics"].items()
                if b[name]["metrics"].get(k) != v
            }
            return False, f"{name}: metrics differ {diff}"
        if choices(Path(a[name]["run_dir"])) != choices(Path(b[name]["run_dir"])):
            return False, f"{name}: eval answers differ"
    return True, "identical"


def bench(name: str, grid: list[str], args: argparse.Namespace) -> dict[str, Any]:
    data = small_data(args.n_train, args.n_eval, args.epochs)
    common = [*grid, *data, "logger=none", f"data.num_workers={args.workers}", *args.extra]
    prepare_data(common[len(grid) :], args.data_dir)
    cache_dir = args.out / f"cache-{name}"
    shutil.rmtree(cache_dir, ignore_errors=True)
    passes = {"off": ["cache.features=false"], "on": [f"cache.dir={cache_dir}"]}
    if args.warm:
        passes["on, warm"] = [f"cache.dir={cache_dir}"]
    result: dict[str, Any] = {"sweep": name, "runs": 0, "passes": {}}
    for mode, extra in passes.items():
        out = args.out / name / mode.replace(", ", "_")
        shutil.rmtree(out, ignore_errors=True)
        seconds, cpu = run_sweep(
            [*common, *extra, f"sweep={name}"],
            args.data_dir,
            out,
            args.threads,
            log=args.out / "logs" / f"{name}-{mode.replace(', ', '_')}.log",
        )
        recs = records(out)
        result["passes"][mode] = {"seconds": seconds, "cpu": cpu, "records": recs, **cache_counts(recs)}
        result["runs"] = len(recs)
        print(
            f"  {name} cache {mode}: {seconds:.1f} s wall, {cpu:.1f} s CPU for {len(recs)} runs "
            f"(load {os.getloadavg()[0]:.1f})",
            flush=True,
        )
    off = result["passes"]["off"]
    for p in result["passes"].values():
        p["speedup"] = off["seconds"] / p["seconds"]
        p["cpu_speedup"] = off["cpu"] / p["cpu"]
        p["same"], p["why"] = same_results(off["records"], p["records"])
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.feature_cache", description=__doc__.split("\n")[0])
    p.add_argument("--sweeps", nargs="+", choices=sorted(SWEEPS), default=sorted(SWEEPS))
    p.add_argument("--n-train", type=int, default=1000, help="training videos (the demo's 1000)")
    p.add_argument("--n-eval", type=int, default=250)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--workers", type=int, default=1, help="data.num_workers (the demo's 1)")
    p.add_argument("--threads", type=int, help="OMP_NUM_THREADS of the runs (default: torch's)")
    p.add_argument("--warm", action="store_true", help="a third pass, on the filled cache")
    p.add_argument("--out", type=Path, default=ROOT / "outputs" / "bench" / "feature_cache")
    p.add_argument("--data-dir", type=Path, help="APOLLO_DATA_DIR (default: OUT/data)")
    p.add_argument("extra", nargs="*", help="more overrides for every run")
    args = p.parse_args(argv)
    args.out = args.out.resolve()
    args.data_dir = (args.data_dir or args.out / "data").resolve()
    print(
        f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}; {args.n_train} train / {args.n_eval} "
        f"eval videos, {args.epochs} epochs; threads {args.threads or 'default'}",
        flush=True,
    )
    results = [bench(name, SWEEPS[name], args) for name in args.sweeps]
    print(
        f"\n{'sweep':<10} {'runs':>4} {'cache':<9} {'wall s':>8} {'speed-up':>8} {'CPU s':>8} "
        f"{'speed-up':>8} {'hits':>6} {'misses':>6}  results"
    )
    for r in results:
        for mode, p in r["passes"].items():
            print(
                f"{r['sweep']:<10} {r['runs']:>4} {mode:<9} {p['seconds']:>8.1f} {p['speedup']:>7.2f}x "
                f"{p['cpu']:>8.1f} {p['cpu_speedup']:>7.2f}x {p['hits']:>6} {p['misses']:>6}  "
                f"{p['why'] if mode != 'off' else '-'}"
            )
    print("\nper run: train s / eval s, cache off -> on (in the order the sweep ran them)")
    for r in results:
        off, on = r["passes"]["off"]["records"], r["passes"]["on"]["records"]
        keys = [o.split("=")[0] for o in SWEEPS[r["sweep"]]]
        for name in sorted(off, key=lambda n: off[n]["started_at"]):
            label = ",".join(f"{k}={off[name]['choices'][k]}" for k in keys)
            a, b = off[name]["costs"], on[name]["costs"]
            print(
                f"  {r['sweep']:<10} {label:<32} {a['train_seconds']:>7.1f} / {a['eval_seconds']:>5.1f} "
                f"-> {b['train_seconds']:>7.1f} / {b['eval_seconds']:>5.1f}"
            )
    return 0 if all(p["same"] for r in results for p in r["passes"].values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
