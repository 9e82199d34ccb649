"""Does the speed question need the video's clock? Its ceiling per sampler, and a sweep's verdict.

The `speed` question of the synthetic benchmark asks how long a lamp stays on each colour.
A model sees only the colours of the sampled frames, so the best accuracy any model can
reach with a sampler is that of the ideal observer: the Bayes rule from the sampled colour
sequence to the period, estimated here on draws made exactly as the benchmark makes its
videos (durations, native rates, periods and first colours), fitted on half of them and
scored on the other half. Fps sampling shows the period as run lengths on a known time
base; uniform sampling over videos of unknown length does not, so its ceiling is low.
Over videos of one fixed length, uniform sampling's ceiling is high again: the video's
clock is what it lacks, not frames.

    python -m src.data.clock                        # the ceilings, for the sampling_speed sweep's videos
    python -m src.data.clock outputs/sweeps/sampling_speed [--metric test/synthetic/perception]

With a sweep folder it prints, per seed, the accuracy of the runs with `sampler=fps` and
`sampler=uniform` and the ceilings for their benchmark, and exits 1 unless fps sampling
beats uniform sampling on every seed.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from src.data.samplers import ClipPlan, FpsSampler, UniformSampler
from src.data.scenes import PALETTE, speed
from src.data.synthetic import SyntheticSpec, video_length

# the benchmark of sweeps/sampling_speed.yaml: speed questions on 2-20 s videos
SWEEP_SPEC = SyntheticSpec(scenes=("speed",), max_duration=20.0, control_share=0.0)
Sampler = Callable[[int, float], ClipPlan]


def _observations(sampler: Sampler, spec: SyntheticSpec, draws: int, seed: int) -> list[tuple[tuple, int]]:
    """(what the sampled frames show, the answer) of `draws` speed videos.

    What they show is the sequence of colour steps between sampled frames (mod 4), with
    its length: all the frames carry, as the first colour is independent of the answer.
    """
    rng = np.random.default_rng(seed)
    palette = PALETTE.astype(int)
    out = []
    for _ in range(draws):
        fps, n = video_length(rng, spec, "speed")
        scene = speed(rng, max(2, n), fps, 2)  # 2x2 frames: the lamp fills the frame
        plan = sampler(len(scene.frames), fps)
        pixels = scene.frames[plan.flat, 0, 0].astype(int)
        colour = np.abs(pixels[:, None, :] - palette[None]).sum(-1).argmin(-1)
        out.append((tuple(np.diff(colour) % 4), scene.answer))
    return out


def ceiling(sampler: Sampler, spec: SyntheticSpec = SWEEP_SPEC, draws: int = 8000, seed: int = 0) -> float:
    """Held-out accuracy of the ideal observer on the speed question under `sampler`."""
    seen = _observations(sampler, spec, draws, seed)
    fit, held = seen[: draws // 2], seen[draws // 2:]
    table: dict[tuple, Counter] = defaultdict(Counter)
    for key, answer in fit:
        table[key][answer] += 1
    prior = Counter(a for _, a in fit).most_common(1)[0][0]  # an unseen sequence: the commonest answer
    right = sum((table[k].most_common(1)[0][0] if k in table else prior) == a for k, a in held)
    return right / len(held)


def _runs(sweep_dir: Path, metric: str) -> dict[tuple[int, str], float]:
    """(seed, sampler) -> metric of the finished runs of a sweep folder."""
    found: dict[tuple[int, str], float] = {}
    for path in sorted(sweep_dir.rglob("result.json")):
        rec = json.loads(path.read_text())
        if rec.get("status") != "ok" or metric not in rec.get("metrics", {}):
            continue
        found[(int(rec["config"]["seed"]), str(rec["choices"]["sampler"]))] = float(rec["metrics"][metric])
    return found


def _spec_of(sweep_dir: Path) -> SyntheticSpec:
    """The benchmark the sweep's runs used (from a record's config), else the sweep file's."""
    for path in sorted(sweep_dir.rglob("result.json")):
        fields = json.loads(path.read_text()).get("config", {}).get("data", {}).get("synthetic")
        if fields:
            return SyntheticSpec.from_dict(fields)
    return SWEEP_SPEC


def compare(sweep_dir: Path, metric: str, draws: int = 8000) -> tuple[str, bool]:
    """The per-seed table of fps against uniform, and whether fps wins on every seed."""
    runs = _runs(sweep_dir, metric)
    seeds = sorted({s for s, _ in runs})
    pairs = [s for s in seeds if (s, "fps") in runs and (s, "uniform") in runs]
    if not pairs:
        raise ValueError(f"{sweep_dir}: no seed with finished runs of both sampler=fps and sampler=uniform "
                         f"reporting {metric} ({len(runs)} finished run(s))")
    spec = _spec_of(sweep_dir)
    lines = [f"{metric}, per seed ({sweep_dir})", "", "| seed | fps | uniform | fps - uniform |",
             "|---|---|---|---|"]
    for s in pairs:
        f, u = runs[(s, "fps")], runs[(s, "uniform")]
        lines.append(f"| {s} | {f:.3f} | {u:.3f} | {f - u:+.3f} |")
    wins = sum(runs[(s, "fps")] > runs[(s, "uniform")] for s in pairs)
    unpaired = [s for s in seeds if s not in pairs]
    lines += ["", f"fps beats uniform on {wins} of {len(pairs)} seeds"
              + (f" (seeds without both runs: {unpaired})" if unpaired else "")]
    lines.append(_ceilings_line(spec, draws))
    return "\n".join(lines), wins == len(pairs)


def _ceilings_line(spec: SyntheticSpec, draws: int) -> str:
    fps = ceiling(FpsSampler(fps=2.0, max_clips=64), spec, draws)
    uni = ceiling(UniformSampler(8), spec, draws)
    return (f"ceiling on speed questions ({spec.min_duration:g}-{spec.max_duration:g} s videos): "
            f"fps 2 {fps:.3f}, uniform 8 {uni:.3f} (chance 0.25)")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m src.data.clock", description=__doc__.splitlines()[0])
    parser.add_argument("sweep_dir", nargs="?", type=Path, help="a sweep folder with fps and uniform runs")
    parser.add_argument("--metric", default="test/synthetic/perception",
                        help="the metric to compare (default: %(default)s, the speed questions there)")
    parser.add_argument("--draws", type=int, default=8000, help="videos drawn per ceiling (default: %(default)s)")
    args = parser.parse_args(argv)
    if args.sweep_dir is None:
        print(_ceilings_line(SWEEP_SPEC, args.draws))
        fixed = SyntheticSpec(scenes=("speed",), min_duration=10.0, max_duration=10.0, control_share=0.0)
        print(f"with every video 10 s long: {_ceilings_line(fixed, args.draws).split(': ', 1)[1]}")
        return 0
    if not args.sweep_dir.is_dir():
        print(f"error: {args.sweep_dir}: no such sweep folder", file=sys.stderr)
        return 2
    try:
        table, fps_wins = compare(args.sweep_dir, args.metric, args.draws)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(table)
    return 0 if fps_wins else 1


if __name__ == "__main__":
    sys.exit(main())
