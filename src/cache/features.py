"""The feature cache: a frozen vision encoder's features of a media item, computed once.

A sweep trains many runs on the same videos with the same frozen encoder (the paper's
stage 1 keeps it frozen; every evaluation too), and epoch after epoch a run shows the
encoder the same frames again. The features of a media item are a pure function of

- the file's content (a SHA-256 of its bytes; a copy elsewhere shares entries),
- which frames of it make which clips (the sampler's plan, or the centre frame, or an
  image repeated to fill a clip), and the size the loader resized them to (src/data/frames.py:
  frames resized in the workers, rounded to uint8, are not the bits the encoder's own resize
  sees, so their features are other entries),
- the encoder: its class, settings, preprocessing, architecture config and a digest of
  every weight and buffer, its dtype and device kind (and CPU thread count: the last bits
  of a float sum can depend on how work is split),
- the code that decodes, assembles and encodes frames (a digest of those source files)
  and the versions of the libraries under it,

and the key of an entry is a digest of all of these. So two runs share entries exactly
when their encoders are the same: a tiny encoder's random weights depend on the seed and
the option (not on the LLM or the connector, built after it), so the runs of a sweep over
`llm=` or `resampler=` at one seed hit, and runs at another seed or with a trained encoder
do not. An entry is the features (C, t, h, w, D) as the encoder returned them, bit for bit
(safetensors), and the count of frames that failed to decode, so the run record's counts
are the same on a hit.

A hit skips decoding too: the video's frame count, rate and start time (what the sampler
needs) are kept in a small index entry keyed by the file's path, size and modification
time, beside the content digest. Layout under `root`: `media/` (index) and `features/`.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from src.cache.store import DiskStore
from src.config.constraints import Constraints, Rule, boolean, nullable, positive_number

log = logging.getLogger(__name__)

CONSTRAINTS = Constraints(  # conf/train.yaml's `cache`
    Rule("features", boolean, "true or false"),
    Rule("dir", lambda v: isinstance(v, str) and v.strip() != "", "a directory path"),
    Rule("max_gb", nullable(positive_number), "a number of GB > 0, or null (no limit)"),
)
FORMAT = 1  # bump when what an entry holds changes in a way the code digest cannot see
SRC = Path(__file__).resolve().parents[1]
# the code between a file and its features: decoding, frames into clips, preprocessing, encoders
CODE = ("data/video.py", "data/dataset.py", "data/frames.py", "models/encoders/*.py", "cache/features.py")
PACKAGES = ("torch", "transformers", "decord", "av", "pillow", "numpy", "safetensors")


class CacheSlot(NamedTuple):
    """A media item's place in the cache: its key, whether the batch holds its stored
    features (a hit) instead of frames, and the frames that failed to decode in it."""

    key: str
    hit: bool
    decode_errors: int


@functools.lru_cache(maxsize=1)
def code_digest() -> str:
    """Digest of the source files and library versions that decide what an entry holds."""
    h = hashlib.sha256(f"format={FORMAT}".encode())
    for pattern in CODE:
        for path in sorted(SRC.glob(pattern)):
            h.update(path.relative_to(SRC).as_posix().encode() + b"\0" + path.read_bytes())
    for pkg in PACKAGES:
        try:
            version = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            version = "-"
        h.update(f"{pkg}={version}".encode())
    return h.hexdigest()


def weights_digest(module: torch.nn.Module) -> str:
    """SHA-256 over every weight and buffer of `module`: name, dtype, shape and bytes.

    A weight sharded by trainer=fsdp (a DTensor) is gathered whole first: every rank calls
    this at the same points (binding a loader), in the same order."""
    from torch.distributed.tensor import DTensor

    h = hashlib.sha256()
    for name, tensor in module.state_dict().items():
        full = tensor.full_tensor() if isinstance(tensor, DTensor) else tensor
        t = full.detach().to("cpu").contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _plain(value: Any) -> bool:
    if isinstance(value, (list, tuple)):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    return value is None or isinstance(value, (bool, int, float, str))


def encoder_identity(encoder: torch.nn.Module) -> dict[str, Any]:
    """Everything about the encoder that its features depend on, weights as a digest."""
    from src.models.encoders.base import VisionEncoder

    param = next(encoder.parameters())
    settings, configs, seen = {}, {}, set()
    for name, sub in encoder.named_modules():
        if isinstance(sub, VisionEncoder):  # preprocessing, select_layer, prefix tokens, ...
            settings[name] = {k: v for k, v in vars(sub).items() if not k.startswith("_") and _plain(v)}
        config = getattr(sub, "config", None)  # a transformers model's (one per model, shared)
        if config is not None and hasattr(config, "to_json_string") and id(config) not in seen:
            seen.add(id(config))
            configs[name] = [config.to_json_string(use_diff=False), str(getattr(config, "_attn_implementation", None))]
    device = param.device.type
    if device == "cuda":
        device += ":" + torch.cuda.get_device_name(param.device)
    return {
        "class": f"{type(encoder).__module__}.{type(encoder).__qualname__}",
        "structure": repr(encoder),
        "settings": settings,
        "configs": configs,
        "weights": weights_digest(encoder),
        "dtype": str(param.dtype),
        "device": device,
        "threads": torch.get_num_threads() if device == "cpu" else None,
        "code": code_digest(),
    }


class FeatureCache:
    """The cache folder: media index entries and feature entries.

    Picklable: a DataLoader worker gets a copy and reads through it; the main process
    writes the features it computes and counts hits and misses (`stats`).
    """

    def __init__(self, root: str | Path, max_gb: float | None = None) -> None:
        self.root = Path(root)
        self.store = DiskStore(self.root, None if max_gb is None else int(max_gb * 1e9))
        self.counts: dict[str, dict[str, int]] = {}  # split -> hits, misses
        self.writes = 0
        self._info: dict[str, dict[str, Any]] = {}  # this process's index lookups
        self._identity: tuple[str, str, str] | None = None  # (digest, device, dtype) last bound
        self._versions: tuple | None = None  # the weights' versions when last bound
        self._warned = False
        self._write_failed = False

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "counts": {}, "writes": 0, "_versions": None}

    # -- the encoder -------------------------------------------------------------------------

    def bind(self, encoder: torch.nn.Module) -> FeatureLookup:
        """What a dataset needs to look features of `encoder` up: this cache and the
        encoder's identity (hashed again only when a weight has changed since)."""
        params = list(encoder.parameters())
        versions = tuple((p.data_ptr(), p._version, p.device.type, p.dtype) for p in params)
        if versions != self._versions or self._identity is None:
            ident = encoder_identity(encoder)
            digest = hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()
            self._identity = (digest, params[0].device.type, str(params[0].dtype))
            self._versions = versions
        return FeatureLookup(self, self._identity[0])

    def forget_encoder(self) -> None:
        """The encoder is about to train: its identity is hashed again at the next `bind`.
        (Its weights' version counters cannot tell: a fused optimizer step leaves them.)"""
        self._identity = self._versions = None

    def writable(self, encoder: torch.nn.Module) -> bool:
        """The encoder is on the device and in the dtype it was bound with: its features
        may be stored under the keys the loader handed out."""
        p = next(encoder.parameters())
        ok = self._identity is not None and self._identity[1:] == (p.device.type, str(p.dtype))
        if not ok and not self._warned:
            self._warned = True
            log.warning(
                "feature cache: the encoder is on %s in %s, not as its keys were made "
                "(%s); its features are not stored",
                p.device.type,
                p.dtype,
                self._identity,
            )
        return ok

    # -- the media index ---------------------------------------------------------------------

    def _index_key(self, path: str | Path) -> str:
        real = os.path.realpath(path)
        st = os.stat(real)
        return hashlib.sha256(f"{code_digest()}|{real}|{st.st_size}|{st.st_mtime_ns}|{st.st_ino}".encode()).hexdigest()

    def media_info(self, path: str | Path) -> dict[str, Any] | None:
        """The file's content digest and what was probed of it, or None when not indexed yet
        (or the file cannot be stat-ed: the reader then says why)."""
        try:
            key = self._index_key(path)
        except OSError:
            return None
        if key in self._info:
            return self._info[key]
        data = self.store.read(self.store.path("media", key, ".json"))
        if data is None:
            return None
        info = json.loads(data)
        self._info[key] = info
        return info

    def remember(self, path: str | Path, **probe: Any) -> dict[str, Any]:
        """Index the file: its content digest and `probe` (a video's frame count, fps, start)."""
        key = self._index_key(path)
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        info = {"path": os.path.realpath(path), "digest": h.hexdigest(), **probe}
        self._write(self.store.path("media", key, ".json"), json.dumps(info).encode())
        self._info[key] = info
        return info

    def _write(self, path: Path, data: bytes) -> bool:
        """Store an entry; a cache that cannot be written (no space, no permission) is a
        warning, once, and the run goes on computing what it would have found."""
        try:
            self.store.write(path, data)
            return True
        except OSError as e:
            if not self._write_failed:
                log.warning("feature cache %s cannot be written (%s); going on without storing", self.root, e)
            self._write_failed = True
            return False

    # -- features ----------------------------------------------------------------------------

    @staticmethod
    def feature_key(identity: str, digest: str, kind: str, indices: np.ndarray, frame_size: int | None = None) -> str:
        """The entry of these frames (`indices`, (clips, frames_per_clip)) of one file, of
        `kind` (video, frame, image), resized by the loader to `frame_size` (None: sent
        whole, the encoder resizes them), under the encoder `identity`."""
        idx = np.ascontiguousarray(indices, dtype=np.int64)
        h = hashlib.sha256(f"{identity}|{digest}|{kind}|{idx.shape}|loader_size={frame_size}".encode())
        h.update(idx.tobytes())
        return h.hexdigest()

    def load(self, key: str) -> tuple[torch.Tensor, int] | None:
        """(features, frames not decoded) of an entry, or None (a miss)."""
        from safetensors import SafetensorError
        from safetensors.torch import load

        data = self.store.read(self.store.path("features", key, ".safetensors"))
        if data is None:
            return None
        try:
            entry = load(data)
            return entry["features"], int(entry["decode_errors"][0])
        except (SafetensorError, KeyError) as e:  # cannot happen with atomic writes; a miss then
            log.warning("feature cache: unreadable entry %s (%s); computing it again", key, e)
            return None

    def save(self, key: str, features: torch.Tensor, decode_errors: int) -> None:
        from safetensors.torch import save

        data = save(
            {
                "features": features.detach().to("cpu").contiguous(),
                "decode_errors": torch.tensor([decode_errors], dtype=torch.int64),
            }
        )
        if self._write(self.store.path("features", key, ".safetensors"), data):
            self.writes += 1

    # -- the record --------------------------------------------------------------------------

    def count(self, split: str, hits: int, misses: int) -> None:
        c = self.counts.setdefault(split, {"hits": 0, "misses": 0})
        c["hits"] += hits
        c["misses"] += misses

    def stats(self) -> dict[str, Any]:
        """For the run record: media items found and computed per split, entries written and
        evicted by this process, and where the cache is."""
        return {
            "enabled": True,
            "dir": str(self.root),
            **{s: dict(c) for s, c in self.counts.items()},
            "written": self.writes,
            "evicted": self.store.evicted,
            "max_gb": None if self.store.max_bytes is None else self.store.max_bytes / 1e9,
        }


@dataclass(frozen=True)
class FeatureLookup:
    """What a dataset carries into its workers: the cache and the bound encoder's identity."""

    cache: FeatureCache
    identity: str

    def key(self, digest: str, kind: str, indices: np.ndarray, frame_size: int | None = None) -> str:
        return self.cache.feature_key(self.identity, digest, kind, indices, frame_size)
