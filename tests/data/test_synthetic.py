"""Tests of the synthetic benchmark: its scenes (src.data.scenes) and its files (src.data.synthetic)."""

from __future__ import annotations

import dataclasses
import fcntl
import json
import math
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from src.data import synthetic
from src.data.manifest import mcq_prompt
from src.data.scenes import (
    BY_CATEGORY,
    CATEGORIES,
    COLOURS,
    CONTROLS,
    GLIMPSE,
    IMAGE_SAMPLES,
    MIN_SECONDS,
    MULTI_IMAGE_SAMPLES,
    PALETTE,
    PERIODS,
    TEXT_SAMPLES,
    VIDEO_SCENES,
    _glyph,
    camera_pan,
    count_events,
    digit_sequence,
    event_order,
    motion_direction,
    relative_position,
    speed,
)
from src.data.synthetic import SyntheticSpec, default_spec_and_root, frame_rate, generate, main, schedule
from src.data.video import open_video

VIDEO_KINDS = {**VIDEO_SCENES, **CONTROLS["frame"], **CONTROLS["text"]}
STILL_KINDS = {**IMAGE_SAMPLES, **MULTI_IMAGE_SAMPLES}
SMALL = SyntheticSpec(
    n_train=12,
    n_eval=8,
    n_image=3,
    n_multi_image=3,
    n_text=3,
    control_share=0.25,
    max_duration=5.0,
    native_fps=(10, 15),
)
EVAL_FIELDS = {
    "id",
    "question_id",
    "video",
    "question",
    "options",
    "answer",
    "category",
    "kind",
    "control",
    "benchmark",
    "duration",
    "fps",
}
TRAIN_FIELDS = {"id", "conversations", "category", "kind", "control"}


def draws(render, count: int = 200, n: int = 8, fps: float = 2.0, size: int = 32):
    """`count` scenes of a video kind, from seeds 0..count-1."""
    return [render(np.random.default_rng(i), n, fps, size) for i in range(count)]


def colour_at(frame: np.ndarray, y: int, x: int) -> int:
    """Index of the palette colour at (y, x), or -1 for none."""
    hit = np.flatnonzero((PALETTE.astype(int) == frame[y, x].astype(int)).all(axis=1))
    return int(hit[0]) if len(hit) else -1


def runs(lit: np.ndarray) -> list[tuple[int, int]]:
    """(start, end) of the runs of True in a 1-d bool array."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], lit.astype(int), [0]])))
    return list(zip(edges[::2], edges[1::2]))


@pytest.mark.parametrize("kind", list(VIDEO_KINDS))
def test_video_scene_renders(kind: str) -> None:
    scene = VIDEO_KINDS[kind](np.random.default_rng(0), 30, 10.0, 64)
    assert scene.frames.dtype == np.uint8 and scene.frames.shape[1:] == (64, 64, 3)
    assert len(scene.frames) >= max(30, math.ceil(MIN_SECONDS.get(kind, 0) * 10 - 1e-9))
    assert scene.kind == kind and len(scene.options) == 4 and 0 <= scene.answer < 4
    assert scene.category in CATEGORIES
    control = next((c for c, kinds in CONTROLS.items() if kind in kinds), None)
    assert scene.control == control
    if control is None:
        assert kind in BY_CATEGORY[scene.category]
    if control == "text":
        assert scene.options[scene.answer] in scene.question


@pytest.mark.parametrize("kind", list(STILL_KINDS) + list(TEXT_SAMPLES))
def test_still_and_text_samples(kind: str) -> None:
    rng = np.random.default_rng(0)
    scene = TEXT_SAMPLES[kind](rng) if kind in TEXT_SAMPLES else STILL_KINDS[kind](rng, 64)
    counts = {0} if kind in TEXT_SAMPLES else {1} if kind in IMAGE_SAMPLES else {2, 3, 4}
    assert len(scene.frames) in counts
    assert scene.frames.dtype == np.uint8 and scene.category in CATEGORIES and scene.control is None
    assert scene.kind == kind and len(scene.options) == 4 and 0 <= scene.answer < 4


@pytest.mark.parametrize("kind", list(VIDEO_KINDS) + list(STILL_KINDS) + list(TEXT_SAMPLES))
def test_answers_balanced_over_letters(kind: str) -> None:
    if kind in VIDEO_KINDS:
        scenes = draws(VIDEO_KINDS[kind])
    elif kind in STILL_KINDS:
        scenes = [STILL_KINDS[kind](np.random.default_rng(i), 32) for i in range(200)]
    else:
        scenes = [TEXT_SAMPLES[kind](np.random.default_rng(i)) for i in range(200)]
    letters = Counter(s.answer for s in scenes)
    assert set(letters) == {0, 1, 2, 3} and all(25 <= c <= 75 for c in letters.values()), letters
    if kind not in ("digit_sequence", "text_digits"):  # digits: sorted, the answer's rank varies
        assert len({tuple(s.options) for s in scenes}) == 1


@pytest.mark.parametrize("fps", [10.0, float(Fraction(30000, 1001)), 24.0])
def test_speed_follows_the_video_clock(fps: float) -> None:
    for scene in draws(speed, count=20, n=int(9 * fps), fps=fps):
        period = PERIODS[scene.answer]
        first = colour_at(scene.frames[0], 0, 0)
        t = np.arange(len(scene.frames))
        expected = PALETTE[(first + np.floor(t / fps / period).astype(int)) % 4]
        assert np.array_equal(scene.frames[:, 10, 20], expected)
        assert (scene.frames == scene.frames[:, :1, :1]).all()  # a lamp: the whole frame


def test_speed_needs_time() -> None:
    # Long videos of every period show the same colours, and the first frame's colour is
    # as likely any of the four whatever the period: no single frame tells the period.
    scenes = draws(speed, count=400, n=40, fps=2.0)  # 20 s: four colours at a 4 s period
    colours = {p: [colour_at(s.frames[0], 0, 0) for s in scenes if s.answer == p] for p in range(4)}
    for p in range(4):
        seen = {colour_at(f, 0, 0) for s in scenes if s.answer == p for f in s.frames}
        assert seen == {0, 1, 2, 3}
        assert set(colours[p]) == {0, 1, 2, 3} and max(Counter(colours[p]).values()) < 0.45 * len(colours[p])
    # Short videos are lengthened to the time the question needs (a change at 2 s seen).
    assert len(speed(np.random.default_rng(0), 2, 10.0, 32).frames) == 26


def test_motion_direction_start_says_nothing() -> None:
    starts: dict[int, list[tuple[int, int]]] = {d: [] for d in range(4)}
    for scene in draws(motion_direction, count=400, n=10, fps=10.0, size=64):
        ys, xs = np.nonzero((scene.frames[0] != scene.frames[0, 0, 0]).any(axis=-1))
        starts[scene.answer].append((xs.min(), ys.min()))
        ys1, xs1 = np.nonzero((scene.frames[-1] != scene.frames[0, 0, 0]).any(axis=-1))
        moved = (xs1.mean() - xs.mean(), ys1.mean() - ys.mean())
        step = {0: (-1, 0), 1: (1, 0), 2: (0, -1), 3: (0, 1)}[scene.answer]
        assert np.dot(moved, step) > 8 and moved[0] * step[1] - moved[1] * step[0] == 0
    # the first frame's square lies in the same box, [16, 32] for 64 px, whichever the way
    for points in starts.values():
        xy = np.array(points)
        assert xy.min() >= 16 and xy.max() <= 32
        assert (xy.min(axis=0) <= 18).all() and (xy.max(axis=0) >= 30).all()


def _layout(frame: np.ndarray) -> np.ndarray:
    """A frame's colour layout: the mean colour of each cell of a 4x4 grid."""
    h = frame.shape[0] // 4
    return frame.astype(float).reshape(4, h, 4, h, 3).mean(axis=(1, 3)).ravel()


def test_camera_pan_no_single_frame_tells_the_way() -> None:
    # a nearest-centroid classifier of the way from one frame's colour layout, fitted on
    # 200 pans and scored on 200 others: at chance for the first, centre and last frame
    # (version 3, which started at the world's centre, gave 1.00 from the centre frame)
    scenes = draws(camera_pan, count=400, n=9, fps=2.0, size=64)
    ways = np.array([s.answer for s in scenes])
    for t in (0, 4, 8):
        x = np.stack([_layout(s.frames[t]) for s in scenes])
        centroids = np.stack([x[:200][ways[:200] == d].mean(axis=0) for d in range(4)])
        guess = ((x[200:, None, :] - centroids[None]) ** 2).sum(axis=-1).argmin(axis=1)
        accuracy = float((guess == ways[200:]).mean())
        assert accuracy < 0.25 + 3 * math.sqrt(0.25 * 0.75 / 200), (t, accuracy)  # within 3 SE of chance


def test_camera_pan_the_video_tells_the_way() -> None:
    # the view moves against the pan: the shift that best aligns the last frame with the
    # first (on their common part) is the way, for every pan
    for scene in draws(camera_pan, count=100, n=9, fps=2.0, size=64):
        first, last = scene.frames[0].astype(int), scene.frames[-1].astype(int)
        errors = {}
        for d, (dx, dy) in enumerate([(-1, 0), (1, 0), (0, -1), (0, 1)]):
            # the pan moved the camera by 32 px in (dx, dy): the last frame's pixel (y, x)
            # is the first frame's (y + 32 dy, x + 32 dx)
            ys, xs = slice(max(0, -32 * dy), 64 - max(0, 32 * dy)), slice(max(0, -32 * dx), 64 - max(0, 32 * dx))
            moved = first[max(0, 32 * dy) : 64 + min(0, 32 * dy), max(0, 32 * dx) : 64 + min(0, 32 * dx)]
            errors[d] = np.abs(last[ys, xs] - moved).mean()
        assert min(errors, key=errors.__getitem__) == scene.answer and errors[scene.answer] == 0


def test_flashes_count_and_order_through_a_2fps_sampler() -> None:
    for fps in (10.0, 24.0, float(Fraction(30000, 1001))):
        for scene in draws(count_events, count=40, n=int(5 * fps), fps=fps):
            lit = (scene.frames[:, 32 // 2, 32 // 2] != scene.frames[:, 0, 0]).any(axis=-1)
            spans = runs(lit)
            assert len(spans) == scene.answer + 1
            assert all(b - a >= GLIMPSE * fps - 1 for a, b in spans)
            sampled = lit[np.round(np.arange(0, len(lit) / fps, 0.5) * fps).astype(int).clip(0, len(lit) - 1)]
            assert len(runs(sampled)) == scene.answer + 1
        for scene in draws(event_order, count=40, n=int(2 * fps), fps=fps):
            centre = [colour_at(f, 16, 16) for f in scene.frames]
            shown = [c for i, c in enumerate(centre) if c >= 0 and (i == 0 or centre[i - 1] != c)]
            assert len(shown) == 2 and shown[0] == scene.answer


def test_relative_position_truth() -> None:
    for scene in draws(relative_position, count=100, n=12, fps=10.0, size=64):
        words = scene.question.split()  # Where is the <first> square relative to the <second> square?
        first, second = words[3], words[-2]

        def x_of(frame: np.ndarray, colour: str) -> float:
            return float(np.nonzero((frame == COLOURS[colour]).all(axis=-1))[1].mean())

        start = x_of(scene.frames[0], first) < x_of(scene.frames[0], second)
        end = x_of(scene.frames[-1], first) < x_of(scene.frames[-1], second)
        truth = {(True, False): 0, (False, True): 1, (True, True): 2, (False, False): 3}
        assert scene.answer == truth[(start, end)]


def test_digit_sequence_shows_the_answer_in_its_place() -> None:
    for scene in draws(digit_sequence, count=60, n=9, fps=3.0, size=64):
        assert [int(o) for o in scene.options] == sorted(int(o) for o in scene.options)
        place = ["first", "second", "third"].index(scene.question.split()[-1].rstrip("?"))
        shown = [next(d for d in range(10) if np.array_equal(scene.frames[i], _glyph(d, 64))) for i in (0, 4, 8)]
        assert len(set(shown)) == 3 and shown[place] == int(scene.options[scene.answer])
        assert set(shown) < {int(o) for o in scene.options}  # every shown digit is an option


def test_frame_rate_is_exact() -> None:
    assert frame_rate(29.97) == Fraction(30000, 1001)
    assert frame_rate(23.976) == Fraction(24000, 1001)
    assert frame_rate(24) == 24 and frame_rate(12.5) == Fraction(25, 2)


def test_spec_validation_and_defaults() -> None:
    assert default_spec_and_root()[0] == SyntheticSpec()  # conf/data/synthetic.yaml agrees
    with pytest.raises(ValueError, match="valid: motion_direction, speed"):
        SyntheticSpec(scenes=("speed", "juggling"))
    for bad in (
        {"n_image": -1},
        {"control_share": 1.0},
        {"native_fps": ()},
        {"scenes": ()},
        {"min_duration": 3.0, "max_duration": 2.0},
        {"size": 40},
    ):
        with pytest.raises(ValueError):
            SyntheticSpec(**bad)
    spec = SyntheticSpec.from_dict({"scenes": ["speed"], "native_fps": [10, 29.97]})
    assert spec.scenes == ("speed",) and spec.native_fps == (10, 29.97)
    keys = {SyntheticSpec().key(), spec.key(), SyntheticSpec(n_text=0).key()}
    assert len(keys) == 3


def test_schedule_balances_and_restricts() -> None:
    plan = schedule(SyntheticSpec(control_share=0.1), 250)
    controls = Counter(c for _, c in plan if c)
    assert controls == {"text": 13, "frame": 12}
    category = {k: c for c, kinds in BY_CATEGORY.items() for k in kinds}
    categories = Counter(category[k] for k, c in plan if c is None)
    assert set(categories.values()) == {45}
    # a restriction keeps the controls; with control_share 0 there are none
    assert {k for k, c in schedule(SyntheticSpec(scenes=("speed",)), 40) if c is None} == {"speed"}
    assert {k for k, _ in schedule(SyntheticSpec(scenes=("speed",), control_share=0), 40)} == {"speed"}


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(SMALL, tmp_path_factory.mktemp("synthetic"), progress=False)


def read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_generate_eval_rows(bench: Path) -> None:
    rows = read(bench / "eval.jsonl")
    assert len(rows) == SMALL.n_eval
    for r in rows:
        assert set(r) == EVAL_FIELDS and r["id"] == r["question_id"] and r["benchmark"] == "synthetic"
        assert (bench / r["video"]).is_file() and r["answer"] in "ABCD" and len(r["options"]) == 4
        assert SMALL.min_duration <= r["duration"] <= SMALL.max_duration + 1e-9
        assert r["fps"] in SMALL.native_fps
    assert [r["control"] for r in rows].count(None) == SMALL.n_eval - 2
    assert {r["control"] for r in rows if r["control"]} == {"text", "frame"}


def test_generate_train_rows(bench: Path) -> None:
    rows = read(bench / "train.jsonl")
    media = Counter(
        (
            "video"
            if "video" in r
            else "multi_image"
            if isinstance(r.get("image"), list)
            else "image"
            if "image" in r
            else "text"
        )
        for r in rows
    )
    assert media == {
        "video": SMALL.n_train,
        "image": SMALL.n_image,
        "multi_image": SMALL.n_multi_image,
        "text": SMALL.n_text,
    }
    for r in rows:
        human, gpt = r["conversations"]
        assert human["from"] == "human" and gpt["from"] == "gpt" and gpt["value"] in "ABCD"
        assert "Answer with the option's letter" in human["value"]
        if "video" in r:
            assert set(r) == TRAIN_FIELDS | {"video", "duration", "fps"}
            assert (bench / r["video"]).is_file() and human["value"].startswith("<video>\n")
            assert SMALL.min_duration <= r["duration"] <= SMALL.max_duration + 1e-9
        elif "image" in r:
            assert set(r) == TRAIN_FIELDS | {"image"}
            images = r["image"] if isinstance(r["image"], list) else [r["image"]]
            assert all((bench / i).is_file() for i in images)
            assert human["value"].startswith("<image>\n" * len(images))
            assert human["value"].count("<image>") == len(images) and "<video>" not in human["value"]
        else:
            assert set(r) == TRAIN_FIELDS and "<" not in human["value"].split("\n")[0]
    videos = [r for r in rows if "video" in r]
    assert sum(r["control"] is not None for r in videos) == 3  # 12 * 0.25
    first = videos[0]["conversations"][0]["value"]
    assert first == mcq_prompt(first.split("\n")[1], [line[3:] for line in first.split("\n")[2:6]])


def test_generate_is_deterministic(bench: Path, tmp_path: Path) -> None:
    again = generate(SMALL, tmp_path, progress=False)
    for name in ("train.jsonl", "eval.jsonl"):
        assert (again / name).read_text() == (bench / name).read_text()
    # an item does not depend on the counts of the others: the eval split stays
    other = generate(
        dataclasses.replace(SMALL, n_train=3, n_image=0, n_multi_image=0, n_text=0), tmp_path / "other", progress=False
    )
    assert (other / "eval.jsonl").read_text() == (bench / "eval.jsonl").read_text()


def test_ntsc_rate_reads_back(tmp_path: Path) -> None:
    spec = SyntheticSpec(
        n_train=1,
        n_eval=4,
        n_image=0,
        n_multi_image=0,
        n_text=0,
        control_share=0,
        native_fps=(29.97,),
        max_duration=3.0,
    )
    out = generate(spec, tmp_path, progress=False)
    for r in read(out / "eval.jsonl"):
        assert r["fps"] == pytest.approx(30000 / 1001, abs=1e-12)
        with open_video(out / r["video"]) as v:
            assert abs(v.fps - 30000 / 1001) < 1e-3
            assert v.num_frames == round(r["duration"] * r["fps"])
            assert v.duration == pytest.approx(r["duration"], abs=1e-3)


def test_cli(tmp_path: Path) -> None:
    assert (
        main(
            [
                "--out",
                str(tmp_path),
                "--n-train",
                "5",
                "--n-eval",
                "5",
                "--seed",
                "1",
                "--n-image",
                "1",
                "--n-multi-image",
                "1",
                "--n-text",
                "1",
                "--scenes",
                "speed",
            ]
        )
        == 0
    )
    assert (tmp_path / "DONE").is_file() and len(read(tmp_path / "train.jsonl")) == 8
    assert json.loads((tmp_path / "spec.json").read_text())["scenes"] == ["speed"]
    assert {r["kind"] for r in read(tmp_path / "eval.jsonl")} == {"speed"}  # 5 * 0.1: no control


TINY = SyntheticSpec(n_train=2, n_eval=2, n_image=0, n_multi_image=0, n_text=0, control_share=0, max_duration=2.0)


def test_a_failed_generation_leaves_no_temporary_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    written: list[Path] = []

    def fail_on_the_second(path: Path, frames: np.ndarray, fps: float) -> None:
        if written:
            raise RuntimeError("disk full")
        path.write_bytes(b"x")
        written.append(path)

    monkeypatch.setattr(synthetic, "write_mp4", fail_on_the_second)
    with pytest.raises(RuntimeError, match="disk full"):
        synthetic.ensure(TINY, tmp_path, progress=False)
    assert written and not written[0].exists()
    assert [p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")] == []


def test_the_next_start_removes_what_a_killed_generation_left(tmp_path: Path) -> None:
    def leftover(key: str) -> Path:
        (tmp_path / f".{key}.tmp-999999" / "videos").mkdir(parents=True)
        (tmp_path / f".{key}.tmp-999999" / "videos" / "train_00000.mp4").write_bytes(b"x" * 1000)
        return tmp_path / f".{key}.tmp-999999"

    own, other, busy = leftover(TINY.key()), leftover("v4-0123456789"), leftover("v4-busy")
    with open(tmp_path / ".v4-busy.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process is generating this one now
        out = synthetic.ensure(TINY, tmp_path, progress=False)
        assert (out / "DONE").is_file() and not own.exists() and not other.exists()
        assert busy.exists()  # in use: left alone


@pytest.mark.slow
def test_a_killed_cli_generation_removes_its_temporary_folder(tmp_path: Path) -> None:
    env = {**os.environ, "APOLLO_DATA_DIR": str(tmp_path), "PYTHONPATH": str(Path(__file__).parents[2])}
    cmd = [sys.executable, "-m", "src.data.synthetic", "--n-train", "2000", "--n-eval", "10"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path)
    root = tmp_path / "synthetic"
    deadline = time.monotonic() + 60
    while not list(root.glob(".*.tmp-*/videos/*.mp4")) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert list(root.glob(".*.tmp-*/videos/*.mp4")), proc.communicate(timeout=30)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 128 + signal.SIGTERM
    assert not list(root.glob(".*.tmp-*")) and not [p for p in root.iterdir() if p.is_dir()]
