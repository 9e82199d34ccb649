"""The feature cache: hits are the same bits, keys change with what features depend on,
concurrent writers never leave a partial file, the size limit evicts the least recently
used, and the switch turns it off (src/cache/)."""

from __future__ import annotations

import multiprocessing as mp
import os
import shutil
import time
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path
from typing import cast

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from PIL import Image

from src.cache.features import FeatureCache
from src.cache.store import DiskStore
from src.config.errors import ConfigError
from src.config.validate import validate
from src.data.dataset import SampleDataset, collate
from src.data.manifest import Sample, mcq_prompt
from src.data.samplers import FpsSampler
from src.models.encoders.base import VisionEncoder
from src.run.build import build_feature_cache
from tests.helpers import TINY_DATA, cfg_with, tiny_model, word_tokenizer, write_mp4

COLOURS = [(200, 30, 30), (30, 200, 30), (30, 30, 200), (200, 200, 30)]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("media")
    write_mp4(d / "v.mp4", COLOURS * 5, fps=10)  # 20 frames, 2 s
    write_mp4(d / "w.mp4", COLOURS[::-1] * 5, fps=10)
    Image.fromarray(np.full((40, 56, 3), 90, np.uint8)).save(d / "a.png")
    return d


def encoder(option: str = "siglip", seed: int = 0, *overrides: str) -> VisionEncoder:
    torch.manual_seed(seed)
    return instantiate(cfg_with(f"encoder={option}", *overrides).encoder).eval()


def items(d: Path) -> list[Sample]:
    mcq = mcq_prompt("Which colour?", ["red", "green"])
    return [
        Sample(
            "v",
            [("video", str(d / "v.mp4"))],
            [("user", mcq), ("assistant", "B")],
            "perception",
            "toy",
            options=["red", "green"],
            answer="B",
        ),
        Sample("i", [("image", str(d / "a.png"))], [("user", "<image>\nWhat?"), ("assistant", "grey")], "none", "toy"),
        Sample(
            "w",
            [("video", str(d / "w.mp4"))],
            [("user", mcq), ("assistant", "A")],
            "perception",
            "toy",
            options=["red", "green"],
            answer="A",
        ),
    ]


@pytest.fixture(scope="module")
def tok(files: Path):
    return word_tokenizer(items(files))


def dataset(
    files: Path, tok, cache: FeatureCache | None, enc: torch.nn.Module, fps: float = 2, modality: str | None = None
) -> SampleDataset:
    lookup = cache.bind(enc) if cache is not None else None
    return SampleDataset(
        items(files), FpsSampler(fps=fps), tok, train=modality is None, modality=modality, features=lookup
    )


def test_a_hit_is_the_features_bit_for_bit_and_skips_decoding(
    files: Path, tok, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache, enc = FeatureCache(tmp_path), encoder()
    ds = dataset(files, tok, cache, enc)
    first = ds[0]
    [slot] = first["cache"]
    assert not slot.hit and first["media"][0].dtype == torch.uint8
    with torch.no_grad():
        feats = enc.encode(first["media"][0])
    cache.save(slot.key, feats, slot.decode_errors)
    import src.data.video as video

    monkeypatch.setattr(video, "open_video", lambda *a, **k: pytest.fail("a hit decoded the video"))
    again = dataset(files, tok, cache, enc)[0]  # a fresh dataset: the index comes from disk
    assert again["cache"][0].hit and again["cache"][0].key == slot.key
    assert torch.equal(again["media"][0], feats) and again["media"][0].dtype == feats.dtype
    assert torch.equal(again["clip_times"][0], first["clip_times"][0])


def test_cached_features_give_the_same_tokens_as_encoding_in_any_batch(files: Path, tok, tmp_path: Path) -> None:
    """The model stores the misses' features; a later batch of other items hits them, and
    every item's tokens are the same bits as without the cache (encoded in other company)."""

    model = tiny_model(tok)
    model.eval()
    plain = SampleDataset(items(files), FpsSampler(fps=2), tok)
    with torch.no_grad():
        want = model.clip_tokens([m for k in range(3) for m in plain[k]["media"]])
    cache = FeatureCache(tmp_path)
    model.feature_cache = cache
    ds = dataset(files, tok, cache, model.encoder)
    with torch.no_grad():
        model.clip_tokens(*_flat(collate([ds[2], ds[0]])))  # misses: stored
        media, slots = _flat(collate([ds[0], ds[1], ds[2]]))
        assert [s.hit for s in slots] == [True, False, True]
        got = model.clip_tokens(media, slots)
    assert all(torch.equal(a, b) for a, b in zip(got, want))
    assert cache.counts["test"] == {"hits": 2, "misses": 3} and cache.writes == 3


def _flat(batch) -> tuple[list[torch.Tensor], list]:
    return [m for ms in batch.media for m in ms], [s for ss in batch.cache for s in ss]


def test_the_key_changes_with_weights_frames_preprocessing_and_content(files: Path, tok, tmp_path: Path) -> None:
    cache = FeatureCache(tmp_path)
    base = dataset(files, tok, cache, encoder())[0]["cache"][0].key

    def key(enc: torch.nn.Module, **kw) -> str:
        return dataset(files, tok, cache, enc, **kw)[0]["cache"][0].key

    assert key(encoder()) == base  # same option, same seed: the same weights
    assert key(encoder(seed=1)) != base
    nudged = encoder()
    with torch.no_grad():
        next(nudged.parameters()).view(-1)[0] += 1e-3
    assert key(nudged) != base
    assert key(encoder("dinov2")) != base
    assert key(encoder("siglip", 0, "encoder.image_mean=[0.4,0.5,0.5]")) != base  # preprocessing
    assert key(encoder("siglip", 0, "encoder.select_layer=-1")) != base
    assert key(encoder(), fps=1) != base  # other frames
    assert key(encoder(), modality="frame") != base
    other = dataset(files, tok, cache, encoder())[2]["cache"][0].key  # other content
    assert other != base
    shutil.copy(files / "v.mp4", tmp_path / "copy.mp4")  # the same content elsewhere: shared
    lookup = cache.bind(encoder())
    copy = SampleDataset(
        [
            Sample(
                "c",
                [("video", str(tmp_path / "copy.mp4"))],
                items(files)[0].turns,
                "perception",
                "toy",
                options=["red", "green"],
                answer="B",
            )
        ],
        FpsSampler(fps=2),
        tok,
        features=lookup,
    )
    assert copy[0]["cache"][0].key == base


def _writer(root: str, key: str, size: int, rounds: int) -> None:
    store = DiskStore(root, None)
    for _ in range(rounds):
        store.write(store.path("features", key), bytes([size % 251]) * size)


def _reader(root: str, key: str, sizes: list[int], seconds: float, bad: Synchronized[int]) -> None:
    store = DiskStore(root, None)
    end = time.time() + seconds
    while time.time() < end:
        data = store.read(store.path("features", key))
        if data is not None and not (len(data) in sizes and data == bytes([len(data) % 251]) * len(data)):
            bad.value += 1


def test_concurrent_writers_never_leave_a_partial_file(tmp_path: Path) -> None:
    ctx = mp.get_context("fork")
    sizes = [300_000 + 7 * i for i in range(4)]  # each writer its own bytes, to tell them apart
    bad = ctx.Value("i", 0)
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), "ab12", s, 40)) for s in sizes]
    procs.append(ctx.Process(target=_reader, args=(str(tmp_path), "ab12", sizes, 1.5, bad)))
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    assert bad.value == 0
    left = list((tmp_path / "features").rglob("*"))
    assert [p.name for p in left if p.is_file()] == ["ab12"]  # no temporary file left behind


def test_the_size_limit_evicts_the_least_recently_used(tmp_path: Path) -> None:
    store = DiskStore(tmp_path, max_bytes=10_000)
    paths = [store.path("features", f"k{i:02d}") for i in range(8)]
    for i, p in enumerate(paths):
        store.write(p, b"x" * 1000)
        os.utime(p, (1000 + i, 1000 + i))  # written in order, a second apart
    assert store.read(paths[0]) is not None  # used again: now the most recent
    for i in range(8, 12):
        store.write(store.path("features", f"k{i:02d}"), b"x" * 1000)
    assert store.size() <= 10_000
    assert paths[0].exists() and not paths[1].exists() and not paths[2].exists()
    assert store.evicted >= 2 and store.read(paths[1]) is None  # evicted: a miss, not an error


def test_the_switch_turns_it_off_and_bad_values_fail_at_start_up(tmp_path: Path) -> None:
    on = cfg_with(f"cache.dir={tmp_path}")
    assert isinstance(build_feature_cache(on), FeatureCache)
    assert build_feature_cache(cfg_with("cache.features=false")) is None
    for bad, says in (
        ("cache.features=maybe", "cache.features='maybe' is invalid; valid: true or false"),
        ("cache.max_gb=-1", "cache.max_gb=-1 is invalid; valid: a number of GB > 0"),
        ("cache.dir=''", "cache.dir='' is invalid; valid: a directory path"),
    ):
        with pytest.raises(ConfigError, match=f"^{says}".replace("[", r"\[")):
            validate(cfg_with(bad))


def test_only_a_frozen_encoder_is_cached(files: Path, tok, tmp_path: Path) -> None:
    from src.data.datamodule import VideoQADataModule

    enc, cache = encoder(), FeatureCache(tmp_path)
    dm = VideoQADataModule("toy", str(tmp_path))
    dm.attach(FpsSampler(fps=2), tok, encoder=enc, feature_cache=cache)
    enc.requires_grad_(False)
    assert dm._features(train=True) is not None
    enc.requires_grad_(True)  # a stage that trains the vision encoder: no cache in training
    assert dm._features(train=True) is None
    assert dm._features(train=False) is not None  # evaluation: the weights as they are now
    dm.attach(FpsSampler(fps=2), tok, encoder=enc, feature_cache=None)
    assert dm._features(train=False) is None  # off: nothing looked up


def test_a_stage_that_trains_the_encoder_changes_its_identity(files: Path, tok, tmp_path: Path) -> None:
    """Schedules like c_vc_cl freeze the encoder again after training it: the later stage
    must not find the features of the weights before. A fused AdamW step leaves the weights'
    version counters as they were, so the training loader itself forgets the identity."""
    from src.data.datamodule import VideoQADataModule

    enc, cache = encoder(), FeatureCache(tmp_path)
    dm = VideoQADataModule("toy", str(tmp_path))
    dm.attach(FpsSampler(fps=2), tok, encoder=enc, feature_cache=cache)
    enc.requires_grad_(False)
    lookup = dm._features(train=True)
    assert lookup is not None
    before = lookup.identity
    enc.requires_grad_(True)
    assert dm._features(train=True) is None  # the stage that trains it
    versions = [p._version for p in enc.parameters()]
    opt = torch.optim.AdamW(enc.parameters(), lr=1e-2, fused=True)
    cast(torch.Tensor, sum(p.sum() for p in enc.parameters())).backward()
    opt.step()
    assert [p._version for p in enc.parameters()] == versions  # what the fix does not rely on
    enc.requires_grad_(False)
    lookup = dm._features(train=True)
    assert lookup is not None
    after = lookup.identity
    assert after != before
    assert after == FeatureCache(tmp_path / "other").bind(enc).identity  # the weights as they are


def test_runs_of_a_sweep_over_llm_or_connector_share_the_encoder(data_dir: Path, tmp_path: Path) -> None:
    """Built as a run builds it, at one seed, the encoder (and so every key) is the same
    whatever the LLM or the resampler: the demo sweep's second LLM hits."""
    import lightning as L

    from src.run.build import build_parts

    def identity(*overrides: str) -> str:
        cfg = cfg_with(*TINY_DATA, f"paths.data_dir={data_dir}", f"cache.dir={tmp_path}", *overrides)
        L.seed_everything(cfg.seed, verbose=False)
        parts = build_parts(cfg)
        cache = parts.model.feature_cache
        assert cache is not None
        return cache.bind(parts.model.encoder).identity

    base = identity()
    assert identity("llm=qwen4b") == base and identity("resampler=avgpool") == base
    assert identity("seed=1") != base and identity("encoder=dinov2") != base


def test_a_cache_that_cannot_be_written_is_a_warning_not_a_failure(
    files: Path, tok, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocked = tmp_path / "not_a_folder"
    blocked.write_text("a file where the cache folder should be")
    cache, enc = FeatureCache(blocked), encoder()
    item = dataset(files, tok, cache, enc)[0]  # indexed in memory, stored nowhere: a miss
    assert "skip" not in item and not item["cache"][0].hit
    with torch.no_grad():
        cache.save(item["cache"][0].key, enc.encode(item["media"][0]), 0)
    assert cache.writes == 0
    assert sum("cannot be written" in r.message for r in caplog.records) == 1  # said once
