"""How many loader workers a run gets (`data.num_workers: auto`), and whether batches are pinned.

The rule, for each rank (training process) of a run:

- Under SLURM with `--cpus-per-task` (the presets' `cpus_per_task`, SLURM_CPUS_PER_TASK), the
  task's CPUs are the budget. One task per rank is what the presets launch (tasks_per_node =
  GPUs); should several ranks share one task (Lightning started them inside it), the task's
  CPUs are divided among them. One CPU stays with the rank's own process (the training loop,
  collating, the host-to-device copy): workers = CPUs per rank - 1, at least 0, no cap
  (the budget was asked for to decode).
- Elsewhere (a workstation, a login node, a local multirun), the CPUs this process may run on
  (its affinity) are divided among the ranks on the node (LOCAL_WORLD_SIZE, else
  SLURM_NTASKS_PER_NODE, else the trainer's devices), minus one, and capped at LOCAL_MAX:
  such a machine is shared with other work, and a few workers already keep a GPU fed
  (benchmarks/loading_real_size.py). A local parallel multirun (hydra/launcher=local) gives
  each run its share of the CPUs as its affinity, so the rule divides that share.

An integer `num_workers` always wins.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

AUTO = "auto"
LOCAL_MAX = 4  # workers of a rank outside SLURM (or under SLURM without --cpus-per-task)


def valid_workers(v: Any) -> bool:
    """An integer >= 0, `auto` or null (= auto)."""
    return v is None or v == AUTO or (isinstance(v, int) and not isinstance(v, bool) and v >= 0)


def _leading_int(value: str | None) -> int:
    """SLURM's per-node counts read like "8" or "8(x2)" (8 on each of 2 nodes); 0 when unset."""
    m = re.match(r"\s*(\d+)", value or "")
    return int(m.group(1)) if m else 0


def available_cpus_set() -> set[int]:
    """The CPUs this process may run on (its affinity: a cgroup or taskset limit counts)."""
    try:
        return set(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return set(range(os.cpu_count() or 1))


def available_cpus() -> int:
    """How many CPUs this process may run on (`available_cpus_set`)."""
    return len(available_cpus_set())


def auto_workers(env: Mapping[str, str] | None = None, cpus: int | None = None, devices: int = 1) -> int:
    """Loader workers for one rank by the rule above. `env`: the environment (os.environ);
    `cpus`: the CPUs available (the affinity); `devices`: the trainer's devices on this node."""
    env = os.environ if env is None else env
    ranks = _leading_int(env.get("LOCAL_WORLD_SIZE")) or max(devices, 1)
    tasks = _leading_int(env.get("SLURM_NTASKS_PER_NODE"))
    task_cpus = _leading_int(env.get("SLURM_CPUS_PER_TASK"))
    if task_cpus:
        sharing = max(ranks // max(tasks, 1), 1)  # ranks per SLURM task: 1 with a task per rank
        return max(task_cpus // sharing - 1, 0)
    if ranks == 1 and tasks > 1:
        ranks = tasks
    cpus = available_cpus() if cpus is None else cpus
    return max(min(cpus // ranks - 1, LOCAL_MAX), 0)


def resolve_workers(setting: int | str | None, devices: int = 1) -> int:
    """`data.num_workers` as a number: an integer as it is, `auto` / null by `auto_workers`."""
    if setting is None or setting == AUTO:
        return auto_workers(devices=devices)
    if not valid_workers(setting):
        raise ValueError(f"num_workers={setting!r} is invalid; valid: an integer >= 0, auto or null")
    return int(setting)


def pins(setting: bool | str | None, device_type: str | None) -> bool:
    """Whether the loader pins its batches: `auto` (or null) on a CUDA device only (page-locked
    host memory lets the copy to the GPU run asynchronously; elsewhere it costs and buys
    nothing); true or false as set."""
    if setting is None or setting == AUTO:
        return device_type == "cuda"
    if not isinstance(setting, bool):
        raise ValueError(f"pin_memory={setting!r} is invalid; valid: auto, true or false")
    return setting
