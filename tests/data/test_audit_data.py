"""The synthetic benchmark's training split for the modality audit: its own control share,
options in an order of their own, the eval split and the cached default untouched."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from src.data.manifest import LETTERS
from src.data.scenes import CONTROLS, VIDEO_SCENES
from src.data.synthetic import GENERATOR_VERSION, SyntheticSpec, generate, item_rng, schedule, shuffle_options

SMALL = SyntheticSpec(
    n_train=20, n_eval=10, n_image=2, n_multi_image=2, n_text=2, control_share=0.2, max_duration=3.0, native_fps=(10,)
)
AUDIT = dataclasses.replace(SMALL, train_control_share=0.5, shuffle_train_options=True)


def test_the_training_split_has_its_own_control_share() -> None:
    spec = SyntheticSpec(control_share=0.1, train_control_share=0.3)
    train, eval_ = schedule(spec, 1000, "train"), schedule(spec, 250)
    assert Counter(c for _, c in train if c) == {"text": 150, "frame": 150}
    assert eval_ == schedule(SyntheticSpec(control_share=0.1), 250)  # eval as it was
    assert schedule(SyntheticSpec(control_share=0.1), 40, "train") == schedule(SyntheticSpec(), 40)
    with pytest.raises(ValueError, match="train_control_share must be null or in"):
        SyntheticSpec(train_control_share=1.0)


def test_the_cache_key_of_a_spec_without_the_new_fields_is_unchanged() -> None:
    # the key hashes the fields at their defaults as the spec had them before they existed,
    # so benchmarks already generated stay where runs look for them
    old = {
        k: v
        for k, v in dataclasses.asdict(SyntheticSpec()).items()
        if k not in ("train_control_share", "shuffle_train_options")
    }
    import hashlib

    blob = json.dumps({"v": GENERATOR_VERSION, **old}, sort_keys=True)
    assert SyntheticSpec().key() == f"v{GENERATOR_VERSION}-{hashlib.sha1(blob.encode()).hexdigest()[:10]}"
    keys = {
        SyntheticSpec().key(),
        SyntheticSpec(train_control_share=0.3).key(),
        SyntheticSpec(shuffle_train_options=True).key(),
    }
    assert len(keys) == 3


def test_shuffled_options_keep_the_answer_and_vary_the_order() -> None:
    spec = SyntheticSpec(shuffle_train_options=True)
    orders: set[tuple[str, ...]] = set()
    letters: Counter[int] = Counter()
    for i in range(120):
        scene = VIDEO_SCENES["last_card"](item_rng(spec, "train", i), 30, 10.0, 64)
        mixed = shuffle_options(spec, "train", i, scene)
        assert sorted(mixed.options) == sorted(scene.options)
        assert mixed.options[mixed.answer] == scene.options[scene.answer]
        assert mixed.question == scene.question and mixed.frames is scene.frames
        assert shuffle_options(spec, "train", i, scene) == mixed  # its own generator: the same again
        orders.add(tuple(mixed.options))
        letters[mixed.answer] += 1
    assert len(orders) > 12 and min(letters.values()) > 15  # many orders, every letter
    off = SyntheticSpec()
    assert shuffle_options(off, "train", 0, scene) is scene


@pytest.fixture(scope="module")
def benchmarks(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("audit_data")
    return generate(SMALL, root / "plain", progress=False), generate(AUDIT, root / "audit", progress=False)


def rows(folder: Path, split: str) -> list[dict]:
    return [json.loads(line) for line in (folder / f"{split}.jsonl").read_text().splitlines()]


def test_the_audit_benchmark_trains_on_more_controls_in_mixed_orders(benchmarks) -> None:
    plain, audit = benchmarks
    # eval: the same questions, options, answers and videos
    assert rows(plain, "eval") == rows(audit, "eval")
    assert all((plain / r["video"]).read_bytes() == (audit / r["video"]).read_bytes() for r in rows(audit, "eval"))
    assert Counter(r["control"] for r in rows(plain, "train") if r["control"]) == {"text": 2, "frame": 2}
    assert Counter(r["control"] for r in rows(audit, "train") if r["control"]) == {"text": 5, "frame": 5}
    known = {**CONTROLS["text"], **CONTROLS["frame"]}
    moved = 0
    for r in rows(audit, "train"):
        prompt, answer = r["conversations"][0]["value"], r["conversations"][1]["value"]
        lines = [ln for ln in prompt.splitlines() if len(ln) > 2 and ln[0] in LETTERS and ln[1] == "."]
        options = [ln[3:] for ln in lines]
        assert [ln[0] for ln in lines] == list(LETTERS[: len(options)])
        if r["control"] == "text":  # the stated answer is the option at the answer's letter
            assert options[LETTERS.index(answer)] in prompt.splitlines()[1]
            assert r["kind"] in known
        fixed = VIDEO_SCENES.get(r["kind"]) or known.get(r["kind"])
        if fixed is not None and r["kind"] not in ("digit_sequence",):
            canonical = fixed(np.random.default_rng(0), 30, 10.0, 64).options
            moved += options != canonical
    assert moved >= 10  # most video questions list their options out of the eval's order
