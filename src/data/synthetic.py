"""The synthetic video benchmark: real mp4 files and multiple-choice questions, made here.

`python -m src.data.synthetic` prepares the default benchmark (the spec in
conf/data/synthetic.yaml) where training looks for it; with `--out DIR` it writes a
benchmark of your own. The result is cached: a directory named by the hash of the spec
holds the videos, `train.jsonl`, `eval.jsonl` and a `DONE` marker. Several runs of a
sweep may ask for the same benchmark at once: one generates under a file lock, into a
temporary directory that is renamed into place, and the others wait and reuse it.
"""

from __future__ import annotations

import argparse
import dataclasses
import fcntl
import hashlib
import json
import logging
import os
import shutil
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from src.data.scenes import CATEGORIES, SCENES

log = logging.getLogger(__name__)
GENERATOR_VERSION = 2
DEFAULT_CONFIG = Path(__file__).resolve().parents[2] / "conf" / "data" / "synthetic.yaml"


@dataclass(frozen=True)
class SyntheticSpec:
    """What to generate. Every field enters the cache key."""

    n_train: int = 1200
    n_eval: int = 250
    seed: int = 0
    size: int = 64  # frame side, pixels
    min_duration: float = 2.0  # seconds
    max_duration: float = 4.0
    native_fps: tuple[int, ...] = (10, 15, 24, 30)

    def __post_init__(self) -> None:
        if self.n_train < 1 or self.n_eval < 1:
            raise ValueError(f"n_train and n_eval must be >= 1, got {self.n_train}, {self.n_eval}")
        if not 0 < self.min_duration <= self.max_duration:
            raise ValueError(f"need 0 < min_duration <= max_duration, got "
                             f"{self.min_duration}, {self.max_duration}")
        if self.size < 32 or self.size % 16:
            raise ValueError(f"size must be a multiple of 16 and >= 32, got {self.size}")

    @classmethod
    def from_dict(cls, fields: Mapping[str, Any]) -> SyntheticSpec:
        """From a config block (lists become tuples, so the spec stays hashable)."""
        return cls(**{k: tuple(v) if isinstance(v, Sequence) and not isinstance(v, str) else v
                      for k, v in fields.items()})

    def key(self) -> str:
        blob = json.dumps({"v": GENERATOR_VERSION, **dataclasses.asdict(self)}, sort_keys=True)
        return f"v{GENERATOR_VERSION}-{hashlib.sha1(blob.encode()).hexdigest()[:10]}"


def write_mp4(path: Path, frames: np.ndarray, fps: float) -> None:
    """Encode (T, H, W, 3) uint8 frames as H.264 mp4 at `fps`."""
    import av  # imported here: only generation needs an encoder

    rate = Fraction(fps).limit_denominator(1001)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=rate)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "12", "preset": "ultrafast", "tune": "zerolatency"}
        for f in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def _make_item(rng: np.random.Generator, spec: SyntheticSpec, category: str,
               item_id: str, video_dir: Path) -> dict:
    fps = float(rng.choice(spec.native_fps))
    duration = float(rng.uniform(spec.min_duration, spec.max_duration))
    n = max(2, int(round(duration * fps)))
    scene = SCENES[category](rng, n, fps, spec.size)
    write_mp4(video_dir / f"{item_id}.mp4", scene.frames, fps)
    return {
        "id": item_id,
        "video": f"videos/{item_id}.mp4",
        "question": scene.question,
        "options": scene.options,
        "answer": "ABCD"[scene.answer],
        "category": category,
        "kind": scene.kind,
        "benchmark": "synthetic",
        "duration": n / fps,
        "fps": fps,
    }


def generate(spec: SyntheticSpec, out: Path, progress: bool = True) -> Path:
    """Write the benchmark into `out` (created); returns `out`."""
    from tqdm import tqdm

    video_dir = out / "videos"
    video_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(spec.seed)
    total = spec.n_train + spec.n_eval
    bar = tqdm(total=total, desc="synthetic videos", unit="video", disable=not progress, mininterval=2.0)
    for split, count in (("train", spec.n_train), ("eval", spec.n_eval)):
        rows = []
        for i in range(count):
            # categories in turn, so every split is balanced across the five categories
            rows.append(_make_item(rng, spec, CATEGORIES[i % len(CATEGORIES)],
                                   f"{split}_{i:05d}", video_dir))
            bar.update()
        with open(out / f"{split}.jsonl", "w") as f:
            f.writelines(json.dumps(r) + "\n" for r in rows)
    bar.close()
    (out / "spec.json").write_text(json.dumps(dataclasses.asdict(spec), indent=2))
    return out


def ensure(spec: SyntheticSpec, root: str | Path, progress: bool = True) -> Path:
    """The benchmark for `spec` under `root`, generated once however many ask at once."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    final = root / spec.key()
    if (final / "DONE").exists():
        return final
    with open(root / f".{spec.key()}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the others wait here, then find DONE
        if (final / "DONE").exists():
            return final
        tmp = root / f".{spec.key()}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        log.info("generating the synthetic benchmark into %s", final)
        generate(spec, tmp, progress=progress)
        (tmp / "DONE").write_text("ok\n")
        shutil.rmtree(final, ignore_errors=True)  # a half-written copy from a killed run
        os.rename(tmp, final)
    return final


def default_spec_and_root() -> tuple[SyntheticSpec, Path]:
    """The spec and location that `conf/data/synthetic.yaml` gives training by default."""
    from omegaconf import OmegaConf

    cfg = OmegaConf.load(DEFAULT_CONFIG)
    spec = SyntheticSpec.from_dict(OmegaConf.to_container(cfg.synthetic))
    root = Path(os.environ.get("APOLLO_DATA_DIR", Path.cwd() / "data")) / "synthetic"
    return spec, root


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m src.data.synthetic", description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, help="write here (default: the cache training uses)")
    p.add_argument("--n-train", type=int)
    p.add_argument("--n-eval", type=int)
    p.add_argument("--seed", type=int)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    spec, root = default_spec_and_root()
    changes = {k: v for k, v in (("n_train", args.n_train), ("n_eval", args.n_eval),
                                 ("seed", args.seed)) if v is not None}
    try:
        spec = dataclasses.replace(spec, **changes)
    except ValueError as e:
        p.error(str(e))
    if args.out is not None:
        out = generate(spec, args.out)
        (out / "DONE").write_text("ok\n")
    else:
        out = ensure(spec, root)
    print(f"synthetic benchmark: {out} ({spec.n_train} train, {spec.n_eval} eval)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
