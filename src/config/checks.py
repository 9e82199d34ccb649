"""Start-up checks that no one component's CONSTRAINTS state: a node's rules seen from the
config (one group's value against another's), and the config against this machine.

- SAMPLER_CONSTRAINTS (`sampler`): uniform sampling takes whole clips of the encoder's length
  (`encoder=videomae sampler=uniform`: 8 frames are no clip of 16);
- SYNTHETIC_CONSTRAINTS (`data.synthetic`): the synthetic benchmark's spec as SyntheticSpec
  states it (a pure dataclass: built here, nothing generated);
- check_machine: a trainer that needs a CUDA device finds one (run where the run trains).
"""

from __future__ import annotations

import dataclasses

from omegaconf import DictConfig, OmegaConf

from src.config.constraints import Constraints, is_int, join
from src.config.container import to_dict
from src.config.errors import ConfigError
from src.config.keys import closest


def check_clip_length(node: DictConfig, key: str, root: DictConfig) -> None:
    """A uniform sampler's frames make whole clips of the encoder's frames_per_clip."""
    if "num_frames" not in node or "frames_per_clip" not in node:
        return  # fps sampling: clips of frames_per_clip frames at any rate
    frames, per_clip = node.num_frames, node.frames_per_clip
    if not (is_int(frames) and is_int(per_clip)) or frames <= 0 or per_clip <= 0 or frames % per_clip == 0:
        return  # not integers > 0: the sampler's own rules say so
    encoder = OmegaConf.select(root, "encoder.name", default=None) or "the encoder"
    fits = ", ".join(str(per_clip * k) for k in range(1, 4))
    raise ConfigError(
        f"{join(key, 'num_frames')}={frames} is invalid with encoder={encoder}, whose clips have "
        f"{per_clip} frames (encoder.frames_per_clip={per_clip}); valid: a multiple of {per_clip} "
        f"({join(key, 'num_frames')}={fits} ...), or {key}=fps"
    )


SAMPLER_CONSTRAINTS = Constraints(check=check_clip_length)


def check_synthetic(node: DictConfig, key: str, root: DictConfig) -> None:
    """The spec of the synthetic benchmark, as SyntheticSpec checks it, in one line."""
    from src.data.synthetic import SyntheticSpec

    try:
        fields = to_dict(node, resolve=True)
    except Exception:  # noqa: BLE001 - an interpolation only the run resolves: checked there
        return
    names = [f.name for f in dataclasses.fields(SyntheticSpec)]
    unknown = [k for k in fields if k not in names]
    if unknown:
        near = closest(unknown[0], names)
        raise ConfigError(
            f"{join(key, unknown[0])} is not a field of the synthetic benchmark; valid: {', '.join(names)}"
            + (f"; did you mean {join(key, near)}?" if near else "")
        )
    low, high = fields.get("min_duration"), fields.get("max_duration")
    if isinstance(low, (int, float)) and isinstance(high, (int, float)) and not 0 < low <= high:
        raise ConfigError(
            f"{join(key, 'min_duration')}={low} is invalid with {join(key, 'max_duration')}={high}; "
            "valid: 0 < min_duration <= max_duration (seconds)"
        )
    try:
        SyntheticSpec.from_dict(fields)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{key} is invalid: {' '.join(str(e).split())}") from None


SYNTHETIC_CONSTRAINTS = Constraints(check=check_synthetic)

# accelerators that need a CUDA device ("gpu": CUDA, or Apple's MPS)
NEEDS_GPU = ("gpu", "cuda")


def check_machine(cfg: DictConfig, choice: str | None = None) -> None:
    """The trainer's accelerator is on this machine: `trainer=gpu` (and `trainer.accelerator=
    gpu|cuda`) needs a CUDA device; `auto` with several processes a rank (ddp, fsdp) would
    start them on the CPU without one, so there the CPU is asked for by name.

    Called where the run trains (a SLURM job checks its node, not the login node); it
    imports torch only for a trainer that may need a GPU. `choice`: the trainer option."""
    trainer = cfg.get("trainer")
    if not isinstance(trainer, DictConfig):
        return
    accelerator = str(trainer.get("accelerator", "cpu"))
    devices = trainer.get("devices", 1)
    several = not (is_int(devices) and devices == 1)
    if accelerator not in NEEDS_GPU and not (accelerator == "auto" and several):
        return
    import torch

    if torch.cuda.is_available():
        return
    if accelerator == "gpu" and torch.backends.mps.is_available():
        return
    named = f"trainer={choice}" if choice else f"trainer.accelerator={accelerator}"
    if accelerator == "auto":
        raise ConfigError(
            f"{named}: trainer.accelerator=auto finds no CUDA device on this machine and would start "
            f"{devices} processes on the CPU; valid: trainer.accelerator=cpu (gloo on the CPU), or trainer=cpu"
        )
    raise ConfigError(
        f"{named} needs a CUDA device and this machine has none (torch.cuda.is_available() is false); "
        "valid: trainer=cpu, or trainer.accelerator=cpu"
    )
