"""Does the speed question need the video's clock? Its ceiling per sampler, and a sweep's verdict.

The `speed` question of the synthetic benchmark asks how long a lamp stays on each colour.
A model sees only the colours of the sampled frames, so the best accuracy any model can
reach with a sampler is that of the ideal observer: the Bayes rule from the sampled colour
sequence to the period, estimated here on draws made exactly as the benchmark makes its
videos (durations, native rates, periods and first colours): `ceiling` fits it on half of
them and scores it on the other half; `eval_ceiling` gives its expected accuracy on the
benchmark's own eval questions. Fps sampling shows the period as run lengths on a known time
base; uniform sampling over videos of unknown length does not, so its ceiling is low.
Over videos of one fixed length, uniform sampling's ceiling is high again: the video's
clock is what it lacks, not frames.

    python -m src.tools.clock                        # the ceilings, for the sampling_speed sweep's videos
    python -m src.tools.clock outputs/sweeps/sampling_speed [--metric test/synthetic/perception]

With a sweep folder it prints, per seed, the accuracy of the runs with `sampler=fps` and
`sampler=uniform`, and both samplers' ceilings on the runs' own eval questions (rebuilt
from the benchmark's seeds), and exits 1 unless fps sampling beats uniform sampling on
every seed.
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


def _observe(rng: np.random.Generator, spec: SyntheticSpec, sampler: Sampler) -> tuple[tuple, int]:
    """One speed video drawn as the benchmark draws it: (what its sampled frames show, the answer).

    What they show is the sequence of colour steps between sampled frames (mod 4), with
    its length: all the frames carry, as the first colour is independent of the answer.
    """
    fps, n = video_length(rng, spec, "speed")
    scene = speed(rng, max(2, n), fps, 2)  # 2x2 frames: the lamp fills the frame; same draws as 64x64
    plan = sampler(len(scene.frames), fps)
    pixels = scene.frames[plan.flat, 0, 0].astype(int)
    colour = np.abs(pixels[:, None, :] - PALETTE.astype(int)[None]).sum(-1).argmin(-1)
    return tuple(np.diff(colour) % 4), scene.answer


def _bayes_rule(seen: list[tuple[tuple, int]]) -> Callable[[tuple], int]:
    """The commonest answer of each observation (of all, for one never seen)."""
    table: dict[tuple, Counter] = defaultdict(Counter)
    for key, answer in seen:
        table[key][answer] += 1
    prior = Counter(a for _, a in seen).most_common(1)[0][0]
    return lambda key: table[key].most_common(1)[0][0] if key in table else prior


def ceiling(sampler: Sampler, spec: SyntheticSpec = SWEEP_SPEC, draws: int = 20000, seed: int = 0) -> float:
    """Held-out accuracy of the ideal observer on the speed question under `sampler`:
    the Bayes rule fitted on half of `draws` videos, scored on the other half."""
    rng = np.random.default_rng(seed)
    seen = [_observe(rng, spec, sampler) for _ in range(draws)]
    rule = _bayes_rule(seen[: draws // 2])
    return float(np.mean([rule(k) == a for k, a in seen[draws // 2 :]]))


def eval_ceiling(sampler: Sampler, spec: SyntheticSpec, draws: int = 20000, seed: int = 0) -> tuple[float, int]:
    """The ideal observer's expected accuracy on the benchmark's own eval speed questions:
    (the mean over them of the probability of the likeliest answer given what the sampled
    frames show, estimated on `draws` fresh videos; the number of questions). The questions
    are rebuilt from their seeds without I/O. A model's score on them also varies by luck
    around its own expectation (binomially: about 0.035 for 200 questions at 0.5)."""
    from src.data.synthetic import item_rng, schedule

    rng = np.random.default_rng([seed, 1])  # not a stream of the benchmark's
    table: dict[tuple, Counter] = defaultdict(Counter)
    for key, answer in (_observe(rng, spec, sampler) for _ in range(draws)):
        table[key][answer] += 1
    prior: Counter = Counter()
    for counts in table.values():
        prior.update(counts)
    items = [i for i, (kind, control) in enumerate(schedule(spec, spec.n_eval)) if kind == "speed" and control is None]
    best = []
    for i in items:
        counts = table.get(_observe(item_rng(spec, "eval", i), spec, sampler)[0], prior)
        best.append(max(counts.values()) / sum(counts.values()))
    return float(np.mean(best)) if items else float("nan"), len(items)


def _records(sweep_dir: Path, metric: str) -> dict[tuple[int, str], dict[str, Any]]:
    """(seed, sampler) -> record, of the finished runs of a sweep folder reporting `metric`."""
    found: dict[tuple[int, str], dict[str, Any]] = {}
    for path in sorted(sweep_dir.rglob("result.json")):
        rec = json.loads(path.read_text())
        if rec.get("status") == "ok" and metric in rec.get("metrics", {}):
            found[(int(rec["config"]["seed"]), str(rec["choices"]["sampler"]))] = rec
    return found


def _sampler_of(rec: dict[str, Any]) -> Sampler:
    """The sampler a run used, from its record (its clips do not change what the frames show)."""
    design, cfg = rec.get("design", {}), rec["config"].get("sampler", {})
    if rec["choices"]["sampler"] == "uniform":
        return UniformSampler(int(design.get("num_frames") or cfg["num_frames"]))
    return FpsSampler(fps=float(design.get("fps") or cfg["fps"]), max_clips=cfg.get("max_clips"))


def compare(sweep_dir: Path, metric: str, draws: int = 20000) -> tuple[str, bool]:
    """The per-seed table of fps against uniform, and whether fps wins on every seed."""
    runs = _records(sweep_dir, metric)
    seeds = sorted({s for s, _ in runs})
    pairs = [s for s in seeds if (s, "fps") in runs and (s, "uniform") in runs]
    if not pairs:
        raise ValueError(
            f"{sweep_dir}: no seed with finished runs of both sampler=fps and sampler=uniform "
            f"reporting {metric} ({len(runs)} finished run(s))"
        )
    acc = {k: float(rec["metrics"][metric]) for k, rec in runs.items()}
    lines = [f"{metric}, per seed ({sweep_dir})", "", "| seed | fps | uniform | fps - uniform |", "|---|---|---|---|"]
    for s in pairs:
        f, u = acc[(s, "fps")], acc[(s, "uniform")]
        lines.append(f"| {s} | {f:.3f} | {u:.3f} | {f - u:+.3f} |")
    wins = sum(acc[(s, "fps")] > acc[(s, "uniform")] for s in pairs)
    unpaired = [s for s in seeds if s not in pairs]
    lines += [
        "",
        f"fps beats uniform on {wins} of {len(pairs)} seeds"
        + (f" (seeds without both runs: {unpaired})" if unpaired else ""),
    ]
    # the best any model could score on these very questions, from what each sampler shows
    first = runs[(pairs[0], "fps")]
    fields = first["config"].get("data", {}).get("synthetic")
    if fields:
        spec = SyntheticSpec.from_dict(fields)
        bounds = [
            (name, *eval_ceiling(_sampler_of(runs[(pairs[0], name)]), spec, draws)) for name in ("fps", "uniform")
        ]
        lines.append(
            f"ceiling on these {bounds[0][2]} speed questions (the ideal observer's expected "
            f"accuracy from the sampled frames): " + ", ".join(f"{name} {c:.3f}" for name, c, _ in bounds)
        )
    return "\n".join(lines), wins == len(pairs)


def _ceilings_line(spec: SyntheticSpec, draws: int) -> str:
    fps = ceiling(FpsSampler(fps=2.0, max_clips=64), spec, draws)
    uni = ceiling(UniformSampler(8), spec, draws)
    return (
        f"ceiling on speed questions ({spec.min_duration:g}-{spec.max_duration:g} s videos): "
        f"fps 2 {fps:.3f}, uniform 8 {uni:.3f} (chance 0.25)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m src.tools.clock", description=__doc__.splitlines()[0])
    parser.add_argument("sweep_dir", nargs="?", type=Path, help="a sweep folder with fps and uniform runs")
    parser.add_argument(
        "--metric",
        default="test/synthetic/perception",
        help="the metric to compare (default: %(default)s, the speed questions there)",
    )
    parser.add_argument("--draws", type=int, default=20000, help="videos drawn per ceiling (default: %(default)s)")
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
