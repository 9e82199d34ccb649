"""`hydra/launcher=local`: a sweep on this machine, N runs at once, each in its own process.

submitit's local executor (what `submitit_local` uses) starts every job of a sweep at
once, however many there are; this launcher keeps at most `parallel` of them running and
starts the next one as soon as one ends. Each run is a fresh process, as on SLURM (the
same job function, submitit folder layout and time-out requeue), and with
`gpus_per_node=G` each of the `parallel` slots owns its own G GPUs.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, filter_overrides
from hydra_plugins.hydra_submitit_launcher.submitit_launcher import LocalLauncher

log = logging.getLogger(__name__)


def slot_gpus(slot: int, gpus_per_node: int | None) -> tuple[int, ...]:
    """The GPUs of one slot: slot i owns GPUs i*G .. i*G+G-1 (none on a CPU sweep)."""
    g = gpus_per_node or 0
    return tuple(range(slot * g, (slot + 1) * g))


class LocalParallelLauncher(LocalLauncher):
    """submitit's local launcher with a bound on the runs at once (`parallel`)."""

    def __init__(self, parallel: int = 2, poll_s: float = 0.5, **params: Any) -> None:
        super().__init__(**params)
        self.parallel = parallel
        self.poll_s = poll_s

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        import submitit

        assert self.config is not None and job_overrides
        executor = submitit.LocalExecutor(
            folder=self.params["submitit_folder"], max_num_timeout=self.params.get("max_num_timeout", 0)
        )
        gpus = self.params.get("gpus_per_node") or 0
        executor.update_parameters(
            timeout_min=self.params.get("timeout_min", 4320),
            tasks_per_node=1,
            gpus_per_node=gpus,
            stderr_to_stdout=self.params.get("stderr_to_stdout", False),
        )
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        log.info("local sweep, %d runs, %d at once: %s", len(job_overrides), self.parallel, sweep_dir)

        waiting = deque(enumerate(job_overrides, start=initial_job_idx))
        free = list(range(self.parallel))
        running: dict[int, Any] = {}  # slot -> job
        jobs: list[Any] = []
        try:
            while waiting or running:
                while waiting and free:
                    slot = free.pop(0)
                    idx, overrides = waiting.popleft()
                    if gpus:
                        executor.update_parameters(visible_gpus=slot_gpus(slot, gpus))
                    log.info("\t#%d : %s", idx, " ".join(filter_overrides(overrides)))
                    job = executor.submit(
                        self, list(overrides), "hydra.sweep.dir", idx, f"job_id_for_{idx}", Singleton.get_state()
                    )
                    running[slot] = job
                    jobs.append(job)
                time.sleep(self.poll_s)
                for slot, job in list(running.items()):
                    if job.done():
                        del running[slot]
                        free.append(slot)
        except KeyboardInterrupt:  # the runs are detached processes: stop them with the sweep
            for job in running.values():
                job.cancel(check=False)
            raise
        return [job.results()[0] for job in jobs]
