"""The synthetic video benchmark: real mp4 files and multiple-choice questions, made here.

`python -m src.data.synthetic` prepares the default benchmark (the spec in
conf/data/synthetic.yaml) where training looks for it; with `--out DIR` it writes a
benchmark of your own. The result is cached: a directory named by the hash of the spec
holds `videos/`, `images/`, `train.jsonl`, `eval.jsonl`, `spec.json` and a `DONE` marker.
Several runs of a sweep may ask for the same benchmark at once: one generates under a
file lock, into a temporary directory that is renamed into place, and the others wait
and reuse it.

`eval.jsonl` holds multiple-choice video questions (the manifest format of
src.data.manifest). `train.jsonl` is in the LLaVA-Video-178K / LLaVA-OneVision format
(`conversations`, and a `video`, an `image` or a list of images, or no media at all): the
same kinds of video questions as eval, plus still-image, multi-image and text-only
samples for data-mixture sweeps. The scenes and their categories are in src.data.scenes.

Both splits take the five categories in turn, and the chosen kinds of each category in
turn, so they stay balanced; a `control_share` of each split's questions are controls
(half "frame", half "text", evenly spread), which any single frame or the question alone
answers. Restricting `scenes` keeps the controls: set `control_share` to 0 for none.
`train_control_share` gives the training split a share of its own (more controls to learn
from, for the modality audit), the eval split unchanged.

Eval lists each kind's options in one fixed order. `shuffle_train_options` lists each
training question's options in an order of its own (drawn from a generator of its own, so
the question, its media and the answer's option are those of the unshuffled benchmark): a
model trained on it has to read the options to name the letter, as circular evaluation
(src/data/circular.py) asks, instead of learning a letter per answer.

Every item draws from its own generator, seeded by (seed, stream, index): an item does
not change when the counts of the others do, so sweeps over training sizes and mixtures
share one eval split.
"""

from __future__ import annotations

import argparse
import dataclasses
import fcntl
import hashlib
import json
import logging
import math
import os
import shutil
import signal
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from src.data.manifest import LETTERS, mcq_prompt
from src.data.scenes import (
    BY_CATEGORY,
    CATEGORIES,
    CONTROLS,
    IMAGE_SAMPLES,
    MIN_SECONDS,
    MULTI_IMAGE_SAMPLES,
    TEXT_SAMPLES,
    VIDEO_SCENES,
    Scene,
)

log = logging.getLogger(__name__)
GENERATOR_VERSION = 4  # 4: camera_pan starts anywhere on a world that wraps (no frame tells the way)
DEFAULT_CONFIG = Path(__file__).resolve().parents[2] / "conf" / "data" / "synthetic.yaml"
STREAMS = ("train", "eval", "image", "multi_image", "text")  # one seed stream each
VIDEO, IMAGE = "<video>", "<image>"  # the media placeholders of a prompt
# fields added after benchmarks were cached: at these values they leave the cache key as it was
OPTIONAL_FIELDS: dict[str, Any] = {"train_control_share": None, "shuffle_train_options": False}


@dataclass(frozen=True)
class SyntheticSpec:
    """What to generate. Every field enters the cache key."""

    n_train: int = 1000  # video questions for training
    n_eval: int = 250
    seed: int = 0
    size: int = 64  # frame side, pixels
    min_duration: float = 2.0  # seconds; durations are log-uniform in between
    max_duration: float = 10.0
    native_fps: tuple[float, ...] = (10, 15, 24, 29.97, 30)  # 29.97 is written 30000/1001
    control_share: float = 0.1  # of each split's video questions
    train_control_share: float | None = None  # of the training split's; None: control_share
    shuffle_train_options: bool = False  # training questions' options in an order of their own
    scenes: tuple[str, ...] | None = None  # video kinds to ask about; None: all
    n_image: int = 100  # extra training samples of the other modalities
    n_multi_image: int = 100
    n_text: int = 100

    def __post_init__(self) -> None:
        if self.n_train < 1 or self.n_eval < 1:
            raise ValueError(f"n_train and n_eval must be >= 1, got {self.n_train}, {self.n_eval}")
        extras = {"n_image": self.n_image, "n_multi_image": self.n_multi_image, "n_text": self.n_text}
        negative = [f"{k}={v}" for k, v in extras.items() if v < 0]
        if negative:
            raise ValueError(f"sample counts must be >= 0, got {', '.join(negative)}")
        if not 0 < self.min_duration <= self.max_duration:
            raise ValueError(f"need 0 < min_duration <= max_duration, got {self.min_duration}, {self.max_duration}")
        if self.size < 32 or self.size % 16:
            raise ValueError(f"size must be a multiple of 16 and >= 32, got {self.size}")
        if not self.native_fps or any(f <= 0 for f in self.native_fps):
            raise ValueError(f"native_fps must be a non-empty list of positive rates, got {self.native_fps}")
        if not 0 <= self.control_share < 1:
            raise ValueError(f"control_share must be in [0, 1), got {self.control_share}")
        if self.train_control_share is not None and not 0 <= self.train_control_share < 1:
            raise ValueError(f"train_control_share must be null or in [0, 1), got {self.train_control_share}")
        if self.scenes is not None:
            valid = ", ".join(VIDEO_SCENES)
            if isinstance(self.scenes, str) or not self.scenes:
                raise ValueError(f"scenes must be null or a non-empty list of: {valid}; got {self.scenes!r}")
            unknown = [s for s in self.scenes if s not in VIDEO_SCENES]
            if unknown:
                raise ValueError(f"unknown scene(s) {', '.join(map(str, unknown))}; valid: {valid}")

    @classmethod
    def from_dict(cls, fields: Mapping[str, Any]) -> SyntheticSpec:
        """From a config block (lists become tuples, so the spec stays hashable)."""
        kwargs: dict[str, Any] = {
            k: tuple(v) if isinstance(v, Sequence) and not isinstance(v, str) else v for k, v in fields.items()
        }
        return cls(**kwargs)

    def key(self) -> str:
        fields = dataclasses.asdict(self)
        for name, default in OPTIONAL_FIELDS.items():  # at their default: the key they had before
            if fields[name] == default:
                del fields[name]
        blob = json.dumps({"v": GENERATOR_VERSION, **fields}, sort_keys=True)
        return f"v{GENERATOR_VERSION}-{hashlib.sha1(blob.encode()).hexdigest()[:10]}"


def frame_rate(fps: float) -> Fraction:
    """The exact rate meant by `fps`: 29.97 (and 23.976, 59.94) is NTSC's 30000/1001,
    which the nearest small fraction of the float (2997/100) is not."""
    ntsc = Fraction(round(fps * 1.001) * 1000, 1001)
    if fps != round(fps) and abs(float(ntsc) - fps) < 5e-3:
        return ntsc
    return Fraction(fps).limit_denominator(1001)


def write_mp4(path: Path, frames: np.ndarray, fps: float) -> None:
    """Encode (T, H, W, 3) uint8 frames as H.264 mp4 at `fps` (see frame_rate)."""
    import av  # imported here: only generation needs an encoder

    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=frame_rate(fps))
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "12", "preset": "ultrafast", "tune": "zerolatency"}
        stream.codec_context.thread_count = 1  # frames this small encode ~4x faster on one
        for f in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def write_png(path: Path, image: np.ndarray) -> None:
    """Write an (H, W, 3) uint8 image as PNG (lossless: the colours stay exact)."""
    from PIL import Image

    Image.fromarray(image).save(path)


def schedule(spec: SyntheticSpec, count: int, split: str = "eval") -> list[tuple[str, str | None]]:
    """(kind, control) of each of a split's `count` video questions.

    Question i is a control where floor(i * share) steps up (share: `control_share`, or
    for the training split `train_control_share` where set), so the controls are
    spread evenly; they alternate text and frame, and take their kinds in turn. The other
    questions take the categories in turn, and the kinds of each category in turn.
    """
    chosen = set(spec.scenes or VIDEO_SCENES)
    kinds = {c: [k for k in BY_CATEGORY[c] if k in chosen] for c in CATEGORIES}
    cycle = [c for c in CATEGORIES if kinds[c]]
    plan: list[tuple[str, str | None]] = []
    n_controls = n_videos = 0
    share = spec.control_share
    if split == "train" and spec.train_control_share is not None:
        share = spec.train_control_share
    for i in range(count):
        if math.floor((i + 1) * share) > math.floor(i * share):
            control = ("text", "frame")[n_controls % 2]
            options = list(CONTROLS[control])
            plan.append((options[n_controls // 2 % len(options)], control))
            n_controls += 1
        else:
            category = cycle[n_videos % len(cycle)]
            plan.append((kinds[category][n_videos // len(cycle) % len(kinds[category])], None))
            n_videos += 1
    return plan


def item_rng(spec: SyntheticSpec, stream: str, index: int) -> np.random.Generator:
    """The generator of one item: its own, so it does not depend on the other items."""
    return np.random.default_rng([spec.seed, STREAMS.index(stream), index])


def video_length(rng: np.random.Generator, spec: SyntheticSpec, kind: str) -> tuple[float, int]:
    """(native fps, frame count) of a video question of `kind`, drawn as the benchmark draws it.

    The duration is log-uniform, so short videos are common and long ones occur; a kind
    that needs a longer video than min_duration has its range raised (MIN_SECONDS).
    """
    fps = float(frame_rate(float(rng.choice(spec.native_fps))))
    need = MIN_SECONDS.get(kind, 0.0)
    lo, hi = max(spec.min_duration, need), max(spec.max_duration, need)
    duration = math.exp(rng.uniform(math.log(lo), math.log(hi)))
    n = int(np.clip(round(duration * fps), math.ceil(lo * fps - 1e-9), math.floor(hi * fps + 1e-9)))
    return fps, n


def _video(
    rng: np.random.Generator, spec: SyntheticSpec, kind: str, control: str | None, out: Path, item_id: str
) -> tuple[Scene, dict[str, Any]]:
    """Render and write one video question; its scene, and the row fields of its video."""
    fps, n = video_length(rng, spec, kind)
    render = CONTROLS[control][kind] if control else VIDEO_SCENES[kind]
    scene = render(rng, max(2, n), fps, spec.size)
    write_mp4(out / "videos" / f"{item_id}.mp4", scene.frames, fps)
    return scene, {"video": f"videos/{item_id}.mp4", "duration": len(scene.frames) / fps, "fps": fps}


def _eval_row(item_id: str, scene: Scene, media: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": item_id,
        "question_id": item_id,
        "video": media["video"],
        "question": scene.question,
        "options": scene.options,
        "answer": LETTERS[scene.answer],
        "category": scene.category,
        "kind": scene.kind,
        "control": scene.control,
        "benchmark": "synthetic",
        "duration": media["duration"],
        "fps": media["fps"],
    }


def shuffle_options(spec: SyntheticSpec, stream: str, index: int, scene: Scene) -> Scene:
    """The scene with its options in an order drawn for this item alone (its answer moved
    with its option); the scene itself where `spec.shuffle_train_options` is off."""
    if not spec.shuffle_train_options or not scene.options:
        return scene
    order = np.random.default_rng([spec.seed, STREAMS.index(stream), index, 1]).permutation(len(scene.options))
    return dataclasses.replace(
        scene, options=[scene.options[k] for k in order], answer=int(np.flatnonzero(order == scene.answer)[0])
    )


def _train_row(item_id: str, scene: Scene, media: dict[str, Any]) -> dict[str, Any]:
    """A LLaVA-style row; the media placeholder of the prompt matches the media fields."""
    if "image" in media:
        k = len(media["image"]) if isinstance(media["image"], list) else 1
        tag = "\n".join([IMAGE] * k)
    else:
        tag = VIDEO if "video" in media else ""
    prompt = mcq_prompt(scene.question, scene.options, tag)
    return {
        "id": item_id,
        "conversations": [{"from": "human", "value": prompt}, {"from": "gpt", "value": LETTERS[scene.answer]}],
        "category": scene.category,
        "kind": scene.kind,
        "control": scene.control,
        **media,
    }


def _sample(
    rng: np.random.Generator, spec: SyntheticSpec, stream: str, index: int, out: Path, item_id: str
) -> tuple[Scene, dict[str, Any]]:
    """Render one extra training sample of a modality (its kinds in turn) and write its
    images; its scene, and its media field ("image": a name, or a list; none for text)."""
    if stream == "text":
        kinds = list(TEXT_SAMPLES)
        return TEXT_SAMPLES[kinds[index % len(kinds)]](rng), {}
    samples = IMAGE_SAMPLES if stream == "image" else MULTI_IMAGE_SAMPLES
    kinds = list(samples)
    scene = samples[kinds[index % len(kinds)]](rng, spec.size)
    if stream == "image":
        single = f"images/{item_id}.png"
        write_png(out / single, scene.frames[0])
        names: str | list[str] = single
    else:
        names = [f"images/{item_id}_{j}.png" for j in range(len(scene.frames))]
        for name, image in zip(names, scene.frames):
            write_png(out / name, image)
    return scene, {"image": names}


def generate(spec: SyntheticSpec, out: Path, progress: bool = True) -> Path:
    """Write the benchmark into `out` (created); returns `out`."""
    from tqdm import tqdm

    for folder in ("videos", "images"):
        (out / folder).mkdir(parents=True, exist_ok=True)
    extras = (("image", spec.n_image), ("multi_image", spec.n_multi_image), ("text", spec.n_text))
    total = spec.n_train + spec.n_eval + sum(count for _, count in extras)
    bar = tqdm(total=total, desc="synthetic benchmark", unit="item", disable=not progress, mininterval=2.0)
    rows: dict[str, list[dict[str, Any]]] = {"train": [], "eval": []}
    for split, count in (("train", spec.n_train), ("eval", spec.n_eval)):
        for i, (kind, control) in enumerate(schedule(spec, count, split)):
            item_id = f"{split}_{i:05d}"
            scene, media = _video(item_rng(spec, split, i), spec, kind, control, out, item_id)
            if split == "train":
                rows[split].append(_train_row(item_id, shuffle_options(spec, split, i, scene), media))
            else:
                rows[split].append(_eval_row(item_id, scene, media))
            bar.update()
    for stream, count in extras:
        for i in range(count):
            item_id = f"{stream}_{i:05d}"
            scene, media = _sample(item_rng(spec, stream, i), spec, stream, i, out, item_id)
            rows["train"].append(_train_row(item_id, shuffle_options(spec, stream, i, scene), media))
            bar.update()
    bar.close()
    for split, split_rows in rows.items():
        with open(out / f"{split}.jsonl", "w") as f:
            f.writelines(json.dumps(r) + "\n" for r in split_rows)
    (out / "spec.json").write_text(json.dumps(dataclasses.asdict(spec), indent=2))
    return out


def ensure(spec: SyntheticSpec, root: str | Path, progress: bool = True) -> Path:
    """The benchmark for `spec` under `root`, generated once however many ask at once.

    A generation that fails removes its temporary folder; one that was killed outright
    leaves it, and the next call removes it (and any other whose generator is gone).
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    final = root / spec.key()
    if (final / "DONE").exists():
        return final
    with open(root / f".{spec.key()}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the others wait here, then find DONE
        remove_stale_tmp(root, held=spec.key())
        if (final / "DONE").exists():
            return final
        tmp = root / f".{spec.key()}.tmp-{os.getpid()}"
        log.info("generating the synthetic benchmark into %s", final)
        try:
            generate(spec, tmp, progress=progress)
            (tmp / "DONE").write_text("ok\n")
            shutil.rmtree(final, ignore_errors=True)  # a half-written copy from a killed run
            os.rename(tmp, final)
        finally:  # failed or interrupted (Ctrl-C, SIGTERM from main): nothing half-written stays
            shutil.rmtree(tmp, ignore_errors=True)
    return final


def remove_stale_tmp(root: Path, held: str) -> list[Path]:
    """Remove the temporary folders under `root` that no generation is writing: those of
    benchmark `held`, whose lock the caller holds, and those whose benchmark's lock is
    free (a holder of the lock is writing its folder). Returns the folders removed."""
    removed = []
    for tmp in sorted(root.glob(".*.tmp-*")):
        key = tmp.name[1:].rsplit(".tmp-", 1)[0]
        if key != held:
            with open(root / f".{key}.lock", "a") as other:  # closing it releases the lock
                try:
                    fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # being generated now
        shutil.rmtree(tmp, ignore_errors=True)
        log.info("removed %s, left by a generation that was killed", tmp)
        removed.append(tmp)
    return removed


def default_spec_and_root() -> tuple[SyntheticSpec, Path]:
    """The spec and location that `conf/data/synthetic.yaml` gives training by default."""
    from omegaconf import OmegaConf

    from src.config.container import to_dict

    cfg = OmegaConf.load(DEFAULT_CONFIG)
    spec = SyntheticSpec.from_dict(to_dict(cfg.synthetic))
    root = Path(os.environ.get("APOLLO_DATA_DIR", Path.cwd() / "data")) / "synthetic"
    return spec, root


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m src.data.synthetic", description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, help="write here (default: the cache training uses)")
    for flag in ("--n-train", "--n-eval", "--seed", "--n-image", "--n-multi-image", "--n-text"):
        p.add_argument(flag, type=int)
    p.add_argument("--scenes", nargs="+", help="ask only about these video kinds")
    args = p.parse_args(argv)
    # `kill` (SIGTERM) unwinds like Ctrl-C, so that a generation removes its temporary folder
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    try:
        return _run(p, args)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run(p: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    spec, root = default_spec_and_root()
    changes: dict[str, Any] = {
        k: tuple(v) if isinstance(v, list) else v for k, v in vars(args).items() if k != "out" and v is not None
    }
    try:
        spec = dataclasses.replace(spec, **changes)
    except ValueError as e:
        p.error(str(e))
    if args.out is not None:
        out = generate(spec, args.out)
        (out / "DONE").write_text("ok\n")
    else:
        out = ensure(spec, root)
    print(
        f"synthetic benchmark: {out} ({spec.n_train} train and {spec.n_eval} eval videos, "
        f"{spec.n_image} image, {spec.n_multi_image} multi-image, {spec.n_text} text samples)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
