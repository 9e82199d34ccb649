"""The loader at real size: `num_workers: auto` by the launcher's CPUs, pinned batches on a GPU,
frames resized to the encoder's input in the workers (src/data/workers.py, src/data/frames.py)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from PIL import Image

from src.batch import Batch
from src.cache.features import FeatureCache
from src.data import workers
from src.data.datamodule import VideoQADataModule
from src.data.dataset import SampleDataset, collate
from src.data.frames import loader_size, resize_frames
from src.data.manifest import Sample, mcq_prompt
from src.data.samplers import FpsSampler
from src.models.encoders.base import VisionEncoder
from src.models.encoders.fused import FusedEncoder
from tests.helpers import VIDEOS, cfg_with, word_tokenizer

pytestmark = pytest.mark.usefixtures("one_thread")
REAL = VIDEOS / "moviepy__chaplin.mp4"  # 640x360
LAUNCH_VARS = ("SLURM_CPUS_PER_TASK", "SLURM_NTASKS_PER_NODE", "LOCAL_WORLD_SIZE")


def encoder(option: str) -> VisionEncoder:
    torch.manual_seed(0)
    return instantiate(cfg_with(f"encoder={option}").encoder).eval()


# -- workers ----------------------------------------------------------------------------------


@pytest.fixture
def no_launcher(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """An environment without SLURM or torchrun variables; set those a test wants."""
    for var in LAUNCH_VARS:
        monkeypatch.delenv(var, raising=False)
    return monkeypatch


@pytest.mark.parametrize(
    ("env", "cpus", "devices", "expected"),
    [
        ({"SLURM_CPUS_PER_TASK": "8", "SLURM_NTASKS_PER_NODE": "1"}, 64, 1, 7),  # slurm_1gpu: 8 less the rank
        ({"SLURM_CPUS_PER_TASK": "8", "SLURM_NTASKS_PER_NODE": "8"}, 64, 8, 7),  # slurm_8gpu: a task per rank
        ({"SLURM_CPUS_PER_TASK": "8", "SLURM_NTASKS_PER_NODE": "8(x2)"}, 64, 8, 7),  # two nodes
        ({"SLURM_CPUS_PER_TASK": "16", "SLURM_NTASKS_PER_NODE": "1"}, 64, 4, 3),  # 4 ranks share one task
        ({"SLURM_CPUS_PER_TASK": "1"}, 64, 1, 0),  # one CPU: decode in the rank itself
        ({"SLURM_CPUS_PER_TASK": "12"}, 2, 1, 11),  # SLURM's count, not the affinity seen here
        ({}, 64, 1, 4),  # a workstation: capped at LOCAL_MAX
        ({}, 2, 1, 1),  # this 2-core machine
        ({}, 1, 1, 0),
        ({"LOCAL_WORLD_SIZE": "4"}, 16, 1, 3),  # torchrun: 4 ranks on 16 CPUs
        ({}, 16, 8, 1),  # Lightning's 8 devices on 16 CPUs
        ({"SLURM_NTASKS_PER_NODE": "4"}, 8, 1, 1),  # SLURM without --cpus-per-task: the node's CPUs
    ],
)
def test_auto_workers_follow_the_launchers_cpus(env: dict, cpus: int, devices: int, expected: int) -> None:
    assert workers.auto_workers(env, cpus=cpus, devices=devices) == expected


def test_an_integer_wins_and_auto_reads_the_environment(no_launcher: pytest.MonkeyPatch) -> None:
    no_launcher.setenv("SLURM_CPUS_PER_TASK", "8")
    assert workers.resolve_workers(2) == 2 and workers.resolve_workers(0) == 0
    assert workers.resolve_workers("auto") == workers.resolve_workers(None) == 7
    no_launcher.delenv("SLURM_CPUS_PER_TASK")
    no_launcher.setattr(workers, "available_cpus", lambda: 6)
    assert workers.resolve_workers("auto") == 4 and workers.resolve_workers("auto", devices=2) == 2


@pytest.mark.parametrize("bad", [-1, "many", 1.5, True])
def test_a_bad_worker_count_is_one_line(bad: Any) -> None:
    with pytest.raises(ValueError, match=r"^num_workers=.* is invalid; valid: an integer >= 0, auto or null$"):
        VideoQADataModule("toy", ".", num_workers=bad)


def test_a_bad_pin_memory_is_one_line() -> None:
    with pytest.raises(ValueError, match=r"^pin_memory='yes' is invalid; valid: auto, true or false$"):
        VideoQADataModule("toy", ".", pin_memory="yes")


# -- a datamodule on two real-size samples ----------------------------------------------------


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A manifest of two multiple-choice items on the real 640x360 video."""
    d = tmp_path_factory.mktemp("loader")
    row = f'"video": "{REAL}", "question": "What is shown?", "options": ["a man", "a dog"], "category": "p"'
    rows = [f'{{"id": "{i}", {row}, "answer": "{a}"}}' for i, a in (("v", "A"), ("w", "B"))]
    (d / "m.jsonl").write_text("\n".join(rows) + "\n")
    return d


def datamodule(media: Path, **kw: Any) -> VideoQADataModule:
    dm = VideoQADataModule("toy", str(media), train=str(media / "m.jsonl"), eval=str(media / "m.jsonl"), **kw)
    dm.prepare_data()
    return dm


def test_auto_workers_reach_the_loader_and_the_report(media: Path, no_launcher: pytest.MonkeyPatch) -> None:
    no_launcher.setenv("SLURM_CPUS_PER_TASK", "3")
    dm = datamodule(media, num_workers="auto", eval_batch_size=2)
    dm.attach(FpsSampler(fps=1), word_tokenizer(dm.eval_samples))
    assert dm.report()["loader"]["num_workers"] == 2  # before any loader: what one would use
    (loader,) = dm.test_dataloader()
    assert loader.num_workers == 2 and loader.persistent_workers
    assert dm.report()["loader"] == {
        "num_workers": 2,
        "num_workers_setting": "auto",
        "pin_memory": False,
        "frame_size": None,
    }


def trainer_on(device: str, devices: int = 1) -> Any:
    """What the datamodule reads of a trainer: its devices on the node and its root device."""
    return SimpleNamespace(num_devices=devices, strategy=SimpleNamespace(root_device=torch.device(device)))


@pytest.mark.parametrize(("device", "pinned"), [("cpu", False), ("cuda", True), ("mps", False)])
def test_batches_are_pinned_on_a_gpu_only(media: Path, device: str, pinned: bool) -> None:
    dm = datamodule(media)
    dm.attach(FpsSampler(fps=1), word_tokenizer(dm.eval_samples))
    dm.trainer = trainer_on(device)
    (loader,) = dm.test_dataloader()
    assert loader.pin_memory is pinned and dm.report()["loader"]["pin_memory"] is pinned
    dm.pin_memory = False  # a setting wins over the device
    assert dm.test_dataloader()[0].pin_memory is False


def test_a_real_cpu_trainer_does_not_pin(media: Path) -> None:
    import lightning as L

    dm = datamodule(media)
    dm.attach(FpsSampler(fps=1), word_tokenizer(dm.eval_samples))
    dm.trainer = L.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False)
    assert dm.test_dataloader()[0].pin_memory is False


def test_pinning_a_batch_pins_every_tensor(media: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """DataLoader(pin_memory=True) passes a dataclass through as it is unless it has a
    pin_memory(): Batch has one, and it reaches every tensor (pinning itself needs CUDA)."""
    pinned: list[torch.Tensor] = []

    def fake_pin(self: torch.Tensor, *args: Any) -> torch.Tensor:
        pinned.append(self)
        return self.clone()

    dm = datamodule(media)
    dm.attach(FpsSampler(fps=1), word_tokenizer(dm.eval_samples))
    batch = next(iter(dm.test_dataloader()[0]))
    monkeypatch.setattr(torch.Tensor, "pin_memory", fake_pin)
    from torch.utils.data._utils.pin_memory import pin_memory  # what the loader's pinning thread calls

    out = pin_memory(batch)
    assert isinstance(out, Batch) and out.ids == batch.ids
    tensors = [
        *(m for ms in batch.media for m in ms),
        *batch.input_ids,
        *batch.labels,
        batch.answer_index,
        batch.num_options,
        *(t for ts in batch.clip_times for t in ts if t is not None),
    ]
    assert len(pinned) == len(tensors) and all(p is t for p, t in zip(pinned, tensors))
    assert all(torch.equal(a, b) for a, b in zip(out.media[0], batch.media[0]))


# -- frames resized in the workers ------------------------------------------------------------


def test_worker_resize_is_the_encoders_resize_within_one_level() -> None:
    """The uint8 kernel against the encoder's float one, on 720p noise (the worst case: every
    pixel an edge): measured at most 0.973/255 and on average 0.280/255 apart."""
    frames = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (2, 1, 720, 1280, 3), dtype=np.uint8))
    enc = encoder("siglip")
    full, resized = resize_frames(frames, enc.input_size), None
    assert full.shape == (2, 1, enc.input_size, enc.input_size, 3) and full.dtype == torch.uint8
    std = torch.tensor(enc.image_std).view(1, 1, 3, 1, 1)
    resized = enc.preprocess(full) * std  # no resize there now: sizes match
    ref = enc.preprocess(frames) * std
    diff = (resized - ref).abs() * 255  # in uint8 levels
    assert diff.max() < 0.98 and 0.25 < diff.mean() < 0.3, (diff.max(), diff.mean())
    assert resize_frames(full, enc.input_size) is full  # already at size: as it is


def test_features_of_worker_resized_frames_are_those_of_full_frames_up_to_rounding() -> None:
    """The tiny SigLIP's (random weights) features of four real 640x360 frames, resized in the
    worker or by the encoder: measured at most 0.076 and on average 0.0063 apart, features
    being 1.0 on average in size (0.6%): what the uint8 rounding of the input makes of it."""
    from src.data.video import open_video

    with open_video(REAL) as video:
        frames = torch.from_numpy(video.get([0, 40, 80, 120])).unsqueeze(1)  # 4 clips of 1 frame
    enc = encoder("siglip")
    with torch.no_grad():
        ref = enc.encode(frames)
        got = enc.encode(resize_frames(frames, enc.input_size))
    diff = (got - ref).abs()
    assert ref.abs().mean() > 0.5 and diff.max() < 0.1 and diff.mean() < 0.01 * ref.abs().mean(), (
        diff.max(),
        diff.mean(),
    )


@pytest.mark.parametrize("option", ["siglip", "dinov2", "videomae", "internvideo2", "languagebind_video", "vjepa"])
def test_each_single_encoder_gets_its_input_size(option: str) -> None:
    enc = encoder(option)
    assert loader_size(enc) == enc.input_size


def test_a_pair_of_one_size_is_resized_and_of_two_sizes_sent_whole() -> None:
    pair = encoder("internvideo2+siglip")
    assert isinstance(pair, FusedEncoder)
    sizes = {m.input_size for m in pair._members().values()}
    assert len(sizes) == 2 and loader_size(pair) is None  # each member resizes the full frames once
    same = encoder("internvideo2+languagebind_video")
    assert isinstance(same, FusedEncoder)
    (size,) = {m.input_size for m in same._members().values()}
    assert loader_size(same) == size


def test_an_encoder_with_its_own_preprocessing_gets_whole_frames() -> None:
    class Cropping(VisionEncoder):
        input_size = 32

        def preprocess(self, frames: torch.Tensor) -> torch.Tensor:  # e.g. a centre crop first
            return frames

    assert loader_size(Cropping()) is None and loader_size(None) is None


def real_items() -> list[Sample]:
    mcq = mcq_prompt("What is shown?", ["a man", "a dog"])
    turns = [("user", mcq), ("assistant", "A")]
    return [Sample("v", [("video", str(REAL))], turns, "p", "toy", options=["a man", "a dog"], answer="A")]


@pytest.mark.parametrize("kind", ["video", "frame", "image"])
def test_the_dataset_sends_clips_at_the_frame_size(kind: str, tmp_path: Path) -> None:
    items = real_items()
    if kind == "image":
        rng = np.random.default_rng(0)
        Image.fromarray(rng.integers(0, 256, (300, 500, 3), dtype=np.uint8)).save(tmp_path / "a.png")
        items = [
            Sample(
                "i", [("image", str(tmp_path / "a.png"))], [("user", "<image>\nWhat?"), ("assistant", "x")], "p", "toy"
            )
        ]
    modality = "frame" if kind == "frame" else None
    kw: dict[str, Any] = {"train": modality is None, "modality": modality}
    ds = SampleDataset(items, FpsSampler(fps=1, frames_per_clip=4), word_tokenizer(items), frame_size=48, **kw)
    whole = SampleDataset(items, FpsSampler(fps=1, frames_per_clip=4), word_tokenizer(items), **kw)
    (clips,), (full,) = ds[0]["media"], whole[0]["media"]
    assert full.shape[-3:] == ((300, 500, 3) if kind == "image" else (360, 640, 3))
    assert clips.shape == (*full.shape[:2], 48, 48, 3) and clips.shape[1] == 4
    assert clips.dtype == torch.uint8 and clips.is_contiguous()
    assert torch.equal(clips, resize_frames(full, 48))  # a repeated frame resized once: the same


def test_the_datamodule_resizes_to_the_attached_encoder(media: Path) -> None:
    enc = encoder("siglip")
    dm = datamodule(media, eval_batch_size=2, resize_in_workers=True)
    dm.attach(FpsSampler(fps=1), word_tokenizer(dm.eval_samples), encoder=enc)
    assert dm.frame_size == enc.input_size and dm.report()["loader"]["frame_size"] == enc.input_size
    batch = next(iter(dm.test_dataloader()[0]))
    assert {tuple(m.shape[-3:]) for ms in batch.media for m in ms} == {(enc.input_size, enc.input_size, 3)}
    off = datamodule(media, resize_in_workers=False)
    off.attach(FpsSampler(fps=1), word_tokenizer(off.eval_samples), encoder=enc)
    assert off.frame_size is None
    old = datamodule(media)  # a config saved before the key: whole frames, as it was trained
    old.attach(FpsSampler(fps=1), word_tokenizer(old.eval_samples), encoder=enc)
    assert old.frame_size is None


def test_the_cache_keys_worker_resized_features_apart(tmp_path: Path) -> None:
    """Features of worker-resized frames are not the bits of the encoder's own resize: a
    run that resizes in the workers must not find the entries of one that does not."""
    items = real_items()
    enc, cache = encoder("siglip"), FeatureCache(tmp_path)
    keys = []
    for size in (None, enc.input_size):
        ds = SampleDataset(items, FpsSampler(fps=1), word_tokenizer(items), features=cache.bind(enc), frame_size=size)
        batch = collate([ds[0]])
        (slot,) = batch.cache[0]
        assert slot is not None and not slot.hit
        keys.append(slot.key)
        cache.save(slot.key, enc.encode(batch.media[0][0]).detach(), 0)
    assert keys[0] != keys[1]
    for size, key in zip((None, enc.input_size), keys):  # each finds its own entry again
        ds = SampleDataset(items, FpsSampler(fps=1), word_tokenizer(items), features=cache.bind(enc), frame_size=size)
        (slot,) = ds[0]["cache"]
        assert slot.hit and slot.key == key
