"""The config's own resolvers (`${apollo.mul:...}`, `${apollo.run_name:...}`), registered in one place.

Every entry point calls `register()` before Hydra composes; so does `src/train.py` when it is
imported, because a SLURM worker unpickles its task function and resolves the run's
directory (`apollo.run_name`) before any of the project's code runs.
"""

from __future__ import annotations

import hashlib
import math

from omegaconf import OmegaConf

from src.config.redact import redact_override

MAX_NAME = 200  # bytes of a run's folder name


def run_name(override_dirname: str) -> str:
    """The run's name and folder, from its overrides (`encoder=dinov2,llm=qwen4b`), secrets hidden."""
    items: list[str] = []
    for item in override_dirname.split(","):  # a value holding commas continues the last item
        if "=" in item or not items:
            items.append(item)
        else:
            items[-1] += "," + item
    name = ",".join(redact_override(i) for i in items).replace("/", "_") or "base"
    if len(name.encode()) > MAX_NAME:  # a file name has at most 255 bytes: keep it unique with a hash
        digest = hashlib.sha1(name.encode()).hexdigest()[:12]
        name = name.encode()[: MAX_NAME - 14].decode(errors="ignore") + f"~{digest}"
    return name


def register() -> None:
    """Register the resolvers (again: replacing is harmless)."""
    # `${apollo.mul:${encoder.frames_per_clip},16}`: a token budget per clip from one per frame
    OmegaConf.register_new_resolver("apollo.mul", lambda *xs: math.prod(xs), replace=True)
    # the run's name and folder, from its overrides
    OmegaConf.register_new_resolver("apollo.run_name", run_name, replace=True)
