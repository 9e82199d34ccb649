"""Local jobs for `hydra/launcher=local` (hydra_plugins/apollo_launcher/local_parallel.py).

submitit's local job controller (`python -m submitit.local._local FOLDER`) makes FOLDER
itself, the unformatted `.../%j`, then opens its task logs in `.../<its pid>/`, which only
the submitting process makes, once the controller has started: a controller that gets
there first (a loaded machine) fails its run with no output at all. `python -m
src.launch.local_jobs FOLDER` makes `.../<its pid>/` first, then runs submitit's controller
(the submitting process's own `mkdir(exist_ok=True)` then finds the folder there).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import submitit
from submitit.core.utils import JobPaths
from submitit.local.local import Controller, LocalJob

CPUS_ENV = "APOLLO_SLOT_CPUS"  # the CPUs a local job runs on, "0,1"
THREAD_ENVS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")  # torch's intra-op threads: the slot's CPUs


class LocalExecutor(submitit.LocalExecutor):
    """submitit's local executor, whose job controllers make their job's folder before they
    open their logs in it (`main` below: without it, a controller that starts before the
    submitting process has made the folder fails its run with no output, seen on a loaded CI
    machine), and run on the CPUs of their slot (`cpus`: the job's affinity, and as many
    OpenMP threads; empty: all of this process's). The rest is submitit's
    `LocalExecutor._submit_command` and `start_controller`."""

    cpus: tuple[int, ...] = ()

    def _submit_command(self, command: str) -> LocalJob:
        p = self.parameters
        n_gpus = p.get("gpus_per_node", 0)
        visible = p.get("visible_gpus", ())
        gpus = range(n_gpus) if visible == () else visible[:n_gpus]
        env = {
            **os.environ,
            "SUBMITIT_LOCAL_NTASKS": str(p.get("tasks_per_node", 1)),
            "SUBMITIT_LOCAL_COMMAND": command,
            "SUBMITIT_LOCAL_TIMEOUT_S": str(int(60 * p.get("timeout_min", 2.0))),
            "SUBMITIT_LOCAL_SIGNAL_DELAY_S": str(int(p.get("signal_delay_s", 30))),
            "SUBMITIT_LOCAL_NODEID": "0",
            "SUBMITIT_LOCAL_JOB_NUM_NODES": "1",
            "SUBMITIT_STDERR_TO_STDOUT": "1" if p.get("stderr_to_stdout", False) else "",
            "SUBMITIT_EXECUTOR": "local",
            "CUDA_VISIBLE_DEVICES": ",".join(str(k) for k in gpus),
            "SUBMITIT_LOCAL_WITH_SHELL": "",
        }
        if self.cpus:
            env.update({CPUS_ENV: ",".join(map(str, self.cpus)), **dict.fromkeys(THREAD_ENVS, str(len(self.cpus)))})
        process = subprocess.Popen(  # outlives this process, as submitit's controller does
            [sys.executable, "-m", "src.launch.local_jobs", str(self.folder)], env=env
        )
        tasks = list(range(int(p.get("tasks_per_node", 1))))
        return LocalJob(folder=self.folder, job_id=str(process.pid), process=process, tasks=tasks)


def job_folder(folder: Path) -> Path:
    """The folder of the job this controller runs (its job id is its pid)."""
    return JobPaths(folder, str(os.getpid())).folder


def main(argv: list[str]) -> None:
    if len(argv) != 1:
        raise SystemExit("usage: python -m src.launch.local_jobs SUBMITIT_FOLDER")
    folder = Path(argv[0])
    cpus = os.environ.get(CPUS_ENV)
    if cpus and hasattr(os, "sched_setaffinity"):  # the run and its loader workers inherit it
        os.sched_setaffinity(0, {int(c) for c in cpus.split(",")})
    job_folder(folder).mkdir(parents=True, exist_ok=True)
    Controller(folder).run()


if __name__ == "__main__":
    main(sys.argv[1:])
