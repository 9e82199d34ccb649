"""What one grid point asks of the cluster: GPUs, nodes, trainer, CPUs, memory and time.

`plan(cfg, site)` reads a composed config (LLM and encoder sizes, profile, precision,
schedule, batch, frames) through the memory model (`src.tools.memory.estimate`, GB by
part of each stage under the precision policy) and the site's settings (`SITE`, replaced
by `hydra.launcher.site` of `hydra/launcher=slurm_auto` and conf/local/site.yaml):

- per device, over the schedule's stages, the peak of one step: on one device the
  estimate's total; sharded over N devices (FSDP2), weights, gradients, AdamW's moments
  and autocast's copies divided by N, the activations whole (they do not shard);
- devices: the fewest of 1, 2, 4, ... up to a node's GPUs, then whole nodes up to
  `max_nodes`, whose per-device peak fits `gpu_memory_gb - headroom_gb`; trainer `gpu`
  (or `cpu` on a site whose devices are CPU processes) on one device, `fsdp` on several;
  pinned devices (`llm.resources.devices`, or the site's `options`) beyond what memory
  needs: `ddp` when one device holds the model, else `fsdp`;
- CPUs per task and host memory: `cpus_per_device` and `mem_gb_per_device` times the
  devices a node runs;
- time limit: the schedule's training FLOPs (6 x trained + 4 x frozen parameters a token,
  the LLM's tokens of `samples_per_epoch` samples a stage epoch) at `tflops_per_device`
  each device sustains (the default, 150 TFLOPS, is an H100 at about 15 % of its dense
  bf16 peak: video decoding, the encoder and short sequences keep a VLM's utilisation
  low), times `time_safety`: the estimate, and the GPU-hours; the job's time limit is
  the estimate rounded up to the hour, at least `min_time_h`, at most `max_time_h` (a
  longer run reaches the limit, is requeued by submitit and resumes from its checkpoint).

A point that no allocation of the site holds is refused with one line (ConfigError) that
names its need. Per option: an `llm` option may pin `resources: {devices, nodes, trainer,
time_h, cpus_per_task, mem_gb}` in its YAML (or `+llm.resources.devices=8` on the command
line); per site: `options: {<llm option>: {...}}` in the site settings, same keys.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from omegaconf import DictConfig, OmegaConf

from src.config.container import to_dict
from src.config.errors import ConfigError

# The default site: nodes of eight 80 GB GPUs (A100/H100 80GB).
SITE: dict[str, Any] = {
    "accelerator": "gpu",  # or cpu: each device a CPU process (gloo), as on the test cluster
    "gpu_memory_gb": 80.0,
    "headroom_gb": 4.0,  # the CUDA context and the allocator's slack, not in the estimate
    "gpus_per_node": 8,
    "max_nodes": 4,
    "cpus_per_device": 8,  # decoding workers a rank
    "mem_gb_per_device": 100,  # host memory a rank (null: the partition's default)
    "tflops_per_device": 150.0,  # sustained, per device (see the module's docstring)
    "samples_per_epoch": 1_000_000,  # training samples of a stage's epoch
    "time_safety": 1.5,
    "min_time_h": 1,
    "max_time_h": 72,
    "options": {},  # per llm option: {qwen7b: {devices: 16, time_h: 48}}
}
PINS = ("devices", "nodes", "trainer", "time_h", "cpus_per_task", "mem_gb")
TRAINER_KEYS = ("trainer", "trainer.accelerator", "trainer.devices", "trainer.num_nodes", "trainer.strategy")


@dataclass(frozen=True)
class Plan:
    """One grid point's allocation: `devices` per node on `nodes` nodes, one task a device."""

    trainer: str
    accelerator: str
    precision: str
    devices: int  # per node
    nodes: int
    cpus_per_task: int
    mem_gb: int | None
    time_h: int  # the job's time limit: the estimate, rounded up, within the site's bounds
    hours: float  # the estimate (with its safety factor); past the limit the job requeues and resumes
    peak_gb: float  # per device, at the peak stage
    need_gb: float  # the peak stage on one device
    stage: str  # the peak stage

    @property
    def total_devices(self) -> int:
        return self.devices * self.nodes

    @property
    def gpu_hours(self) -> float:
        """Device-hours the run asks for: its devices times the estimated hours."""
        return self.total_devices * self.hours

    def group(self) -> tuple[Any, ...]:
        """What a SLURM job of the point asks for, but its time: points alike share an array."""
        return (
            self.trainer,
            self.accelerator,
            self.precision,
            self.devices,
            self.nodes,
            self.cpus_per_task,
            self.mem_gb,
        )

    def slurm(self) -> dict[str, Any]:
        """hydra-submitit-launcher's SLURM parameters of the allocation."""
        return {
            "nodes": self.nodes,
            "tasks_per_node": self.devices,
            "gpus_per_node": self.devices if self.accelerator == "gpu" else None,
            "cpus_per_task": self.cpus_per_task,
            "mem_gb": self.mem_gb,
            "timeout_min": self.time_h * 60,
        }

    def overrides(self) -> list[str]:
        """The trainer overrides that make the point's trainer match the allocation."""
        out = [
            f"trainer={self.trainer}",
            f"trainer.accelerator={self.accelerator}",
            f"trainer.devices={self.devices}",
            f"trainer.precision={self.precision}",
        ]
        if self.trainer in ("ddp", "fsdp"):
            out.append(f"trainer.num_nodes={self.nodes}")
        return out

    def describe(self) -> str:
        where = f"{self.total_devices} {'GPU' if self.accelerator == 'gpu' else 'CPU task'}(s)"
        if self.nodes > 1:
            where += f" ({self.nodes} nodes x {self.devices})"
        mem = f", {self.mem_gb} GB" if self.mem_gb else ""
        unit = "GPU" if self.accelerator == "gpu" else "device"
        return (
            f"{where}, trainer={self.trainer}, {self.cpus_per_task} CPUs/task{mem}, time limit {self.time_h} h, "
            f"{self.hours:.1f} h estimated = {self.gpu_hours:.0f} {unit}-h; "
            f"peak {self.peak_gb:.1f} GB/device at stage {self.stage} ({self.need_gb:.1f} GB on one)"
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def site_settings(cfg: DictConfig | None = None, **overrides: Any) -> dict[str, Any]:
    """SITE, then a launch's `hydra.launcher.site`, then `overrides`."""
    site = dict(SITE)
    node = OmegaConf.select(cfg, "hydra.launcher.site") if cfg is not None else None
    if node is not None:
        site.update({k: v for k, v in to_dict(node, resolve=True).items() if v is not None or k == "mem_gb_per_device"})
    site.update(overrides)
    unknown = sorted(set(site) - set(SITE))
    if unknown:
        raise ConfigError(f"hydra.launcher.site.{unknown[0]} is not a site setting; valid: {', '.join(SITE)}")
    if site["accelerator"] not in ("gpu", "cpu"):
        raise ConfigError(f"hydra.launcher.site.accelerator={site['accelerator']} is invalid; valid: gpu or cpu")
    return site


def _pins(cfg: DictConfig, site: dict[str, Any]) -> dict[str, Any]:
    pins: dict[str, Any] = {}
    node = OmegaConf.select(cfg, "llm.resources")
    if node is not None:
        pins.update(to_dict(node, resolve=True))
    pins.update((site.get("options") or {}).get(str(cfg.llm.name), {}) or {})
    bad = sorted(set(pins) - set(PINS))
    if bad:
        raise ConfigError(f"llm.resources.{bad[0]} is not a resource; valid: {', '.join(PINS)}")
    return {k: v for k, v in pins.items() if v is not None}


_MODELS: dict[str, Any] = {}


def _model(cfg: DictConfig) -> Any:
    """The config's meta model, built once per architecture (a sweep's points share a few)."""
    from src.tools.memory import meta_model

    nodes = ("encoder", "llm", "projector", "resampler", "profile")
    try:
        key = OmegaConf.to_yaml(OmegaConf.masked_copy(cfg, list(nodes)), resolve=True)
    except Exception:  # noqa: BLE001 - a value only a run resolves: no caching
        return meta_model(cfg)
    if key not in _MODELS:
        _MODELS[key] = meta_model(cfg)
    return _MODELS[key]


def per_device_gb(parts: dict[str, float], shards: int) -> float:
    """One step's peak on each of `shards` devices, FSDP-sharding weights, gradients,
    AdamW and autocast's copies; activations whole."""
    held = sum(parts[f"{p}_weights"] for p in ("vision", "connector", "llm")) + parts["adamw"]
    acts = max(
        parts["encoder_forward"],
        parts["encoder_activations"] + parts["connector_activations"] + parts["llm_activations"],
    )
    return held / shards + max(parts["autocast_copies"] / shards + acts, parts["gradients"] / shards)


def _candidates(site: dict[str, Any]) -> list[tuple[int, int]]:
    """(devices per node, nodes) in the order tried: 1, 2, 4, ... a node's GPUs, then whole nodes."""
    per_node = int(site["gpus_per_node"])
    out, n = [], 1
    while n < per_node:
        out.append((n, 1))
        n *= 2
    out += [(per_node, k) for k in range(1, int(site["max_nodes"]) + 1)]
    return out


def training_flops(cfg: DictConfig) -> float:
    """The schedule's training FLOPs as the time limit counts them (see the module's
    docstring; the default site's samples a stage epoch): what the local launcher orders
    a sweep's points by, largest first."""
    return _flops(cfg, _model(cfg), float(SITE["samples_per_epoch"]), None)


def _hours(cfg: DictConfig, model: Any, site: dict[str, Any], devices: int, frames: int | None) -> float:
    """Training hours of the schedule (see the module's docstring)."""
    flops = _flops(cfg, model, float(site["samples_per_epoch"]), frames)
    return flops / (devices * site["tflops_per_device"] * 1e12) / 3600


def _flops(cfg: DictConfig, model: Any, samples_per_epoch: float, frames: int | None) -> float:
    stages = to_dict(cfg.schedule, resolve=True)["stages"]
    enc = model.encoder
    clips = OmegaConf.select(cfg, "sampler.max_clips", default=64)
    frames = frames if frames is not None else clips * enc.frames_per_clip
    tokens = math.ceil(frames / enc.frames_per_clip) * int(model.connector.tokens_per_clip) + 256
    flops = 0.0
    for stage in stages:
        trained = sum(model.params(p) for p in ("vision", "connector", "llm") if stage["lr"][p] > 0)
        total = sum(model.params(p) for p in ("vision", "connector", "llm"))
        epochs = float(stage.get("epochs", 1) or 1)
        flops += epochs * samples_per_epoch * tokens * (6 * trained + 4 * (total - trained))
    return flops


def plan(cfg: DictConfig, site: dict[str, Any] | None = None, frames: int | None = None) -> Plan:
    """The allocation of one grid point (see the module's docstring); ConfigError when the
    site has none that holds it."""
    from src.tools.memory import estimate

    site = site or site_settings(cfg)
    pins = _pins(cfg, site)
    gpu = site["accelerator"] == "gpu"
    precision = "bf16-mixed" if gpu else "32-true"
    job = OmegaConf.masked_copy(cfg, [str(k) for k in cfg if k != "hydra"])
    OmegaConf.update(job, "trainer.precision", precision, force_add=True)
    model = _model(job)
    names = [str(s.name) for s in job.schedule.stages]
    parts = [estimate(job, i, frames=frames, model=model) for i in range(len(names))]
    budget = float(site["gpu_memory_gb"]) - float(site["headroom_gb"])
    need = max(range(len(parts)), key=lambda i: parts[i]["total"])
    one = parts[need]["total"]

    def peak(shards: int) -> tuple[float, int]:
        i = max(range(len(parts)), key=lambda j: per_device_gb(parts[j], shards))
        return per_device_gb(parts[i], shards), i

    what = f"llm={cfg.llm.name} profile={cfg.profile.name} schedule={cfg.schedule.name}"
    task = OmegaConf.select(cfg, "hydra.overrides.task")
    if task:
        what = " ".join(str(o) for o in task)
    if "devices" in pins or "nodes" in pins:
        nodes = int(pins.get("nodes", 1))
        devices = int(pins.get("devices", site["gpus_per_node"] if nodes > 1 else 1))
    else:
        fits = [(d, n) for d, n in _candidates(site) if peak(d * n)[0] <= budget]
        if not fits:
            most = int(site["gpus_per_node"]) * int(site["max_nodes"])
            least, at = peak(most)
            acts = per_device_gb(parts[at], 10**9)
            raise ConfigError(
                f"{what} needs {one:.0f} GB on one device at stage {names[need]}, {least:.0f} GB a device even "
                f"sharded over {most} (activations, which do not shard: {acts:.0f} GB), more than the site's "
                f"largest allocation ({site['max_nodes']} node(s) x {site['gpus_per_node']} x "
                f"{site['gpu_memory_gb']} GB, {site['headroom_gb']} GB headroom); valid: a site with more or larger "
                "devices (hydra.launcher.site.*), or a smaller point (llm, frames, data.batch_size)"
            )
        devices, nodes = fits[0]
    total = devices * nodes
    per_device, at = peak(total)
    if per_device > budget:
        raise ConfigError(
            f"{what}: the pinned {total} device(s) hold {per_device:.0f} GB each at stage {names[at]}, more than "
            f"the site's {budget:.0f} GB a device; valid: more devices (llm.resources.devices / nodes)"
        )
    if nodes > int(site["max_nodes"]) or devices > int(site["gpus_per_node"]):
        raise ConfigError(
            f"{what} asks for {nodes} node(s) x {devices} devices; the site has at most {site['max_nodes']} "
            f"node(s) x {site['gpus_per_node']}; valid: fewer (llm.resources.devices / nodes)"
        )
    fitting = ("gpu" if gpu else "cpu") if total == 1 else ("ddp" if one <= budget else "fsdp")
    trainer = str(pins.get("trainer", fitting))
    if trainer not in ("gpu", "cpu", "ddp", "fsdp") or (trainer in ("gpu", "cpu") and total > 1):
        raise ConfigError(
            f"llm.resources.trainer={trainer} is invalid for {total} device(s); valid: "
            + ("gpu or cpu" if total == 1 else "ddp or fsdp")
        )
    if "time_h" in pins:
        raw = float(pins["time_h"])
        hours = int(math.ceil(raw))
    else:
        raw = _hours(job, model, site, total, frames) * float(site["time_safety"])
        hours = int(min(max(math.ceil(raw), int(site["min_time_h"])), int(site["max_time_h"])))
    mem = site["mem_gb_per_device"]
    return Plan(
        trainer=trainer,
        accelerator="gpu" if gpu else "cpu",
        precision=precision,
        devices=devices,
        nodes=nodes,
        cpus_per_task=int(pins.get("cpus_per_task", site["cpus_per_device"])),
        mem_gb=int(pins["mem_gb"]) if "mem_gb" in pins else (int(mem) * devices if mem else None),
        time_h=hours,
        hours=raw,
        peak_gb=per_device,
        need_gb=one,
        stage=names[at],
    )


def with_plan(overrides: list[str], planned: list[str]) -> list[str]:
    """A point's overrides with a plan's trainer overrides (`Plan.overrides()`): the point's
    own trainer choice, devices, nodes, strategy and precision give way; its other trainer
    settings stay."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(list(overrides))
    keep = [
        o
        for o, po in zip(overrides, parsed)
        if po.key_or_group not in (*TRAINER_KEYS, "trainer.precision") or po.is_delete()
    ]
    return [*keep, *planned]
