"""Several processes for one run (DDP): one run directory, one record, one W&B run.

Lightning starts the other ranks of `trainer=ddp` by running the command again. Its own
Hydra support re-runs `sys.argv`, which in a multirun (`-m`) would start the whole sweep
in every child, in the wrong directory. `launch_children_as_this_job` makes the children
run exactly this job instead: the same config name and config dirs, this job's overrides,
and `hydra.run.dir` set to this job's directory (DDP ranks never create directories of
their own). Only the main process (global rank 0) writes the record.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence

RANK_VARS = ("RANK", "SLURM_PROCID", "NODE_RANK", "LOCAL_RANK")
LAUNCH_VARS = ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "LOCAL_RANK", "WORLD_SIZE")


_preempted = False


def mark_preempted() -> None:
    """A SLURM job got SIGTERM (requeued, preempted, at its time limit): the run will resume."""
    global _preempted
    _preempted = True


def preempted() -> bool:
    return _preempted


def is_main_process() -> bool:
    """Rank 0 of the run, whoever started it (Lightning, torchrun, SLURM), or a lone process."""
    return all(os.environ.get(v, "0") == "0" for v in RANK_VARS)


def hydra_child_command(local_rank: int) -> tuple[Sequence[str], str]:
    """The command and working directory of DDP rank `local_rank` of the current Hydra job."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.utils import get_original_cwd

    hc = HydraConfig.get()
    command = [sys.executable, "-m", "src.train", f"--config-name={hc.job.config_name}"]
    for source in hc.runtime.config_sources:
        if source.provider == "command-line" and source.schema == "file":
            command.append(f"--config-dir={source.path}")
    command += list(hc.overrides.task)
    quoted = hc.runtime.output_dir.replace("\\", "\\\\").replace('"', '\\"')  # '=' ',' '~' inside
    command += [f'hydra.run.dir="{quoted}"', "hydra.output_subdir=null", f"hydra.job.name=ddp_rank{local_rank}"]
    return command, get_original_cwd()


def launch_children_as_this_job() -> None:
    """Point Lightning's process launcher at `hydra_child_command` (see the module's docstring)."""
    from lightning.fabric.strategies.launchers import subprocess_script as fabric_launcher
    from lightning.pytorch.strategies.launchers import subprocess_script as trainer_launcher

    for module in (fabric_launcher, trainer_launcher):  # each imported the function by name
        module._hydra_subprocess_cmd = hydra_child_command  # type: ignore[attr-defined]  # private, replaced


class Processes:
    """What a job's DDP launch left behind, to be cleared before the next job of a multirun:
    the children (waited for), the process group, and the launch's environment variables."""

    def __init__(self) -> None:
        self._env_before = {v: os.environ.get(v) for v in LAUNCH_VARS}
        self._launchers: list[object] = []

    def adopt(self, trainer: object) -> None:
        """Remember the trainer's launcher: its children exist once `fit` has started them."""
        launcher = getattr(getattr(trainer, "strategy", None), "launcher", None)
        if launcher is not None:
            self._launchers.append(launcher)

    @property
    def children(self) -> list[subprocess.Popen]:
        return [p for launcher in self._launchers for p in getattr(launcher, "procs", [])]

    def close(self, timeout: float = 120.0) -> None:
        import torch.distributed as dist

        for proc in self.children:
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
        for var, value in self._env_before.items():
            if value is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = value
